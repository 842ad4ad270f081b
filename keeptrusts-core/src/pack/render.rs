//! Writes a [`PackSpec`] back as block YAML; `parse(render(s)) == s`.

use std::fmt::Write as _;

use serde_json::Value;

use super::spec::PackSpec;

/// Renders a spec as a YAML document.
///
/// # Errors
/// Only if the spec holds a value JSON cannot represent (it never does for specs built by
/// [`parse`](super::parse)).
pub fn render(spec: &PackSpec) -> Result<String, serde_json::Error> {
    let value = serde_json::to_value(spec)?;
    let mut out = String::new();
    emit(&value, 0, &mut out);
    Ok(out)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        // JSON string escapes are valid YAML double-quoted escapes.
        Value::String(s) => Some(Value::String(s.clone()).to_string()),
        Value::Array(a) if a.is_empty() => Some("[]".into()),
        Value::Object(o) if o.is_empty() => Some("{}".into()),
        _ => None,
    }
}

fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !k.starts_with('-');
    if plain {
        k.to_owned()
    } else {
        Value::String(k.to_owned()).to_string()
    }
}

fn emit(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (k, val) in map {
                match scalar(val) {
                    Some(s) => {
                        let _ = writeln!(out, "{pad}{}: {s}", key(k));
                    }
                    None => {
                        let _ = writeln!(out, "{pad}{}:", key(k));
                        emit(val, indent + 2, out);
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match scalar(item) {
                    Some(s) => {
                        let _ = writeln!(out, "{pad}- {s}");
                    }
                    None => {
                        // Emit the nested block two columns in, then turn its first line's
                        // indentation into the list dash.
                        let mut inner = String::new();
                        emit(item, indent + 2, &mut inner);
                        let body = inner.get(indent + 2..).unwrap_or("");
                        let _ = write!(out, "{pad}- {body}");
                    }
                }
            }
        }
        other => {
            if let Some(s) = scalar(other) {
                let _ = writeln!(out, "{pad}{s}");
            }
        }
    }
}
