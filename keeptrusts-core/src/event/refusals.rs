//! Bounding the events of refusals before the lifecycle (bad keys, unreadable bodies).

use super::*;

/// Bounds the events of refusals, so a flood of bad keys or junk bodies cannot fill the store:
/// in each minute, the first `per_minute` refusals of each status get their own event; the rest
/// are counted, and one summary event per status (`reason: refusals_suppressed`, `suppressed:
/// n`) is written for that minute when the next refusal of a later minute arrives, or when the
/// host flushes it (at shutdown). The host keeps one limiter (in memory, per process).
#[derive(Debug, Clone)]
pub struct RefusalLimiter {
    per_minute: u64,
    /// status → (minute start, events written, refusals suppressed)
    windows: HashMap<u16, (Millis, u64, u64)>,
}

/// What [`RefusalLimiter::admit`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// Whether this refusal gets its own event.
    pub record: bool,
    /// A summary of an earlier minute to write first.
    pub summary: Option<EventDraft>,
}

const MINUTE: Millis = 60_000;

impl RefusalLimiter {
    /// A limiter writing at most `per_minute` refusal events per status and minute.
    pub fn new(per_minute: u64) -> Self {
        RefusalLimiter {
            per_minute,
            windows: HashMap::new(),
        }
    }

    fn summary(org: &str, status: u16, start: Millis, n: u64) -> EventDraft {
        let rid = format!("suppressed_{status}_{start}");
        let mut d = EventDraft::refused(None, &rid, status, "refusals_suppressed", start);
        d.org = org.to_owned();
        d.suppressed = Some(n);
        d
    }

    /// Counts a refusal with `status` at `now` (for the chain of `org`).
    pub fn admit(&mut self, org: &str, status: u16, now: Millis) -> Admitted {
        let start = now - now.rem_euclid(MINUTE);
        let w = self.windows.entry(status).or_insert((start, 0, 0));
        let mut summary = None;
        if w.0 != start {
            if w.2 > 0 {
                summary = Some(Self::summary(org, status, w.0, w.2));
            }
            *w = (start, 0, 0);
        }
        let record = w.1 < self.per_minute;
        if record {
            w.1 += 1;
        } else {
            w.2 += 1;
        }
        Admitted { record, summary }
    }

    /// The summaries of every minute with suppressed refusals (the host writes them at
    /// shutdown).
    pub fn flush(&mut self, org: &str) -> Vec<EventDraft> {
        let mut out: Vec<EventDraft> = self
            .windows
            .iter_mut()
            .filter(|(_, w)| w.2 > 0)
            .map(|(status, w)| {
                let d = Self::summary(org, *status, w.0, w.2);
                w.2 = 0;
                d
            })
            .collect();
        out.sort_by_key(|d| (d.timestamp, d.status));
        out
    }
}
