//! Delivery of the pack's `notifications:` webhooks (docs/notifications.md). What is told, and
//! its signature, are the core's (`keeptrusts_core::notify`); this file queues and sends.
//!
//! Nothing here is on a request's path: [`Notifier::send`] puts a body on a bounded queue per
//! webhook and returns (a full queue drops it, counted); one task per webhook POSTs them in
//! order, each attempt within [`ATTEMPT_TIMEOUT`], retrying with backoff ([`BACKOFF`]) and then
//! giving up, logged and counted in `/metrics`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Request;
use keeptrusts_core::notify::{self, BudgetWatch, Kind, Notification};
use keeptrusts_core::pack::spec::PackSpec;
use keeptrusts_core::wallet::WalletStore;
use tokio::sync::mpsc;

use super::{backend, blocking, App};

/// Bodies waiting per webhook; more are dropped (and counted) rather than held in memory.
const QUEUE: usize = 4096;
/// One delivery attempt, connection included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The waits between attempts: six attempts over about 15 s, then the delivery is given up.
const BACKOFF: [Duration; 5] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
];
/// How often the wallets are read for `budget.threshold_reached`.
const BUDGET_EVERY: Duration = Duration::from_secs(2);

struct Hook {
    url: String,
    kinds: HashSet<Kind>,
    key: Vec<u8>,
    tx: mpsc::Sender<(Kind, Bytes)>,
    rx: Mutex<Option<mpsc::Receiver<(Kind, Bytes)>>>,
}

/// The webhooks of the pack and what became of their deliveries.
#[derive(Default)]
pub(crate) struct Notifier {
    hooks: Vec<Arc<Hook>>,
    org: String,
    alerts: Vec<u32>,
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    retried: AtomicU64,
}

impl Notifier {
    /// The pack's webhooks, their signing keys read from the environment.
    ///
    /// # Errors
    /// A `secret_key_ref.env` that is not set, or empty.
    pub(crate) fn from_pack(spec: &PackSpec, org: &str) -> Result<Notifier, String> {
        let mut hooks = Vec::new();
        for (i, n) in spec.notifications.iter().flatten().enumerate() {
            let key = std::env::var(&n.secret_key_ref.env).unwrap_or_default();
            if key.is_empty() {
                return Err(format!(
                    "notifications[{i}].secret_key_ref.env: the environment variable `{}` (the webhook's signing key) is not set",
                    n.secret_key_ref.env
                ));
            }
            let (tx, rx) = mpsc::channel(QUEUE);
            hooks.push(Arc::new(Hook {
                url: n.url.clone(),
                kinds: n.events.iter().filter_map(|e| e.parse().ok()).collect(),
                key: key.into_bytes(),
                tx,
                rx: Mutex::new(Some(rx)),
            }));
        }
        let alerts = spec
            .wallets
            .as_ref()
            .and_then(|w| w.alerts.clone())
            .unwrap_or_else(|| notify::DEFAULT_ALERTS.to_vec());
        Ok(Notifier {
            hooks,
            org: org.to_owned(),
            alerts,
            ..Notifier::default()
        })
    }

    /// Whether some webhook wants `kind`.
    pub(crate) fn wants(&self, kind: Kind) -> bool {
        self.hooks.iter().any(|h| h.kinds.contains(&kind))
    }

