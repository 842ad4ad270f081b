//! Property tests over packs built from the spec types.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::collections::HashSet;

use keeptrusts_core::detect::EntityType;
use keeptrusts_core::pack::spec::*;
use keeptrusts_core::pack::{self, ParsedPack};
use keeptrusts_core::request::{ChatResponse, Choice};
use keeptrusts_core::{
    ChatMessage, ChatRequest, Engine, MemoryEscalations, Principal, RequestContext, Role, Stores,
    Verdict,
};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use rust_decimal::Decimal;

const TEAMS: [&str; 4] = ["engineering", "support", "legal", "finance"];
const USERS: [&str; 3] = ["a@yourco.com", "b@yourco.com", "c@yourco.com"];
const MODELS: [&str; 4] = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "gpt-4.1"];
const GROUPS: [&str; 2] = ["internal-tools", "customer-facing"];

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Member), Just(Role::Admin), Just(Role::Owner)]
}

fn fail() -> impl Strategy<Value = Option<FailMode>> {
    option::of(prop_oneof![Just(FailMode::Closed), Just(FailMode::Open)])
}

fn pick<T: Clone + std::fmt::Debug + 'static>(items: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(items)
}

fn subset(items: &'static [&'static str], min: usize) -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(items, min..=items.len())
        .prop_map(|v| v.into_iter().map(str::to_owned).collect())
}

/// A strategy for an options struct, each field with the strategy of its value.
macro_rules! options {
    ($ty:ident { $($field:ident: $strategy:expr),* $(,)? }) => {
        ($($strategy,)*).prop_map(|($($field,)*)| $ty { $($field),* })
    };
}

const ATTRIBUTES: [Attribute; 4] = [
    Attribute::User,
    Attribute::Team,
    Attribute::Role,
    Attribute::Org,
];

fn rbac() -> impl Strategy<Value = RbacOptions> {
    options!(RbacOptions {
        require_auth: option::of(any::<bool>()),
        deny_if_missing: option::of(vec(pick(&ATTRIBUTES), 0..4)),
        minimum_role: option::of(role()),
        allowed_models: option::of(btree_map(role(), subset(&MODELS, 1), 0..3)),
        fail_mode: fail(),
    })
}

const MARKERS: [MarkerFormat; 4] = [
    MarkerFormat::Label,
    MarkerFormat::Mask,
    MarkerFormat::Hash,
    MarkerFormat::Partial,
];

fn redaction() -> impl Strategy<Value = RedactionOptions> {
    const MARKED: [EntityType; 2] = [EntityType::Email, EntityType::UsSsn];
    options!(RedactionOptions {
        marker_format: option::of(pick(&MARKERS)),
        preserve_length: option::of(any::<bool>()),
        custom_markers: option::of(btree_map(pick(&MARKED), "[A-Z\\[\\]<> ]{1,10}", 0..2)),
    })
}

const PATTERNS: [&str; 3] = ["EMP-[0-9]{6}", "(?i)project\\s+[a-z]+", "TICKET#[0-9]+"];

/// Custom patterns `P0`, `P1`, … of `patterns`.
fn custom(patterns: Vec<&str>) -> Vec<CustomPattern> {
    let named = patterns.into_iter().enumerate();
    named
        .map(|(i, pattern)| CustomPattern {
            name: format!("P{i}"),
            pattern: pattern.to_owned(),
        })
        .collect()
}

const SIDES: [ApplyTo; 3] = [ApplyTo::Input, ApplyTo::Output, ApplyTo::Both];
const ACTIONS: [DetectAction; 2] = [DetectAction::Redact, DetectAction::Block];

fn pii() -> impl Strategy<Value = PiiOptions> {
    let all = 0..=EntityType::PII.len();
    options!(PiiOptions {
        action: option::of(pick(&ACTIONS)),
        entities: option::of(proptest::sample::subsequence(EntityType::PII, all)),
        pci_mode: option::of(any::<bool>()),
        detect_patterns: option::of(vec(pick(&PATTERNS), 0..3).prop_map(custom)),
        allow_list: option::of(vec("[a-z]{1,5}@[a-z]{1,5}\\.io", 0..2)),
        apply_to: option::of(pick(&SIDES)),
        redaction: option::of(redaction()),
        fail_mode: fail(),
    })
}

fn phi() -> impl Strategy<Value = PhiOptions> {
    options!(PhiOptions {
        mode: option::of(Just(PhiMode::Hipaa18)),
        action: option::of(pick(&ACTIONS)),
        apply_to: option::of(pick(&SIDES)),
        allow_list: option::of(vec("[A-Z]{2,6}", 0..2)),
        redaction: option::of(redaction()),
        fail_mode: fail(),
    })
}

