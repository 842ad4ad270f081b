//! Stores that only pass each call on: the memory store to its parts, the gateway's `Inline`
//! to its backend off the async workers. What differs is where a call goes and how it runs, so
//! that is all a forwarding store states: `forward_escalations!(Type, |s| target, run)` (and
//! `forward_tickets!`, `forward_rate_counters!`) implements the trait for `Type` by calling the
//! same method on `target` (an expression of `s`, the `&self`) inside `run`, a function that
//! takes the call as a closure ([`direct`] runs it at once).

/// Runs `f` at once: the `run` of a store whose calls need no other thread.
pub fn direct<T>(f: impl FnOnce() -> T) -> T {
    f()
}

/// `EscalationStore` for a type that passes each call on (see the module).
#[macro_export]
macro_rules! forward_escalations {
    ($ty:ty, |$s:ident| $target:expr, $run:path) => {
        impl $crate::escalation::EscalationStore for $ty {
            fn insert(&self, e: &$crate::escalation::Escalation) -> Result<(), $crate::StoreError> {
                let $s = self;
                $run(|| $crate::escalation::EscalationStore::insert($target, e))
            }
            fn get(
                &self,
                id: &str,
            ) -> Result<Option<$crate::escalation::Escalation>, $crate::StoreError> {
                let $s = self;
                $run(|| $crate::escalation::EscalationStore::get($target, id))
            }
            fn list(
                &self,
                team: Option<&str>,
            ) -> Result<Vec<$crate::escalation::Escalation>, $crate::StoreError> {
                let $s = self;
                $run(|| $crate::escalation::EscalationStore::list($target, team))
            }
            fn resolve(
                &self,
                id: &str,
                resolution: $crate::escalation::Resolution,
                by: &str,
                now: $crate::time::Millis,
            ) -> Result<Option<$crate::escalation::Escalation>, $crate::StoreError> {
                let $s = self;
                $run(|| {
                    $crate::escalation::EscalationStore::resolve($target, id, resolution, by, now)
                })
            }
            fn redeem(
                &self,
                id: &str,
                fingerprint: &str,
                team: Option<&str>,
                now: $crate::time::Millis,
            ) -> Result<$crate::escalation::Redeem, $crate::StoreError> {
                let $s = self;
                $run(|| {
                    $crate::escalation::EscalationStore::redeem($target, id, fingerprint, team, now)
                })
            }
        }
    };
}

/// `TicketStore` for a type that passes each call on (see the module).
#[macro_export]
macro_rules! forward_tickets {
    ($ty:ty, |$s:ident| $target:expr, $run:path) => {
        impl $crate::wallet::ticket::TicketStore for $ty {
            fn insert(&self, t: &$crate::wallet::ticket::Ticket) -> Result<(), $crate::StoreError> {
                let $s = self;
                $run(|| $crate::wallet::ticket::TicketStore::insert($target, t))
            }
            fn get(
                &self,
                id: &str,
            ) -> Result<Option<$crate::wallet::ticket::Ticket>, $crate::StoreError> {
                let $s = self;
                $run(|| $crate::wallet::ticket::TicketStore::get($target, id))
            }
            fn list(
                &self,
                team: Option<&str>,
            ) -> Result<Vec<$crate::wallet::ticket::Ticket>, $crate::StoreError> {
                let $s = self;
                $run(|| $crate::wallet::ticket::TicketStore::list($target, team))
            }
            fn resolve(
                &self,
                id: &str,
                resolution: &$crate::wallet::ticket::TicketResolution,
                by: &str,
                now: $crate::time::Millis,
            ) -> Result<Option<$crate::wallet::ticket::Ticket>, $crate::StoreError> {
                let $s = self;
                $run(|| {
                    $crate::wallet::ticket::TicketStore::resolve($target, id, resolution, by, now)
                })
            }
            fn redeem(
                &self,
                id: &str,
                fingerprint: &str,
                team: Option<&str>,
                now: $crate::time::Millis,
            ) -> Result<$crate::wallet::ticket::TicketRedeem, $crate::StoreError> {
                let $s = self;
                $run(|| {
                    $crate::wallet::ticket::TicketStore::redeem($target, id, fingerprint, team, now)
                })
            }
            fn fulfill(
                &self,
                id: &str,
                now: $crate::time::Millis,
            ) -> Result<(), $crate::StoreError> {
                let $s = self;
                $run(|| $crate::wallet::ticket::TicketStore::fulfill($target, id, now))
            }
            fn restore(&self, id: &str) -> Result<(), $crate::StoreError> {
                let $s = self;
                $run(|| $crate::wallet::ticket::TicketStore::restore($target, id))
            }
            fn hold(
                &self,
                id: &str,
                until: Option<$crate::time::Millis>,
            ) -> Result<(), $crate::StoreError> {
                let $s = self;
                $run(|| $crate::wallet::ticket::TicketStore::hold($target, id, until))
            }
        }
    };
}

/// `RateCounters` for a type that passes each call on (see the module).
#[macro_export]
macro_rules! forward_rate_counters {
    ($ty:ty, |$s:ident| $target:expr, $run:path) => {
        impl $crate::ratelimit::RateCounters for $ty {
            fn take(
                &self,
                hits: &[$crate::ratelimit::Hit],
            ) -> Result<$crate::ratelimit::Taken, $crate::StoreError> {
                let $s = self;
                $run(|| $crate::ratelimit::RateCounters::take($target, hits))
            }
            fn adjust(
                &self,
                corrections: &[$crate::ratelimit::Correction],
            ) -> Result<(), $crate::StoreError> {
                let $s = self;
                $run(|| $crate::ratelimit::RateCounters::adjust($target, corrections))
            }
            fn prune_windows(
                &self,
                now: $crate::time::Millis,
            ) -> Result<usize, $crate::StoreError> {
                let $s = self;
                $run(|| $crate::ratelimit::RateCounters::prune_windows($target, now))
            }
        }
    };
}
