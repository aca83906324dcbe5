//! `warm_up` does the phone metadata's one-time work, so the next number is read at the usual speed.
//! Alone in its own test binary: the metadata is loaded once per process, and no other test may have
//! loaded it first.

use std::time::{Duration, Instant};

fn timed(work: impl FnOnce()) -> Duration {
    let started = Instant::now();
    work();
    started.elapsed()
}

#[test]
fn after_warm_up_the_first_numbers_are_read_without_the_metadata_load() {
    let warm_up = timed(|| herald_sms::warm_up(Some("GB")));
    let mut first = Duration::ZERO;
    for (number, country) in [("(415) 555-0101", "US"), ("07400 123456", "GB")] {
        first += timed(|| {
            herald_sms::normalize_e164(number, Some(country)).unwrap();
        });
    }
    // Loading the metadata is two orders of magnitude more work than reading two numbers; a tenth
    // leaves room for a busy machine.
    assert!(first * 10 < warm_up, "warm-up took {warm_up:?}, the two numbers after it {first:?}");
}
