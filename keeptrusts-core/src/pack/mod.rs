//! Policy packs: YAML → [`PackSpec`] (plain serde types) with strict, located validation.
//!
//! [`parse`] never half-loads: it returns a complete spec and its warnings, or every error it
//! found. [`render`] writes a spec back as YAML such that `parse(render(s)) == s`.

pub(crate) mod de;
mod render;
pub mod spec;
pub mod yaml;

use std::collections::{BTreeMap, HashMap, HashSet};

pub use render::render;
pub use spec::*;

use self::de::{check_duplicate_keys, child, from_node, index, key_str, suggest, DeError};
use self::yaml::{Mark, Node, NodeKind, Scalar};
use crate::error::{Diagnostic, PackError, Severity};
use crate::policy::oversight::BUILTIN_CATEGORIES;

/// Largest pack document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// Longest chain accepted.
pub const MAX_CHAIN_ENTRIES: usize = 256;
/// Longest targeting list accepted.
pub const MAX_TARGETING_LIST: usize = 10_000;
/// Most custom patterns per detector.
pub const MAX_CUSTOM_PATTERNS: usize = 64;

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

#[derive(Clone, Copy)]
enum Seg<'a> {
    K(&'a str),
    I(usize),
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

fn options_from_node(kind: PolicyKind, node: &Node, path: &str) -> Result<KindOptions, DeError> {
    let null = matches!(node.kind, NodeKind::Scalar(Scalar::Null));
    Ok(match kind {
        PolicyKind::Rbac if null => KindOptions::Rbac(RbacOptions::default()),
        PolicyKind::PiiDetector if null => KindOptions::Pii(PiiOptions::default()),
        PolicyKind::HipaaPhiDetector if null => KindOptions::Phi(PhiOptions::default()),
        PolicyKind::HumanOversight if null => KindOptions::Oversight(OversightOptions::default()),
        PolicyKind::AuditLogger if null => KindOptions::Audit(AuditOptions::default()),
        PolicyKind::Rbac => KindOptions::Rbac(from_node(node, path)?),
        PolicyKind::PiiDetector => KindOptions::Pii(from_node(node, path)?),
        PolicyKind::HipaaPhiDetector => KindOptions::Phi(from_node(node, path)?),
        PolicyKind::HumanOversight => KindOptions::Oversight(from_node(node, path)?),
        PolicyKind::AuditLogger => KindOptions::Audit(from_node(node, path)?),
    })
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
    macro_rules! merge {
        ($variant:ident, $b:expr, $i:expr, [$($f:ident),*]) => {
            KindOptions::$variant({
                let (b, i) = ($b, $i);
                let mut out = b.clone();
                $( if i.$f.is_some() { out.$f = i.$f.clone(); } )*
                out
            })
        };
    }
    match (base, inline) {
        (b, None) => b,
        (None, i) => i,
        (Some(b), Some(i)) => Some(match (&b, &i) {
            (KindOptions::Rbac(b), KindOptions::Rbac(i)) => merge!(
                Rbac,
                b,
                i,
                [
                    require_auth,
                    deny_if_missing,
                    minimum_role,
                    allowed_models,
                    fail_mode
                ]
            ),
            (KindOptions::Pii(b), KindOptions::Pii(i)) => merge!(
                Pii,
                b,
                i,
                [
                    action,
                    entities,
                    pci_mode,
                    detect_patterns,
                    allow_list,
                    apply_to,
                    redaction,
                    fail_mode
                ]
            ),
            (KindOptions::Phi(b), KindOptions::Phi(i)) => merge!(
                Phi,
                b,
                i,
                [mode, action, apply_to, allow_list, redaction, fail_mode]
            ),
            (KindOptions::Oversight(b), KindOptions::Oversight(i)) => merge!(
                Oversight,
                b,
                i,
                [
                    require_review,
                    require_human_for,
                    categories,
                    action,
                    timeout_seconds,
                    default_assignee,
                    fail_mode
                ]
            ),
            (KindOptions::Audit(b), KindOptions::Audit(i)) => merge!(
                Audit,
                b,
                i,
                [
                    retention_days,
                    immutable,
                    log_all_access,
                    hipaa_audit_controls,
                    fail_mode
                ]
            ),
            _ => i,
        }),
    }
}

fn is_version(v: &str) -> bool {
    let (core, _build) = v.split_once('+').unwrap_or((v, ""));
    let (core, pre) = core
        .split_once('-')
        .map_or((core, None), |(c, p)| (c, Some(p)));
    let dotted = !core.is_empty()
        && core
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let pre_ok = pre.is_none_or(|p| {
        !p.is_empty()
            && p.split('.')
                .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    });
    dotted && pre_ok
}

fn validate(ctx: &mut Ctx<'_>, spec: &PackSpec) {
    let name_len = spec.pack.name.chars().count();
    if name_len == 0 || name_len > 200 || spec.pack.name.trim().is_empty() {
        let m = ctx.mark(&[Seg::K("pack"), Seg::K("name")]);
        ctx.err(
            "E003",
            "pack.name",
            m,
            format!("the pack name must be 1-200 characters, found {name_len}"),
        );
    }
    if !is_version(&spec.pack.version) {
        let m = ctx.mark(&[Seg::K("pack"), Seg::K("version")]);
        ctx.err(
            "E003",
            "pack.version",
            m,
            format!(
                "version `{}` is neither SemVer nor a dotted number such as \"1.0\"",
                spec.pack.version
            ),
        );
    }
    if spec.policies.chain.is_empty() {
        let m = ctx.mark(&[Seg::K("policies"), Seg::K("chain")]);
        ctx.warn(
            "W004",
            "policies.chain",
            m,
            "the chain is empty: every request passes unchecked".into(),
        );
    }
    let groups = validate_providers(ctx, spec);
    validate_wallets(ctx, spec);
    validate_teams(ctx, spec);
    validate_notifications(ctx, spec);

    // policy blocks, checked where they are written
    for kind in PolicyKind::ALL {
        let Some(opts) = spec.policy.get(kind) else {
            continue;
        };
        let path = child("policy", kind.as_str());
        let segs = [Seg::K("policy"), Seg::K(kind.as_str())];
        check_options(ctx, &opts, None, &path, &segs);
        if !spec.policies.chain.iter().any(|e| e.kind == kind) {
            let m = ctx.mark(&segs);
            ctx.warn(
                "W003",
                &path,
                m,
                format!("options for `{kind}`, which is not in the chain"),
            );
        }
    }

    for (i, entry) in spec.policies.chain.iter().enumerate() {
        let path = child(&index("policies.chain", i), entry.kind.as_str());
        let segs = [
            Seg::K("policies"),
            Seg::K("chain"),
            Seg::I(i),
            Seg::K(entry.kind.as_str()),
        ];
        if let Some(t) = &entry.targeting {
            validate_targeting(ctx, t, &path, &segs, &groups);
        }
        let base = spec.policy.get(entry.kind);
        if let Some(inline) = &entry.options {
            check_options(ctx, inline, base.as_ref(), &path, &segs);
        }
        if entry.kind == PolicyKind::HumanOversight {
            let merged = merge_options(base, entry.options.clone());
            let acts = matches!(&merged, Some(KindOptions::Oversight(o))
                if o.require_review == Some(true)
                    || o.require_human_for.as_ref().is_some_and(|v| !v.is_empty()));
            if !acts {
                let m = ctx.mark(&segs[..3]);
                ctx.warn(
                    "W004",
                    &index("policies.chain", i),
                    m,
                    "human-oversight has neither `require_review: true` nor `require_human_for`: it never escalates".into(),
                );
            }
        }
    }
    warn_unreachable(ctx, spec);
}

fn validate_targeting(
    ctx: &mut Ctx<'_>,
    t: &Targeting,
    entry_path: &str,
    entry_segs: &[Seg<'_>],
    groups: &HashSet<String>,
) {
    let path = child(entry_path, "targeting");
    let mut segs = entry_segs.to_vec();
    segs.push(Seg::K("targeting"));
    let scope = t.scope.unwrap_or(Scope::Org);
    let lists: [(&str, &Option<Vec<String>>, Scope); 3] = [
        ("teams", &t.teams, Scope::Team),
        ("users", &t.users, Scope::User),
        ("consumer_groups", &t.consumer_groups, Scope::ConsumerGroup),
    ];
    for (name, list, owner) in lists {
        let mut lsegs = segs.clone();
        lsegs.push(Seg::K(name));
        let lpath = child(&path, name);
        match list {
            Some(items) if owner != scope => {
                let m = ctx.mark(&lsegs);
                let hint = match scope {
                    Scope::Org => "scope `org` applies to everyone and takes no list".to_owned(),
                    other => format!("scope `{}` takes `{}`", scope_name(other), list_for(other)),
                };
                let _ = items;
                ctx.err(
                    "E003",
                    &lpath,
                    m,
                    format!("`{name}` does not match the scope: {hint}"),
                );
            }
            Some(items) => {
                if items.is_empty() {
                    let m = ctx.mark(&lsegs);
                    ctx.err(
                        "E003",
                        &lpath,
                        m,
                        format!("`{name}` is empty: the entry would never apply"),
                    );
                }
                if items.len() > MAX_TARGETING_LIST {
                    let m = ctx.mark(&lsegs);
                    ctx.err(
                        "E007",
                        &lpath,
                        m,
                        format!(
                            "`{name}` has {} items; the limit is {MAX_TARGETING_LIST}",
                            items.len()
                        ),
                    );
                }
                if owner == Scope::ConsumerGroup {
                    for (k, g) in items.iter().enumerate() {
                        if !groups.contains(g) {
                            let mut isegs = lsegs.clone();
                            isegs.push(Seg::I(k));
                            let m = ctx.mark(&isegs);
                            ctx.err_suggest(
                                "E005",
                                &index(&lpath, k),
                                m,
                                format!("consumer group `{g}` is not defined in `providers.consumer_groups`"),
                                suggest(g, groups.iter().map(String::as_str)),
                            );
                        }
                    }
                }
            }
            None if owner == scope
                && [&t.teams, &t.users, &t.consumer_groups]
                    .iter()
                    .all(|l| l.is_none()) =>
            {
                let m = ctx.mark(&segs);
                ctx.err(
                    "E006",
                    &lpath,
                    m,
                    format!("scope `{}` needs a `{name}` list", scope_name(scope)),
                );
            }
            None => {}
        }
    }
}

fn scope_name(s: Scope) -> &'static str {
    match s {
        Scope::Org => "org",
        Scope::Team => "team",
        Scope::User => "user",
        Scope::ConsumerGroup => "consumer_group",
    }
}

fn list_for(s: Scope) -> &'static str {
    match s {
        Scope::Org => "",
        Scope::Team => "teams",
        Scope::User => "users",
        Scope::ConsumerGroup => "consumer_groups",
    }
}

