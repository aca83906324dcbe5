//! herald-expr: the Salesforce-compatible formula and merge-field language of herald.
//!
//! A [`Formula`] is an expression such as `NOT(ISBLANK({!$Record.Phone}))`; a [`Template`] is text
//! with merge fields such as `Hi {!$Record.FirstName}!`. Both are compiled once against a
//! [`Resolver`] (which turns reference paths into typed slots) and evaluated many times against a
//! [`Scope`] (which gives the value of each slot) and an [`EvalContext`] (clock and time zone).
//!
//! The language, its functions, null rules and error codes are documented in `docs/formulas.md`.

mod check;
mod error;
mod eval;
mod functions;
mod parse;
mod value;

use herald_codes as codes;
use std::sync::Arc;

pub use chrono_tz::Tz;
pub use error::{CompileError, EvalError};
pub use functions::{FUNCTIONS, FunctionInfo};
pub use rust_decimal::Decimal;
pub use value::{Type, Value, ValueError, compare, equals};

use check::{Checker, Expr};
use eval::Ev;
use parse::Parser;

/// Identifies a reference (merge field) resolved at compile time; the caller assigns the numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RefId(pub u32);

/// What a [`Resolver`] answers for a reference path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub id: RefId,
    pub ty: Type,
}

/// Compile-time: turns a reference path into a slot. `path` is the dotted reference split on '.',
/// e.g. `{!$Record.Phone}` -> `["$Record", "Phone"]`. The Err string is a full human message
/// (including any "did you mean"); it is reported as error HX004 at the reference's position.
///
/// `$GlobalConstant.True`, `.False` and `.EmptyString` are built in: when the resolver rejects
/// them they compile to constants.
pub trait Resolver {
    fn resolve(&self, path: &[&str]) -> Result<Resolved, String>;
}

/// Run-time: the value of a resolved reference. Must be cheap (Text is `Arc<str>`).
pub trait Scope {
    fn value(&self, id: RefId) -> Value;
}

/// A resolver that knows no reference (for formulas made only of literals and functions).
pub struct NoReferences;

impl Resolver for NoReferences {
    fn resolve(&self, path: &[&str]) -> Result<Resolved, String> {
        Err(format!("Unknown reference {}", path.join(".")))
    }
}

impl Scope for NoReferences {
    fn value(&self, _id: RefId) -> Value {
        Value::Null
    }
}

/// A scope backed by a vector indexed by `RefId.0` (missing slots are Null).
impl Scope for Vec<Value> {
    fn value(&self, id: RefId) -> Value {
        self.get(id.0 as usize).cloned().unwrap_or(Value::Null)
    }
}

/// Evaluation context: the clock (so tests are deterministic) and the time zone (UTC default).
///
/// The zone is used by TODAY(), TIMENOW(), DATEVALUE(DateTime), DATETIMEVALUE(Text | Date),
/// TIMEVALUE(DateTime) and when a template renders a DateTime.
#[derive(Clone, Debug)]
pub struct EvalContext {
    pub now: chrono::DateTime<chrono::Utc>,
    pub tz: Tz,
}

impl EvalContext {
    /// A context at `now` in UTC.
    pub fn new(now: chrono::DateTime<chrono::Utc>) -> Self {
        EvalContext { now, tz: chrono_tz::UTC }
    }

    /// The same context in another time zone.
    pub fn with_zone(mut self, tz: Tz) -> Self {
        self.tz = tz;
        self
    }

    /// Parses an IANA zone name such as `Europe/Paris`.
    pub fn parse_zone(name: &str) -> Result<Tz, String> {
        name.parse::<Tz>()
            .map_err(|_| format!("Unknown time zone {name} (expected an IANA name such as Europe/Paris)"))
    }
}

struct FormulaInner {
    src: String,
    expr: Expr,
    ty: Type,
    refs: Vec<RefId>,
}

