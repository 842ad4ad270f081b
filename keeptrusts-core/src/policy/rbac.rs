//! `rbac`: identity attribution, minimum role and per-role models.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::kind::{Checks, FailMode, Inputs, Kind, Outcome, Policy, PolicyFailure};
use crate::decision::Verdict;
use crate::identity::{Principal, Role};
use crate::pack::yaml::Seg;
use crate::request::ChatRequest;

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

impl Kind for RbacOptions {
    const RANK: u8 = 0;

    fn fail_mode(&self) -> Option<FailMode> {
        self.fail_mode
    }

    fn overlay(self, inline: &Self) -> Self {
        overlay!(
            RbacOptions {
                require_auth,
                deny_if_missing,
                minimum_role,
                allowed_models,
                fail_mode,
            },
            self,
            inline
        )
    }

    fn check(&self, _base: Option<&Self>, checks: &mut dyn Checks) {
        if let Some(models) = &self.allowed_models {
            for (role, list) in models {
                if list.is_empty() || list.iter().any(|m| m.trim().is_empty()) {
                    checks.error(
                        "E003",
                        &[Seg::K("allowed_models"), Seg::K(role.as_str())],
                        "an allowed_models list must hold at least one non-empty model name"
                            .into(),
                        None,
                    );
                }
            }
        }
    }

    fn compile(merged: Option<&Self>, _key: &[u8; 32]) -> Result<Box<dyn Policy>, String> {
        Ok(Box::new(Rbac::new(merged)))
    }
}

impl Policy for Rbac {
    fn input(
        &self,
        request: &mut Cow<'_, ChatRequest>,
        inputs: &Inputs<'_>,
    ) -> Option<Result<Outcome, PolicyFailure>> {
        Some(Ok(self.check(inputs.principal, request.model.as_deref())))
    }

    fn allows_model(&self, principal: &Principal, model: &str) -> bool {
        Rbac::allows_model(self, principal, model)
    }
}

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
