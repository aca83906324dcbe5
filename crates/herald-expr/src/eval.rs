//! Evaluator of typed expression trees.

use std::cmp::Ordering;
use std::sync::Arc;

use chrono::{
    DateTime, Datelike, Days, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone,
    Timelike, Utc,
};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, MathematicalOps, RoundingStrategy};

use crate::check::{Arith, Cmp, Expr, build_regex};
use crate::error::EvalError;
use crate::functions::{DIGEST_NAMES, Digest, Func};
use crate::value::{self, Type, Value, compare, equals};
use crate::{EvalContext, Scope};

type R = Result<Value, EvalError>;

const MS_PER_DAY: i64 = 86_400_000;

/// Longest Text a formula may produce, in bytes (guards memory against e.g. nested SUBSTITUTE).
pub(crate) const MAX_TEXT: usize = 1_000_000;

fn too_long() -> EvalError {
    EvalError::new(format!("Text result is longer than {MAX_TEXT} bytes"))
}

pub(crate) struct Ev<'a> {
    pub scope: &'a dyn Scope,
    pub cx: &'a EvalContext,
}

fn text(s: String) -> Value {
    Value::Text(Arc::from(s))
}

fn num(n: i64) -> Value {
    Value::Number(Decimal::from(n))
}

fn truthy(v: &Value) -> bool {
    matches!(v, Value::Boolean(true))
}

fn overflow() -> EvalError {
    EvalError::new("Number overflow: the result has more than 28 significant digits")
}

fn date_range() -> EvalError {
    EvalError::new("Date out of range")
}

/// Text view of a value where Null is the empty string (Salesforce's blank text).
fn s(v: &Value) -> &str {
    match v {
        Value::Text(t) => t,
        _ => "",
    }
}

fn int(d: Decimal) -> Result<i64, EvalError> {
    d.trunc().to_i64().ok_or_else(overflow)
}

/// Salesforce text equality: blank text equals null.
fn text_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Text(_) | Value::Null, Value::Text(_) | Value::Null) => s(a) == s(b),
        _ => equals(a, b),
    }
}

pub(crate) fn write_value_zoned(out: &mut String, v: &Value, cx: &EvalContext) {
    match v {
        Value::DateTime(dt) if cx.tz != chrono_tz::UTC => {
            use std::fmt::Write as _;
            let local = dt.with_timezone(&cx.tz);
            let _ = write!(out, "{}", local.format("%Y-%m-%d %H:%M:%S %Z"));
        }
        other => other.write_text(out),
    }
}

/// TEXT() of a value.
pub(crate) fn text_of(v: &Value) -> Value {
    match v {
        Value::Null => Value::Null,
        Value::Text(t) => Value::Text(t.clone()),
        Value::Number(d) => {
            let mut out = String::new();
            value::write_decimal(&mut out, d.normalize());
            text(out)
        }
        other => text(other.to_text()),
    }
}