/// A compiled formula: immutable, `Send + Sync`, cheap to clone.
#[derive(Clone)]
pub struct Formula {
    inner: Arc<FormulaInner>,
}

impl std::fmt::Debug for Formula {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Formula").field("source", &self.inner.src).field("type", &self.inner.ty).finish()
    }
}

impl Formula {
    /// Parses and type-checks `src`, resolving every reference.
    pub fn compile(src: &str, resolver: &dyn Resolver) -> Result<Formula, CompileError> {
        let ast = Parser::new(src, 0).parse_formula().map_err(|e| e.with_source(src))?;
        let mut ck = Checker { resolver, refs: Vec::new() };
        let (expr, ty) = ck.check(&ast).map_err(|e| e.with_source(src))?;
        Ok(Formula { inner: Arc::new(FormulaInner { src: src.to_string(), expr, ty, refs: ck.refs }) })
    }

    /// Like [`Formula::compile`], and also checks that the result has type `expected`
    /// (a formula of type Null, i.e. the literal `null`, is accepted for any type).
    pub fn compile_as(src: &str, resolver: &dyn Resolver, expected: Type) -> Result<Formula, CompileError> {
        let f = Formula::compile(src, resolver)?;
        if f.result_type() != expected && f.result_type() != Type::Null {
            let trimmed = src.trim_start();
            let offset = src.len() - trimmed.len();
            let mut e = CompileError::new(
                codes::HX015,
                format!("The formula must be {expected}, but it is {}", f.result_type()),
                offset,
                trimmed.trim_end().len(),
            )
            .with_source(src);
            if expected == Type::Boolean {
                e = e.with_hint("compare it, e.g. ISBLANK(...) or ... = \"value\"");
            } else if expected == Type::Text && f.result_type() == Type::Blob {
                e = e.with_hint(check::BLOB_HINT);
            } else if expected == Type::Text {
                e = e.with_hint("wrap it in TEXT()");
            }
            return Err(e);
        }
        Ok(f)
    }

    /// The static type of the result.
    pub fn result_type(&self) -> Type {
        self.inner.ty
    }

    /// Evaluates the formula.
    pub fn eval(&self, scope: &dyn Scope, cx: &EvalContext) -> Result<Value, EvalError> {
        Ev { scope, cx }.eval(&self.inner.expr)
    }

    /// Evaluates a Boolean formula; Null counts as false (as Salesforce treats a null condition).
    pub fn eval_bool(&self, scope: &dyn Scope, cx: &EvalContext) -> Result<bool, EvalError> {
        Ok(matches!(self.eval(scope, cx)?, Value::Boolean(true)))
    }

    /// The distinct references, in first-use order.
    pub fn references(&self) -> Vec<RefId> {
        self.inner.refs.clone()
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.inner.src
    }
}

enum Part {
    Lit(std::ops::Range<usize>),
    Ref(RefId),
    Expr(Expr),
}

struct TemplateInner {
    src: String,
    parts: Vec<Part>,
    refs: Vec<RefId>,
    literal_len: usize,
}

/// The literal pieces of a template's source (outside every `{!...}`), with their byte offsets. Stops
/// at a merge field that does not parse: what follows it cannot be told apart from it.
pub fn template_literals(src: &str) -> Vec<(usize, &str)> {
    let mut pieces = Vec::new();
    let mut pos = 0;
    while pos < src.len() {
        let Some(i) = src[pos..].find("{!") else {
            pieces.push((pos, &src[pos..]));
            break;
        };
        let open = pos + i;
        if open > pos {
            pieces.push((pos, &src[pos..open]));
        }
        match Parser::new(src, open + 2).parse_merge(open) {
            Ok((_, end)) => pos = end,
            Err(_) => break,
        }
    }
    pieces
}

/// A compiled text template: literal text with merge fields `{!...}`. Cheap to clone.
#[derive(Clone)]
pub struct Template {
    inner: Arc<TemplateInner>,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template").field("source", &self.inner.src).finish()
    }
}

