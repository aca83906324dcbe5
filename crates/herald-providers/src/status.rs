//! Where a message stands, and the order in which that can change.
//!
//! Providers repeat receipts and deliver them out of order (8x8 retries a webhook after 1, 10, 30 and
//! 90 s), so a status is only ever replaced by one further along.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    /// Journaled by herald, not yet answered by the provider.
    Pending,
    /// Herald crashed between sending and reading the answer: the message may or may not exist.
    Unknown,
    Queued,
    Sent,
    Delivered,
    Undelivered,
    Read,
    Rejected,
    Failed,
}

const ALL: [MessageStatus; 9] = [
    MessageStatus::Pending,
    MessageStatus::Unknown,
    MessageStatus::Queued,
    MessageStatus::Sent,
    MessageStatus::Delivered,
    MessageStatus::Undelivered,
    MessageStatus::Read,
    MessageStatus::Rejected,
    MessageStatus::Failed,
];

impl MessageStatus {
    pub fn all() -> impl Iterator<Item = MessageStatus> {
        ALL.into_iter()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Pending => "pending",
            MessageStatus::Unknown => "unknown",
            MessageStatus::Queued => "queued",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Undelivered => "undelivered",
            MessageStatus::Read => "read",
            MessageStatus::Rejected => "rejected",
            MessageStatus::Failed => "failed",
        }
    }

    /// Herald's own word for a status (as written by `as_str`), case-insensitively.
    pub fn parse(word: &str) -> Option<MessageStatus> {
        ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(word.trim()))
    }

    /// Whether the outcome is known. `Read` counts: nothing follows it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            MessageStatus::Delivered
                | MessageStatus::Undelivered
                | MessageStatus::Rejected
                | MessageStatus::Failed
                | MessageStatus::Read
        )
    }

    fn rank(self) -> u8 {
        match self {
            MessageStatus::Pending | MessageStatus::Unknown => 0,
            MessageStatus::Queued => 1,
            MessageStatus::Sent => 2,
            MessageStatus::Delivered
            | MessageStatus::Undelivered
            | MessageStatus::Rejected
            | MessageStatus::Failed => 3,
            MessageStatus::Read => 4,
        }
    }

    /// Whether a message at `self` should move to `next`. Late and repeated receipts return false, so
    /// applying every receipt that passes this test in arrival order gives the furthest status.
    ///
    /// `Read` follows anything: a read receipt proves delivery even after an operator said otherwise.
    /// Among the final statuses the first one wins, because a provider that changes its mind does so by
    /// a late, stale receipt more often than by a real correction. `Pending` may become `Unknown` (a
    /// crash lost the answer), never the reverse.
    pub fn advances_to(self, next: MessageStatus) -> bool {
        if self == next {
            return false;
        }
        match (self, next) {
            (_, MessageStatus::Read) => true,
            (MessageStatus::Pending, MessageStatus::Unknown) => true,
            _ => !self.is_final() && next.rank() > self.rank(),
        }
    }
}

impl std::fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::MessageStatus::*;
    use super::*;

    /// The status after applying receipts in arrival order, each only if it advances.
    fn apply(start: MessageStatus, receipts: &[MessageStatus]) -> MessageStatus {
        receipts.iter().fold(start, |at, &next| if at.advances_to(next) { next } else { at })
    }

    #[test]
    fn words_round_trip_and_serde_is_lowercase() {
        for s in MessageStatus::all() {
            assert_eq!(MessageStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<MessageStatus>(&format!("\"{s}\"")).unwrap(), s);
        }
        assert_eq!(MessageStatus::parse("DELIVERED"), Some(Delivered));
        assert_eq!(MessageStatus::parse("lost"), None);
    }

    #[test]
    fn out_of_order_receipts_keep_the_furthest_status() {
        assert_eq!(apply(Queued, &[Delivered, Sent]), Delivered);
        assert_eq!(apply(Pending, &[Sent, Queued]), Sent);
        assert_eq!(apply(Pending, &[Read, Delivered, Sent, Queued]), Read);
        assert_eq!(apply(Queued, &[Delivered, Read]), Read);
    }

    #[test]
    fn duplicates_change_nothing() {
        for s in MessageStatus::all() {
            assert!(!s.advances_to(s), "{s} -> {s}");
        }
        assert_eq!(apply(Pending, &[Queued, Queued, Sent, Sent, Delivered, Delivered]), Delivered);
    }

    #[test]
    fn a_final_status_never_becomes_another_final_status() {
        let finals = [Delivered, Undelivered, Rejected, Failed];
        for a in finals {
            for b in finals {
                assert!(!a.advances_to(b), "{a} -> {b}");
            }
            assert!(a.is_final());
            assert!(!a.advances_to(Sent) && !a.advances_to(Queued) && !a.advances_to(Pending));
            assert!(a.advances_to(Read), "{a} -> read");
        }
        assert_eq!(apply(Sent, &[Undelivered, Delivered]), Undelivered);
    }

    #[test]
    fn read_is_the_end_and_pending_only_becomes_unknown() {
        for s in MessageStatus::all() {
            assert!(!Read.advances_to(s), "read -> {s}");
        }
        assert!(Pending.advances_to(Unknown));
        assert!(!Unknown.advances_to(Pending));
        assert!(Unknown.advances_to(Queued) && Unknown.advances_to(Delivered));
        assert!(!Pending.is_final() && !Unknown.is_final() && !Queued.is_final() && !Sent.is_final());
    }
}
