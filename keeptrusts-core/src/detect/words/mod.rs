//! Word lists the scanner consults: names (from `data/`), months, street suffixes, titles, and the
//! context words that decide what an ambiguous shape is.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use std::collections::HashMap;

mod around_names;
mod cjk;
mod context;
mod months;
mod names;
mod places;
mod stop_words;

use around_names::{CAPITAL_PARTICLES, HONORIFICS_AFTER};
pub(crate) use around_names::{FIRMS, NOT_LONE, PERSON_AFTER, PERSON_BEFORE, ROLE_WORDS};
pub(crate) use cjk::{
    cjk_cue_end, cjk_region_end, CJK_CONTEXT, CJK_NAME_CUES, CJK_REGIONS, CJK_SURNAMES,
    KOREAN_SURNAMES,
};
use context::CONTEXT;
use months::MONTHS;
use names::PLACE_AFTER_NAME;
pub(crate) use names::PLACE_PREFIXES;
use names::{NAME_CUES, NOT_SURNAMES, TITLES, WORD_SURNAMES};
pub(crate) use places::WEAK_STREET_SUFFIXES;
use places::{FRENCH_STREETS, GERMAN_STREET_ENDINGS, SPANISH_STREETS, STREET_SUFFIXES, US_STATES};
use stop_words::STOP_WORDS;

/// A multiply-rotate hash over eight bytes at a time (as rustc's FxHash): the keys are short
/// words, the sets are fixed (no DoS concern), and a word costs one or two multiplications
/// instead of one per byte.
#[derive(Default)]
pub(crate) struct WordHash(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl WordHash {
    #[inline]
    fn add(&mut self, x: u64) {
        self.0 = (self.0 ^ x).wrapping_mul(K).rotate_left(26);
    }
}

impl Hasher for WordHash {
    #[inline]
    fn finish(&self) -> u64 {
        // fold the high bits into the low ones, which pick the bucket
        let h = self.0.wrapping_mul(K);
        h ^ (h >> 32)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        let n = rest.len();
        let u32_at = |k: usize| {
            rest.get(k..k + 4)
                .and_then(|t| <[u8; 4]>::try_from(t).ok())
                .map_or(0, |t| u64::from(u32::from_le_bytes(t)))
        };
        let byte = |k: usize| rest.get(k).map_or(0, |&c| u64::from(c));
        // the last 1–7 bytes in one word: two overlapping reads of four, or three single bytes
        let x = if n >= 4 {
            u32_at(0) | u32_at(n - 4) << 32
        } else if n > 0 {
            byte(0) | byte(n / 2) << 8 | byte(n - 1) << 16
        } else {
            0
        };
        // the length keeps the overlapping reads apart
        self.add(x ^ ((n as u64) << 59));
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
}

/// A fixed set of words, with a filter in front: one bit per (length up to 15, first byte,
/// last byte — five bits each) that some word has. Most words looked up are in no set, and
/// the filter answers those without hashing.
pub(crate) struct Set {
    words: HashSet<&'static str, BuildHasherDefault<WordHash>>,
    filter: Box<[u64; 256]>,
}

/// The filter bit of `w`.
#[inline]
fn filter_bit(w: &[u8]) -> usize {
    let f = usize::from(w.first().copied().unwrap_or(0) & 31);
    let l = usize::from(w.last().copied().unwrap_or(0) & 31);
    (w.len().min(15) << 10) | (f << 5) | l
}

impl Set {
    #[inline]
    pub(crate) fn contains(&self, w: &str) -> bool {
        passes(&self.filter, w) && self.words.contains(w)
    }

    /// Like [`Map::may_contain`].
    #[inline]
    pub(crate) fn may_contain(&self, w: &str) -> bool {
        passes(&self.filter, w)
    }
}

/// The filter of [`Set`] and [`Map`] over `words`.
fn filter_of<'a>(words: impl Iterator<Item = &'a &'static str>) -> Box<[u64; 256]> {
    let mut filter = Box::new([0u64; 256]);
    for w in words {
        let k = filter_bit(w.as_bytes());
        if let Some(bits) = filter.get_mut(k >> 6) {
            *bits |= 1 << (k & 63);
        }
    }
    filter
}

/// Whether `filter` lets `w` through.
#[inline]
fn passes(filter: &[u64; 256], w: &str) -> bool {
    let k = filter_bit(w.as_bytes());
    filter
        .get(k >> 6)
        .is_some_and(|&bits| bits >> (k & 63) & 1 != 0)
}

impl FromIterator<&'static str> for Set {
    fn from_iter<I: IntoIterator<Item = &'static str>>(items: I) -> Self {
        let words: HashSet<&'static str, BuildHasherDefault<WordHash>> =
            items.into_iter().collect();
        let filter = filter_of(words.iter());
        Set { words, filter }
    }
}

