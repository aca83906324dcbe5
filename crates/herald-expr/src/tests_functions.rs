//! One test per function: ordinary, edge and null arguments.

use super::*;

fn null(src: &str) {
    assert_eq!(ev(src), Value::Null, "{src}");
}

fn d(y: i32, m: u32, dd: u32) -> Value {
    Value::Date(date(y, m, dd))
}

fn dt(s: &str) -> Value {
    Value::DateTime(chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc))
}

fn tm(s: &str) -> Value {
    Value::Time(NaiveTime::parse_from_str(s, "%H:%M:%S%.f").unwrap())
}

#[test]
fn case() {
    check("CASE(2, 1, \"one\", 2, \"two\", \"many\")", t("two"));
    check("CASE(5, 1, \"one\", 2, \"two\", \"many\")", t("many"));
    check("CASE($Record.Status, \"Open\", 1, \"Closed\", 2, 0)", n("1"));
    check("CASE($Record.MobilePhone, \"\", \"blank\", \"other\")", t("blank"));
    check("CASE($Record.Score, 0, \"zero\", \"null\")", t("null"));
    check("CASE($Record.CloseDate, DATE(2024,2,29), true, false)", b(true));
    // Only the matching result is evaluated.
    check("CASE(1, 1, 10, 2, 1/0, 0)", n("10"));
    assert_eq!(err("CASE(1, 1, \"a\")").code, "HX002");
    assert_eq!(err("CASE(1, \"1\", \"a\", \"b\")").code, "HX003");
    assert_eq!(err("CASE(1, 1, \"a\", 2)").code, "HX003");
}

#[test]
fn ispickval() {
    check("ISPICKVAL($Record.Status, \"Open\")", b(true));
    check("ISPICKVAL($Record.Status, \"open\")", b(false));
    check("ISPICKVAL($Record.MobilePhone, \"\")", b(true));
    assert_eq!(err("ISPICKVAL(count, \"3\")").code, "HX003");
}

#[test]
fn isnumber() {
    check("ISNUMBER(\"12\")", b(true));
    check("ISNUMBER(\"-1.5\")", b(true));
    check("ISNUMBER(\" 7 \")", b(true));
    check("ISNUMBER(\"1e3\")", b(true));
    check("ISNUMBER(\"abc\")", b(false));
    check("ISNUMBER(\"\")", b(false));
    check("ISNUMBER(\"1.2.3\")", b(false));
    check("ISNUMBER($Record.MobilePhone)", b(false));
}

#[test]
fn includes() {
    check("INCLUDES($Record.Interests, \"Golf\")", b(true));
    check("INCLUDES($Record.Interests, \"Chess\")", b(true));
    check("INCLUDES($Record.Interests, \"golf\")", b(false));
    check("INCLUDES($Record.Interests, \"Gol\")", b(false));
    check("INCLUDES($Record.Interests, \"\")", b(false));
    check("INCLUDES($Record.MobilePhone, \"Golf\")", b(false));
}

#[test]
fn ischanged_and_priorvalue() {
    check("ISCHANGED($Record.Status)", b(true));
    check("PRIORVALUE($Record.Status)", t("New"));
    check("ISPICKVAL(PRIORVALUE($Record.Status), \"New\")", b(true));
    let mut env = Env::new();
    env.set("$Record__Prior.Status", Type::Text, t("Open"));
    let f = Formula::compile("ISCHANGED({!$Record.Status})", &env).unwrap();
    assert_eq!(f.eval(&env, &cx()).unwrap(), b(false));
    assert_eq!(f.references().len(), 2);
    assert_eq!(err("ISCHANGED(count)").code, "HX003");
    assert_eq!(err("ISCHANGED(\"x\")").code, "HX003");
    // No prior field known to the resolver.
    assert_eq!(err("ISCHANGED($Record.Phone)").code, "HX004");
}

#[test]
fn value() {
    check("VALUE(\"42\")", n("42"));
    check("VALUE(\" -3.25 \")", n("-3.25"));
    check("VALUE(\"0.1\") + VALUE(\"0.2\") = 0.3", b(true));
    null("VALUE(\"\")");
    null("VALUE($Record.MobilePhone)");
    assert!(ev_err("VALUE(\"abc\")").message.contains("is not a number"));
    assert_eq!(err("VALUE(1)").code, "HX003");
}

