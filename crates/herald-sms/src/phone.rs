//! E.164 normalisation of phone numbers as people type them.

use std::str::FromStr;

use phonenumber::country;
use phonenumber::metadata::DATABASE;
use phonenumber::{Mode, ParseError, PhoneNumber};

/// Longest input looked at; anything longer is not a phone number someone typed.
const MAX_INPUT_CHARS: usize = 64;

/// Why a phone number cannot be turned into E.164. Every message names the input and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Nothing but blanks.
    #[error("empty phone number: write it in E.164, e.g. +14155550100")]
    Empty,

    /// Far too long to be a phone number.
    #[error(
        "'{input}' is not a phone number: it is {chars} characters long; write it in E.164, e.g. +14155550100"
    )]
    InputTooLong { input: String, chars: usize },

    /// A character that has no place in a phone number.
    #[error(
        "'{input}' contains '{character}', which has no place in a phone number: use digits, with an optional leading + and spaces, dashes, dots or parentheses"
    )]
    InvalidCharacter { input: String, character: char },

    /// The input carries an extension, which no SMS can reach.
    #[error("'{input}' has an extension: an SMS can only go to the number itself, remove the extension")]
    HasExtension { input: String },

    /// Not enough digits, or none, to be a phone number.
    #[error("'{input}' is not a phone number: write it in E.164, e.g. +14155550100")]
    NotANumber { input: String },

    /// No leading `+` or international prefix, and no default country to read it with.
    #[error("'{input}' has no country code: write it in E.164 (+1...) or set default_country in herald.toml")]
    NoCountryCode { input: String },

    /// The default country is not an ISO 3166-1 alpha-2 code the phone metadata knows.
    #[error(
        "default country '{country}' is not a known ISO 3166-1 alpha-2 code: use one such as US, GB or DE (default_country in herald.toml)"
    )]
    UnknownDefaultCountry { country: String },

    /// The number starts with a calling code no country uses.
    #[error("'{input}' starts with a country code that does not exist: check the digits after the +")]
    UnknownCountryCode { input: String },

    /// Too few digits for its country.
    #[error("'{input}' is too short to be a phone number{}: check for a missing digit", in_region(.region))]
    TooShort { input: String, region: Option<String> },

    /// Too many digits for its country.
    #[error("'{input}' is too long to be a phone number{}: check for an extra digit", in_region(.region))]
    TooLong { input: String, region: Option<String> },

    /// The digits parse but match no number range of the country.
    #[error(
        "'{input}' is not a valid number{} (read as {e164}): check the digits{}",
        in_region(.region),
        hint_for(.region, .default_country)
    )]
    Invalid {
        input: String,
        /// What the digits would be in E.164.
        e164: String,
        /// The country the number was read as, when one matches its calling code.
        region: Option<String>,
        /// The default country it was read with, if any.
        default_country: Option<String>,
    },
}

fn in_region(region: &Option<String>) -> String {
    match region {
        Some(r) => format!(" in {r}"),
        None => String::new(),
    }
}

fn hint_for(region: &Option<String>, default_country: &Option<String>) -> String {
    match (region, default_country) {
        (Some(r), Some(d)) if r == d => {
            format!(", or write it in E.164 with its country code if it is not a {d} number")
        }
        _ => String::new(),
    }
}

impl PhoneError {
    /// The input the error is about (empty for [`PhoneError::Empty`] and the default-country error).
    pub fn input(&self) -> &str {
        match self {
            PhoneError::Empty | PhoneError::UnknownDefaultCountry { .. } => "",
            PhoneError::InputTooLong { input, .. }
            | PhoneError::InvalidCharacter { input, .. }
            | PhoneError::HasExtension { input }
            | PhoneError::NotANumber { input }
            | PhoneError::NoCountryCode { input }
            | PhoneError::UnknownCountryCode { input }
            | PhoneError::TooShort { input, .. }
            | PhoneError::TooLong { input, .. }
            | PhoneError::Invalid { input, .. } => input,
        }
    }
}

/// Parses a default country such as `"us"` or `" GB "` (ISO 3166-1 alpha-2, any case).
pub fn parse_country(code: &str) -> Result<country::Id, PhoneError> {
    let upper = code.trim().to_ascii_uppercase();
    let unknown = || PhoneError::UnknownDefaultCountry { country: code.trim().to_owned() };
    if upper.len() != 2 || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(unknown());
    }
    country::Id::from_str(&upper).map_err(|_| unknown())
}