/// A fixed map from words, with the filter of [`Set`] in front.
pub(crate) struct Map<V> {
    map: HashMap<&'static str, V, BuildHasherDefault<WordHash>>,
    filter: Box<[u64; 256]>,
    /// For a map of many thousand words (the name lists), a second filter that also reads two
    /// bits of the second byte, so most words in no list still stop before the table.
    wide: Option<Box<[u64; 1024]>>,
}

/// The bit of `w` in a [`Map`]'s wide filter: [`filter_bit`]'s and two bits of the second byte
/// (ASCII case is bit 5, outside all of them).
#[inline]
fn wide_bit(w: &[u8]) -> usize {
    (filter_bit(w) << 2) | usize::from(w.get(1).copied().unwrap_or(0) & 3)
}

impl<V> Map<V> {
    #[inline]
    pub(crate) fn get(&self, w: &str) -> Option<&V> {
        let wide = self.wide.as_ref().is_none_or(|f| {
            let k = wide_bit(w.as_bytes());
            f.get(k >> 6).is_some_and(|&bits| bits >> (k & 63) & 1 != 0)
        });
        if wide && passes(&self.filter, w) {
            self.map.get(w)
        } else {
            None
        }
    }

    /// This map with a wide filter in front (see [`Map::wide`]).
    pub(crate) fn widened(mut self) -> Self {
        let mut f = Box::new([0u64; 1024]);
        for w in self.map.keys() {
            let k = wide_bit(w.as_bytes());
            if let Some(bits) = f.get_mut(k >> 6) {
                *bits |= 1 << (k & 63);
            }
        }
        self.wide = Some(f);
        self
    }

    /// Whether `w` may be a key: `false` answers that it is none, for `w` and for every word
    /// of the same length whose first and last bytes agree in their low five bits (ASCII
    /// letters in either case).
    #[inline]
    pub(crate) fn may_contain(&self, w: &str) -> bool {
        passes(&self.filter, w)
    }

    /// The flags of `w`, 0 when it has none.
    #[inline]
    pub(crate) fn flags(&self, w: &str) -> u8
    where
        V: Copy + Into<u8>,
    {
        self.get(w).map_or(0, |&v| v.into())
    }

    #[inline]
    pub(crate) fn contains_key(&self, w: &str) -> bool {
        self.get(w).is_some()
    }
}

impl<V> From<HashMap<&'static str, V, BuildHasherDefault<WordHash>>> for Map<V> {
    fn from(map: HashMap<&'static str, V, BuildHasherDefault<WordHash>>) -> Self {
        let filter = filter_of(map.keys());
        Map {
            map,
            filter,
            wide: None,
        }
    }
}

/// Context phrases by their last word: each entry holds the phrase's earlier words (in reading
/// order) and what the phrase means, longest phrases first.
pub(crate) type Phrases =
    HashMap<&'static str, Vec<(Vec<&'static str>, Ctx)>, BuildHasherDefault<WordHash>>;

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
    HashMap<&'static str, Vec<(Vec<&'static str>, CueKind)>, BuildHasherDefault<WordHash>>;

/// What a capitalized word is in the name lists ([`Words::name_flags`]), one bit each.
pub(crate) mod name_flag {
    pub(crate) const GIVEN: u8 = 1;
    pub(crate) const SURNAME: u8 = 2;
    pub(crate) const WORD_SURNAME: u8 = 4;
    pub(crate) const STOP_WORD: u8 = 8;
    pub(crate) const NEVER_FIRST: u8 = 16;
    pub(crate) const NOT_SURNAME: u8 = 32;
    /// a given name that is also an everyday word (`Tom`, `Will`): given only before a surname
    pub(crate) const WORD_GIVEN: u8 = 64;
    /// a place's prefix (`San`, `Fort`): starts no name, makes the next word a place
    pub(crate) const PLACE_PREFIX: u8 = 128;
}

