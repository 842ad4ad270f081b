#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;
use crate::pack;

const PACK: &str = r#"
pack:
  name: limits
  version: "1.0"
policies:
  chain: [rbac]
rate_limit_defaults:
  requests_per_minute: 3
  tokens_per_minute: 1000
  response_headers: true
teams:
  support:
    rate_limits:
      requests_per_minute: 5
providers:
  targets:
    - id: m
      provider: mock
      model: gpt-4o-mini
  consumer_groups:
    - name: tools
      models: [{provider: mock, model: gpt-4o-mini}]
      rate_limits: { requests_per_minute: 4 }
"#;

fn limits() -> RateLimits {
    RateLimits::new(&pack::parse(PACK).unwrap().spec)
}

fn key<'a>(k: &'a str, team: &'a str, group: Option<&'a str>) -> Subject<'a> {
    Subject {
        org: "default",
        key: Some(k),
        team: Some(team),
        consumer_group: group,
    }
}

fn admitted(d: &RateDecision) -> bool {
    matches!(d, RateDecision::Admitted { .. })
}

#[test]
fn windows_are_fixed_and_aligned_on_utc() {
    assert_eq!(window(0, MINUTE_MS), (0, 60_000));
    assert_eq!(window(59_999, MINUTE_MS), (0, 60_000));
    assert_eq!(window(60_000, MINUTE_MS), (60_000, 120_000));
    assert_eq!(window(86_400_000 + 5, DAY_MS), (86_400_000, 172_800_000));
    // before the epoch too (rem_euclid)
    assert_eq!(window(-1, MINUTE_MS), (-60_000, 0));
}

#[test]
fn the_n_plus_first_request_of_a_key_in_a_minute_is_refused_with_retry_after() {
    let l = limits();
    let c = MemoryRateCounters::new();
    let now = 10 * MINUTE_MS + 15_000;
    for i in 0..3 {
        let d = l.check(&c, &key("k1", "eng", None), 10, now + i).unwrap();
        let RateDecision::Admitted { headers, .. } = d else {
            panic!("request {i} refused: {d:?}")
        };
        let h = headers.unwrap();
        // the requests limit is the tightest: 3 - (i + 1) left of 3
        assert_eq!((h.limit, h.remaining), (3, 2 - i as u64));
        assert_eq!(h.reset_seconds, 45);
    }
    let d = l.check(&c, &key("k1", "eng", None), 10, now + 3).unwrap();
    let RateDecision::Limited { limited, headers } = d else {
        panic!("{d:?}")
    };
    assert_eq!(limited.kind, LimitKind::RequestsPerMinute);
    assert_eq!(limited.scope, LimitScope::Key);
    assert_eq!(limited.retry_after, 45);
    assert!(!limited.never);
    assert_eq!(headers.unwrap().remaining, 0);
    // nothing of the refused request was counted: 30 tokens, 3 requests
    let hits = l.hits(&key("k1", "eng", None), 10, now);
    assert_eq!(c.value(&hits[0].counter, hits[0].window_start), 3);
    assert_eq!(c.value(&hits[1].counter, hits[1].window_start), 30);
    // the next minute admits again
    assert!(admitted(
        &l.check(&c, &key("k1", "eng", None), 10, 11 * MINUTE_MS)
            .unwrap()
    ));
}

#[test]
fn another_key_is_not_limited_by_the_first() {
    let l = limits();
    let c = MemoryRateCounters::new();
    for _ in 0..3 {
        assert!(admitted(
            &l.check(&c, &key("k1", "eng", None), 1, 0).unwrap()
        ));
    }
    assert!(!admitted(
        &l.check(&c, &key("k1", "eng", None), 1, 0).unwrap()
    ));
    assert!(admitted(
        &l.check(&c, &key("k2", "eng", None), 1, 0).unwrap()
    ));
}

#[test]
fn a_teams_override_replaces_only_the_keys_it_sets() {
    let l = limits();
    let k = l.key_limits(Some("support"));
    assert_eq!(k.requests_per_minute, Some(5));
    assert_eq!(
        k.tokens_per_minute,
        Some(1000),
        "inherited from the defaults"
    );
    assert!(k.response_headers);
    assert_eq!(l.key_limits(Some("eng")).requests_per_minute, Some(3));
    let c = MemoryRateCounters::new();
    for _ in 0..5 {
        assert!(admitted(
            &l.check(&c, &key("s1", "support", None), 1, 0).unwrap()
        ));
    }
    assert!(!admitted(
        &l.check(&c, &key("s1", "support", None), 1, 0).unwrap()
    ));
}

