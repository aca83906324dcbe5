//! herald's GSM-7 tables against GSM 03.38 (3GPP TS 23.038 section 6.2.1), written out here
//! independently as code point -> GSM code.

use herald_sms::{GSM7_BASIC, GSM7_EXTENSION, Gsm7Code, gsm7_code, gsm7_septets, is_gsm7};

/// The default alphabet, row by row, as Unicode code points (0x1B, the escape, is `None`).
const BASIC: [Option<u32>; 128] = {
    const N: Option<u32> = None;
    let rows: [[u32; 16]; 8] = [
        [0x40, 0xA3, 0x24, 0xA5, 0xE8, 0xE9, 0xF9, 0xEC, 0xF2, 0xC7, 0x0A, 0xD8, 0xF8, 0x0D, 0xC5, 0xE5],
        [
            0x394, 0x5F, 0x3A6, 0x393, 0x39B, 0x3A9, 0x3A0, 0x3A8, 0x3A3, 0x398, 0x39E, 0, 0xC6, 0xE6, 0xDF,
            0xC9,
        ],
        [0x20, 0x21, 0x22, 0x23, 0xA4, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F],
        [0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F],
        [0xA1, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F],
        [0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0xC4, 0xD6, 0xD1, 0xDC, 0xA7],
        [0xBF, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F],
        [0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0xE4, 0xF6, 0xF1, 0xFC, 0xE0],
    ];
    let mut out = [N; 128];
    let mut i = 0;
    while i < 128 {
        out[i] = if i == 0x1B { None } else { Some(rows[i / 16][i % 16]) };
        i += 1;
    }
    out
};

/// The extension table: code after the escape -> code point.
const EXTENSION: [(u8, u32); 10] = [
    (0x0A, 0x0C),
    (0x14, 0x5E),
    (0x28, 0x7B),
    (0x29, 0x7D),
    (0x2F, 0x5C),
    (0x3C, 0x5B),
    (0x3D, 0x7E),
    (0x3E, 0x5D),
    (0x40, 0x7C),
    (0x65, 0x20AC),
];

#[test]
fn basic_table_matches_gsm_03_38_exactly() {
    for (code, expected) in BASIC.iter().enumerate() {
        match expected {
            Some(cp) => {
                let c = char::from_u32(*cp).unwrap();
                assert_eq!(GSM7_BASIC[code], c, "GSM7_BASIC[{code:#04x}]");
                assert_eq!(gsm7_code(c), Some(Gsm7Code::Basic(code as u8)), "{c:?}");
                assert_eq!(gsm7_septets(c), Some(1), "{c:?}");
            }
            None => {
                assert_eq!(GSM7_BASIC[code], '\u{1B}');
                assert!(!is_gsm7('\u{1B}'), "the escape itself is not a character");
            }
        }
    }
}

#[test]
fn extension_table_matches_gsm_03_38_exactly() {
    assert_eq!(GSM7_EXTENSION.len(), 10);
    for ((code, cp), (table_code, table_char)) in EXTENSION.iter().zip(GSM7_EXTENSION.iter()) {
        let c = char::from_u32(*cp).unwrap();
        assert_eq!((*code, c), (*table_code, *table_char));
        assert_eq!(gsm7_code(c), Some(Gsm7Code::Extended(*code)), "{c:?}");
        assert_eq!(gsm7_septets(c), Some(2), "{c:?} costs two septets");
    }
}

#[test]
fn no_other_character_is_gsm7() {
    let mut allowed: Vec<u32> = BASIC.iter().flatten().copied().collect();
    allowed.extend(EXTENSION.iter().map(|(_, cp)| *cp));
    let mut count = 0;
    for cp in 0..=0x10FFFFu32 {
        let Some(c) = char::from_u32(cp) else { continue };
        let expected = allowed.contains(&cp);
        assert_eq!(is_gsm7(c), expected, "U+{cp:04X}");
        count += usize::from(is_gsm7(c));
    }
    assert_eq!(count, 127 + 10);
}

#[test]
fn the_characters_providers_md_names() {
    assert!(!is_gsm7('`'), "backtick is not GSM-7");
    assert!(!is_gsm7('ç'), "lowercase c-cedilla is not GSM-7");
    assert!(is_gsm7('Ç'), "uppercase C-cedilla is GSM-7");
    assert_eq!(gsm7_septets('€'), Some(2));
    for c in ['\u{0C}', '^', '{', '}', '\\', '[', '~', ']', '|', '€'] {
        assert_eq!(gsm7_septets(c), Some(2), "{c:?}");
    }
}