impl Ev<'_> {
    pub fn eval(&self, e: &Expr) -> R {
        match e {
            Expr::Const(v) => Ok(v.clone()),
            Expr::Ref(id) => Ok(self.scope.value(*id)),
            Expr::Not(x) => Ok(Value::Boolean(!truthy(&self.eval(x)?))),
            Expr::Neg(x) => match self.eval(x)? {
                Value::Number(n) => Ok(Value::Number(-n)),
                _ => Ok(Value::Null),
            },
            Expr::And(a, b) => Ok(Value::Boolean(truthy(&self.eval(a)?) && truthy(&self.eval(b)?))),
            Expr::Or(a, b) => Ok(Value::Boolean(truthy(&self.eval(a)?) || truthy(&self.eval(b)?))),
            Expr::Cmp(op, textual, a, b) => {
                let (a, b) = (self.eval(a)?, self.eval(b)?);
                Ok(Value::Boolean(cmp(*op, *textual, &a, &b)))
            }
            Expr::Concat(a, b) => {
                let (a, b) = (self.eval(a)?, self.eval(b)?);
                in_range(concat(&a, &b))
            }
            Expr::Arith(op, a, b) => {
                let (a, b) = (self.eval(a)?, self.eval(b)?);
                arith(*op, &a, &b).and_then(in_range)
            }
            Expr::If(c, a, b) => {
                if truthy(&self.eval(c)?) {
                    self.eval(a)
                } else {
                    self.eval(b)
                }
            }
            Expr::Case(subject, textual, pairs, els) => {
                let v = self.eval(subject)?;
                for (k, r) in pairs {
                    let k = self.eval(k)?;
                    let hit = if *textual { text_eq(&v, &k) } else { equals(&v, &k) };
                    if hit {
                        return self.eval(r);
                    }
                }
                self.eval(els)
            }
            Expr::RegexConst(t, re) => {
                let t = self.eval(t)?;
                Ok(Value::Boolean(re.is_match(s(&t))))
            }
            Expr::Changed(cur, prior, textual) => {
                let (a, b) = (self.scope.value(*cur), self.scope.value(*prior));
                let same = if *textual { text_eq(&a, &b) } else { equals(&a, &b) };
                Ok(Value::Boolean(!same))
            }
            Expr::Call(f, ty, args) => self.call(*f, *ty, args).and_then(in_range),
        }
    }

    fn arg(&self, args: &[Expr], i: usize) -> R {
        match args.get(i) {
            Some(e) => self.eval(e),
            None => Ok(Value::Null),
        }
    }

    fn call(&self, f: Func, ty: Type, args: &[Expr]) -> R {
        let a0 = || self.arg(args, 0);
        let a1 = || self.arg(args, 1);
        let a2 = || self.arg(args, 2);
        // Evaluates argument `i` as a Number; returns Null from the function when it is null.
        macro_rules! n {
            ($i:expr) => {
                match self.arg(args, $i)? {
                    Value::Number(n) => n,
                    _ => return Ok(Value::Null),
                }
            };
        }
        macro_rules! d {
            ($i:expr) => {
                match self.arg(args, $i)? {
                    Value::Date(d) => d,
                    _ => return Ok(Value::Null),
                }
            };
        }
        macro_rules! tm {
            ($i:expr) => {
                match self.arg(args, $i)? {
                    Value::Time(t) => t,
                    _ => return Ok(Value::Null),
                }
            };
        }
        // Bytes of argument `i` (a Blob, or a Text as UTF-8), bound to `$v`; the function returns
        // Null when the argument is null.
        macro_rules! by {
            ($v:ident, $i:expr) => {
                let $v = self.arg(args, $i)?;
                let $v: &[u8] = match &$v {
                    Value::Blob(b) => b,
                    Value::Text(t) => t.as_bytes(),
                    _ => return Ok(Value::Null),
                };
            };
        }
        // Text argument `i`; Null when the text is null (the function then returns Null).
        macro_rules! t {
            ($i:expr) => {
                match self.arg(args, $i)? {
                    Value::Text(t) => t,
                    _ => return Ok(Value::Null),
                }
            };
        }
        match f {
            Func::If | Func::Case | Func::IsChanged | Func::PriorValue => Ok(Value::Null),
            Func::And => {
                for a in args {
                    if !truthy(&self.eval(a)?) {
                        return Ok(Value::Boolean(false));
                    }
                }
                Ok(Value::Boolean(true))
            }
            Func::Or => {
                for a in args {
                    if truthy(&self.eval(a)?) {
                        return Ok(Value::Boolean(true));
                    }
                }
                Ok(Value::Boolean(false))
            }
            Func::Not => Ok(Value::Boolean(!truthy(&a0()?))),
            Func::IsBlank => Ok(Value::Boolean(a0()?.is_blank())),
            Func::IsNull => Ok(Value::Boolean(a0()?.is_null())),
            Func::BlankValue => {
                let v = a0()?;
                if v.is_blank() { a1() } else { Ok(v) }
            }
            Func::NullValue => {
                let v = a0()?;
                if v.is_null() { a1() } else { Ok(v) }
            }
            Func::IsPickval => {
                let (a, b) = (a0()?, a1()?);
                Ok(Value::Boolean(text_eq(&a, &b)))
            }
            Func::IsNumber => {
                let v = a0()?;
                Ok(Value::Boolean(parse_number_text(s(&v)).is_some()))
            }
            Func::Includes => {
                let (list, v) = (a0()?, a1()?);
                let v = s(&v);
                Ok(Value::Boolean(!v.is_empty() && s(&list).split(';').any(|item| item.trim() == v)))
            }
            Func::Text => Ok(text_of(&a0()?)),
            Func::Value => {
                let v = a0()?;
                let t = s(&v).trim();
                if t.is_empty() {
                    return Ok(Value::Null);
                }
                parse_number_text(t).map(Value::Number).ok_or_else(|| {
                    EvalError::new(format!(
                        "VALUE: {} is not a number",
                        serde_json::Value::String(t.chars().take(40).collect())
                    ))
                })
            }
            Func::Len => Ok(num(s(&a0()?).chars().count() as i64)),
            Func::Left => {
                let t = t!(0);
                let n = count(n!(1));
                Ok(text(t.chars().take(n).collect()))
            }
            Func::Right => {
                let t = t!(0);
                let n = count(n!(1));
                let len = t.chars().count();
                Ok(text(t.chars().skip(len.saturating_sub(n)).collect()))
            }
            Func::Mid => {
                let t = t!(0);
                let start = n!(1);
                let n = count(n!(2));
                let start = if start < Decimal::ONE { 0 } else { count(start) - 1 };
                Ok(text(t.chars().skip(start).take(n).collect()))
            }
            Func::Lower => Ok(text(t!(0).to_lowercase())),
            Func::Upper => Ok(text(t!(0).to_uppercase())),
            Func::Proper => Ok(text(proper_case(&t!(0)))),
            Func::SmsSegments => Ok(num(i64::from(herald_sms::inspect(&t!(0)).segments))),
            Func::SmsEncoding => Ok(text(herald_sms::inspect(&t!(0)).encoding.as_str().to_string())),
            Func::E164 => {
                let number = t!(0);
                let country = match args.len() > 1 {
                    true => match self.arg(args, 1)? {
                        Value::Text(country) => Some(country),
                        _ => None,
                    },
                    false => None,
                };
                // A number that cannot be valid is null, so a flow can test it with ISBLANK.
                Ok(herald_sms::normalize_e164(&number, country.as_deref()).map_or(Value::Null, text))
            }
            Func::Trim => Ok(text(t!(0).trim().to_string())),
            Func::Substitute => {
                let t = t!(0);
                let (old, new) = (a1()?, a2()?);
                let (old, new) = (s(&old), s(&new));
                if old.is_empty() {
                    return Ok(Value::Text(t));
                }
                if new.len() > old.len() {
                    let hits = t.matches(old).count();
                    let grown = hits.saturating_mul(new.len() - old.len());
                    if t.len().saturating_add(grown) > MAX_TEXT {
                        return Err(too_long());
                    }
                }
                Ok(text(t.replace(old, new)))
            }
            Func::Contains => {
                let (a, b) = (a0()?, a1()?);
                Ok(Value::Boolean(s(&a).contains(s(&b))))
            }
            Func::Begins => {
                let (a, b) = (a0()?, a1()?);
                Ok(Value::Boolean(s(&a).starts_with(s(&b))))
            }
            Func::Find => {
                let (needle, hay) = (a0()?, a1()?);
                let start = if args.len() > 2 {
                    match a2()? {
                        Value::Number(n) => n,
                        _ => Decimal::ONE,
                    }
                } else {
                    Decimal::ONE
                };
                let (needle, hay) = (s(&needle), s(&hay));
                if needle.is_empty() || start < Decimal::ONE {
                    return Ok(num(0));
                }
                let skip = count(start) - 1;
                let Some((byte_start, _)) = hay.char_indices().nth(skip) else {
                    return Ok(num(0));
                };
                match hay[byte_start..].find(needle) {
                    Some(i) => {
                        let pos = hay[..byte_start + i].chars().count() + 1;
                        Ok(num(pos as i64))
                    }
                    None => Ok(num(0)),
                }
            }
            Func::Lpad | Func::Rpad => {
                let t = a0()?;
                let n = count(n!(1));
                let pad = if args.len() > 2 { a2()? } else { Value::Null };
                let pad = match s(&pad) {
                    "" => " ",
                    p => p,
                };
                if n > MAX_TEXT / 4 {
                    return Err(EvalError::new(format!(
                        "{}: length {n} is too large (at most {})",
                        if f == Func::Lpad { "LPAD" } else { "RPAD" },
                        MAX_TEXT / 4
                    )));
                }
                Ok(text(self::pad(s(&t), n, pad, f == Func::Lpad)))
            }
            Func::Regex => {
                let (t, p) = (a0()?, a1()?);
                let re = build_regex(s(&p))
                    .map_err(|m| EvalError::new(format!("REGEX: invalid regular expression: {m}")))?;
                Ok(Value::Boolean(re.is_match(s(&t))))
            }
            Func::Hyperlink => {
                let (url, label) = (a0()?, a1()?);
                let target = if args.len() > 2 { a2()? } else { Value::Null };
                let target = match s(&target) {
                    "" => "_blank",
                    t => t,
                };
                Ok(text(format!(
                    "<a href=\"{}\" target=\"{}\">{}</a>",
                    html_encode(s(&url)),
                    html_encode(target),
                    html_encode(s(&label))
                )))
            }
            Func::Br => Ok(Value::text("<br>")),
            Func::HtmlEncode => Ok(text(html_encode(&t!(0)))),
            Func::JsEncode => Ok(text(js_encode(&t!(0)))),
            Func::JsInHtmlEncode => Ok(text(js_encode(&html_encode(&t!(0))))),
            Func::UrlEncode => Ok(text(url_encode(&t!(0)))),
            Func::Reverse => Ok(text(t!(0).chars().rev().collect())),
            Func::Ascii => {
                let t = t!(0);
                Ok(match t.chars().next() {
                    Some(c) => num(c as i64),
                    None => Value::Null,
                })
            }
            Func::Chr => {
                let n = n!(0);
                let c = n
                    .trunc()
                    .to_u32()
                    .and_then(char::from_u32)
                    .filter(|c| *c != '\0')
                    .ok_or_else(|| EvalError::new(format!("CHR: {n} is not a character code")))?;
                Ok(text(c.to_string()))
            }
            Func::Abs => Ok(Value::Number(n!(0).abs())),
            Func::Ceiling => {
                let n = n!(0);
                let r = if n.is_sign_negative() { -(n.abs().ceil()) } else { n.ceil() };
                Ok(Value::Number(r.normalize()))
            }
            Func::Floor => {
                let n = n!(0);
                let r = if n.is_sign_negative() { -(n.abs().floor()) } else { n.floor() };
                Ok(Value::Number(r.normalize()))
            }
            Func::Round => {
                let n = n!(0);
                let d = int(n!(1))?;
                round(n, d, RoundingStrategy::MidpointAwayFromZero).map(Value::Number)
            }
            Func::Trunc => {
                let n = n!(0);
                let d = if args.len() > 1 { int(n!(1))? } else { 0 };
                round(n, d, RoundingStrategy::ToZero).map(Value::Number)
            }
            Func::Mod => {
                let (a, b) = (n!(0), n!(1));
                if b.is_zero() {
                    return Err(EvalError::new("MOD: division by zero"));
                }
                a.checked_rem(b).map(Value::Number).ok_or_else(overflow)
            }
            Func::Max | Func::Min => {
                let mut best: Option<Value> = None;
                for a in args {
                    let v = self.eval(a)?;
                    if v.is_null() {
                        return Ok(Value::Null);
                    }
                    best = Some(match best {
                        None => v,
                        Some(b) => {
                            let ord = compare(&v, &b).unwrap_or(Ordering::Equal);
                            let take =
                                if f == Func::Max { ord == Ordering::Greater } else { ord == Ordering::Less };
                            if take { v } else { b }
                        }
                    });
                }
                Ok(best.unwrap_or(Value::Null))
            }
            Func::Sqrt => {
                let n = n!(0);
                if n.is_sign_negative() && !n.is_zero() {
                    return Err(EvalError::new(format!("SQRT of a negative number ({n})")));
                }
                n.sqrt().map(|r| Value::Number(r.normalize())).ok_or_else(overflow)
            }
            Func::Exp => {
                let n = n!(0);
                if n > Decimal::from(65) {
                    return Err(overflow());
                }
                if n < Decimal::from(-65) {
                    return Ok(Value::Number(Decimal::ZERO));
                }
                n.checked_exp().map(|r| Value::Number(approx(r))).ok_or_else(overflow)
            }
            Func::Ln | Func::Log => {
                let n = n!(0);
                if n <= Decimal::ZERO {
                    return Err(EvalError::new(format!(
                        "{} of a number that is not positive ({n})",
                        if f == Func::Ln { "LN" } else { "LOG" }
                    )));
                }
                let r = if f == Func::Ln { n.checked_ln() } else { n.checked_log10() };
                r.map(|r| Value::Number(approx(r))).ok_or_else(overflow)
            }
            Func::Today => Ok(Value::Date(self.cx.now.with_timezone(&self.cx.tz).date_naive())),
            Func::Now => Ok(Value::DateTime(self.cx.now)),
            Func::TimeNow => Ok(Value::Time(trim_time(self.cx.now.with_timezone(&self.cx.tz).time()))),
            Func::Date => {
                let (y, m, d) = (n!(0), n!(1), n!(2));
                let (yi, mi, di) = (int(y)?, int(m)?, int(d)?);
                let date = i32::try_from(yi)
                    .ok()
                    .zip(u32::try_from(mi).ok())
                    .zip(u32::try_from(di).ok())
                    .and_then(|((y, m), d)| NaiveDate::from_ymd_opt(y, m, d));
                date.map(Value::Date)
                    .ok_or_else(|| EvalError::new(format!("DATE({yi}, {mi}, {di}) is not a valid date")))
            }
            Func::DateValue => match a0()? {
                Value::Date(d) => Ok(Value::Date(d)),
                Value::DateTime(dt) => Ok(Value::Date(dt.with_timezone(&self.cx.tz).date_naive())),
                Value::Text(t) => {
                    if t.trim().is_empty() {
                        return Ok(Value::Null);
                    }
                    if let Some(d) = value::parse_date(&t) {
                        return Ok(Value::Date(d));
                    }
                    match self.datetime_text(&t) {
                        Some(dt) => Ok(Value::Date(dt.with_timezone(&self.cx.tz).date_naive())),
                        None => Err(EvalError::new(format!(
                            "DATEVALUE: {} is not a date (expected YYYY-MM-DD)",
                            quote(&t)
                        ))),
                    }
                }
                _ => Ok(Value::Null),
            },
            Func::DateTimeValue => match a0()? {
                Value::DateTime(dt) => Ok(Value::DateTime(dt)),
                Value::Date(d) => {
                    self.local_to_utc(d.and_time(NaiveTime::MIN)).map(Value::DateTime).ok_or_else(date_range)
                }
                Value::Text(t) => {
                    if t.trim().is_empty() {
                        return Ok(Value::Null);
                    }
                    self.datetime_text(&t).map(Value::DateTime).ok_or_else(|| {
                        EvalError::new(format!(
                            "DATETIMEVALUE: {} is not a date-time (expected YYYY-MM-DD HH:MM:SS)",
                            quote(&t)
                        ))
                    })
                }
                _ => Ok(Value::Null),
            },
            Func::TimeValue => match a0()? {
                Value::Time(t) => Ok(Value::Time(t)),
                Value::DateTime(dt) => Ok(Value::Time(trim_time(dt.with_timezone(&self.cx.tz).time()))),
                Value::Text(t) => {
                    if t.trim().is_empty() {
                        return Ok(Value::Null);
                    }
                    value::parse_time(&t).map(|t| Value::Time(trim_time(t))).ok_or_else(|| {
                        EvalError::new(format!(
                            "TIMEVALUE: {} is not a time (expected HH:MM:SS.sss)",
                            quote(&t)
                        ))
                    })
                }
                _ => Ok(Value::Null),
            },
            Func::Year => Ok(num(d!(0).year() as i64)),
            Func::Month => Ok(num(d!(0).month() as i64)),
            Func::Day => Ok(num(d!(0).day() as i64)),
            Func::Weekday => Ok(num(d!(0).weekday().number_from_sunday() as i64)),
            Func::IsoWeek => Ok(num(d!(0).iso_week().week() as i64)),
            Func::IsoYear => Ok(num(d!(0).iso_week().year() as i64)),
            Func::DayOfYear => Ok(num(d!(0).ordinal() as i64)),
            Func::AddMonths => {
                let v = a0()?;
                let m = int(n!(1))?;
                match v {
                    Value::Date(d) => add_months(d, m).map(Value::Date).ok_or_else(date_range),
                    Value::DateTime(dt) => {
                        let n = dt.naive_utc();
                        add_months(n.date(), m)
                            .map(|d| Value::DateTime(d.and_time(n.time()).and_utc()))
                            .ok_or_else(date_range)
                    }
                    _ => Ok(Value::Null),
                }
            }
            Func::Hour => Ok(num(tm!(0).hour() as i64)),
            Func::Minute => Ok(num(tm!(0).minute() as i64)),
            Func::Second => Ok(num(tm!(0).second() as i64)),
            Func::Millisecond => Ok(num((tm!(0).nanosecond() / 1_000_000) as i64)),
            Func::UnixTimestamp => match a0()? {
                Value::Date(d) => Ok(num(d.and_time(NaiveTime::MIN).and_utc().timestamp())),
                Value::DateTime(dt) => Ok(num(dt.timestamp())),
                Value::Time(t) => Ok(num(t.num_seconds_from_midnight() as i64)),
                _ => Ok(Value::Null),
            },
            Func::FromUnixTime => {
                let n = n!(0);
                let ms = n
                    .checked_mul(Decimal::from(1000))
                    .and_then(|m| m.round().to_i64())
                    .ok_or_else(date_range)?;
                DateTime::<Utc>::from_timestamp_millis(ms).map(Value::DateTime).ok_or_else(date_range)
            }
            // The binary functions never quote an argument in an error: in credential formulas the
            // arguments are secrets.
            Func::Blob => Ok(Value::Blob(Arc::from(t!(0).as_bytes()))),
            Func::Base64Encode => {
                by!(data, 0);
                if data.len().div_ceil(3).saturating_mul(4) > MAX_TEXT {
                    return Err(too_long());
                }
                use base64::Engine as _;
                Ok(text(base64::engine::general_purpose::STANDARD.encode(data)))
            }
            Func::Base64Decode => value::decode_base64(&t!(0))
                .map(|b| Value::Blob(Arc::from(b)))
                .ok_or_else(|| EvalError::new("BASE64DECODE: the text is not valid base64")),
            Func::Hex => {
                by!(data, 0);
                if data.len().saturating_mul(2) > MAX_TEXT {
                    return Err(too_long());
                }
                Ok(text(hex(data)))
            }
            Func::Hash => {
                let alg = self.digest(args, false, "HASH")?;
                by!(data, 1);
                let Some(alg) = alg else { return Ok(Value::Null) };
                Ok(Value::Blob(Arc::from(hash(alg, data))))
            }
            Func::Hmac => {
                let alg = self.digest(args, true, "HMAC")?;
                by!(message, 1);
                by!(key, 2);
                let Some(alg) = alg else { return Ok(Value::Null) };
                hmac(alg, message, key).map(|m| Value::Blob(Arc::from(m)))
            }
        }
        .inspect(|v| {
            debug_assert!(v.is_null() || v.type_of() == ty || ty == Type::Null);
        })
    }

    /// The algorithm (argument 0) of HASH / HMAC; None when it is null.
    fn digest(&self, args: &[Expr], hmac: bool, fname: &str) -> Result<Option<Digest>, EvalError> {
        match self.arg(args, 0)? {
            Value::Text(name) => Digest::parse(&name, hmac).map(Some).ok_or_else(|| {
                // Not quoted: the name may come from a reference holding a secret.
                EvalError::new(format!("{fname}: unknown algorithm (expected {DIGEST_NAMES})"))
            }),
            _ => Ok(None),
        }
    }

    fn local_to_utc(&self, ndt: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.cx.tz.from_local_datetime(&ndt) {
            LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
            LocalResult::None => {
                // In a daylight-saving gap: the same wall time one hour later.
                let later = ndt.checked_add_signed(TimeDelta::hours(1))?;
                self.cx.tz.from_local_datetime(&later).earliest().map(|t| t.with_timezone(&Utc))
            }
        }
    }

    /// `YYYY-MM-DD HH:MM:SS` (local to the context zone), `YYYY-MM-DD` (midnight), or RFC 3339.
    fn datetime_text(&self, t: &str) -> Option<DateTime<Utc>> {
        let t = t.trim();
        if (t.ends_with('Z') || t.contains('+') || t.get(19..).is_some_and(|r| r.contains('-')))
            && let Some(dt) = value::parse_datetime_json(t)
        {
            return Some(dt);
        }
        for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
            if let Ok(ndt) = NaiveDateTime::parse_from_str(t, f) {
                return self.local_to_utc(ndt);
            }
        }
        if let Some(d) = value::parse_date(t) {
            return self.local_to_utc(d.and_time(NaiveTime::MIN));
        }
        None
    }
}