#[test]
fn a_group_limit_counts_all_of_its_keys_together() {
    let l = limits();
    let c = MemoryRateCounters::new();
    // four keys, one request each: the group's 4 per minute are used up
    for k in ["a", "b", "c", "d"] {
        assert!(admitted(
            &l.check(&c, &key(k, "eng", Some("tools")), 1, 0).unwrap()
        ));
    }
    let d = l.check(&c, &key("e", "eng", Some("tools")), 1, 0).unwrap();
    let RateDecision::Limited { limited, .. } = d else {
        panic!("{d:?}")
    };
    assert_eq!(limited.scope, LimitScope::ConsumerGroup);
    // the refused request counted nowhere: key `e` has all of its own limit left
    let hits = l.hits(&key("e", "eng", None), 1, 0);
    assert_eq!(c.value(&hits[0].counter, hits[0].window_start), 0);
    // outside the group, the key is limited only by itself
    assert!(admitted(
        &l.check(&c, &key("e", "eng", None), 1, 0).unwrap()
    ));
}

#[test]
fn tokens_count_the_reservation_and_are_corrected_at_settlement() {
    let l = limits();
    let c = MemoryRateCounters::new();
    let s = key("k", "eng", None);
    let d = l.check(&c, &s, 600, 0).unwrap();
    let RateDecision::Admitted {
        charge: Some(charge),
        ..
    } = d
    else {
        panic!("{d:?}")
    };
    assert_eq!(charge.reserved, 600);
    // a second 600 would not fit in 1000 while the first is reserved
    assert!(!admitted(&l.check(&c, &s, 600, 1).unwrap()));
    // the provider used 150: the counter holds 150, and 600 fits again
    c.adjust(&charge.corrections(150)).unwrap();
    let tpm = &l.hits(&s, 0, 0)[1];
    assert_eq!(c.value(&tpm.counter, tpm.window_start), 150);
    assert!(admitted(&l.check(&c, &s, 600, 2).unwrap()));
    // a correction never takes a counter below zero
    c.adjust(&charge.corrections(0)).unwrap();
    c.adjust(&charge.corrections(0)).unwrap();
    assert_eq!(c.value(&tpm.counter, tpm.window_start), 0);
}

#[test]
fn a_request_larger_than_a_limit_is_refused_as_never_fitting() {
    let l = limits();
    let c = MemoryRateCounters::new();
    let d = l.check(&c, &key("k", "eng", None), 5000, 0).unwrap();
    let RateDecision::Limited { limited, .. } = d else {
        panic!("{d:?}")
    };
    assert!(limited.never);
    assert_eq!(limited.kind, LimitKind::TokensPerMinute);
    assert!(limited.message().contains("never"), "{}", limited.message());
}

#[test]
fn no_key_and_no_group_means_no_limit() {
    let l = limits();
    let c = MemoryRateCounters::new();
    let s = Subject {
        org: "default",
        key: None,
        team: Some("eng"),
        consumer_group: None,
    };
    assert_eq!(l.check(&c, &s, 1, 0).unwrap(), RateDecision::Unlimited);
    let empty = RateLimits::new(
        &pack::parse("pack: {name: x, version: \"1\"}\npolicies: {chain: []}\n")
            .unwrap()
            .spec,
    );
    assert!(empty.is_empty());
    assert!(!l.is_empty());
}

#[test]
fn pruning_forgets_ended_windows_only() {
    let l = limits();
    let c = MemoryRateCounters::new();
    l.check(&c, &key("k", "eng", None), 1, 0).unwrap();
    assert_eq!(c.prune_windows(59_999).unwrap(), 0);
    assert_eq!(c.prune_windows(60_000).unwrap(), 2);
}

fn errs(src: &str) -> Vec<crate::error::Diagnostic> {
    pack::parse(src).unwrap_err().errors
}

