//! SMS fundamentals for herald: what a text costs before it is sent, and where it goes.
//!
//! - Encoding and segments: [`inspect`] picks GSM-7 (GSM 03.38 default alphabet and its extension
//!   table) or UCS-2, counts units (septets, or UTF-16 code units) and parts (160/153 septets, 70/67
//!   code units), and names the characters that force UCS-2; [`split_parts`] gives the parts as sent,
//!   never splitting an escape pair or a surrogate pair; [`warning_for`] explains a UCS-2 fallback.
//! - Phone numbers: [`normalize_e164`] turns what people type into E.164, or says why it cannot;
//!   [`warm_up`] loads the phone metadata it needs ahead of the first number.
//! - Keywords: [`classify_keyword`] spots STOP, START and HELP replies.
//!
//! See `docs/sms.md` for the rules and where herald differs from other calculators.

mod gsm;
mod keyword;
mod phone;
mod segment;

pub use gsm::{
    GSM7_BASIC, GSM7_ESCAPE, GSM7_EXTENSION, Gsm7Code, gsm7_code, gsm7_replacement, gsm7_septets, is_gsm7,
};
pub use keyword::{HELP_WORDS, Keyword, OPT_IN_WORDS, OPT_OUT_WORDS, classify_keyword};
pub use phone::{PhoneError, is_e164, normalize_e164, parse_country, warm_up};
pub use segment::{
    Encoding, ForcingCharacter, GSM7_MULTI_PART, GSM7_SINGLE_PART, PartLimit, SegmentInfo, UCS2_MULTI_PART,
    UCS2_SINGLE_PART, describe_char, inspect, part_limit_error, split_parts, split_parts_as, warning_for,
};
