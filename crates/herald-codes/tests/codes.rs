//! The codes declared in `src/lib.rs`, the rows of `docs/errors.md`, the source that reports them and
//! the tests that raise them must agree. Each failure says what to add, and where. The source is read
//! as text: a code counts as reported when shipped code (not a test) names it as `codes::ID`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use herald_codes::{ALL, RETIRED, api};

const DECLARATIONS: &str = "crates/herald-codes/src/lib.rs";
const ERRORS_MD: &str = "docs/errors.md";
const FORMULAS_MD: &str = "docs/formulas.md";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    fs::read_to_string(repo().join(relative)).unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// `HP001`: `H`, a family letter, three digits.
fn is_code_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 5
        && bytes[0] == b'H'
        && bytes[1].is_ascii_uppercase()
        && bytes[2..].iter().all(u8::is_ascii_digit)
}

/// The heading of the table in `docs/errors.md` that documents a family.
fn section_of(id: &str) -> &'static str {
    match &id[..2] {
        "HP" => "## HP: project files",
        "HF" => "## HF: flows",
        "HW" => "## HW: warnings",
        "HX" => "## HX: formulas and merge fields",
        _ => "(no section: HP, HF, HW and HX are the families)",
    }
}

const API_SECTION: &str = "## Record API errors";

/// One table row of a markdown file: its 1-based line, the `##` heading above it and its cells.
struct Row {
    line: usize,
    section: String,
    cells: Vec<String>,
}

fn table_rows(markdown: &str) -> Vec<Row> {
    let mut section = String::new();
    let mut rows = Vec::new();
    for (index, line) in markdown.lines().enumerate() {
        if line.starts_with("## ") {
            section = line.trim().to_string();
        } else if let Some(inner) = line.trim().strip_prefix('|') {
            let cells = inner.trim_end_matches('|').split('|').map(|cell| cell.trim().to_string()).collect();
            rows.push(Row { line: index + 1, section: section.clone(), cells });
        }
    }
    rows
}

/// The diagnostic-code rows of a markdown file: code, line, section, second cell.
fn code_rows(markdown: &str) -> Vec<(String, usize, String, String)> {
    table_rows(markdown)
        .into_iter()
        .filter(|row| is_code_id(&row.cells[0]))
        .map(|row| {
            (row.cells[0].clone(), row.line, row.section, row.cells.get(1).cloned().unwrap_or_default())
        })
        .collect()
}

