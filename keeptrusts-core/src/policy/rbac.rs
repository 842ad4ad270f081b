//! `rbac`: identity attribution, minimum role and per-role models.

use std::collections::BTreeMap;

use super::Outcome;
use crate::decision::Verdict;
use crate::identity::{Principal, Role};
use crate::pack::spec::{Attribute, RbacOptions};

#[derive(Debug, Clone)]
pub(crate) struct Rbac {
    require_auth: bool,
    deny_if_missing: Vec<Attribute>,
    minimum_role: Option<Role>,
    allowed_models: BTreeMap<Role, Vec<String>>,
}

fn model_matches(pattern: &str, model: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => model.starts_with(prefix),
        None => pattern == model,
    }
}

fn denied(reason: &str, message: String) -> Outcome {
    Outcome::deny(Verdict::Block, 403, "rbac_denied", reason, message)
}

impl Rbac {
    pub fn new(o: Option<&RbacOptions>) -> Self {
        let o = o.cloned().unwrap_or_default();
        Rbac {
            require_auth: o.require_auth.unwrap_or(false),
            deny_if_missing: o.deny_if_missing.unwrap_or_default(),
            minimum_role: o.minimum_role,
            allowed_models: o.allowed_models.unwrap_or_default(),
        }
    }

    /// Whether `allowed_models` lets the principal's role use `model`.
    pub fn allows_model(&self, p: &Principal, model: &str) -> bool {
        p.role
            .and_then(|role| self.allowed_models.get(&role))
            .is_none_or(|allowed| allowed.iter().any(|pat| model_matches(pat, model)))
    }

    pub fn check(&self, p: &Principal, model: Option<&str>) -> Outcome {
        if self.require_auth && !p.authenticated {
            return Outcome::deny(
                Verdict::Block,
                401,
                "unauthenticated",
                "unauthenticated",
                "authentication is required".into(),
            );
        }
        for attr in &self.deny_if_missing {
            let present = match attr {
                Attribute::User => p.user.as_deref().is_some_and(|s| !s.is_empty()),
                Attribute::Team => p.team.as_deref().is_some_and(|s| !s.is_empty()),
                Attribute::Role => p.role.is_some(),
                Attribute::Org => p.org.as_deref().is_some_and(|s| !s.is_empty()),
            };
            if !present {
                return denied(
                    &format!("missing_{}", attr.as_str()),
                    format!("the request has no {} attribution", attr.as_str()),
                );
            }
        }
        if let Some(min) = self.minimum_role {
            match p.role {
                None => {
                    return denied(
                        "missing_role",
                        format!("a role of at least {min} is required and the request has none"),
                    )
                }
                Some(r) if r < min => {
                    return denied(
                        "role_below_minimum",
                        format!("role {r} is below the minimum role {min}"),
                    )
                }
                Some(_) => {}
            }
        }
        if let Some(role) = p.role {
            if let Some(allowed) = self.allowed_models.get(&role) {
                let ok = model.is_some_and(|m| allowed.iter().any(|pat| model_matches(pat, m)));
                if !ok {
                    return denied(
                        "model_not_allowed",
                        format!("role {role} may not use this model"),
                    );
                }
            }
        }
        Outcome::allow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_by_role() {
        let mut models = BTreeMap::new();
        models.insert(
            Role::Member,
            vec!["gpt-4o-mini".to_owned(), "claude-*".to_owned()],
        );
        let r = Rbac::new(Some(&RbacOptions {
            allowed_models: Some(models),
            ..Default::default()
        }));
        let m = Principal::new("u", "t", Role::Member);
        assert_eq!(r.check(&m, Some("gpt-4o-mini")).verdict, Verdict::Allow);
        assert_eq!(r.check(&m, Some("claude-sonnet-4")).verdict, Verdict::Allow);
        assert_eq!(
            r.check(&m, Some("gpt-4o")).reason.as_deref(),
            Some("model_not_allowed")
        );
        assert_eq!(
            r.check(&m, None).reason.as_deref(),
            Some("model_not_allowed")
        );
        let a = Principal::new("u", "t", Role::Admin);
        assert_eq!(r.check(&a, Some("gpt-4o")).verdict, Verdict::Allow);
    }
}
