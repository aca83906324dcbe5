//! The function table: names, arities and signatures (the single list used for lookup, "did you
//! mean" hints and the documentation test).

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Func {
    // logical
    If,
    Case,
    And,
    Or,
    Not,
    IsBlank,
    IsNull,
    BlankValue,
    NullValue,
    IsPickval,
    IsNumber,
    Includes,
    IsChanged,
    PriorValue,
    // text
    Text,
    Value,
    Len,
    Left,
    Right,
    Mid,
    Lower,
    Upper,
    Proper,
    SmsSegments,
    SmsEncoding,
    E164,
    Trim,
    Substitute,
    Contains,
    Begins,
    Find,
    Lpad,
    Rpad,
    Regex,
    Hyperlink,
    Br,
    HtmlEncode,
    JsEncode,
    JsInHtmlEncode,
    UrlEncode,
    Reverse,
    Ascii,
    Chr,
    // math
    Abs,
    Ceiling,
    Floor,
    Round,
    Trunc,
    Mod,
    Max,
    Min,
    Sqrt,
    Exp,
    Ln,
    Log,
    // date and time
    Today,
    Now,
    TimeNow,
    Date,
    DateValue,
    DateTimeValue,
    TimeValue,
    Year,
    Month,
    Day,
    Weekday,
    IsoWeek,
    IsoYear,
    DayOfYear,
    AddMonths,
    Hour,
    Minute,
    Second,
    Millisecond,
    UnixTimestamp,
    FromUnixTime,
    // binary (named-credential formulas)
    Blob,
    Base64Encode,
    Base64Decode,
    Hex,
    Hash,
    Hmac,
}

/// One entry of the function table.
#[derive(Clone, Copy, Debug)]
pub struct FunctionInfo {
    pub name: &'static str,
    pub min_args: usize,
    /// `usize::MAX` for variadic functions.
    pub max_args: usize,
    /// Signature as documented, e.g. `LEFT(text: Text, n: Number) -> Text`.
    pub signature: &'static str,
    pub(crate) func: Func,
}

const V: usize = usize::MAX;

macro_rules! f {
    ($name:literal, $func:ident, $min:expr, $max:expr, $sig:literal) => {
        FunctionInfo { name: $name, func: Func::$func, min_args: $min, max_args: $max, signature: $sig }
    };
}

