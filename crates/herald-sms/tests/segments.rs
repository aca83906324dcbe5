//! Encoding, units and parts at the boundaries providers.md lists.

use herald_sms::{
    Encoding, ForcingCharacter, PartLimit, inspect, part_limit_error, split_parts, split_parts_as,
    warning_for,
};

fn check(text: &str, encoding: Encoding, segments: u32, units: u32) {
    let info = inspect(text);
    assert_eq!(
        (info.encoding, info.segments, info.units),
        (encoding, segments, units),
        "text of {} chars",
        text.chars().count()
    );
    let parts = split_parts(text);
    assert_eq!(parts.len() as u32, segments);
    assert_eq!(parts.concat(), text);
}

fn part_units(parts: &[String], encoding: Encoding) -> Vec<u32> {
    parts.iter().map(|p| encoding.units(p).unwrap()).collect()
}

#[test]
fn empty_text_is_one_empty_part() {
    check("", Encoding::Gsm7, 1, 0);
    assert_eq!(split_parts(""), vec![String::new()]);
}

#[test]
fn gsm7_160_is_one_part_161_is_two() {
    check(&"a".repeat(160), Encoding::Gsm7, 1, 160);
    check(&"a".repeat(161), Encoding::Gsm7, 2, 161);
    let parts = split_parts(&"a".repeat(161));
    assert_eq!(part_units(&parts, Encoding::Gsm7), vec![153, 8]);
}

#[test]
fn gsm7_multipart_is_153_per_part() {
    check(&"a".repeat(306), Encoding::Gsm7, 2, 306);
    check(&"a".repeat(307), Encoding::Gsm7, 3, 307);
    check(&"a".repeat(153 * 10), Encoding::Gsm7, 10, 1530);
    check(&"a".repeat(153 * 10 + 1), Encoding::Gsm7, 11, 1531);
    let parts = split_parts(&"a".repeat(459));
    assert_eq!(part_units(&parts, Encoding::Gsm7), vec![153, 153, 153]);
}

#[test]
fn euro_costs_two_septets() {
    check("€", Encoding::Gsm7, 1, 2);
    check(&"€".repeat(80), Encoding::Gsm7, 1, 160);
    check(&"€".repeat(81), Encoding::Gsm7, 2, 162);
    check(&format!("{}€", "a".repeat(159)), Encoding::Gsm7, 2, 161);
}

#[test]
fn escape_pair_is_never_split_at_a_part_boundary() {
    // 152 septets then '€' (2): the pair would straddle 153, so it opens part two.
    let text = format!("{}€{}", "a".repeat(152), "b".repeat(20));
    check(&text, Encoding::Gsm7, 2, 174);
    let parts = split_parts(&text);
    assert_eq!(parts[0], "a".repeat(152));
    assert!(parts[1].starts_with('€'));
    assert_eq!(part_units(&parts, Encoding::Gsm7), vec![152, 22]);

    // Escape pairs all the way: 153 is odd, so every part carries 76 pairs (152 septets).
    let text = "{".repeat(200);
    check(&text, Encoding::Gsm7, 3, 400);
    assert_eq!(part_units(&split_parts(&text), Encoding::Gsm7), vec![152, 152, 96]);
}

#[test]
fn escape_pair_push_can_add_a_part() {
    // 305 septets fit two parts of 153 only if the pair at 152..154 can straddle: it cannot.
    let text = format!("{}^{}", "a".repeat(152), "a".repeat(152));
    check(&text, Encoding::Gsm7, 3, 306);
}

#[test]
fn ucs2_70_is_one_part_71_is_two() {
    check(&"ж".repeat(70), Encoding::Ucs2, 1, 70);
    check(&"ж".repeat(71), Encoding::Ucs2, 2, 71);
    assert_eq!(part_units(&split_parts(&"ж".repeat(71)), Encoding::Ucs2), vec![67, 4]);
}

#[test]
fn ucs2_multipart_is_67_per_part() {
    check(&"ж".repeat(134), Encoding::Ucs2, 2, 134);
    check(&"ж".repeat(135), Encoding::Ucs2, 3, 135);
    check(&"ж".repeat(670), Encoding::Ucs2, 10, 670);
}

#[test]
fn emoji_cost_two_units() {
    check("😀", Encoding::Ucs2, 1, 2);
    check(&"😀".repeat(35), Encoding::Ucs2, 1, 70);
    check(&"😀".repeat(36), Encoding::Ucs2, 2, 72);
}

#[test]
fn surrogate_pair_is_never_split_at_a_part_boundary() {
    // 66 units then an emoji (2): the pair would straddle 67, so it opens part two.
    let text = format!("{}😀{}", "ж".repeat(66), "ж".repeat(10));
    check(&text, Encoding::Ucs2, 2, 78);
    let parts = split_parts(&text);
    assert_eq!(parts[0], "ж".repeat(66));
    assert!(parts[1].starts_with('😀'));

    // Emoji all the way: every part holds 33 of them (66 units).
    let text = "😀".repeat(70);
    check(&text, Encoding::Ucs2, 3, 140);
    assert_eq!(part_units(&split_parts(&text), Encoding::Ucs2), vec![66, 66, 8]);
}

