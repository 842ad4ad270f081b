//! A `serde` deserializer over [`Node`] that attaches the YAML path and the line/column of the
//! offending node to every error, and turns serde's own errors into coded diagnostics
//! (`E002` unknown key with "did you mean", `E003` bad value or type, `E006` missing key).

use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Unexpected, Visitor};

use super::yaml::{Mark, Node, NodeKind, Scalar};
use crate::error::{Diagnostic, Severity};

/// Appends a key to a YAML path.
pub(crate) fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Appends a list index to a YAML path.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// The closest candidate to `word`, if it is close enough to be a plausible typo.
pub(crate) fn suggest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<String> {
    let limit = (word.chars().count() / 3).max(1);
    let lower = word.to_ascii_lowercase().replace('_', "-");
    candidates
        .into_iter()
        .map(|c| {
            let d = levenshtein(&lower, &c.to_ascii_lowercase().replace('_', "-"));
            (d, c)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_owned())
}

/// Optimal string alignment distance: insertions, deletions, substitutions and transpositions of
/// adjacent characters each cost 1 (`rbca` → `rbac` is one edit).
fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    let at = |i: usize, j: usize| i * w + j;
    for i in 0..=a.len() {
        if let Some(x) = d.get_mut(at(i, 0)) {
            *x = i;
        }
    }
    for j in 0..=b.len() {
        if let Some(x) = d.get_mut(at(0, j)) {
            *x = j;
        }
    }
    let get = |d: &[usize], i: usize, j: usize| d.get(at(i, j)).copied().unwrap_or(usize::MAX / 2);
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let (ca, cb) = (a.get(i - 1), b.get(j - 1));
            let cost = usize::from(ca != cb);
            let mut v = (get(&d, i - 1, j) + 1)
                .min(get(&d, i, j - 1) + 1)
                .min(get(&d, i - 1, j - 1) + cost);
            if i > 1 && j > 1 && ca == b.get(j - 2) && a.get(i - 2) == cb {
                v = v.min(get(&d, i - 2, j - 2) + 1);
            }
            if let Some(x) = d.get_mut(at(i, j)) {
                *x = v;
            }
        }
    }
    get(&d, a.len(), b.len())
}

fn one_of(expected: &[&str]) -> String {
    if expected.is_empty() {
        return "no keys are allowed here".into();
    }
    let list: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
    format!("expected one of {}", list.join(", "))
}

fn describe(u: &Unexpected<'_>) -> String {
    match u {
        Unexpected::Bool(_) => "a boolean".into(),
        Unexpected::Unsigned(_) | Unexpected::Signed(_) => "an integer".into(),
        Unexpected::Float(_) => "a number".into(),
        Unexpected::Str(_) | Unexpected::Char(_) => "a string".into(),
        Unexpected::Unit | Unexpected::Option => "null".into(),
        Unexpected::Seq => "a list".into(),
        Unexpected::Map => "a map".into(),
        other => other.to_string(),
    }
}

/// A deserialization error, located once it has crossed the node it concerns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeError(Box<DeErrorInner>);

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeErrorInner {
    pub code: &'static str,
    pub message: String,
    pub suggestion: Option<String>,
    pub path: Option<String>,
    pub mark: Option<Mark>,
    pub missing: Option<String>,
}

impl DeError {
    pub(crate) fn new(code: &'static str, message: String) -> Self {
        DeError(Box::new(DeErrorInner {
            code,
            message,
            suggestion: None,
            path: None,
            mark: None,
            missing: None,
        }))
    }

    /// Attaches a location unless a deeper node already did.
    pub(crate) fn locate(mut self, path: &str, mark: Mark) -> Self {
        if self.path.is_none() {
            self.path = Some(match &self.missing {
                Some(field) => child(path, field),
                None => path.to_owned(),
            });
            self.mark = Some(mark);
        }
        self
    }

    pub(crate) fn into_diagnostic(self) -> Diagnostic {
        let e = *self.0;
        Diagnostic::new(
            e.code,
            Severity::Error,
            e.path.as_deref().unwrap_or(""),
            e.mark.unwrap_or_default(),
            e.message,
        )
        .with_suggestion(e.suggestion)
    }
}

impl std::ops::Deref for DeError {
    type Target = DeErrorInner;

    fn deref(&self) -> &DeErrorInner {
        &self.0
    }
}