fn check_options(
    ctx: &mut Ctx<'_>,
    opts: &KindOptions,
    base: Option<&KindOptions>,
    path: &str,
    segs: &[Seg<'_>],
) {
    let at = |ctx: &Ctx<'_>, extra: &[Seg<'_>]| {
        let mut s = segs.to_vec();
        s.extend_from_slice(extra);
        ctx.mark(&s)
    };
    match opts {
        KindOptions::Audit(a) => {
            if let Some(d) = a.retention_days {
                if !(1..=36_500).contains(&d) {
                    let m = at(ctx, &[Seg::K("retention_days")]);
                    ctx.err(
                        "E003",
                        &child(path, "retention_days"),
                        m,
                        format!("retention_days must be between 1 and 36500, found {d}"),
                    );
                }
            }
        }
        KindOptions::Oversight(o) => {
            if o.timeout_seconds == Some(0) {
                let m = at(ctx, &[Seg::K("timeout_seconds")]);
                ctx.err(
                    "E003",
                    &child(path, "timeout_seconds"),
                    m,
                    "timeout_seconds must be at least 1".into(),
                );
            }
            let mut known: Vec<String> = BUILTIN_CATEGORIES
                .iter()
                .map(|(n, _)| (*n).to_owned())
                .collect();
            let base_cats = match base {
                Some(KindOptions::Oversight(b)) => b.categories.clone(),
                _ => None,
            };
            for cats in [&o.categories, &base_cats].into_iter().flatten() {
                known.extend(cats.keys().cloned());
            }
            if let Some(cats) = &o.categories {
                for (name, words) in cats {
                    if words.iter().any(|w| w.trim().is_empty()) || words.is_empty() {
                        let m = at(ctx, &[Seg::K("categories"), Seg::K(name)]);
                        ctx.err(
                            "E003",
                            &child(&child(path, "categories"), name),
                            m,
                            format!("category `{name}` needs at least one non-empty keyword"),
                        );
                    }
                }
            }
            if let Some(list) = &o.require_human_for {
                for (k, cat) in list.iter().enumerate() {
                    if !known.iter().any(|c| c == cat) {
                        let m = at(ctx, &[Seg::K("require_human_for"), Seg::I(k)]);
                        ctx.err_suggest(
                            "E005",
                            &index(&child(path, "require_human_for"), k),
                            m,
                            format!(
                                "unknown category `{cat}`; built-in categories are `{}`, or define it under `categories`",
                                BUILTIN_CATEGORIES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join("`, `")
                            ),
                            suggest(cat, known.iter().map(String::as_str)),
                        );
                    }
                }
            }
        }
        KindOptions::Pii(p) => {
            if let Some(patterns) = &p.detect_patterns {
                if patterns.len() > MAX_CUSTOM_PATTERNS {
                    let m = at(ctx, &[Seg::K("detect_patterns")]);
                    ctx.err(
                        "E007",
                        &child(path, "detect_patterns"),
                        m,
                        format!(
                            "{} custom patterns; the limit is {MAX_CUSTOM_PATTERNS}",
                            patterns.len()
                        ),
                    );
                }
                let mut names = HashSet::new();
                for (k, cp) in patterns.iter().enumerate() {
                    let ppath = index(&child(path, "detect_patterns"), k);
                    let valid_name = !cp.name.is_empty()
                        && cp.name.len() <= 64
                        && cp
                            .name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if !valid_name {
                        let m = at(ctx, &[Seg::K("detect_patterns"), Seg::I(k), Seg::K("name")]);
                        ctx.err(
                            "E003",
                            &child(&ppath, "name"),
                            m,
                            "a pattern name is 1-64 characters of letters, digits, `_` and `-`"
                                .into(),
                        );
                    } else if !names.insert(cp.name.as_str()) {
                        let m = at(ctx, &[Seg::K("detect_patterns"), Seg::I(k), Seg::K("name")]);
                        ctx.err(
                            "E004",
                            &child(&ppath, "name"),
                            m,
                            format!("duplicate pattern name `{}`", cp.name),
                        );
                    }
                    if let Err(e) = regex::RegexBuilder::new(&cp.pattern)
                        .size_limit(1 << 20)
                        .build()
                    {
                        let m = at(
                            ctx,
                            &[Seg::K("detect_patterns"), Seg::I(k), Seg::K("pattern")],
                        );
                        let msg = e.to_string();
                        let first = msg
                            .lines()
                            .last()
                            .unwrap_or("invalid regex")
                            .trim()
                            .to_owned();
                        ctx.err(
                            "E003",
                            &child(&ppath, "pattern"),
                            m,
                            format!("invalid regex: {first}"),
                        );
                    } else if regex::Regex::new(&cp.pattern).is_ok_and(|r| r.is_match("")) {
                        let m = at(
                            ctx,
                            &[Seg::K("detect_patterns"), Seg::I(k), Seg::K("pattern")],
                        );
                        ctx.err(
                            "E003",
                            &child(&ppath, "pattern"),
                            m,
                            "the pattern matches the empty string".into(),
                        );
                    }
                }
            }
        }
        KindOptions::Rbac(r) => {
            if let Some(models) = &r.allowed_models {
                for (role, list) in models {
                    if list.is_empty() || list.iter().any(|m| m.trim().is_empty()) {
                        let m = at(ctx, &[Seg::K("allowed_models"), Seg::K(role.as_str())]);
                        ctx.err(
                            "E003",
                            &child(&child(path, "allowed_models"), role.as_str()),
                            m,
                            "an allowed_models list must hold at least one non-empty model name"
                                .into(),
                        );
                    }
                }
            }
        }
        KindOptions::Phi(_) => {}
    }
}

