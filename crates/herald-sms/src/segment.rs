//! Encoding choice, unit counting and segmentation of an SMS text.

use std::fmt::Write as _;

use serde::Serialize;

use crate::gsm::{gsm7_replacement, gsm7_septets};

/// The most parts a provider sends for one message, for messages that say so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartLimit<'a> {
    /// The provider's name as people know it ("8x8 SMS").
    pub provider: &'a str,
    pub max_parts: u32,
}

/// GSM-7 septets in a single-part message.
pub const GSM7_SINGLE_PART: u32 = 160;
/// GSM-7 septets in each part of a multipart message (7 septets go to the concatenation header).
pub const GSM7_MULTI_PART: u32 = 153;
/// UCS-2 (UTF-16) code units in a single-part message.
pub const UCS2_SINGLE_PART: u32 = 70;
/// UCS-2 (UTF-16) code units in each part of a multipart message.
pub const UCS2_MULTI_PART: u32 = 67;

/// The data coding an SMS is sent with. Serialises as 8x8's `encoding` values, `GSM7` and `UCS2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Encoding {
    /// GSM 03.38 7-bit default alphabet (with its extension table).
    #[serde(rename = "GSM7")]
    Gsm7,
    /// UCS-2, sent in practice as UTF-16 (characters outside the BMP take a surrogate pair).
    #[serde(rename = "UCS2")]
    Ucs2,
}

