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
fn sms_functions_count_segments_name_the_encoding_and_normalize_numbers() {
    check("SMSSEGMENTS(\"Hello\")", n("1"));
    check("SMSSEGMENTS(LPAD(\"\", 161, \"a\"))", n("2"));
    check("SMSSEGMENTS(\"ç\" & LPAD(\"\", 70, \"a\"))", n("2"));
    check("SMSENCODING(\"Hello\")", t("GSM7"));
    check("SMSENCODING(\"Zoë ç\")", t("UCS2"));
    check("E164(\"(415) 555-0100\", \"US\")", t("+14155550100"));
    check("E164(\"+44 20 7946 0018\")", t("+442079460018"));
    check("E164(\"555\", \"US\")", Value::Null);
    check("ISBLANK(E164(\"not a number\"))", Value::Boolean(true));
    check("E164(null)", Value::Null);
    check("SMSSEGMENTS(null)", Value::Null);
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

/// The test record plus an External Credential `X` (user, password, token) and a Blob reference.
fn credential_env() -> Env {
    let mut env = Env::new();
    env.set("$Credential.X.user", Type::Text, t("Aladdin"));
    env.set("$Credential.X.password", Type::Text, t("open sesame"));
    env.set("$Credential.X.token", Type::Text, t("tok-3f9a"));
    env.set("$Credential.X.secret", Type::Text, t("s3cr3t-V@lue!"));
    env.set("$Credential.X.missing", Type::Text, Value::Null);
    env.set("$Credential.X.Body", Type::Blob, Value::blob(b"{\"to\":\"+1555\"}".as_slice()));
    env
}

fn cred_ev(src: &str) -> Result<Value, EvalError> {
    let env = credential_env();
    let f = Formula::compile(src, &env).unwrap_or_else(|e| panic!("{src}: {e}"));
    f.eval(&env, &cx())
}

fn cred_render(src: &str) -> String {
    let env = credential_env();
    let tpl = Template::compile(src, &env).unwrap_or_else(|e| panic!("{src}: {e}"));
    tpl.render(&env, &cx()).unwrap_or_else(|e| panic!("{src}: {e}"))
}

#[test]
fn blob_and_base64() {
    check("BLOB(\"hi\")", Value::blob(b"hi".as_slice()));
    check("BLOB(\"héllo ✓\") = BLOB(\"héllo ✓\")", b(true));
    check("BLOB(\"a\") <> BLOB(\"b\")", b(true));
    check("ISBLANK(BLOB(\"\"))", b(true));
    check("ISBLANK(BLOB(\" \"))", b(false));
    null("BLOB(null)");
    null("BLOB($Record.MobilePhone)");
    // RFC 4648 section 10 test vectors: standard alphabet, with padding.
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        check(&format!("BASE64ENCODE(BLOB(\"{plain}\"))"), t(encoded));
        check(&format!("BASE64DECODE(\"{encoded}\") = BLOB(\"{plain}\")"), b(true));
    }
    // UTF-8 bytes, not code points.
    check("BASE64ENCODE(BLOB(\"héllo ✓\"))", t("aMOpbGxvIOKckw=="));
    // A Text where a Blob is expected is taken as its UTF-8 bytes.
    check("BASE64ENCODE(\"foobar\")", t("Zm9vYmFy"));
    // The standard alphabet (+ and /), not the URL-safe one.
    check("BASE64ENCODE(BASE64DECODE(\"+/+/\"))", t("+/+/"));
    // Padding is optional on input; surrounding white space is ignored.
    check("BASE64DECODE(\"Zm9vYg\") = BLOB(\"foob\")", b(true));
    check("BASE64DECODE(\" Zm9vYg== \") = BLOB(\"foob\")", b(true));
    check("HEX(BASE64DECODE(\"CwsL\"))", t("0b0b0b"));
    null("BASE64ENCODE(null)");
    null("BASE64DECODE(null)");
    null("BASE64ENCODE($Record.MobilePhone)");
    assert!(ev_err("BASE64DECODE(\"Zm9v!\")").message.contains("not valid base64"));
    assert!(ev_err("BASE64DECODE(\"-_-_\")").message.contains("not valid base64"));
    assert!(ev_err("BASE64DECODE(\"Z\")").message.contains("not valid base64"));
    assert_eq!(err("BASE64ENCODE(1)").code, "HX003");
    assert_eq!(err("BASE64DECODE(BLOB(\"a\"))").code, "HX003");
    let e = err("BLOB(BLOB(\"a\"))");
    assert_eq!((e.code.id(), e.hint.as_deref()), ("HX003", Some("encode it with BASE64ENCODE() or HEX()")));
    assert_eq!(err("BLOB(1)").code, "HX003");
}

