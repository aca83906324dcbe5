//! The GSM 03.38 (3GPP TS 23.038) 7-bit default alphabet and its extension table.

/// The GSM 7-bit default alphabet, indexed by its 7-bit code.
///
/// Code `0x1B` is the escape to the extension table, not a character: it holds U+001B here only to keep
/// the table 128 entries long, and [`is_gsm7`] is false for U+001B.
#[rustfmt::skip]
pub const GSM7_BASIC: [char; 128] = [
    // 0x00
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
    // 0x10
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1B}', 'Æ', 'æ', 'ß', 'É',
    // 0x20
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
    // 0x30
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
    // 0x40
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
    // 0x50
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
    // 0x60
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
    // 0x70
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
];

/// The escape code that introduces a character of the extension table.
pub const GSM7_ESCAPE: u8 = 0x1B;

/// The 10 characters of the GSM 7-bit default alphabet extension table, with their code after the
/// escape. Each costs two septets (escape + code).
pub const GSM7_EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{0C}'), // form feed
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// Where a character sits in GSM 03.38.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Gsm7Code {
    /// In the default alphabet: one septet with this code.
    Basic(u8),
    /// In the extension table: two septets, the escape `0x1B` then this code.
    Extended(u8),
}

impl Gsm7Code {
    /// Septets the character costs: 1 for the default alphabet, 2 for the extension table.
    pub const fn septets(self) -> u32 {
        match self {
            Gsm7Code::Basic(_) => 1,
            Gsm7Code::Extended(_) => 2,
        }
    }
}

/// Lookup for U+0000..=U+00FF: 0 = not GSM-7, 1..=128 = basic code + 1, 0x100 | code = extension.
const LATIN1: [u16; 256] = build_latin1();

const fn build_latin1() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut code = 0;
    while code < 128 {
        let c = GSM7_BASIC[code] as u32;
        if code != GSM7_ESCAPE as usize && c < 256 {
            table[c as usize] = code as u16 + 1;
        }
        code += 1;
    }
    let mut i = 0;
    while i < GSM7_EXTENSION.len() {
        let (code, c) = GSM7_EXTENSION[i];
        if (c as u32) < 256 {
            table[c as usize] = 0x100 | code as u16;
        }
        i += 1;
    }
    table
}

/// The GSM 03.38 code of `c`, or `None` when `c` has no GSM-7 code and forces UCS-2.
pub const fn gsm7_code(c: char) -> Option<Gsm7Code> {
    let cp = c as u32;
    if cp < 256 {
        let v = LATIN1[cp as usize];
        return if v == 0 {
            None
        } else if v & 0x100 != 0 {
            Some(Gsm7Code::Extended((v & 0xFF) as u8))
        } else {
            Some(Gsm7Code::Basic((v - 1) as u8))
        };
    }
    match c {
        'Δ' => Some(Gsm7Code::Basic(0x10)),
        'Φ' => Some(Gsm7Code::Basic(0x12)),
        'Γ' => Some(Gsm7Code::Basic(0x13)),
        'Λ' => Some(Gsm7Code::Basic(0x14)),
        'Ω' => Some(Gsm7Code::Basic(0x15)),
        'Π' => Some(Gsm7Code::Basic(0x16)),
        'Ψ' => Some(Gsm7Code::Basic(0x17)),
        'Σ' => Some(Gsm7Code::Basic(0x18)),
        'Θ' => Some(Gsm7Code::Basic(0x19)),
        'Ξ' => Some(Gsm7Code::Basic(0x1A)),
        '€' => Some(Gsm7Code::Extended(0x65)),
        _ => None,
    }
}

/// Whether `c` can be sent in the GSM-7 default alphabet or its extension table.
pub const fn is_gsm7(c: char) -> bool {
    gsm7_code(c).is_some()
}

/// Septets `c` costs in GSM-7 (1 or 2), or `None` when it is not GSM-7.
pub const fn gsm7_septets(c: char) -> Option<u32> {
    match gsm7_code(c) {
        Some(code) => Some(code.septets()),
        None => None,
    }
}

/// A GSM-7 spelling for a common character that is not GSM-7 (typographic quotes and dashes, accented
/// letters missing from the alphabet, the backtick, no-break space, ...), used to suggest a fix.
pub fn gsm7_replacement(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '`' | '\u{B4}' => "'",
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' | '\u{AB}' | '\u{BB}' => "\"",
        '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}' | '\u{2212}' => "-",
        '\u{2026}' => "...",
        '\u{A0}' | '\u{2002}' | '\u{2003}' | '\u{2009}' | '\u{202F}' | '\t' => " ",
        '\u{200B}' | '\u{FEFF}' | '\u{AD}' => "",
        '\u{2022}' => "*",
        'ç' => "c",
        'á' | 'â' | 'ã' | 'ā' => "a",
        'Á' | 'À' | 'Â' | 'Ã' | 'Ā' => "A",
        'ê' | 'ë' | 'ē' => "e",
        'È' | 'Ê' | 'Ë' | 'Ē' => "E",
        'í' | 'î' | 'ï' | 'ī' => "i",
        'Í' | 'Ì' | 'Î' | 'Ï' | 'Ī' => "I",
        'ó' | 'ô' | 'õ' | 'ō' => "o",
        'Ó' | 'Ò' | 'Ô' | 'Õ' | 'Ō' => "O",
        'ú' | 'û' | 'ū' => "u",
        'Ú' | 'Ù' | 'Û' | 'Ū' => "U",
        'ý' | 'ÿ' => "y",
        'Ý' | 'Ÿ' => "Y",
        _ => return None,
    })
}
