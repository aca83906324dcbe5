//! Property tests: for random Unicode text, units, parts and segments agree.

use herald_sms::{Encoding, classify_keyword, inspect, is_e164, normalize_e164, split_parts};
use proptest::prelude::*;

/// Text biased toward the interesting characters: GSM basic, extension, non-GSM BMP, astral.
fn sms_text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        4 => proptest::char::range('a', 'z'),
        2 => prop::sample::select(vec!['€', '{', '}', '[', ']', '~', '|', '^', '\\', '\u{0C}']),
        1 => prop::sample::select(vec!['ç', '`', 'ж', '’', '\u{a0}', '中']),
        1 => prop::sample::select(vec!['😀', '👍', '𝄞', '\u{1F3FD}']),
        1 => any::<char>(),
    ];
    prop_oneof![
        prop::collection::vec(ch, 0..700).prop_map(|v| v.into_iter().collect()),
        any::<String>(),
        // Mostly GSM text so that GSM-7 multipart cases are common.
        prop::collection::vec(prop_oneof![9 => proptest::char::range('a', 'z'), 1 => Just('€')], 100..500)
            .prop_map(|v| v.into_iter().collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn units_and_segments_are_consistent(text in sms_text()) {
        let info = inspect(&text);
        let parts = split_parts(&text);
        prop_assert_eq!(parts.concat(), text.clone());
        prop_assert_eq!(info.segments as usize, parts.len());
        prop_assert!(!parts.is_empty());

        let all_gsm = text.chars().all(herald_sms::is_gsm7);
        prop_assert_eq!(info.encoding == Encoding::Gsm7, all_gsm);
        prop_assert_eq!(info.forcing_characters.is_empty(), all_gsm);

        let enc = info.encoding;
        let part_units: Vec<u32> = parts.iter().map(|p| enc.units(p).unwrap()).collect();
        prop_assert_eq!(part_units.iter().sum::<u32>(), info.units);
        if parts.len() == 1 {
            prop_assert!(info.units <= enc.single_part_units());
        } else {
            prop_assert!(info.units > enc.single_part_units());
            for (i, u) in part_units.iter().enumerate() {
                prop_assert!(*u <= enc.multi_part_units(), "part {} has {} units", i, u);
                prop_assert!(*u > 0);
            }
            // Greedy packing: a part only closes when the next character would not fit.
            for w in parts.windows(2) {
                let used = enc.units(&w[0]).unwrap();
                let next = enc.char_units(w[1].chars().next().unwrap()).unwrap();
                prop_assert!(used + next > enc.multi_part_units());
            }
        }
        if enc == Encoding::Ucs2 {
            prop_assert_eq!(info.units as usize, text.encode_utf16().count());
        }
        for f in &info.forcing_characters {
            prop_assert_eq!(text[f.byte_offset..].chars().next(), Some(f.character));
            prop_assert_eq!(text.chars().nth(f.char_index), Some(f.character));
        }
        let line: serde_json::Value = serde_json::from_str(&info.to_json_line()).unwrap();
        prop_assert_eq!(line["segments"].as_u64(), Some(u64::from(info.segments)));
        let _ = herald_sms::warning_for(&info, Some(herald_sms::PartLimit { provider: "any", max_parts: 10 }));
    }

    #[test]
    fn phone_normalisation_never_panics_and_only_returns_e164(
        s in prop_oneof![
            any::<String>(),
            "[+0-9 ()./x#-]{0,30}",
            "\\+?[0-9]{1,20}",
        ],
        country in prop::option::of(prop_oneof![Just("US".to_owned()), Just("GB".to_owned()), "[A-Za-z]{0,3}"]),
    ) {
        if let Ok(e164) = normalize_e164(&s, country.as_deref()) {
            prop_assert!(is_e164(&e164), "{:?} -> {:?}", s, e164);
            // Normalising is idempotent.
            prop_assert_eq!(normalize_e164(&e164, None), Ok(e164.clone()));
        }
    }

    #[test]
    fn keyword_classification_never_panics(s in any::<String>()) {
        let _ = classify_keyword(&s);
    }
}
