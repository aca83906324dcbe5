//! Where each key and value of a YAML file stands, so that a problem found after parsing (an unknown
//! field in a flow, a formula that does not type-check) can still name its line and column.

use crate::diagnostics::Position;
use herald_openapi::limits::{Limits, ShapeError, walk_yaml};
use saphyr_parser::Event;
use std::collections::HashMap;

/// One step of a [`YamlPath`]: a mapping key or a list index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Segment {
    Key(Box<str>),
    Index(usize),
}

/// A path into a YAML document: `elements.send_sms.inputs.target`, `assign[2]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct YamlPath(Vec<Segment>);

impl YamlPath {
    pub fn root() -> YamlPath {
        YamlPath(Vec::new())
    }

    pub fn key(&self, key: &str) -> YamlPath {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.into()));
        path
    }

    pub fn index(&self, index: usize) -> YamlPath {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }
}

impl std::fmt::Display for YamlPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if n == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Positions of keys and values, as a tree of the document's nodes.
///
/// Each node is stored once under its parent, with its own key only, so the index takes memory in
/// proportion to the file (a map of whole paths would copy every ancestor's key into every node's
/// path: long keys over many levels made that grow with the square of the file).
#[derive(Clone, Debug)]
pub struct Locator {
    /// (parent node, step) -> node; node 0 is the document.
    children: HashMap<(u32, Segment), u32>,
    nodes: Vec<Spots>,
}