#[test]
fn left_right_mid() {
    check("LEFT(\"Salesforce\", 5)", t("Sales"));
    check("LEFT(\"abc\", 10)", t("abc"));
    check("LEFT(\"abc\", 0)", t(""));
    check("LEFT(\"abc\", -1)", t(""));
    check("LEFT(\"héllo\", 2)", t("hé"));
    check("LEFT(\"abc\", 1.9)", t("a"));
    null("LEFT($Record.MobilePhone, 2)");
    null("LEFT(\"abc\", null)");
    check("RIGHT(\"Salesforce\", 5)", t("force"));
    check("RIGHT(\"abc\", 10)", t("abc"));
    check("RIGHT(\"abc\", -2)", t(""));
    null("RIGHT($Record.MobilePhone, 2)");
    check("MID(\"Salesforce\", 6, 3)", t("for"));
    check("MID(\"abc\", 2, 10)", t("bc"));
    check("MID(\"abc\", 0, 2)", t("ab"));
    check("MID(\"abc\", 5, 2)", t(""));
    null("MID(null, 1, 1)");
}

#[test]
fn lower_upper_trim() {
    check("LOWER(\"MiXeD 123\")", t("mixed 123"));
    check("UPPER(\"straße\")", t("STRASSE"));
    null("LOWER(null)");
    check("TRIM(\"\\t x \\n\")", t("x"));
    check("TRIM(\"a  b\")", t("a  b"));
    null("TRIM($Record.MobilePhone)");
}

#[test]
fn substitute() {
    check("SUBSTITUTE(\"a-b-c\", \"-\", \"+\")", t("a+b+c"));
    check("SUBSTITUTE(\"aaa\", \"aa\", \"b\")", t("ba"));
    check("SUBSTITUTE(\"abc\", \"\", \"x\")", t("abc"));
    check("SUBSTITUTE(\"abc\", \"b\", null)", t("ac"));
    check("SUBSTITUTE(\"abc\", \"B\", \"x\")", t("abc"));
    null("SUBSTITUTE(null, \"a\", \"b\")");
    check("SUBSTITUTE(SUBSTITUTE($Record.Phone, \"+\", \"\"), \"555\", \"\")", t("11234567"));
}

#[test]
fn find() {
    check("FIND(\"force\", \"Salesforce\")", n("6"));
    check("FIND(\"x\", \"Salesforce\")", n("0"));
    check("FIND(\"s\", \"Salesforce\")", n("5"));
    check("FIND(\"a\", \"banana\", 3)", n("4"));
    check("FIND(\"a\", \"banana\", 7)", n("0"));
    check("FIND(\"a\", \"banana\", 0)", n("0"));
    check("FIND(\"\", \"banana\")", n("0"));
    check("FIND(\"é\", \"café au lait\")", n("4"));
    check("FIND(\"a\", null)", n("0"));
    check("FIND(null, \"abc\")", n("0"));
}

#[test]
fn lpad_rpad() {
    check("LPAD(\"7\", 3, \"0\")", t("007"));
    check("LPAD(\"my_company.com\", 14, \"z\")", t("my_company.com"));
    check("LPAD(\"my_company.com\", 15, \"z\")", t("zmy_company.com"));
    check("LPAD(\"my_company.com\", 2, \"z\")", t("my"));
    check("LPAD(\"ab\", 5)", t("   ab"));
    check("LPAD(\"ab\", 7, \"xy\")", t("xyxyxab"));
    check("LPAD(\"ab\", 0, \"x\")", t(""));
    check("LPAD(\"ab\", -3, \"x\")", t(""));
    check("LPAD(null, 3, \"x\")", t("xxx"));
    null("LPAD(\"ab\", null, \"x\")");
    check("RPAD(\"7\", 3, \"0\")", t("700"));
    check("RPAD(\"my_company.com\", 2, \"z\")", t("my"));
    check("RPAD(\"ab\", 4)", t("ab  "));
}

