//! E.164 normalisation: the cases the brief names and libphonenumber's example numbers for every
//! region (tests/fixtures/phone_examples.json, made by tests/fixtures/gen_phone_fixtures.py).

use herald_sms::{PhoneError, normalize_e164};
use serde_json::Value;

#[test]
fn the_usual_ways_people_type_numbers() {
    let ok = |n: &str, c: Option<&str>, want: &str| {
        assert_eq!(normalize_e164(n, c).as_deref(), Ok(want), "{n:?} with {c:?}");
    };
    ok("(415) 555-0100", Some("US"), "+14155550100");
    ok("415.555.0100", Some("us"), "+14155550100");
    ok("1 415 555 0100", Some("US"), "+14155550100");
    ok("+1 415 555 0100", None, "+14155550100");
    ok("+14155550100", Some("GB"), "+14155550100");
    ok("0044 20 7946 0018", None, "+442079460018");
    ok("0044 20 7946 0018", Some("US"), "+442079460018");
    ok("0044 20 7946 0018", Some("GB"), "+442079460018");
    ok("+44 20 7946 0018", None, "+442079460018");
    ok("+44 (0)20 7946 0018", None, "+442079460018");
    ok("020 7946 0018", Some("GB"), "+442079460018");
    ok("011 44 20 7946 0018", Some("US"), "+442079460018");
    ok("  +49 30 1234567  ", None, "+49301234567");
    ok("＋４４ ２０ ７９４６ ００１８", None, "+442079460018");
    ok("+33 6 12 34 56 78", None, "+33612345678");
    // A Rwandan national number that starts with 250, Rwanda's own calling code.
    ok("250 123 456", Some("RW"), "+250250123456");
    ok("0788 123 456", Some("RW"), "+250788123456");
}

#[test]
fn refusals_name_the_input_and_the_fix() {
    let err = |n: &str, c: Option<&str>| normalize_e164(n, c).unwrap_err();

    let e = err("(415) 555-0100", None);
    assert_eq!(e, PhoneError::NoCountryCode { input: "(415) 555-0100".into() });
    assert_eq!(
        e.to_string(),
        "'(415) 555-0100' has no country code: write it in E.164 (+1...) or set default_country in herald.toml"
    );
    assert_eq!(e.input(), "(415) 555-0100");

    assert_eq!(err("", None), PhoneError::Empty);
    assert_eq!(err("   ", Some("US")), PhoneError::Empty);
    assert!(matches!(err("+1 415 555", None), PhoneError::TooShort { region: Some(r), .. } if r == "US"));
    assert!(matches!(err("+44 20 7946 0018 1234 5678", None), PhoneError::TooLong { .. }));
    assert!(matches!(err("+999 123 4567", None), PhoneError::UnknownCountryCode { .. }));
    assert!(matches!(err("+0 123 4567", None), PhoneError::UnknownCountryCode { .. }));
    assert!(matches!(err("1-800-FLOWERS", Some("US")), PhoneError::InvalidCharacter { character: 'F', .. }));
    assert!(matches!(err("+1 212 555 0100 ext. 5", None), PhoneError::HasExtension { .. }));
    assert!(matches!(err("+1 212 555 0100 x5", None), PhoneError::HasExtension { .. }));
    assert!(matches!(err("12", Some("US")), PhoneError::NotANumber { .. }));
    assert!(matches!(err("+1 +415", None), PhoneError::InvalidCharacter { character: '+', .. }));
    assert!(matches!(err(&"1".repeat(100), Some("US")), PhoneError::InputTooLong { chars: 100, .. }));

    let e = err("555 0100", Some("XX"));
    assert_eq!(
        e.to_string(),
        "default country 'XX' is not a known ISO 3166-1 alpha-2 code: use one such as US, GB or DE (default_country in herald.toml)"
    );
    assert!(matches!(err("555 0100", Some("USA")), PhoneError::UnknownDefaultCountry { .. }));

    // Right length, but no US area code starts with 0 or 1.
    let e = err("(015) 555-0100", Some("US"));
    assert_eq!(
        e.to_string(),
        "'(015) 555-0100' is not a valid number in US (read as +10155550100): check the digits, or write it in E.164 with its country code if it is not a US number"
    );
    let e = err("+1 015 555 0100", None);
    assert_eq!(
        e.to_string(),
        "'+1 015 555 0100' is not a valid number in US (read as +10155550100): check the digits"
    );
}

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/phone_examples.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn example_numbers_of_every_region() {
    let fixture = fixture();
    let examples = fixture["examples"].as_array().unwrap();
    assert!(fixture["regions"].as_u64().unwrap() >= 50);
    assert!(examples.len() >= 100);
    let mut failures = Vec::new();
    for ex in examples {
        let s = |k: &str| ex[k].as_str().unwrap().to_owned();
        let (region, national, international, e164) =
            (s("region"), s("national"), s("international"), s("e164"));
        let want = Ok(e164.clone());
        let cases = [
            ("national with default country", normalize_e164(&national, Some(&region))),
            ("international", normalize_e164(&international, None)),
            ("international with default country", normalize_e164(&international, Some(&region))),
            ("E.164", normalize_e164(&e164, None)),
            ("00 prefix", normalize_e164(&format!("00{}", &e164[1..]), None)),
        ];
        for (how, got) in cases {
            if got != want {
                failures.push(format!("{region} {}: {how}: {got:?}, want {e164}", s("type")));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_result_reads_back_as_itself() {
    // Found by the property test: through GB's `00` prefix the parser accepted +7 811..., which it
    // refuses written in E.164. Both spellings must now agree.
    let via_prefix = herald_sms::normalize_e164("0078110000000", Some("GB"));
    let direct = herald_sms::normalize_e164("+78110000000", None);
    assert_eq!(via_prefix.is_ok(), direct.is_ok(), "{via_prefix:?} vs {direct:?}");
    if let Ok(e164) = via_prefix {
        assert_eq!(herald_sms::normalize_e164(&e164, None), Ok(e164));
    }
}
