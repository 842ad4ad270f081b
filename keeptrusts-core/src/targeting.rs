//! Per-team targeting: which chain entries apply to a principal.
//!
//! The effective chain for a (team, user, consumer group) is computed once and cached. Names that
//! no targeting list mentions all share one cache slot, so the cache is bounded by the names in
//! the pack, not by the traffic.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use crate::identity::Principal;
use crate::pack::spec::{ChainEntry, PolicyKind, Scope};

#[derive(Debug)]
enum Matcher {
    All,
    Teams(HashSet<String>),
    Users(HashSet<String>),
    Groups(HashSet<String>),
}

impl Matcher {
    fn matches(&self, p: &Principal) -> bool {
        let has = |set: &HashSet<String>, v: &Option<String>| {
            v.as_deref().is_some_and(|v| set.contains(v))
        };
        match self {
            Matcher::All => true,
            Matcher::Teams(s) => has(s, &p.team),
            Matcher::Users(s) => has(s, &p.user),
            Matcher::Groups(s) => has(s, &p.consumer_group),
        }
    }
}

/// The chain entries that apply to one principal, in execution order: `rbac` first (it gates
/// everything else), then the other kinds at the position of their first applicable entry,
/// `audit-logger` last (it observes the outcome). Each kind appears once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveChain {
    /// Indices into the pack's chain.
    pub entries: Vec<usize>,
    /// The kinds, in the same order.
    pub kinds: Vec<PolicyKind>,
}

impl EffectiveChain {
    /// The kinds' pack names (`rbac`, `pii-detector`, …), in execution order: what every host
    /// shows as a principal's chain.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.iter().map(|k| k.as_str()).collect()
    }
}

type Key = (u32, u32, u32);

#[derive(Debug)]
pub(crate) struct Targeting {
    matchers: Vec<Matcher>,
    kinds: Vec<PolicyKind>,
    teams: HashMap<String, u32>,
    users: HashMap<String, u32>,
    groups: HashMap<String, u32>,
    cache: RwLock<HashMap<Key, Arc<EffectiveChain>>>,
}

fn intern(map: &mut HashMap<String, u32>, names: &[String]) {
    for n in names {
        let next = u32::try_from(map.len() + 1).unwrap_or(u32::MAX);
        map.entry(n.clone()).or_insert(next);
    }
}

fn in_order(map: &HashMap<String, u32>) -> Vec<String> {
    let mut v: Vec<(&String, &u32)> = map.iter().collect();
    v.sort_by_key(|(_, i)| **i);
    v.into_iter().map(|(n, _)| n.clone()).collect()
}

impl Targeting {
    pub fn new(chain: &[ChainEntry]) -> Self {
        let mut teams = HashMap::new();
        let mut users = HashMap::new();
        let mut groups = HashMap::new();
        let mut matchers = Vec::with_capacity(chain.len());
        for e in chain {
            let m = match &e.targeting {
                None => Matcher::All,
                Some(t) => match t.scope.unwrap_or(Scope::Org) {
                    Scope::Org => Matcher::All,
                    Scope::Team => {
                        let l = t.teams.clone().unwrap_or_default();
                        intern(&mut teams, &l);
                        Matcher::Teams(l.into_iter().collect())
                    }
                    Scope::User => {
                        let l = t.users.clone().unwrap_or_default();
                        intern(&mut users, &l);
                        Matcher::Users(l.into_iter().collect())
                    }
                    Scope::ConsumerGroup => {
                        let l = t.consumer_groups.clone().unwrap_or_default();
                        intern(&mut groups, &l);
                        Matcher::Groups(l.into_iter().collect())
                    }
                },
            };
            matchers.push(m);
        }
        Targeting {
            matchers,
            kinds: chain.iter().map(|e| e.kind).collect(),
            teams,
            users,
            groups,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// Team slugs named by any targeting list, in first-mention order.
    pub fn named_teams(&self) -> Vec<String> {
        in_order(&self.teams)
    }

    /// Consumer groups named by any targeting list, in first-mention order.
    pub fn named_groups(&self) -> Vec<String> {
        in_order(&self.groups)
    }

    fn key(&self, p: &Principal) -> Key {
        let idx = |map: &HashMap<String, u32>, v: &Option<String>| {
            v.as_deref().and_then(|s| map.get(s)).copied().unwrap_or(0)
        };
        (
            idx(&self.teams, &p.team),
            idx(&self.users, &p.user),
            idx(&self.groups, &p.consumer_group),
        )
    }

    fn compute(&self, p: &Principal) -> EffectiveChain {
        let mut seen = HashSet::new();
        let mut entries: Vec<usize> = Vec::new();
        for (i, (m, k)) in self.matchers.iter().zip(&self.kinds).enumerate() {
            if m.matches(p) && seen.insert(*k) {
                entries.push(i);
            }
        }
        let kind_of = |i: &usize| self.kinds.get(*i).copied();
        let rank = |i: &usize| kind_of(i).map_or(1, PolicyKind::rank);
        entries.sort_by_key(rank);
        let kinds = entries.iter().filter_map(kind_of).collect();
        EffectiveChain { entries, kinds }
    }

    pub fn resolve(&self, p: &Principal) -> Arc<EffectiveChain> {
        let key = self.key(p);
        if let Ok(cache) = self.cache.read() {
            if let Some(c) = cache.get(&key) {
                return Arc::clone(c);
            }
        }
        let chain = Arc::new(self.compute(p));
        if let Ok(mut cache) = self.cache.write() {
            cache.entry(key).or_insert_with(|| Arc::clone(&chain));
        }
        chain
    }
}
