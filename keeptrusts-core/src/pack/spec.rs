//! Plain serde types that mirror the pack YAML exactly (`docs/packs.md`). Unknown keys are rejected.
//!
//! Optional fields stay `Option` so that rendering a spec and parsing it back gives the same
//! value; defaults are applied by `compile()`.

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use crate::policy::detector::{ApplyTo, DetectAction};
pub use crate::policy::oversight::OversightAction;
pub use crate::policy::phi::PhiMode;
pub use crate::policy::pii::CustomPattern;
pub use crate::policy::rbac::Attribute;
pub use crate::policy::{
    AuditOptions, FailMode, KindOptions, OversightOptions, PhiOptions, PiiOptions, PolicyKind,
    PolicyOptions, RbacOptions, UnknownKind,
};
pub use crate::redact::{MarkerFormat, RedactionOptions};

/// A whole pack document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PackSpec {
    /// `pack:` metadata.
    pub pack: PackMeta,
    /// `policies:`.
    pub policies: PoliciesSpec,
    /// `policy:` options per kind.
    #[serde(skip_serializing_if = "PolicyOptions::is_empty")]
    pub policy: PolicyOptions,
    /// `providers:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub providers: Option<ProvidersSpec>,
    /// `wallets:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wallets: Option<WalletsSpec>,
    /// `rate_limit_defaults:` — the limits of each API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_defaults: Option<RateLimitSpec>,
    /// `teams:` — per-team settings by slug (today: `rate_limits`, overriding
    /// `rate_limit_defaults` for that team's keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teams: Option<BTreeMap<String, TeamSpec>>,
    /// `notifications:` — webhooks the gateway calls when something needs someone
    /// ([`crate::notify`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Vec<NotificationSpec>>,
}

/// One `notifications:` entry: a webhook and the events it wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSpec {
    /// Where to POST (`http://` or `https://`).
    pub url: String,
    /// Event types (`ticket.created`, …; [`crate::notify::Kind`]).
    pub events: Vec<String>,
    /// The HMAC key of the signature header, read from the environment by the host.
    pub secret_key_ref: SecretRef,
}

/// A whole number of at least 1 (a rate limit). Zero, negative and fractional values are refused
/// with a message saying so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Positive(u64);

impl Positive {
    /// `n`, if it is at least 1.
    pub fn new(n: u64) -> Option<Positive> {
        (n >= 1).then_some(Positive(n))
    }

    /// The value.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Positive;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of at least 1")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Positive, E> {
                Positive::new(v).ok_or_else(|| {
                    E::custom("must be at least 1, found 0 (leave the key out for no limit)")
                })
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Positive, E> {
                match u64::try_from(v) {
                    Ok(u) => self.visit_u64(u),
                    Err(_) => Err(E::custom(format!(
                        "must be a whole number of at least 1, found the negative number {v}"
                    ))),
                }
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Positive, E> {
                Err(E::custom(format!(
                    "must be a whole number of at least 1, found {v}"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// `rate_limit_defaults:`, `teams.<slug>.rate_limits:` and
/// `providers.consumer_groups[].rate_limits:` (see `docs/rate-limits.md`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Requests admitted per fixed UTC minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<Positive>,
    /// Tokens (reservation bounds, corrected to usage at settlement) per fixed UTC minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<Positive>,
    /// Tokens per UTC day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<Positive>,
    /// Send `X-RateLimit-Limit`, `-Remaining`, `-Reset` on answers. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_headers: Option<bool>,
}

/// `teams.<slug>:`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamSpec {
    /// Limits of each of the team's keys, merged key by key over `rate_limit_defaults`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RateLimitSpec>,
}

/// `pack:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackMeta {
    /// 1–200 chars.
    pub name: String,
    /// SemVer or a dotted number, as a string.
    pub version: String,
    /// `false` passes everything through (still audited). Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `policies:`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoliciesSpec {
    /// The ordered chain.
    pub chain: Vec<ChainEntry>,
}

/// One chain entry: a plain kind name, or a one-key map `kind: {targeting, fail_mode, options…}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainEntry {
    /// The policy kind.
    pub kind: PolicyKind,
    /// Who this entry applies to; `None` means everyone.
    pub targeting: Option<Targeting>,
    /// Inline options overriding `policy.<kind>` for this entry only.
    pub options: Option<KindOptions>,
    /// Whether it was written as a map (kept so rendering round-trips).
    pub map_form: bool,
}

impl ChainEntry {
    /// A plain entry that applies to everyone.
    pub fn plain(kind: PolicyKind) -> Self {
        ChainEntry {
            kind,
            targeting: None,
            options: None,
            map_form: false,
        }
    }
}

impl Serialize for ChainEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if !self.map_form && self.targeting.is_none() && self.options.is_none() {
            return s.serialize_str(self.kind.as_str());
        }
        let mut body = match &self.options {
            Some(o) => match serde_json::to_value(o) {
                Ok(serde_json::Value::Object(m)) => m,
                Ok(_) => serde_json::Map::new(),
                Err(e) => return Err(serde::ser::Error::custom(e)),
            },
            None => serde_json::Map::new(),
        };
        if let Some(t) = &self.targeting {
            let v = serde_json::to_value(t).map_err(serde::ser::Error::custom)?;
            body.insert("targeting".into(), v);
        }
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(self.kind.as_str(), &body)?;
        m.end()
    }
}