#[test]
fn pack_errors_name_the_path_line_and_column() {
    let bad_key = PACK.replace("  requests_per_minute: 3\n", "  request_per_minute: 3\n");
    let e = errs(&bad_key);
    assert_eq!(e[0].code, "E002");
    assert_eq!(e[0].path, "rate_limit_defaults.request_per_minute");
    assert_eq!((e[0].line, e[0].column), (8, 3));
    assert_eq!(e[0].suggestion.as_deref(), Some("requests_per_minute"));

    let zero = PACK.replace("tokens_per_minute: 1000", "tokens_per_minute: 0");
    let e = errs(&zero);
    assert_eq!(e[0].code, "E003");
    assert_eq!(e[0].path, "rate_limit_defaults.tokens_per_minute");
    assert_eq!((e[0].line, e[0].column), (9, 22));
    assert!(e[0].message.contains("at least 1"), "{}", e[0].message);

    let negative = PACK.replace("requests_per_minute: 4", "requests_per_minute: -4");
    let e = errs(&negative);
    assert_eq!(e[0].code, "E003");
    assert_eq!(
        e[0].path,
        "providers.consumer_groups[0].rate_limits.requests_per_minute"
    );
    assert!(e[0].message.contains("negative"), "{}", e[0].message);

    let fraction = PACK.replace("requests_per_minute: 5", "requests_per_minute: 2.5");
    let e = errs(&fraction);
    assert_eq!(e[0].path, "teams.support.rate_limits.requests_per_minute");
    assert!(e[0].message.contains("whole number"), "{}", e[0].message);

    let text = PACK.replace("requests_per_minute: 5", "requests_per_minute: lots");
    assert_eq!(errs(&text)[0].code, "E003");

    let team_key = PACK.replace(
        "    rate_limits:\n      requests_per_minute: 5",
        "    rate_limit:\n      requests_per_minute: 5",
    );
    let e = errs(&team_key);
    assert_eq!(e[0].code, "E002");
    assert_eq!(e[0].path, "teams.support.rate_limit");
    assert_eq!(e[0].suggestion.as_deref(), Some("rate_limits"));

    let slug = PACK.replace("  support:\n", "  Customer Support:\n");
    let e = errs(&slug);
    assert_eq!(e[0].code, "E003");
    assert_eq!(e[0].path, "teams.Customer Support");
    assert_eq!((e[0].line, e[0].column), (12, 3));
    assert!(
        e[0].message.contains("customer-support"),
        "{}",
        e[0].message
    );

    let top = PACK.replace("rate_limit_defaults:", "rate_limits_defaults:");
    let e = errs(&top);
    assert_eq!(e[0].code, "E002");
    assert_eq!(e[0].suggestion.as_deref(), Some("rate_limit_defaults"));
}

#[test]
fn a_malformed_limit_loads_nothing() {
    let bad = PACK.replace("tokens_per_minute: 1000", "tokens_per_minute: -1");
    assert!(crate::Engine::from_yaml(&bad).is_err());
}

#[test]
fn limits_round_trip_through_render() {
    let p = pack::parse(PACK).unwrap();
    let back = pack::parse(&pack::render(&p.spec).unwrap()).unwrap();
    assert_eq!(back.spec, p.spec);
}

#[test]
fn counter_names_cannot_collide_through_the_separator() {
    let l = limits();
    let one = l.hits(
        &Subject {
            org: "x",
            key: Some("a:b"),
            team: None,
            consumer_group: None,
        },
        1,
        0,
    );
    let two = l.hits(
        &Subject {
            org: "x:a",
            key: Some("b"),
            team: None,
            consumer_group: None,
        },
        1,
        0,
    );
    assert_ne!(one[0].counter, two[0].counter);
    assert_eq!(one[0].counter, "key:x:a%3Ab:rpm");
}

#[test]
fn the_default_limits_are_empty() {
    assert!(RateLimits::default().is_empty());
    let c = MemoryRateCounters::new();
    let s = key("k", "eng", None);
    assert_eq!(
        RateLimits::default().check(&c, &s, 1, 0).unwrap(),
        RateDecision::Unlimited
    );
}

#[test]
fn an_override_for_a_team_the_data_does_not_know_is_a_warning() {
    let spec = pack::parse(PACK).unwrap().spec;
    let w = pack::unknown_team_warnings(&spec, &["suport".to_owned()], PACK);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].code, "W002");
    assert_eq!(w[0].path, "teams.support");
    assert_eq!((w[0].line, w[0].column), (12, 3));
    assert!(
        w[0].message.contains("did you mean `suport`"),
        "{}",
        w[0].message
    );
    assert!(pack::unknown_team_warnings(&spec, &["support".to_owned()], PACK).is_empty());
}