#[test]
fn regex() {
    check("REGEX(\"12345\", \"[0-9]{5}\")", b(true));
    check("REGEX(\"12345-6789\", \"[0-9]{5}\")", b(false));
    check("REGEX($Record.Phone, \"\\\\+1[0-9]{10}\")", b(true));
    check("REGEX(\"\", \"a*\")", b(true));
    check("REGEX($Record.MobilePhone, \".+\")", b(false));
    check("REGEX(\"abc\", $Record.Status & \"|abc\")", b(true));
    let e = err("REGEX(\"a\", \"(\")");
    assert_eq!(e.code, "HX010");
    assert!(ev_err("REGEX(\"a\", $Record.Status & \"(\")").message.contains("invalid regular expression"));
}

#[test]
fn hyperlink_and_br() {
    check(
        "HYPERLINK(\"https://example.com/?a=1&b=2\", \"Example\")",
        t("<a href=\"https://example.com/?a=1&amp;b=2\" target=\"_blank\">Example</a>"),
    );
    check("HYPERLINK(\"/x\", \"X\", \"_self\")", t("<a href=\"/x\" target=\"_self\">X</a>"));
    check("\"a\" & BR() & \"b\"", t("a<br>b"));
}

#[test]
fn encoders() {
    check(
        "HTMLENCODE(\"<b>Tom & 'Jerry'</b> \\\"x\\\"\")",
        t("&lt;b&gt;Tom &amp; &#39;Jerry&#39;&lt;/b&gt; &quot;x&quot;"),
    );
    null("HTMLENCODE(null)");
    check("JSENCODE(\"it's \\\"q\\\"\\n\\\\\")", t("it\\'s \\\"q\\\"\\n\\\\"));
    check("JSENCODE(\"</script>\")", t("<\\/script>"));
    check("JSINHTMLENCODE(\"<a href='x'>\")", t("&lt;a href=&#39;x&#39;&gt;"));
    check("URLENCODE(\"Mark's Page\")", t("Mark%27s+Page"));
    check("URLENCODE(\"a/b?c=d&e\")", t("a%2Fb%3Fc%3Dd%26e"));
    check("URLENCODE(\"é\")", t("%C3%A9"));
    check("URLENCODE(\"A-z_0.9*~\")", t("A-z_0.9*%7E"));
    null("URLENCODE(null)");
}

#[test]
fn reverse_ascii_chr() {
    check("REVERSE(\"abc\")", t("cba"));
    check("REVERSE(\"\")", t(""));
    check("ASCII(\"A\")", n("65"));
    check("ASCII(\"é\")", n("233"));
    null("ASCII(\"\")");
    check("CHR(65)", t("A"));
    check("CHR(233)", t("é"));
    assert!(ev_err("CHR(-1)").message.contains("CHR"));
    assert!(ev_err("CHR(0)").message.contains("CHR"));
    null("CHR(null)");
}

#[test]
fn abs() {
    check("ABS(-5.5)", n("5.5"));
    check("ABS(3)", n("3"));
    check("ABS(0)", n("0"));
    null("ABS($Record.Score)");
}

#[test]
fn ceiling_floor() {
    check("CEILING(2.5)", n("3"));
    check("CEILING(-2.5)", n("-3"));
    check("CEILING(2)", n("2"));
    check("CEILING(0.0001)", n("1"));
    check("FLOOR(2.5)", n("2"));
    check("FLOOR(-2.5)", n("-2"));
    check("FLOOR(-0.5)", n("0"));
    null("CEILING(null)");
    null("FLOOR(null)");
}

#[test]
fn round_trunc() {
    check("ROUND(1.5, 0)", n("2"));
    check("ROUND(1.2345, 0)", n("1"));
    check("ROUND(-1.5, 0)", n("-2"));
    check("ROUND(225.49823, 2)", n("225.50"));
    assert_eq!(ev("TEXT(ROUND(225.49823, 2))"), t("225.5"));
    check("ROUND(2.5, 0)", n("3"));
    check("ROUND(1234.5678, -2)", n("1200"));
    check("ROUND(1250, -2)", n("1300"));
    check("ROUND(1.25, 5)", n("1.25"));
    check("ROUND(1.25, 1.9)", n("1.3"));
    null("ROUND(null, 2)");
    null("ROUND(1.5, null)");
    check("TRUNC(1.99)", n("1"));
    check("TRUNC(-1.99)", n("-1"));
    check("TRUNC(1.2345, 2)", n("1.23"));
    check("TRUNC(1299, -2)", n("1200"));
    null("TRUNC(null)");
}

