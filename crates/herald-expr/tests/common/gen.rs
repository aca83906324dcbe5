//! A generator of well-typed random formulas, driven by a seed (shared by the fuzz test and the
//! differential test against formulon).

#![allow(dead_code)]

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ty {
    Text,
    Number,
    Boolean,
    Date,
    DateTime,
    Time,
}

/// Options: which features the generated formulas may use.
#[derive(Clone, Copy)]
pub struct Opts {
    /// Use `$Record.*` references.
    pub refs: bool,
    /// Use null literals and null fields.
    pub nulls: bool,
    /// Use DateTime/Time and the clock (TODAY, NOW).
    pub clock: bool,
    /// Use operations whose results are approximations or text formats that differ by design.
    pub inexact: bool,
}

pub struct Gen<'a> {
    pub rng: &'a mut Rng,
    pub opts: Opts,
}

const WORDS: &[&str] = &[
    "\"\"",
    "\"a\"",
    "\"Ada\"",
    "\"hello world\"",
    "\"ABC\"",
    "\" pad \"",
    "\"a;b;c\"",
    "\"42\"",
    "\"-3.5\"",
    "\"x-y-z\"",
    "\"Été\"",
];

impl Gen<'_> {
    fn int(&mut self, lo: i64, hi: i64) -> String {
        let v = lo + self.rng.below((hi - lo + 1) as u64) as i64;
        if v < 0 { format!("({v})") } else { v.to_string() }
    }

    pub fn expr(&mut self, ty: Ty, depth: u32) -> String {
        if depth == 0 || self.rng.below(4) == 0 {
            return self.leaf(ty);
        }
        let d = depth - 1;
        match ty {
            Ty::Number => match self.rng.below(16) {
                0 => format!("{} + {}", self.expr(Ty::Number, d), self.expr(Ty::Number, d)),
                1 => format!("{} - {}", self.expr(Ty::Number, d), self.expr(Ty::Number, d)),
                2 => format!("{} * {}", self.expr(Ty::Number, d), self.expr(Ty::Number, d)),
                3 => format!("ROUND({} / {}, 6)", self.expr(Ty::Number, d), self.int(1, 9)),
                4 => format!("ABS({})", self.expr(Ty::Number, d)),
                5 => format!("ROUND({}, {})", self.expr(Ty::Number, d), self.int(0, 3)),
                6 => format!("LEN({})", self.expr(Ty::Text, d)),
                7 => format!("MOD({}, {})", self.expr(Ty::Number, d), self.int(1, 7)),
                8 => format!("MAX({}, {})", self.expr(Ty::Number, d), self.expr(Ty::Number, d)),
                9 => format!("MIN({}, {})", self.expr(Ty::Number, d), self.expr(Ty::Number, d)),
                10 => format!(
                    "IF({}, {}, {})",
                    self.expr(Ty::Boolean, d),
                    self.expr(Ty::Number, d),
                    self.expr(Ty::Number, d)
                ),
                11 => format!("FIND({}, {})", self.expr(Ty::Text, d), self.expr(Ty::Text, d)),
                12 => format!("YEAR({}) + MONTH({0}) + DAY({0})", self.expr(Ty::Date, d)),
                13 => format!("({})", self.expr(Ty::Number, d)),
                14 => format!(
                    "CASE({}, 1, {}, 2, {}, {})",
                    self.expr(Ty::Number, d),
                    self.expr(Ty::Number, d),
                    self.expr(Ty::Number, d),
                    self.expr(Ty::Number, d)
                ),
                _ => format!("FLOOR({}) + CEILING({})", self.expr(Ty::Number, d), self.expr(Ty::Number, d)),
            },
            Ty::Text => match self.rng.below(14) {
                0 => format!("{} & {}", self.expr(Ty::Text, d), self.expr(Ty::Text, d)),
                1 => format!("UPPER({})", self.expr(Ty::Text, d)),
                2 => format!("LOWER({})", self.expr(Ty::Text, d)),
                3 => format!("LEFT({}, {})", self.expr(Ty::Text, d), self.int(0, 6)),
                // formulon's RIGHT is wrong when n exceeds the length: keep n small there.
                4 if !self.opts.inexact => {
                    format!("RIGHT({}, {})", self.expr(Ty::Text, d), self.int(0, 1))
                }
                4 => format!("RIGHT({}, {})", self.expr(Ty::Text, d), self.int(0, 6)),
                5 => format!("MID({}, {}, {})", self.expr(Ty::Text, d), self.int(1, 5), self.int(0, 5)),
                6 => format!("TRIM({})", self.expr(Ty::Text, d)),
                7 => format!(
                    "SUBSTITUTE({}, {}, {})",
                    self.expr(Ty::Text, d),
                    self.rng.pick(&["\"a\"", "\"-\"", "\" \""]),
                    self.expr(Ty::Text, d)
                ),
                8 => format!(
                    "IF({}, {}, {})",
                    self.expr(Ty::Boolean, d),
                    self.expr(Ty::Text, d),
                    self.expr(Ty::Text, d)
                ),
                9 => format!("BLANKVALUE({}, {})", self.expr(Ty::Text, d), self.expr(Ty::Text, d)),
                10 => {
                    let pads: &[&str] = if self.opts.inexact { &["\"0\"", "\"xy\""] } else { &["\"0\""] };
                    format!("LPAD({}, {}, {})", self.expr(Ty::Text, d), self.int(0, 8), self.rng.pick(pads))
                }
                11 => {
                    let pads: &[&str] = if self.opts.inexact { &["\"0\"", "\"xy\""] } else { &["\"0\""] };
                    format!("RPAD({}, {}, {})", self.expr(Ty::Text, d), self.int(0, 8), self.rng.pick(pads))
                }
                12 if self.opts.inexact => format!("TEXT({})", self.expr(Ty::Number, d)),
                12 => format!("TEXT({})", self.int(-99, 99)),
                _ => format!(
                    "CASE({}, \"a\", {}, \"\", {}, {})",
                    self.expr(Ty::Text, d),
                    self.expr(Ty::Text, d),
                    self.expr(Ty::Text, d),
                    self.expr(Ty::Text, d)
                ),
            },
            Ty::Boolean => match self.rng.below(13) {
                0 => {
                    let op = self.rng.pick(&["=", "<>", "<", ">", "<=", ">="]);
                    format!("{} {op} {}", self.expr(Ty::Number, d), self.expr(Ty::Number, d))
                }
                1 => {
                    let op = self.rng.pick(&["=", "<>"]);
                    format!("{} {op} {}", self.expr(Ty::Text, d), self.expr(Ty::Text, d))
                }
                2 => format!("ISBLANK({})", self.expr(Ty::Text, d)),
                3 => format!("NOT({})", self.expr(Ty::Boolean, d)),
                4 => format!("AND({}, {})", self.expr(Ty::Boolean, d), self.expr(Ty::Boolean, d)),
                5 => format!("OR({}, {})", self.expr(Ty::Boolean, d), self.expr(Ty::Boolean, d)),
                6 => format!("CONTAINS({}, {})", self.expr(Ty::Text, d), self.expr(Ty::Text, d)),
                7 => format!("BEGINS({}, {})", self.expr(Ty::Text, d), self.expr(Ty::Text, d)),
                8 => format!("ISNUMBER({})", self.expr(Ty::Text, d)),
                9 => format!("{} && {}", self.expr(Ty::Boolean, d), self.expr(Ty::Boolean, d)),
                10 => format!("{} || {}", self.expr(Ty::Boolean, d), self.expr(Ty::Boolean, d)),
                11 => {
                    let op = self.rng.pick(&["=", "<>", "<", ">"]);
                    format!("{} {op} {}", self.expr(Ty::Date, d), self.expr(Ty::Date, d))
                }
                _ => format!("ISBLANK({})", self.expr(Ty::Number, d)),
            },
            Ty::Date => match self.rng.below(5) {
                0 => format!("{} + {}", self.expr(Ty::Date, d), self.int(-400, 400)),
                1 => format!("{} - {}", self.expr(Ty::Date, d), self.int(-400, 400)),
                // formulon does not keep the last day of a month in ADDMONTHS (Salesforce does).
                2 if self.opts.inexact => {
                    format!("ADDMONTHS({}, {})", self.expr(Ty::Date, d), self.int(-30, 30))
                }
                2 => format!("ADDMONTHS({}, {})", self.expr(Ty::Date, d), self.int(0, 0)),
                3 => format!(
                    "IF({}, {}, {})",
                    self.expr(Ty::Boolean, d),
                    self.expr(Ty::Date, d),
                    self.expr(Ty::Date, d)
                ),
                _ => format!("DATEVALUE(TEXT({}))", self.expr(Ty::Date, d)),
            },
            Ty::DateTime => match self.rng.below(3) {
                0 => format!("{} + {}", self.expr(Ty::DateTime, d), self.int(-30, 30)),
                1 => format!("{} - 1/24", self.expr(Ty::DateTime, d)),
                _ => format!("DATETIMEVALUE({})", self.expr(Ty::Date, d)),
            },
            Ty::Time => match self.rng.below(2) {
                0 => format!("{} + {}", self.expr(Ty::Time, d), self.int(0, 100_000_000)),
                _ => format!("TIMEVALUE({})", self.expr(Ty::DateTime, d)),
            },
        }
    }

    fn leaf(&mut self, ty: Ty) -> String {
        let o = self.opts;
        // (A null Date would make `null + 1` a Number: nulls only where the type is not inferred.)
        if o.nulls && matches!(ty, Ty::Text | Ty::Number | Ty::Boolean) && self.rng.below(12) == 0 {
            return "null".into();
        }
        match ty {
            Ty::Number => match self.rng.below(if o.refs { 6 } else { 4 }) {
                0 => self.int(-20, 20),
                1 => format!("{}.{}", self.rng.below(100), self.rng.below(100)),
                2 => self.int(0, 1000),
                3 => format!("{}.5", self.rng.below(6)),
                4 => "$Record.Amount".into(),
                _ => {
                    if o.nulls {
                        "$Record.Score".into()
                    } else {
                        "$Record.Amount".into()
                    }
                }
            },
            Ty::Text => {
                if o.refs && self.rng.below(3) == 0 {
                    let fields: &[&str] = if o.nulls {
                        &["$Record.Phone", "$Record.Name", "$Record.Blank"]
                    } else {
                        &["$Record.Phone", "$Record.Name"]
                    };
                    self.rng.pick(fields).to_string()
                } else {
                    self.rng.pick(WORDS).to_string()
                }
            }
            Ty::Boolean => self.rng.pick(&["true", "false"]).to_string(),
            Ty::Date => match self.rng.below(if o.refs { 3 } else { 2 }) {
                0 => format!("DATE({}, {}, {})", self.int(1990, 2030), self.int(1, 12), self.int(1, 28)),
                1 => {
                    if o.clock {
                        "TODAY()".into()
                    } else {
                        "DATE(2024, 2, 29)".into()
                    }
                }
                _ => "$Record.Day".into(),
            },
            Ty::DateTime => match self.rng.below(3) {
                0 if o.clock => "NOW()".into(),
                1 if o.refs => "$Record.At".into(),
                _ => "DATETIMEVALUE(\"2024-03-05 14:30:00\")".into(),
            },
            Ty::Time => match self.rng.below(2) {
                0 if o.refs => "$Record.Start".into(),
                _ => "TIMEVALUE(\"09:30:00.000\")".into(),
            },
        }
    }
}

pub const ALL_TYPES: [Ty; 6] = [Ty::Text, Ty::Number, Ty::Boolean, Ty::Date, Ty::DateTime, Ty::Time];
