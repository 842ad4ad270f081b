//! Node bindings: type conversion and error mapping only; every rule lives in keeptrusts-core.
//! Errors are thrown with `err.code` set to the core's stable code.

use std::sync::Arc;

use keeptrusts_core::escalation::{self, EscalationStore, Resolution};
use keeptrusts_core::{self as core, AdminError, PackError, RequestError};
use napi_derive::napi;
use serde_json::Value;

type Result<T> = napi::Result<T, String>;

/// The one place core errors become JS errors.
fn js_error(code: &str, message: String) -> napi::Error<String> {
    napi::Error::new(code.to_owned(), message)
}

fn pack_error(e: &PackError) -> napi::Error<String> {
    // The message carries the first diagnostic; `lint()` returns them all.
    js_error(e.code(), e.to_string())
}

fn request_error(e: &RequestError) -> napi::Error<String> {
    js_error(e.code(), e.to_string())
}

fn admin_error(e: &AdminError) -> napi::Error<String> {
    js_error(e.code(), e.to_string())
}

fn from_js<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T> {
    serde_json::from_value(v)
        .map_err(|e| js_error("invalid_argument", format!("invalid {what}: {e}")))
}

fn to_js<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| js_error("internal", e.to_string()))
}

fn context(v: Option<Value>) -> Result<core::RequestContext> {
    match v {
        Some(Value::Null) | None => Ok(core::RequestContext::default()),
        Some(v) => from_js(v, "context"),
    }
}

/// In-memory escalation store.
#[napi]
pub struct MemoryEscalations {
    inner: Arc<core::MemoryEscalations>,
}

#[napi]
impl MemoryEscalations {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        MemoryEscalations {
            inner: Arc::new(core::MemoryEscalations::new()),
        }
    }

    /// Approve or deny an escalation as `reviewer` (an owner, or an admin of its team).
    #[napi]
    pub fn resolve(
        &self,
        reviewer: Value,
        escalation_id: String,
        resolution: String,
        now_ms: i64,
    ) -> Result<Value> {
        let reviewer: core::Principal = from_js(reviewer, "reviewer")?;
        let resolution: Resolution =
            from_js(Value::String(resolution), "resolution (approve | deny)")?;
        let e = escalation::resolve(
            self.inner.as_ref(),
            &reviewer,
            &escalation_id,
            resolution,
            now_ms,
        )
        .map_err(|e| admin_error(&e))?;
        to_js(&e)
    }

    /// One escalation, or null.
    #[napi]
    pub fn get(&self, escalation_id: String) -> Result<Value> {
        let e = self
            .inner
            .get(&escalation_id)
            .map_err(|e| request_error(&RequestError::Store(e)))?;
        to_js(&e)
    }

    /// Escalations of a team (every team when omitted), newest first.
    #[napi]
    pub fn list(&self, team: Option<String>) -> Result<Value> {
        let v = self
            .inner
            .list(team.as_deref())
            .map_err(|e| request_error(&RequestError::Store(e)))?;
        to_js(&v)
    }
}

/// A compiled, immutable pack.
#[napi]
pub struct Engine {
    inner: core::Engine,
}

#[napi]
impl Engine {
    /// Parse, validate and compile a YAML pack; throws with `err.code` E000–E007.
    #[napi(factory)]
    pub fn from_yaml(source: String) -> Result<Engine> {
        let inner = core::Engine::from_yaml(&source).map_err(|e| pack_error(&e))?;
        Ok(Engine { inner })
    }

    /// Read a YAML pack from a file.
    #[napi(factory)]
    pub fn from_file(path: String) -> Result<Engine> {
        let src = std::fs::read_to_string(&path)
            .map_err(|e| js_error("io_error", format!("cannot read {path}: {e}")))?;
        Engine::from_yaml(src)
    }

    /// Validation warnings.
    #[napi(getter)]
    pub fn warnings(&self) -> Result<Value> {
        to_js(&self.inner.warnings())
    }

    /// Team slugs named by targeting lists.
    #[napi]
    pub fn named_teams(&self) -> Vec<String> {
        self.inner.named_teams()
    }

