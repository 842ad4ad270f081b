//! Policy packs: YAML → [`PackSpec`] (plain serde types) with strict, located validation.
//!
//! [`parse`] never half-loads: it returns a complete spec and its warnings, or every error it
//! found. [`render`] writes a spec back as YAML such that `parse(render(s)) == s`.

pub(crate) mod de;
mod render;
pub mod spec;
mod validate;
pub mod yaml;

use std::collections::{BTreeMap, HashMap, HashSet};

pub use render::render;
pub use spec::*;
use validate::*;

use self::de::{check_duplicate_keys, child, from_node, index, key_str, suggest, DeError};
use self::yaml::{Mark, Node, NodeKind, Scalar, Seg};
use crate::error::{Diagnostic, PackError, Severity};
use crate::policy::OptionsReader;

/// Largest pack document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// Longest chain accepted.
pub const MAX_CHAIN_ENTRIES: usize = 256;
/// Longest targeting list accepted.
pub const MAX_TARGETING_LIST: usize = 10_000;
pub use crate::policy::pii::MAX_CUSTOM_PATTERNS;

/// A pack that passed validation, with the warnings it raised.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedPack {
    /// The validated spec.
    pub spec: PackSpec,
    /// Warnings (`W…` codes); never errors.
    pub warnings: Vec<Diagnostic>,
}

const TOP_KEYS: [&str; 8] = [
    "pack",
    "policies",
    "policy",
    "providers",
    "wallets",
    "rate_limit_defaults",
    "teams",
    "notifications",
];

