//! A compiled pack (`Engine`) and `lint`.

use super::*;

/// A compiled, immutable pack.
#[napi]
pub struct Engine {
    inner: core::Engine,
}

/// The evaluation shared by `evaluate` and `evaluateAsync`.
pub(crate) fn evaluate_job(
    engine: &core::Engine,
    principal: Value,
    request: Value,
    store: Option<&Store>,
    context: Option<Value>,
    budget: Option<bool>,
) -> Result<impl FnOnce() -> std::result::Result<Value, Failure> + Send + 'static> {
    let p: core::Principal = from_js(principal, "principal")?;
    let r: core::ChatRequest = from_js(request, "request")?;
    let ctx = request_context(context)?;
    let (store, budget) = host::call_store(store.map(|s| Arc::clone(&s.inner)), budget);
    let engine = engine.clone();
    Ok(move || {
        let stores = core::Stores::of(store.as_ref(), budget);
        let d = engine.evaluate(&p, &r, &ctx, &stores).map_err(failure)?;
        to_js(&d)
    })
}

#[napi]
impl Engine {
    /// Parse, validate and compile a YAML pack; throws with `err.code` E000–E007.
    #[napi(factory)]
    pub fn from_yaml(source: String) -> Result<Engine> {
        let inner = core::Engine::from_yaml(&source).map_err(fail)?;
        Ok(Engine { inner })
    }

    /// Read a YAML pack from a file.
    #[napi(factory)]
    pub fn from_file(path: String) -> Result<Engine> {
        let src = std::fs::read_to_string(&path)
            .map_err(|e| js_error(("io_error".into(), format!("cannot read {path}: {e}"))))?;
        Engine::from_yaml(src)
    }

    /// Validation warnings.
    #[napi(getter, ts_return_type = "Diagnostic[]")]
    pub fn warnings(&self) -> Result<Value> {
        to_js(&self.inner.warnings()).map_err(js_error)
    }

    /// Team slugs named by targeting lists.
    #[napi]
    pub fn named_teams(&self) -> Vec<String> {
        self.inner.named_teams()
    }

    /// The effective chain (policy kind names, execution order) for a principal.
    #[napi(ts_args_type = "principal: Principal")]
    pub fn effective_chain(&self, principal: Value) -> Result<Vec<&'static str>> {
        let p: core::Principal = from_js(principal, "principal")?;
        Ok(self.inner.effective_chain(&p).names())
    }

    /// Evaluate a request (input phase). With a store, escalations are kept there and, unless
    /// `budget` is false, the estimated cost is reserved on the principal's wallets (or a
    /// ticket opened). Returns the decision.
    #[napi(
        ts_args_type = "principal: Principal, request: ChatRequest, store?: Store | null, context?: RequestContext | null, budget?: boolean | null",
        ts_return_type = "Decision"
    )]
    pub fn evaluate(
        &self,
        principal: Value,
        request: Value,
        store: Option<&Store>,
        context: Option<Value>,
        budget: Option<bool>,
    ) -> Result<Value> {
        let job = evaluate_job(&self.inner, principal, request, store, context, budget)?;
        job().map_err(js_error)
    }

    /// `evaluate` on the libuv thread pool: the event loop keeps running meanwhile.
    #[napi(
        ts_args_type = "principal: Principal, request: ChatRequest, store?: Store | null, context?: RequestContext | null, budget?: boolean | null",
        ts_return_type = "Promise<Decision>"
    )]
    pub fn evaluate_async(
        &self,
        principal: Value,
        request: Value,
        store: Option<&Store>,
        context: Option<Value>,
        budget: Option<bool>,
    ) -> AsyncTask<Job> {
        task(evaluate_job(&self.inner, principal, request, store, context, budget).map(Job::new))
    }

    /// Begin a request's lifecycle: the input chain, the reservation (unless `budget` is
    /// false), and what to send. A refusal is already answered and written
    /// (`exchange.refusal`).
    #[napi(
        ts_args_type = "principal: Principal, request: ChatRequest, store?: Store | null, context?: RequestContext | null, budget?: boolean | null"
    )]
    pub fn begin(
        &self,
        principal: Value,
        request: Value,
        store: Option<&Store>,
        context: Option<Value>,
        budget: Option<bool>,
    ) -> Result<Exchange> {
        let p: core::Principal = from_js(principal, "principal")?;
        let r: core::ChatRequest = from_js(request, "request")?;
        let ctx = request_context(context)?;
        let (store, budget) = host::call_store(store.map(|s| Arc::clone(&s.inner)), budget);
        let stores = core::Stores::of(store.as_ref(), budget);
        let begun = core::exchange::Exchange::begin(&self.inner, None, &p, &r, &ctx, &stores)
            .map_err(fail)?;
        Ok(match begun {
            core::exchange::Begin::Forward(x) => Exchange {
                x: Some(x),
                refusal: None,
                store,
            },
            core::exchange::Begin::Answer(a) => {
                a.close
                    .clone()
                    .commit(store.as_ref(), Some(store.as_ref()), ctx.now_ms)
                    .map_err(fail)?;
                Exchange {
                    x: None,
                    refusal: Some(*a),
                    store,
                }
            }
        })
    }

    /// Evaluate a provider response (output phase); returns the decision.
    #[napi(
        ts_args_type = "principal: Principal, response: ChatResponse, context?: RequestContext | null",
        ts_return_type = "Decision"
    )]
    pub fn evaluate_output(
        &self,
        principal: Value,
        response: Value,
        context: Option<Value>,
    ) -> Result<Value> {
        let p: core::Principal = from_js(principal, "principal")?;
        let r: core::ChatResponse = from_js(response, "response")?;
        let ctx = request_context(context)?;
        answer(self.inner.evaluate_output(&p, &r, &ctx))
    }
}

/// Validate a pack: `{ valid, errors, warnings }`.
#[napi(ts_return_type = "LintReport")]
pub fn lint(source: String) -> Value {
    match core::pack::parse(&source) {
        Ok(p) => serde_json::json!({ "valid": true, "errors": [], "warnings": p.warnings }),
        Err(e) => serde_json::json!({ "valid": false, "errors": e.errors, "warnings": e.warnings }),
    }
}