/// Dates and date-times are kept within years 1 to 9999 (what `YYYY-MM-DD` can write).
/// Texts are at most MAX_TEXT bytes.
fn in_range(v: Value) -> R {
    let year = match &v {
        Value::Date(d) => d.year(),
        Value::DateTime(dt) => dt.year(),
        Value::Text(t) if t.len() > MAX_TEXT => return Err(too_long()),
        Value::Blob(b) if b.len() > MAX_TEXT => {
            return Err(EvalError::new(format!("Blob result is longer than {MAX_TEXT} bytes")));
        }
        _ => return Ok(v),
    };
    if (1..=9999).contains(&year) { Ok(v) } else { Err(date_range()) }
}

/// Significant digits kept by EXP, LN, LOG and `^` with a fractional exponent.
const APPROX_DIGITS: u32 = 15;

/// Rounds an approximate result (from exp/ln) to 15 significant digits, dropping the noise in the
/// last digits (`4 ^ 0.5` is 2, not 2.0000000000000000000000000003).
fn approx(d: Decimal) -> Decimal {
    let a = d.abs().normalize();
    if a.is_zero() {
        return Decimal::ZERO;
    }
    let digits = a.mantissa().unsigned_abs().to_string().len() as u32;
    let scale = a.scale();
    let dp = if digits > scale {
        // |d| >= 1: digits - scale integer digits.
        APPROX_DIGITS.saturating_sub(digits - scale)
    } else {
        // |d| < 1: scale - digits leading zeros after the point.
        (scale - digits + APPROX_DIGITS).min(28)
    };
    d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero).normalize()
}

