use herald_sms::{Keyword, classify_keyword};

#[test]
fn every_listed_word_in_any_case() {
    let words = [
        (
            Keyword::OptOut,
            &["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"][..],
        ),
        (Keyword::OptIn, &["START", "UNSTOP", "YES"][..]),
        (Keyword::Help, &["HELP", "INFO"][..]),
    ];
    for (kind, list) in words {
        assert_eq!(kind.words(), list);
        for w in list {
            assert_eq!(classify_keyword(w), Some(kind), "{w}");
            assert_eq!(classify_keyword(&w.to_lowercase()), Some(kind), "{w}");
            let mixed: String = w
                .chars()
                .enumerate()
                .map(|(i, c)| if i % 2 == 0 { c.to_ascii_lowercase() } else { c })
                .collect();
            assert_eq!(classify_keyword(&mixed), Some(kind), "{mixed}");
        }
    }
}

#[test]
fn trimmed_and_trailing_punctuation_ignored() {
    assert_eq!(classify_keyword("  stop \n"), Some(Keyword::OptOut));
    assert_eq!(classify_keyword("\tStop."), Some(Keyword::OptOut));
    assert_eq!(classify_keyword("STOP!!"), Some(Keyword::OptOut));
    assert_eq!(classify_keyword("help?"), Some(Keyword::Help));
}

#[test]
fn anything_but_a_single_keyword_is_none() {
    for body in [
        "",
        "   ",
        "stop it",
        "please stop",
        "STOP ALL",
        "stopp",
        "st op",
        "yes please",
        "nonstop",
        "!",
        "STOP-",
        "¡STOP",
        "ＳＴＯＰ",
        "info@example.com",
        "stop\u{0}",
    ] {
        assert_eq!(classify_keyword(body), None, "{body:?}");
    }
}