/// Maps the digits and plus signs other scripts use (full-width, Arabic-Indic, ...) to ASCII.
fn ascii_digit(c: char) -> Option<char> {
    let zero = match c {
        '0'..='9' => return Some(c),
        '\u{FF10}'..='\u{FF19}' => 0xFF10,
        '\u{0660}'..='\u{0669}' => 0x0660,
        '\u{06F0}'..='\u{06F9}' => 0x06F0,
        '\u{0966}'..='\u{096F}' => 0x0966,
        _ => return None,
    };
    char::from_digit(c as u32 - zero, 10)
}

/// Cleans the input to `+digits` or `digits` and reports characters that have no place in it.
fn clean(input: &str) -> Result<String, PhoneError> {
    let mut out = String::with_capacity(input.len());
    let lower = input.to_lowercase();
    if lower.contains("ext") || lower.contains('#') || lower.contains(';') || lower.contains('x') {
        return Err(PhoneError::HasExtension { input: input.to_owned() });
    }
    let mut seen_digit = false;
    for c in input.chars() {
        if let Some(d) = ascii_digit(c) {
            out.push(d);
            seen_digit = true;
        } else if c == '+' || c == '\u{FF0B}' {
            if seen_digit || out.starts_with('+') {
                return Err(PhoneError::InvalidCharacter { input: input.to_owned(), character: c });
            }
            out.push('+');
        } else if c.is_whitespace()
            || matches!(
                c,
                '-' | '.' | '(' | ')' | '/' | '[' | ']' | '\u{2010}'
                    ..='\u{2015}'
                        | '\u{2212}'
                        | '\u{30FC}'
                        | '\u{FF0D}'
                        | '\u{FF08}'
                        | '\u{FF09}'
                        | '\u{200B}'
                        | '\u{2060}'
                        | '\u{FEFF}'
            )
        {
        } else {
            return Err(PhoneError::InvalidCharacter { input: input.to_owned(), character: c });
        }
    }
    Ok(out)
}

fn code_of(id: country::Id) -> String {
    DATABASE.by_id(id.as_ref()).map(|m| m.country_code().to_string()).unwrap_or_default()
}

fn region_of(number: &PhoneNumber) -> Option<String> {
    number.country().id().map(|id| id.as_ref().to_owned())
}

fn map_parse_error(e: ParseError, input: &str, region: Option<String>) -> PhoneError {
    let input = input.to_owned();
    match e {
        ParseError::InvalidCountryCode => PhoneError::UnknownCountryCode { input },
        ParseError::TooShortAfterIdd | ParseError::TooShortNsn => PhoneError::TooShort { input, region },
        ParseError::TooLong => PhoneError::TooLong { input, region },
        ParseError::NoNumber | ParseError::MalformedInteger(_) => PhoneError::NotANumber { input },
    }
}

/// Whether `s` matches 8x8's destination pattern with its `+`: `^\+[1-9][0-9]{6,14}$`.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

/// Parses `cleaned` (`+digits` or `digits`) and checks the number is valid.
fn parse_valid(input: &str, cleaned: &str, country: Option<country::Id>) -> Result<String, PhoneError> {
    let number = phonenumber::parse(country, cleaned)
        .map_err(|e| map_parse_error(e, input, country.map(|c| c.as_ref().to_owned())))?;
    let e164 = number.format().mode(Mode::E164).to_string();
    let region = region_of(&number);
    if !number.is_valid() {
        let code = number.code().value();
        let Some(metas) = DATABASE.by_code(&code) else {
            return Err(PhoneError::UnknownCountryCode { input: input.to_owned() });
        };
        let region = region.or_else(|| {
            metas.iter().find(|m| m.is_main_country_for_code()).or(metas.first()).map(|m| m.id().to_owned())
        });
        // Digits after the country code, as sent.
        let national_len = e164.len().saturating_sub(1 + code.to_string().len());
        let lengths = metas
            .iter()
            .flat_map(|m| {
                let d = m.descriptors();
                [
                    Some(d.general()),
                    d.fixed_line(),
                    d.mobile(),
                    d.toll_free(),
                    d.premium_rate(),
                    d.shared_cost(),
                    d.personal_number(),
                    d.voip(),
                    d.pager(),
                    d.uan(),
                    d.voicemail(),
                ]
            })
            .flatten()
            .flat_map(|desc| desc.possible_length().iter().copied())
            .map(usize::from);
        let (min, max) = lengths.fold((usize::MAX, 0), |(lo, hi), l| (lo.min(l), hi.max(l)));
        if min != usize::MAX && national_len < min {
            return Err(PhoneError::TooShort { input: input.to_owned(), region });
        }
        if max != 0 && national_len > max {
            return Err(PhoneError::TooLong { input: input.to_owned(), region });
        }
        return Err(PhoneError::Invalid {
            input: input.to_owned(),
            e164,
            region,
            default_country: country.map(|c| c.as_ref().to_owned()),
        });
    }
    if !is_e164(&e164) {
        return Err(PhoneError::NotANumber { input: input.to_owned() });
    }
    Ok(e164)
}

