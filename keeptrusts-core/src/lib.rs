#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod admin;
pub mod authority;
pub mod dashboard;
pub mod decision;
pub mod detect;
pub mod directory;
pub mod engine;
pub mod error;
pub mod escalation;
pub mod event;
pub mod exchange;
pub mod forward;
pub mod golden;
pub mod identity;
mod memory;
pub mod notify;
pub mod pack;
pub mod policy;
pub mod pricing;
pub mod ratelimit;
pub mod redact;
pub mod request;
pub mod routing;
pub mod store;
pub mod targeting;
pub mod time;
pub mod wallet;

pub use decision::{AuditStamp, Decision, ErrorInfo, Phase, PolicyResult, Verdict};
pub use engine::{Engine, EngineOptions, RateLimiting, RequestContext, Stores};
pub use error::{AdminError, Diagnostic, PackError, RequestError, Severity, StoreError};
pub use escalation::{
    Escalation, EscalationStatus, EscalationStore, MemoryEscalations, Resolution,
};
pub use identity::{Principal, Role, Standing};
pub use pack::spec::PolicyKind;
pub use ratelimit::{MemoryRateCounters, RateCounters};
pub use request::{ChatMessage, ChatRequest, ChatResponse};
pub use store::{MemoryStore, Storage};
pub use wallet::budget::Budget;
pub use wallet::ticket::{MemoryTickets, Ticket, TicketStore};
pub use wallet::{MemoryWallets, Wallet, WalletKey, WalletStore};
