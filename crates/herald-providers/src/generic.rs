//! Any other HTTP API: a 2xx is a success, nothing is known of its messages or webhooks, and a send
//! whose outcome is unknown is never repeated. The trait's defaults are exactly this behaviour.

use crate::connector::Connector;

pub struct Generic;

impl Connector for Generic {
    fn name(&self) -> &'static str {
        "generic"
    }

    fn label(&self) -> &'static str {
        "generic"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FailureClass, Verdict, WebhookError};
    use serde_json::json;

    #[test]
    fn a_2xx_is_a_success_and_nothing_more_is_promised() {
        assert_eq!(Generic.interpret(204, b""), Verdict::Success);
        assert_eq!(Generic.interpret(404, b"x"), Verdict::Failure { reason: "HTTP 404".into() });
        assert_eq!(Generic.failure_class(Some(502), b""), FailureClass::Retryable);
        assert_eq!(Generic.failure_class(Some(404), b""), FailureClass::Permanent);
        assert_eq!(Generic.default_retry().max_attempts, 5);
        assert!(!Generic.recognises_resend(&json!({})));
        assert_eq!(
            Generic.outbound_messages("POST", "/2010-04-01/Accounts/AC1/Messages.json", &json!({"To": "+1"})),
            vec![]
        );
        assert!(matches!(Generic.parse_webhook(b"{}"), Err(WebhookError::Unsupported { .. })));
        assert_eq!(
            Generic.parse_webhook(b"{}").unwrap_err().to_string(),
            "generic webhooks have no format herald knows"
        );
    }
}