fn oversight() -> impl Strategy<Value = OversightOptions> {
    const CATEGORIES: [&str; 3] = ["medical_decisions", "legal_opinions", "financial_advice"];
    let phrases = vec("[a-z]{2,8}( [a-z]{2,8})?", 1..3);
    options!(OversightOptions {
        require_review: option::of(any::<bool>()),
        require_human_for: option::of(subset(&CATEGORIES, 0)),
        categories: option::of(btree_map("[a-z]{3,8}", phrases, 0..2)),
        action: option::of(pick(&[OversightAction::Escalate, OversightAction::Block])),
        timeout_seconds: option::of(1u64..1_000_000),
        default_assignee: option::of("[a-z]{1,6}@yourco\\.com"),
        fail_mode: fail(),
    })
}

fn audit() -> impl Strategy<Value = AuditOptions> {
    options!(AuditOptions {
        retention_days: option::of(1u32..=36_500),
        immutable: option::of(any::<bool>()),
        log_all_access: option::of(any::<bool>()),
        hipaa_audit_controls: option::of(any::<bool>()),
        fail_mode: fail(),
    })
}

fn options_for(kind: PolicyKind) -> BoxedStrategy<KindOptions> {
    match kind {
        PolicyKind::Rbac => rbac().prop_map(KindOptions::Rbac).boxed(),
        PolicyKind::PiiDetector => pii().prop_map(KindOptions::Pii).boxed(),
        PolicyKind::HipaaPhiDetector => phi().prop_map(KindOptions::Phi).boxed(),
        PolicyKind::HumanOversight => oversight().prop_map(KindOptions::Oversight).boxed(),
        PolicyKind::AuditLogger => audit().prop_map(KindOptions::Audit).boxed(),
    }
}

fn targeting(with_groups: bool) -> impl Strategy<Value = Targeting> {
    let groups = if with_groups { 3 } else { 2 };
    (0..groups + 2).prop_flat_map(|which| match which {
        0 => Just(Targeting {
            scope: Some(Scope::Org),
            ..Default::default()
        })
        .boxed(),
        1 => subset(&TEAMS, 1)
            .prop_map(|t| Targeting {
                scope: Some(Scope::Team),
                teams: Some(t),
                ..Default::default()
            })
            .boxed(),
        2 => subset(&USERS, 1)
            .prop_map(|u| Targeting {
                scope: Some(Scope::User),
                users: Some(u),
                ..Default::default()
            })
            .boxed(),
        3 => subset(&TEAMS, 1)
            .prop_map(|t| {
                Targeting {
                    scope: None,
                    teams: None,
                    users: None,
                    consumer_groups: None,
                }
                .with_teams(t)
            })
            .boxed(),
        _ => subset(&GROUPS, 1)
            .prop_map(|g| Targeting {
                scope: Some(Scope::ConsumerGroup),
                consumer_groups: Some(g),
                ..Default::default()
            })
            .boxed(),
    })
}

trait WithTeams {
    fn with_teams(self, t: Vec<String>) -> Self;
}

impl WithTeams for Targeting {
    fn with_teams(self, t: Vec<String>) -> Self {
        Targeting {
            scope: Some(Scope::Team),
            teams: Some(t),
            ..self
        }
    }
}

fn entry(with_groups: bool) -> impl Strategy<Value = ChainEntry> {
    pick(&PolicyKind::ALL).prop_flat_map(move |kind| {
        (
            option::of(targeting(with_groups)),
            option::of(options_for(kind)),
            any::<bool>(),
        )
            .prop_map(move |(targeting, options, map_form)| {
                // Inline options with no field set are written `kind: {}`, the same YAML as no
                // options: the canonical spec holds `None` for them.
                let options =
                    options.filter(|o| serde_json::to_value(o).unwrap() != serde_json::json!({}));
                ChainEntry {
                    kind,
                    map_form: map_form || targeting.is_some() || options.is_some(),
                    targeting,
                    options,
                }
            })
    })
}

const PROVIDERS: [ProviderKind; 3] = [
    ProviderKind::Openai,
    ProviderKind::Anthropic,
    ProviderKind::Mock,
];

