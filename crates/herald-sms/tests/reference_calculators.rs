//! Differential test against two public SMS calculators run with node: `split-sms` and Twilio's
//! `sms-segments-calculator` (tests/reference/calc.js). Install them once with
//!
//! ```sh
//! npm ci --prefix crates/herald-sms/tests/reference
//! ```
//!
//! Without node or without tests/reference/node_modules the tests print why and pass without
//! comparing, unless `HERALD_REQUIRE_REFERENCE=1` is set (CI), which makes that a failure. Where a reference departs from GSM 03.38 / providers.md herald follows providers.md;
//! the known departures are asserted in `twilio_divergences_documented_in_docs_sms_md`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use herald_sms::{GSM7_BASIC, GSM7_EXTENSION, inspect};
use serde_json::Value;

fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/reference")
}

/// Runs calc.js over `texts`, or says why it cannot.
fn run_reference(texts: &[String]) -> Result<Vec<Value>, String> {
    let dir = reference_dir();
    if !dir.join("node_modules/split-sms").is_dir()
        || !dir.join("node_modules/sms-segments-calculator").is_dir()
    {
        return Err(format!(
            "{}/node_modules is absent: run `npm ci --prefix crates/herald-sms/tests/reference`",
            dir.display()
        ));
    }
    let mut child = match Command::new("node")
        .arg("calc.js")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Err(format!("cannot run node: {e}")),
    };
    let input = serde_json::to_vec(texts).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "calc.js failed: {}", String::from_utf8_lossy(&out.stderr));
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results.len(), texts.len());
    Ok(results)
}

