//! Node bindings: type conversion and error mapping only; every rule lives in keeptrusts-core.
//! Errors are thrown with `err.code` set to the core's stable code. Calls that can take long
//! (`scanAsync`, `redactAsync`, `Engine#evaluateAsync`) run on the libuv thread pool and return
//! Promises, which reject (never throw) with the same codes.

use std::sync::Arc;

use keeptrusts_core::admin::{self, Command, Ctx, NewKey};
use keeptrusts_core::dashboard::{self, EventFilter, Granularity, Query, Section};
use keeptrusts_core::detect::builtin::BuiltinDetector;
use keeptrusts_core::detect::{offsets, resolve_overlaps, Detector, EntityType, OffsetUnit};
use keeptrusts_core::directory;
use keeptrusts_core::escalation::Resolution;
use keeptrusts_core::event::{self, EventStore};
use keeptrusts_core::pricing::Usage;
use keeptrusts_core::redact::{key_from, Redactor};
use keeptrusts_core::wallet::{self, Allocation, WalletKey};
use keeptrusts_core::{self as core, Role, Storage};
use keeptrusts_store::host::{self, now_or as now, AdminCall};
use napi::bindgen_prelude::{AsyncTask, JsObjectValue, JsValue, ToNapiValue, Unknown};
use napi::{Env, ScopedTask, Status};
use napi_derive::napi;
use serde_json::Value;

type Result<T> = napi::Result<T, String>;

/// A failure as (code, message): what crosses threads before it becomes a JS error.
type Failure = (String, String);

/// The one place core errors become JS errors: `err.code` is the core's stable code.
fn js_error((code, message): Failure) -> napi::Error<String> {
    napi::Error::new(code, message)
}

/// Every core error type has a stable `code()`.
trait Coded: std::fmt::Display {
    fn code(&self) -> &str;
}

macro_rules! coded {
    ($($t:ty),*) => {$(
        impl Coded for $t {
            fn code(&self) -> &str {
                <$t>::code(self)
            }
        }
    )*};
}
coded!(
    core::PackError,
    core::RequestError,
    core::AdminError,
    core::StoreError,
    core::wallet::WalletError
);

fn failure<E: Coded>(e: E) -> Failure {
    (e.code().to_owned(), e.to_string())
}

fn fail<E: Coded>(e: E) -> napi::Error<String> {
    js_error(failure(e))
}

fn argument(message: String) -> Failure {
    ("invalid_argument".to_owned(), message)
}

/// JavaScript has one number type: integral numbers beyond 32 bits (times in milliseconds)
/// arrive as floats; give them back their integer form.
fn integral(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            #[allow(clippy::cast_possible_truncation)]
            Some(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
                Value::from(f as i64)
            }
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(integral).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, integral(v))).collect()),
        other => other,
    }
}

fn from_js<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T> {
    serde_json::from_value(integral(v))
        .map_err(|e| js_error(argument(format!("invalid {what}: {e}"))))
}

/// A Promise API rejects (never throws) on bad arguments: the failure runs as the task.
fn task(job: Result<Job>) -> AsyncTask<Job> {
    AsyncTask::new(job.unwrap_or_else(|e| {
        let f = (e.status, e.reason);
        Job::new(move || Err(f))
    }))
}

fn optional<T: serde::de::DeserializeOwned>(v: Option<Value>, what: &str) -> Result<Option<T>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => from_js(v, what).map(Some),
    }
}

fn to_js<T: serde::Serialize>(v: &T) -> std::result::Result<Value, Failure> {
    serde_json::to_value(v).map_err(|e| ("internal".to_owned(), e.to_string()))
}

fn answer<T: serde::Serialize, E: Coded>(r: std::result::Result<T, E>) -> Result<Value> {
    r.map_err(fail).and_then(|v| to_js(&v).map_err(js_error))
}

/// The host's parts of an administrative call ([`AdminCall`]), the actor read from JS.
fn admin_call(
    actor: Option<Value>,
    now_ms: Option<i64>,
    request_id: Option<String>,
    org: Option<String>,
) -> Result<AdminCall> {
    AdminCall::new(optional(actor, "actor")?, now_ms, request_id, org)
        .map_err(|m| js_error(argument(m)))
}

/// `approve` or `deny`.
fn ruling(resolution: &str) -> Result<bool> {
    host::ruling(resolution).map_err(|m| js_error(argument(m)))
}

/// The request context; `now_ms` defaults to the host clock and `request_id` to a fresh id.
fn request_context(v: Option<Value>) -> Result<core::RequestContext> {
    let v = host::request_context_defaults(v).map_err(|m| js_error(argument(m)))?;
    from_js(v, "context")
}

/// Work for the libuv pool: runs a closure off the event loop, settles the Promise with its JSON
/// answer or rejects it with an error carrying `code`.
pub struct Job(Option<Box<dyn FnOnce() -> std::result::Result<Value, Failure> + Send>>);

impl Job {
    fn new(f: impl FnOnce() -> std::result::Result<Value, Failure> + Send + 'static) -> Self {
        Job(Some(Box::new(f)))
    }
}

impl<'task> ScopedTask<'task> for Job {
    type Output = std::result::Result<Value, Failure>;
    type JsValue = Unknown<'task>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        match self.0.take() {
            Some(f) => Ok(f()),
            None => Err(napi::Error::new(
                Status::GenericFailure,
                "the task already ran",
            )),
        }
    }

    fn resolve(&mut self, env: &'task Env, output: Self::Output) -> napi::Result<Unknown<'task>> {
        match output {
            Ok(v) => v.into_unknown(env),
            Err((code, message)) => {
                let mut e = env.create_error(napi::Error::new(Status::GenericFailure, message))?;
                e.set_named_property("code", code)?;
                Err(napi::Error::from(e.to_unknown()))
            }
        }
    }
}

mod detect;
mod engine;
mod exchange;
mod store;

pub use detect::*;
pub use engine::*;
pub use exchange::*;
pub use store::*;