fn quote(t: &str) -> String {
    serde_json::Value::String(t.chars().take(40).collect()).to_string()
}

/// Times keep millisecond precision, as Salesforce's Time does.
fn trim_time(t: NaiveTime) -> NaiveTime {
    let ns = t.nanosecond() % 1_000_000_000;
    t.with_nanosecond(ns / 1_000_000 * 1_000_000).unwrap_or(t)
}

/// A non-negative character count from a Number (negative -> 0, fraction dropped).
fn count(n: Decimal) -> usize {
    if n.is_sign_negative() { 0 } else { n.trunc().to_usize().unwrap_or(usize::MAX) }
}

fn pad(t: &str, n: usize, pad: &str, left: bool) -> String {
    let len = t.chars().count();
    if len >= n {
        return t.chars().take(n).collect();
    }
    let fill: String = pad.chars().cycle().take(n - len).collect();
    if left {
        fill + t
    } else {
        let mut out = t.to_string();
        out.push_str(&fill);
        out
    }
}

fn round(n: Decimal, digits: i64, strategy: RoundingStrategy) -> Result<Decimal, EvalError> {
    if digits >= 0 {
        let dp = digits.min(28) as u32;
        if n.scale() <= dp {
            return Ok(n);
        }
        Ok(n.round_dp_with_strategy(dp, strategy))
    } else {
        let k = (-digits).min(28) as u32;
        let p = Decimal::from_i128_with_scale(10i128.pow(k), 0);
        let q = n.checked_div(p).ok_or_else(overflow)?;
        q.round_dp_with_strategy(0, strategy).checked_mul(p).ok_or_else(overflow)
    }
}