#[test]
fn modulo() {
    check("MOD(10, 3)", n("1"));
    check("MOD(-10, 3)", n("-1"));
    check("MOD(10, -3)", n("1"));
    check("MOD(5.5, 2)", n("1.5"));
    check("MOD(0, 7)", n("0"));
    null("MOD(null, 2)");
    assert_eq!(ev_err("MOD(5, 0)").message, "MOD: division by zero");
}

#[test]
fn max_min() {
    check("MAX(1, 5, 3)", n("5"));
    check("MIN(1, 5, 3)", n("1"));
    check("MAX(-1.5)", n("-1.5"));
    check("MAX(0.1, 0.10)", n("0.1"));
    null("MAX(1, null, 3)");
    null("MIN($Record.Score, 1)");
    check("MAX(DATE(2024,1,1), DATE(2023,12,31))", d(2024, 1, 1));
    check("MIN($Record.CloseDate, DATE(2025,1,1))", d(2024, 2, 29));
    assert_eq!(err("MAX(1, DATE(2024,1,1))").code, "HX003");
    assert_eq!(err("MAX(\"a\", \"b\")").code, "HX003");
}

#[test]
fn sqrt_exp_ln_log() {
    check("SQRT(16)", n("4"));
    check("SQRT(0)", n("0"));
    check("ROUND(SQRT(2), 10)", n("1.4142135624"));
    assert!(ev_err("SQRT(-1)").message.contains("negative"));
    null("SQRT(null)");
    check("EXP(0)", n("1"));
    check("ROUND(EXP(1), 10)", n("2.7182818285"));
    assert!(ev_err("EXP(1000)").message.contains("overflow"));
    check("ROUND(LN(EXP(2)), 10)", n("2"));
    check("LN(1)", n("0"));
    assert!(ev_err("LN(0)").message.contains("not positive"));
    check("LOG(1000)", n("3"));
    check("LOG(1)", n("0"));
    assert!(ev_err("LOG(-10)").message.contains("not positive"));
    null("LN(null)");
    null("LOG(null)");
}

#[test]
fn arithmetic() {
    check("1 + 2", n("3"));
    check("0.1 + 0.2", n("0.3"));
    check("0.1 + 0.2 = 0.3", b(true));
    check("10 - 12.5", n("-2.5"));
    check("1.5 * 2", n("3"));
    check("1 / 4", n("0.25"));
    check("10 / 4", n("2.5"));
    check("ROUND(1 / 3, 18)", n("0.333333333333333333"));
    check("ROUND(2 / 3 * 3, 18) = 2", b(true));
    check("2 ^ 10", n("1024"));
    check("2 ^ -1", n("0.5"));
    check("4 ^ 0.5", n("2"));
    check("-2 ^ 2", n("-4"));
    check("(-2) ^ 2", n("4"));
    check("(-2) ^ 3", n("-8"));
    check("0 ^ 0", n("1"));
    check("1 ^ 100000000", n("1"));
    check("0.5 ^ 1000", n("0"));
    check("2 * 3 ^ 2", n("18"));
    check("-(3)", n("-3"));
    check("+3", n("3"));
    check("1 - -1", n("2"));
    check("10 - 2 - 3", n("5"));
    check("64 / 4 / 2", n("8"));
    null("1 + null");
    null("$Record.Score * 2");
    null("-$Record.Score");
    null("null / 0");
    assert_eq!(ev_err("1 / 0").message, "Division by zero");
    assert!(ev_err("0 ^ -1").message.contains("Division by zero"));
    assert!(ev_err("(-8) ^ 0.5").message.contains("fractional power"));
    assert!(ev_err("10 ^ 40").message.contains("overflow"));
    assert!(ev_err("79228162514264337593543950335 + 1").message.contains("overflow"));
    check("$Record.Amount * 2", n("2501"));
    check("$Record.Amount + 0.5 = 1251", b(true));
}

#[test]
fn today_now_timenow() {
    check("TODAY()", d(2024, 3, 5));
    check("NOW()", dt("2024-03-05T23:30:15Z"));
    check("TIMENOW()", tm("23:30:15"));
    // In a zone ahead of UTC it is already the next day.
    let env = Env::new();
    let cx = cx().with_zone(EvalContext::parse_zone("Europe/Paris").unwrap());
    let f = Formula::compile("TODAY()", &env).unwrap();
    assert_eq!(f.eval(&env, &cx).unwrap(), d(2024, 3, 6));
    let f = Formula::compile("TIMENOW()", &env).unwrap();
    assert_eq!(f.eval(&env, &cx).unwrap(), tm("00:30:15"));
    let f = Formula::compile("NOW()", &env).unwrap();
    assert_eq!(f.eval(&env, &cx).unwrap(), dt("2024-03-05T23:30:15Z"));
    assert!(EvalContext::parse_zone("Mars/Base").is_err());
}