/// What a capitalized word does next to a name ([`Words::name_roles`]), one bit each.
pub(crate) mod name_role {
    /// a street's or an institution's word (`Highway`, `Group`): the words before it name it
    pub(crate) const PLACE_AFTER: u8 = 2;
    /// an honorific after a name (`Hanım`, `Bey`): outside the name
    pub(crate) const HONORIFIC: u8 = 4;
    /// a particle written with a capital (`El`, `Lo`, `Ní`): binds the next word into the name
    pub(crate) const PARTICLE: u8 = 8;
}

pub(crate) struct Words {
    /// Given names, surnames, word surnames, stop words, never-first words and not-surnames
    /// in one map: the name path asks about one word once ([`name_flag`]).
    pub name_flags: Map<u8>,
    /// [`name_role`]s of the words around names, one lookup behind the filter.
    pub name_roles: Map<u8>,
    pub given: Set,
    pub months: Set,
    pub street_suffixes: Set,
    pub german_street_endings: &'static [&'static str],
    pub french_streets: Set,
    pub spanish_streets: Set,
    pub titles: Set,
    /// Name cues, see [`Cues`].
    pub name_cues: Map<Vec<(Vec<&'static str>, CueKind)>>,
    pub stop_words: Set,
    pub places: Set,
    /// [`CJK_NAME_CUES`] by their last two characters.
    pub cjk_cues: HashMap<&'static str, Vec<(&'static str, bool)>, BuildHasherDefault<WordHash>>,
    /// [`CJK_REGIONS`] by their last two characters.
    pub cjk_regions: HashMap<&'static str, Vec<&'static str>, BuildHasherDefault<WordHash>>,
    pub not_surnames: Set,
    pub states: Set,
    /// Context phrases, see [`Phrases`].
    pub context: Map<Vec<(Vec<&'static str>, Ctx)>>,
    /// [`CJK_CONTEXT`] by their last two characters, longest first.
    pub cjk_context: HashMap<&'static str, Vec<(&'static str, Ctx)>, BuildHasherDefault<WordHash>>,
}

/// Whether `lower` (lower case) is an everyday English word of `data/english_words.txt`: a
/// search by halving over the sorted lines of the text compiled into the binary, so the 64,000
/// words cost no memory and a lookup about 16 line comparisons.
pub(crate) fn everyday_word(lower: &str) -> bool {
    static BODY: OnceLock<&'static [u8]> = OnceLock::new();
    let body = *BODY.get_or_init(|| {
        let text = include_str!("../../../data/english_words.txt");
        let mut start = 0;
        for line in text.split_inclusive('\n') {
            if !line.starts_with('#') {
                break;
            }
            start += line.len();
        }
        text.as_bytes().get(start..).unwrap_or(&[])
    });
    let word = lower.as_bytes();
    // `lo` and `hi` are always line starts (or the end)
    let (mut lo, mut hi) = (0, body.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let s = body
            .get(lo..mid)
            .and_then(|b| b.iter().rposition(|&c| c == b'\n'))
            .map_or(lo, |p| lo + p + 1);
        let e = body
            .get(s..hi)
            .and_then(|b| b.iter().position(|&c| c == b'\n'))
            .map_or(hi, |p| s + p);
        match body.get(s..e).unwrap_or(&[]).cmp(word) {
            std::cmp::Ordering::Equal => return true,
            std::cmp::Ordering::Less => lo = e + 1,
            std::cmp::Ordering::Greater => hi = s,
        }
    }
    false
}

/// Given names: the hand-written list, then the Tzioumis first names (CC0) and the SSA baby
/// names (public domain; see `scripts/build-name-lists.py`).
fn given_names() -> impl Iterator<Item = &'static str> {
    lines(include_str!("../../../data/given_names.txt"))
        .chain(lines(include_str!("../../../data/census_given_names.txt")))
        .chain(lines(include_str!("../../../data/ssa_given_names.txt")))
}

