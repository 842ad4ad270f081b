//! Plain serde types that mirror the pack YAML exactly (`docs/packs.md`). Unknown keys are rejected.
//!
//! Optional fields stay `Option` so that rendering a spec and parsing it back gives the same
//! value; defaults are applied by `compile()`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::detect::EntityType;
use crate::identity::Role;

/// The five built-in policy kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// Identity and role gate.
    Rbac,
    /// PII detection and redaction.
    PiiDetector,
    /// HIPAA Safe Harbor PHI detection.
    HipaaPhiDetector,
    /// Escalation to a human reviewer.
    HumanOversight,
    /// Stamps audit settings on the decision's event.
    AuditLogger,
}

impl PolicyKind {
    /// Every kind, in a stable order.
    pub const ALL: [PolicyKind; 5] = [
        PolicyKind::Rbac,
        PolicyKind::PiiDetector,
        PolicyKind::HipaaPhiDetector,
        PolicyKind::HumanOversight,
        PolicyKind::AuditLogger,
    ];

    /// Every kind's YAML name.
    pub const NAMES: [&'static str; 5] = [
        "rbac",
        "pii-detector",
        "hipaa-phi-detector",
        "human-oversight",
        "audit-logger",
    ];

    /// The YAML name.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Rbac => "rbac",
            PolicyKind::PiiDetector => "pii-detector",
            PolicyKind::HipaaPhiDetector => "hipaa-phi-detector",
            PolicyKind::HumanOversight => "human-oversight",
            PolicyKind::AuditLogger => "audit-logger",
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy kind name that is not one of the five built-ins.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy kind")]
pub struct UnknownKind;

impl FromStr for PolicyKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PolicyKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(UnknownKind)
    }
}

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

/// Options of one kind, as written under `policy.<kind>` or inline in a chain entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum KindOptions {
    /// `rbac`
    Rbac(RbacOptions),
    /// `pii-detector`
    Pii(PiiOptions),
    /// `hipaa-phi-detector`
    Phi(PhiOptions),
    /// `human-oversight`
    Oversight(OversightOptions),
    /// `audit-logger`
    Audit(AuditOptions),
}

impl KindOptions {
    /// The kind these options belong to.
    pub fn kind(&self) -> PolicyKind {
        match self {
            KindOptions::Rbac(_) => PolicyKind::Rbac,
            KindOptions::Pii(_) => PolicyKind::PiiDetector,
            KindOptions::Phi(_) => PolicyKind::HipaaPhiDetector,
            KindOptions::Oversight(_) => PolicyKind::HumanOversight,
            KindOptions::Audit(_) => PolicyKind::AuditLogger,
        }
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

/// What happens when a policy itself fails (an internal error, not a denial).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Block the request (default for every kind).
    Closed,
    /// Let the request through with a diagnostic.
    Open,
}

/// `policy:` — options per kind, shared by every chain entry of that kind.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PolicyOptions {
    /// `policy.rbac`
    #[serde(rename = "rbac", skip_serializing_if = "Option::is_none")]
    pub rbac: Option<RbacOptions>,
    /// `policy.pii-detector`
    #[serde(rename = "pii-detector", skip_serializing_if = "Option::is_none")]
    pub pii: Option<PiiOptions>,
    /// `policy.hipaa-phi-detector`
    #[serde(rename = "hipaa-phi-detector", skip_serializing_if = "Option::is_none")]
    pub phi: Option<PhiOptions>,
    /// `policy.human-oversight`
    #[serde(rename = "human-oversight", skip_serializing_if = "Option::is_none")]
    pub oversight: Option<OversightOptions>,
    /// `policy.audit-logger`
    #[serde(rename = "audit-logger", skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditOptions>,
}

impl PolicyOptions {
    /// Whether no kind has options.
    pub fn is_empty(&self) -> bool {
        self.rbac.is_none()
            && self.pii.is_none()
            && self.phi.is_none()
            && self.oversight.is_none()
            && self.audit.is_none()
    }

    /// The options block for `kind`, if any.
    pub fn get(&self, kind: PolicyKind) -> Option<KindOptions> {
        match kind {
            PolicyKind::Rbac => self.rbac.clone().map(KindOptions::Rbac),
            PolicyKind::PiiDetector => self.pii.clone().map(KindOptions::Pii),
            PolicyKind::HipaaPhiDetector => self.phi.clone().map(KindOptions::Phi),
            PolicyKind::HumanOversight => self.oversight.clone().map(KindOptions::Oversight),
            PolicyKind::AuditLogger => self.audit.clone().map(KindOptions::Audit),
        }
    }

    pub(crate) fn set(&mut self, options: KindOptions) {
        match options {
            KindOptions::Rbac(o) => self.rbac = Some(o),
            KindOptions::Pii(o) => self.pii = Some(o),
            KindOptions::Phi(o) => self.phi = Some(o),
            KindOptions::Oversight(o) => self.oversight = Some(o),
            KindOptions::Audit(o) => self.audit = Some(o),
        }
    }
}

/// An identity attribute `rbac` can require. Header spellings (`X-User-ID`, `X-Team-ID`,
/// `X-User-Role`, `X-Org-ID`) are accepted as synonyms, in any letter case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Attribute {
    /// The user id.
    User,
    /// The team.
    Team,
    /// The role.
    Role,
    /// The organization.
    Org,
}