impl Template {
    /// Compiles a template. Inside `{!...}` any formula expression is accepted; a bare reference is
    /// the common case. `{!` without a closing `}` is error HX007; a merge field of type Blob is
    /// error HX017 (it must be encoded with BASE64ENCODE() or HEX()).
    pub fn compile(src: &str, resolver: &dyn Resolver) -> Result<Template, CompileError> {
        let mut parts = Vec::new();
        let mut ck = Checker { resolver, refs: Vec::new() };
        let mut pos = 0;
        let mut literal_len = 0;
        while pos < src.len() {
            let Some(i) = src[pos..].find("{!") else {
                parts.push(Part::Lit(pos..src.len()));
                literal_len += src.len() - pos;
                break;
            };
            let open = pos + i;
            if open > pos {
                parts.push(Part::Lit(pos..open));
                literal_len += open - pos;
            }
            let (node, end) = Parser::new(src, open + 2).parse_merge(open).map_err(|e| e.with_source(src))?;
            let (expr, ty) = ck.check(&node).map_err(|e| e.with_source(src))?;
            if ty == Type::Blob {
                return Err(CompileError::new(
                    codes::HX017,
                    "A Blob cannot be written into text",
                    node.start,
                    (node.end - node.start).max(1),
                )
                .with_hint(check::BLOB_HINT)
                .with_source(src));
            }
            parts.push(match expr {
                Expr::Ref(id) => Part::Ref(id),
                Expr::Const(v) => {
                    // A constant merge field (e.g. {!$GlobalConstant.EmptyString}) stays typed.
                    Part::Expr(Expr::Const(v))
                }
                e => Part::Expr(e),
            });
            pos = end;
        }
        Ok(Template {
            inner: Arc::new(TemplateInner { src: src.to_string(), parts, refs: ck.refs, literal_len }),
        })
    }

    /// Renders the template: literal text plus each merge field's text (Null renders as "").
    pub fn render(&self, scope: &dyn Scope, cx: &EvalContext) -> Result<String, EvalError> {
        let t = &*self.inner;
        let mut out = String::with_capacity(t.literal_len + 16 * t.parts.len());
        for p in &t.parts {
            match p {
                Part::Lit(r) => out.push_str(&t.src[r.clone()]),
                Part::Ref(id) => eval::write_value_zoned(&mut out, &scope.value(*id), cx),
                Part::Expr(e) => {
                    let v = Ev { scope, cx }.eval(e)?;
                    eval::write_value_zoned(&mut out, &v, cx);
                }
            }
        }
        Ok(out)
    }

    /// Some(id) when the whole template is exactly one merge field `{!ref}`.
    pub fn as_single_reference(&self) -> Option<RefId> {
        match self.inner.parts.as_slice() {
            [Part::Ref(id)] => Some(*id),
            _ => None,
        }
    }

    /// Some(text) when the template has no merge field at all.
    pub fn as_literal(&self) -> Option<&str> {
        if self.inner.parts.iter().all(|p| matches!(p, Part::Lit(_))) { Some(&self.inner.src) } else { None }
    }

    /// When the whole template is one merge field, its typed value (e.g. a Number stays a
    /// Number); None when the template has literal text or several merge fields.
    pub fn eval_single(&self, scope: &dyn Scope, cx: &EvalContext) -> Option<Result<Value, EvalError>> {
        match self.inner.parts.as_slice() {
            [Part::Ref(id)] => Some(Ok(scope.value(*id))),
            [Part::Expr(e)] => Some(Ev { scope, cx }.eval(e)),
            _ => None,
        }
    }

    /// The distinct references, in first-use order.
    pub fn references(&self) -> Vec<RefId> {
        self.inner.refs.clone()
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.inner.src
    }
}

#[cfg(test)]
mod tests;