fn validate_providers(ctx: &mut Ctx<'_>, spec: &PackSpec) -> HashSet<String> {
    let mut group_names = HashSet::new();
    let Some(p) = &spec.providers else {
        return group_names;
    };
    let targets = p.targets.as_deref().unwrap_or(&[]);
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, t) in targets.iter().enumerate() {
        let segs = [Seg::K("providers"), Seg::K("targets"), Seg::I(i)];
        let path = index("providers.targets", i);
        if let Some(first) = ids.get(t.id.as_str()) {
            let mut s = segs.to_vec();
            s.push(Seg::K("id"));
            let m = ctx.mark(&s);
            ctx.err(
                "E004",
                &child(&path, "id"),
                m,
                format!(
                    "duplicate target id `{}` (first defined at providers.targets[{first}])",
                    t.id
                ),
            );
        } else {
            ids.insert(&t.id, i);
        }
        if t.id.trim().is_empty() || t.model.trim().is_empty() {
            let m = ctx.mark(&segs);
            ctx.err(
                "E003",
                &path,
                m,
                "a target needs a non-empty `id` and `model`".into(),
            );
        }
        if t.base_url.is_none() && crate::routing::default_base_url(t.provider).is_none() {
            let m = ctx.mark(&segs);
            ctx.err(
                "E006",
                &child(&path, "base_url"),
                m,
                format!(
                    "provider `{}` has no default base URL: set `base_url`",
                    t.provider.as_str()
                ),
            );
        }
        if let Some(url) = &t.base_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                let mut s = segs.to_vec();
                s.push(Seg::K("base_url"));
                let m = ctx.mark(&s);
                ctx.err(
                    "E003",
                    &child(&path, "base_url"),
                    m,
                    "base_url must start with http:// or https://".into(),
                );
            }
        }
        if let Some(env) = &t.secret_key_ref {
            if env.env.is_empty()
                || !env
                    .env
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                let mut s = segs.to_vec();
                s.extend([Seg::K("secret_key_ref"), Seg::K("env")]);
                let m = ctx.mark(&s);
                ctx.err(
                    "E003",
                    &child(&child(&path, "secret_key_ref"), "env"),
                    m,
                    "an environment variable name is letters, digits and `_`".into(),
                );
            }
        }
        if let Some(pr) = &t.pricing {
            let mut s = segs.to_vec();
            s.push(Seg::K("pricing"));
            let m = ctx.mark(&s);
            if pr.input_per_1m.is_sign_negative() || pr.output_per_1m.is_sign_negative() {
                ctx.err(
                    "E003",
                    &child(&path, "pricing"),
                    m,
                    "prices cannot be negative".into(),
                );
            }
            if let Some(c) = &pr.currency {
                if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
                    ctx.err(
                        "E003",
                        &child(&child(&path, "pricing"), "currency"),
                        m,
                        format!("currency `{c}` is not an ISO 4217 code such as USD"),
                    );
                }
            }
        }
    }
    let groups = p.consumer_groups.as_deref().unwrap_or(&[]);
    for (g, group) in groups.iter().enumerate() {
        let segs = [Seg::K("providers"), Seg::K("consumer_groups"), Seg::I(g)];
        let path = index("providers.consumer_groups", g);
        if !group_names.insert(group.name.clone()) {
            let mut s = segs.to_vec();
            s.push(Seg::K("name"));
            let m = ctx.mark(&s);
            ctx.err(
                "E004",
                &child(&path, "name"),
                m,
                format!("duplicate consumer group `{}`", group.name),
            );
        }
        if group.models.is_empty() {
            let m = ctx.mark(&segs);
            ctx.err(
                "E003",
                &child(&path, "models"),
                m,
                "a consumer group needs at least one model".into(),
            );
        }
        for (k, mr) in group.models.iter().enumerate() {
            let found = targets
                .iter()
                .any(|t| t.provider == mr.provider && t.model == mr.model);
            if !found {
                let mut s = segs.to_vec();
                s.extend([Seg::K("models"), Seg::I(k)]);
                let m = ctx.mark(&s);
                ctx.err_suggest(
                    "E005",
                    &index(&child(&path, "models"), k),
                    m,
                    format!(
                        "no target in `providers.targets` serves {} model `{}`",
                        mr.provider.as_str(),
                        mr.model
                    ),
                    suggest(
                        &mr.model,
                        targets
                            .iter()
                            .filter(|t| t.provider == mr.provider)
                            .map(|t| t.model.as_str()),
                    ),
                );
            }
        }
    }
    group_names
}

