//! Validation of a parsed pack: every section's rules, each error and warning at its key's line
//! and column ([`super::parse`] runs it after the document has been read into a [`PackSpec`]).

use super::*;
use crate::policy::Checks;

pub(super) fn is_version(v: &str) -> bool {
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

pub(super) fn validate(ctx: &mut Ctx<'_>, spec: &PackSpec) {
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
        let merged = merge_options(base, entry.options.clone());
        let entry_path = index("policies.chain", i);
        entry.kind.check_entry(
            merged.as_ref(),
            &mut Checker {
                ctx,
                path: &path,
                segs: &segs,
                entry: (&entry_path, &segs[..3]),
            },
        );
    }
    warn_unreachable(ctx, spec);
}

pub(super) fn validate_targeting(
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

pub(super) fn scope_name(s: Scope) -> &'static str {
    match s {
        Scope::Org => "org",
        Scope::Team => "team",
        Scope::User => "user",
        Scope::ConsumerGroup => "consumer_group",
    }
}

pub(super) fn list_for(s: Scope) -> &'static str {
    match s {
        Scope::Org => "",
        Scope::Team => "teams",
        Scope::User => "users",
        Scope::ConsumerGroup => "consumer_groups",
    }
}

pub(super) fn check_options(
    ctx: &mut Ctx<'_>,
    opts: &KindOptions,
    base: Option<&KindOptions>,
    path: &str,
    segs: &[Seg<'_>],
) {
    opts.check(
        base,
        &mut Checker {
            ctx,
            path,
            segs,
            entry: (path, segs),
        },
    );
}

/// A kind's checks ([`Checks`]) reported as diagnostics: errors at the key below the options'
/// `path` and `segs`, entry warnings at the chain entry (`entry`: its path and segments).
struct Checker<'c, 'n, 'p> {
    ctx: &'c mut Ctx<'n>,
    path: &'p str,
    segs: &'p [Seg<'p>],
    entry: (&'p str, &'p [Seg<'p>]),
}

impl Checks for Checker<'_, '_, '_> {
    fn error(&mut self, code: &'static str, at: &[Seg<'_>], msg: String, hint: Option<String>) {
        let mut segs = self.segs.to_vec();
        segs.extend_from_slice(at);
        let mark = self.ctx.mark(&segs);
        let path = at.iter().fold(self.path.to_owned(), |p, s| match s {
            Seg::K(k) => child(&p, k),
            Seg::I(i) => index(&p, *i),
        });
        self.ctx.err_suggest(code, &path, mark, msg, hint);
    }

    fn entry_warning(&mut self, code: &'static str, message: String) {
        let (path, segs) = self.entry;
        let mark = self.ctx.mark(segs);
        self.ctx.warn(code, path, mark, message);
    }
}

pub(super) fn validate_providers(ctx: &mut Ctx<'_>, spec: &PackSpec) -> HashSet<String> {
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

pub(super) fn validate_wallets(ctx: &mut Ctx<'_>, spec: &PackSpec) {
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

pub(super) fn validate_notifications(ctx: &mut Ctx<'_>, spec: &PackSpec) {
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

pub(super) fn validate_teams(ctx: &mut Ctx<'_>, spec: &PackSpec) {
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
pub(super) fn warn_unreachable(ctx: &mut Ctx<'_>, spec: &PackSpec) {
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
        if unreachable && entry.kind.warns_shadowed() {
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