#[test]
fn every_declared_code_has_a_row_in_errors_md_and_every_row_is_declared() {
    let markdown = read(ERRORS_MD);
    let rows = code_rows(&markdown);
    let mut problems = Vec::new();

    let mut documented: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, line, section, meaning) in &rows {
        if let Some(first) = documented.insert(id, *line) {
            problems.push(format!(
                "{ERRORS_MD}:{line}: {id} has a second row (the first is on line {first}); keep one"
            ));
        }
        let declared = ALL.iter().any(|code| code.id() == id);
        let retired = RETIRED.iter().any(|r| r.id == id);
        if !declared && !retired {
            problems.push(format!(
                "{ERRORS_MD}:{line}: {id} is documented but not declared: declare it in {DECLARATIONS} \
                 (`{id}: \"one-line title\";` in `codes!`) and report it as `codes::{id}`, or add it to \
                 RETIRED there if it is no longer reported, or remove the row"
            ));
        }
        if section != section_of(id) {
            problems.push(format!(
                "{ERRORS_MD}:{line}: move the row of {id} to the table under `{}`",
                section_of(id)
            ));
        }
        if retired && !meaning.starts_with("Retired") {
            problems.push(format!(
                "{ERRORS_MD}:{line}: {id} is retired; start its \"What it means\" cell with `Retired:` and say \
                 why the number is not used"
            ));
        }
        if declared && meaning.starts_with("Retired") {
            problems.push(format!("{ERRORS_MD}:{line}: {id} is in force; its row must not say `Retired`"));
        }
    }
    for id in ALL.iter().map(|code| code.id()).chain(RETIRED.iter().map(|r| r.id)) {
        if !documented.contains_key(id) {
            let after = documented.range(..id).next_back().filter(|(before, _)| before[..2] == id[..2]);
            let place = match after {
                Some((before, line)) => format!("after the row of {before} (line {line})"),
                None => format!("in the table under `{}`", section_of(id)),
            };
            let cells = if RETIRED.iter().any(|r| r.id == id) {
                "Retired: <why the number is not used> | |"
            } else {
                "<what it means> | <fix> |"
            };
            problems.push(format!(
                "{id} is declared in {DECLARATIONS} but has no row in {ERRORS_MD}: add `| {id} | {cells}` {place}"
            ));
        }
    }
    for pair in rows.windows(2) {
        let ((a, _, _, _), (b, line, _, _)) = (&pair[0], &pair[1]);
        if a[..2] == b[..2] && a >= b {
            problems.push(format!(
                "{ERRORS_MD}:{line}: the row of {b} comes after {a}; keep each table in code order"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn every_record_api_code_has_a_row_with_its_http_status() {
    let markdown = read(ERRORS_MD);
    let mut problems = Vec::new();
    let mut documented = BTreeSet::new();
    for row in table_rows(&markdown).into_iter().filter(|row| row.section == API_SECTION) {
        let Some(id) = row.cells[0].strip_prefix('`').and_then(|c| c.strip_suffix('`')) else { continue };
        if !id.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
            continue;
        }
        documented.insert(id.to_string());
        let status = row.cells.get(1).map(String::as_str).unwrap_or("");
        match api::ALL.iter().find(|code| code.id() == id) {
            None => problems.push(format!(
                "{ERRORS_MD}:{}: `{id}` is documented but not declared: declare it in {DECLARATIONS} \
                 (`{id} = {status}: \"one-line title\";` in `api_codes!`) and answer it as `codes::api::{id}`, \
                 or remove the row",
                row.line
            )),
            Some(code) if code.status().to_string() != status => problems.push(format!(
                "{ERRORS_MD}:{}: `{id}` is answered with HTTP {} ({DECLARATIONS}), the row says {status}; \
                 make them agree",
                row.line,
                code.status()
            )),
            Some(_) => {}
        }
    }
    for code in api::ALL {
        if !documented.contains(code.id()) {
            problems.push(format!(
                "`{}` is declared in {DECLARATIONS} but has no row in {ERRORS_MD}: add \
                 ``| `{}` | {} | <what it means> | <fix> |`` to the table under `{API_SECTION}`",
                code.id(),
                code.id(),
                code.status()
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn formulas_md_lists_every_formula_code() {
    let markdown = read(FORMULAS_MD);
    let documented: BTreeSet<String> = code_rows(&markdown).into_iter().map(|(id, ..)| id).collect();
    let declared: BTreeSet<String> = ALL
        .iter()
        .map(|code| code.id())
        .chain(RETIRED.iter().map(|r| r.id))
        .filter(|id| id.starts_with("HX"))
        .map(str::to_string)
        .collect();
    let missing: Vec<_> = declared.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&declared).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{FORMULAS_MD} `## Errors` must list the HX codes of {DECLARATIONS}: add rows for {missing:?} \
         (with an example), and declare or remove {extra:?}"
    );
}

#[test]
fn codes_are_well_formed_and_a_retired_number_is_never_reused() {
    let mut problems = Vec::new();
    for code in ALL {
        if !is_code_id(code.id()) || !matches!(&code.id()[..2], "HP" | "HF" | "HW" | "HX") {
            problems.push(format!("{} is not H + P/F/W/X + three digits", code.id()));
        }
        if code.title().is_empty() || code.title().contains('\n') {
            problems.push(format!("{} needs a one-line title", code.id()));
        }
    }
    for pair in ALL.windows(2) {
        if pair[0].id()[..2] == pair[1].id()[..2] && pair[0].id() >= pair[1].id() {
            problems.push(format!("{DECLARATIONS}: declare {} before {}", pair[1].id(), pair[0].id()));
        }
    }
    let mut retired = BTreeSet::new();
    for r in RETIRED {
        if !retired.insert(r.id) {
            problems.push(format!("{} is retired twice in {DECLARATIONS}", r.id));
        }
        if ALL.iter().any(|code| code.id() == r.id) {
            problems.push(format!(
                "{} is retired, so its number cannot be declared again: give the new code the next free number",
                r.id
            ));
        }
    }
    let mut api_ids = BTreeSet::new();
    for code in api::ALL {
        if !api_ids.insert(code.id()) {
            problems.push(format!("`{}` is declared twice", code.id()));
        }
        if !(400..600).contains(&code.status()) {
            problems.push(format!("`{}` has status {}, not an error status", code.id(), code.status()));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// The workspace's Rust source, split into what ships and what tests it.
struct Sources {
    /// Each file under `crates/*/src` (not this crate's, not a `tests.rs`/`tests_*.rs`) with its text
    /// outside comments and `#[cfg(test)]` modules.
    shipped: Vec<(String, String)>,
    /// Everything else: `crates/*/tests`, test files in `src` and `#[cfg(test)]` modules, as one text.
    tests: String,
}

fn sources() -> Sources {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let root = repo();
    let mut sources = Sources { shipped: Vec::new(), tests: String::new() };
    let mut crates: Vec<_> = fs::read_dir(root.join("crates")).unwrap().map(|e| e.unwrap().path()).collect();
    crates.sort();
    for krate in crates.iter().filter(|krate| !krate.ends_with("herald-codes")) {
        let mut files = Vec::new();
        for folder in ["src", "tests"] {
            if krate.join(folder).is_dir() {
                walk(&krate.join(folder), &mut files);
            }
        }
        for path in files {
            let text = fs::read_to_string(&path).unwrap();
            let relative = path.strip_prefix(krate).unwrap();
            let name = path.file_stem().unwrap().to_string_lossy();
            if relative.starts_with("tests") || name == "tests" || name.starts_with("tests_") {
                sources.tests.push_str(&text);
            } else {
                let (shipped, tests) = split_tests(&text);
                sources.tests.push_str(&tests);
                sources.shipped.push((path.strip_prefix(&root).unwrap().display().to_string(), shipped));
            }
        }
    }
    sources
}

/// `text` split into the part outside comment lines and inline `#[cfg(test)] mod … { … }` blocks, and
/// those blocks. rustfmt closes a module with `}` at the indentation of its `mod` line, which is how a
/// block's end is found.
fn split_tests(text: &str) -> (String, String) {
    let (mut kept, mut tests) = (String::new(), String::new());
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            let next = lines.peek().copied().unwrap_or("");
            if next.trim_start().contains("mod ") && next.trim_end().ends_with('{') {
                let indent = &next[..next.len() - next.trim_start().len()];
                let close = format!("{indent}}}");
                for inner in lines.by_ref() {
                    tests.push_str(inner);
                    tests.push('\n');
                    if inner == close {
                        break;
                    }
                }
            }
            continue;
        }
        if line.trim_start().starts_with("//") {
            continue;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    (kept, tests)
}

/// Whether `text` uses `path` (e.g. `codes::HF006`) as a whole token.
fn uses(text: &str, path: &str) -> bool {
    text.match_indices(path).any(|(at, _)| {
        let after = text[at + path.len()..].chars().next();
        !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[test]
fn every_code_in_force_is_reported_by_the_source() {
    let sources = sources().shipped;
    let mut problems = Vec::new();
    for code in ALL {
        let path = format!("codes::{}", code.id());
        if !sources.iter().any(|(_, text)| uses(text, &path)) {
            problems.push(format!(
                "{} is declared in {DECLARATIONS} but no source outside tests reports it as `{path}`: report it \
                 where the problem is found, or move it to RETIRED (and mark its row in {ERRORS_MD} `Retired:`)",
                code.id()
            ));
        }
    }
    for code in api::ALL {
        let path = format!("api::{}", code.id());
        if !sources.iter().any(|(_, text)| uses(text, &path)) {
            problems.push(format!(
                "`{}` is declared in {DECLARATIONS} but no source outside tests answers it as `codes::{path}`: \
                 use it, or remove it and its row in {ERRORS_MD}",
                code.id()
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn no_string_literal_stands_in_for_a_code() {
    let api_literals: Vec<String> = api::ALL.iter().map(|code| format!("\"{}\"", code.id())).collect();
    let mut problems = Vec::new();
    for (file, text) in sources().shipped {
        for line in text.lines() {
            let literal = line
                .match_indices("\"H")
                .map(|(at, _)| &line[at + 1..])
                .find(|rest| rest.len() > 5 && is_code_id(&rest[..5]) && rest.as_bytes()[5] == b'"');
            if let Some(rest) = literal {
                problems.push(format!(
                    "{file}: `\"{}\"` in `{}`: write `codes::{}`",
                    &rest[..5],
                    line.trim(),
                    &rest[..5]
                ));
            }
            if let Some(found) = api_literals.iter().find(|literal| line.contains(literal.as_str())) {
                let id = found.trim_matches('"');
                problems.push(format!("{file}: `{found}` in `{}`: write `codes::api::{id}`", line.trim()));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// Codes no test asserts yet. A test of each would show its message and position once; until one is
/// written the code stays here, and this list only shrinks: a new code comes with its test.
const UNTESTED: &[&str] = &[
    "HP001", "HP005", "HP006", "HP007", "HP010", "HP011", "HP012", "HP013", "HP014", "HP015", "HP017",
    "HP018", "HP019", "HP020", "HP021", "HP022", "HP024", "HP025", "HP026", "HP027", "HF015", "HF027",
    "HF028",
];

/// Whether `text` has `id` as a whole word (`"HF006"`, `codes::HF006`, `error[HF006]`).
fn mentions(text: &str, id: &str) -> bool {
    text.match_indices(id).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + id.len()..].chars().next();
        ![before, after].into_iter().flatten().any(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[test]
fn every_code_in_force_is_asserted_by_a_test() {
    let tests = sources().tests;
    let mut problems = Vec::new();
    for code in ALL {
        let tested = mentions(&tests, code.id());
        let listed = UNTESTED.contains(&code.id());
        if !tested && !listed {
            problems.push(format!(
                "{} is asserted by no test: add one in the crate that reports it that raises the problem and \
                 checks the code (`assert_eq!(error.code, \"{}\")`)",
                code.id(),
                code.id()
            ));
        }
        if tested && listed {
            problems.push(format!("{} is tested now: remove it from UNTESTED in {}", code.id(), file!()));
        }
    }
    for id in UNTESTED {
        if !ALL.iter().any(|code| code.id() == *id) {
            problems.push(format!("UNTESTED lists {id}, which is not a code in force: remove it"));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}