fn validate_wallets(ctx: &mut Ctx<'_>, spec: &PackSpec) {
    let Some(w) = &spec.wallets else { return };
    if let Some(c) = &w.cascade {
        let m = ctx.mark(&[Seg::K("wallets"), Seg::K("cascade")]);
        if c.is_empty() {
            ctx.err(
                "E003",
                "wallets.cascade",
                m,
                "the cascade needs at least one scope".into(),
            );
        }
        let mut seen = HashSet::new();
        if c.iter().any(|s| !seen.insert(*s)) {
            ctx.err(
                "E003",
                "wallets.cascade",
                m,
                "a scope appears twice in the cascade".into(),
            );
        }
    }
    if w.default_max_output_tokens == Some(0) {
        let m = ctx.mark(&[Seg::K("wallets"), Seg::K("default_max_output_tokens")]);
        ctx.err(
            "E003",
            "wallets.default_max_output_tokens",
            m,
            "default_max_output_tokens must be at least 1".into(),
        );
    }
    if let Some(q) = &w.queue {
        match q.hold_seconds {
            None => {
                let m = ctx.mark(&[Seg::K("wallets"), Seg::K("queue")]);
                ctx.err(
                    "E006",
                    "wallets.queue.hold_seconds",
                    m,
                    "wallets.queue needs hold_seconds: how long an over-budget request is held (1 to 3600)".into(),
                );
            }
            Some(h) if !(1..=crate::wallet::queue::MAX_HOLD_SECONDS).contains(&h) => {
                let m = ctx.mark(&[Seg::K("wallets"), Seg::K("queue"), Seg::K("hold_seconds")]);
                ctx.err(
                    "E003",
                    "wallets.queue.hold_seconds",
                    m,
                    format!(
                        "hold_seconds must be 1 to {}, found {h}",
                        crate::wallet::queue::MAX_HOLD_SECONDS
                    ),
                );
            }
            Some(_) => {}
        }
        if q.max_held_per_team == Some(0) {
            let m = ctx.mark(&[
                Seg::K("wallets"),
                Seg::K("queue"),
                Seg::K("max_held_per_team"),
            ]);
            ctx.err(
                "E003",
                "wallets.queue.max_held_per_team",
                m,
                "max_held_per_team must be at least 1 (leave wallets.queue out to hold nothing)"
                    .into(),
            );
        }
    }
}