/// Number parsing for VALUE and ISNUMBER: optional sign, digits, optional fraction, optional exponent.
fn parse_number_text(t: &str) -> Option<Decimal> {
    let t = t.trim();
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    if body.is_empty() || !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    if body == "." {
        return None;
    }
    value::parse_decimal(t)
}

fn add_months(d: NaiveDate, m: i64) -> Option<NaiveDate> {
    let last = |d: NaiveDate| {
        d.checked_add_months(Months::new(1))
            .and_then(|n| NaiveDate::from_ymd_opt(n.year(), n.month(), 1))
            .and_then(|f| f.pred_opt())
    };
    let is_last = last(d) == Some(d);
    let months = Months::new(u32::try_from(m.unsigned_abs()).ok()?);
    let r = if m >= 0 { d.checked_add_months(months)? } else { d.checked_sub_months(months)? };
    if is_last { last(r) } else { Some(r) }
}

fn cmp(op: Cmp, textual: bool, a: &Value, b: &Value) -> bool {
    match op {
        Cmp::Eq => {
            if textual {
                text_eq(a, b)
            } else {
                equals(a, b)
            }
        }
        Cmp::Ne => {
            if textual {
                !text_eq(a, b)
            } else {
                !equals(a, b)
            }
        }
        _ => {
            let ord =
                if textual && !(a.is_null() && b.is_null()) { Some(s(a).cmp(s(b))) } else { compare(a, b) };
            let Some(ord) = ord else { return false };
            match op {
                Cmp::Lt => ord == Ordering::Less,
                Cmp::Gt => ord == Ordering::Greater,
                Cmp::Le => ord != Ordering::Greater,
                _ => ord != Ordering::Less,
            }
        }
    }
}