#[test]
fn date_fn() {
    check("DATE(2024, 2, 29)", d(2024, 2, 29));
    check("DATE(2024.9, 1.2, 1)", d(2024, 1, 1));
    assert!(ev_err("DATE(2023, 2, 29)").message.contains("not a valid date"));
    assert!(ev_err("DATE(2023, 13, 1)").message.contains("not a valid date"));
    assert!(ev_err("DATE(2023, -1, 1)").message.contains("not a valid date"));
    null("DATE(null, 1, 1)");
}

#[test]
fn date_arithmetic() {
    check("DATE(2024,2,29) + 365", d(2025, 2, 28));
    check("DATE(2024,2,29) + 1", d(2024, 3, 1));
    check("1 + DATE(2024,2,29)", d(2024, 3, 1));
    check("DATE(2024,3,1) - 1", d(2024, 2, 29));
    check("DATE(2024,3,1) - DATE(2024,1,1)", n("60"));
    check("DATE(2024,1,1) - DATE(2024,3,1)", n("-60"));
    check("DATE(2024,1,1) + 1.9", d(2024, 1, 2));
    null("$Record.NoDate + 1");
    null("$Record.NoDate - DATE(2024,1,1)");
    check("NOW() - 1/24", dt("2024-03-05T22:30:15Z"));
    check("NOW() + 1", dt("2024-03-06T23:30:15Z"));
    check("NOW() + 0.5", dt("2024-03-06T11:30:15Z"));
    check("NOW() - $Record.CreatedDate", n("0.3751736111111111111111111111"));
    check("ROUND((NOW() - $Record.CreatedDate) * 24, 2)", n("9"));
    check("$Record.Start + 60000", tm("09:31:00"));
    check("$Record.Start - 60000", tm("09:29:00"));
    check("$Record.Start + 86400000", tm("09:30:00"));
    check("$Record.Start - 36000000", tm("23:30:00"));
    check("TIMEVALUE(\"10:00:00\") - $Record.Start", n("1800000"));
    assert!(ev_err("DATE(9999,12,31) + 1").message.contains("out of range"));
    assert_eq!(err("DATE(2024,1,1) + DATE(2024,1,2)").code, "HX003");
    assert_eq!(err("DATE(2024,1,1) - NOW()").code, "HX003");
    assert_eq!(err("NOW() * 2").code, "HX003");
}

#[test]
fn datevalue() {
    check("DATEVALUE(\"2024-02-29\")", d(2024, 2, 29));
    check("DATEVALUE(\"2024-02-29 10:00:00\")", d(2024, 2, 29));
    check("DATEVALUE($Record.CreatedDate)", d(2024, 3, 5));
    check("DATEVALUE($Record.CloseDate)", d(2024, 2, 29));
    null("DATEVALUE(\"\")");
    null("DATEVALUE($Record.MobilePhone)");
    assert!(ev_err("DATEVALUE(\"2024-02-30\")").message.contains("not a date"));
    assert!(ev_err("DATEVALUE(\"tomorrow\")").message.contains("not a date"));
    assert_eq!(err("DATEVALUE(5)").code, "HX003");
}

