//! Vonage's numeric codes, in one table each, so that the connector's judgement, its fault messages and
//! the emulator's answers cannot drift apart.
//!
//! The submission statuses are the `x-errors` of Vonage's SMS API spec (the `status` of each message in
//! an answer, `0` being success). The delivery-receipt error codes are the `err-code` of a DLR, from
//! Vonage's delivery receipt guide.

use crate::FailureClass;
use FailureClass::{InvalidDestination, OptedOut, Permanent, Retryable};

/// What one non-zero submission status means, and what herald does about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubmitCode {
    pub code: u32,
    /// Vonage's own name for it ("Invalid Credentials").
    pub name: &'static str,
    /// What the user should check, for the fault message.
    pub hint: &'static str,
    pub class: FailureClass,
}

const fn code(code: u32, name: &'static str, hint: &'static str, class: FailureClass) -> SubmitCode {
    SubmitCode { code, name, hint, class }
}

/// Every submission status Vonage documents. The message was not accepted under any of them, so a
/// retryable one (the rate, a platform fault, too many connections) is safe to send again.
pub const SUBMIT_CODES: &[SubmitCode] = &[
    code(1, "Throttled", "sending faster than the account's limit; herald retries", Retryable),
    code(
        2,
        "Missing Parameters",
        "the request lacks one of from, to, api_key, api_secret or text",
        Permanent,
    ),
    code(3, "Invalid Parameters", "the value of one or more parameters is invalid", Permanent),
    code(
        4,
        "Invalid Credentials",
        "the api_key or api_secret stored for the named credential is wrong or disabled: set them again with `herald credential set`",
        Permanent,
    ),
    code(5, "Internal Error", "a fault of Vonage's platform; herald retries", Retryable),
    code(
        6,
        "Invalid Message",
        "Vonage could not process the message, e.g. an unrecognised number prefix",
        Permanent,
    ),
    // Vonage bars a number that replied STOP to the sender (and numbers on its own block list): the
    // phone must not be texted again, which is what an opt-out means to herald.
    code(7, "Number Barred", "the destination is barred (it opted out, or is on a block list)", OptedOut),
    code(8, "Partner Account Barred", "the Vonage account is suspended", Permanent),
    code(9, "Partner Quota Violation", "the Vonage account has not enough credit", Permanent),
    code(
        10,
        "Too Many Existing Binds",
        "more simultaneous connections than the account allows; herald retries",
        Retryable,
    ),
    code(11, "Account Not Enabled For HTTP", "the account is not provisioned for the SMS API", Permanent),
    code(12, "Message Too Long", "the text exceeds the longest message Vonage sends", Permanent),
    code(14, "Invalid Signature", "the request signature could not be verified", Permanent),
    code(15, "Invalid Sender Address", "the account may not send from this `from`", Permanent),
    code(
        22,
        "Invalid Network Code",
        "the network code is unknown or not of the destination's country",
        Permanent,
    ),
    code(
        23,
        "Invalid Callback Url",
        "the callback URL is too long (100 characters at most) or malformed",
        Permanent,
    ),
    code(
        29,
        "Non-Whitelisted Destination",
        "a demo account may only text the numbers it whitelisted",
        Permanent,
    ),
    code(
        32,
        "Signature And API Secret Disallowed",
        "a signed request may not carry api_secret too",
        Permanent,
    ),
    code(33, "Number De-activated", "the destination number is de-activated", InvalidDestination),
];

/// The documented meaning of a submission status; `None` for `0` (success) and undocumented codes.
pub fn submit_code(status: &str) -> Option<&'static SubmitCode> {
    let status: u32 = status.trim().parse().ok()?;
    SUBMIT_CODES.iter().find(|c| c.code == status)
}

/// The meaning of a delivery receipt's `err-code` (`0` is no error).
pub fn dlr_error(code: &str) -> Option<&'static str> {
    Some(match code.trim() {
        "1" => "Unknown",
        "2" => "Absent Subscriber - Temporary",
        "3" => "Absent Subscriber - Permanent",
        "4" => "Call Barred by User",
        "5" => "Portability Error",
        "6" => "Anti-Spam Rejection",
        "7" => "Handset Busy",
        "8" => "Network Error",
        "9" => "Illegal Number",
        "10" => "Illegal Message",
        "11" => "Unroutable",
        "12" => "Destination Unreachable",
        "13" => "Subscriber Age Restriction",
        "14" => "Number Blocked by Carrier",
        "15" => "Prepaid Insufficient Funds",
        "50" => "Entity Filter",
        "51" => "Header Filter",
        "52" => "Content Filter",
        "53" => "Consent Filter",
        "54" => "Regulation Error",
        "99" => "General Error",
        _ => return None,
    })
}
