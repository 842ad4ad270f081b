//! Starting, serving and stopping: `kt gateway run`'s checks at start, the accept loop, the signals and the shutdown.

use super::*;

/// Runs the gateway until Ctrl-C or SIGTERM. Exit status: 0 after a clean shutdown, 2 for a bad
/// pack or option, 1 if the address cannot be bound.
pub fn run(args: &RunArgs) -> u8 {
    limit_malloc_arenas();
    let src = match std::fs::read_to_string(&args.pack) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kt gateway: cannot read {}: {e}", args.pack.display());
            return 2;
        }
    };
    let parsed = match keeptrusts_core::pack::parse(&src) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kt gateway: {}: {e}", args.pack.display());
            return 2;
        }
    };
    let (router, warnings) = Router::new(
        &parsed.spec,
        &|name| std::env::var(name).ok(),
        RouterOptions::default(),
    );
    for w in &warnings {
        eprintln!("kt gateway: warning: {w}");
    }
    let engine = match Engine::compile(parsed) {
        Ok(e) => e,
        Err(mut e) => {
            keeptrusts_core::pack::locate(&src, &mut e);
            eprintln!("kt gateway: {}: {e}", args.pack.display());
            return 2;
        }
    };
    let notifier = match notify::Notifier::from_pack(engine.spec(), &args.org) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("kt gateway: {}: {e}", args.pack.display());
            return 2;
        }
    };
    let (store, write_behind) = match backend::open_gateway(&args.store) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kt gateway: {e}");
            return 2;
        }
    };
    if let Some(mode) = args.bootstrap {
        match crate::bootstrap::run(store.as_ref(), &args.org, mode) {
            Ok(Some(made)) => eprintln!("{}", crate::bootstrap::report(&made)),
            Ok(None) => eprintln!(
                "kt gateway: --bootstrap: the store already has teams; nothing was created"
            ),
            Err(e) => {
                eprintln!("kt gateway: --bootstrap: {e}");
                return 2;
            }
        }
    }
    // a pack that targets a team the store does not know (a display name, a team never
    // created) silently skips that team's policies: say so at start
    match store.teams() {
        Ok(teams) => {
            let (warnings, fallback) = crate::policy_cmd::store_teams(&engine, &src, &teams);
            for w in &warnings {
                eprintln!("kt gateway: warning: {}: {w}", args.pack.display());
            }
            if !fallback.is_empty() {
                eprintln!(
                    "kt gateway: teams no pack entry targets (they get the default chain): {}",
                    fallback.join(", ")
                );
            }
        }
        Err(e) => eprintln!("kt gateway: warning: cannot list the store's teams: {e}"),
    }
    check_chain_tail(store.as_ref(), &args.org);
    // TLS to providers: rustls with the Mozilla roots (no OpenSSL); plain http:// for local
    // OpenAI-compatible servers
    let https = match hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
    {
        Ok(b) => b.https_or_http().enable_http1().build(),
        Err(e) => {
            eprintln!("kt gateway: cannot set up TLS: {e}");
            return 1;
        }
    };
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(https);
    let (committed_tx, committed_rx) = tokio::sync::watch::channel(0u64);
    write_behind.on_commit(Box::new(move |c| {
        committed_tx.send_replace(c);
    }));
    let rate: Option<Arc<dyn RateCounters>> = if engine.rate_limits().is_empty() {
        None
    } else if args.store.starts_with("postgres://") || args.store.starts_with("postgresql://") {
        Some(Arc::new(backend::InlineRate(Arc::clone(&store))))
    } else {
        Some(Arc::new(MemoryRateCounters::new()))
    };
    let app = Arc::new(App {
        rate,
        engine,
        router,
        inline: backend::Inline(Arc::clone(&store)),
        store,
        write_behind,
        org: args.org.clone(),
        keys: Mutex::new(HashMap::new()),
        refusals: Mutex::new(RefusalLimiter::new(REFUSAL_EVENTS_PER_MINUTE)),
        durability: args.durability,
        committed: committed_rx,
        metrics: Metrics::default(),
        holds: Arc::default(),
        notifier,
        max_body: args.max_body_bytes,
        upstream_timeout: Duration::from_secs(args.upstream_timeout),
        client_timeout: Duration::from_secs(args.client_timeout.max(1)),
        client,
    });
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kt gateway: cannot start the runtime: {e}");
            return 1;
        }
    };
    let status = rt.block_on(serve(Arc::clone(&app), args.listen));
    // the runtime first, then the store, outside it: the PostgreSQL client closes its
    // connections with a runtime of its own, which cannot run inside tokio's
    drop(rt);
    drop(app);
    status
}

/// Events the gateway checks at start (the newest of its org's chain).
pub(super) const TAIL_CHECK: usize = 1_000;

