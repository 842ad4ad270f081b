//! Word lists the scanner consults: names (from `data/`), months, street suffixes, titles, and the
//! context words that decide what an ambiguous shape is.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use std::collections::HashMap;

mod cjk;
mod context;
mod months;
mod names;
mod places;
mod stop_words;

pub(crate) use cjk::{
    cjk_cue_end, cjk_region_end, CJK_CONTEXT, CJK_NAME_CUES, CJK_REGIONS, CJK_SURNAMES,
    KOREAN_SURNAMES,
};
use context::CONTEXT;
use months::MONTHS;
use names::{NAME_CUES, NOT_SURNAMES, TITLES, WORD_SURNAMES};
use places::{FRENCH_STREETS, GERMAN_STREET_ENDINGS, SPANISH_STREETS, STREET_SUFFIXES, US_STATES};
use stop_words::STOP_WORDS;

/// FNV-1a: short keys, no DoS concern (the sets are fixed), much cheaper than SipHash.
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

pub(crate) type Set = HashSet<&'static str, BuildHasherDefault<Fnv>>;

/// Context phrases by their last word: each entry holds the phrase's earlier words (in reading
/// order) and what the phrase means, longest phrases first.
pub(crate) type Phrases =
    HashMap<&'static str, Vec<(Vec<&'static str>, Ctx)>, BuildHasherDefault<Fnv>>;

/// What the nearest context word before a value says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ctx {
    Ssn,
    Itin,
    Dob,
    ClinicalDate,
    Phone,
    Fax,
    Routing,
    Bank,
    Account,
    Npi,
    Mrn,
    HealthPlan,
    DriverLicense,
    License,
    Passport,
    Plate,
    Vin,
    Device,
    Zip,
    Card,
    /// a key, secret, token or bearer: a random-looking token after it is a credential
    Secret,
    /// software, firmware, agents, packages: a dotted quad after it is a version, not an IP
    Version,
    /// order, invoice, build, version, …: the number is not personal
    Negative,
}

/// How a name cue stands before the name it introduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CueKind {
    /// A label or phrase right before the name, or before `:` or `,` (`Patient`, `Dear`,
    /// `my name is`, `je m'appelle`).
    Any,
    /// A form field or mail header: only before `:` or `=` (`Name:`, `Author:`, `De:`), never
    /// `Name, Email` in a column list.
    Field,
    /// A closing line: the name follows on the same line after `,` or on the next line
    /// (`Best regards,\nMaria Gonzalez`).
    SignOff,
}

/// Name cues by their last word, like [`Phrases`].
pub(crate) type Cues =
    HashMap<&'static str, Vec<(Vec<&'static str>, CueKind)>, BuildHasherDefault<Fnv>>;

pub(crate) struct Words {
    pub given: Set,
    pub surnames: Set,
    pub word_surnames: Set,
    pub months: Set,
    pub street_suffixes: Set,
    pub german_street_endings: &'static [&'static str],
    pub french_streets: Set,
    pub spanish_streets: Set,
    pub titles: Set,
    /// Name cues, see [`Cues`].
    pub name_cues: Cues,
    pub stop_words: Set,
    pub places: Set,
    /// Stop words, places and Spanish street words: what never starts a name.
    pub never_first: Set,
    /// [`CJK_NAME_CUES`] by their last two characters.
    pub cjk_cues: HashMap<&'static str, Vec<(&'static str, bool)>, BuildHasherDefault<Fnv>>,
    /// [`CJK_REGIONS`] by their last two characters.
    pub cjk_regions: HashMap<&'static str, Vec<&'static str>, BuildHasherDefault<Fnv>>,
    pub not_surnames: Set,
    pub states: Set,
    /// Context phrases, see [`Phrases`].
    pub context: Phrases,
    /// [`CJK_CONTEXT`] by their last two characters, longest first.
    pub cjk_context: HashMap<&'static str, Vec<(&'static str, Ctx)>, BuildHasherDefault<Fnv>>,
}

