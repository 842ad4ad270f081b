//! A YAML document as a tree of nodes that remember where they start.
//!
//! `serde` deserialization alone cannot give line and column for semantic checks (a dangling
//! reference is only known after the whole document is read), so the pack is first loaded into
//! this tree, then deserialized from it with paths and marks attached to every error.

use std::collections::HashMap;
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// One step of a path into a YAML document: a map key or a list index.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Seg<'a> {
    /// A map key.
    K(&'a str),
    /// A list index.
    I(usize),
}

/// Hard cap on the number of nodes a document may expand to (aliases included), so that
/// "billion laughs" documents fail with a clear error instead of exhausting memory.
pub const MAX_NODES: usize = 100_000;
/// Hard cap on nesting depth.
pub const MAX_DEPTH: usize = 64;

/// A 1-based line and column in the source document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Mark {
    /// Line, starting at 1.
    pub line: u32,
    /// Column, starting at 1.
    pub column: u32,
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl From<Marker> for Mark {
    fn from(m: Marker) -> Self {
        Mark {
            line: u32::try_from(m.line()).unwrap_or(u32::MAX),
            column: u32::try_from(m.col()).unwrap_or(u32::MAX).saturating_add(1),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: NodeKind,
    pub mark: Mark,
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar(Scalar::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// A short description of the node's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar(Scalar::Null) => "null",
            NodeKind::Scalar(Scalar::Bool(_)) => "a boolean",
            NodeKind::Scalar(Scalar::Int(_)) => "an integer",
            NodeKind::Scalar(Scalar::Float(_)) => "a number",
            NodeKind::Scalar(Scalar::Str(_)) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a map",
        }
    }
}

/// Why a document could not be loaded as a tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LoadError {
    pub message: String,
    pub mark: Mark,
    pub limit: bool,
}

impl From<LoadError> for crate::error::PackError {
    fn from(e: LoadError) -> Self {
        crate::error::PackError {
            errors: vec![crate::error::Diagnostic::new(
                if e.limit { "E007" } else { "E000" },
                crate::error::Severity::Error,
                "",
                e.mark,
                e.message,
            )],
            warnings: Vec::new(),
        }
    }
}

/// Loads exactly one YAML document.
pub(crate) fn load(src: &str) -> Result<Node, LoadError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(src);
    if let Err(e) = parser.load(&mut builder, true) {
        let mark = Mark::from(*e.marker());
        return Err(LoadError {
            message: format!("yaml syntax error: {}", e.info()),
            mark,
            limit: false,
        });
    }
    if let Some(err) = builder.error {
        return Err(err);
    }
    match builder.docs.len() {
        0 => Err(LoadError {
            message: "the document is empty".into(),
            mark: Mark { line: 1, column: 1 },
            limit: false,
        }),
        1 => builder.docs.pop().ok_or_else(|| LoadError {
            message: "the document is empty".into(),
            mark: Mark { line: 1, column: 1 },
            limit: false,
        }),
        _ => Err(LoadError {
            message: "a pack is one YAML document; found several (`---`)".into(),
            mark: builder.second_doc.unwrap_or_default(),
            limit: false,
        }),
    }
}