/// Normalises a phone number to E.164 (`+14155550100`).
///
/// Accepts what people type: `+44 20 7946 0018`, `0044 20 7946 0018` (`00` read as the international
/// prefix), and national formats such as `(415) 555-0100` when `default_country` (ISO 3166-1 alpha-2,
/// e.g. `"US"`) says which country they belong to. With a default country, that country's own
/// international prefix works too (`011 44 ...` for US). Refuses, with the reason, numbers that cannot
/// be valid: wrong length, no such country code, digits outside every range of the country, letters,
/// extensions.
/// Loads the phone metadata now, and the patterns of North American numbers and of `default_country`'s.
/// Otherwise the first number read pays for it: parsing the metadata's patterns costs about 100 ms of
/// CPU, and each country's patterns compile the first time one of its numbers is read. A long-running
/// process calls this when it starts so that its first message goes out as fast as the others.
pub fn warm_up(default_country: Option<&str>) {
    let _ = normalize_e164("+14155550100", None);
    let example = default_country
        .and_then(|code| parse_country(code).ok())
        .and_then(|id| DATABASE.by_id(id.as_ref()))
        .and_then(|metadata| metadata.descriptors().mobile().and_then(|mobile| mobile.example()));
    if let Some(example) = example {
        let _ = normalize_e164(example, default_country);
    }
}

pub fn normalize_e164(number: &str, default_country: Option<&str>) -> Result<String, PhoneError> {
    let e164 = normalize_once(number, default_country)?;
    // The result must read back as itself: the parser can accept a number through one route (a
    // national `00` prefix) that it refuses in E.164 (Russian area codes starting with 8), and a
    // number herald sends must be one it would accept again.
    if e164 != number.trim() {
        normalize_once(&e164, None)?;
    }
    Ok(e164)
}

fn normalize_once(number: &str, default_country: Option<&str>) -> Result<String, PhoneError> {
    let input = number.trim();
    if input.is_empty() {
        return Err(PhoneError::Empty);
    }
    let chars = input.chars().count();
    if chars > MAX_INPUT_CHARS {
        return Err(PhoneError::InputTooLong {
            input: input.chars().take(MAX_INPUT_CHARS).collect::<String>() + "...",
            chars,
        });
    }
    let country = default_country.map(parse_country).transpose()?;
    let cleaned = clean(input)?;
    let digits = cleaned.trim_start_matches('+');
    if digits.len() < 3 {
        return Err(PhoneError::NotANumber { input: input.to_owned() });
    }
    if cleaned.starts_with('+') {
        return parse_valid(input, &cleaned, None);
    }
    let as_international = digits.strip_prefix("00").map(|rest| format!("+{rest}"));
    match country {
        None => match as_international {
            Some(plus) => parse_valid(input, &plus, None),
            None => Err(PhoneError::NoCountryCode { input: input.to_owned() }),
        },
        Some(id) => {
            let first = parse_valid(input, &cleaned, Some(id));
            // A national number that happens to start with the country's own calling code (Rwanda's
            // "250 123 456") is read by the parser as code + a too-short number: read all the digits
            // as the national number instead.
            let code = code_of(id);
            let whole_national = || parse_valid(input, &format!("+{code}{digits}"), None).ok();
            match (first, as_international) {
                (Ok(e164), _) => Ok(e164),
                (Err(e), _) if !code.is_empty() && digits.starts_with(&code) => whole_national().ok_or(e),
                // `00` is the international prefix of most of the world even where the default
                // country dials out with another one (011 in North America).
                (Err(e), Some(plus)) => parse_valid(input, &plus, None).map_err(|_| e),
                (Err(e), None) => Err(e),
            }
        }
    }
}
