//! Everything a host keeps, behind one object: [`Storage`] is the union of the storage traits,
//! and [`MemoryStore`] implements it in memory (tests, embedding, the bindings' default). The
//! SQLite and PostgreSQL stores in `keeptrusts-store` implement the same union.

use rust_decimal::Decimal;

use crate::directory::{ApiKey, Directory, Member, MemoryDirectory, Team};
use crate::error::StoreError;
use crate::escalation::{EscalationStore, MemoryEscalations, Millis};
use crate::event::{Anchor, Chain, Event, EventDraft, EventStore, Journal, MemoryEvents};
use crate::ratelimit::{MemoryRateCounters, RateCounters};
use crate::wallet::ticket::{MemoryTickets, TicketStore};
use crate::wallet::{
    Grant, Lease, MemoryWallets, ReserveOutcome, ReserveRequest, Settlement, Wallet, WalletError,
    WalletKey, WalletStore,
};

/// Teams and keys, wallets and leases, tickets, escalations and the audit chain: what a gateway
/// or an embedding application keeps. Implemented for every type that implements the parts.
pub trait Storage:
    Directory + Journal + TicketStore + EscalationStore + RateCounters + Send + Sync
{
}

impl<T: Directory + Journal + TicketStore + EscalationStore + RateCounters + Send + Sync> Storage
    for T
{
}

/// The in-memory [`Storage`]: the core's in-memory stores side by side. Settlement and event are
/// two steps here (nothing can interrupt them but a panic).
#[derive(Debug, Default)]
pub struct MemoryStore {
    wallets: MemoryWallets,
    tickets: MemoryTickets,
    escalations: MemoryEscalations,
    events: MemoryEvents,
    directory: MemoryDirectory,
    rate: MemoryRateCounters,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }
}

impl WalletStore for MemoryStore {
    fn allocate(&self, key: &WalletKey, grant: &Grant, now: Millis) -> Result<Wallet, WalletError> {
        self.wallets.allocate(key, grant, now)
    }
    fn get(&self, key: &WalletKey, now: Millis) -> Result<Option<Wallet>, StoreError> {
        WalletStore::get(&self.wallets, key, now)
    }
    fn list(&self, now: Millis) -> Result<Vec<Wallet>, StoreError> {
        WalletStore::list(&self.wallets, now)
    }
    fn reserve(
        &self,
        request: &ReserveRequest,
        now: Millis,
    ) -> Result<ReserveOutcome, WalletError> {
        self.wallets.reserve(request, now)
    }
    fn settle(&self, id: &str, actual: Decimal, now: Millis) -> Result<Settlement, WalletError> {
        self.wallets.settle(id, actual, now)
    }
    fn release(&self, lease_id: &str, now: Millis) -> Result<Lease, WalletError> {
        self.wallets.release(lease_id, now)
    }
    fn expire(&self, now: Millis) -> Result<usize, WalletError> {
        self.wallets.expire(now)
    }
    fn lease(&self, lease_id: &str) -> Result<Option<Lease>, StoreError> {
        self.wallets.lease(lease_id)
    }
    fn prune(&self, before: Millis) -> Result<usize, StoreError> {
        WalletStore::prune(&self.wallets, before)
    }
}

crate::forward_rate_counters!(MemoryStore, |s| &s.rate, crate::forward::direct);

impl EventStore for MemoryStore {
    fn append(&self, draft: EventDraft) -> Result<Event, StoreError> {
        self.events.append(draft)
    }
    fn list(&self, org: &str) -> Result<Vec<Event>, StoreError> {
        EventStore::list(&self.events, org)
    }
    fn anchor(&self, org: &str) -> Result<Option<Anchor>, StoreError> {
        self.events.anchor(org)
    }
    fn snapshot(&self, org: &str) -> Result<Chain, StoreError> {
        self.events.snapshot(org)
    }
    fn prune(&self, org: &str, now: Millis, default_days: u32) -> Result<usize, StoreError> {
        EventStore::prune(&self.events, org, now, default_days)
    }
}

impl Journal for MemoryStore {}

crate::forward_tickets!(MemoryStore, |s| &s.tickets, crate::forward::direct);

crate::forward_escalations!(MemoryStore, |s| &s.escalations, crate::forward::direct);

impl Directory for MemoryStore {
    fn create_team(&self, team: &Team) -> Result<(), StoreError> {
        self.directory.create_team(team)
    }
    fn team(&self, slug: &str) -> Result<Option<Team>, StoreError> {
        self.directory.team(slug)
    }
    fn teams(&self) -> Result<Vec<Team>, StoreError> {
        self.directory.teams()
    }
    fn put_member(&self, member: &Member) -> Result<(), StoreError> {
        self.directory.put_member(member)
    }
    fn members(&self, team: Option<&str>) -> Result<Vec<Member>, StoreError> {
        self.directory.members(team)
    }
    fn insert_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.directory.insert_key(key)
    }
    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.directory.key_by_hash(hash)
    }
    fn keys(&self, team: Option<&str>) -> Result<Vec<ApiKey>, StoreError> {
        self.directory.keys(team)
    }
    fn update_team(
        &self,
        slug: &str,
        change: &dyn Fn(&mut Team),
    ) -> Result<Option<Team>, StoreError> {
        self.directory.update_team(slug, change)
    }
    fn remove_member(&self, team: &str, user: &str) -> Result<Option<Member>, StoreError> {
        self.directory.remove_member(team, user)
    }
    fn key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        self.directory.key(id)
    }
    fn update_key(
        &self,
        id: &str,
        change: &dyn Fn(&mut ApiKey),
    ) -> Result<Option<ApiKey>, StoreError> {
        self.directory.update_key(id, change)
    }
}
