//! Opt-out, opt-in and help keywords in inbound messages.

use serde::Serialize;

/// What an inbound message asks for when it is a keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Keyword {
    /// Stop sending to this number (must be honoured: US rules; 8x8 and Kixie do not do it for you).
    OptOut,
    /// Start sending again after an opt-out.
    OptIn,
    /// The sender asks for help.
    Help,
}

/// Words that opt out.
pub const OPT_OUT_WORDS: [&str; 8] =
    ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"];
/// Words that opt back in.
pub const OPT_IN_WORDS: [&str; 3] = ["START", "UNSTOP", "YES"];
/// Words that ask for help.
pub const HELP_WORDS: [&str; 2] = ["HELP", "INFO"];

impl Keyword {
    /// The words that mean this keyword, in upper case.
    pub fn words(self) -> &'static [&'static str] {
        match self {
            Keyword::OptOut => &OPT_OUT_WORDS,
            Keyword::OptIn => &OPT_IN_WORDS,
            Keyword::Help => &HELP_WORDS,
        }
    }
}

/// Classifies an inbound body that is a single keyword: blanks around it are trimmed, case does not
/// matter, and trailing `.`, `!` or `?` are ignored (`"Stop."`). Anything else (`"stop it"`,
/// `"please stop"`, `"STOP ALL"`) is `None`: a human should read it.
pub fn classify_keyword(body: &str) -> Option<Keyword> {
    let word = body.trim().trim_end_matches(['.', '!', '?']).trim_end();
    if word.is_empty() || word.len() > 16 || !word.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    [Keyword::OptOut, Keyword::OptIn, Keyword::Help]
        .into_iter()
        .find(|k| k.words().iter().any(|w| w.eq_ignore_ascii_case(word)))
}
