//! Held requests: an over-budget request kept open after its cost ticket is created, until the
//! ticket is resolved or a wallet of its cascade is funded (`wallets.queue`, docs/wallets.md
//! "Held requests").
//!
//! The rules are here and pure: how long a request may be held ([`QueueConfig::hold_ms`], from
//! the pack and the client's `Prefer: wait=N`), and when a held request is released
//! ([`release`]). The host does the waiting: it reads the ticket and the wallets again until
//! [`release`] says the request may be replayed with its ticket, or the hold ends.

use rust_decimal::Decimal;

use super::ticket::{Ticket, TicketStatus};
use super::Wallet;
use crate::pack::spec::QueueSpec;
use crate::time::Millis;

/// The longest hold a pack may configure, in seconds (an hour: longer than any HTTP client
/// keeps a request open).
pub const MAX_HOLD_SECONDS: u64 = 3600;

/// Held requests per team and gateway when the pack does not say.
pub const DEFAULT_MAX_HELD_PER_TEAM: u32 = 100;

/// `wallets.queue`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// The longest hold, in milliseconds.
    pub hold_ms: Millis,
    /// Requests held at once per team (on one gateway).
    pub max_held_per_team: u32,
}

impl QueueConfig {
    /// The queue of a validated pack's `wallets.queue` (`None` without one).
    pub fn from_spec(spec: Option<&QueueSpec>) -> Option<QueueConfig> {
        let q = spec?;
        let secs = q.hold_seconds?.clamp(1, MAX_HOLD_SECONDS);
        Some(QueueConfig {
            hold_ms: Millis::try_from(secs * 1000).unwrap_or(Millis::MAX),
            max_held_per_team: q
                .max_held_per_team
                .unwrap_or(DEFAULT_MAX_HELD_PER_TEAM)
                .max(1),
        })
    }

    /// How long to hold a request whose client sent `prefer` (the `Prefer` header, if any):
    /// the pack's `hold_seconds`, or less when the client asks for less with `wait=N`
    /// (RFC 7240); `wait=0` asks for the 402 at once. A client cannot ask for more than the pack.
    pub fn hold_ms(&self, prefer: Option<&str>) -> Millis {
        match prefer.and_then(prefer_wait) {
            Some(secs) => Millis::try_from(secs.saturating_mul(1000))
                .unwrap_or(Millis::MAX)
                .min(self.hold_ms),
            None => self.hold_ms,
        }
    }
}

/// The `wait` preference of a `Prefer` header value, in seconds (`Prefer: wait=10`,
/// `Prefer: respond-async, wait=5`); `None` when it names none or an unreadable one.
pub fn prefer_wait(header: &str) -> Option<u64> {
    header.split([',', ';']).find_map(|p| {
        let (name, value) = p.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("wait") {
            return None;
        }
        value.trim().trim_matches('"').parse().ok()
    })
}

/// Why a held request may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Its ticket was approved: the replay reserves on the approver's wallet.
    Approved,
    /// Its ticket was denied or has expired: the replay answers as a retry with that ticket
    /// does (409 `ticket_denied` / `ticket_expired`).
    Resolved(TicketStatus),
    /// A wallet of its cascade can now cover the ticket's estimate: the replay tries the
    /// cascade again and, if a wallet still pays, closes the ticket as fulfilled.
    Funded,
    /// The ticket is gone or was used by another request: the replay decides as a new request.
    Gone,
}