impl std::ops::DerefMut for DeError {
    fn deref_mut(&mut self) -> &mut DeErrorInner {
        &mut self.0
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new("E003", msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        let expected = exp.to_string();
        let mut message = format!("expected {expected}, found {}", describe(&unexp));
        if expected.contains("string")
            && matches!(
                unexp,
                Unexpected::Float(_)
                    | Unexpected::Signed(_)
                    | Unexpected::Unsigned(_)
                    | Unexpected::Bool(_)
            )
        {
            message.push_str(" (quote the value to make it a string)");
        }
        DeError::new("E003", message)
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new("E003", format!("invalid value {unexp}: expected {exp}"))
    }

    fn invalid_length(len: usize, exp: &dyn de::Expected) -> Self {
        DeError::new("E003", format!("invalid length {len}: expected {exp}"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut e = DeError::new(
            "E003",
            format!("unknown value `{variant}`; {}", one_of(expected)),
        );
        e.suggestion = suggest(variant, expected.iter().copied());
        e
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut e = DeError::new(
            "E002",
            format!("unknown key `{field}`; {}", one_of(expected)),
        );
        e.suggestion = suggest(field, expected.iter().copied());
        e
    }

    fn missing_field(field: &'static str) -> Self {
        let mut e = DeError::new("E006", format!("missing required key `{field}`"));
        e.missing = Some(field.to_owned());
        e
    }

    fn duplicate_field(field: &'static str) -> Self {
        DeError::new("E003", format!("duplicate key `{field}`"))
    }
}

/// Deserializes `T` from a node, with `path` naming the node in errors.
pub(crate) fn from_node<T: DeserializeOwned>(node: &Node, path: &str) -> Result<T, DeError> {
    T::deserialize(NodeDe {
        node,
        path: path.to_owned(),
    })
}

/// The string value of a map key, or an error located at the key.
pub(crate) fn key_str<'n>(key: &'n Node, path: &str) -> Result<&'n str, DeError> {
    key.as_str().ok_or_else(|| {
        DeError::new(
            "E003",
            format!("map keys must be strings, found {}", key.type_name()),
        )
        .locate(path, key.mark)
    })
}

/// Rejects a map with the same key twice, pointing at the second occurrence.
pub(crate) fn check_duplicate_keys(pairs: &[(Node, Node)], path: &str) -> Result<(), DeError> {
    let mut seen = std::collections::HashSet::new();
    for (k, _) in pairs {
        let key = key_str(k, path)?;
        if !seen.insert(key) {
            return Err(DeError::new("E003", format!("duplicate key `{key}`"))
                .locate(&child(path, key), k.mark));
        }
    }
    Ok(())
}

pub(crate) struct NodeDe<'a> {
    node: &'a Node,
    path: String,
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let mark = self.node.mark;
        let result = match &self.node.kind {
            NodeKind::Scalar(Scalar::Null) => visitor.visit_unit(),
            NodeKind::Scalar(Scalar::Bool(b)) => visitor.visit_bool(*b),
            NodeKind::Scalar(Scalar::Int(i)) => visitor.visit_i64(*i),
            NodeKind::Scalar(Scalar::Float(f)) => visitor.visit_f64(*f),
            NodeKind::Scalar(Scalar::Str(s)) => visitor.visit_str(s),
            NodeKind::Seq(items) => visitor.visit_seq(SeqDe {
                iter: items.iter().enumerate(),
                path: &self.path,
            }),
            NodeKind::Map(pairs) => {
                check_duplicate_keys(pairs, &self.path)?;
                visitor.visit_map(MapDe {
                    iter: pairs.iter(),
                    pending: None,
                    path: &self.path,
                })
            }
        };
        result.map_err(|e| e.locate(&self.path, mark))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if matches!(self.node.kind, NodeKind::Scalar(Scalar::Null)) {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let mark = self.node.mark;
        let result = match &self.node.kind {
            NodeKind::Scalar(Scalar::Str(s)) => {
                visitor.visit_enum(IntoDeserializer::<DeError>::into_deserializer(s.as_str()))
            }
            _ => Err(DeError::new(
                "E003",
                format!("expected a string, found {}", self.node.type_name()),
            )),
        };
        result.map_err(|e| e.locate(&self.path, mark))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

struct SeqDe<'a> {
    iter: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
    path: &'a str,
}

impl<'de> de::SeqAccess<'de> for SeqDe<'_> {
    type Error = DeError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.iter.next() {
            None => Ok(None),
            Some((i, node)) => seed
                .deserialize(NodeDe {
                    node,
                    path: index(self.path, i),
                })
                .map(Some),
        }
    }
}

struct MapDe<'a> {
    iter: std::slice::Iter<'a, (Node, Node)>,
    pending: Option<&'a (Node, Node)>,
    path: &'a str,
}

impl<'de> de::MapAccess<'de> for MapDe<'_> {
    type Error = DeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(pair) = self.iter.next() else {
            return Ok(None);
        };
        self.pending = Some(pair);
        let key = key_str(&pair.0, self.path)?;
        seed.deserialize(IntoDeserializer::<DeError>::into_deserializer(key))
            .map(Some)
            .map_err(|e| e.locate(&child(self.path, key), pair.0.mark))
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DeError> {
        let Some(pair) = self.pending.take() else {
            return Err(DeError::new("E003", "value without a key".into()));
        };
        let key = key_str(&pair.0, self.path)?;
        seed.deserialize(NodeDe {
            node: &pair.1,
            path: child(self.path, key),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_find_close_words() {
        assert_eq!(
            suggest("actoin", ["action", "entities"]),
            Some("action".into())
        );
        assert_eq!(suggest("zzz", ["action", "entities"]), None);
        assert_eq!(
            suggest("pii_detector", ["pii-detector", "rbac"]),
            Some("pii-detector".into())
        );
    }
}