#[test]
fn datetimevalue() {
    check("DATETIMEVALUE(\"2024-03-05 14:30:00\")", dt("2024-03-05T14:30:00Z"));
    check("DATETIMEVALUE(\"2024-03-05T14:30:00Z\")", dt("2024-03-05T14:30:00Z"));
    check("DATETIMEVALUE(\"2024-03-05T14:30:00+01:00\")", dt("2024-03-05T13:30:00Z"));
    check("DATETIMEVALUE(\"2024-03-05\")", dt("2024-03-05T00:00:00Z"));
    check("DATETIMEVALUE(DATE(2024,3,5))", dt("2024-03-05T00:00:00Z"));
    check("DATETIMEVALUE($Record.CreatedDate)", dt("2024-03-05T14:30:00Z"));
    null("DATETIMEVALUE(\"\")");
    assert!(ev_err("DATETIMEVALUE(\"2024-13-05 10:00:00\")").message.contains("not a date-time"));
    // With a zone, local text is read in that zone.
    let env = Env::new();
    let cx = cx().with_zone(EvalContext::parse_zone("America/New_York").unwrap());
    let f = Formula::compile("DATETIMEVALUE(\"2024-03-05 09:30:00\")", &env).unwrap();
    assert_eq!(f.eval(&env, &cx).unwrap(), dt("2024-03-05T14:30:00Z"));
    // The daylight-saving gap (02:30 does not exist on 2024-03-10 in New York).
    let f = Formula::compile("DATETIMEVALUE(\"2024-03-10 02:30:00\")", &env).unwrap();
    assert_eq!(f.eval(&env, &cx).unwrap(), dt("2024-03-10T07:30:00Z"));
    let f = Formula::compile("DATEVALUE($Record.CreatedDate)", &env).unwrap();
    assert_eq!(f.eval(&env, &cx).unwrap(), d(2024, 3, 5));
}

#[test]
fn timevalue() {
    check("TIMEVALUE(\"17:30:45.125\")", tm("17:30:45.125"));
    check("TIMEVALUE(\"17:30\")", tm("17:30:00"));
    check("TIMEVALUE($Record.CreatedDate)", tm("14:30:00"));
    check("TIMEVALUE($Record.Start)", tm("09:30:00"));
    null("TIMEVALUE(\"\")");
    assert!(ev_err("TIMEVALUE(\"25:00\")").message.contains("not a time"));
}

#[test]
fn date_parts() {
    check("YEAR($Record.CloseDate)", n("2024"));
    check("MONTH($Record.CloseDate)", n("2"));
    check("DAY($Record.CloseDate)", n("29"));
    check("DAYOFYEAR(DATE(2024,12,31))", n("366"));
    null("YEAR($Record.NoDate)");
    null("MONTH(null)");
    null("DAY(null)");
    // 2024-03-03 is a Sunday.
    check("WEEKDAY(DATE(2024,3,3))", n("1"));
    check("WEEKDAY(DATE(2024,3,9))", n("7"));
    null("WEEKDAY(null)");
    check("ISOWEEK(DATE(2024,1,1))", n("1"));
    check("ISOWEEK(DATE(2021,1,3))", n("53"));
    check("ISOYEAR(DATE(2021,1,3))", n("2020"));
    check("ISOYEAR(DATE(2024,12,30))", n("2025"));
    null("ISOWEEK(null)");
}

#[test]
fn addmonths() {
    check("ADDMONTHS(DATE(2024,1,15), 1)", d(2024, 2, 15));
    check("ADDMONTHS(DATE(2024,1,31), 1)", d(2024, 2, 29));
    check("ADDMONTHS(DATE(2024,2,29), 1)", d(2024, 3, 31));
    check("ADDMONTHS(DATE(2024,2,29), 12)", d(2025, 2, 28));
    check("ADDMONTHS(DATE(2024,3,31), -1)", d(2024, 2, 29));
    check("ADDMONTHS(DATE(2024,3,15), -15)", d(2022, 12, 15));
    check("ADDMONTHS(DATE(2024,3,15), 1.7)", d(2024, 4, 15));
    check("ADDMONTHS($Record.CreatedDate, 1)", dt("2024-04-05T14:30:00Z"));
    null("ADDMONTHS($Record.NoDate, 1)");
    null("ADDMONTHS(DATE(2024,1,1), null)");
    assert!(ev_err("ADDMONTHS(DATE(2024,1,1), 99999999999)").message.contains("out of range"));
}

#[test]
fn time_parts() {
    check("HOUR(TIMEVALUE(\"17:30:45.125\"))", n("17"));
    check("MINUTE(TIMEVALUE(\"17:30:45.125\"))", n("30"));
    check("SECOND(TIMEVALUE(\"17:30:45.125\"))", n("45"));
    check("MILLISECOND(TIMEVALUE(\"17:30:45.125\"))", n("125"));
    check("HOUR(TIMEVALUE($Record.CreatedDate))", n("14"));
    null("HOUR(null)");
    null("MILLISECOND(null)");
    assert_eq!(err("HOUR(NOW())").hint.as_deref(), Some("wrap it in TIMEVALUE()"));
}