fn concat(a: &Value, b: &Value) -> Value {
    let (x, y) = (s(a), s(b));
    if y.is_empty()
        && let Value::Text(t) = a
    {
        return Value::Text(t.clone());
    }
    if x.is_empty()
        && let Value::Text(t) = b
    {
        return Value::Text(t.clone());
    }
    let mut out = String::with_capacity(x.len() + y.len());
    out.push_str(x);
    out.push_str(y);
    text(out)
}

fn days_delta(n: Decimal) -> Result<TimeDelta, EvalError> {
    let ms = n
        .checked_mul(Decimal::from(MS_PER_DAY))
        .ok_or_else(date_range)?
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
        .to_i64()
        .ok_or_else(date_range)?;
    TimeDelta::try_milliseconds(ms).ok_or_else(date_range)
}

fn add_days(d: NaiveDate, n: Decimal) -> Result<NaiveDate, EvalError> {
    let days = n.trunc().to_i64().ok_or_else(date_range)?;
    let r = if days >= 0 {
        d.checked_add_days(Days::new(days as u64))
    } else {
        d.checked_sub_days(Days::new(days.unsigned_abs()))
    };
    r.ok_or_else(date_range)
}

fn add_ms(t: NaiveTime, n: Decimal) -> Result<NaiveTime, EvalError> {
    let ms = n
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
        .checked_rem(Decimal::from(MS_PER_DAY))
        .and_then(|r| r.to_i64())
        .ok_or_else(overflow)?;
    let cur = t.num_seconds_from_midnight() as i64 * 1000 + (t.nanosecond() / 1_000_000) as i64;
    let total = (cur + ms).rem_euclid(MS_PER_DAY);
    NaiveTime::from_num_seconds_from_midnight_opt((total / 1000) as u32, ((total % 1000) * 1_000_000) as u32)
        .ok_or_else(overflow)
}

