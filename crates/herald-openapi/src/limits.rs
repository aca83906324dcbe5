//! Bounds on a document's shape, checked before any parser builds values from it.
//!
//! Project files and specs come from other people (a pull request, a vendor's download). yaml_serde
//! (libyaml underneath) scans deeply nested flow collections in time quadratic in their depth
//! (100,000 `[` took minutes) and keeps every node it reads (57 MB of YAML grew past 5 GB).
//! saphyr-parser streams events with bounded work for each (its flow nesting stops at 255 levels), so
//! walking its events first and stopping at the first limit costs little and guarantees that
//! yaml_serde never sees a document it would choke on. A JSON spec gets the same bounds from a scan of
//! its brackets: serde_json stops at 128 levels by itself, but not at a number of values.

use saphyr_parser::{Event, Parser, Span};

/// The largest spec herald reads, in bytes (16 MiB; Twilio's whole API is under 2 MiB).
pub const MAX_SPEC_BYTES: usize = 16 * 1024 * 1024;
/// The deepest nesting of a spec, in levels (serde_json's own limit).
pub const MAX_SPEC_DEPTH: usize = 128;
/// The most values (keys, values and list items) a spec may hold.
pub const MAX_SPEC_NODES: usize = 500_000;

/// How deep and how large a document may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_depth: usize,
    pub max_nodes: usize,
}

impl Limits {
    pub const SPEC: Limits = Limits { max_depth: MAX_SPEC_DEPTH, max_nodes: MAX_SPEC_NODES };
}

/// Why a document was not handed to the parser. Positions are 1-based; no message quotes the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// The YAML itself is malformed (saphyr-parser's message, which names no content).
    #[error("{message}")]
    Syntax { message: String, line: usize, column: usize },
    #[error("it nests deeper than {max} levels")]
    TooDeep { max: usize, line: usize, column: usize },
    #[error("it holds more than {max} values (keys, values and list items)")]
    TooManyNodes { max: usize, line: usize, column: usize },
}

impl ShapeError {
    /// Line and column where the document went wrong or over the limit.
    pub fn position(&self) -> (usize, usize) {
        match self {
            ShapeError::Syntax { line, column, .. }
            | ShapeError::TooDeep { line, column, .. }
            | ShapeError::TooManyNodes { line, column, .. } => (*line, *column),
        }
    }
}

/// Streams the YAML events of `text` to `visit`, and stops at the first syntax error or the first node
/// past `limits`. Nodes are scalars, aliases, mappings and sequences; keys count as nodes.
pub fn walk_yaml<'input>(
    text: &'input str,
    limits: Limits,
    mut visit: impl FnMut(Event<'input>, Span),
) -> Result<(), ShapeError> {
    let mut depth = 0usize;
    let mut nodes = 0usize;
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|error| {
            let (line, column) = (error.marker().line(), error.marker().col() + 1);
            // saphyr's own bound on flow nesting (255 levels), far past any limit of ours.
            if error.info() == "recursion limit exceeded" {
                ShapeError::TooDeep { max: limits.max_depth, line, column }
            } else {
                ShapeError::Syntax { message: error.info().to_string(), line, column }
            }
        })?;
        let (line, column) = (span.start.line(), span.start.col() + 1);
        match event {
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                depth += 1;
                if depth > limits.max_depth {
                    return Err(ShapeError::TooDeep { max: limits.max_depth, line, column });
                }
                nodes += 1;
            }
            Event::MappingEnd | Event::SequenceEnd => depth = depth.saturating_sub(1),
            Event::Scalar(..) | Event::Alias(..) => nodes += 1,
            _ => {}
        }
        if nodes > limits.max_nodes {
            return Err(ShapeError::TooManyNodes { max: limits.max_nodes, line, column });
        }
        visit(event, span);
    }
    Ok(())
}