#[test]
fn unix_time() {
    check("UNIXTIMESTAMP(DATE(1970,1,2))", n("86400"));
    check("UNIXTIMESTAMP($Record.CreatedDate)", n("1709649000"));
    check("UNIXTIMESTAMP($Record.Start)", n("34200"));
    check("FROMUNIXTIME(1709649000)", dt("2024-03-05T14:30:00Z"));
    check("FROMUNIXTIME(0.5)", dt("1970-01-01T00:00:00.500Z"));
    null("UNIXTIMESTAMP(null)");
    null("FROMUNIXTIME(null)");
    assert!(ev_err("FROMUNIXTIME(99999999999999999)").message.contains("out of range"));
}

#[test]
fn text_of_each_type() {
    check("TEXT(1.50)", t("1.5"));
    check("TEXT(-0.0)", t("0"));
    check("TEXT(1000000)", t("1000000"));
    check("TEXT(0.000001)", t("0.000001"));
    check("TEXT(TIMEVALUE(\"08:05:03\"))", t("08:05:03.000"));
    check("TEXT(DATE(2024,1,2))", t("2024-01-02"));
    check("TEXT(false)", t("false"));
}

#[test]
fn proper_capitalizes_each_word() {
    check("PROPER(\"ada LOVELACE\")", t("Ada Lovelace"));
    check("PROPER(\"o'neil mary-jane\")", t("O'neil Mary-Jane"));
    check("PROPER(\"\")", t(""));
    check("PROPER(null)", Value::Null);
    check("\"Hi \" & PROPER(\"zoë\")", t("Hi Zoë"));
}

#[test]
fn every_function_is_tested_and_documented() {
    let this = include_str!("tests_functions.rs").to_ascii_uppercase()
        + &include_str!("tests.rs").to_ascii_uppercase();
    let docs = include_str!("../../../docs/formulas.md");
    for f in FUNCTIONS {
        assert!(this.contains(&format!("{}(", f.name)), "{} has no test", f.name);
        assert!(docs.contains(&format!("`{}(", f.name)), "{} is not documented in docs/formulas.md", f.name);
    }
}

#[test]
fn approximate_functions_are_clean() {
    check("4 ^ 0.5", n("2"));
    check("8 ^ (1/3)", n("2"));
    check("27 ^ (1/3)", n("3"));
    check("EXP(LN(10))", n("10"));
    check("LN(EXP(3))", n("3"));
    check("ROUND(2 ^ 0.5, 10)", n("1.4142135624"));
}

#[test]
fn approximate_results_keep_15_significant_digits() {
    check("EXP(-10)", n("0.0000453999297624849"));
    check("EXP(20)", n("485165195.409790"));
    check("LN(2)", n("0.693147180559945"));
    check("2 ^ 0.5", n("1.41421356237310"));
}

#[test]
fn text_size_is_bounded() {
    let e = ev_err("LPAD(\"a\", 99999999999, \"x\")");
    assert!(e.message.contains("too large"), "{e}");
    let e = ev_err("RPAD(\"a\", 1000000, \"x\")");
    assert!(e.message.contains("too large"), "{e}");
    check("LEN(LPAD(\"a\", 250000, \"x\"))", n("250000"));
    // Each SUBSTITUTE multiplies the length by ten.
    let mut src = "\"aaaaaaaaaa\"".to_string();
    for _ in 0..8 {
        src = format!("SUBSTITUTE({src}, \"a\", \"aaaaaaaaaa\")");
    }
    let e = ev_err(&src);
    assert!(e.message.contains("longer than"), "{e}");
    let mut src = "LPAD(\"a\", 200000, \"x\")".to_string();
    for _ in 0..4 {
        src = format!("({src} & {src})");
    }
    let e = ev_err(&src);
    assert!(e.message.contains("longer than"), "{e}");
}