impl Encoding {
    /// The name as 8x8 and `herald sms inspect` spell it: `GSM7` or `UCS2`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "GSM7",
            Encoding::Ucs2 => "UCS2",
        }
    }

    /// Units that fit in a message sent as one part: 160 septets or 70 UTF-16 code units.
    pub const fn single_part_units(self) -> u32 {
        match self {
            Encoding::Gsm7 => GSM7_SINGLE_PART,
            Encoding::Ucs2 => UCS2_SINGLE_PART,
        }
    }

    /// Units that fit in each part of a multipart message: 153 septets or 67 UTF-16 code units.
    pub const fn multi_part_units(self) -> u32 {
        match self {
            Encoding::Gsm7 => GSM7_MULTI_PART,
            Encoding::Ucs2 => UCS2_MULTI_PART,
        }
    }

    /// Units one character costs in this encoding, or `None` when GSM-7 cannot carry it.
    pub const fn char_units(self, c: char) -> Option<u32> {
        match self {
            Encoding::Gsm7 => gsm7_septets(c),
            Encoding::Ucs2 => Some(c.len_utf16() as u32),
        }
    }

    /// Units `text` costs in this encoding (septets or UTF-16 code units), or `None` when the encoding is
    /// GSM-7 and `text` holds a character GSM-7 cannot carry. Saturates at `u32::MAX`.
    pub fn units(self, text: &str) -> Option<u32> {
        let mut total: u64 = 0;
        for c in text.chars() {
            total += u64::from(self.char_units(c)?);
        }
        Some(saturate(total))
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A character that is not GSM-7 and so forces the whole message into UCS-2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ForcingCharacter {
    /// The character.
    pub character: char,
    /// Index of the character in the text, counted in Unicode scalar values (`chars()`), from 0.
    pub char_index: usize,
    /// Offset of the character's first byte in the UTF-8 text.
    pub byte_offset: usize,
}

/// What an SMS text costs: its encoding, its parts and its units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SegmentInfo {
    /// GSM-7 when every character is in GSM 03.38, UCS-2 otherwise.
    pub encoding: Encoding,
    /// Number of parts the message is sent (and billed) as. The empty text is 1 part, as providers
    /// bill an empty message as one SMS.
    pub segments: u32,
    /// Septets for GSM-7 (extension characters count 2), UTF-16 code units for UCS-2.
    pub units: u32,
    /// Every character that is not GSM-7, in text order (empty for GSM-7).
    pub forcing_characters: Vec<ForcingCharacter>,
    /// Parts the text would take in GSM-7 if each forcing character were replaced by one GSM-7
    /// character: what a UCS-2 warning compares against. Equal to `segments` for GSM-7.
    #[serde(skip)]
    pub gsm7_segments: u32,
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Parts a text of `total` units takes when each character's cost comes from `costs`.
fn count_parts(encoding: Encoding, total: u64, costs: impl Iterator<Item = u32>) -> u32 {
    if total <= u64::from(encoding.single_part_units()) {
        return 1;
    }
    let limit = encoding.multi_part_units();
    let mut parts: u64 = 1;
    let mut used = 0u32;
    for cost in costs {
        if used + cost > limit {
            parts += 1;
            used = 0;
        }
        used += cost;
    }
    saturate(parts)
}

/// Works out the encoding, units and parts of `text`.
pub fn inspect(text: &str) -> SegmentInfo {
    let mut forcing_characters = Vec::new();
    let mut septets: u64 = 0; // forcing characters counted as 1
    let mut utf16: u64 = 0;
    for (char_index, (byte_offset, c)) in text.char_indices().enumerate() {
        utf16 += c.len_utf16() as u64;
        match gsm7_septets(c) {
            Some(s) => septets += u64::from(s),
            None => {
                septets += 1;
                forcing_characters.push(ForcingCharacter { character: c, char_index, byte_offset });
            }
        }
    }
    let gsm7_segments =
        count_parts(Encoding::Gsm7, septets, text.chars().map(|c| gsm7_septets(c).unwrap_or(1)));
    if forcing_characters.is_empty() {
        SegmentInfo {
            encoding: Encoding::Gsm7,
            segments: gsm7_segments,
            units: saturate(septets),
            forcing_characters,
            gsm7_segments,
        }
    } else {
        let segments = count_parts(Encoding::Ucs2, utf16, text.chars().map(|c| c.len_utf16() as u32));
        SegmentInfo {
            encoding: Encoding::Ucs2,
            segments,
            units: saturate(utf16),
            forcing_characters,
            gsm7_segments,
        }
    }
}

/// Splits `text` into the parts it is sent as: one part when it fits 160 septets / 70 code units,
/// otherwise parts of at most 153 septets / 67 code units. An extension character (escape pair) or a
/// character outside the BMP (surrogate pair) is never split: it moves whole to the next part.
/// The empty text gives one empty part. Joining the parts gives back `text`.
pub fn split_parts(text: &str) -> Vec<String> {
    let encoding = if text.chars().all(crate::gsm::is_gsm7) { Encoding::Gsm7 } else { Encoding::Ucs2 };
    split_parts_as(text, encoding).unwrap_or_else(|| vec![text.to_owned()])
}

/// Splits `text` as [`split_parts`] does, but in the given encoding; `None` when the encoding is GSM-7
/// and `text` holds a character GSM-7 cannot carry.
pub fn split_parts_as(text: &str, encoding: Encoding) -> Option<Vec<String>> {
    let total = encoding.units(text)?;
    if total <= encoding.single_part_units() {
        return Some(vec![text.to_owned()]);
    }
    let limit = encoding.multi_part_units();
    let mut parts = Vec::new();
    let mut start = 0usize;
    let mut used = 0u32;
    for (offset, c) in text.char_indices() {
        let cost = encoding.char_units(c)?;
        if used + cost > limit {
            parts.push(text[start..offset].to_owned());
            start = offset;
            used = 0;
        }
        used += cost;
    }
    parts.push(text[start..].to_owned());
    Some(parts)
}

#[derive(Serialize)]
struct JsonForcing {
    character: char,
    index: usize,
}

#[derive(Serialize)]
struct JsonLine {
    encoding: Encoding,
    segments: u32,
    units: u32,
    forcing_characters: Vec<JsonForcing>,
}

impl SegmentInfo {
    /// One JSON line, as `herald sms inspect TEXT` prints it:
    /// `{"encoding":"UCS2","segments":1,"units":5,"forcing_characters":[{"character":"ç","index":3}]}`
    /// (`index` counts characters from 0).
    pub fn to_json_line(&self) -> String {
        let line = JsonLine {
            encoding: self.encoding,
            segments: self.segments,
            units: self.units,
            forcing_characters: self
                .forcing_characters
                .iter()
                .map(|f| JsonForcing { character: f.character, index: f.char_index })
                .collect(),
        };
        // Serialising plain numbers, strings and chars cannot fail.
        serde_json::to_string(&line).unwrap_or_default()
    }

    /// Whether the message fits in `max_parts` parts.
    pub fn fits_in(&self, max_parts: u32) -> bool {
        self.segments <= max_parts
    }
}

/// Characters that print as nothing or as blank space: they are named by code point instead.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(c,
            '\u{AD}' | '\u{34F}' | '\u{61C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
            | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
            | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}' | '\u{E0000}'..='\u{E0FFF}')
}