/// Says why the comparison did not run, on stderr directly so `cargo test` shows it without
/// `--nocapture`; with `HERALD_REQUIRE_REFERENCE=1` (for CI) a missing reference fails instead.
fn skip(why: &str) {
    if std::env::var_os("HERALD_REQUIRE_REFERENCE").is_some_and(|v| v == "1") {
        panic!("HERALD_REQUIRE_REFERENCE=1 but {why}");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED reference calculator comparison: {why}");
}

/// splitmix64: a fixed, dependency-free generator so the corpus is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

const NON_GSM_BMP: &[char] = &[
    'ç', '`', 'ж', '’', '“', '–', '…', '中', 'á', 'ê', 'ő', 'ą', 'ß', 'ā', '\u{a0}', '\t', 'Ж', '\u{0}',
    '\u{7f}', '\u{200b}', 'ﬁ', '한',
];
/// Astral characters that are one grapheme each (no modifiers, no joiners, no flags).
const ASTRAL: &[char] = &['😀', '👍', '🎉', '𝄞', '🚀', '𠀀', '💬'];
/// Sequences that are one grapheme of several code points.
const CLUSTERS: &[&str] = &["e\u{301}", "👍🏽", "🇫🇷", "👩\u{200d}💻", "\r\n", "❤\u{fe0f}"];

/// A corpus of texts around every boundary, in every mix of character kinds.
fn corpus() -> Vec<String> {
    let basic: Vec<char> = GSM7_BASIC.iter().copied().filter(|c| *c != '\u{1B}').collect();
    let ext: Vec<char> = GSM7_EXTENSION.iter().map(|(_, c)| *c).collect();
    let mut rng = Rng(0x5EED_0F4E_8A1D);
    let lengths = |rng: &mut Rng| -> usize {
        match rng.below(6) {
            0 => rng.below(40),
            1 => 150 + rng.below(20), // 160 / 153 septets
            2 => 60 + rng.below(20),  // 70 / 67 units
            3 => 128 + rng.below(12), // 134 units
            4 => 300 + rng.below(12), // 306 septets
            _ => rng.below(800),
        }
    };
    let mut texts: Vec<String> = vec![
        String::new(),
        "a".repeat(160),
        "a".repeat(161),
        "a".repeat(306),
        "a".repeat(307),
        "€".repeat(80),
        "€".repeat(81),
        format!("{}€", "a".repeat(152)),
        format!("{}€{}", "a".repeat(152), "b".repeat(20)),
        "ж".repeat(70),
        "ж".repeat(71),
        "ж".repeat(134),
        "ж".repeat(135),
        format!("{}😀{}", "ж".repeat(66), "ж".repeat(10)),
        "😀".repeat(35),
        "😀".repeat(36),
        format!("{}ç", "a".repeat(159)),
        "a`b".into(),
        "Ça va".into(),
        basic.iter().collect(),
        ext.iter().collect(),
    ];
    for profile in 0..6 {
        for _ in 0..500 {
            let n = lengths(&mut rng);
            let mut s = String::new();
            for _ in 0..n {
                let roll = rng.below(100);
                let c = match profile {
                    // Pure default alphabet.
                    0 => rng.pick(&basic),
                    // Default alphabet with many escape pairs.
                    1 if roll < 25 => rng.pick(&ext),
                    1 => rng.pick(&basic),
                    // GSM text with a rare non-GSM character.
                    2 if roll < 2 => rng.pick(NON_GSM_BMP),
                    2 if roll < 10 => rng.pick(&ext),
                    2 => rng.pick(&basic),
                    // UCS-2 text with emoji (surrogate pairs).
                    3 if roll < 20 => rng.pick(ASTRAL),
                    3 if roll < 40 => rng.pick(NON_GSM_BMP),
                    3 => rng.pick(&basic),
                    // Any mix, including multi-code-point graphemes.
                    4 if roll < 5 => {
                        s.push_str(rng.pick(CLUSTERS));
                        continue;
                    }
                    4 if roll < 15 => rng.pick(ASTRAL),
                    4 if roll < 25 => rng.pick(NON_GSM_BMP),
                    4 if roll < 35 => rng.pick(&ext),
                    4 => rng.pick(&basic),
                    // Random scalar values from the whole range.
                    _ => loop {
                        let cp =
                            if roll < 50 { rng.below(0x3000) as u32 } else { rng.below(0x11_0000) as u32 };
                        if let Some(c) = char::from_u32(cp) {
                            break c;
                        }
                    },
                };
                s.push(c);
            }
            texts.push(s);
        }
    }
    texts
}

fn ours(text: &str) -> (String, u64, u64) {
    let info = inspect(text);
    (info.encoding.as_str().to_owned(), u64::from(info.segments), u64::from(info.units))
}

fn theirs(v: &Value) -> (String, u64, u64) {
    (
        v["encoding"].as_str().unwrap().to_owned(),
        v["segments"].as_u64().unwrap(),
        v["units"].as_u64().unwrap(),
    )
}

fn show(text: &str) -> String {
    let s: String = text.chars().take(60).collect();
    format!("{s:?}{} ({} chars)", if text.chars().count() > 60 { "..." } else { "" }, text.chars().count())
}

#[test]
fn agrees_with_reference_calculators_over_a_corpus() {
    let texts = corpus();
    let results = match run_reference(&texts) {
        Ok(r) => r,
        Err(why) => return skip(&why),
    };
    let mut failures = Vec::new();
    let mut grapheme_divergences = 0;
    for (text, r) in texts.iter().zip(&results) {
        let mine = ours(text);
        let split_sms = theirs(&r["splitSms"]);
        if mine != split_sms {
            failures.push(format!("split-sms {split_sms:?} vs herald {mine:?}: {}", show(text)));
        }
        let twilio = theirs(&r["twilio"]);
        if mine != twilio {
            if r["twilio"]["multiCodepointGraphemes"].as_bool().unwrap() {
                // Twilio never splits a grapheme cluster across parts; herald, like providers.md,
                // only keeps escape pairs and surrogate pairs whole (docs/sms.md).
                grapheme_divergences += 1;
                assert_eq!(twilio.0, mine.0, "encoding differs: {}", show(text));
                assert_eq!(twilio.2, mine.2, "units differ: {}", show(text));
                assert!(twilio.1 >= mine.1, "Twilio needs fewer parts: {}", show(text));
            } else {
                failures.push(format!("twilio {twilio:?} vs herald {mine:?}: {}", show(text)));
            }
        }
    }
    let _ = writeln!(
        std::io::stderr(),
        "compared {} texts with split-sms and sms-segments-calculator; {} differ from Twilio only by keeping grapheme clusters whole",
        texts.len(),
        grapheme_divergences
    );
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn twilio_divergences_documented_in_docs_sms_md() {
    // 65 Cyrillic letters, a thumbs-up with a skin tone (two surrogate pairs, one grapheme cluster),
    // 65 more letters: 134 UTF-16 units.
    let text = format!("{}👍🏽{}", "ж".repeat(65), "ж".repeat(65));
    let results = match run_reference(std::slice::from_ref(&text)) {
        Ok(r) => r,
        Err(why) => return skip(&why),
    };
    // herald and split-sms cut between the two surrogate pairs: 65 + 2 = 67 | 2 + 65 = 67.
    assert_eq!(ours(&text), ("UCS2".to_owned(), 2, 134));
    assert_eq!(
        herald_sms::split_parts(&text),
        vec![format!("{}👍", "ж".repeat(65)), format!("🏽{}", "ж".repeat(65))]
    );
    assert_eq!(theirs(&results[0]["splitSms"]), ("UCS2".to_owned(), 2, 134));
    // Twilio moves the whole cluster to part two (65 | 4 + 63 | 2): one part more.
    assert_eq!(theirs(&results[0]["twilio"]), ("UCS2".to_owned(), 3, 134));
}