#[test]
fn hex() {
    check("HEX(BLOB(\"abc\"))", t("616263"));
    check("HEX(BLOB(\"\"))", t(""));
    // Lower case, as Salesforce documents (and Apex's EncodingUtil.convertToHex).
    check("HEX(BASE64DECODE(\"/+8A\"))", t("ffef00"));
    check("HEX(\"héllo ✓\")", t("68c3a96c6c6f20e29c93"));
    null("HEX(null)");
    assert_eq!(err("HEX(1)").code, "HX003");
    assert_eq!(err("HEX(DATE(2024, 1, 1))").code, "HX003");
}

#[test]
fn hash() {
    // FIPS 180-2 (SHA-1, SHA-256, SHA-512 of "abc") and RFC 1321 (MD5 of "abc").
    const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    check("HEX(HASH(\"SHA-256\", BLOB(\"abc\")))", t(SHA256_ABC));
    check("HEX(HASH('sha256', 'abc'))", t(SHA256_ABC));
    check("HEX(HASH(\"Sha_256\", BLOB(\"abc\")))", t(SHA256_ABC));
    check(
        "HEX(HASH(\"SHA-512\", BLOB(\"abc\")))",
        t("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
           2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
    );
    check("HEX(HASH(\"SHA-1\", BLOB(\"abc\")))", t("a9993e364706816aba3e25717850c26c9cd0d89d"));
    check("HEX(HASH(\"SHA1\", BLOB(\"abc\")))", t("a9993e364706816aba3e25717850c26c9cd0d89d"));
    check("HEX(HASH(\"md5\", BLOB(\"abc\")))", t("900150983cd24fb0d6963f7d28e17f72"));
    check(
        "HEX(HASH(\"SHA-256\", BLOB(\"\")))",
        t("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    );
    // Salesforce's example: a hex SHA-256 of a credential, and of a Blob reference.
    assert_eq!(
        cred_ev("HEX(HASH('SHA-256', BLOB($Credential.X.user)))").unwrap(),
        t("255c133be7a5d12f22736174c0983192341e71144b366ed47b7ad1d1b64db2fd")
    );
    check("LEN(HEX(HASH(\"SHA-256\", \"x\")))", n("64"));
    assert_eq!(
        cred_ev("HEX(HASH('SHA-256', $Credential.X.Body))").unwrap(),
        cred_ev("HEX(HASH('SHA-256', '{\"to\":\"+1555\"}'))").unwrap()
    );
    null("HASH(null, BLOB(\"abc\"))");
    null("HASH(\"SHA-256\", null)");
    null("HASH(\"SHA-256\", $Record.MobilePhone)");
    let e = err("HASH(\"SHA-3\", BLOB(\"abc\"))");
    assert_eq!(e.code, "HX016");
    assert_eq!(e.message, "HASH: unknown algorithm \"SHA-3\"");
    assert_eq!(e.hint.as_deref(), Some("use SHA-256, SHA-512, SHA-1 or MD5"));
    // The hmac prefix belongs to HMAC.
    assert_eq!(err("HASH(\"hmacSHA256\", \"abc\")").code, "HX016");
    assert!(ev_err("HASH($Record.Status, \"abc\")").message.contains("unknown algorithm"));
    assert_eq!(err("HASH(1, \"abc\")").code, "HX003");
    assert_eq!(err("HASH(\"SHA-256\", 1)").code, "HX003");
    assert_eq!(err("HASH(\"SHA-256\")").code, "HX002");
}

#[test]
fn hmac() {
    // RFC 4231 test case 2 (HMAC-SHA-256 and HMAC-SHA-512).
    check(
        "HEX(HMAC(\"SHA-256\", BLOB(\"what do ya want for nothing?\"), BLOB(\"Jefe\")))",
        t("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    );
    check(
        "HEX(HMAC(\"hmacSHA512\", BLOB(\"what do ya want for nothing?\"), BLOB(\"Jefe\")))",
        t("164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
           9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
    );
    // RFC 4231 test case 1: a binary key (20 bytes 0x0b).
    check(
        "HEX(HMAC(\"HmacSHA256\", BLOB(\"Hi There\"), BASE64DECODE(\"CwsLCwsLCwsLCwsLCwsLCwsLCws=\")))",
        t("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    );
    // RFC 4231 test case 6: a key longer than the block size (131 bytes 0xaa) is hashed first.
    let key = format!("BASE64DECODE(\"{}o=\")", "q".repeat(174));
    check(
        &format!(
            "HEX(HMAC(\"SHA-256\", BLOB(\"Test Using Larger Than Block-Size Key - Hash Key First\"), {key}))"
        ),
        t("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    );
    // RFC 2202 test case 2 (HMAC-SHA-1 and HMAC-MD5).
    check(
        "HEX(HMAC(\"HMAC-SHA1\", \"what do ya want for nothing?\", \"Jefe\"))",
        t("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
    );
    check(
        "HEX(HMAC(\"hmacMD5\", \"what do ya want for nothing?\", \"Jefe\"))",
        t("750c783e6ab0b503eaa86e310a5db738"),
    );
    // Argument order as Salesforce documents it: HMAC(algorithm, valueToSign, secretSigningKey).
    check(
        "BASE64ENCODE(HMAC('hmacSHA256', 'message', 'key'))",
        t("bp7ym3X//Ft6uuUn1Y/a2y/kLnIZARl2kXNDBl9Y7Uo="),
    );
    check("HMAC('SHA-256', 'message', 'key') = HMAC('SHA-256', 'key', 'message')", b(false));
    // An empty message and an empty key are valid HMAC inputs.
    check("LEN(HEX(HMAC(\"SHA-256\", \"\", \"\")))", n("64"));
    null("HMAC(null, \"m\", \"k\")");
    null("HMAC(\"SHA-256\", null, \"k\")");
    null("HMAC(\"SHA-256\", \"m\", $Record.MobilePhone)");
    assert_eq!(err("HMAC(\"SHA-384\", \"m\", \"k\")").code, "HX016");
    assert_eq!(err("HMAC(\"SHA-256\", 1, \"k\")").code, "HX003");
    assert_eq!(err("HMAC(\"SHA-256\", \"m\")").code, "HX002");
    assert!(ev_err("HMAC(LOWER($Record.Status), \"m\", \"k\")").message.contains("unknown algorithm"));
}

#[test]
fn credential_formulas() {
    // Salesforce's Basic authentication example (RFC 7617's credentials).
    assert_eq!(
        cred_render("Basic {!BASE64ENCODE(BLOB($Credential.X.user & ':' & $Credential.X.password))}"),
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
    assert_eq!(cred_render("{!'Bearer ' & $Credential.X.token}"), "Bearer tok-3f9a");
    assert_eq!(cred_render("Bearer {!$Credential.X.token}"), "Bearer tok-3f9a");
    assert_eq!(
        cred_render("sig={!BASE64ENCODE(HMAC('hmacSHA256', 'message', 'key'))}"),
        "sig=bp7ym3X//Ft6uuUn1Y/a2y/kLnIZARl2kXNDBl9Y7Uo="
    );
    assert_eq!(
        cred_ev("HEX(HASH('SHA-256', $Credential.X.Body))").unwrap(),
        cred_ev("HEX(HASH('SHA-256', BLOB('{\"to\":\"+1555\"}')))").unwrap()
    );
    // A missing credential parameter is null: the header value renders empty.
    assert_eq!(cred_render("Bearer {!BASE64ENCODE(BLOB($Credential.X.missing))}"), "Bearer ");
}

#[test]
fn blob_is_never_written_as_text_implicitly() {
    let env = credential_env();
    for src in [
        "{!BLOB('x')}",
        "a {!HASH('SHA-256', 'x')} b",
        "{!$Credential.X.Body}",
        "{!IF(true, BLOB('a'), null)}",
        "{!BASE64DECODE($Credential.X.token)}",
    ] {
        let e = Template::compile(src, &env).unwrap_err();
        assert_eq!(e.code, "HX017", "{src}");
        assert_eq!(e.hint.as_deref(), Some("encode it with BASE64ENCODE() or HEX()"), "{src}");
    }
    let e = Formula::compile_as("BLOB('x')", &env, Type::Text).unwrap_err();
    assert_eq!((e.code.id(), e.hint.as_deref()), ("HX015", Some("encode it with BASE64ENCODE() or HEX()")));
    let e = err("\"Basic \" & BLOB(\"a:b\")");
    assert_eq!((e.code.id(), e.hint.as_deref()), ("HX003", Some("encode it with BASE64ENCODE() or HEX()")));
    let e = err("TEXT(BLOB(\"a\"))");
    assert_eq!((e.code.id(), e.hint.as_deref()), ("HX003", Some("encode it with BASE64ENCODE() or HEX()")));
    assert_eq!(err("\"a\" + BLOB(\"a\")").code, "HX003");
    assert_eq!(err("BLOB(\"a\") < BLOB(\"b\")").code, "HX003");
    assert_eq!(err("BLOB(\"a\") = \"a\"").code, "HX003");
    assert_eq!(err("IF(true, BLOB(\"a\"), \"a\")").code, "HX003");
    assert_eq!(err("MAX(BLOB(\"a\"))").code, "HX003");
    let e = err("VALUE(BLOB(\"1\"))");
    assert_eq!(e.code, "HX003");
    assert_eq!(Formula::compile("BLOB('x')", &env).unwrap().result_type(), Type::Blob);
    check("BLANKVALUE(BLOB(\"\"), BLOB(\"x\")) = BLOB(\"x\")", b(true));
}

#[test]
fn credential_values_never_appear_in_errors() {
    const SECRET: &str = "s3cr3t-V@lue!";
    let env = credential_env();
    for src in [
        "BASE64DECODE($Credential.X.secret)",
        "HASH($Credential.X.secret, 'x')",
        "HMAC($Credential.X.secret, 'm', 'k')",
        "HEX(HMAC('SHA-256', 'm', $Credential.X.secret)) & BASE64ENCODE(BASE64DECODE($Credential.X.secret))",
    ] {
        let f = Formula::compile(src, &env).unwrap();
        let e = f.eval(&env, &cx()).unwrap_err();
        assert!(!e.message.contains(SECRET) && !e.to_string().contains(SECRET), "{src}: {e}");
    }
    // Debug output of a Blob shows its length only.
    let v = cred_ev("BLOB($Credential.X.secret)").unwrap();
    assert_eq!(format!("{v:?}"), "Blob(<13 bytes>)");
}

#[test]
fn binary_sizes_are_bounded() {
    // 750,000 bytes encode to exactly 1,000,000 base64 characters, the longest Text allowed.
    check(
        "LEN(BASE64ENCODE(BLOB(LPAD(\"\", 250000, \"abc\") & LPAD(\"\", 250000, \"abc\") & LPAD(\"\", 250000, \"abc\"))))",
        n("1000000"),
    );
    let e = ev_err(
        "BASE64ENCODE(BLOB(LPAD(\"\", 250000, \"x\") & LPAD(\"\", 250000, \"x\") & LPAD(\"\", 250000, \"x\") & \"x\"))",
    );
    assert!(e.message.contains("longer than"), "{e}");
    let e = ev_err("HEX(BLOB(LPAD(\"\", 250000, \"x\") & LPAD(\"\", 250000, \"x\") & \"x\"))");
    assert!(e.message.contains("longer than"), "{e}");
    check("LEN(HEX(HASH(\"SHA-512\", LPAD(\"\", 250000, \"x\") & LPAD(\"\", 250000, \"x\"))))", n("128"));
}