fn validate_notifications(ctx: &mut Ctx<'_>, spec: &PackSpec) {
    for (i, n) in spec.notifications.iter().flatten().enumerate() {
        let at = |ctx: &Ctx<'_>, key: &'static str| {
            ctx.mark(&[Seg::K("notifications"), Seg::I(i), Seg::K(key)])
        };
        if let Err(why) = crate::notify::check_url(&n.url) {
            let m = at(ctx, "url");
            ctx.err("E003", &format!("notifications[{i}].url"), m, why);
        }
        if n.events.is_empty() {
            let m = at(ctx, "events");
            ctx.err(
                "E006",
                &format!("notifications[{i}].events"),
                m,
                "a notification needs at least one event type".into(),
            );
        }
        for (j, e) in n.events.iter().enumerate() {
            if e.parse::<crate::notify::Kind>().is_err() {
                let m = ctx.mark(&[
                    Seg::K("notifications"),
                    Seg::I(i),
                    Seg::K("events"),
                    Seg::I(j),
                ]);
                let names = crate::notify::Kind::ALL.map(crate::notify::Kind::as_str);
                ctx.err_suggest(
                    "E003",
                    &format!("notifications[{i}].events[{j}]"),
                    m,
                    format!(
                        "unknown event type `{e}`; expected one of `{}`",
                        names.join("`, `")
                    ),
                    suggest(e, names),
                );
            }
        }
        if n.secret_key_ref.env.trim().is_empty() {
            let m = at(ctx, "secret_key_ref");
            ctx.err(
                "E003",
                &format!("notifications[{i}].secret_key_ref.env"),
                m,
                "name the environment variable that holds the signing key".into(),
            );
        }
    }
    let alerts = spec.wallets.as_ref().and_then(|w| w.alerts.as_ref());
    for (j, a) in alerts.into_iter().flatten().enumerate() {
        let m = ctx.mark(&[Seg::K("wallets"), Seg::K("alerts"), Seg::I(j)]);
        let path = format!("wallets.alerts[{j}]");
        if !(1..=1000).contains(a) {
            ctx.err(
                "E003",
                &path,
                m,
                format!("an alert is a percentage of the allocation, 1 to 1000, found {a}"),
            );
        } else if alerts.is_some_and(|all| all.iter().take(j).any(|x| x == a)) {
            ctx.err("E003", &path, m, format!("the alert {a} % appears twice"));
        }
    }
}