impl Attribute {
    const SPELLINGS: &'static [&'static str] = &[
        "user",
        "team",
        "role",
        "org",
        "X-User-ID",
        "X-Team-ID",
        "X-User-Role",
        "X-Org-ID",
    ];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Attribute::User => "user",
            Attribute::Team => "team",
            Attribute::Role => "role",
            Attribute::Org => "org",
        }
    }
}

impl FromStr for Attribute {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_lowercase().as_str() {
            "user" | "x-user-id" => Ok(Attribute::User),
            "team" | "x-team-id" => Ok(Attribute::Team),
            "role" | "x-user-role" => Ok(Attribute::Role),
            "org" | "x-org-id" => Ok(Attribute::Org),
            _ => Err(()),
        }
    }
}

impl<'de> Deserialize<'de> for Attribute {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|()| serde::de::Error::unknown_variant(&s, Attribute::SPELLINGS))
    }
}

/// `policy.rbac`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RbacOptions {
    /// The principal must be authenticated by the host. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_auth: Option<bool>,
    /// Attributes whose absence denies the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_if_missing: Option<Vec<Attribute>>,
    /// Lowest role allowed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_role: Option<Role>,
    /// Models each role may call (`*` and trailing-`*` prefixes allowed); a role without an
    /// entry is not restricted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_models: Option<BTreeMap<Role, Vec<String>>>,
    /// `closed` (default) or `open`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_mode: Option<FailMode>,
}

/// What a detector does with a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectAction {
    /// Rewrite the text with markers.
    Redact,
    /// Stop the request.
    Block,
}

/// Which direction a detector scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyTo {
    /// Requests only.
    Input,
    /// Responses only.
    Output,
    /// Both (default).
    Both,
}

impl ApplyTo {
    /// Whether requests are scanned.
    pub fn input(self) -> bool {
        matches!(self, ApplyTo::Input | ApplyTo::Both)
    }

    /// Whether responses are scanned.
    pub fn output(self) -> bool {
        matches!(self, ApplyTo::Output | ApplyTo::Both)
    }
}

/// How a redacted value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarkerFormat {
    /// `[EMAIL]` (default).
    Label,
    /// `****`.
    Mask,
    /// `[EMAIL:3f2a9c]`, a keyed stable digest.
    Hash,
    /// `****1234`.
    Partial,
}

/// `redaction:` of a detector.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionOptions {
    /// Marker style.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker_format: Option<MarkerFormat>,
    /// Pad or cut markers to the length of the value they replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_length: Option<bool>,
    /// Marker text per entity type, overriding the format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_markers: Option<BTreeMap<EntityType, String>>,
}

/// A named custom pattern of `pii-detector`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomPattern {
    /// Name, used as the marker label (`[EMPLOYEE_ID]`).
    pub name: String,
    /// A regular expression (Rust `regex` syntax, linear time).
    pub pattern: String,
}

/// `policy.pii-detector`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiOptions {
    /// `redact` (default) or `block`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<DetectAction>,
    /// Entity types to detect (default: every PII type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities: Option<Vec<EntityType>>,
    /// Detect payment cards (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_mode: Option<bool>,
    /// Named custom regexes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect_patterns: Option<Vec<CustomPattern>>,
    /// Values never flagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_list: Option<Vec<String>>,
    /// `input`, `output` or `both` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_to: Option<ApplyTo>,
    /// Marker options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction: Option<RedactionOptions>,
    /// `closed` (default) or `open`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_mode: Option<FailMode>,
}

/// PHI detection mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhiMode {
    /// The 18 Safe Harbor identifiers of 45 CFR 164.514(b)(2).
    #[serde(rename = "hipaa_18")]
    Hipaa18,
}

/// `policy.hipaa-phi-detector`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhiOptions {
    /// Only `hipaa_18` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<PhiMode>,
    /// `redact` (default) or `block`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<DetectAction>,
    /// `input`, `output` or `both` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_to: Option<ApplyTo>,
    /// Values never flagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_list: Option<Vec<String>>,
    /// Marker options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction: Option<RedactionOptions>,
    /// `closed` (default) or `open`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_mode: Option<FailMode>,
}

/// What `human-oversight` does with a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OversightAction {
    /// Hold for review (default).
    Escalate,
    /// Refuse outright.
    Block,
}

/// `policy.human-oversight`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OversightOptions {
    /// Escalate every matching request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_review: Option<bool>,
    /// Escalate only requests in these categories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_human_for: Option<Vec<String>>,
    /// Extra keywords per category (extends a built-in category or defines a new one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<BTreeMap<String, Vec<String>>>,
    /// `escalate` (default) or `block`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<OversightAction>,
    /// Pending escalations expire (= deny) after this long. Default 86400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// Who reviews by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_assignee: Option<String>,
    /// `closed` (default) or `open`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_mode: Option<FailMode>,
}

/// `policy.audit-logger`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditOptions {
    /// 1–36500, default 365.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_all_access: Option<bool>,
    /// Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hipaa_audit_controls: Option<bool>,
    /// `closed` (default) or `open`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_mode: Option<FailMode>,
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
