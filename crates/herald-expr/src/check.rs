//! Type checker: untyped syntax tree -> typed expression tree, references resolved to slots.

use herald_codes::{self as codes, Code};
use std::sync::Arc;

use crate::error::CompileError;
use crate::functions::{self, DIGEST_NAMES, Digest, Func};
use crate::parse::{Ast, BinOp, Node, UnOp};
use crate::value::{Type, Value};
use crate::{RefId, Resolver};

/// Arithmetic with the operand types fixed at compile time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    TextAdd,
    DatePlusDays,
    DaysPlusDate,
    DateMinusDays,
    DateDiff,
    DtPlusDays,
    DaysPlusDt,
    DtMinusDays,
    DtDiff,
    TimePlusMs,
    MsPlusTime,
    TimeMinusMs,
    TimeDiff,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug)]
pub(crate) enum Expr {
    Const(Value),
    Ref(RefId),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// Comparison; `text` is true when both sides are Text (blank text equals null there).
    Cmp(Cmp, bool, Box<Expr>, Box<Expr>),
    Concat(Box<Expr>, Box<Expr>),
    Arith(Arith, Box<Expr>, Box<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// Subject, (value, result) pairs, else; `text` as in Cmp.
    Case(Box<Expr>, bool, Vec<(Expr, Expr)>, Box<Expr>),
    /// REGEX with a literal pattern, compiled once.
    RegexConst(Box<Expr>, Arc<regex::Regex>),
    /// ISCHANGED / PRIORVALUE: current and prior slot.
    Changed(RefId, RefId, bool),
    Call(Func, Type, Vec<Expr>),
}

pub(crate) struct Checker<'a> {
    pub resolver: &'a dyn Resolver,
    pub refs: Vec<RefId>,
}

type Checked = (Expr, Type);

fn unify(a: Type, b: Type) -> Option<Type> {
    if a == b {
        Some(a)
    } else if a == Type::Null {
        Some(b)
    } else if b == Type::Null {
        Some(a)
    } else {
        None
    }
}

/// The hint given where a Blob is used as text.
pub(crate) const BLOB_HINT: &str = "encode it with BASE64ENCODE() or HEX()";

/// How to turn a value of type `got` into `want`, for hints.
fn conversion_hint(want: Type, got: Type) -> Option<&'static str> {
    Some(match (want, got) {
        (Type::Text, Type::Blob) => BLOB_HINT,
        (Type::Text, _) => "wrap it in TEXT()",
        (Type::Blob, Type::Text) => "wrap it in BLOB()",
        (Type::Number, Type::Text) => "wrap it in VALUE()",
        (Type::Date, Type::DateTime) | (Type::Date, Type::Text) => "wrap it in DATEVALUE()",
        (Type::DateTime, Type::Date) | (Type::DateTime, Type::Text) => "wrap it in DATETIMEVALUE()",
        (Type::Time, Type::Text) | (Type::Time, Type::DateTime) => "wrap it in TIMEVALUE()",
        (Type::Boolean, Type::Text) => "compare it, e.g. value = \"true\"",
        _ => return None,
    })
}

fn list(types: &[Type]) -> String {
    let names: Vec<&str> = types.iter().map(|t| t.name()).collect();
    match names.len() {
        0 => String::new(),
        1 => names[0].to_string(),
        n => format!("{} or {}", names[..n - 1].join(", "), names[n - 1]),
    }
}

fn span_err(code: Code, msg: String, n: &Node) -> CompileError {
    CompileError::new(code, msg, n.start, (n.end - n.start).max(1))
}