fn providers() -> impl Strategy<Value = ProvidersSpec> {
    (
        vec(
            (
                pick(&PROVIDERS),
                0usize..4,
                option::of((0u32..10_000, 0u32..5)),
            ),
            1..4,
        ),
        any::<bool>(),
    )
        .prop_map(|(targets, with_groups)| {
            let targets: Vec<TargetSpec> = targets
                .into_iter()
                .enumerate()
                .map(|(i, (provider, m, price))| TargetSpec {
                    id: format!("t{i}"),
                    provider,
                    model: MODELS[m].to_owned(),
                    base_url: (i % 2 == 0).then(|| "https://llm.example/v1".to_owned()),
                    secret_key_ref: Some(SecretRef {
                        env: format!("KEY_{i}"),
                    }),
                    pricing: price.map(|(mantissa, scale)| PricingSpec {
                        input_per_1m: Decimal::new(i64::from(mantissa), scale),
                        output_per_1m: Decimal::new(i64::from(mantissa) * 4, scale),
                        currency: Some("USD".into()),
                    }),
                })
                .collect();
            let consumer_groups = with_groups.then(|| {
                GROUPS
                    .iter()
                    .enumerate()
                    .map(|(g, name)| ConsumerGroupSpec {
                        name: (*name).to_owned(),
                        teams: (g == 0).then(|| vec!["engineering".to_owned()]),
                        models: vec![ModelRef {
                            provider: targets[g % targets.len()].provider,
                            model: targets[g % targets.len()].model.clone(),
                        }],
                        routing: Some([Routing::LowestLatency, Routing::CostOptimized][g]),
                        rate_limits: (g == 1).then(|| RateLimitSpec {
                            requests_per_minute: Positive::new(60),
                            tokens_per_minute: None,
                            tokens_per_day: Positive::new(1_000_000),
                            response_headers: Some(true),
                        }),
                    })
                    .collect()
            });
            ProvidersSpec {
                targets: Some(targets),
                consumer_groups,
            }
        })
}

fn rate_limits() -> impl Strategy<Value = RateLimitSpec> {
    (
        option::of(1u64..9_000_000_000_000_000_000),
        option::of(1u64..10_000_000),
        option::of(1u64..1_000_000_000),
        option::of(any::<bool>()),
    )
        .prop_map(|(rpm, tpm, tpd, headers)| RateLimitSpec {
            requests_per_minute: rpm.and_then(Positive::new),
            tokens_per_minute: tpm.and_then(Positive::new),
            tokens_per_day: tpd.and_then(Positive::new),
            response_headers: headers,
        })
}

fn spec() -> impl Strategy<Value = PackSpec> {
    (option::of(providers()), any::<bool>()).prop_flat_map(|(providers, _)| {
        let with_groups = providers
            .as_ref()
            .is_some_and(|p| p.consumer_groups.is_some());
        (
            "[a-z][a-z0-9-]{0,20}",
            "[0-9]{1,2}(\\.[0-9]{1,2}){0,2}",
            option::of(any::<bool>()),
            option::of("\\PC{0,30}"),
            vec(entry(with_groups), 0..8),
            option::of(rbac()),
            option::of(pii()),
            option::of(oversight()),
            option::of(audit()),
            option::of((
                option::of(proptest::sample::subsequence(
                    vec![WalletScope::User, WalletScope::Team, WalletScope::Org],
                    1..=3,
                )),
                option::of(1u32..100_000),
                option::of(1u64..100_000),
            )),
            option::of(rate_limits()),
            option::of(proptest::collection::btree_map(
                "[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,4})?",
                option::of(rate_limits()).prop_map(|rate_limits| TeamSpec { rate_limits }),
                0..3,
            )),
        )
            .prop_map(
                move |(
                    name,
                    version,
                    enabled,
                    description,
                    chain,
                    rb,
                    pi,
                    ov,
                    au,
                    wallets,
                    rate_limit_defaults,
                    teams,
                )| {
                    PackSpec {
                        pack: PackMeta {
                            name,
                            version,
                            enabled,
                            description,
                        },
                        policies: PoliciesSpec { chain },
                        policy: PolicyOptions {
                            rbac: rb,
                            pii: pi,
                            phi: None,
                            oversight: ov,
                            audit: au,
                        },
                        providers: providers.clone(),
                        wallets: wallets.map(|(cascade, default_max_output_tokens, ttl)| {
                            WalletsSpec {
                                cascade,
                                default_max_output_tokens,
                                reservation_ttl_seconds: ttl,
                                ticket_ttl_seconds: ttl.map(|t| t * 10),
                                queue: ttl.map(|t| QueueSpec {
                                    hold_seconds: Some(t.clamp(1, 3600)),
                                    max_held_per_team: Some(u32::try_from(t % 7 + 1).unwrap_or(1)),
                                }),
                                alerts: None,
                            }
                        }),
                        rate_limit_defaults: rate_limit_defaults.clone(),
                        teams: teams.clone(),
                        notifications: None,
                    }
                },
            )
    })
}

