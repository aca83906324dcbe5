//! Unit tests: core language, templates, errors.

use super::*;
use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
use std::str::FromStr;

/// A test record: `$Record.<Field>` and `$Record__Prior.<Field>` plus plain variables.
pub(crate) struct Env {
    names: Vec<(String, Type)>,
    pub values: Vec<Value>,
}

impl Env {
    pub fn new() -> Env {
        let mut e = Env { names: Vec::new(), values: Vec::new() };
        e.set("$Record.Phone", Type::Text, Value::text("+15551234567"));
        e.set("$Record.MobilePhone", Type::Text, Value::Null);
        e.set("$Record.FirstName", Type::Text, Value::text("Ada"));
        e.set("$Record.LastName", Type::Text, Value::text("Lovelace"));
        e.set("$Record.Email", Type::Text, Value::text(""));
        e.set("$Record.Status", Type::Text, Value::text("Open"));
        e.set("$Record__Prior.Status", Type::Text, Value::text("New"));
        e.set("$Record.Amount", Type::Number, Value::Number(dec("1250.50")));
        e.set("$Record.Score", Type::Number, Value::Null);
        e.set("$Record.Active", Type::Boolean, Value::Boolean(true));
        e.set("$Record.CloseDate", Type::Date, Value::Date(date(2024, 2, 29)));
        e.set("$Record.NoDate", Type::Date, Value::Null);
        e.set(
            "$Record.CreatedDate",
            Type::DateTime,
            Value::DateTime(Utc.with_ymd_and_hms(2024, 3, 5, 14, 30, 0).unwrap()),
        );
        e.set("$Record.Start", Type::Time, Value::Time(NaiveTime::from_hms_milli_opt(9, 30, 0, 0).unwrap()));
        e.set("$Record.Interests", Type::Text, Value::text("Golf;Tennis;Chess"));
        e.set("count", Type::Number, Value::Number(dec("3")));
        e.set("greeting.text", Type::Text, Value::text("Hello"));
        e.set("$Flow.FaultMessage", Type::Text, Value::Null);
        e
    }

    pub fn set(&mut self, path: &str, ty: Type, v: Value) {
        if let Some(i) = self.names.iter().position(|(n, _)| n == path) {
            self.names[i].1 = ty;
            self.values[i] = v;
        } else {
            self.names.push((path.to_string(), ty));
            self.values.push(v);
        }
    }
}

impl Resolver for Env {
    fn resolve(&self, path: &[&str]) -> Result<Resolved, String> {
        let joined = path.join(".");
        match self.names.iter().position(|(n, _)| *n == joined) {
            Some(i) => Ok(Resolved { id: RefId(i as u32), ty: self.names[i].1 }),
            None => {
                let best = self
                    .names
                    .iter()
                    .map(|(n, _)| (strsim::jaro_winkler(n, &joined), n))
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                match best {
                    Some((s, n)) if s > 0.85 => {
                        Err(format!("Unknown reference {joined} (did you mean {n}?)"))
                    }
                    _ => Err(format!("Unknown reference {joined}")),
                }
            }
        }
    }
}

impl Scope for Env {
    fn value(&self, id: RefId) -> Value {
        self.values[id.0 as usize].clone()
    }
}

pub(crate) fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

pub(crate) fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub(crate) fn cx() -> EvalContext {
    EvalContext::new(Utc.with_ymd_and_hms(2024, 3, 5, 23, 30, 15).unwrap())
}

/// Evaluates `src` against the default Env.
pub(crate) fn ev(src: &str) -> Value {
    let env = Env::new();
    let f = Formula::compile(src, &env).unwrap_or_else(|e| panic!("{src}: {e}\n{}", e.caret()));
    f.eval(&env, &cx()).unwrap_or_else(|e| panic!("{src}: eval error {e}"))
}

pub(crate) fn ev_err(src: &str) -> EvalError {
    let env = Env::new();
    let f = Formula::compile(src, &env).unwrap_or_else(|e| panic!("{src}: {e}"));
    match f.eval(&env, &cx()) {
        Ok(v) => panic!("{src}: expected an eval error, got {v:?}"),
        Err(e) => e,
    }
}

pub(crate) fn err(src: &str) -> CompileError {
    match Formula::compile(src, &Env::new()) {
        Ok(f) => panic!("{src}: expected a compile error, got type {}", f.result_type()),
        Err(e) => e,
    }
}