/// Every function the language knows.
pub static FUNCTIONS: &[FunctionInfo] = &[
    f!("IF", If, 3, 3, "IF(test: Boolean, then: T, else: T) -> T"),
    f!("CASE", Case, 4, V, "CASE(expr: T, value1: T, result1: R, ..., else: R) -> R"),
    f!("AND", And, 1, V, "AND(b1: Boolean, ...) -> Boolean"),
    f!("OR", Or, 1, V, "OR(b1: Boolean, ...) -> Boolean"),
    f!("NOT", Not, 1, 1, "NOT(b: Boolean) -> Boolean"),
    f!("ISBLANK", IsBlank, 1, 1, "ISBLANK(value: any) -> Boolean"),
    f!("ISNULL", IsNull, 1, 1, "ISNULL(value: any) -> Boolean"),
    f!("BLANKVALUE", BlankValue, 2, 2, "BLANKVALUE(value: T, substitute: T) -> T"),
    f!("NULLVALUE", NullValue, 2, 2, "NULLVALUE(value: T, substitute: T) -> T"),
    f!("ISPICKVAL", IsPickval, 2, 2, "ISPICKVAL(picklist: Text, value: Text) -> Boolean"),
    f!("ISNUMBER", IsNumber, 1, 1, "ISNUMBER(text: Text) -> Boolean"),
    f!("INCLUDES", Includes, 2, 2, "INCLUDES(multiselect: Text, value: Text) -> Boolean"),
    f!("ISCHANGED", IsChanged, 1, 1, "ISCHANGED($Record.Field) -> Boolean"),
    f!("PRIORVALUE", PriorValue, 1, 1, "PRIORVALUE($Record.Field) -> T"),
    f!("TEXT", Text, 1, 1, "TEXT(value: any) -> Text"),
    f!("VALUE", Value, 1, 1, "VALUE(text: Text) -> Number"),
    f!("LEN", Len, 1, 1, "LEN(text: Text) -> Number"),
    f!("LEFT", Left, 2, 2, "LEFT(text: Text, n: Number) -> Text"),
    f!("RIGHT", Right, 2, 2, "RIGHT(text: Text, n: Number) -> Text"),
    f!("MID", Mid, 3, 3, "MID(text: Text, start: Number, n: Number) -> Text"),
    f!("LOWER", Lower, 1, 2, "LOWER(text: Text [, locale: Text]) -> Text"),
    f!("UPPER", Upper, 1, 2, "UPPER(text: Text [, locale: Text]) -> Text"),
    f!("PROPER", Proper, 1, 1, "PROPER(text: Text) -> Text"),
    f!("SMSSEGMENTS", SmsSegments, 1, 1, "SMSSEGMENTS(text: Text) -> Number"),
    f!("SMSENCODING", SmsEncoding, 1, 1, "SMSENCODING(text: Text) -> Text"),
    f!("E164", E164, 1, 2, "E164(number: Text [, country: Text]) -> Text"),
    f!("TRIM", Trim, 1, 1, "TRIM(text: Text) -> Text"),
    f!("SUBSTITUTE", Substitute, 3, 3, "SUBSTITUTE(text: Text, old: Text, new: Text) -> Text"),
    f!("CONTAINS", Contains, 2, 2, "CONTAINS(text: Text, part: Text) -> Boolean"),
    f!("BEGINS", Begins, 2, 2, "BEGINS(text: Text, prefix: Text) -> Boolean"),
    f!("FIND", Find, 2, 3, "FIND(search: Text, text: Text [, start: Number]) -> Number"),
    f!("LPAD", Lpad, 2, 3, "LPAD(text: Text, length: Number [, pad: Text]) -> Text"),
    f!("RPAD", Rpad, 2, 3, "RPAD(text: Text, length: Number [, pad: Text]) -> Text"),
    f!("REGEX", Regex, 2, 2, "REGEX(text: Text, pattern: Text) -> Boolean"),
    f!("HYPERLINK", Hyperlink, 2, 3, "HYPERLINK(url: Text, label: Text [, target: Text]) -> Text"),
    f!("BR", Br, 0, 0, "BR() -> Text"),
    f!("HTMLENCODE", HtmlEncode, 1, 1, "HTMLENCODE(text: Text) -> Text"),
    f!("JSENCODE", JsEncode, 1, 1, "JSENCODE(text: Text) -> Text"),
    f!("JSINHTMLENCODE", JsInHtmlEncode, 1, 1, "JSINHTMLENCODE(text: Text) -> Text"),
    f!("URLENCODE", UrlEncode, 1, 1, "URLENCODE(text: Text) -> Text"),
    f!("REVERSE", Reverse, 1, 1, "REVERSE(text: Text) -> Text"),
    f!("ASCII", Ascii, 1, 1, "ASCII(text: Text) -> Number"),
    f!("CHR", Chr, 1, 1, "CHR(code: Number) -> Text"),
    f!("ABS", Abs, 1, 1, "ABS(n: Number) -> Number"),
    f!("CEILING", Ceiling, 1, 1, "CEILING(n: Number) -> Number"),
    f!("FLOOR", Floor, 1, 1, "FLOOR(n: Number) -> Number"),
    f!("ROUND", Round, 2, 2, "ROUND(n: Number, digits: Number) -> Number"),
    f!("TRUNC", Trunc, 1, 2, "TRUNC(n: Number [, digits: Number]) -> Number"),
    f!("MOD", Mod, 2, 2, "MOD(n: Number, divisor: Number) -> Number"),
    f!("MAX", Max, 1, V, "MAX(v1: T, ...) -> T (Number, Date, DateTime, Time)"),
    f!("MIN", Min, 1, V, "MIN(v1: T, ...) -> T (Number, Date, DateTime, Time)"),
    f!("SQRT", Sqrt, 1, 1, "SQRT(n: Number) -> Number"),
    f!("EXP", Exp, 1, 1, "EXP(n: Number) -> Number"),
    f!("LN", Ln, 1, 1, "LN(n: Number) -> Number"),
    f!("LOG", Log, 1, 1, "LOG(n: Number) -> Number"),
    f!("TODAY", Today, 0, 0, "TODAY() -> Date"),
    f!("NOW", Now, 0, 0, "NOW() -> DateTime"),
    f!("TIMENOW", TimeNow, 0, 0, "TIMENOW() -> Time"),
    f!("DATE", Date, 3, 3, "DATE(year: Number, month: Number, day: Number) -> Date"),
    f!("DATEVALUE", DateValue, 1, 1, "DATEVALUE(value: Text | DateTime | Date) -> Date"),
    f!("DATETIMEVALUE", DateTimeValue, 1, 1, "DATETIMEVALUE(value: Text | Date | DateTime) -> DateTime"),
    f!("TIMEVALUE", TimeValue, 1, 1, "TIMEVALUE(value: Text | DateTime | Time) -> Time"),
    f!("YEAR", Year, 1, 1, "YEAR(d: Date) -> Number"),
    f!("MONTH", Month, 1, 1, "MONTH(d: Date) -> Number"),
    f!("DAY", Day, 1, 1, "DAY(d: Date) -> Number"),
    f!("WEEKDAY", Weekday, 1, 1, "WEEKDAY(d: Date) -> Number"),
    f!("ISOWEEK", IsoWeek, 1, 1, "ISOWEEK(d: Date) -> Number"),
    f!("ISOYEAR", IsoYear, 1, 1, "ISOYEAR(d: Date) -> Number"),
    f!("DAYOFYEAR", DayOfYear, 1, 1, "DAYOFYEAR(d: Date) -> Number"),
    f!("ADDMONTHS", AddMonths, 2, 2, "ADDMONTHS(d: Date | DateTime, months: Number) -> Date | DateTime"),
    f!("HOUR", Hour, 1, 1, "HOUR(t: Time) -> Number"),
    f!("MINUTE", Minute, 1, 1, "MINUTE(t: Time) -> Number"),
    f!("SECOND", Second, 1, 1, "SECOND(t: Time) -> Number"),
    f!("MILLISECOND", Millisecond, 1, 1, "MILLISECOND(t: Time) -> Number"),
    f!("UNIXTIMESTAMP", UnixTimestamp, 1, 1, "UNIXTIMESTAMP(v: Date | DateTime | Time) -> Number"),
    f!("FROMUNIXTIME", FromUnixTime, 1, 1, "FROMUNIXTIME(seconds: Number) -> DateTime"),
    f!("BLOB", Blob, 1, 1, "BLOB(text: Text) -> Blob"),
    f!("BASE64ENCODE", Base64Encode, 1, 1, "BASE64ENCODE(data: Blob) -> Text"),
    f!("BASE64DECODE", Base64Decode, 1, 1, "BASE64DECODE(text: Text) -> Blob"),
    f!("HEX", Hex, 1, 1, "HEX(data: Blob) -> Text"),
    f!("HASH", Hash, 2, 2, "HASH(algorithm: Text, data: Blob) -> Blob"),
    f!("HMAC", Hmac, 3, 3, "HMAC(algorithm: Text, message: Blob, key: Blob) -> Blob"),
];