/// `'ç' (U+00E7)` for a visible character, `U+00A0 (invisible)` for one that prints as blank.
pub fn describe_char(c: char) -> String {
    if is_invisible(c) {
        format!("U+{:04X} (invisible)", c as u32)
    } else {
        format!("'{c}' (U+{:04X})", c as u32)
    }
}

fn plural(n: u32, word: &str) -> String {
    if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") }
}

/// A warning when a character forces UCS-2: which character, where (position counted from 1), and
/// what it costs. `None` for GSM-7 text.
///
/// Example: `'ç' (U+00E7) at position 12 forces UCS-2: 2 segments instead of 1 (replace it with 'c' to
/// stay in GSM-7)`.
pub fn warning_for(info: &SegmentInfo, limit: Option<PartLimit<'_>>) -> Option<String> {
    if info.encoding != Encoding::Ucs2 {
        return None;
    }
    let first = info.forcing_characters.first()?;
    let mut msg =
        format!("{} at position {} forces UCS-2", describe_char(first.character), first.char_index + 1);
    let others = &info.forcing_characters[1..];
    if !others.is_empty() {
        const SHOWN: usize = 5;
        let _ = write!(
            msg,
            " (with {} more non-GSM-7 {}: ",
            others.len(),
            if others.len() == 1 { "character" } else { "characters" }
        );
        for (i, f) in others.iter().take(SHOWN).enumerate() {
            if i > 0 {
                msg.push_str(", ");
            }
            let _ = write!(msg, "{} at {}", describe_char(f.character), f.char_index + 1);
        }
        if others.len() > SHOWN {
            msg.push_str(", ...");
        }
        msg.push(')');
    }
    if info.segments == info.gsm7_segments {
        let _ = write!(
            msg,
            ": still {}, but a part now holds {} code units instead of {} characters",
            plural(info.segments, "segment"),
            UCS2_SINGLE_PART,
            GSM7_SINGLE_PART
        );
    } else {
        let _ = write!(msg, ": {} instead of {}", plural(info.segments, "segment"), info.gsm7_segments);
    }
    if let Some(rep) = gsm7_replacement(first.character) {
        let quoted = if rep.contains('\'') { format!("\"{rep}\"") } else { format!("'{rep}'") };
        let action =
            if rep.is_empty() { "remove it".to_owned() } else { format!("replace it with {quoted}") };
        if others.is_empty() {
            let _ = write!(msg, " ({action} to stay in GSM-7)");
        } else {
            let _ = write!(msg, " ({action})");
        }
    }
    if let Some(limit) = limit
        && info.segments > limit.max_parts
    {
        let _ = write!(
            msg,
            "; {} is over {}'s limit of {} parts",
            plural(info.segments, "segment"),
            limit.provider,
            limit.max_parts
        );
    }
    Some(msg)
}

/// An error message when the text needs more parts than `max_parts`.
pub fn part_limit_error(info: &SegmentInfo, max_parts: u32) -> Option<String> {
    if info.fits_in(max_parts) {
        return None;
    }
    let per_part = info.encoding.multi_part_units();
    let unit = match info.encoding {
        Encoding::Gsm7 => "septets",
        Encoding::Ucs2 => "UTF-16 code units",
    };
    Some(format!(
        "message needs {} but at most {} are sent: {} {} of text, {} per part in {}; shorten it to at most {} {}",
        plural(info.segments, "part"),
        max_parts,
        info.units,
        unit,
        per_part,
        info.encoding,
        u64::from(per_part) * u64::from(max_parts),
        unit
    ))
}