/// `targeting:` of a chain entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targeting {
    /// `org` (default) | `team` | `user` | `consumer_group`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Team slugs, for `scope: team`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<Vec<String>>,
    /// User ids, for `scope: user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<String>>,
    /// Consumer group names, for `scope: consumer_group`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_groups: Option<Vec<String>>,
}

/// Targeting scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Everyone in the organization.
    Org,
    /// The listed teams.
    Team,
    /// The listed users.
    User,
    /// The listed consumer groups.
    ConsumerGroup,
}

/// `providers:`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvidersSpec {
    /// Upstream targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<TargetSpec>>,
    /// Consumer groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_groups: Option<Vec<ConsumerGroupSpec>>,
}

/// Provider flavour of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// OpenAI.
    Openai,
    /// Anthropic (Messages API).
    Anthropic,
    /// Azure OpenAI.
    Azure,
    /// Any OpenAI-compatible server at `base_url`.
    OpenaiCompatible,
    /// Local echo, no network.
    Mock,
}

impl ProviderKind {
    /// The YAML name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Azure => "azure",
            ProviderKind::OpenaiCompatible => "openai-compatible",
            ProviderKind::Mock => "mock",
        }
    }
}

/// A secret read from the environment by the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// Environment variable name.
    pub env: String,
}

/// Per-target prices, per 1M tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingSpec {
    /// Price per 1M input tokens.
    pub input_per_1m: Decimal,
    /// Price per 1M output tokens.
    pub output_per_1m: Decimal,
    /// ISO 4217 code, default `USD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// `providers.targets[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// Unique id.
    pub id: String,
    /// Provider flavour.
    pub provider: ProviderKind,
    /// Model name at the provider.
    pub model: String,
    /// Base URL; per-provider default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Where the API key comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretRef>,
    /// Price override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<PricingSpec>,
}

/// A model reference inside a consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    /// Provider flavour.
    pub provider: ProviderKind,
    /// Model name.
    pub model: String,
}

/// Routing strategy of a consumer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    /// EWMA of observed latency.
    LowestLatency,
    /// Cheapest for this request.
    CostOptimized,
    /// Config order.
    Ordered,
    /// Rotate.
    RoundRobin,
}

/// `providers.consumer_groups[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerGroupSpec {
    /// Unique name.
    pub name: String,
    /// Teams allowed to use it (everyone when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<Vec<String>>,
    /// Models, each matching a target.
    pub models: Vec<ModelRef>,
    /// Strategy, default `ordered`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<Routing>,
    /// Limits of the whole group (all its keys together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RateLimitSpec>,
}

/// A wallet scope in the cascade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WalletScope {
    /// The user's own wallet.
    User,
    /// The team's wallet.
    Team,
    /// The organization's wallet.
    Org,
}

/// `wallets:`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletsSpec {
    /// Cascade order, default `[user, team, org]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cascade: Option<Vec<WalletScope>>,
    /// Output tokens assumed when a request sets no `max_tokens`. Default 1024.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_max_output_tokens: Option<u32>,
    /// Lifetime of a reservation lease; an unsettled lease is released after it. Default 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation_ttl_seconds: Option<u64>,
    /// Lifetime of a pending cost ticket. Default 86400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_ttl_seconds: Option<u64>,
    /// Holding an over-budget request open until its ticket is approved or a wallet is funded
    /// (`wallets.queue`). Absent: the request is answered 402 at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueSpec>,
    /// Percentages of a wallet's allocation whose spending sends `budget.threshold_reached`
    /// (e.g. `[50, 80, 100]`). Default `[80, 100]` when a notification asks for that event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<Vec<u32>>,
}

/// `wallets.queue:`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    /// How long an over-budget request is held, at most (1 to 3600 s); a client's
    /// `Prefer: wait=N` asks for less. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_seconds: Option<u64>,
    /// Requests held at once per team on one gateway; above it a request is answered 402 at
    /// once. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_held_per_team: Option<u32>,
}
