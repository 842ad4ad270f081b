//! A compiled pack ([`Engine`]) and `lint`.

use super::*;

/// A compiled, immutable pack; safe to share between threads.
#[pyclass(frozen, module = "keeptrusts._native")]
pub(crate) struct Engine {
    inner: core::Engine,
}

#[pymethods]
impl Engine {
    /// Parse, validate and compile a YAML pack. Raises PackError.
    #[staticmethod]
    fn from_yaml(py: Python<'_>, source: &str) -> PyResult<Self> {
        let src = source.to_owned();
        let inner = py
            .detach(move || core::Engine::from_yaml(&src))
            .map_err(Error::Pack)?;
        Ok(Engine { inner })
    }

    /// Read a YAML pack from a file. Raises OSError or PackError.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let src = std::fs::read_to_string(&path)?;
        Engine::from_yaml(py, &src)
    }

    /// Validation warnings.
    #[getter]
    fn warnings(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_py(py, &self.inner.warnings())
    }

    /// Team slugs named by targeting lists.
    fn named_teams(&self) -> Vec<String> {
        self.inner.named_teams()
    }

    /// The effective chain (policy kind names, execution order) for a principal dict.
    fn effective_chain(&self, principal: &Bound<'_, PyAny>) -> PyResult<Vec<&'static str>> {
        let p: core::Principal = from_py(principal, "principal")?;
        Ok(self.inner.effective_chain(&p).names())
    }

    /// Evaluate a request (input phase). With a store, escalations are kept there and, unless
    /// `budget=False`, the request's estimated cost is reserved on its wallets (or a ticket
    /// opened). Returns the decision as a dict.
    #[pyo3(signature = (principal, request, store=None, context=None, budget=true))]
    fn evaluate(
        &self,
        py: Python<'_>,
        principal: &Bound<'_, PyAny>,
        request: &Bound<'_, PyAny>,
        store: Option<PyRef<'_, Store>>,
        context: Option<&Bound<'_, PyAny>>,
        budget: bool,
    ) -> PyResult<Py<PyAny>> {
        let p: core::Principal = from_py(principal, "principal")?;
        let r: core::ChatRequest = from_py(request, "request")?;
        let ctx = request_context(context)?;
        let engine = self.inner.clone();
        let (store, budget) = host::call_store(store.map(|s| Arc::clone(&s.inner)), Some(budget));
        detached(py, move || {
            let stores = core::Stores::of(store.as_ref(), budget);
            engine.evaluate(&p, &r, &ctx, &stores)
        })
    }

    /// Begin a request's lifecycle: the input chain, the reservation (unless `budget=False`),
    /// and what to send. Returns an `Exchange`; a refusal is already answered and written
    /// (`exchange.refusal`).
    #[pyo3(signature = (principal, request, store=None, context=None, budget=true))]
    fn begin(
        &self,
        py: Python<'_>,
        principal: &Bound<'_, PyAny>,
        request: &Bound<'_, PyAny>,
        store: Option<PyRef<'_, Store>>,
        context: Option<&Bound<'_, PyAny>>,
        budget: bool,
    ) -> PyResult<Exchange> {
        let p: core::Principal = from_py(principal, "principal")?;
        let r: core::ChatRequest = from_py(request, "request")?;
        let ctx = request_context(context)?;
        let engine = self.inner.clone();
        let (store, budget) = host::call_store(store.map(|s| Arc::clone(&s.inner)), Some(budget));
        let s = Arc::clone(&store);
        let state = py
            .detach(move || -> std::result::Result<ExchangeState, Error> {
                let stores = core::Stores::of(s.as_ref(), budget);
                Ok(
                    match core::exchange::Exchange::begin(&engine, None, &p, &r, &ctx, &stores)? {
                        core::exchange::Begin::Forward(x) => ExchangeState {
                            x: Some(x),
                            refusal: None,
                        },
                        core::exchange::Begin::Answer(a) => {
                            a.close
                                .clone()
                                .commit(s.as_ref(), Some(s.as_ref()), ctx.now_ms)?;
                            ExchangeState {
                                x: None,
                                refusal: Some(*a),
                            }
                        }
                    },
                )
            })
            .map_err(PyErr::from)?;
        Ok(Exchange {
            state: std::sync::Mutex::new(state),
            store,
        })
    }

    /// Evaluate a provider response (output phase). Returns the decision as a dict.
    #[pyo3(signature = (principal, response, context=None))]
    fn evaluate_output(
        &self,
        py: Python<'_>,
        principal: &Bound<'_, PyAny>,
        response: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let p: core::Principal = from_py(principal, "principal")?;
        let r: core::ChatResponse = from_py(response, "response")?;
        let ctx = request_context(context)?;
        let engine = self.inner.clone();
        detached(py, move || engine.evaluate_output(&p, &r, &ctx))
    }
}

/// Validate a pack: `{"valid", "errors", "warnings"}`.
#[pyfunction]
pub(crate) fn lint(py: Python<'_>, source: &str) -> PyResult<Py<PyAny>> {
    let src = source.to_owned();
    let report = py.detach(move || match core::pack::parse(&src) {
        Ok(p) => serde_json::json!({ "valid": true, "errors": [], "warnings": p.warnings }),
        Err(e) => serde_json::json!({ "valid": false, "errors": e.errors, "warnings": e.warnings }),
    });
    to_py(py, &report)
}
