//! Ids: records, runs and the ledger's keys grow in creation order, as Salesforce's ids do, so that new
//! rows go to the end of their table's B-tree; the rest of each id is random.

use chrono::Utc;
use rand::Rng;

pub(crate) const ID_ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub(crate) fn random_text(length: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..length).map(|_| ID_ALPHABET[rng.gen_range(0..ID_ALPHABET.len())] as char).collect()
}

/// Characters of [`ordered_text`] that encode the time.
const TIME_CHARS: usize = 9;

/// `length` characters that sort in creation order: the microseconds since 1970 in base 62 (nine
/// characters last until the year 2398), then random characters. New rows then go to the end of
/// their table's B-tree, so a commit of many leads rewrites a few pages rather than one per lead.
pub(crate) fn ordered_text(length: usize) -> String {
    let mut rest = Utc::now().timestamp_micros().max(0) as u64;
    let mut time = [b'0'; TIME_CHARS];
    for slot in time.iter_mut().rev() {
        *slot = ID_ALPHABET[(rest % 62) as usize];
        rest /= 62;
    }
    let mut text: String = time.iter().map(|&b| b as char).collect();
    text.push_str(&random_text(length.saturating_sub(TIME_CHARS)));
    text.truncate(length);
    text
}

/// An 18-character id that starts with the object's key prefix, as Salesforce ids do, and, like
/// theirs, grows as records are created.
pub(crate) fn record_id(prefix: &str) -> String {
    format!("{prefix}{}", ordered_text(18usize.saturating_sub(prefix.len())))
}

pub(crate) fn interview_guid() -> String {
    let bytes: [u8; 16] = rand::thread_rng().r#gen();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_in_creation_order_and_keep_their_length() {
        let mut ids = Vec::new();
        for _ in 0..50 {
            ids.push(record_id("00Q"));
            std::thread::sleep(std::time::Duration::from_micros(2));
        }
        assert!(ids.iter().all(|id| id.len() == 18 && id.starts_with("00Q")), "{ids:?}");
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, ids, "ids in creation order sort in creation order");
        assert_eq!(ordered_text(4).len(), 4);
        assert_eq!(ordered_text(20).len(), 20);
    }
}