enum Frame {
    Seq(Vec<Node>, Mark, usize),
    Map(Vec<(Node, Node)>, Option<Node>, Mark, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    error: Option<LoadError>,
    second_doc: Option<Mark>,
}

fn count_nodes(n: &Node) -> usize {
    match &n.kind {
        NodeKind::Scalar(_) => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        NodeKind::Map(pairs) => {
            1 + pairs
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
    }
}

impl Builder {
    fn fail(&mut self, message: String, mark: Mark, limit: bool) {
        if self.error.is_none() {
            self.error = Some(LoadError {
                message,
                mark,
                limit,
            });
        }
    }

    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if !self.docs.is_empty() && self.second_doc.is_none() {
                    self.second_doc = Some(node.mark);
                }
                self.docs.push(node);
            }
            Some(Frame::Seq(items, _, _)) => items.push(node),
            Some(Frame::Map(pairs, key, _, _)) => match key.take() {
                None => *key = Some(node),
                Some(k) => pairs.push((k, node)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, marker: Marker) {
        if self.error.is_some() {
            return;
        }
        let mark = Mark::from(marker);
        match ev {
            Event::Scalar(value, style, anchor, tag) => {
                let forced_str = tag
                    .as_ref()
                    .is_some_and(|t| t.handle == "tag:yaml.org,2002:" && t.suffix == "str")
                    || tag.as_ref().is_some_and(|t| t.suffix == "str");
                let scalar = if style == TScalarStyle::Plain && !forced_str {
                    resolve_plain(value)
                } else {
                    Scalar::Str(value)
                };
                self.nodes += 1;
                if self.nodes > MAX_NODES {
                    self.fail(
                        format!("the document has more than {MAX_NODES} nodes"),
                        mark,
                        true,
                    );
                    return;
                }
                self.push(
                    Node {
                        kind: NodeKind::Scalar(scalar),
                        mark,
                    },
                    anchor,
                );
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    self.fail(
                        format!("the document nests deeper than {MAX_DEPTH} levels"),
                        mark,
                        true,
                    );
                    return;
                }
                self.nodes += 1;
                if matches!(ev, Event::SequenceStart(..)) {
                    self.stack.push(Frame::Seq(Vec::new(), mark, anchor));
                } else {
                    self.stack.push(Frame::Map(Vec::new(), None, mark, anchor));
                }
            }
            // A block collection's start event is marked after its first key or item; a flow
            // collection's at its bracket. Either way the earlier of the two is where it starts.
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(items, m, anchor)) => {
                    let mark = items.first().map_or(m, |n| earlier(m, n.mark));
                    self.push(
                        Node {
                            kind: NodeKind::Seq(items),
                            mark,
                        },
                        anchor,
                    );
                }
                Some(Frame::Map(pairs, _, m, anchor)) => {
                    let mark = pairs.first().map_or(m, |(k, _)| earlier(m, k.mark));
                    self.push(
                        Node {
                            kind: NodeKind::Map(pairs),
                            mark,
                        },
                        anchor,
                    );
                }
                None => self.fail("unbalanced yaml structure".into(), mark, false),
            },
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    self.nodes += count_nodes(&node);
                    if self.nodes > MAX_NODES {
                        self.fail(
                            format!("aliases expand the document past {MAX_NODES} nodes"),
                            mark,
                            true,
                        );
                        return;
                    }
                    node.mark = mark;
                    self.push(node, 0);
                }
                None => self.fail("alias to an unknown anchor".into(), mark, false),
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

fn earlier(a: Mark, b: Mark) -> Mark {
    if (b.line, b.column) < (a.line, a.column) {
        b
    } else {
        a
    }
}

/// Resolves a plain scalar by the YAML 1.2 core schema.
fn resolve_plain(value: String) -> Scalar {
    match value.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "true" | "True" | "TRUE" => return Scalar::Bool(true),
        "false" | "False" | "FALSE" => return Scalar::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Scalar::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Scalar::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Scalar::Float(f64::NAN),
        _ => {}
    }
    let bytes = value.as_bytes();
    let digits = bytes
        .strip_prefix(b"-")
        .or_else(|| bytes.strip_prefix(b"+"))
        .unwrap_or(bytes);
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        if let Ok(i) = value.parse::<i64>() {
            return Scalar::Int(i);
        }
    }
    if let Some(hex) = value.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Scalar::Int(i);
        }
    }
    if let Some(oct) = value.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Scalar::Int(i);
        }
    }
    if is_float(bytes) {
        if let Ok(f) = value.parse::<f64>() {
            return Scalar::Float(f);
        }
    }
    Scalar::Str(value)
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_float(b: &[u8]) -> bool {
    let b = b
        .strip_prefix(b"-")
        .or_else(|| b.strip_prefix(b"+"))
        .unwrap_or(b);
    let (mantissa, exp) = match b.iter().position(|c| *c == b'e' || *c == b'E') {
        Some(p) => (b.get(..p).unwrap_or(&[]), b.get(p + 1..)),
        None => (b, None),
    };
    let mut parts = mantissa.splitn(2, |c| *c == b'.');
    let int = parts.next().unwrap_or(&[]);
    let frac = parts.next();
    let int_ok = int.iter().all(u8::is_ascii_digit);
    let frac_ok = frac.is_none_or(|f| f.iter().all(u8::is_ascii_digit));
    let has_digits = !int.is_empty() || frac.is_some_and(|f| !f.is_empty());
    let exp_ok = exp.is_none_or(|e| {
        let e = e
            .strip_prefix(b"-")
            .or_else(|| e.strip_prefix(b"+"))
            .unwrap_or(e);
        !e.is_empty() && e.iter().all(u8::is_ascii_digit)
    });
    int_ok && frac_ok && has_digits && exp_ok && (frac.is_some() || exp.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_one_based() {
        let n = load("a: 1\nb:\n  c: x\n").unwrap();
        let NodeKind::Map(pairs) = n.kind else {
            panic!()
        };
        assert_eq!(pairs[0].0.mark, Mark { line: 1, column: 1 });
        assert_eq!(pairs[1].0.mark, Mark { line: 2, column: 1 });
        let NodeKind::Map(inner) = &pairs[1].1.kind else {
            panic!()
        };
        assert_eq!(inner[0].0.mark, Mark { line: 3, column: 3 });
        assert_eq!(inner[0].1.kind, NodeKind::Scalar(Scalar::Str("x".into())));
    }

    #[test]
    fn plain_scalars_resolve_by_core_schema() {
        assert_eq!(resolve_plain("1.0".into()), Scalar::Float(1.0));
        assert_eq!(resolve_plain("12".into()), Scalar::Int(12));
        assert_eq!(resolve_plain("1.2.3".into()), Scalar::Str("1.2.3".into()));
        assert_eq!(resolve_plain("yes".into()), Scalar::Str("yes".into()));
        assert_eq!(resolve_plain("~".into()), Scalar::Null);
        assert_eq!(resolve_plain("1e3".into()), Scalar::Float(1000.0));
        assert_eq!(resolve_plain("e3".into()), Scalar::Str("e3".into()));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = load(&doc).unwrap_err();
        assert!(err.limit);
    }

    #[test]
    fn syntax_errors_have_marks() {
        let err = load("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.message.starts_with("yaml syntax error"));
        assert!(err.mark.line >= 1);
    }
}
