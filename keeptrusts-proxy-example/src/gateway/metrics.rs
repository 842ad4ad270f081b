//! Request counts, latency buckets, spend and overruns for `/metrics`.

use super::*;

pub(super) const BUCKETS_US: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 500_000, 2_000_000, 10_000_000,
];

#[derive(Default)]
pub(super) struct Metrics {
    pub(super) requests: Mutex<HashMap<(String, String), u64>>,
    pub(super) spend: Mutex<HashMap<String, Decimal>>,
    pub(super) buckets: [AtomicU64; 12],
    pub(super) count: AtomicU64,
    pub(super) sum_us: AtomicU64,
    /// Requests a provider billed above their reservation.
    pub(super) overruns: AtomicU64,
    /// Answers that waited for their commit, and for how long in all.
    pub(super) commit_waits: AtomicU64,
    pub(super) commit_wait_us: AtomicU64,
    /// Answers withheld because their commit did not come in time.
    pub(super) withheld: AtomicU64,
}

impl Metrics {
    pub(super) fn record(&self, team: &str, verdict: &str, elapsed: Duration) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((team.to_owned(), verdict.to_owned())).or_default() += 1;
        }
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        for (b, limit) in self.buckets.iter().zip(BUCKETS_US) {
            if us <= limit {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub(super) fn spend(&self, team: &str, amount: Decimal) {
        if let Ok(mut m) = self.spend.lock() {
            *m.entry(team.to_owned()).or_default() += amount;
        }
    }

    pub(super) fn render(&self) -> String {
        let mut s = String::from(
            "# HELP keeptrusts_requests_total Requests by team and verdict.\n# TYPE keeptrusts_requests_total counter\n",
        );
        if let Ok(m) = self.requests.lock() {
            let mut rows: Vec<_> = m.iter().collect();
            rows.sort();
            for ((team, verdict), n) in rows {
                s.push_str(&format!(
                    "keeptrusts_requests_total{{team=\"{team}\",verdict=\"{verdict}\"}} {n}\n"
                ));
            }
        }
        s.push_str("# HELP keeptrusts_request_duration_seconds Gateway time per request.\n# TYPE keeptrusts_request_duration_seconds histogram\n");
        for (b, limit) in self.buckets.iter().zip(BUCKETS_US) {
            s.push_str(&format!(
                "keeptrusts_request_duration_seconds_bucket{{le=\"{}\"}} {}\n",
                f64::from(u32::try_from(limit).unwrap_or(u32::MAX)) / 1e6,
                b.load(Ordering::Relaxed)
            ));
        }
        let count = self.count.load(Ordering::Relaxed);
        s.push_str(&format!(
            "keeptrusts_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\nkeeptrusts_request_duration_seconds_sum {}\nkeeptrusts_request_duration_seconds_count {count}\n",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        ));
        s.push_str(&format!(
            "# HELP keeptrusts_overruns_total Requests a provider billed above their reservation.\n# TYPE keeptrusts_overruns_total counter\nkeeptrusts_overruns_total {}\n",
            self.overruns.load(Ordering::Relaxed)
        ));
        s.push_str(&format!(
            "# HELP keeptrusts_commit_wait_seconds Time durable answers waited for their settlement and event to be committed.\n# TYPE keeptrusts_commit_wait_seconds summary\nkeeptrusts_commit_wait_seconds_sum {}\nkeeptrusts_commit_wait_seconds_count {}\n# HELP keeptrusts_answers_withheld_total Durable answers withheld (503) because the store did not commit them in time.\n# TYPE keeptrusts_answers_withheld_total counter\nkeeptrusts_answers_withheld_total {}\n",
            self.commit_wait_us.load(Ordering::Relaxed) as f64 / 1e6,
            self.commit_waits.load(Ordering::Relaxed),
            self.withheld.load(Ordering::Relaxed)
        ));
        s.push_str("# HELP keeptrusts_spend_total Settled spend by team.\n# TYPE keeptrusts_spend_total counter\n");
        if let Ok(m) = self.spend.lock() {
            let mut rows: Vec<_> = m.iter().collect();
            rows.sort();
            for (team, amount) in rows {
                s.push_str(&format!(
                    "keeptrusts_spend_total{{team=\"{team}\"}} {amount}\n"
                ));
            }
        }
        s
    }
}