fn lines(s: &'static str) -> impl Iterator<Item = &'static str> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

fn set(items: impl IntoIterator<Item = &'static str>) -> Set {
    items.into_iter().collect()
}

/// The last two characters of `s` (all of it when shorter).
pub(crate) fn last_two(s: &str) -> &str {
    let start = s.char_indices().rev().nth(1).map_or(0, |(k, _)| k);
    s.get(start..).unwrap_or(s)
}

pub(crate) fn words() -> Option<&'static Words> {
    static WORDS: OnceLock<Option<Words>> = OnceLock::new();
    WORDS
        .get_or_init(|| {
            let mut context = Phrases::default();
            for &(phrase, kind) in CONTEXT {
                let mut tokens: Vec<&'static str> = phrase.split(' ').collect();
                let last = tokens.pop()?;
                context.entry(last).or_default().push((tokens, kind));
            }
            for v in context.values_mut() {
                v.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
            }
            let mut cjk_cues: HashMap<
                &'static str,
                Vec<(&'static str, bool)>,
                BuildHasherDefault<Fnv>,
            > = HashMap::default();
            for &(cue, weak) in CJK_NAME_CUES {
                cjk_cues.entry(last_two(cue)).or_default().push((cue, weak));
            }
            // longest first: `名前は` before `名前`
            for v in cjk_cues.values_mut() {
                v.sort_by_key(|c| std::cmp::Reverse(c.0.len()));
            }
            let mut cjk_regions: HashMap<&'static str, Vec<&'static str>, BuildHasherDefault<Fnv>> =
                HashMap::default();
            for &r in CJK_REGIONS {
                cjk_regions.entry(last_two(r)).or_default().push(r);
            }
            let mut cjk_context: HashMap<
                &'static str,
                Vec<(&'static str, Ctx)>,
                BuildHasherDefault<Fnv>,
            > = HashMap::default();
            for &(phrase, kind) in CJK_CONTEXT {
                cjk_context
                    .entry(last_two(phrase))
                    .or_default()
                    .push((phrase, kind));
            }
            for v in cjk_context.values_mut() {
                v.sort_by_key(|c| std::cmp::Reverse(c.0.len()));
            }
            let mut name_cues = Cues::default();
            for &(phrase, kind) in NAME_CUES {
                let mut tokens: Vec<&'static str> = phrase.split(' ').collect();
                let last = tokens.pop()?;
                name_cues.entry(last).or_default().push((tokens, kind));
            }
            for v in name_cues.values_mut() {
                v.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
            }
            Some(Words {
                given: set(lines(include_str!("../../../data/given_names.txt"))),
                surnames: set(lines(include_str!("../../../data/surnames.txt"))),
                word_surnames: set(WORD_SURNAMES.iter().copied()),
                months: set(MONTHS.iter().copied()),
                street_suffixes: set(STREET_SUFFIXES.iter().copied()),
                german_street_endings: GERMAN_STREET_ENDINGS,
                french_streets: set(FRENCH_STREETS.iter().copied()),
                spanish_streets: set(SPANISH_STREETS.iter().copied()),
                titles: set(TITLES.iter().copied()),
                not_surnames: set(NOT_SURNAMES.iter().copied()),
                name_cues,
                stop_words: set(STOP_WORDS.iter().copied()),
                places: set(lines(include_str!("../../../data/places.txt"))),
                never_first: set(STOP_WORDS
                    .iter()
                    .copied()
                    .chain(lines(include_str!("../../../data/places.txt")))
                    .chain(SPANISH_STREETS.iter().copied())),
                cjk_cues,
                cjk_regions,
                states: set(US_STATES.iter().copied()),
                context,
                cjk_context,
            })
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    /// The context walk keeps the two words before a phrase's last one (`PrevWords`).
    #[test]
    fn context_phrases_have_at_most_three_words() {
        for &(phrase, _) in super::CONTEXT {
            assert!(phrase.split(' ').count() <= 3, "{phrase}");
        }
    }
}