/// Whether a request held on `ticket` may go on at `now`; `wallets` are the wallets of its
/// cascade as they are now (the ones that exist). `None`: keep holding.
pub fn release(ticket: Option<&Ticket>, wallets: &[Wallet], now: Millis) -> Option<Release> {
    let Some(t) = ticket else {
        return Some(Release::Gone);
    };
    match t.status_at(now) {
        TicketStatus::Approved if t.redeemed_at.is_none() => Some(Release::Approved),
        TicketStatus::Approved | TicketStatus::Fulfilled => Some(Release::Gone),
        s @ (TicketStatus::Denied | TicketStatus::Expired) => Some(Release::Resolved(s)),
        TicketStatus::Pending => wallets
            .iter()
            .any(|w| {
                w.currency == t.currency
                    && w.available() >= t.estimate
                    && t.estimate > Decimal::ZERO
            })
            .then_some(Release::Funded),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::Currency;
    use crate::wallet::ticket::TicketStatus;
    use crate::wallet::{WalletKey, WalletScope};

    fn ticket(status: TicketStatus) -> Ticket {
        Ticket {
            id: "tkt_req_1".into(),
            fingerprint: "f".into(),
            org: Some("default".into()),
            team: Some("support".into()),
            user: Some("a@x.com".into()),
            role: None,
            model: "gpt-4o".into(),
            estimate: Decimal::new(5, 2),
            currency: Currency::USD,
            status,
            created_at: 0,
            expires_at: 10_000,
            resolved_at: None,
            resolved_by: None,
            charge_to: None,
            redeemed_at: None,
            held_until: None,
        }
    }

    fn wallet(allocated: Decimal, spent: Decimal) -> Wallet {
        Wallet {
            key: WalletKey::new(WalletScope::Team, "support"),
            currency: Currency::USD,
            allocated,
            spent,
            reserved: Decimal::ZERO,
            period: None,
            period_start: None,
        }
    }

    #[test]
    fn the_client_may_ask_for_a_shorter_hold_never_a_longer_one() {
        let q = QueueConfig {
            hold_ms: 30_000,
            max_held_per_team: 2,
        };
        assert_eq!(q.hold_ms(None), 30_000);
        assert_eq!(q.hold_ms(Some("wait=5")), 5_000);
        assert_eq!(q.hold_ms(Some("respond-async, wait=600")), 30_000);
        assert_eq!(q.hold_ms(Some("wait=0")), 0);
        assert_eq!(q.hold_ms(Some("Wait = \"7\"")), 7_000);
        assert_eq!(q.hold_ms(Some("wait=-1")), 30_000, "unreadable: the pack's");
        assert_eq!(q.hold_ms(Some("handling=lenient")), 30_000);
    }

    #[test]
    fn the_queue_comes_from_the_pack_with_its_default_bound() {
        let spec = QueueSpec {
            hold_seconds: Some(20),
            max_held_per_team: None,
        };
        let q = QueueConfig::from_spec(Some(&spec)).unwrap();
        assert_eq!(q.hold_ms, 20_000);
        assert_eq!(q.max_held_per_team, DEFAULT_MAX_HELD_PER_TEAM);
        assert_eq!(QueueConfig::from_spec(None), None);
    }

    #[test]
    fn a_held_request_goes_on_when_its_ticket_is_resolved_or_a_wallet_can_pay() {
        let poor = [wallet(Decimal::ONE, Decimal::ONE)];
        let funded = [wallet(Decimal::TWO, Decimal::ONE)];
        let pending = ticket(TicketStatus::Pending);
        assert_eq!(release(Some(&pending), &poor, 1), None);
        assert_eq!(release(Some(&pending), &[], 1), None);
        assert_eq!(release(Some(&pending), &funded, 1), Some(Release::Funded));
        // a wallet in another currency cannot pay it
        let mut eur = funded.clone();
        eur[0].currency = "EUR".parse().unwrap();
        assert_eq!(release(Some(&pending), &eur, 1), None);
        assert_eq!(
            release(Some(&ticket(TicketStatus::Approved)), &poor, 1),
            Some(Release::Approved)
        );
        let mut used = ticket(TicketStatus::Approved);
        used.redeemed_at = Some(1);
        assert_eq!(release(Some(&used), &poor, 1), Some(Release::Gone));
        assert_eq!(
            release(Some(&ticket(TicketStatus::Denied)), &funded, 1),
            Some(Release::Resolved(TicketStatus::Denied))
        );
        // a pending ticket past its deadline is expired
        assert_eq!(
            release(Some(&pending), &poor, 10_000),
            Some(Release::Resolved(TicketStatus::Expired))
        );
        assert_eq!(release(None, &poor, 1), Some(Release::Gone));
    }
}
