//! A streamed answer: the provider's deltas through the exchange's redactor to the client, in the API's event shape, closed once.

use super::*;

/// Streams the governed answer: each delta through the output detectors, written by the API's
/// encoder; the closing committed before the last frames leave.
pub(super) fn finish_stream(
    app: Arc<App>,
    x: Box<Exchange>,
    mut deltas: mpsc::Receiver<Result<Vec<Delta>, String>>,
    rid: String,
    mut encoder: Box<dyn Encoder>,
) -> Response<GwBody> {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let mut resp = Response::new(GwBody::Stream(rx));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    resp.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    for (name, value) in x.stream_headers() {
        resp.headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    let resp = with_headers(resp, x.rate_headers());
    // the guard closes the exchange if this task is dropped (the runtime shuts down)
    let mut unfinished = Unfinished {
        app: Arc::clone(&app),
        exchange: Some(x),
    };
    tokio::spawn(async move {
        let started = Instant::now();
        let Some(x) = unfinished.exchange.as_mut() else {
            return;
        };
        let mut relay = x.relay();
        let mut end = StreamEnd::Complete;
        'events: {
            for frame in encoder.open() {
                if tx.send(frame).await.is_err() {
                    end = StreamEnd::ClientGone;
                    break 'events;
                }
            }
            while let Some(d) = deltas.recv().await {
                match d {
                    Ok(ds) => {
                        for d in ds {
                            match relay.push(d) {
                                Ok(out) => {
                                    for frame in out.iter().flat_map(|o| encoder.delta(o)) {
                                        if tx.send(frame).await.is_err() {
                                            end = StreamEnd::ClientGone;
                                            break 'events;
                                        }
                                    }
                                }
                                Err(kind) => {
                                    end = StreamEnd::Blocked(kind);
                                    break 'events;
                                }
                            }
                        }
                    }
                    Err(e) => {
                        end = StreamEnd::Broken(e);
                        break 'events;
                    }
                }
            }
        }
        // the text held back for redaction was received: it is sent (redacted) before the end,
        // or before the error event when the provider's stream broke
        let rest = match end {
            StreamEnd::Complete => relay.end(),
            StreamEnd::Broken(_) => relay.flush(None),
            _ => Ok(Vec::new()),
        };
        match rest {
            Ok(out) => {
                for frame in out.iter().flat_map(|o| encoder.delta(o)) {
                    let _ = tx.send(frame).await;
                }
            }
            Err(kind) if end == StreamEnd::Complete => end = StreamEnd::Blocked(kind),
            Err(_) => {}
        }
        let usage = relay.usage();
        drop(relay);
        let done = x.finish_stream(usage, end);
        let team = done.close.draft.team.clone().unwrap_or_else(|| "-".into());
        let verdict = done.verdict;
        drop(unfinished.exchange.take());
        // the stream's last event leaves once its settlement and event are committed
        let receipt = app.commit(done.close);
        app.metrics
            .record(&team, verdict.as_str(), started.elapsed());
        let last = if app.released(receipt).await {
            let error = done
                .error
                .as_ref()
                .map(|(code, message, status)| (code.as_str(), message.as_str(), *status));
            encoder.close(done.usage, error)
        } else {
            encoder.withheld(
                "the answer's settlement and audit event could not be written in time; the stream is not complete",
            )
        };
        for frame in last {
            let _ = tx.send(frame).await;
        }
    });
    resp
}