    /// The effective chain (policy kind names, execution order) for a principal.
    #[napi]
    pub fn effective_chain(&self, principal: Value) -> Result<Vec<String>> {
        let p: core::Principal = from_js(principal, "principal")?;
        Ok(self
            .inner
            .effective_chain(&p)
            .kinds
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect())
    }

    /// Evaluate a request (input phase); returns the decision object.
    #[napi]
    pub fn evaluate(
        &self,
        principal: Value,
        request: Value,
        escalations: &MemoryEscalations,
        context_: Option<Value>,
    ) -> Result<Value> {
        let p: core::Principal = from_js(principal, "principal")?;
        let r: core::ChatRequest = from_js(request, "request")?;
        let ctx = context(context_)?;
        let stores = core::Stores::new(escalations.inner.as_ref());
        let d = self
            .inner
            .evaluate(&p, &r, &ctx, &stores)
            .map_err(|e| request_error(&e))?;
        to_js(&d)
    }

    /// Evaluate a provider response (output phase); returns the decision object.
    #[napi]
    pub fn evaluate_output(
        &self,
        principal: Value,
        response: Value,
        context_: Option<Value>,
    ) -> Result<Value> {
        let p: core::Principal = from_js(principal, "principal")?;
        let r: core::ChatResponse = from_js(response, "response")?;
        let ctx = context(context_)?;
        let d = self
            .inner
            .evaluate_output(&p, &r, &ctx)
            .map_err(|e| request_error(&e))?;
        to_js(&d)
    }
}

/// Validate a pack: `{ valid, errors, warnings }`.
#[napi]
pub fn lint(source: String) -> Value {
    match core::pack::parse(&source) {
        Ok(p) => serde_json::json!({ "valid": true, "errors": [], "warnings": p.warnings }),
        Err(e) => serde_json::json!({ "valid": false, "errors": e.errors, "warnings": e.warnings }),
    }
}

fn detector(entities: Option<Vec<String>>) -> Result<core::detect::builtin::BuiltinDetector> {
    let types: Vec<core::detect::EntityType> = match entities {
        Some(list) => from_js(Value::from(list), "entities")?,
        None => core::detect::builtin::BuiltinDetector::all_types(),
    };
    core::detect::builtin::BuiltinDetector::new(&types, &[], &[])
        .map_err(|(_, e)| js_error("invalid_argument", e))
}

/// Sensitive values in `text`: `{start, end, type}` in UTF-16 code units (JavaScript string
/// indices), sorted, without overlaps.
#[napi]
pub fn scan(text: String, entities: Option<Vec<String>>) -> Result<Value> {
    use core::detect::{offsets, resolve_overlaps, Detector, OffsetUnit};
    let d = detector(entities)?;
    let mut found = Vec::new();
    d.scan(&text, &mut found);
    resolve_overlaps(&mut found);
    let spans: Vec<Value> = found
        .iter()
        .zip(offsets(&text, &found, OffsetUnit::Utf16))
        .map(|(f, (start, end))| serde_json::json!({"start": start, "end": end, "type": f.entity.as_str()}))
        .collect();
    Ok(Value::from(spans))
}

/// Options of [`redact`].
#[napi(object)]
pub struct RedactOptions {
    /// `label` (default), `mask`, `hash` or `partial`.
    pub format: Option<String>,
    /// Entity types to look for (default: all).
    pub entities: Option<Vec<String>>,
    /// Keys the `hash` format.
    pub hash_key: Option<String>,
}

/// `text` with every detected value replaced by a marker.
#[napi]
pub fn redact(text: String, options: Option<RedactOptions>) -> Result<String> {
    use core::detect::{resolve_overlaps, Detector};
    let (format, entities, key) = match options {
        Some(o) => (o.format, o.entities, o.hash_key),
        None => (None, None, None),
    };
    let d = detector(entities)?;
    let marker_format = from_js(
        Value::from(format.unwrap_or_else(|| "label".into())),
        "format",
    )?;
    let o = core::pack::spec::RedactionOptions {
        marker_format: Some(marker_format),
        ..Default::default()
    };
    let r = core::redact::Redactor::new(
        Some(&o),
        Vec::new(),
        core::redact::key_from(key.as_deref().unwrap_or("")),
    );
    let mut found = Vec::new();
    d.scan(&text, &mut found);
    resolve_overlaps(&mut found);
    Ok(r.redact(&text, &found))
}