/// Checks the nesting and the number of values of a JSON text without building it. Malformed JSON is
/// left to serde_json, which reports it with its position.
pub fn check_json(text: &str, limits: Limits) -> Result<(), ShapeError> {
    let mut depth = 0usize;
    let mut nodes = 0usize;
    let (mut line, mut column) = (1usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    // Whether each open container is an array (where a comma starts the next value).
    let mut arrays: Vec<bool> = Vec::new();
    // The next non-blank character starts a value (unless it closes an empty array).
    let mut value_may_start = true;
    for ch in text.chars() {
        if ch == '\n' {
            line += 1;
            column = 0;
        } else {
            column += 1;
        }
        if in_string {
            match ch {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if value_may_start && !ch.is_whitespace() {
            value_may_start = false;
            if ch != ']' {
                nodes += 1;
            }
        }
        match ch {
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                if depth > limits.max_depth {
                    return Err(ShapeError::TooDeep { max: limits.max_depth, line, column });
                }
                arrays.push(ch == '[');
                value_may_start = ch == '[';
            }
            ']' | '}' => {
                depth = depth.saturating_sub(1);
                arrays.pop();
            }
            // The key before it was a value of its own.
            ':' => {
                nodes += 1;
                value_may_start = true;
            }
            ',' => value_may_start = arrays.last() == Some(&true),
            _ => {}
        }
        if nodes > limits.max_nodes {
            return Err(ShapeError::TooManyNodes { max: limits.max_nodes, line, column });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Limits = Limits { max_depth: 4, max_nodes: 10 };

    #[test]
    fn yaml_within_the_limits_is_walked_to_the_end() {
        let mut events = 0;
        walk_yaml("a: [1, {b: 2}]\nc: d\n", SMALL, |_, _| events += 1).unwrap();
        assert!(events > 8, "{events}");
    }

    #[test]
    fn deep_yaml_stops_at_the_first_level_past_the_limit() {
        let text = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        // Past 255 flow levels saphyr stops by itself; before that, the walk stops at the limit.
        let error = walk_yaml(&text, SMALL, |_, _| {}).unwrap_err();
        assert!(matches!(error, ShapeError::TooDeep { max: 4, line: 1, .. }), "{error:?}");
        let error = walk_yaml("a: [[[[[[]]]]]]\n", SMALL, |_, _| {}).unwrap_err();
        // The mapping is level 1, so the fourth `[` is level 5.
        assert_eq!(error, ShapeError::TooDeep { max: 4, line: 1, column: 7 });
        let block = format!("a:\n  {}x\n", "- ".repeat(100_000));
        assert!(matches!(walk_yaml(&block, SMALL, |_, _| {}), Err(ShapeError::TooDeep { line: 2, .. })));
    }

    #[test]
    fn wide_yaml_stops_at_the_first_node_past_the_limit() {
        let text = format!("a: [{}]\n", vec!["x"; 1_000_000].join(", "));
        let error = walk_yaml(&text, SMALL, |_, _| {}).unwrap_err();
        assert!(matches!(error, ShapeError::TooManyNodes { max: 10, line: 1, .. }), "{error:?}");
    }

    #[test]
    fn malformed_yaml_is_a_syntax_error_with_its_position_and_no_content() {
        let error = walk_yaml("a: b\n c: secret-value\n", SMALL, |_, _| {}).unwrap_err();
        let ShapeError::Syntax { message, line, column } = &error else { panic!("{error:?}") };
        assert_eq!((*line, *column), (2, 3));
        assert!(!message.contains("secret-value"), "{message}");
    }

    #[test]
    fn json_depth_and_values_are_counted_outside_strings() {
        assert_eq!(check_json(r#"{"a": [1, 2, {"b": "[[[[[,,,,:::"}]}"#, SMALL), Ok(()));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(check_json(&deep, SMALL), Err(ShapeError::TooDeep { max: 4, line: 1, column: 5 }));
        let wide = format!("[{}]", vec!["0"; 100].join(",\n"));
        assert!(matches!(check_json(&wide, SMALL), Err(ShapeError::TooManyNodes { line: 10, .. })));
        assert_eq!(
            check_json(r#"{"s": "a\"[[[[[[b"}"#, SMALL),
            Ok(()),
            "an escaped quote stays in the string"
        );
    }
}