fn principal() -> impl Strategy<Value = Principal> {
    (
        option::of(prop_oneof![Just("acme".to_owned()), "[a-z]{0,4}"]),
        option::of(prop_oneof![
            pick(&USERS).prop_map(str::to_owned),
            "\\PC{0,12}"
        ]),
        option::of(prop_oneof![
            pick(&TEAMS).prop_map(str::to_owned),
            "\\PC{0,12}"
        ]),
        option::of(role()),
        option::of(prop_oneof![
            pick(&GROUPS).prop_map(str::to_owned),
            "[a-z-]{0,10}"
        ]),
        any::<bool>(),
    )
        .prop_map(
            |(org, user, team, role, consumer_group, authenticated)| Principal {
                org,
                user,
                team,
                role,
                consumer_group,
                authenticated,
                org_admin: false,
            },
        )
}

const SNIPPETS: [&str; 10] = [
    "jane.doe@example.com",
    "SSN 123-45-6789",
    "4111 1111 1111 1111",
    "Patient: John Smith",
    "MRN: 00123456",
    "can I sue them",
    "what dosage",
    "EMP-123456",
    "日本語のテキスト 🙂",
    "version 1.2.3.4",
];

fn text() -> impl Strategy<Value = String> {
    vec(
        prop_oneof![
            pick(&SNIPPETS).prop_map(str::to_owned),
            "\\PC{0,20}",
            any::<String>()
        ],
        0..5,
    )
    .prop_map(|v| v.join(" "))
}

fn request() -> impl Strategy<Value = ChatRequest> {
    (
        option::of(pick(&MODELS).prop_map(str::to_owned)),
        vec(
            (pick(&["user", "system", "assistant", "tool"]), text()),
            1..4,
        ),
    )
        .prop_map(|(model, msgs)| ChatRequest {
            model,
            messages: msgs
                .into_iter()
                .map(|(r, t)| ChatMessage::text(r, &t))
                .collect(),
            ..Default::default()
        })
}

/// The spec strategy nests deeply; debug builds need more than a test thread's 2 MiB of stack.
fn big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

#[test]
fn parse_of_render_is_identity() {
    big_stack(|| {
        TestRunner::new(config(256))
            .run(&spec(), |spec| {
                let text = pack::render(&spec).unwrap();
                let parsed = pack::parse(&text);
                prop_assert!(
                    parsed.is_ok(),
                    "rendered pack rejected: {:?}\n{}",
                    parsed.err(),
                    text
                );
                prop_assert_eq!(parsed.unwrap().spec, spec);
                Ok(())
            })
            .unwrap();
    });
}

#[test]
fn evaluation_never_panics() {
    big_stack(|| {
        let calls = vec(
            (
                principal(),
                request(),
                option::of("esc_[a-z0-9#-]{0,8}"),
                text(),
            ),
            1..6,
        );
        TestRunner::new(config(48))
            .run(&(spec(), calls), |(spec, calls)| {
                let engine = Engine::compile(ParsedPack {
                    spec,
                    warnings: Vec::new(),
                })
                .unwrap();
                let store = MemoryEscalations::new();
                let stores = Stores::new(&store);
                for (i, (p, req, esc, out_text)) in calls.iter().enumerate() {
                    let ctx = RequestContext {
                        request_id: format!("r{i}"),
                        now_ms: i as i64,
                        escalation_id: esc.clone(),
                        ticket_id: None,
                    };
                    let d = engine.evaluate(p, req, &ctx, &stores).unwrap();
                    prop_assert!(matches!(d.status, 200 | 401 | 403 | 409));
                    prop_assert_eq!(d.forwards(), d.status == 200);
                    prop_assert_eq!(d.error.is_some(), d.status != 200);
                    prop_assert!(d.verdict != Verdict::Redact || d.request.is_some());
                    let kinds: HashSet<_> = d.chain.iter().collect();
                    prop_assert_eq!(kinds.len(), d.chain.len(), "a kind ran twice");
                    prop_assert!(d.results.len() <= d.chain.len());
                    let response = ChatResponse {
                        choices: vec![Choice {
                            message: Some(ChatMessage::text("assistant", out_text)),
                            ..Default::default()
                        }],
                        ..Default::default()
                    };
                    let o = engine.evaluate_output(p, &response, &ctx).unwrap();
                    prop_assert!(matches!(o.status, 200 | 409));
                }
                Ok(())
            })
            .unwrap();
    });
}