struct Ctx<'n> {
    root: &'n Node,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn err(&mut self, code: &str, path: &str, mark: Mark, message: String) {
        self.errors
            .push(Diagnostic::new(code, Severity::Error, path, mark, message));
    }

    fn err_suggest(
        &mut self,
        code: &str,
        path: &str,
        mark: Mark,
        message: String,
        s: Option<String>,
    ) {
        self.errors
            .push(Diagnostic::new(code, Severity::Error, path, mark, message).with_suggestion(s));
    }

    fn warn(&mut self, code: &str, path: &str, mark: Mark, message: String) {
        self.warnings.push(Diagnostic::new(
            code,
            Severity::Warning,
            path,
            mark,
            message,
        ));
    }

    fn de(&mut self, e: DeError) {
        self.errors.push(e.into_diagnostic());
    }

    /// The mark of the node at `path` (segments of keys and indices), or of the nearest
    /// ancestor that exists.
    fn mark(&self, path: &[Seg<'_>]) -> Mark {
        let mut node = self.root;
        for seg in path {
            let next = match (seg, &node.kind) {
                (Seg::K(k), NodeKind::Map(pairs)) => pairs
                    .iter()
                    .find(|(key, _)| key.as_str() == Some(k))
                    .map(|(_, v)| v),
                (Seg::I(i), NodeKind::Seq(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node.mark
    }

    /// The mark of the key `key` in the map at `path` (else the map's own mark).
    fn key_mark(&self, path: &[Seg<'_>], key: &str) -> Mark {
        let mut node = self.root;
        for seg in path {
            let next = match (seg, &node.kind) {
                (Seg::K(k), NodeKind::Map(pairs)) => pairs
                    .iter()
                    .find(|(kn, _)| kn.as_str() == Some(k))
                    .map(|(_, v)| v),
                (Seg::I(i), NodeKind::Seq(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => return node.mark,
            }
        }
        match &node.kind {
            NodeKind::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map_or(node.mark, |(k, _)| k.mark),
            _ => node.mark,
        }
    }
}

fn map_pairs<'n>(node: &'n Node, path: &str, what: &str) -> Result<&'n [(Node, Node)], DeError> {
    match &node.kind {
        NodeKind::Map(pairs) => {
            check_duplicate_keys(pairs, path)?;
            Ok(pairs)
        }
        _ => Err(DeError::new(
            "E003",
            format!("expected {what}, found {}", node.type_name()),
        )
        .locate(path, node.mark)),
    }
}

/// Parses and validates a pack document.
///
/// # Errors
/// Returns every error found (YAML syntax `E000`, unknown kind `E001`, unknown key `E002`, bad
/// value `E003`, duplicate id `E004`, dangling reference `E005`, missing key `E006`, limits
/// `E007`), each with its YAML path and line:column.
pub fn parse(src: &str) -> Result<ParsedPack, PackError> {
    if src.len() > MAX_DOCUMENT_BYTES {
        return Err(PackError {
            errors: vec![Diagnostic::new(
                "E007",
                Severity::Error,
                "",
                Mark { line: 1, column: 1 },
                format!(
                    "the document is {} bytes; the limit is {MAX_DOCUMENT_BYTES}",
                    src.len()
                ),
            )],
            warnings: Vec::new(),
        });
    }
    let root = yaml::load(src)?;
    let mut ctx = Ctx {
        root: &root,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let spec = parse_document(&mut ctx);
    if let Some(spec) = spec.filter(|_| ctx.errors.is_empty()) {
        validate(&mut ctx, &spec);
        if ctx.errors.is_empty() {
            return Ok(ParsedPack {
                spec,
                warnings: ctx.warnings,
            });
        }
    }
    ctx.errors
        .sort_by_key(|d| (d.line, d.column, d.code.clone()));
    ctx.errors.dedup();
    Err(PackError {
        errors: ctx.errors,
        warnings: ctx.warnings,
    })
}

/// Gives each diagnostic that has no position yet (line 0: a compile error, found after the
/// document was read, such as [`Engine::compile`](crate::engine::Engine::compile)'s `E003`) the
/// line and column of the node its path names in `src` (or of the nearest ancestor there).
pub fn locate(src: &str, errors: &mut PackError) {
    let Ok(root) = yaml::load(src) else {
        return;
    };
    let ctx = Ctx {
        root: &root,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    for d in errors.errors.iter_mut().chain(errors.warnings.iter_mut()) {
        if d.line != 0 {
            continue;
        }
        let segs = path_segs(&d.path);
        let mark = ctx.mark(&segs);
        d.line = mark.line;
        d.column = mark.column;
    }
}

/// The segments of a diagnostic's path: `policies.chain[2].rbac` is `policies`, `chain`, 2,
/// `rbac`.
fn path_segs(path: &str) -> Vec<Seg<'_>> {
    let mut segs = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            segs.push(Seg::K(key));
        }
        while let Some((n, after)) = rest.split_once(']') {
            if let Ok(i) = n.parse() {
                segs.push(Seg::I(i));
            }
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    segs
}

fn parse_document(ctx: &mut Ctx<'_>) -> Option<PackSpec> {
    let root = ctx.root;
    let pairs = match map_pairs(root, "", "a map with keys `pack` and `policies`") {
        Ok(p) => p,
        Err(e) => {
            ctx.de(e);
            return None;
        }
    };
    let mut meta = None;
    let mut chain = None;
    let mut policy = Some(PolicyOptions::default());
    let mut providers = None;
    let mut wallets = None;
    let mut rate_limit_defaults = None;
    let mut teams = None;
    let mut notifications = None;
    for (k, v) in pairs {
        let Some(key) = k.as_str() else {
            ctx.err("E003", "", k.mark, "map keys must be strings".into());
            continue;
        };
        match key {
            "pack" => match from_node::<PackMeta>(v, "pack") {
                Ok(m) => meta = Some(m),
                Err(e) => ctx.de(e),
            },
            "policies" => chain = parse_policies(ctx, v),
            "policy" => policy = parse_policy_block(ctx, v),
            "providers" => match from_node::<Option<ProvidersSpec>>(v, "providers") {
                Ok(p) => providers = p,
                Err(e) => ctx.de(e),
            },
            "wallets" => match from_node::<Option<WalletsSpec>>(v, "wallets") {
                Ok(w) => wallets = w,
                Err(e) => ctx.de(e),
            },
            "rate_limit_defaults" => {
                match from_node::<Option<RateLimitSpec>>(v, "rate_limit_defaults") {
                    Ok(r) => rate_limit_defaults = r,
                    Err(e) => ctx.de(e),
                }
            }
            "teams" => match from_node::<Option<BTreeMap<String, TeamSpec>>>(v, "teams") {
                Ok(t) => teams = t,
                Err(e) => ctx.de(e),
            },
            "notifications" => {
                match from_node::<Option<Vec<NotificationSpec>>>(v, "notifications") {
                    Ok(n) => notifications = n,
                    Err(e) => ctx.de(e),
                }
            }
            other => ctx.err_suggest(
                "E002",
                other,
                k.mark,
                format!(
                    "unknown key `{other}`; expected one of `{}`",
                    TOP_KEYS.join("`, `")
                ),
                suggest(other, TOP_KEYS),
            ),
        }
    }
    let has = |name: &str| pairs.iter().any(|(k, _)| k.as_str() == Some(name));
    for required in ["pack", "policies"] {
        if !has(required) {
            ctx.err(
                "E006",
                required,
                root.mark,
                format!("missing required key `{required}`"),
            );
        }
    }
    Some(PackSpec {
        pack: meta?,
        policies: PoliciesSpec { chain: chain? },
        policy: policy?,
        providers,
        wallets,
        rate_limit_defaults,
        teams,
        notifications,
    })
}

fn parse_kind(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<PolicyKind> {
    let Some(name) = node.as_str() else {
        ctx.err(
            "E003",
            path,
            node.mark,
            format!("expected a policy kind name, found {}", node.type_name()),
        );
        return None;
    };
    match name.parse::<PolicyKind>() {
        Ok(k) => Some(k),
        Err(_) => {
            ctx.err_suggest(
                "E001",
                path,
                node.mark,
                format!(
                    "unknown policy kind `{name}`; expected one of `{}`",
                    PolicyKind::NAMES.join("`, `")
                ),
                suggest(name, PolicyKind::NAMES),
            );
            None
        }
    }
}

fn parse_policies(ctx: &mut Ctx<'_>, node: &Node) -> Option<Vec<ChainEntry>> {
    let pairs = match map_pairs(node, "policies", "a map with key `chain`") {
        Ok(p) => p,
        Err(e) => {
            ctx.de(e);
            return None;
        }
    };
    let mut chain = None;
    for (k, v) in pairs {
        let key = k.as_str().unwrap_or("");
        if key == "chain" {
            chain = parse_chain(ctx, v);
        } else {
            ctx.err_suggest(
                "E002",
                &child("policies", key),
                k.mark,
                format!("unknown key `{key}`; expected one of `chain`"),
                suggest(key, ["chain"]),
            );
        }
    }
    if !pairs.iter().any(|(k, _)| k.as_str() == Some("chain")) {
        ctx.err(
            "E006",
            "policies.chain",
            node.mark,
            "missing required key `chain`".into(),
        );
    }
    chain
}

fn parse_chain(ctx: &mut Ctx<'_>, node: &Node) -> Option<Vec<ChainEntry>> {
    let items = match &node.kind {
        NodeKind::Seq(items) => items,
        _ => {
            ctx.err(
                "E003",
                "policies.chain",
                node.mark,
                format!(
                    "expected a list of policy kinds, found {}",
                    node.type_name()
                ),
            );
            return None;
        }
    };
    if items.len() > MAX_CHAIN_ENTRIES {
        ctx.err(
            "E007",
            "policies.chain",
            node.mark,
            format!(
                "the chain has {} entries; the limit is {MAX_CHAIN_ENTRIES}",
                items.len()
            ),
        );
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let path = index("policies.chain", i);
        match parse_chain_entry(ctx, item, &path) {
            Some(e) => out.push(e),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn parse_chain_entry(ctx: &mut Ctx<'_>, item: &Node, path: &str) -> Option<ChainEntry> {
    match &item.kind {
        NodeKind::Scalar(Scalar::Str(_)) => parse_kind(ctx, item, path).map(ChainEntry::plain),
        NodeKind::Map(pairs) => {
            if pairs.len() != 1 {
                let keys: Vec<String> = pairs
                    .iter()
                    .filter_map(|(k, _)| k.as_str().map(|s| format!("`{s}`")))
                    .collect();
                ctx.err(
                    "E003",
                    path,
                    item.mark,
                    format!(
                        "a chain entry is a kind name or a one-key map `kind: {{targeting: …}}`; found {} keys ({}): indent the options under the kind",
                        pairs.len(),
                        keys.join(", ")
                    ),
                );
                return None;
            }
            let (k, v) = pairs.first()?;
            let kind = parse_kind(ctx, k, path)?;
            let body_path = child(path, kind.as_str());
            let body: &[(Node, Node)] = match &v.kind {
                NodeKind::Scalar(Scalar::Null) => &[],
                NodeKind::Map(p) => {
                    if let Err(e) = check_duplicate_keys(p, &body_path) {
                        ctx.de(e);
                        return None;
                    }
                    p
                }
                _ => {
                    ctx.err(
                        "E003",
                        &body_path,
                        v.mark,
                        format!(
                            "expected a map of `targeting` and options, found {}",
                            v.type_name()
                        ),
                    );
                    return None;
                }
            };
            let mut targeting = None;
            let mut rest = Vec::new();
            let mut ok = true;
            for (bk, bv) in body {
                let key = match key_str(bk, &body_path) {
                    Ok(s) => s,
                    Err(e) => {
                        ctx.de(e);
                        ok = false;
                        continue;
                    }
                };
                if key == "targeting" {
                    match from_node::<Targeting>(bv, &child(&body_path, "targeting")) {
                        Ok(t) => targeting = Some(t),
                        Err(e) => {
                            ctx.de(e);
                            ok = false;
                        }
                    }
                } else if key != "targeting" && suggest(key, ["targeting"]).is_some() {
                    ctx.err_suggest(
                        "E002",
                        &child(&body_path, key),
                        bk.mark,
                        format!("unknown key `{key}`"),
                        Some("targeting".into()),
                    );
                    ok = false;
                } else {
                    rest.push((bk.clone(), bv.clone()));
                }
            }
            let options = if rest.is_empty() {
                None
            } else {
                let node = Node {
                    kind: NodeKind::Map(rest),
                    mark: v.mark,
                };
                match options_from_node(kind, &node, &body_path) {
                    Ok(o) => Some(o),
                    Err(e) => {
                        ctx.de(e);
                        ok = false;
                        None
                    }
                }
            };
            ok.then_some(ChainEntry {
                kind,
                targeting,
                options,
                map_form: true,
            })
        }
        _ => {
            ctx.err(
                "E003",
                path,
                item.mark,
                format!(
                    "expected a policy kind name or a one-key map, found {}",
                    item.type_name()
                ),
            );
            None
        }
    }
}

/// Reads a kind's options from their YAML node (an empty node: the defaults).
struct NodeReader<'n> {
    node: &'n Node,
    path: &'n str,
}

impl OptionsReader for NodeReader<'_> {
    type Error = DeError;

    fn read<T: crate::policy::Kind>(self) -> Result<T, DeError> {
        if matches!(self.node.kind, NodeKind::Scalar(Scalar::Null)) {
            Ok(T::default())
        } else {
            from_node(self.node, self.path)
        }
    }
}

fn options_from_node(kind: PolicyKind, node: &Node, path: &str) -> Result<KindOptions, DeError> {
    kind.read_options(NodeReader { node, path })
}

fn parse_policy_block(ctx: &mut Ctx<'_>, node: &Node) -> Option<PolicyOptions> {
    if matches!(node.kind, NodeKind::Scalar(Scalar::Null)) {
        return Some(PolicyOptions::default());
    }
    let pairs = match map_pairs(node, "policy", "a map of policy kinds to options") {
        Ok(p) => p,
        Err(e) => {
            ctx.de(e);
            return None;
        }
    };
    let mut out = PolicyOptions::default();
    let mut ok = true;
    for (k, v) in pairs {
        let path = child("policy", k.as_str().unwrap_or(""));
        let Some(kind) = parse_kind(ctx, k, &path) else {
            ok = false;
            continue;
        };
        match options_from_node(kind, v, &path) {
            Ok(o) => out.set(o),
            Err(e) => {
                ctx.de(e);
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// Field-wise merge of inline options over the `policy.<kind>` block.
pub(crate) fn merge_options(
    base: Option<KindOptions>,
    inline: Option<KindOptions>,
) -> Option<KindOptions> {
    match (base, inline) {
        (b, None) => b,
        (None, i) => i,
        (Some(b), Some(i)) => Some(b.overlay(i)),
    }
}

/// Warnings about targeted teams that the data does not know (yet): `W002`.
pub fn unknown_team_warnings(
    spec: &PackSpec,
    known_teams: &[String],
    src: &str,
) -> Vec<Diagnostic> {
    let root = yaml::load(src).ok();
    let mut out = Vec::new();
    for (i, entry) in spec.policies.chain.iter().enumerate() {
        let Some(teams) = entry.targeting.as_ref().and_then(|t| t.teams.as_ref()) else {
            continue;
        };
        for (k, team) in teams.iter().enumerate() {
            if known_teams.iter().any(|t| t == team) {
                continue;
            }
            let path = index(
                &child(
                    &child(&index("policies.chain", i), entry.kind.as_str()),
                    "targeting.teams",
                ),
                k,
            );
            let mark = root.as_ref().map_or_else(Mark::default, |r| {
                Ctx {
                    root: r,
                    errors: Vec::new(),
                    warnings: Vec::new(),
                }
                .mark(&[
                    Seg::K("policies"),
                    Seg::K("chain"),
                    Seg::I(i),
                    Seg::K(entry.kind.as_str()),
                    Seg::K("targeting"),
                    Seg::K("teams"),
                    Seg::I(k),
                ])
            });
            out.push(Diagnostic::new("W002", Severity::Warning, &path, mark, {
                let slug = crate::identity::slugify(team);
                let hint = if slug != *team && known_teams.contains(&slug) {
                    format!(" (targeting matches slugs: write `{slug}`)")
                } else {
                    suggest(team, known_teams.iter().map(String::as_str))
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default()
                };
                format!("team `{team}` is targeted but no team with that slug exists yet{hint}")
            }));
        }
    }
    // a rate-limit override for a team the data does not know applies to no key
    for team in spec.teams.iter().flat_map(|t| t.keys()) {
        if known_teams.iter().any(|t| t == team) {
            continue;
        }
        let mark = root.as_ref().map_or_else(Mark::default, |r| {
            Ctx {
                root: r,
                errors: Vec::new(),
                warnings: Vec::new(),
            }
            .key_mark(&[Seg::K("teams")], team)
        });
        let hint = suggest(team, known_teams.iter().map(String::as_str))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        out.push(Diagnostic::new(
            "W002",
            Severity::Warning,
            &child("teams", team),
            mark,
            format!("team `{team}` has settings but no team with that slug exists yet{hint}"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compile error (found after the document is gone, at line 0) gets its chain entry's
    /// line and column from the source; one that already has a position keeps it.
    #[test]
    fn compile_errors_are_located_in_the_source() {
        let at = |path: &str, line: u32| {
            Diagnostic::new(
                "E003",
                Severity::Error,
                path,
                Mark { line, column: 1 },
                "x".into(),
            )
        };
        let mut e = PackError {
            errors: vec![
                at("policies.chain[1]", 0),
                at("policy.pii-detector.redaction.marker_format", 0),
                at("policies.chain[0]", 3),
            ],
            warnings: Vec::new(),
        };
        locate(SEED, &mut e);
        let got: Vec<(u32, u32)> = e.errors.iter().map(|d| (d.line, d.column)).collect();
        assert_eq!(got, [(8, 7), (18, 22), (3, 1)]);
    }

    const SEED: &str = r#"
pack:
  name: multi-team-governance
  version: "1.0"
policies:
  chain:
    - rbac
    - pii-detector
    - audit-logger
policy:
  rbac:
    require_auth: true
    deny_if_missing: [role, team]
    minimum_role: member
  pii-detector:
    action: redact
    redaction:
      marker_format: label
  audit-logger:
    retention_days: 365
providers:
  targets:
    - id: openai-gpt4o
      provider: openai
      model: gpt-4o
      secret_key_ref:
        env: OPENAI_API_KEY
"#;

    fn errs(src: &str) -> Vec<Diagnostic> {
        parse(src).unwrap_err().errors
    }

    #[test]
    fn seed_parses() {
        let p = parse(SEED).unwrap();
        assert_eq!(p.spec.policies.chain.len(), 3);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let rbac = p.spec.policy.rbac.unwrap();
        assert_eq!(rbac.minimum_role, Some(crate::identity::Role::Member));
    }

    #[test]
    fn unknown_key_has_path_line_and_suggestion() {
        let src = SEED.replace("action: redact", "actoin: redact");
        let e = errs(&src);
        assert_eq!(e[0].code, "E002");
        assert_eq!(e[0].path, "policy.pii-detector.actoin");
        assert_eq!((e[0].line, e[0].column), (16, 5));
        assert_eq!(e[0].suggestion.as_deref(), Some("action"));
    }

    #[test]
    fn unknown_kind() {
        let src = SEED.replace("    - pii-detector\n", "    - pii-detektor\n");
        let e = errs(&src);
        assert_eq!(e[0].code, "E001");
        assert_eq!(e[0].path, "policies.chain[1]");
        assert_eq!(e[0].line, 8);
        assert_eq!(e[0].suggestion.as_deref(), Some("pii-detector"));
    }

    #[test]
    fn missing_name_and_bad_enum() {
        let src = SEED.replace("  name: multi-team-governance\n", "");
        let e = errs(&src);
        assert_eq!(e[0].code, "E006");
        assert_eq!(e[0].path, "pack.name");
        let src = SEED.replace("minimum_role: member", "minimum_role: superuser");
        let e = errs(&src);
        assert_eq!(e[0].code, "E003");
        assert_eq!(e[0].path, "policy.rbac.minimum_role");
    }

    #[test]
    fn version_must_be_a_string() {
        let src = SEED.replace("version: \"1.0\"", "version: 1.0");
        let e = errs(&src);
        assert_eq!(e[0].code, "E003");
        assert!(e[0].message.contains("quote"), "{}", e[0].message);
    }

    #[test]
    fn round_trip() {
        let p = parse(SEED).unwrap();
        let text = render(&p.spec).unwrap();
        let back = parse(&text).unwrap();
        assert_eq!(back.spec, p.spec);
    }
}