fn time_ms(t: NaiveTime) -> i64 {
    t.num_seconds_from_midnight() as i64 * 1000 + (t.nanosecond() / 1_000_000) as i64
}

fn pow(a: Decimal, b: Decimal) -> Result<Decimal, EvalError> {
    if b.fract().is_zero() {
        let e = b.to_i64().ok_or_else(overflow)?;
        if a.is_zero() {
            if e < 0 {
                return Err(EvalError::new("Division by zero (0 to a negative power)"));
            }
            return Ok(if e == 0 { Decimal::ONE } else { Decimal::ZERO });
        }
        if a.abs() == Decimal::ONE {
            let neg = a.is_sign_negative() && e % 2 != 0;
            return Ok(if neg { -Decimal::ONE } else { Decimal::ONE });
        }
        if e.unsigned_abs() > 400 {
            // |a| != 1: the result is outside Decimal's range or below its precision.
            let grows = (a.abs() > Decimal::ONE) == (e > 0);
            return if grows { Err(overflow()) } else { Ok(Decimal::ZERO) };
        }
        return a.checked_powi(e).ok_or_else(overflow);
    }
    if a.is_sign_negative() && !a.is_zero() {
        return Err(EvalError::new(format!(
            "A negative number ({a}) to a fractional power has no real result"
        )));
    }
    if a.is_zero() {
        return if b.is_sign_negative() {
            Err(EvalError::new("Division by zero (0 to a negative power)"))
        } else {
            Ok(Decimal::ZERO)
        };
    }
    // a^b = exp(b * ln a), guarded against overflow of the exponent.
    let l = a.checked_ln().ok_or_else(overflow)?;
    let x = l.checked_mul(b).ok_or_else(overflow)?;
    if x > Decimal::from(65) {
        return Err(overflow());
    }
    if x < Decimal::from(-65) {
        return Ok(Decimal::ZERO);
    }
    x.checked_exp().map(approx).ok_or_else(overflow)
}