    /// Queues `n` for every webhook that wants it; never waits.
    pub(crate) fn send(&self, n: &Notification) {
        for hook in self.hooks.iter().filter(|h| h.kinds.contains(&n.kind)) {
            let id = keeptrusts_store::random_id("ntf_").unwrap_or_else(|_| "ntf_-".into());
            let body = n.body(&id, &self.org, backend::now_ms()).to_string();
            if hook.tx.try_send((n.kind, Bytes::from(body))).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(url = %hook.url, kind = n.kind.as_str(), "notification dropped: the webhook's queue is full (it is down or slow)");
            }
        }
    }

    /// Starts one delivery task per webhook, and the budget watch when a webhook wants
    /// `budget.threshold_reached`.
    pub(crate) fn start(app: &Arc<App>) {
        let me = &app.notifier;
        for hook in &me.hooks {
            let Some(rx) = hook.rx.lock().ok().and_then(|mut r| r.take()) else {
                continue;
            };
            tokio::spawn(deliver(Arc::clone(app), Arc::clone(hook), rx));
        }
        if me.wants(Kind::BudgetThresholdReached) {
            tokio::spawn(watch_budgets(Arc::clone(app)));
        }
    }

    /// The `/metrics` lines of deliveries.
    pub(crate) fn render(&self) -> String {
        if self.hooks.is_empty() {
            return String::new();
        }
        format!(
            "# HELP keeptrusts_notifications_total Webhook deliveries by outcome (failed: given up after every retry; dropped: the webhook's queue was full).\n# TYPE keeptrusts_notifications_total counter\nkeeptrusts_notifications_total{{outcome=\"delivered\"}} {}\nkeeptrusts_notifications_total{{outcome=\"failed\"}} {}\nkeeptrusts_notifications_total{{outcome=\"dropped\"}} {}\n# HELP keeptrusts_notification_retries_total Webhook attempts that failed and were retried.\n# TYPE keeptrusts_notification_retries_total counter\nkeeptrusts_notification_retries_total {}\n",
            self.delivered.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
            self.retried.load(Ordering::Relaxed),
        )
    }
}

/// Sends a webhook's bodies in order, each until it is taken or its attempts are used up.
async fn deliver(app: Arc<App>, hook: Arc<Hook>, mut rx: mpsc::Receiver<(Kind, Bytes)>) {
    while let Some((kind, body)) = rx.recv().await {
        let mut waits = BACKOFF.iter();
        let mut attempt = 1;
        loop {
            let Err(why) = attempt_once(&app, &hook, kind, &body).await else {
                app.notifier.delivered.fetch_add(1, Ordering::Relaxed);
                break;
            };
            let Some(wait) = waits.next() else {
                app.notifier.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(url = %hook.url, kind = kind.as_str(), attempts = attempt, "notification given up: {why}");
                break;
            };
            app.notifier.retried.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(url = %hook.url, kind = kind.as_str(), attempt, "notification not delivered, retrying: {why}");
            tokio::time::sleep(*wait).await;
            attempt += 1;
        }
    }
}

/// One POST of `body`, signed at this attempt's time.
async fn attempt_once(app: &Arc<App>, hook: &Hook, kind: Kind, body: &Bytes) -> Result<(), String> {
    let signature = notify::signature(&hook.key, backend::now_ms(), body);
    let req = Request::post(hook.url.as_str())
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header("user-agent", "keeptrusts-notifications")
        .header("x-keeptrusts-event", kind.as_str())
        .header("x-keeptrusts-signature", signature)
        .body(http_body_util::Full::new(body.clone()))
        .map_err(|e| format!("the request could not be made: {e}"))?;
    match tokio::time::timeout(ATTEMPT_TIMEOUT, app.client.request(req)).await {
        Err(_) => Err(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
        Ok(Err(e)) => Err(super::error_chain(&e)),
        Ok(Ok(resp)) if resp.status().is_success() => Ok(()),
        Ok(Ok(resp)) => Err(format!("answered {}", resp.status())),
    }
}

/// Reads every wallet every [`BUDGET_EVERY`] and tells the thresholds reached since the last
/// read (those reached before the gateway started are not told).
async fn watch_budgets(app: Arc<App>) {
    let mut watch = BudgetWatch::new(&app.notifier.alerts);
    let mut first = true;
    loop {
        let store = Arc::clone(&app.store);
        match blocking(move || WalletStore::list(store.as_ref(), backend::now_ms())).await {
            Some(Ok(wallets)) => {
                for n in watch.observe(&wallets, first) {
                    app.notifier.send(&n);
                }
                first = false;
            }
            Some(Err(e)) => tracing::warn!("the budget watch could not read the wallets: {e}"),
            None => {}
        }
        tokio::time::sleep(BUDGET_EVERY).await;
    }
}