/// Extreme arguments give a value or an evaluation error, never a panic.
#[test]
fn extremes_do_not_panic() {
    const MAX: &str = "79228162514264337593543950335";
    const TINY: &str = "0.0000000000000000000000000001";
    let env = Env::new();
    let srcs = [
        format!("SQRT({MAX})"),
        format!("SQRT({TINY})"),
        format!("LN({TINY})"),
        format!("LN({MAX})"),
        format!("LOG({TINY})"),
        format!("LOG({MAX})"),
        "EXP(65)".to_string(),
        "EXP(-65)".to_string(),
        "EXP(64.9)".to_string(),
        format!("{MAX} ^ 0.5"),
        format!("{TINY} ^ 0.5"),
        format!("{TINY} ^ -1"),
        format!("{TINY} ^ -2"),
        format!("{MAX} ^ 2"),
        format!("{MAX} ^ -1"),
        format!("{MAX} ^ {TINY}"),
        format!("2 ^ {MAX}"),
        format!("0.5 ^ -{MAX}"),
        "1.0000001 ^ 100000".to_string(),
        format!("MOD(-{MAX}, -1)"),
        format!("MOD({MAX}, {TINY})"),
        format!("ROUND({MAX}, -28)"),
        format!("ROUND({MAX}, -30)"),
        format!("ROUND(-{MAX}, -1)"),
        format!("ROUND({TINY}, 28)"),
        format!("ROUND({TINY}, 100)"),
        format!("ROUND(1, -{MAX})"),
        format!("TRUNC({MAX}, -5)"),
        format!("CEILING({MAX})"),
        format!("FLOOR(-{MAX})"),
        format!("CEILING(-{TINY})"),
        format!("-(-{MAX})"),
        format!("{MAX} * {MAX}"),
        format!("{MAX} / {TINY}"),
        format!("{TINY} / {MAX}"),
        format!("{MAX} + {MAX}"),
        format!("-{MAX} - {MAX}"),
        format!("DATE({MAX}, 1, 1)"),
        "DATE(0, 1, 1)".to_string(),
        "DATE(-5000, 1, 1)".to_string(),
        format!("DATE(2024, 1, 1) + {MAX}"),
        format!("DATE(2024, 1, 1) - {MAX}"),
        "DATE(1, 1, 1) - 1".to_string(),
        format!("NOW() + {MAX}"),
        format!("NOW() - {TINY}"),
        "NOW() + 3000000".to_string(),
        format!("TIMEVALUE(\"10:00\") + {MAX}"),
        format!("TIMEVALUE(\"10:00\") - {MAX}"),
        format!("ADDMONTHS(DATE(2024, 1, 1), {MAX})"),
        "ADDMONTHS(DATE(2024, 1, 1), -4294967296)".to_string(),
        "ADDMONTHS(NOW(), 200000)".to_string(),
        format!("FROMUNIXTIME({MAX})"),
        format!("FROMUNIXTIME(-{MAX})"),
        "FROMUNIXTIME(-62135596801)".to_string(),
        format!("CHR({MAX})"),
        "CHR(55296)".to_string(),
        format!("LEFT(\"abc\", {MAX})"),
        format!("MID(\"abc\", {MAX}, {MAX})"),
        format!("FIND(\"a\", \"abc\", {MAX})"),
        format!("LPAD(\"abc\", {MAX})"),
        format!("VALUE(\"{MAX}9\")"),
        "VALUE(\"1e100\")".to_string(),
        "VALUE(\"-\")".to_string(),
        "VALUE(\".\")".to_string(),
        "DATEVALUE(\"99999-01-01\")".to_string(),
        "DATETIMEVALUE(\"9999-12-31 23:59:59\") + 1".to_string(),
        "DATETIMEVALUE(\"0001-01-01 00:00:00\") - 1".to_string(),
        "TIMEVALUE(\"23:59:59.999999999\")".to_string(),
        "NOW() - DATETIMEVALUE(\"0001-01-01 00:00:00\")".to_string(),
        "DATE(9999,12,31) - DATE(1,1,1)".to_string(),
        format!("MAX({MAX}, -{MAX})"),
        "REGEX(\"a\", $Record.Status & \"{99999999}\")".to_string(),
    ];
    for src in srcs {
        let f = Formula::compile(&src, &env).unwrap_or_else(|e| panic!("{src}: {e}"));
        let _ = f.eval(&env, &cx());
        let _ = f.eval(&env, &cx().with_zone(chrono_tz::Pacific::Kiritimati));
    }
    // A pattern too large to compile is a compile error.
    assert_eq!(err("REGEX(\"a\", \"(a{1000}){1000}\")").code, "HX010");
}