/// Surnames: the hand-written list, then the 2010 US Census surnames (public domain; see
/// `scripts/build-name-lists.py`).
fn surnames() -> impl Iterator<Item = &'static str> {
    lines(include_str!("../../../data/surnames.txt"))
        .chain(lines(include_str!("../../../data/census_surnames.txt")))
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
                BuildHasherDefault<WordHash>,
            > = HashMap::default();
            for &(cue, weak) in CJK_NAME_CUES {
                cjk_cues.entry(last_two(cue)).or_default().push((cue, weak));
            }
            // longest first: `名前は` before `名前`
            for v in cjk_cues.values_mut() {
                v.sort_by_key(|c| std::cmp::Reverse(c.0.len()));
            }
            let mut cjk_regions: HashMap<
                &'static str,
                Vec<&'static str>,
                BuildHasherDefault<WordHash>,
            > = HashMap::default();
            for &r in CJK_REGIONS {
                cjk_regions.entry(last_two(r)).or_default().push(r);
            }
            let mut cjk_context: HashMap<
                &'static str,
                Vec<(&'static str, Ctx)>,
                BuildHasherDefault<WordHash>,
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
            let mut flags: HashMap<&'static str, u8, BuildHasherDefault<WordHash>> =
                HashMap::default();
            let never_first = STOP_WORDS
                .iter()
                .copied()
                .chain(lines(include_str!("../../../data/places.txt")))
                .chain(SPANISH_STREETS.iter().copied());
            for (words, flag) in [
                (
                    Box::new(given_names()) as Box<dyn Iterator<Item = &'static str>>,
                    name_flag::GIVEN,
                ),
                (Box::new(surnames()), name_flag::SURNAME),
                (
                    Box::new(WORD_SURNAMES.iter().copied()),
                    name_flag::WORD_SURNAME,
                ),
                (
                    Box::new(
                        lines(include_str!("../../../data/census_word_given_names.txt")).chain(
                            lines(include_str!("../../../data/ssa_word_given_names.txt")),
                        ),
                    ),
                    name_flag::WORD_GIVEN,
                ),
                (
                    Box::new(lines(include_str!(
                        "../../../data/census_word_surnames.txt"
                    ))),
                    name_flag::SURNAME | name_flag::WORD_SURNAME,
                ),
                (Box::new(STOP_WORDS.iter().copied()), name_flag::STOP_WORD),
                // stop words, places and Spanish street words: what never starts a name
                (Box::new(never_first), name_flag::NEVER_FIRST),
                (
                    Box::new(NOT_SURNAMES.iter().copied()),
                    name_flag::NOT_SURNAME,
                ),
                (
                    Box::new(PLACE_PREFIXES.iter().copied()),
                    name_flag::PLACE_PREFIX,
                ),
            ] {
                for w in words {
                    *flags.entry(w).or_default() |= flag;
                }
            }
            let mut roles: HashMap<&'static str, u8, BuildHasherDefault<WordHash>> =
                HashMap::default();
            for (words, role) in [
                (PLACE_AFTER_NAME, name_role::PLACE_AFTER),
                (HONORIFICS_AFTER, name_role::HONORIFIC),
                (CAPITAL_PARTICLES, name_role::PARTICLE),
            ] {
                for &w in words {
                    *roles.entry(w).or_default() |= role;
                }
            }
            Some(Words {
                name_flags: Map::from(flags).widened(),
                name_roles: roles.into(),
                given: set(given_names()),
                months: set(MONTHS.iter().copied()),
                street_suffixes: set(STREET_SUFFIXES.iter().chain(WEAK_STREET_SUFFIXES).copied()),
                german_street_endings: GERMAN_STREET_ENDINGS,
                french_streets: set(FRENCH_STREETS.iter().copied()),
                spanish_streets: set(SPANISH_STREETS.iter().copied()),
                titles: set(TITLES.iter().copied()),
                not_surnames: set(NOT_SURNAMES.iter().copied()),
                name_cues: name_cues.into(),
                stop_words: set(STOP_WORDS.iter().copied()),
                places: set(lines(include_str!("../../../data/places.txt"))),
                cjk_cues,
                cjk_regions,
                states: set(US_STATES.iter().copied()),
                context: context.into(),
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