impl Checker<'_> {
    pub fn check(&mut self, n: &Node) -> Result<Checked, CompileError> {
        match &n.ast {
            Ast::Num(d) => Ok((Expr::Const(Value::Number(*d)), Type::Number)),
            Ast::Str(s) => Ok((Expr::Const(Value::Text(s.clone())), Type::Text)),
            Ast::Bool(b) => Ok((Expr::Const(Value::Boolean(*b)), Type::Boolean)),
            Ast::Null => Ok((Expr::Const(Value::Null), Type::Null)),
            Ast::Ref(path) => self.reference(path, n),
            Ast::Unary(op, inner) => {
                let (e, t) = self.check(inner)?;
                match op {
                    UnOp::Not => {
                        self.want_op("!", inner, t, &[Type::Boolean])?;
                        Ok((Expr::Not(Box::new(e)), Type::Boolean))
                    }
                    UnOp::Neg => {
                        self.want_op("-", inner, t, &[Type::Number])?;
                        Ok((Expr::Neg(Box::new(e)), Type::Number))
                    }
                    UnOp::Plus => {
                        self.want_op("+", inner, t, &[Type::Number])?;
                        Ok((e, Type::Number))
                    }
                }
            }
            Ast::Binary(op, l, r) => self.binary(*op, l, r, n),
            Ast::Call(name, span, args) => self.call(name, *span, args, n),
        }
    }

    fn reference(&mut self, path: &[String], n: &Node) -> Result<Checked, CompileError> {
        let parts: Vec<&str> = path.iter().map(String::as_str).collect();
        match self.resolver.resolve(&parts) {
            Ok(r) => {
                if !self.refs.contains(&r.id) {
                    self.refs.push(r.id);
                }
                Ok((Expr::Ref(r.id), r.ty))
            }
            Err(msg) => {
                if parts.len() == 2 && parts[0].eq_ignore_ascii_case("$GlobalConstant") {
                    let c = parts[1];
                    if c.eq_ignore_ascii_case("True") {
                        return Ok((Expr::Const(Value::Boolean(true)), Type::Boolean));
                    }
                    if c.eq_ignore_ascii_case("False") {
                        return Ok((Expr::Const(Value::Boolean(false)), Type::Boolean));
                    }
                    if c.eq_ignore_ascii_case("EmptyString") {
                        return Ok((Expr::Const(Value::text("")), Type::Text));
                    }
                }
                let mut e = span_err(codes::HX004, msg, n);
                if parts.len() == 1 && functions::lookup(&parts[0].to_ascii_uppercase()).is_some() {
                    e = e.with_hint(format!("to call the function write {}(...)", parts[0]));
                }
                Err(e)
            }
        }
    }

    fn want_op(&self, op: &str, n: &Node, got: Type, want: &[Type]) -> Result<(), CompileError> {
        if got == Type::Null || want.contains(&got) {
            return Ok(());
        }
        let mut e = span_err(codes::HX003, format!("'{op}' expects {}, got {got}", list(want)), n);
        if want.len() == 1
            && let Some(h) = conversion_hint(want[0], got)
        {
            e = e.with_hint(h);
        }
        Err(e)
    }

    fn want_arg(
        &self,
        fname: &str,
        idx: usize,
        n: &Node,
        got: Type,
        want: &[Type],
    ) -> Result<(), CompileError> {
        if got == Type::Null || want.contains(&got) {
            return Ok(());
        }
        let mut e = span_err(
            codes::HX003,
            format!("{fname} expects {} for argument {}, got {got}", list(want), idx + 1),
            n,
        );
        if want.len() == 1
            && let Some(h) = conversion_hint(want[0], got)
        {
            e = e.with_hint(h);
        }
        Err(e)
    }

    fn binary(&mut self, op: BinOp, l: &Node, r: &Node, n: &Node) -> Result<Checked, CompileError> {
        let (le, lt) = self.check(l)?;
        let (re, rt) = self.check(r)?;
        let b = |e: Expr| Box::new(e);
        use Type as T;
        match op {
            BinOp::And | BinOp::Or => {
                self.want_op(op.symbol(), l, lt, &[T::Boolean])?;
                self.want_op(op.symbol(), r, rt, &[T::Boolean])?;
                let e = if op == BinOp::And { Expr::And(b(le), b(re)) } else { Expr::Or(b(le), b(re)) };
                Ok((e, T::Boolean))
            }
            BinOp::Concat => {
                self.want_op("&", l, lt, &[T::Text])?;
                self.want_op("&", r, rt, &[T::Text])?;
                Ok((Expr::Concat(b(le), b(re)), T::Text))
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => {
                let cmp = match op {
                    BinOp::Eq => Cmp::Eq,
                    BinOp::Ne => Cmp::Ne,
                    BinOp::Lt => Cmp::Lt,
                    BinOp::Gt => Cmp::Gt,
                    BinOp::Le => Cmp::Le,
                    _ => Cmp::Ge,
                };
                let Some(t) = unify(lt, rt) else {
                    let mut e =
                        span_err(codes::HX003, format!("'{}' cannot compare {lt} with {rt}", op.symbol()), n);
                    if let Some(h) = conversion_hint(lt, rt) {
                        e = e.with_hint(format!("{h} on the right"));
                    }
                    return Err(e);
                };
                if matches!(t, T::Boolean | T::Blob) && !matches!(cmp, Cmp::Eq | Cmp::Ne) {
                    return Err(span_err(
                        codes::HX003,
                        format!("'{}' cannot order {t} values", op.symbol()),
                        n,
                    ));
                }
                let text = t == T::Text || t == T::Null;
                Ok((Expr::Cmp(cmp, text, b(le), b(re)), T::Boolean))
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Pow => {
                let (a, ty) = self.arith(op, lt, rt).ok_or_else(|| {
                    let msg = format!("'{}' cannot be applied to {lt} and {rt}", op.symbol());
                    let mut e = span_err(codes::HX003, msg, n);
                    if op == BinOp::Add && (lt == T::Text || rt == T::Text) {
                        e = e.with_hint("use '&' and TEXT() to join text");
                    } else if lt == T::Text || rt == T::Text {
                        e = e.with_hint("wrap the text in VALUE()");
                    } else if op == BinOp::Sub
                        && matches!((lt, rt), (T::Date, T::DateTime) | (T::DateTime, T::Date))
                    {
                        e = e.with_hint("convert one side with DATEVALUE() or DATETIMEVALUE()");
                    }
                    e
                })?;
                Ok((Expr::Arith(a, b(le), b(re)), ty))
            }
        }
    }

    fn arith(&self, op: BinOp, lt: Type, rt: Type) -> Option<(Arith, Type)> {
        use Type as T;
        let num = |t: Type| t == T::Number || t == T::Null;
        let simple = match op {
            BinOp::Add => Arith::Add,
            BinOp::Sub => Arith::Sub,
            BinOp::Mul => Arith::Mul,
            BinOp::Div => Arith::Div,
            _ => Arith::Pow,
        };
        if num(lt) && num(rt) {
            return Some((simple, T::Number));
        }
        match (op, lt, rt) {
            (BinOp::Add, T::Text, T::Text | T::Null) | (BinOp::Add, T::Null, T::Text) => {
                Some((Arith::TextAdd, T::Text))
            }
            (BinOp::Add, T::Date, r) if num(r) => Some((Arith::DatePlusDays, T::Date)),
            (BinOp::Add, l, T::Date) if num(l) => Some((Arith::DaysPlusDate, T::Date)),
            (BinOp::Sub, T::Date, r) if num(r) => Some((Arith::DateMinusDays, T::Date)),
            (BinOp::Sub, T::Date, T::Date) => Some((Arith::DateDiff, T::Number)),
            (BinOp::Add, T::DateTime, r) if num(r) => Some((Arith::DtPlusDays, T::DateTime)),
            (BinOp::Add, l, T::DateTime) if num(l) => Some((Arith::DaysPlusDt, T::DateTime)),
            (BinOp::Sub, T::DateTime, r) if num(r) => Some((Arith::DtMinusDays, T::DateTime)),
            (BinOp::Sub, T::DateTime, T::DateTime) => Some((Arith::DtDiff, T::Number)),
            (BinOp::Add, T::Time, r) if num(r) => Some((Arith::TimePlusMs, T::Time)),
            (BinOp::Add, l, T::Time) if num(l) => Some((Arith::MsPlusTime, T::Time)),
            (BinOp::Sub, T::Time, r) if num(r) => Some((Arith::TimeMinusMs, T::Time)),
            (BinOp::Sub, T::Time, T::Time) => Some((Arith::TimeDiff, T::Number)),
            (BinOp::Sub, T::Null, T::Date) => Some((Arith::DateDiff, T::Number)),
            (BinOp::Sub, T::Null, T::DateTime) => Some((Arith::DtDiff, T::Number)),
            (BinOp::Sub, T::Null, T::Time) => Some((Arith::TimeDiff, T::Number)),
            _ => None,
        }
    }

    fn call(
        &mut self,
        name: &str,
        span: (usize, usize),
        args: &[Node],
        n: &Node,
    ) -> Result<Checked, CompileError> {
        let Some(info) = functions::lookup(name) else {
            let mut e =
                CompileError::new(codes::HX001, format!("Unknown function {name}"), span.0, span.1 - span.0);
            if let Some(s) = functions::suggest(name) {
                e = e.with_hint(format!("did you mean {s}?"));
            }
            return Err(e);
        };
        let argc = args.len();
        if argc < info.min_args || argc > info.max_args {
            let expected = if info.min_args == info.max_args {
                format!("{}", info.min_args)
            } else if info.max_args == usize::MAX {
                format!("at least {}", info.min_args)
            } else {
                format!("{} to {}", info.min_args, info.max_args)
            };
            let plural = if info.min_args == 1 && info.max_args == 1 { "argument" } else { "arguments" };
            return Err(CompileError::new(
                codes::HX002,
                format!("{name} expects {expected} {plural}, got {argc}"),
                n.start,
                n.end - n.start,
            )
            .with_hint(info.signature));
        }
        let f = info.func;
        // Functions that need the syntax of their arguments.
        match f {
            Func::IsChanged | Func::PriorValue => return self.prior(f, name, &args[0]),
            Func::Regex => {
                if let Ast::Str(pat) = &args[1].ast {
                    let (te, tt) = self.check(&args[0])?;
                    self.want_arg(name, 0, &args[0], tt, &[Type::Text])?;
                    let re = build_regex(pat).map_err(|msg| {
                        span_err(codes::HX010, format!("Invalid regular expression: {msg}"), &args[1])
                    })?;
                    return Ok((Expr::RegexConst(Box::new(te), Arc::new(re)), Type::Boolean));
                }
            }
            _ => {}
        }
        let mut es = Vec::with_capacity(argc);
        let mut ts = Vec::with_capacity(argc);
        for a in args {
            let (e, t) = self.check(a)?;
            es.push(e);
            ts.push(t);
        }
        use Type as T;
        let all = [T::Text, T::Number, T::Boolean, T::Date, T::DateTime, T::Time];
        let want = |c: &Self, i: usize, w: &[Type]| c.want_arg(name, i, &args[i], ts[i], w);
        let each = |c: &Self, w: &[Type]| -> Result<(), CompileError> {
            for i in 0..argc {
                want(c, i, w)?;
            }
            Ok(())
        };
        let ty = match f {
            Func::If => {
                want(self, 0, &[T::Boolean])?;
                let t = unify(ts[1], ts[2]).ok_or_else(|| {
                    span_err(
                        codes::HX003,
                        format!("IF branches must have the same type: then is {}, else is {}", ts[1], ts[2]),
                        &args[2],
                    )
                    .with_hint("convert one branch, e.g. with TEXT()")
                })?;
                let mut it = es.into_iter();
                let (c, a, b) = (
                    it.next().unwrap_or(Expr::Const(Value::Null)),
                    it.next().unwrap_or(Expr::Const(Value::Null)),
                    it.next().unwrap_or(Expr::Const(Value::Null)),
                );
                return Ok((Expr::If(Box::new(c), Box::new(a), Box::new(b)), t));
            }
            Func::Case => {
                if !argc.is_multiple_of(2) {
                    return Err(CompileError::new(
                        codes::HX002,
                        format!(
                            "CASE expects an expression, value/result pairs and an else result (an even number of arguments), got {argc}"
                        ),
                        n.start,
                        n.end - n.start,
                    )
                    .with_hint(info.signature));
                }
                let subject = ts[0];
                let mut rt = T::Null;
                let mut i = 1;
                while i + 1 < argc {
                    if unify(subject, ts[i]).is_none() {
                        return Err(span_err(
                            codes::HX003,
                            format!(
                                "CASE value {} is {}, but the expression is {subject}",
                                i.div_ceil(2),
                                ts[i]
                            ),
                            &args[i],
                        ));
                    }
                    rt = unify(rt, ts[i + 1]).ok_or_else(|| {
                        span_err(
                            codes::HX003,
                            format!("CASE results must have the same type: {rt} and {}", ts[i + 1]),
                            &args[i + 1],
                        )
                    })?;
                    i += 2;
                }
                rt = unify(rt, ts[argc - 1]).ok_or_else(|| {
                    span_err(
                        codes::HX003,
                        format!("CASE else result is {}, but the other results are {rt}", ts[argc - 1]),
                        &args[argc - 1],
                    )
                })?;
                let text = matches!(subject, T::Text | T::Null);
                let mut it = es.into_iter();
                let subj = it.next().unwrap_or(Expr::Const(Value::Null));
                let mut pairs = Vec::with_capacity(argc / 2 - 1);
                for _ in 0..(argc / 2 - 1) {
                    let v = it.next().unwrap_or(Expr::Const(Value::Null));
                    let r = it.next().unwrap_or(Expr::Const(Value::Null));
                    pairs.push((v, r));
                }
                let els = it.next().unwrap_or(Expr::Const(Value::Null));
                return Ok((Expr::Case(Box::new(subj), text, pairs, Box::new(els)), rt));
            }
            Func::And | Func::Or | Func::Not => {
                each(self, &[T::Boolean])?;
                T::Boolean
            }
            Func::IsBlank | Func::IsNull => T::Boolean,
            Func::BlankValue | Func::NullValue => unify(ts[0], ts[1]).ok_or_else(|| {
                span_err(
                    codes::HX003,
                    format!("{name} substitute must have the type of the value ({}), got {}", ts[0], ts[1]),
                    &args[1],
                )
            })?,
            Func::IsPickval | Func::Includes | Func::Contains | Func::Begins => {
                each(self, &[T::Text])?;
                T::Boolean
            }
            Func::IsNumber => {
                each(self, &[T::Text])?;
                T::Boolean
            }
            Func::Regex => {
                each(self, &[T::Text])?;
                T::Boolean
            }
            Func::Text => {
                if ts[0] == T::Blob {
                    return Err(span_err(codes::HX003, "TEXT cannot convert a Blob".to_string(), &args[0])
                        .with_hint(BLOB_HINT));
                }
                want(self, 0, &all)?;
                T::Text
            }
            Func::Value | Func::Len | Func::Ascii | Func::SmsSegments => {
                want(self, 0, &[T::Text])?;
                T::Number
            }
            Func::Left | Func::Right => {
                want(self, 0, &[T::Text])?;
                want(self, 1, &[T::Number])?;
                T::Text
            }
            Func::Mid => {
                want(self, 0, &[T::Text])?;
                want(self, 1, &[T::Number])?;
                want(self, 2, &[T::Number])?;
                T::Text
            }
            Func::Lower
            | Func::Upper
            | Func::Proper
            | Func::Trim
            | Func::Substitute
            | Func::Hyperlink
            | Func::HtmlEncode
            | Func::JsEncode
            | Func::JsInHtmlEncode
            | Func::UrlEncode
            | Func::Reverse
            | Func::SmsEncoding
            | Func::E164 => {
                each(self, &[T::Text])?;
                T::Text
            }
            Func::Br => T::Text,
            Func::Chr => {
                want(self, 0, &[T::Number])?;
                T::Text
            }
            Func::Find => {
                want(self, 0, &[T::Text])?;
                want(self, 1, &[T::Text])?;
                if argc == 3 {
                    want(self, 2, &[T::Number])?;
                }
                T::Number
            }
            Func::Lpad | Func::Rpad => {
                want(self, 0, &[T::Text])?;
                want(self, 1, &[T::Number])?;
                if argc == 3 {
                    want(self, 2, &[T::Text])?;
                }
                T::Text
            }
            Func::Abs
            | Func::Ceiling
            | Func::Floor
            | Func::Round
            | Func::Trunc
            | Func::Mod
            | Func::Sqrt
            | Func::Exp
            | Func::Ln
            | Func::Log => {
                each(self, &[T::Number])?;
                T::Number
            }
            Func::Max | Func::Min => {
                let mut t = T::Null;
                for i in 0..argc {
                    want(self, i, &[T::Number, T::Date, T::DateTime, T::Time])?;
                    t = unify(t, ts[i]).ok_or_else(|| {
                        span_err(
                            codes::HX003,
                            format!("{name} arguments must have one type: {t} and {}", ts[i]),
                            &args[i],
                        )
                    })?;
                }
                if t == T::Null { T::Number } else { t }
            }
            Func::Today => T::Date,
            Func::Now => T::DateTime,
            Func::TimeNow => T::Time,
            Func::Date => {
                each(self, &[T::Number])?;
                T::Date
            }
            Func::DateValue => {
                want(self, 0, &[T::Text, T::DateTime, T::Date])?;
                T::Date
            }
            Func::DateTimeValue => {
                want(self, 0, &[T::Text, T::Date, T::DateTime])?;
                T::DateTime
            }
            Func::TimeValue => {
                want(self, 0, &[T::Text, T::DateTime, T::Time])?;
                T::Time
            }
            Func::Year
            | Func::Month
            | Func::Day
            | Func::Weekday
            | Func::IsoWeek
            | Func::IsoYear
            | Func::DayOfYear => {
                want(self, 0, &[T::Date])?;
                T::Number
            }
            Func::AddMonths => {
                want(self, 0, &[T::Date, T::DateTime])?;
                want(self, 1, &[T::Number])?;
                if ts[0] == T::Null { T::Date } else { ts[0] }
            }
            Func::Hour | Func::Minute | Func::Second | Func::Millisecond => {
                want(self, 0, &[T::Time])?;
                T::Number
            }
            Func::UnixTimestamp => {
                want(self, 0, &[T::Date, T::DateTime, T::Time])?;
                T::Number
            }
            Func::FromUnixTime => {
                want(self, 0, &[T::Number])?;
                T::DateTime
            }
            Func::Blob => {
                want(self, 0, &[T::Text])?;
                T::Blob
            }
            Func::Base64Decode => {
                want(self, 0, &[T::Text])?;
                T::Blob
            }
            // Where a Blob is expected a Text is accepted too, as its UTF-8 bytes (what BLOB() gives).
            Func::Base64Encode | Func::Hex => {
                want(self, 0, &[T::Blob, T::Text])?;
                T::Text
            }
            Func::Hash | Func::Hmac => {
                want(self, 0, &[T::Text])?;
                for i in 1..argc {
                    want(self, i, &[T::Blob, T::Text])?;
                }
                if let Ast::Str(alg) = &args[0].ast
                    && Digest::parse(alg, f == Func::Hmac).is_none()
                {
                    let shown: String = alg.chars().take(40).collect();
                    return Err(span_err(
                        codes::HX016,
                        format!("{name}: unknown algorithm {}", serde_json::Value::String(shown)),
                        &args[0],
                    )
                    .with_hint(format!("use {DIGEST_NAMES}")));
                }
                T::Blob
            }
            Func::IsChanged | Func::PriorValue => T::Null,
        };
        Ok((Expr::Call(f, ty, es), ty))
    }

    fn prior(&mut self, f: Func, name: &str, arg: &Node) -> Result<Checked, CompileError> {
        let Ast::Ref(path) = &arg.ast else {
            return Err(span_err(
                codes::HX003,
                format!("{name} expects a field reference such as $Record.Status"),
                arg,
            ));
        };
        if path.len() < 2 || !path[0].eq_ignore_ascii_case("$Record") {
            return Err(span_err(
                codes::HX003,
                format!("{name} expects a field of $Record, got {}", path.join(".")),
                arg,
            ));
        }
        let (cur, t) = self.reference(path, arg)?;
        let Expr::Ref(cur) = cur else {
            return Err(span_err(codes::HX003, format!("{name} expects a field reference"), arg));
        };
        let mut prior_path: Vec<String> = path.to_vec();
        prior_path[0] = "$Record__Prior".to_string();
        let (p, _) = self.reference(&prior_path, arg).map_err(|e| {
            e.with_hint(format!(
                "{name} needs the prior record ($Record__Prior), which exists in record-triggered flows that run on update"
            ))
        })?;
        let Expr::Ref(p) = p else {
            return Err(span_err(codes::HX003, format!("{name} expects a field reference"), arg));
        };
        let text = matches!(t, Type::Text | Type::Null);
        if f == Func::IsChanged {
            Ok((Expr::Changed(cur, p, text), Type::Boolean))
        } else {
            Ok((Expr::Ref(p), t))
        }
    }
}

/// Compiles a REGEX pattern that must match the whole text, with bounded size.
pub(crate) fn build_regex(pat: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(&format!("^(?:{pat})$"))
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .nest_limit(64)
        .build()
        .map_err(|e| {
            let s = e.to_string();
            s.lines().last().unwrap_or(&s).trim().to_string()
        })
}