pub(crate) fn t(s: &str) -> Value {
    Value::text(s)
}
pub(crate) fn n(s: &str) -> Value {
    Value::Number(dec(s))
}
pub(crate) fn b(x: bool) -> Value {
    Value::Boolean(x)
}

/// Asserts `src` evaluates to a value equal (Salesforce equality) to `want` and of its type.
#[track_caller]
pub(crate) fn check(src: &str, want: Value) {
    let got = ev(src);
    assert!(equals(&got, &want) && got.type_of() == want.type_of(), "{src}: got {got:?}, want {want:?}");
}

mod core {
    use super::*;

    #[test]
    fn references_braced_and_bare() {
        check("{!$Record.Phone}", t("+15551234567"));
        check("$Record.Phone", t("+15551234567"));
        check("greeting.text", t("Hello"));
        check("{!count} + 1", n("4"));
        let f = Formula::compile("$Record.Phone & $Record.FirstName & $Record.Phone", &Env::new()).unwrap();
        assert_eq!(f.references(), vec![RefId(0), RefId(2)]);
        assert_eq!(f.result_type(), Type::Text);
        assert_eq!(f.source(), "$Record.Phone & $Record.FirstName & $Record.Phone");
    }

    #[test]
    fn literals() {
        check("42", n("42"));
        check("3.14159", n("3.14159"));
        check(".5", n("0.5"));
        check("\"double\"", t("double"));
        check("'single'", t("single"));
        check(r#""a\"b\\c\n\t'""#, t("a\"b\\c\n\t'"));
        check(r"'it\'s'", t("it's"));
        check(r#""\u00e9""#, t("é"));
        check("true", b(true));
        check("FALSE", b(false));
        assert_eq!(ev("null"), Value::Null);
        assert_eq!(ev("NULL"), Value::Null);
        check("/* comment */ 1 /* another */", n("1"));
    }

    #[test]
    fn concat() {
        check("\"Hi \" & $Record.FirstName", t("Hi Ada"));
        check("\"a\" & null & \"b\"", t("ab"));
        check("$Record.MobilePhone & \"\"", t(""));
        check("\"a\" + \"b\"", t("ab"));
        check("\"n=\" & TEXT(count)", t("n=3"));
    }

    #[test]
    fn comparison() {
        check("1 = 1", b(true));
        check("1 == 1.0", b(true));
        check("1 <> 2", b(true));
        check("1 != 1", b(false));
        check("2 > 1", b(true));
        check("2 >= 2", b(true));
        check("1 < 2", b(true));
        check("3 <= 2", b(false));
        check("\"abc\" = \"abc\"", b(true));
        check("\"abc\" = \"ABC\"", b(false));
        check("\"a\" < \"b\"", b(true));
        check("$Record.CloseDate > DATE(2024,1,1)", b(true));
        check("$Record.Active = true", b(true));
        // null rules
        check("null = null", b(true));
        check("$Record.Score = null", b(true));
        check("$Record.Score = 0", b(false));
        check("$Record.Score > 0", b(false));
        check("$Record.Score < 0", b(false));
        check("$Record.Score <> 0", b(true));
        // blank text equals null and ""
        check("$Record.MobilePhone = \"\"", b(true));
        check("$Record.Email = null", b(true));
        check("$Record.MobilePhone = $Record.Email", b(true));
    }

    #[test]
    fn logic() {
        check("NOT(true)", b(false));
        check("!false", b(true));
        check("AND(true, true, false)", b(false));
        check("AND(true)", b(true));
        check("OR(false, false, true)", b(true));
        check("OR(false)", b(false));
        check("true && false", b(false));
        check("true || false", b(true));
        check("NOT(null)", b(true));
        check("AND(null, true)", b(false));
        // precedence: && binds tighter than ||
        check("true || false && false", b(true));
        check("1 + 2 * 3 = 7", b(true));
        check("\"x\" & \"y\" = \"xy\"", b(true));
        check("1 < 2 = true", b(true));
    }

    #[test]
    fn short_circuit() {
        // The second operand would fail (division by zero) if it were evaluated.
        check("OR(true, 1/0 > 1)", b(true));
        check("AND(false, 1/0 > 1)", b(false));
        check("false && 1/0 > 1", b(false));
        check("true || 1/0 > 1", b(true));
        check("IF(true, 1, 1/0)", n("1"));
    }

    #[test]
    fn if_function() {
        check("IF(ISBLANK($Record.MobilePhone), $Record.Phone, $Record.MobilePhone)", t("+15551234567"));
        check("IF(count > 2, \"many\", \"few\")", t("many"));
        check("IF(null, 1, 2)", n("2"));
        check("IF(true, null, 5)", Value::Null);
        assert_eq!(Formula::compile("IF(true, null, 5)", &Env::new()).unwrap().result_type(), Type::Number);
    }

    #[test]
    fn blank_and_null() {
        check("ISBLANK($Record.MobilePhone)", b(true));
        check("ISBLANK($Record.Email)", b(true));
        check("ISBLANK($Record.Phone)", b(false));
        check("ISBLANK(\" \")", b(false));
        check("ISBLANK($Record.Score)", b(true));
        check("ISBLANK(0)", b(false));
        check("ISBLANK(null)", b(true));
        check("NOT(ISBLANK({!$Record.Phone}))", b(true));
        check("ISNULL($Record.MobilePhone)", b(true));
        check("ISNULL($Record.Email)", b(false));
        check("ISNULL($Record.Score)", b(true));
        check("ISNULL($Record.Amount)", b(false));
        check("BLANKVALUE($Record.MobilePhone, \"none\")", t("none"));
        check("BLANKVALUE($Record.Email, \"none\")", t("none"));
        check("BLANKVALUE($Record.Phone, \"none\")", t("+15551234567"));
        check("BLANKVALUE($Record.Score, 0)", n("0"));
        check("NULLVALUE($Record.Score, 7)", n("7"));
        check("NULLVALUE($Record.Email, \"x\")", t(""));
        check("NULLVALUE($Record.MobilePhone, \"x\")", t("x"));
    }

    #[test]
    fn text_basics() {
        check("TEXT(12.50)", t("12.5"));
        check("TEXT(count)", t("3"));
        check("TEXT($Record.CloseDate)", t("2024-02-29"));
        check("TEXT($Record.CreatedDate)", t("2024-03-05 14:30:00Z"));
        check("TEXT(true)", t("true"));
        check("TEXT($Record.Status)", t("Open"));
        assert_eq!(ev("TEXT($Record.Score)"), Value::Null);
        check("LEN(\"hello\")", n("5"));
        check("LEN(\"héllo\")", n("5"));
        check("LEN($Record.MobilePhone)", n("0"));
        check("LEN(\"\")", n("0"));
        check("UPPER(\"abc\")", t("ABC"));
        check("LOWER(\"ÀBC\")", t("àbc"));
        check("UPPER(\"abc\", \"en_US\")", t("ABC"));
        assert_eq!(ev("UPPER($Record.MobilePhone)"), Value::Null);
        check("TRIM(\"  a b  \")", t("a b"));
        check("TRIM(\"\")", t(""));
        check("CONTAINS(\"Hello World\", \"World\")", b(true));
        check("CONTAINS(\"Hello World\", \"world\")", b(false));
        check("CONTAINS($Record.MobilePhone, \"1\")", b(false));
        check("CONTAINS(\"abc\", \"\")", b(true));
        check("BEGINS(\"Hello\", \"He\")", b(true));
        check("BEGINS(\"Hello\", \"he\")", b(false));
        check("BEGINS($Record.Phone, \"+1\")", b(true));
        check("BEGINS($Record.MobilePhone, \"+1\")", b(false));
    }

    #[test]
    fn function_names_are_case_insensitive() {
        check("not(isBlank($Record.Phone))", b(true));
        check("If(true, 1, 2)", n("1"));
    }

    #[test]
    fn global_constants() {
        check("{!$GlobalConstant.True}", b(true));
        check("$GlobalConstant.False", b(false));
        check("ISBLANK({!$GlobalConstant.EmptyString})", b(true));
        check("ISNULL({!$GlobalConstant.EmptyString})", b(false));
    }

    #[test]
    fn merge_field_with_expression_inside_formula() {
        check("{!count * 2}", n("6"));
    }
}

mod templates {
    use super::*;

    fn render(src: &str) -> String {
        let env = Env::new();
        Template::compile(src, &env).unwrap_or_else(|e| panic!("{src}: {e}")).render(&env, &cx()).unwrap()
    }

    #[test]
    fn literal() {
        let env = Env::new();
        let tpl = Template::compile("Just text, with } and { and !", &env).unwrap();
        assert_eq!(tpl.as_literal(), Some("Just text, with } and { and !"));
        assert_eq!(tpl.as_single_reference(), None);
        assert!(tpl.references().is_empty());
        assert_eq!(tpl.render(&env, &cx()).unwrap(), "Just text, with } and { and !");
        let empty = Template::compile("", &env).unwrap();
        assert_eq!(empty.as_literal(), Some(""));
        assert_eq!(empty.render(&env, &cx()).unwrap(), "");
    }

    #[test]
    fn merge_fields() {
        assert_eq!(
            render("Hi {!$Record.FirstName}, thanks for reaching out! Reply STOP to opt out."),
            "Hi Ada, thanks for reaching out! Reply STOP to opt out."
        );
        assert_eq!(render("{!$Record.FirstName} {!$Record.LastName}"), "Ada Lovelace");
        assert_eq!(render("[{!$Record.MobilePhone}]"), "[]");
        assert_eq!(render("Amount: {!$Record.Amount}"), "Amount: 1250.50");
        assert_eq!(render("{!$Record.Active}"), "true");
        assert_eq!(render("{!$Record.CloseDate}"), "2024-02-29");
        assert_eq!(render("{!$Record.CreatedDate}"), "2024-03-05 14:30:00Z");
        assert_eq!(render("{!$Record.Start}"), "09:30:00.000");
        assert_eq!(render("{! $Record.FirstName }"), "Ada");
    }

    #[test]
    fn expressions_inside() {
        assert_eq!(render("Hi {!UPPER($Record.FirstName)}!"), "Hi ADA!");
        assert_eq!(render("{!SUBSTITUTE(\"a}b\", \"}\", \"-\")}"), "a-b");
        assert_eq!(
            render("{!IF(ISBLANK($Record.MobilePhone), \"no mobile\", $Record.MobilePhone)}"),
            "no mobile"
        );
        assert_eq!(render("{!count + 1} items"), "4 items");
    }

    #[test]
    fn single_reference() {
        let env = Env::new();
        let tpl = Template::compile("{!$Record.Phone}", &env).unwrap();
        assert_eq!(tpl.as_single_reference(), Some(RefId(0)));
        assert_eq!(tpl.as_literal(), None);
        assert_eq!(tpl.references(), vec![RefId(0)]);
        let tpl = Template::compile(" {!$Record.Phone}", &env).unwrap();
        assert_eq!(tpl.as_single_reference(), None);
        let tpl = Template::compile("{!count * 2}", &env).unwrap();
        assert_eq!(tpl.as_single_reference(), None);
        assert_eq!(tpl.eval_single(&env, &cx()), Some(Ok(n("6"))));
        let tpl = Template::compile("{!$Record.Amount}", &env).unwrap();
        assert_eq!(tpl.eval_single(&env, &cx()), Some(Ok(Value::Number(dec("1250.50")))));
    }

    #[test]
    fn references_in_order() {
        let env = Env::new();
        let tpl =
            Template::compile("{!$Record.LastName} {!$Record.FirstName} {!$Record.LastName}", &env).unwrap();
        assert_eq!(tpl.references(), vec![RefId(3), RefId(2)]);
        assert_eq!(tpl.source(), "{!$Record.LastName} {!$Record.FirstName} {!$Record.LastName}");
    }

    #[test]
    fn unclosed_merge_field() {
        let env = Env::new();
        for src in ["Hi {!$Record.FirstName", "Hi {!", "Hi {!UPPER($Record.FirstName)"] {
            let e = Template::compile(src, &env).unwrap_err();
            assert_eq!(e.code, "HX007", "{src}: {e}");
            assert_eq!(e.offset, 3, "{src}");
            assert_eq!(e.caret(), format!("{src}\n   ^^"));
        }
        let e = Template::compile("{!}", &env).unwrap_err();
        assert_eq!(e.code, "HX011");
        let e = Template::compile("Hi {!$Record.Frstname}", &env).unwrap_err();
        assert_eq!(e.code, "HX004");
        assert_eq!(e.offset, 5);
        assert_eq!(e.len, "$Record.Frstname".len());
        assert!(e.message.contains("did you mean $Record.FirstName?"), "{e}");
    }

    #[test]
    fn quote_in_literal_text_is_not_a_string() {
        assert_eq!(render("Don't {!$Record.FirstName}'s"), "Don't Ada's");
    }

    #[test]
    fn datetime_renders_in_context_zone() {
        let env = Env::new();
        let tpl = Template::compile("At {!$Record.CreatedDate}", &env).unwrap();
        let cx = cx().with_zone(EvalContext::parse_zone("America/New_York").unwrap());
        assert_eq!(tpl.render(&env, &cx).unwrap(), "At 2024-03-05 09:30:00 EST");
    }
}

mod errors {
    use super::*;

    #[test]
    fn unknown_function_with_hint() {
        let e = err("LENGHT(\"abc\")");
        assert_eq!(e.code, "HX001");
        assert_eq!(e.message, "Unknown function LENGHT");
        assert_eq!(e.hint.as_deref(), Some("did you mean LEN?"));
        assert_eq!(e.to_string(), "Unknown function LENGHT (did you mean LEN?)");
        assert_eq!((e.offset, e.len), (0, 6));
        assert_eq!(e.caret(), "LENGHT(\"abc\")\n^^^^^^");
        let e = err("SUBSTITUE(\"a\", \"b\", \"c\")");
        assert_eq!(e.hint.as_deref(), Some("did you mean SUBSTITUTE?"));
        let e = err("XYZZY(1)");
        assert_eq!(e.hint, None);
    }

    #[test]
    fn arity() {
        let e = err("IF(true, 1)");
        assert_eq!(e.code, "HX002");
        assert_eq!(e.message, "IF expects 3 arguments, got 2");
        let e = err("NOT(true, false)");
        assert_eq!(e.message, "NOT expects 1 argument, got 2");
        let e = err("AND()");
        assert_eq!(e.message, "AND expects at least 1 arguments, got 0");
        let e = err("FIND(\"a\")");
        assert_eq!(e.message, "FIND expects 2 to 3 arguments, got 1");
    }

    #[test]
    fn type_errors() {
        let e = err("\"n=\" & count");
        assert_eq!(e.code, "HX003");
        assert_eq!(e.message, "'&' expects Text, got Number");
        assert_eq!(e.hint.as_deref(), Some("wrap it in TEXT()"));
        assert_eq!(e.to_string(), "'&' expects Text, got Number (wrap it in TEXT())");
        assert_eq!(e.caret(), "\"n=\" & count\n       ^^^^^");
        let e = err("IF(true, \"a\", 1)");
        assert_eq!(e.code, "HX003");
        assert!(e.message.contains("IF branches must have the same type"), "{e}");
        let e = err("IF(1, 2, 3)");
        assert_eq!(e.message, "IF expects Boolean for argument 1, got Number");
        let e = err("LEN(5)");
        assert_eq!(e.hint.as_deref(), Some("wrap it in TEXT()"));
        let e = err("1 + \"a\"");
        assert_eq!(e.code, "HX003");
        let e = err("1 = \"1\"");
        assert_eq!(e.code, "HX003");
        let e = err("NOT(\"x\")");
        assert_eq!(e.code, "HX003");
        let e = err("YEAR($Record.CreatedDate)");
        assert_eq!(e.hint.as_deref(), Some("wrap it in DATEVALUE()"));
        let e = err("true < false");
        assert_eq!(e.code, "HX003");
    }

    #[test]
    fn unknown_reference() {
        let e = err("ISBLANK($Record.Phnoe)");
        assert_eq!(e.code, "HX004");
        assert_eq!(e.offset, 8);
        assert_eq!(e.len, "$Record.Phnoe".len());
        assert!(e.message.contains("did you mean $Record.Phone?"));
        let e = err("{!$Record.Phnoe}");
        assert_eq!(e.offset, 2);
        let e = err("TODAY");
        assert_eq!(e.hint.as_deref(), Some("to call the function write TODAY(...)"));
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(err("").code, "HX011");
        assert_eq!(err("   ").code, "HX011");
        assert_eq!(err("1 +").code, "HX005");
        assert_eq!(err("(1").code, "HX005");
        assert_eq!(err("1)").code, "HX005");
        assert_eq!(err("IF(true, 1, 2").code, "HX005");
        assert_eq!(err("1 2").code, "HX005");
        assert_eq!(err("\"abc").code, "HX006");
        assert_eq!(err("/* abc").code, "HX006");
        assert_eq!(err("{!$Record.Phone").code, "HX007");
        assert_eq!(err("1 # 2").code, "HX008");
        assert_eq!(err("1.2.3").code, "HX009");
        assert_eq!(err("99999999999999999999999999999999").code, "HX009");
        assert_eq!(err("\"\\q\"").code, "HX014");
        assert_eq!(err(&"(".repeat(500)).code, "HX013");
        assert_eq!(err(&format!("{}1", "-".repeat(500))).code, "HX013");
        assert_eq!(err(&format!("{}1{}", "ABS(".repeat(200), ")".repeat(200))).code, "HX013");
        let e = err("IF(true,\n   1,\n   2 +)");
        assert_eq!(e.line_col(), (3, 7));
        assert_eq!(e.caret(), "   2 +)\n      ^");
    }

    #[test]
    fn compile_as_checks_result_type() {
        let env = Env::new();
        assert!(Formula::compile_as("ISBLANK($Record.Phone)", &env, Type::Boolean).is_ok());
        let e = Formula::compile_as("$Record.Phone", &env, Type::Boolean).unwrap_err();
        assert_eq!(e.code, "HX015");
        assert_eq!(e.message, "The formula must be Boolean, but it is Text");
    }

    #[test]
    fn eval_errors() {
        assert_eq!(ev_err("1/0").message, "Division by zero");
        assert_eq!(ev_err("MOD(1, 0)").message, "MOD: division by zero");
    }
}

mod limits {
    use super::*;

    /// The deepest formula the parser accepts compiles and evaluates on a 2 MiB thread stack
    /// (the default for spawned threads and tokio workers), even in a debug build.
    #[test]
    fn deepest_accepted_formula_fits_the_stack() {
        let handle = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(|| {
                let chain = vec!["1"; 90].join(" + ");
                let calls = ["ABS(", "IF(true, ", "ROUND(", "(", "-("];
                let mut src = String::new();
                let mut close = String::new();
                for i in 0..52 {
                    let c = calls[i % calls.len()];
                    src.push_str(c);
                    close.insert_str(
                        0,
                        match c {
                            "IF(true, " => ", 0)",
                            "ROUND(" => ", 0)",
                            _ => ")",
                        },
                    );
                }
                let src = format!("{src}{chain}{close}");
                let f = Formula::compile(&src, &NoReferences).unwrap();
                let v = f.eval(&NoReferences, &cx()).unwrap();
                assert_eq!(v.type_of(), Type::Number);
                let long = vec!["\"a\""; 150].join(" & ");
                let f = Formula::compile(&long, &NoReferences).unwrap();
                assert_eq!(f.eval(&NoReferences, &cx()).unwrap().to_text().len(), 150);
                assert_eq!(
                    Formula::compile(&vec!["1"; 400].join("+"), &NoReferences).unwrap_err().code,
                    "HX013"
                );
                assert_eq!(
                    Formula::compile(&vec!["2"; 400].join("^"), &NoReferences).unwrap_err().code,
                    "HX013"
                );
            })
            .unwrap();
        handle.join().unwrap();
    }
}

#[path = "tests_functions.rs"]
mod functions;

#[test]
fn vec_scope_and_no_references() {
    let f = Formula::compile("UPPER(\"x\") & TEXT(LEN(\"abc\"))", &NoReferences).unwrap();
    assert_eq!(f.eval(&NoReferences, &cx()).unwrap(), Value::text("X3"));
    let e = Formula::compile("$Record.Phone", &NoReferences).unwrap_err();
    assert_eq!(e.message, "Unknown reference $Record.Phone");
    let env = Env::new();
    let f = Formula::compile("$Record.FirstName & \"!\"", &env).unwrap();
    let values: Vec<Value> = env.values.clone();
    assert_eq!(f.eval(&values, &cx()).unwrap(), Value::text("Ada!"));
    let short: Vec<Value> = Vec::new();
    assert_eq!(f.eval(&short, &cx()).unwrap(), Value::text("!"));
}