/// A digest algorithm of HASH and HMAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Digest {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

/// The names HASH and HMAC accept, for messages.
pub(crate) const DIGEST_NAMES: &str = "SHA-256, SHA-512, SHA-1 or MD5";

impl Digest {
    /// Parses an algorithm name, case-insensitively, ignoring `-` and `_`: `SHA-256`, `sha256`,
    /// `SHA-512`, `SHA-1`, `MD5`. For HMAC (`hmac` true) an `hmac` prefix is accepted too, as Apex
    /// writes them: `hmacSHA256`, `HmacSHA1`, `HMAC-SHA-512`.
    pub(crate) fn parse(name: &str, hmac: bool) -> Option<Digest> {
        let mut key: String =
            name.trim().chars().filter(|c| *c != '-' && *c != '_').collect::<String>().to_ascii_uppercase();
        if hmac && let Some(rest) = key.strip_prefix("HMAC") {
            key = rest.to_string();
        }
        match key.as_str() {
            "MD5" => Some(Digest::Md5),
            "SHA1" => Some(Digest::Sha1),
            "SHA256" => Some(Digest::Sha256),
            "SHA512" => Some(Digest::Sha512),
            _ => None,
        }
    }
}

pub(crate) fn lookup(name_upper: &str) -> Option<&'static FunctionInfo> {
    FUNCTIONS.iter().find(|f| f.name == name_upper)
}

/// The closest known function name, for "did you mean" hints.
pub(crate) fn suggest(name_upper: &str) -> Option<&'static str> {
    let mut best: Option<(f64, &'static str)> = None;
    for f in FUNCTIONS {
        let score = strsim::jaro_winkler(name_upper, f.name);
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, f.name));
        }
    }
    best.filter(|(s, _)| *s >= 0.8).map(|(_, n)| n)
}