/// Checks, at start, that the newest events of the org's chain are intact, linked, and end at
/// the head the store recorded (after a crash, or a store someone edited); says what it found.
/// The whole chain is `kt events verify`'s to check.
pub(super) fn check_chain_tail(store: &dyn keeptrusts_core::event::EventStore, org: &str) {
    use keeptrusts_core::event::{verify_chain, VerifyOptions};
    let chain = match store.tail(org, TAIL_CHECK) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kt gateway: warning: cannot read the audit chain of org `{org}`: {e}");
            return;
        }
    };
    // pruning's retention is not known here: only the links and the head are checked
    let opts = VerifyOptions {
        now: backend::now_ms(),
        default_days: 0,
        expect_head: None,
    };
    match verify_chain(&chain, &opts) {
        Ok(v) => tracing::info!(
            org,
            checked = v.events,
            head = v
                .head
                .map_or_else(|| "none".to_owned(), |h| h.seq.to_string()),
            "the newest events of the audit chain end at the recorded head"
        ),
        Err(t) => eprintln!(
            "kt gateway: warning: the audit chain of org `{org}` is broken near its end: {t}; \
             run `kt events verify` (new events are chained after the recorded head)"
        ),
    }
}

/// glibc's malloc gives each thread that meets contention its own arena (up to 8 per core), and
/// the gateway's threads hand buffers to one another (the store writer frees what the workers
/// allocated), so the resident set grew by half (27 → 41 MB at 15,000 requests/s). glibc reads
/// its limit only at start-up, so the gateway starts itself again with `MALLOC_ARENA_MAX=2`,
/// unless the variable is already set (then the operator's value stands).
pub(super) fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("MALLOC_ARENA_MAX", "2")
            .exec();
        // exec returns only when it failed: carry on with glibc's defaults
        tracing::debug!("could not restart with MALLOC_ARENA_MAX=2: {err}");
    }
}

pub(super) async fn serve(app: Arc<App>, listen: SocketAddr) -> u8 {
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("kt gateway: cannot listen on {listen}: {e}");
            return 1;
        }
    };
    let addr = listener.local_addr().map_or(listen, |a| a);
    // SIGTERM is caught from here on: a supervisor that stops the gateway as soon as it says it
    // listens gets a clean shutdown, not a kill
    let signals = Signals::install();
    eprintln!("kt gateway: console: http://{addr}/console");
    eprintln!("kt gateway: listening on http://{addr}");
    tracing::info!(%addr, "listening");
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let holds = Arc::clone(&app.holds);
    tokio::spawn(async move {
        signals.wait().await;
        let _ = stop_tx.send(true);
        // held requests answer 503 at once, with their ticket (they survive no restart)
        holds.stop();
    });
    let active = Arc::new(tokio::sync::Semaphore::new(PERMITS));
    notify::Notifier::start(&app);
    let watcher = Arc::clone(&app);
    tokio::spawn(async move {
        let mut ticks = 0u64;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            log_write_behind_errors(&watcher);
            ticks += 1;
            // rate-limit windows that ended are forgotten once a minute
            if ticks.is_multiple_of(60) {
                if let Some(rate) = watcher.rate.clone() {
                    let pruned = blocking(move || rate.prune_windows(backend::now_ms())).await;
                    if let Some(Err(e)) = pruned {
                        tracing::warn!("rate-limit counters were not pruned: {e}");
                    }
                }
            }
        }
    });
    loop {
        tokio::select! {
            _ = stop_rx.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let app = Arc::clone(&app);
                let permit = Arc::clone(&active).acquire_owned().await;
                let mut stop = stop_rx.clone();
                let header_timeout = app.client_timeout;
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let app = Arc::clone(&app);
                        async move { Ok::<_, Infallible>(handle(app, req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(header_timeout)
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stop.changed() => {
                            // finish the request in flight, then close (idle keep-alive
                            // connections close at once)
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.as_mut().await;
                        }
                    }
                    drop(permit);
                });
            }
        }
    }
    eprintln!("kt gateway: shutting down, waiting for requests in flight");
    let deadline = tokio::time::sleep(Duration::from_secs(30));
    tokio::pin!(deadline);
    loop {
        if active.available_permits() == PERMITS {
            break;
        }
        tokio::select! {
            _ = &mut deadline => break,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    // write what the write-behind holds and give its floats back
    app.flush_refusals();
    let write_behind = Arc::clone(&app.write_behind);
    let closed = tokio::task::spawn_blocking(move || write_behind.close()).await;
    log_write_behind_errors(&app);
    match closed {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("kt gateway: the store did not take the last writes: {e}");
            1
        }
        Err(e) => {
            eprintln!("kt gateway: closing the store failed: {e}");
            1
        }
    }
}

/// Logs operations the write-behind's writer had refused (none in normal operation), and what it
/// did on its own (the floats of a crashed gateway it released).
pub(super) fn log_write_behind_errors(app: &App) {
    for e in app.write_behind.take_errors() {
        tracing::error!("store write refused: {e}");
    }
    for n in app.write_behind.take_notices() {
        tracing::warn!("{n}");
    }
}

/// Ctrl-C and SIGTERM, registered before the gateway says it listens.
pub(super) struct Signals {
    #[cfg(unix)]
    pub(super) term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub(super) fn install() -> Signals {
        Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    pub(super) async fn wait(self) {
        #[cfg(unix)]
        if let Some(mut term) = self.term {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