#[test]
fn one_non_gsm_character_turns_160_gsm_characters_into_three_parts() {
    let text = format!("{}ç", "a".repeat(159));
    let info = inspect(&text);
    assert_eq!((info.encoding, info.segments, info.units), (Encoding::Ucs2, 3, 160));
    assert_eq!(info.gsm7_segments, 1);
    assert_eq!(
        info.forcing_characters,
        vec![ForcingCharacter { character: 'ç', char_index: 159, byte_offset: 159 }]
    );
}

#[test]
fn backtick_and_lowercase_c_cedilla_force_ucs2_but_uppercase_does_not() {
    assert_eq!(inspect("a`b").encoding, Encoding::Ucs2);
    assert_eq!(inspect("ça").encoding, Encoding::Ucs2);
    assert_eq!(inspect("Ça").encoding, Encoding::Gsm7);
}

#[test]
fn gsm_characters_cost_one_unit_each_inside_ucs2() {
    // '€' is 2 septets in GSM-7 but one UTF-16 unit once the message is UCS-2.
    check("€ж", Encoding::Ucs2, 1, 2);
    check("{ж", Encoding::Ucs2, 1, 2);
}

#[test]
fn forcing_characters_report_char_index_and_byte_offset() {
    let info = inspect("né ça 😀!");
    let got: Vec<(char, usize, usize)> =
        info.forcing_characters.iter().map(|f| (f.character, f.char_index, f.byte_offset)).collect();
    // 'é' is GSM-7; 'ç' and the emoji are not.
    assert_eq!(got, vec![('ç', 3, 4), ('😀', 6, 8)]);
}

#[test]
fn split_parts_as_gsm7_refuses_non_gsm_text() {
    assert_eq!(split_parts_as("ça", Encoding::Gsm7), None);
    assert_eq!(split_parts_as("abc", Encoding::Ucs2), Some(vec!["abc".to_owned()]));
}

#[test]
fn a_ten_part_cap_refuses_the_eleventh_part() {
    const MAX_PARTS_8X8: u32 = 10;
    let ok = inspect(&"a".repeat(1530));
    assert!(ok.fits_in(MAX_PARTS_8X8));
    assert_eq!(part_limit_error(&ok, MAX_PARTS_8X8), None);
    let over = inspect(&"a".repeat(1531));
    assert!(!over.fits_in(MAX_PARTS_8X8));
    assert_eq!(
        part_limit_error(&over, MAX_PARTS_8X8).unwrap(),
        "message needs 11 parts but at most 10 are sent: 1531 septets of text, 153 per part in GSM7; shorten it to at most 1530 septets"
    );
}

#[test]
fn json_line_matches_the_cli_contract() {
    assert_eq!(
        inspect("hello").to_json_line(),
        r#"{"encoding":"GSM7","segments":1,"units":5,"forcing_characters":[]}"#
    );
    assert_eq!(
        inspect("garçon 😀").to_json_line(),
        r#"{"encoding":"UCS2","segments":1,"units":9,"forcing_characters":[{"character":"ç","index":3},{"character":"😀","index":7}]}"#
    );
    let v: serde_json::Value = serde_json::from_str(&inspect("a\u{1}b").to_json_line()).unwrap();
    assert_eq!(v["forcing_characters"][0]["character"], "\u{1}");
}

#[test]
fn serde_serialisation_uses_8x8_encoding_names() {
    assert_eq!(serde_json::to_string(&Encoding::Gsm7).unwrap(), r#""GSM7""#);
    assert_eq!(serde_json::to_string(&Encoding::Ucs2).unwrap(), r#""UCS2""#);
}

#[test]
fn warning_names_the_character_its_position_and_the_cost() {
    assert_eq!(warning_for(&inspect("plain text"), None), None);
    let text = format!("Hello {}ç", "a".repeat(153));
    assert_eq!(
        warning_for(&inspect(&text), None).unwrap(),
        "'ç' (U+00E7) at position 160 forces UCS-2: 3 segments instead of 1 (replace it with 'c' to stay in GSM-7)"
    );
    assert_eq!(
        warning_for(&inspect("Merci, ça va"), None).unwrap(),
        "'ç' (U+00E7) at position 8 forces UCS-2: still 1 segment, but a part now holds 70 code units instead of 160 characters (replace it with 'c' to stay in GSM-7)"
    );
    let many = format!("{} ’ça’ 😀", "x".repeat(100));
    assert_eq!(
        warning_for(&inspect(&many), None).unwrap(),
        "'’' (U+2019) at position 102 forces UCS-2 (with 3 more non-GSM-7 characters: 'ç' (U+00E7) at 103, '’' (U+2019) at 105, '😀' (U+1F600) at 107): 2 segments instead of 1 (replace it with \"'\")"
    );
    assert_eq!(
        warning_for(&inspect("no\u{a0}break"), None).unwrap(),
        "U+00A0 (invisible) at position 3 forces UCS-2: still 1 segment, but a part now holds 70 code units instead of 160 characters (replace it with ' ' to stay in GSM-7)"
    );
    let long = "ж".repeat(700);
    assert!(
        warning_for(&inspect(&long), Some(PartLimit { provider: "8x8 SMS", max_parts: 10 }))
            .unwrap()
            .ends_with("; 11 segments is over 8x8 SMS's limit of 10 parts")
    );
}