fn arith(op: Arith, a: &Value, b: &Value) -> R {
    use Value as V;
    if op == Arith::TextAdd {
        return Ok(concat(a, b));
    }
    if a.is_null() || b.is_null() {
        return Ok(V::Null);
    }
    match (op, a, b) {
        (Arith::Add, V::Number(x), V::Number(y)) => x.checked_add(*y).map(V::Number).ok_or_else(overflow),
        (Arith::Sub, V::Number(x), V::Number(y)) => x.checked_sub(*y).map(V::Number).ok_or_else(overflow),
        (Arith::Mul, V::Number(x), V::Number(y)) => x.checked_mul(*y).map(V::Number).ok_or_else(overflow),
        (Arith::Div, V::Number(x), V::Number(y)) => {
            if y.is_zero() {
                return Err(EvalError::new("Division by zero"));
            }
            x.checked_div(*y).map(|r| V::Number(r.normalize())).ok_or_else(overflow)
        }
        (Arith::Pow, V::Number(x), V::Number(y)) => pow(*x, *y).map(V::Number),
        (Arith::DatePlusDays, V::Date(d), V::Number(n)) | (Arith::DaysPlusDate, V::Number(n), V::Date(d)) => {
            add_days(*d, *n).map(V::Date)
        }
        (Arith::DateMinusDays, V::Date(d), V::Number(n)) => add_days(*d, -*n).map(V::Date),
        (Arith::DateDiff, V::Date(x), V::Date(y)) => Ok(num((*x - *y).num_days())),
        (Arith::DtPlusDays, V::DateTime(d), V::Number(n))
        | (Arith::DaysPlusDt, V::Number(n), V::DateTime(d)) => {
            d.checked_add_signed(days_delta(*n)?).map(V::DateTime).ok_or_else(date_range)
        }
        (Arith::DtMinusDays, V::DateTime(d), V::Number(n)) => {
            d.checked_sub_signed(days_delta(*n)?).map(V::DateTime).ok_or_else(date_range)
        }
        (Arith::DtDiff, V::DateTime(x), V::DateTime(y)) => {
            let ms = (*x - *y).num_milliseconds();
            let days = Decimal::from(ms).checked_div(Decimal::from(MS_PER_DAY)).ok_or_else(overflow)?;
            Ok(V::Number(days.normalize()))
        }
        (Arith::TimePlusMs, V::Time(t), V::Number(n)) | (Arith::MsPlusTime, V::Number(n), V::Time(t)) => {
            add_ms(*t, *n).map(V::Time)
        }
        (Arith::TimeMinusMs, V::Time(t), V::Number(n)) => add_ms(*t, -*n).map(V::Time),
        (Arith::TimeDiff, V::Time(x), V::Time(y)) => Ok(num(time_ms(*x) - time_ms(*y))),
        _ => Ok(V::Null),
    }
}

/// Lower-case base 16, as Salesforce's HEX() and Apex's EncodingUtil.convertToHex.
fn hex(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(data.len() * 2);
    for b in data {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

fn hash(alg: Digest, data: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    match alg {
        Digest::Md5 => md5::Md5::digest(data).to_vec(),
        Digest::Sha1 => sha1::Sha1::digest(data).to_vec(),
        Digest::Sha256 => sha2::Sha256::digest(data).to_vec(),
        Digest::Sha512 => sha2::Sha512::digest(data).to_vec(),
    }
}

/// HMAC (RFC 2104) of `message` under `key`.
fn hmac(alg: Digest, message: &[u8], key: &[u8]) -> Result<Vec<u8>, EvalError> {
    use hmac::Mac as _;
    macro_rules! mac {
        ($d:ty) => {{
            // HMAC takes a key of any length; the error branch is unreachable but not a panic.
            let mut m = hmac::Hmac::<$d>::new_from_slice(key)
                .map_err(|_| EvalError::new("HMAC: the key cannot be used"))?;
            m.update(message);
            m.finalize().into_bytes().to_vec()
        }};
    }
    Ok(match alg {
        Digest::Md5 => mac!(md5::Md5),
        Digest::Sha1 => mac!(sha1::Sha1),
        Digest::Sha256 => mac!(sha2::Sha256),
        Digest::Sha512 => mac!(sha2::Sha512),
    })
}

pub(crate) fn html_encode(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn js_encode(t: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// `application/x-www-form-urlencoded` in UTF-8, as Salesforce's URLENCODE (Java's URLEncoder).
pub(crate) fn url_encode(t: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(t.len());
    for b in t.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => out.push(b as char),
            b' ' => out.push('+'),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Capitalizes the first letter of every word and lowercases the rest, as spreadsheet PROPER does.
fn proper_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word_start = true;
    for character in text.chars() {
        if character.is_alphabetic() {
            if word_start {
                out.extend(character.to_uppercase());
            } else {
                out.extend(character.to_lowercase());
            }
            word_start = false;
        } else {
            out.push(character);
            word_start = !(character == '\'' || character == '’');
        }
    }
    out
}