impl Default for Locator {
    fn default() -> Locator {
        Locator { children: HashMap::new(), nodes: vec![Spots::default()] }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Spots {
    key: Option<Position>,
    value: Option<ValueSpot>,
}

/// Where a value starts, and whether its text can be offset into (a plain or quoted scalar on one line).
#[derive(Clone, Copy, Debug)]
struct ValueSpot {
    position: Position,
    /// Columns between the node start and the first character of the scalar's content (1 for quotes).
    content_shift: Option<usize>,
}

enum Frame {
    /// A mapping, and the node of the key whose value comes next.
    Mapping {
        node: u32,
        pending: Option<u32>,
    },
    Sequence {
        node: u32,
        next: usize,
    },
}

impl Locator {
    /// Indexes a document, and checks its shape on the way: the walk stops at the first syntax error
    /// or the first node past `limits`, so a file that fails here must not reach a serde parser.
    pub fn index(text: &str, limits: Limits) -> Result<Locator, ShapeError> {
        let mut locator = Locator::default();
        let mut stack: Vec<Frame> = Vec::new();
        walk_yaml(text, limits, |event, span| {
            let position = Position { line: span.start.line(), column: span.start.col() + 1 };
            match event {
                Event::Scalar(value, style, _, _) => {
                    let shift = match style {
                        saphyr_parser::ScalarStyle::Plain => Some(0),
                        saphyr_parser::ScalarStyle::SingleQuoted
                        | saphyr_parser::ScalarStyle::DoubleQuoted => Some(1),
                        _ => None,
                    };
                    let spot = ValueSpot { position, content_shift: shift };
                    match stack.last_mut() {
                        Some(Frame::Mapping { node, pending }) => match pending.take() {
                            None => {
                                let key = locator.child(*node, Segment::Key(value.as_ref().into()));
                                locator.nodes[key as usize].key = Some(position);
                                *pending = Some(key);
                            }
                            Some(key) => locator.nodes[key as usize].value = Some(spot),
                        },
                        Some(Frame::Sequence { node, next }) => {
                            let item = locator.child(*node, Segment::Index(*next));
                            *next += 1;
                            locator.nodes[item as usize].value = Some(spot);
                        }
                        None => {}
                    }
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let node = match stack.last_mut() {
                        // A mapping or list used as a key has no name of its own.
                        Some(Frame::Mapping { node, pending }) => {
                            pending.take().unwrap_or_else(|| locator.child(*node, Segment::Key("".into())))
                        }
                        Some(Frame::Sequence { node, next }) => {
                            let item = locator.child(*node, Segment::Index(*next));
                            *next += 1;
                            item
                        }
                        None => 0,
                    };
                    locator.nodes[node as usize].value = Some(ValueSpot { position, content_shift: None });
                    stack.push(if matches!(event, Event::MappingStart(..)) {
                        Frame::Mapping { node, pending: None }
                    } else {
                        Frame::Sequence { node, next: 0 }
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
        })?;
        Ok(locator)
    }

    fn child(&mut self, parent: u32, segment: Segment) -> u32 {
        let nodes = &mut self.nodes;
        *self.children.entry((parent, segment)).or_insert_with(|| {
            nodes.push(Spots::default());
            (nodes.len() - 1) as u32
        })
    }

    /// The nodes along `segments` from the document down, as far as they exist.
    fn chain(&self, segments: impl IntoIterator<Item = Segment>) -> Vec<u32> {
        let mut chain = vec![0];
        for segment in segments {
            let parent = *chain.last().unwrap_or(&0);
            match self.children.get(&(parent, segment)) {
                Some(node) => chain.push(*node),
                None => break,
            }
        }
        chain
    }

    /// The key's position, else the value's, of the deepest node of `chain` that has one.
    fn nearest(&self, chain: &[u32]) -> Position {
        chain
            .iter()
            .rev()
            .find_map(|node| {
                let spots = &self.nodes[*node as usize];
                spots.key.or(spots.value.map(|v| v.position))
            })
            .unwrap_or(Position { line: 1, column: 1 })
    }

    /// The position of a key (`inputs.target` -> where `target:` stands), falling back to the nearest
    /// enclosing node that has one.
    pub fn key(&self, path: &YamlPath) -> Position {
        self.nearest(&self.chain(path.0.iter().cloned()))
    }

    /// The position of a value, `offset` bytes into its text when the text can be offset into exactly
    /// (a scalar on one line); otherwise the value's start.
    pub fn value(&self, path: &YamlPath, offset: Option<usize>) -> Position {
        let chain = self.chain(path.0.iter().cloned());
        let spot = (chain.len() == path.0.len() + 1)
            .then(|| self.nodes[*chain.last().unwrap_or(&0) as usize].value)
            .flatten();
        match spot {
            Some(spot) => match (spot.content_shift, offset) {
                (Some(shift), Some(offset)) => {
                    Position { line: spot.position.line, column: spot.position.column + shift + offset }
                }
                _ => spot.position,
            },
            None => self.key(path),
        }
    }

    /// The position of the node a JSON pointer (`#/paths/~1sms/post/parameters/0/name`) names, or of
    /// its nearest enclosing node: how a spec's errors, which carry pointers, get a line and column.
    pub fn pointer(&self, pointer: &str) -> Position {
        let rest = pointer.strip_prefix('#').unwrap_or(pointer);
        let mut chain = vec![0u32];
        for token in rest.split('/').skip(1) {
            let token = token.replace("~1", "/").replace("~0", "~");
            let parent = *chain.last().unwrap_or(&0);
            let node = self.children.get(&(parent, Segment::Key(token.as_str().into()))).or_else(|| {
                token.parse().ok().and_then(|index| self.children.get(&(parent, Segment::Index(index))))
            });
            match node {
                Some(node) => chain.push(*node),
                None => break,
            }
        }
        self.nearest(&chain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_depth: 64, max_nodes: 1000 };

    const FLOW: &str = "trigger:\n  object: Lead\nelements:\n  send:\n    inputs:\n      target: \"{!$Record.Phon}\"\n    next: done\n  list:\n    assign:\n      - a: 1\n      - b: two\n";

    #[test]
    fn finds_keys_and_values_by_path() {
        let locator = Locator::index(FLOW, LIMITS).unwrap();
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
        let locator = Locator::index(FLOW, LIMITS).unwrap();
        let missing = YamlPath::root().key("elements").key("send").key("nothing").key("here");
        assert_eq!(locator.key(&missing), Position { line: 4, column: 3 });
    }

    #[test]
    fn broken_yaml_is_a_syntax_error_never_a_panic() {
        for text in ["a: [", "- - - {", "\"unterminated", "a:\n  - b\n c: d"] {
            assert!(
                matches!(Locator::index(text, LIMITS), Err(ShapeError::Syntax { .. })),
                "{text:?} is not YAML"
            );
        }
    }

    #[test]
    fn json_pointers_find_keys_and_list_items() {
        let spec = "{\"paths\": {\"/sms\": {\"post\": {\n  \"parameters\": [\n    {\"name\": \"Host\", \"in\": \"header\"}]}}}}";
        let locator = Locator::index(spec, LIMITS).unwrap();
        assert_eq!(locator.pointer("#/paths/~1sms/post/parameters/0/name"), Position { line: 3, column: 6 });
        assert_eq!(locator.pointer("#/paths/~1sms/post/nothing"), Position { line: 1, column: 21 });
    }

    #[test]
    fn paths_render_as_dotted_keys_and_indices() {
        let path = YamlPath::root().key("elements").key("a").key("assign").index(2).key("x");
        assert_eq!(path.to_string(), "elements.a.assign[2].x");
    }
}
