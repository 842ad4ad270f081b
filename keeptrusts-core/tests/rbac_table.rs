//! Table-driven rbac: {unauthenticated, missing team, missing role, member, admin, owner} × every
//! `minimum_role`, with and without `deny_if_missing`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use keeptrusts_core::{
    ChatRequest, Engine, MemoryEscalations, Principal, RequestContext, Role, Stores, Verdict,
};

#[derive(Clone, Copy, Debug)]
enum Caller {
    Unauthenticated,
    MissingTeam,
    MissingRole,
    As(Role),
}

fn principal(c: Caller) -> Principal {
    let full = Principal::new("dev@yourco.com", "engineering", Role::Member);
    match c {
        Caller::Unauthenticated => Principal {
            authenticated: false,
            ..full
        },
        Caller::MissingTeam => Principal { team: None, ..full },
        Caller::MissingRole => Principal { role: None, ..full },
        Caller::As(r) => Principal {
            role: Some(r),
            ..full
        },
    }
}

/// (status, code, reason) expected, or (200, None, None) for allow.
fn expected(
    c: Caller,
    min: Role,
    deny_if_missing: bool,
) -> (u16, Option<&'static str>, Option<&'static str>) {
    match c {
        Caller::Unauthenticated => (401, Some("unauthenticated"), Some("unauthenticated")),
        Caller::MissingTeam if deny_if_missing => (403, Some("rbac_denied"), Some("missing_team")),
        // without deny_if_missing a missing team is fine; the member role passes any minimum
        // of member only
        Caller::MissingTeam if min == Role::Member => (200, None, None),
        Caller::MissingTeam => (403, Some("rbac_denied"), Some("role_below_minimum")),
        Caller::MissingRole => (403, Some("rbac_denied"), Some("missing_role")),
        Caller::As(r) if r >= min => (200, None, None),
        Caller::As(_) => (403, Some("rbac_denied"), Some("role_below_minimum")),
    }
}

#[test]
fn rbac_table() {
    let callers = [
        Caller::Unauthenticated,
        Caller::MissingTeam,
        Caller::MissingRole,
        Caller::As(Role::Member),
        Caller::As(Role::Admin),
        Caller::As(Role::Owner),
    ];
    let store = MemoryEscalations::new();
    let stores = Stores::new(&store);
    let request = ChatRequest::user("gpt-4o-mini", "hello");
    let mut rows = 0;
    for deny_if_missing in [true, false] {
        for min in Role::ALL {
            let yaml = format!(
                "pack: {{ name: t, version: \"1.0\" }}\npolicies:\n  chain: [rbac, audit-logger]\npolicy:\n  rbac:\n    require_auth: true\n    minimum_role: {min}\n{}",
                if deny_if_missing { "    deny_if_missing: [team, role]\n" } else { "" }
            );
            let engine = Engine::from_yaml(&yaml).unwrap();
            for c in callers {
                let d = engine
                    .evaluate(
                        &principal(c),
                        &request,
                        &RequestContext::new("r", 0),
                        &stores,
                    )
                    .unwrap();
                let (status, code, reason) = expected(c, min, deny_if_missing);
                let ctx =
                    format!("caller {c:?}, minimum_role {min}, deny_if_missing {deny_if_missing}");
                assert_eq!(d.status, status, "{ctx}");
                assert_eq!(d.code(), code, "{ctx}");
                assert_eq!(d.reason.as_deref(), reason, "{ctx}");
                if status == 200 {
                    assert_eq!(d.verdict, Verdict::Allow, "{ctx}");
                    assert!(d.error_body().is_none(), "{ctx}");
                } else {
                    assert_eq!(d.verdict, Verdict::Block, "{ctx}");
                    let body = d.error_body().unwrap();
                    assert_eq!(body["error"]["code"], code.unwrap(), "{ctx}");
                    assert_eq!(body["error"]["policy"], "rbac", "{ctx}");
                    assert_eq!(body["error"]["request_id"], "r", "{ctx}");
                    let kind = if status == 401 {
                        "authentication_error"
                    } else {
                        "permission_error"
                    };
                    assert_eq!(body["error"]["type"], kind, "{ctx}");
                }
                // the audit logger still stamps a blocked request
                assert!(d.audit.is_some(), "{ctx}");
                rows += 1;
            }
        }
    }
    assert_eq!(rows, 36);
}