fn validate_teams(ctx: &mut Ctx<'_>, spec: &PackSpec) {
    for slug in spec.teams.iter().flat_map(|t| t.keys()) {
        let wanted = crate::identity::slugify(slug);
        if wanted != *slug || slug.is_empty() {
            let m = ctx.key_mark(&[Seg::K("teams")], slug);
            let hint = if wanted.is_empty() {
                String::new()
            } else {
                format!(": write `{wanted}`")
            };
            ctx.err(
                "E003",
                &child("teams", slug),
                m,
                format!("`{slug}` is not a team slug (lowercase letters, digits and `-`){hint}"),
            );
        }
    }
}

/// Warns about entries that can never run: for every principal they match, an earlier entry of
/// the same kind matches too (and the kind runs once, at its first position).
fn warn_unreachable(ctx: &mut Ctx<'_>, spec: &PackSpec) {
    #[derive(Default)]
    struct Covered {
        all: bool,
        lists: BTreeMap<u8, HashSet<String>>,
    }
    let mut covered: HashMap<PolicyKind, Covered> = HashMap::new();
    for (i, entry) in spec.policies.chain.iter().enumerate() {
        let cov = covered.entry(entry.kind).or_default();
        let (scope, list) = match &entry.targeting {
            None => (Scope::Org, None),
            Some(t) => {
                let scope = t.scope.unwrap_or(Scope::Org);
                let list = match scope {
                    Scope::Org => None,
                    Scope::Team => t.teams.as_ref(),
                    Scope::User => t.users.as_ref(),
                    Scope::ConsumerGroup => t.consumer_groups.as_ref(),
                };
                (scope, list)
            }
        };
        let key = scope as u8;
        let unreachable = cov.all
            || list.is_some_and(|l| {
                cov.lists
                    .get(&key)
                    .is_some_and(|seen| l.iter().all(|x| seen.contains(x)))
            });
        if unreachable && entry.kind != PolicyKind::AuditLogger {
            let m = ctx.mark(&[Seg::K("policies"), Seg::K("chain"), Seg::I(i)]);
            ctx.warn(
                "W001",
                &index("policies.chain", i),
                m,
                format!(
                    "this `{}` entry can never run: an earlier `{}` entry already applies to everyone it targets",
                    entry.kind, entry.kind
                ),
            );
        }
        match list {
            None => cov.all = true,
            Some(l) => cov.lists.entry(key).or_default().extend(l.iter().cloned()),
        }
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
