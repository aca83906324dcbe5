//! Where each key and value of a YAML file stands, so that a problem found after parsing (an unknown
//! field in a flow, a formula that does not type-check) can still name its line and column.

use crate::diagnostics::Position;
use saphyr_parser::{Event, Parser};
use std::collections::HashMap;

/// A path into a YAML document: `elements.send_sms.inputs.target`, `assign[2]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct YamlPath(String);

impl YamlPath {
    pub fn root() -> YamlPath {
        YamlPath(String::new())
    }

    pub fn key(&self, key: &str) -> YamlPath {
        if self.0.is_empty() { YamlPath(key.to_string()) } else { YamlPath(format!("{}.{key}", self.0)) }
    }

    pub fn index(&self, index: usize) -> YamlPath {
        YamlPath(format!("{}[{index}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The enclosing path, for falling back when a node has no position of its own.
    fn parent(&self) -> Option<YamlPath> {
        if self.0.is_empty() {
            return None;
        }
        let cut = self.0.rfind(['.', '[']).unwrap_or(0);
        Some(YamlPath(self.0[..cut].to_string()))
    }
}

impl std::fmt::Display for YamlPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Positions of keys and values, indexed by path.
#[derive(Clone, Debug, Default)]
pub struct Locator {
    keys: HashMap<YamlPath, Position>,
    values: HashMap<YamlPath, ValueSpot>,
}

/// Where a value starts, and whether its text can be offset into (a plain or quoted scalar on one line).
#[derive(Clone, Copy, Debug)]
struct ValueSpot {
    position: Position,
    /// Columns between the node start and the first character of the scalar's content (1 for quotes).
    content_shift: Option<usize>,
}

enum Frame {
    Mapping { path: YamlPath, pending_key: Option<String> },
    Sequence { path: YamlPath, next: usize },
}

impl Locator {
    /// Indexes a document. A document the parser refuses yields an empty locator; the serde pass
    /// reports the syntax error with its own position.
    pub fn index(text: &str) -> Locator {
        let mut locator = Locator::default();
        let mut stack: Vec<Frame> = Vec::new();
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let position = Position { line: span.start.line(), column: span.start.col() + 1 };
            match event {
                Event::Scalar(value, style, _, _) => {
                    let shift = match style {
                        saphyr_parser::ScalarStyle::Plain => Some(0),
                        saphyr_parser::ScalarStyle::SingleQuoted
                        | saphyr_parser::ScalarStyle::DoubleQuoted => Some(1),
                        _ => None,
                    };
                    match stack.last_mut() {
                        Some(Frame::Mapping { path, pending_key }) => match pending_key.take() {
                            None => {
                                let key_path = path.key(&value);
                                locator.keys.insert(key_path, position);
                                *pending_key = Some(value.into_owned());
                            }
                            Some(key) => {
                                let value_path = path.key(&key);
                                locator
                                    .values
                                    .insert(value_path, ValueSpot { position, content_shift: shift });
                            }
                        },
                        Some(Frame::Sequence { path, next }) => {
                            let item_path = path.index(*next);
                            *next += 1;
                            locator.values.insert(item_path, ValueSpot { position, content_shift: shift });
                        }
                        None => {}
                    }
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let path = match stack.last_mut() {
                        Some(Frame::Mapping { path, pending_key }) => {
                            let key = pending_key.take().unwrap_or_default();
                            path.key(&key)
                        }
                        Some(Frame::Sequence { path, next }) => {
                            let item = path.index(*next);
                            *next += 1;
                            item
                        }
                        None => YamlPath::root(),
                    };
                    locator.values.insert(path.clone(), ValueSpot { position, content_shift: None });
                    stack.push(if matches!(event, Event::MappingStart(..)) {
                        Frame::Mapping { path, pending_key: None }
                    } else {
                        Frame::Sequence { path, next: 0 }
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
        }
        locator
    }

    /// The position of a key (`inputs.target` -> where `target:` stands), falling back to the nearest
    /// enclosing node that has one.
    pub fn key(&self, path: &YamlPath) -> Position {
        let mut current = Some(path.clone());
        while let Some(path) = current {
            if let Some(position) = self.keys.get(&path) {
                return *position;
            }
            if let Some(spot) = self.values.get(&path) {
                return spot.position;
            }
            current = path.parent();
        }
        Position { line: 1, column: 1 }
    }

    /// The position of a value, `offset` bytes into its text when the text can be offset into exactly
    /// (a scalar on one line); otherwise the value's start.
    pub fn value(&self, path: &YamlPath, offset: Option<usize>) -> Position {
        match self.values.get(path) {
            Some(spot) => match (spot.content_shift, offset) {
                (Some(shift), Some(offset)) => {
                    Position { line: spot.position.line, column: spot.position.column + shift + offset }
                }
                _ => spot.position,
            },
            None => self.key(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOW: &str = "trigger:\n  object: Lead\nelements:\n  send:\n    inputs:\n      target: \"{!$Record.Phon}\"\n    next: done\n  list:\n    assign:\n      - a: 1\n      - b: two\n";

    #[test]
    fn finds_keys_and_values_by_path() {
        let locator = Locator::index(FLOW);
        let target = YamlPath::root().key("elements").key("send").key("inputs").key("target");
        assert_eq!(locator.key(&target), Position { line: 6, column: 7 });
        assert_eq!(locator.value(&target, None), Position { line: 6, column: 15 });
        // offset into the quoted text: `{!` is 0, `$` is 2
        assert_eq!(locator.value(&target, Some(2)), Position { line: 6, column: 18 });
        let second = YamlPath::root().key("elements").key("list").key("assign").index(1).key("b");
        assert_eq!(locator.key(&second), Position { line: 11, column: 9 });
    }

    #[test]
    fn unknown_paths_fall_back_to_the_nearest_parent() {
        let locator = Locator::index(FLOW);
        let missing = YamlPath::root().key("elements").key("send").key("nothing").key("here");
        assert_eq!(locator.key(&missing), Position { line: 4, column: 3 });
    }

    #[test]
    fn broken_yaml_never_panics() {
        for text in ["a: [", "- - - {", ": :", "\"unterminated", "a:\n  - b\n c: d"] {
            let locator = Locator::index(text);
            let _ = locator.key(&YamlPath::root().key("a"));
        }
    }
}
