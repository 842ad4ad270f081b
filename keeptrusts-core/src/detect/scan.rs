//! The one-pass scanner behind the built-in detectors.
//!
//! One walk over the bytes. A 256-entry class table skips every byte that cannot start a value
//! (lowercase letters, spaces, most punctuation) and sends the rest to a handler: digits to the
//! number shapes, `@` to e-mail, `:` to URLs and IPv6, `(` and `+` to phones, `-` `_` `.` to key
//! prefixes, uppercase letters to names, IBANs, VINs, AWS keys and IDs. Each handler looks at a
//! bounded neighbourhood (context words: the 40 bytes before a value, through one small
//! Aho-Corasick automaton) and returns a position past what it consumed, so the walk is linear
//! on any input. Checksums (Luhn, mod-97, ABA, VIN, NPI, SSN rules) reject look-alikes.

use std::net::Ipv6Addr;

use super::words::{
    cjk_cue_end, cjk_region_end, last_two, words, Ctx, CueKind, Words, CJK_SURNAMES,
    KOREAN_SURNAMES,
};

/// What introduces a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cue {
    /// `Dr.`, `Frau`, `Mme`
    Title,
    /// a label or field before `:` or `=` (`Name:`, `Patient:`): `Last, First` may follow
    Form,
    /// a phrase, a label without `:`, or a closing line
    Phrase,
    /// a saint's or a place's prefix (`San`, `São`, `St.`, `Fort`, `Lake`): what follows is a
    /// place, not a name
    Place,
}
use super::{EntityType, Finding};

const DIGIT: u8 = 1;
const UPPER: u8 = 2;
const AT: u8 = 3;
const COLON: u8 = 4;
const DOT: u8 = 5;
const DASH: u8 = 6;
const UNDERSCORE: u8 = 7;
const PLUS: u8 = 8;
const LPAREN: u8 = 9;
/// Lead bytes of Latin letters outside ASCII (À–ÿ, Ā–ž): names such as Álvarez or Øster.
const LATIN: u8 = 10;
/// Lead bytes of kana, Han and Hangul characters (U+3000–U+D7FF): names after a Chinese,
/// Japanese or Korean cue, Chinese and Japanese addresses.
const CJK: u8 = 11;

#[allow(clippy::indexing_slicing)]
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = match c as u8 {
            b'0'..=b'9' => DIGIT,
            b'A'..=b'Z' => UPPER,
            b'@' => AT,
            b':' => COLON,
            b'.' => DOT,
            b'-' => DASH,
            b'_' => UNDERSCORE,
            b'+' => PLUS,
            b'(' => LPAREN,
            // Cyrillic: every capital (А–Я, Ё) starts with 0xD0
            0xC3..=0xC5 | 0xD0 => LATIN,
            // kana and Han (0xE3–0xE9), Hangul syllables (0xEA–0xED)
            0xE3..=0xED => CJK,
            _ => 0,
        };
        c += 1;
    }
    t
};

/// How far back context words are looked for.
const CONTEXT_WINDOW: usize = 40;

/// How far back any look at the text before a position goes (street names before a number,
/// a month before a day, an e-mail's local part): detection at a position depends on at most
/// this many bytes before it, which is what lets the stream redactor rescan a bounded window.
pub const LOOK_BACK: usize = 64;

/// The longest private-key body the scan reads after its header line (the end marker must lie
/// within it).
const PRIVATE_KEY_BODY: usize = 16_384;

/// The longest segment of a JWT.
const JWT_SEGMENT: usize = 8192;

/// The longest value the built-in scan reports: a JWT of three longest segments (a private-key
/// block, header, body and end marker, is shorter: about 16.5 KiB; a URL at most 2 KiB plus its
/// scheme; everything else a few hundred bytes).
pub const LONGEST_VALUE: usize = 3 * JWT_SEGMENT + 2;

#[inline]
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

#[inline]
fn class(c: u8) -> u8 {
    CLASS.get(usize::from(c)).copied().unwrap_or(0)
}

#[inline]
fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

/// ASCII punctuation that the scan reads no value across: after one, the text reads like the
/// start of the text (the stream redactor may start a rescan at one, see
/// `redact::is_separator`).
fn separator(c: u8) -> bool {
    matches!(
        c,
        b',' | b';'
            | b'!'
            | b'?'
            | b'"'
            | b'\''
            | b'('
            | b')'
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'<'
            | b'>'
            | b'='
            | b'*'
            | b'&'
            | b'|'
            | b'~'
            | b'^'
            | b'$'
            | b'#'
            | b'/'
    )
}

/// The end of the hyphenated token at `i` (`1EG4-TE5-MK73`): letters and digits, and single
/// dashes between them. A run of dashes ends it, so a token never swallows the `-----BEGIN` of a
/// private key glued to it.
fn id_run(b: &[u8], i: usize) -> usize {
    let mut j = i;
    while j < b.len() && (alnum(at(b, j)) || (at(b, j) == b'-' && alnum(at(b, j + 1)))) {
        j += 1;
    }
    j
}

/// A byte of a word in a script with spaces: ASCII letters and digits, the two-byte letters of
/// Latin, Greek, Cyrillic and the scripts after them (and the three-byte ones starting 0xE0 and
/// 0xE1: Indic scripts, Latin Extended Additional), with their continuation bytes. Not general
/// punctuation, CJK or full-width forms: a word glued to those ends there, so skipping it never
/// hides a value after it.
#[inline]
fn word_byte(c: u8) -> bool {
    alnum(c) || matches!(c, 0x80..=0xBF | 0xC2..=0xE1)
}

/// A letter of an alphabetic script outside ASCII (Latin, Greek, Cyrillic, Armenian, Latin
/// Extended Additional): part of a word such as `müller`. CJK and other scripts without spaces
/// are not, so `邮箱是a@b.cn` starts the address at `a`.
fn script_letter(c: char) -> bool {
    !c.is_ascii()
        && c.is_alphabetic()
        && (u32::from(c) < 0x0590 || (0x1E00..0x1F00).contains(&u32::from(c)))
}

/// A character of a script written without spaces between words (kana, Han, Hangul) or a
/// full-width form (`：`, `１`).
fn cjk_letter(c: char) -> bool {
    ('\u{3040}'..='\u{9FFF}').contains(&c)
        || ('\u{AC00}'..='\u{D7A3}').contains(&c)
        || ('\u{FF00}'..='\u{FFEF}').contains(&c)
}

/// A field name ending in a secret's word after a separator or a known prefix
/// (`stripe_secret_key`, `x-auth-token`, `client_secret`, `apikey`, `accesstoken`), lowercase.
fn secret_name(w: &str) -> bool {
    // most words end otherwise: look at the last letter first
    if w.len() <= 3
        || !matches!(w.as_bytes().last(), Some(b'y' | b't' | b'n' | b'd' | b'l'))
        || !w.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'.')
        })
    {
        return false;
    }
    [
        "key",
        "secret",
        "token",
        "password",
        "passwd",
        "pwd",
        "credential",
    ]
    .iter()
    .any(|s| {
        let Some(head) = w.strip_suffix(s) else {
            return false;
        };
        head.ends_with(['_', '-', '.'])
            || [
                "api",
                "auth",
                "access",
                "secret",
                "private",
                "client",
                "session",
                "refresh",
                "bearer",
                "master",
                "signing",
                "encryption",
                "app",
                "db",
            ]
            .iter()
            .any(|p| head.ends_with(p))
    })
}

/// A character of an e-mail local part.
fn local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-') || script_letter(c)
}

/// A character of a domain label (not the dot).
fn domain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || script_letter(c)
}

fn run(b: &[u8], from: usize, max: usize, pred: impl Fn(u8) -> bool) -> usize {
    let mut j = from;
    while j < b.len() && j - from < max && pred(at(b, j)) {
        j += 1;
    }
    j
}

/// The digits of `b[s..e]` as values, on the stack. Every shape checked here has at most 19
/// digits; longer runs keep their count but only their first 32 digits.
struct Digits {
    buf: [u8; 32],
    len: usize,
    count: usize,
}

impl std::ops::Deref for Digits {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        if self.count > self.len {
            // longer than any shape: report no digits rather than a truncated number
            return &[];
        }
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

fn digits_of(b: &[u8], s: usize, e: usize) -> Digits {
    let mut d = Digits {
        buf: [0; 32],
        len: 0,
        count: 0,
    };
    for &c in b.get(s..e).unwrap_or(&[]) {
        if c.is_ascii_digit() {
            if let Some(slot) = d.buf.get_mut(d.len) {
                *slot = c - b'0';
                d.len += 1;
            }
            d.count += 1;
        }
    }
    d
}

/// Lowercases `word` into `buf` without allocating: ASCII letters and the Latin-1 capitals
/// (`À`–`Þ` except `×`, as in `Ég`, `Über`); other bytes kept.
fn lower<'a>(word: &str, buf: &'a mut [u8; 32]) -> &'a str {
    let n = word.len().min(32);
    let src = word.as_bytes().get(..n).unwrap_or(&[]);
    let mut prev = 0u8;
    for (k, (d, &s)) in buf.iter_mut().zip(src).enumerate() {
        *d = if s < 0x80 {
            s.to_ascii_lowercase()
        } else {
            match (prev, s) {
                // Latin-1 capitals
                (0xC3, 0x80..=0x9E) if s != 0x97 => s + 0x20,
                // Cyrillic А–П → а–п, Р–Я → р–я (0xD0 0xA0.. → 0xD1 0x80..), Ё → ё
                (0xD0, 0x90..=0x9F) => s + 0x20,
                (0xD0, 0xA0..=0xAF) => s - 0x20,
                (0xD0, 0x81) => 0x91,
                (_, 0xD0)
                    if src
                        .get(k + 1)
                        .is_some_and(|&x| (0xA0..=0xAF).contains(&x) || x == 0x81) =>
                {
                    0xD1
                }
                _ => s,
            }
        };
        prev = s;
    }
    std::str::from_utf8(buf.get(..n).unwrap_or(&[])).unwrap_or("")
}

/// Whether `word` ends with `suffix`, ASCII case-insensitively.
fn ends_with_ci(word: &[u8], suffix: &[u8]) -> bool {
    word.len() >= suffix.len()
        && word
            .get(word.len() - suffix.len()..)
            .is_some_and(|t| t.eq_ignore_ascii_case(suffix))
}

fn number(d: &[u8]) -> u64 {
    d.iter().take(18).fold(0u64, |a, &x| a * 10 + u64::from(x))
}

/// Luhn checksum over digits.
pub fn luhn_digits(d: &[u8]) -> bool {
    if d.len() < 2 {
        return false;
    }
    let mut sum = 0u32;
    for (i, &x) in d.iter().rev().enumerate() {
        let mut v = u32::from(x);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Whether 13 digits carry an EAN-13 (GTIN-13) check digit: weights 1 and 3 from the left.
fn ean13_ok(d: &[u8]) -> bool {
    if d.len() != 13 {
        return false;
    }
    let sum: u32 = d
        .iter()
        .take(12)
        .enumerate()
        .map(|(i, &x)| u32::from(x) * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    d.get(12)
        .is_some_and(|&c| (10 - sum % 10) % 10 == u32::from(c))
}

/// A dotted version (`3.11.6`, `3.5.0.0`): three parts of one to three digits, one of them a
/// single digit (so `12.05.23`, a date, is none), or four parts all of one digit or ending in
/// `.0` (a network's address, not a host's).
fn version_shape(t: &[u8]) -> bool {
    let mut parts = [0usize; 5];
    let mut n = 0;
    for part in t.split(|&c| c == b'.') {
        if part.is_empty() || part.len() > 3 || n == 5 {
            return false;
        }
        if let Some(slot) = parts.get_mut(n) {
            *slot = part.len();
        }
        n += 1;
    }
    let parts = parts.get(..n).unwrap_or(&[]);
    match n {
        3 => parts.contains(&1),
        4 => parts.iter().all(|&l| l == 1) || t.ends_with(b".0"),
        _ => false,
    }
}

fn card_iin(d: &[u8]) -> bool {
    let p = |n: usize| number(d.get(..n).unwrap_or(&[]));
    let (p1, p2, p3, p4) = (p(1), p(2), p(3), p(4));
    p1 == 4
        || (51..=55).contains(&p2)
        || (2221..=2720).contains(&p4)
        || p2 == 34
        || p2 == 37
        || p4 == 6011
        || (644..=649).contains(&p3)
        || p2 == 65
        || (3528..=3589).contains(&p4)
        || p2 == 36
        || p2 == 38
        || (300..=305).contains(&p3)
        || p2 == 62
}

/// Card numbers outside the usual 13–19 digits by their first digits: 12-digit Maestro (the
/// ranges its issuers printed 12-digit cards in) and the 15-digit JCB of 1800 and 2131.
fn rare_card_iin(d: &[u8]) -> bool {
    let p4 = number(d.get(..4).unwrap_or(&[]));
    match d.len() {
        12 => matches!(
            p4,
            5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761 | 6762 | 6763
        ),
        15 => matches!(p4, 1800 | 2131),
        16 => (2200..=2204).contains(&p4), // Mir
        _ => false,
    }
}

fn card_ok(d: &[u8]) -> bool {
    ((13..=19).contains(&d.len()) && card_iin(d) || rare_card_iin(d)) && luhn_digits(d)
}

fn ssn_ok(d: &[u8]) -> bool {
    if d.len() != 9 {
        return false;
    }
    let area = number(d.get(..3).unwrap_or(&[]));
    let group = number(d.get(3..5).unwrap_or(&[]));
    let serial = number(d.get(5..).unwrap_or(&[]));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

fn itin_ok(d: &[u8]) -> bool {
    if d.len() != 9 || d.first() != Some(&9) {
        return false;
    }
    let group = number(d.get(3..5).unwrap_or(&[]));
    matches!(group, 50..=65 | 70..=88 | 90..=92 | 94..=99)
}

fn aba_ok(d: &[u8]) -> bool {
    if d.len() != 9 {
        return false;
    }
    let w = [3u32, 7, 1, 3, 7, 1, 3, 7, 1];
    let sum: u32 = d.iter().zip(w).map(|(&x, w)| u32::from(x) * w).sum();
    sum.is_multiple_of(10) && sum > 0
}

fn npi_ok(d: &[u8]) -> bool {
    if d.len() != 10 || !matches!(d.first(), Some(1 | 2)) {
        return false;
    }
    let mut full = vec![8, 0, 8, 4, 0];
    full.extend_from_slice(d);
    luhn_digits(&full)
}

fn nanp_ok(d: &[u8]) -> bool {
    let d = if d.len() == 11 && d.first() == Some(&1) {
        d.get(1..).unwrap_or(&[])
    } else {
        d
    };
    d.len() == 10
        && d.first().is_some_and(|&x| x >= 2)
        && d.get(3).is_some_and(|&x| x >= 2)
        && !(d.get(1) == Some(&9) && d.get(2) == Some(&9))
}

/// IBAN lengths by country (the SWIFT registry's countries).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
];

/// Whole-text check: an IBAN (spaces ignored) of its country's length with a valid mod-97
/// checksum.
pub fn iban_ok(s: &[u8]) -> bool {
    let compact: Vec<u8> = s.iter().copied().filter(|b| *b != b' ').collect();
    let country = compact.get(..2).unwrap_or(&[]);
    let Some(&(_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| c.as_slice() == country) else {
        return false;
    };
    if compact.len() != len {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem = 0u32;
    for &c in tail.iter().chain(head) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn vin_value(c: u8) -> Option<u32> {
    Some(match c {
        b'0'..=b'9' => u32::from(c - b'0'),
        b'A'..=b'H' => u32::from(c - b'A') + 1,
        b'J'..=b'N' => u32::from(c - b'J') + 1,
        b'P' => 7,
        b'R' => 9,
        b'S'..=b'Z' => u32::from(c - b'S') + 2,
        _ => return None,
    })
}

fn vin_ok(s: &[u8]) -> bool {
    if s.len() != 17 || !s.iter().any(u8::is_ascii_digit) || !s.iter().any(u8::is_ascii_uppercase) {
        return false;
    }
    let w = [8u32, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    let mut sum = 0;
    for (&c, w) in s.iter().zip(w) {
        let Some(v) = vin_value(c) else { return false };
        sum += v * w;
    }
    let check = sum % 11;
    let expect = if check == 10 {
        b'X'
    } else {
        b'0' + u8::try_from(check).unwrap_or(0)
    };
    s.get(8) == Some(&expect)
}

/// Vendors' key prefixes and the shortest body after each.
const VENDOR_KEYS: &[(&[u8], usize)] = &[
    (b"sk_live_", 16),
    (b"sk_test_", 16),
    (b"rk_live_", 16),
    (b"rk_test_", 16),
    (b"whsec_", 24),
    (b"hf_", 30),
    (b"npm_", 36),
    (b"shpat_", 32),
    (b"shpss_", 32),
    (b"shpca_", 32),
    (b"dop_v1_", 64),
];

/// Whether a token looks random rather than like words or an identifier (see
/// [`Run::secret`]).
fn looks_random(t: &[u8]) -> bool {
    let class = |c: u8| match c {
        b'a'..=b'z' => 0u8,
        b'A'..=b'Z' => 1,
        b'0'..=b'9' => 2,
        _ => 3,
    };
    let digits = t.iter().filter(|c| c.is_ascii_digit()).count();
    let letters = t.iter().filter(|c| c.is_ascii_alphabetic()).count();
    if digits == 0 || letters < 4 {
        return false;
    }
    let (mut changes, mut run_len, mut longest) = (0usize, 0usize, 0usize);
    let mut prev = 9u8;
    for &c in t {
        let k = class(c);
        if k == prev {
            run_len += 1;
        } else {
            changes += 1;
            run_len = 1;
        }
        if k < 2 {
            longest = longest.max(run_len);
        }
        prev = k;
    }
    changes * 5 >= t.len() && longest < 8
}

/// The four-digit year that ends at `ye`.
fn year_of(b: &[u8], ye: usize) -> u32 {
    u32::try_from(number(&digits_of(b, ye.saturating_sub(4), ye))).unwrap_or(0)
}

/// An ordinal suffix after a day at `e` (`4th`, `1st`, `22nd`, French `1er`): where it ends.
fn ordinal_at(b: &[u8], e: usize) -> Option<usize> {
    let two = b.get(e..e + 2)?;
    (matches!(two, b"st" | b"nd" | b"rd" | b"th" | b"er") && !alnum(at(b, e + 2))).then_some(e + 2)
}

/// The entity type a context gives an identifier of letters and digits, or a number printed
/// in groups.
fn typed_id(c: Ctx) -> Option<EntityType> {
    Some(match c {
        Ctx::Mrn => EntityType::MedicalRecordNumber,
        Ctx::HealthPlan => EntityType::HealthPlanId,
        Ctx::Account => EntityType::AccountNumber,
        Ctx::Bank => EntityType::BankAccount,
        Ctx::DriverLicense => EntityType::UsDriverLicense,
        Ctx::License => EntityType::LicenseNumber,
        Ctx::Passport => EntityType::UsPassport,
        Ctx::Device => EntityType::DeviceId,
        Ctx::Plate | Ctx::Vin => EntityType::VehicleId,
        _ => return None,
    })
}

fn valid_date(y: u32, m: u32, d: u32) -> bool {
    (1..=12).contains(&m) && (1..=31).contains(&d) && (1900..=2099).contains(&y)
}

/// A Hangul syllable.
fn hangul(c: char) -> bool {
    ('\u{AC00}'..='\u{D7A3}').contains(&c)
}

/// Canadian provinces and territories.
const PROVINCES: &[&str] = &[
    "ON", "QC", "BC", "AB", "MB", "SK", "NS", "NB", "NL", "PE", "YT", "NT", "NU",
];

/// A Canadian postal code at `k` (`M5H 2N2`): where it ends.
fn canadian_postcode(b: &[u8], k: usize) -> Option<usize> {
    let l = |i: usize| at(b, k + i).is_ascii_uppercase();
    let d = |i: usize| at(b, k + i).is_ascii_digit();
    (l(0) && d(1) && l(2) && at(b, k + 3) == b' ' && d(4) && l(5) && d(6) && !alnum(at(b, k + 7)))
        .then_some(k + 7)
}

/// A British postcode at `k` (`LS6 2AA`, `SW1A 1AA`, `M1 1AE`): where it ends.
fn uk_postcode(b: &[u8], k: usize) -> Option<usize> {
    let letters = run(b, k, 3, |c| c.is_ascii_uppercase());
    if !(1..=2).contains(&(letters - k)) {
        return None;
    }
    let digits = run(b, letters, 3, |c| c.is_ascii_digit());
    if !(1..=2).contains(&(digits - letters)) {
        return None;
    }
    let outward = if at(b, digits).is_ascii_uppercase() {
        digits + 1
    } else {
        digits
    };
    let i = outward + 1;
    (at(b, outward) == b' '
        && at(b, i).is_ascii_digit()
        && at(b, i + 1).is_ascii_uppercase()
        && at(b, i + 2).is_ascii_uppercase()
        && !alnum(at(b, i + 3)))
    .then_some(i + 3)
}

/// Scans text for a fixed set of entity types.
#[derive(Debug, Clone)]
pub(crate) struct Scanner {
    on: u64,
}

fn bit(e: EntityType) -> u64 {
    1u64 << (e as u32)
}

struct Run<'a> {
    b: &'a [u8],
    text: &'a str,
    w: &'static Words,
    on: u64,
    out: &'a mut Vec<Finding>,
    /// End of the last finding: the scan treats it like the start of the text (nothing looks
    /// back across it), so text around a value reads the same before and after redaction.
    last_end: usize,
    /// End of the last token checked as a secret ([`Run::secret`]): later triggers inside it
    /// are not checked again, so a long token costs one check.
    secret_until: usize,
    /// End of the last run of numbers read past its first group (a value, or a whole that is
    /// none: a version, a date without context, a number too long for any value): a group after
    /// it starts a run of its own ([`Run::digit`]).
    number_end: usize,
}

impl Scanner {
    pub(crate) fn new(entities: &[EntityType]) -> Self {
        Scanner {
            on: entities.iter().fold(0, |a, &e| a | bit(e)),
        }
    }

    /// The start of a value that may still be growing at the end of `text` but that
    /// [`scan`](Self::scan) does not report yet, or not whole: a private-key block whose header
    /// is seen and whose end marker is not (while the block may still end within its limit),
    /// or a JWT whose third segment has not reached five characters. Every other value is
    /// reported, as far as it goes, once 512 bytes past its start are seen.
    pub(crate) fn unfinished(&self, text: &str) -> Option<usize> {
        let b = text.as_bytes();
        let mut from = None;
        if self.on & bit(EntityType::PrivateKey) != 0 {
            // the first block opened after the last end marker (a block before it reaches that
            // marker in the whole text's reading, a block after it may still grow: its body is
            // read up to the next end marker, past other headers)
            let after = text.rfind("-----END ").map_or(0, |q| q + 1);
            if let Some(p) = text
                .get(after..)
                .and_then(|t| t.find("-----BEGIN "))
                .map(|q| after + q)
            {
                // header line, body, end marker and its line
                if b.len() - p <= 11 + 60 + PRIVATE_KEY_BODY + 9 + 60 {
                    from = Some(p);
                }
            }
        }
        if self.on & bit(EntityType::Jwt) != 0 {
            // the run of JWT characters the text ends with: a JWT starts at the start of one
            let jwt_char = |c: u8| alnum(c) || matches!(c, b'_' | b'-' | b'.');
            let mut s = b.len();
            while s > 0 && jwt_char(at(b, s - 1)) && b.len() - s <= LONGEST_VALUE {
                s -= 1;
            }
            let run = b.get(s..).unwrap_or(&[]);
            if run.starts_with(b"eyJ") && !(s > 0 && jwt_char(at(b, s - 1))) {
                // `header.payload.signature`, each part 5 to JWT_SEGMENT long and the payload
                // starting `eyJ`: open while the parts seen so far still fit, and the
                // signature (which makes it a finding at five characters) is not there yet
                let parts: Vec<&[u8]> = run.split(|&c| c == b'.').collect();
                let whole = |p: &[u8]| (5..=JWT_SEGMENT).contains(&p.len());
                let payload_ok = |p: &[u8]| {
                    let n = p.len().min(3);
                    p.get(..n) == b"eyJ".get(..n)
                };
                let open = match parts.as_slice() {
                    [header] => header.len() <= JWT_SEGMENT,
                    [header, payload] => {
                        whole(header) && payload.len() <= JWT_SEGMENT && payload_ok(payload)
                    }
                    [header, payload, signature] => {
                        whole(header)
                            && whole(payload)
                            && payload_ok(payload)
                            && signature.len() < 5
                    }
                    _ => false,
                };
                if open {
                    from = Some(from.map_or(s, |f: usize| f.min(s)));
                }
            }
        }
        from
    }

    pub(crate) fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        let Some(w) = words() else { return };
        let b = text.as_bytes();
        let mut r = Run {
            b,
            text,
            w,
            on: self.on,
            out,
            last_end: 0,
            secret_until: 0,
            number_end: 0,
        };
        let mut i = 0;
        let n = b.len();
        while i < n {
            // skip everything that cannot start a value
            match b
                .get(i..)
                .and_then(|rest| rest.iter().position(|&c| class(c) != 0))
            {
                Some(k) => i += k,
                None => break,
            }
            let next = match class(at(b, i)) {
                DIGIT => r.digit(i),
                UPPER => r.upper(i),
                AT => r.email(i),
                COLON => r.colon(i),
                DOT => r.dot(i),
                DASH => r.dash(i),
                UNDERSCORE => r.underscore(i),
                PLUS => r.plus(i),
                LPAREN => r.paren(i),
                LATIN => r.latin(i),
                CJK => r.cjk(i),
                _ => i + 1,
            };
            i = next.max(i + 1);
        }
    }
}

impl Run<'_> {
    fn on(&self, e: EntityType) -> bool {
        self.on & bit(e) != 0
    }

    fn push(&mut self, e: EntityType, start: usize, end: usize, confidence: u8) {
        if self.on(e)
            && start < end
            && self.text.is_char_boundary(start)
            && self.text.is_char_boundary(end)
        {
            self.out.push(Finding {
                entity: e,
                start,
                end,
                confidence,
                custom: None,
            });
            self.last_end = self.last_end.max(end);
        }
    }

    /// The byte before `i`, or 0 at the start of the text or right after a finding.
    #[inline]
    fn before(&self, i: usize) -> u8 {
        if i <= self.last_end {
            0
        } else {
            at(self.b, i - 1)
        }
    }

    /// Whether `i` starts a token: the byte before is not an ASCII letter or digit.
    #[inline]
    fn starts(&self, i: usize) -> bool {
        !alnum(self.before(i))
    }

    /// The nearest context phrase ending in the 40 characters before `start` (at most
    /// [`LOOK_BACK`] bytes). Walks back word by word (words are runs of non-space, trimmed of
    /// punctuation at either end) and stops at the first phrase found, so the usual case —
    /// `SSN 123-45-6789` — costs one lookup. It gives up at a word holding a digit or a
    /// redaction marker unless the word is a phrase itself (`I-9`): that is another value,
    /// which the context words before it describe. Chinese, Japanese and Korean phrases, written
    /// without a space before the value, are matched as the characters that end the text
    /// before it ([`Run::cjk_context`]).
    fn context(&self, start: usize) -> Option<Ctx> {
        self.context_where(start, |_| true)
    }

    /// [`context`](Self::context), skipping phrases that `fits` rejects (a date's context walks
    /// past `card` in `Date of birth (as on the card): …`); a negative phrase always counts.
    fn context_where(&self, start: usize, fits: impl Fn(Ctx) -> bool) -> Option<Ctx> {
        let b = self.b;
        let mut floor = start.saturating_sub(LOOK_BACK).max(self.last_end);
        let ok = |c: Ctx| c == Ctx::Negative || fits(c);
        let mut j = start;
        while j > floor
            && start - j < 4
            && matches!(at(b, j - 1), b' ' | b':' | b'#' | b'=' | b'(' | b'"')
        {
            j -= 1;
        }
        if j > floor && at(b, j - 1) >= 0x80 {
            if let Some(c) = self.cjk_context(floor, start) {
                if ok(c) {
                    return Some(c);
                }
            }
        }
        // the window counts characters: 40 bytes of ASCII, fewer bytes of other scripts
        let near = start.saturating_sub(CONTEXT_WINDOW);
        let in_window = |k: usize| {
            k >= near
                || b.get(k..start).is_some_and(|w| {
                    w.iter().filter(|&&c| !(0x80..0xC0).contains(&c)).count() <= CONTEXT_WINDOW
                })
        };
        let trim = |c: u8| {
            matches!(
                c,
                b':' | b','
                    | b';'
                    | b'.'
                    | b'#'
                    | b'('
                    | b')'
                    | b'"'
                    | b'\''
                    | b'['
                    | b']'
                    | b'='
                    | b'-'
                    | b'*'
                    | b'|'
            )
        };
        let mut k = start;
        for _ in 0..8 {
            while k > floor && at(b, k - 1).is_ascii_whitespace() {
                k -= 1;
            }
            if k <= floor {
                break;
            }
            let we = k;
            while k > floor && !at(b, k - 1).is_ascii_whitespace() {
                k -= 1;
            }
            // a redaction marker (`[URL]`, `****`) is another value: nothing before it counts,
            // and a word glued after it (`[URL]"Authorization:`) is read from the marker's end,
            // as the same word glued to the finding is before redaction
            let word = b.get(k..we).unwrap_or(&[]);
            if word.iter().any(|&c| c == b'[' || c == b'*') {
                match word.iter().rposition(|&c| c == b']' || c == b'*') {
                    Some(m) if k + m + 1 < we => {
                        k += m + 1;
                        floor = k;
                    }
                    _ => return None,
                }
            }
            if k == floor {
                // a word that reaches the floor (the text's start, a finding's end or the
                // look-back's limit) is read from after its last separator (`-H"Authorization:`):
                // the text after one reads like the start of the text, as a stream's rescan
                // starting there reads it; without one, a word cut by the look-back is unknown
                let (mut s2, mut e2) = (k, we);
                while s2 < e2 && trim(at(b, s2)) {
                    s2 += 1;
                }
                while e2 > s2 && trim(at(b, e2 - 1)) {
                    e2 -= 1;
                }
                if let Some(p) = b
                    .get(s2..e2)
                    .and_then(|w| w.iter().rposition(|&c| separator(c)))
                {
                    k = s2 + p + 1;
                    floor = k;
                } else if floor > 0
                    && floor != self.last_end
                    && !at(b, k - 1).is_ascii_whitespace()
                    && !separator(at(b, k - 1))
                {
                    break;
                }
            }
            // the window counts characters from the word's start (after a separator, when the
            // word reached the floor: a rescan starting at the separator reads it so)
            if !in_window(k) {
                break;
            }
            let (mut s2, mut e2) = (k, we);
            while s2 < e2 && trim(at(b, s2)) {
                s2 += 1;
            }
            while e2 > s2 && trim(at(b, e2 - 1)) {
                e2 -= 1;
            }
            // another value (a number, an ID) stands between: the context words before it belong
            // to it, not to this one — unless the word is a phrase
            let valued = b.get(k..we).unwrap_or(&[]).iter().any(u8::is_ascii_digit);
            if s2 == e2 || e2 - s2 > 32 {
                if valued {
                    return None;
                }
                continue;
            }
            let mut buf = [0u8; 32];
            let last = lower(self.word_at(s2, e2), &mut buf);
            // an elided article or preposition (`d'immatriculation`, `l’adhérent`)
            let phrases = self.w.context.get(last).or_else(|| {
                let (_, rest) = last.split_once(['\'', '’'])?;
                (last.len() - rest.len() <= 5)
                    .then(|| self.w.context.get(rest))
                    .flatten()
            });
            let Some(phrases) = phrases else {
                if valued {
                    return None;
                }
                // `STRIPE_SECRET_KEY=`, `apiKey:`, `x-auth-token`: a name ending in a secret's
                // word
                if secret_name(last) && ok(Ctx::Secret) {
                    return Some(Ctx::Secret);
                }
                continue;
            };
            'phrases: for (earlier, kind) in phrases {
                if valued && !earlier.is_empty() {
                    continue;
                }
                // earlier words precede, nearest last: check them walking further back
                let mut kk = k;
                for want in earlier.iter().rev() {
                    while kk > floor && at(b, kk - 1).is_ascii_whitespace() {
                        kk -= 1;
                    }
                    let pe = kk;
                    while kk > floor && !at(b, kk - 1).is_ascii_whitespace() {
                        kk -= 1;
                    }
                    let mut pb = [0u8; 32];
                    if pe == kk || pe - kk > 32 || lower(self.word_at(kk, pe), &mut pb) != *want {
                        continue 'phrases;
                    }
                }
                if ok(*kind) {
                    return Some(*kind);
                }
            }
            if valued {
                return None;
            }
        }
        None
    }

    /// A Chinese, Japanese or Korean context phrase that ends the text before `start` (after
    /// spaces, colons, `是`, `为`, `は`, `が` and Korean particles), or an ASCII name glued to `号`
    /// or `番号` (`IMEI号：`).
    fn cjk_context(&self, floor: usize, start: usize) -> Option<Ctx> {
        // the look-back's limit may fall inside a character: read from the next one
        let mut floor = floor;
        while floor < start && !self.text.is_char_boundary(floor) {
            floor += 1;
        }
        let mut t = self.text.get(floor..start)?;
        for _ in 0..3 {
            let cut = t.trim_end_matches(|c: char| {
                c.is_ascii_whitespace()
                    || matches!(
                        c,
                        ':' | '：'
                            | '#'
                            | '＃'
                            | '='
                            | '＝'
                            | '('
                            | '（'
                            | '「'
                            | '"'
                            | '是'
                            | '为'
                            | '為'
                            | 'は'
                            | 'が'
                            | '、'
                            | '，'
                    )
            });
            if cut.len() == t.len() {
                break;
            }
            t = cut;
        }
        let last = t.chars().next_back()?;
        if !cjk_letter(last) {
            return None;
        }
        let found = |t: &str| {
            self.w
                .cjk_context
                .get(last_two(t))?
                .iter()
                .find(|(p, _)| t.ends_with(p))
                .map(|&(_, c)| c)
        };
        if let Some(c) = found(t) {
            return Some(c);
        }
        // a Korean particle written onto the phrase (`전화번호는`)
        if let Some(rest) = ['는', '은', '이', '가', '요']
            .iter()
            .find_map(|&p| t.strip_suffix(p))
        {
            if let Some(c) = found(rest) {
                return Some(c);
            }
        }
        // `IMEI号`, `SSN番号`: the ASCII word before the counter
        let rest = ["番号", "号码", "號碼", "号", "號", "번호"]
            .iter()
            .find_map(|&p| t.strip_suffix(p))?;
        let ws = rest
            .bytes()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == b'-')
            .count();
        let word = rest.get(rest.len() - ws..)?;
        let mut buf = [0u8; 32];
        let w = lower(word, &mut buf);
        self.w
            .context
            .get(w)?
            .iter()
            .find(|(earlier, _)| earlier.is_empty())
            .map(|&(_, c)| c)
    }

    fn word_at(&self, s: usize, e: usize) -> &str {
        self.text.get(s..e).unwrap_or("")
    }

    // ---------- numbers ----------

    /// A token starting with a digit at `i`: where the scan goes on.
    ///
    /// A run of numbers joined by separators (`05 05 05 …`, `0612 345 678 0612-345-678`) is read
    /// from its first group only: a group inside it is never the start of a value. Were it one,
    /// redacting that value would leave the groups before it as a shorter run of their own,
    /// which the next scan could read as another value (redaction would not be idempotent). A
    /// run starts at a group with no number right before it, or right after a finding or a run
    /// read past its first group.
    fn digit(&mut self, i: usize) -> usize {
        let b = self.b;
        if !self.starts(i) {
            return self.inside_token(i);
        }
        let first_e = run(b, i, 64, |c| c.is_ascii_digit());
        if i >= 2
            && i - 2 >= self.last_end.max(self.number_end)
            && matches!(at(b, i - 1), b'-' | b'.' | b' ' | b'/')
            && at(b, i - 2).is_ascii_digit()
        {
            return first_e;
        }
        let e = self.number_at(i);
        if e > first_e {
            self.number_end = self.number_end.max(e);
        }
        e
    }

    fn number_at(&mut self, i: usize) -> usize {
        let b = self.b;
        // MAC addresses: `00:1A:2B:3C:4D:5E`, `3c-22-fb-91-0a-7e`, `001a.2b3c.4d5e`
        if matches!(at(b, i + 2), b':' | b'-') || at(b, i + 4) == b'.' {
            if let Some(e) = self.mac(i) {
                return e;
            }
        }
        // groups of digits joined by one kind of separator
        let mut store = [(0usize, 0usize); 8];
        let mut count = 0;
        let mut sep = 0u8;
        let mut j = i;
        loop {
            let e = run(b, j, 64, |c| c.is_ascii_digit());
            if let Some(slot) = store.get_mut(count) {
                *slot = (j, e);
                count += 1;
            }
            if let Some(c) = self.next_group(e).filter(|_| count < 8) {
                if sep == 0 {
                    sep = c;
                } else if sep != c {
                    break;
                }
                j = e + 1;
            } else {
                break;
            }
        }
        let groups = store.get(..count).unwrap_or(&[]);
        let (first_s, first_e) = groups.first().copied().unwrap_or((i, i + 1));
        let end = groups.last().map_or(first_e, |g| g.1);
        let tail = at(b, end);
        if groups.len() == 1 && tail >= 0x80 {
            // `1985年7月6日`, `1990년 3월 15일`
            if let Some(e) = self.cjk_date(first_s, first_e) {
                return e;
            }
        }
        if tail.is_ascii_alphabetic() || (tail == b'-' && alnum(at(b, end + 1))) {
            // a phone with its extension or a label glued to it (`650-752-7354x549`,
            // `781-618-4959-Fax`)
            if groups.len() >= 2 && self.phone_suffix(end).is_some() {
                if let Some(e) = self.grouped(groups, sep) {
                    return e;
                }
            }
            // an ordinal day (`4th July 1976`, `July 4th, 1976`)
            if groups.len() == 1 && first_e - first_s <= 2 && ordinal_at(b, first_e).is_some() {
                if let Some(e) = self.month_date(first_s, first_e) {
                    return e;
                }
            }
            // a mixed token such as 7ABC123, 1EG4-TE5-MK73, 12a, 5th
            if let Some(e) = self.german_address(i) {
                return e;
            }
            if let Some(e) = self.id_token(i) {
                return e;
            }
            if let Some(e) = self.mbi(i) {
                return e;
            }
            if let Some(e) = self.address(i, first_e) {
                return e;
            }
            if let Some(e) = self.secret(i) {
                return e;
            }
            return id_run(b, i);
        }
        if groups.len() == 1 {
            if let Some(e) = self.spaced_date(first_s, first_e) {
                return e;
            }
            if let Some(e) = self.single_number(first_s, first_e) {
                return e;
            }
            if let Some(e) = self.mixed_phone(first_s) {
                return e;
            }
            return first_e;
        }
        if let Some(e) = self.grouped(groups, sep) {
            return e;
        }
        // separators of more than one kind (`070-123 45 67`, `021-6278 9900`)
        if let Some(e) = self.mixed_phone(first_s) {
            return e;
        }
        // nothing as a whole: the first group on its own
        if let Some(e) = self.single_number(first_s, first_e) {
            return e;
        }
        first_e
    }

    /// A digit inside a token. A token of one or two lowercase letters and digits may be a
    /// lower-case IBAN (`de89 3704…`), a licence typed by its context (`d123-4567-8901`) or a
    /// MAC address (`f4:5c:…`); any token may be a secret after a secret's context.
    fn inside_token(&mut self, i: usize) -> usize {
        let b = self.b;
        let mut p = i;
        while p > self.last_end && i - p < 3 && at(b, p - 1).is_ascii_lowercase() {
            p -= 1;
        }
        // IBANs, licences and MACs have four digits or more
        // (and a licence is short: a hash is not one)
        let many_digits = || {
            let e = id_run(b, p);
            e - p <= 20
                && b.get(p..e)
                    .is_some_and(|t| t.iter().filter(|c| c.is_ascii_digit()).count() >= 4)
        };
        if (1..=2).contains(&(i - p))
            && self.starts(p)
            && !matches!(
                self.before(p),
                b'_' | b'.' | b'-' | b'/' | b'@' | b'\\' | b'$'
            )
            && (matches!(at(b, p + 2), b':' | b'-')
                || (i - p == 2 && at(b, i + 1).is_ascii_digit())
                || many_digits())
        {
            if let Some(e) = self.mac(p) {
                return e;
            }
            if i - p == 2 && at(b, i + 1).is_ascii_digit() {
                if let Some(e) = self.iban(p) {
                    return e;
                }
            }
            if let Some(e) = self.id_token(p) {
                return e;
            }
        }
        if let Some(e) = self.secret(i) {
            return e;
        }
        run(b, i, usize::MAX, alnum)
    }

    /// A MAC address at `s` (six pairs of hex digits joined by `:` or `-`, or three quads joined
    /// by `.`), in one case: pushed; where it ends. A dashed or dotted run without a letter
    /// needs a device context (`12-34-56-78-90-12` may be anything).
    fn mac(&mut self, s: usize) -> Option<usize> {
        let b = self.b;
        if matches!(self.before(s), b':' | b'-' | b'.') || alnum(self.before(s)) {
            return None;
        }
        let hex = |k: usize| at(b, k).is_ascii_hexdigit();
        let sep = at(b, s + 2);
        let end = if matches!(sep, b':' | b'-')
            && (0..6).all(|g| {
                hex(s + 3 * g) && hex(s + 3 * g + 1) && (g == 5 || at(b, s + 3 * g + 2) == sep)
            }) {
            s + 17
        } else if (0..3)
            .all(|g| (0..4).all(|k| hex(s + 5 * g + k)) && (g == 2 || at(b, s + 5 * g + 4) == b'.'))
        {
            s + 14
        } else {
            return None;
        };
        let after = at(b, end);
        if alnum(after) || (matches!(after, b':' | b'-' | b'.') && hex(end + 1)) {
            return None;
        }
        let t = b.get(s..end)?;
        let (lower, upper) = (
            t.iter().any(u8::is_ascii_lowercase),
            t.iter().any(u8::is_ascii_uppercase),
        );
        if lower && upper {
            return None;
        }
        if !(lower || upper) {
            let zero = t.iter().all(|&c| matches!(c, b'0' | b':' | b'-' | b'.'));
            if zero || (sep != b':' || end == s + 14) && self.context(s) != Some(Ctx::Device) {
                return None;
            }
        }
        self.push(EntityType::DeviceId, s, end, 80);
        Some(end)
    }

    /// A Medicare Beneficiary Identifier in its printed form (`1EG4-TE5-MK73`): a digit 1–9,
    /// letters (not S, L, O, I, B or Z) and digits in their fixed positions, dashes after the
    /// fourth and seventh character. The shape is specific enough to need no context.
    fn mbi(&mut self, s: usize) -> Option<usize> {
        let b = self.b;
        let t = b.get(s..s + 13)?;
        if alnum(at(b, s + 13)) || at(b, s + 4) != b'-' || at(b, s + 8) != b'-' {
            return None;
        }
        let letter =
            |c: u8| c.is_ascii_uppercase() && !matches!(c, b'S' | b'L' | b'O' | b'I' | b'B' | b'Z');
        let digit = |c: u8| c.is_ascii_digit();
        let either = |c: u8| letter(c) || digit(c);
        let ok = matches!(t.first(), Some(b'1'..=b'9'))
            && t.iter().enumerate().all(|(k, &c)| match k {
                0 => true,
                1 | 5 | 9 | 10 => letter(c),
                2 | 6 => either(c),
                3 | 7 | 11 | 12 => digit(c),
                _ => c == b'-',
            });
        if !ok {
            return None;
        }
        self.push(EntityType::HealthPlanId, s, s + 13, 80);
        Some(s + 13)
    }

    /// The separator at `e` if another group of the same number follows it: a separator and a
    /// digit, but not a space before an e-mail address's local part (`+1 874 539 254ppa81@…`:
    /// the address is a word of its own, and the number ends before it whether or not the
    /// address has been replaced by a marker yet).
    fn next_group(&self, e: usize) -> Option<u8> {
        let c = at(self.b, e);
        let joins = matches!(c, b' ' | b'-' | b'.' | b'/')
            && at(self.b, e + 1).is_ascii_digit()
            && !(c == b' ' && self.email_ahead(e + 1).is_some());
        joins.then_some(c)
    }

    /// A phone's extension or label at `e`: `x549`, ` x12`, ` ext. 22`, ` ext 4417`,
    /// `-Fax`, `-Cell`: where it ends, and whether it says fax.
    fn phone_suffix(&self, e: usize) -> Option<(usize, bool)> {
        let b = self.b;
        let digits_at = |k: usize| {
            let d = run(b, k, 7, |c| c.is_ascii_digit());
            ((1..=6).contains(&(d - k)) && !alnum(at(b, d))).then_some(d)
        };
        let k = if at(b, e) == b' ' { e + 1 } else { e };
        if matches!(at(b, k), b'x' | b'X') {
            if let Some(d) = digits_at(k + 1) {
                return Some((d, false));
            }
        }
        for w in ["ext.", "ext", "Ext.", "Ext", "EXT"] {
            if self.word_at(k, k + w.len()) == w {
                let v = if at(b, k + w.len()) == b' ' {
                    k + w.len() + 1
                } else {
                    k + w.len()
                };
                if let Some(d) = digits_at(v) {
                    return Some((d, false));
                }
            }
        }
        if at(b, e) == b'-' {
            let we = run(b, e + 1, 8, |c| c.is_ascii_alphabetic());
            if alnum(at(b, we)) {
                return None;
            }
            let mut buf = [0u8; 32];
            match lower(self.word_at(e + 1, we), &mut buf) {
                "fax" => return Some((e, true)),
                "tel" | "cell" | "mobile" | "home" | "work" | "office" | "phone" => {
                    return Some((e, false))
                }
                _ => {}
            }
        }
        None
    }

    /// A phone at `s..e`: the extension after it joins it (`ext. 22`); a glued `-Fax` makes it
    /// a fax. Pushed; where the scan goes on.
    fn push_phone(&mut self, s: usize, e: usize, fax: bool, confidence: u8) -> usize {
        let (end, fax_label) = match self.phone_suffix(e) {
            Some((end, true)) => (e, Some(end)),
            Some((end, false)) => (end, None),
            None => (e, None),
        };
        let fax = fax || fax_label.is_some();
        let kind = if fax {
            EntityType::Fax
        } else {
            EntityType::Phone
        };
        self.push(kind, s, end, confidence);
        // step over a glued label so it is not read as a word of its own
        fax_label.map_or(end, |l| run(self.b, l + 1, 8, |c| c.is_ascii_alphabetic()))
    }

    /// A national number whose groups mix separators (`070-123 45 67`, `021-6278 9900`,
    /// `030 1234-5678`): a trunk prefix (0 and a non-zero digit), three groups or more and
    /// 9–12 digits; or any 7–15 digits in two groups or more after a phone context word.
    fn mixed_phone(&mut self, s: usize) -> Option<usize> {
        let b = self.b;
        let mut e = run(b, s, 16, |c| c.is_ascii_digit());
        let mut groups = 1;
        let mut seps = [false; 4];
        while let Some(c) = self.next_group(e).filter(|_| groups < 7) {
            if let Some(k) = [b' ', b'-', b'.', b'/'].iter().position(|&x| x == c) {
                if let Some(x) = seps.get_mut(k) {
                    *x = true;
                }
            }
            e = run(b, e + 1, 16, |c| c.is_ascii_digit());
            groups += 1;
        }
        let n = digits_of(b, s, e).count;
        if groups < 2 || alnum(at(b, e)) || n > 15 {
            return None;
        }
        let trunk = at(b, s) == b'0'
            && at(b, s + 1).is_ascii_digit()
            && at(b, s + 1) != b'0'
            && run(b, s, 6, |c| c.is_ascii_digit()) - s >= 2;
        let mixed = seps.iter().filter(|&&x| x).count() > 1;
        // one kind of separator was read as groups already, with the same context
        if !mixed || n < 7 {
            return None;
        }
        let ctx = self.context(s);
        if ctx == Some(Ctx::Negative) {
            return None;
        }
        let phone_ctx = matches!(ctx, Some(Ctx::Phone | Ctx::Fax));
        if (trunk && groups >= 3 && (9..=12).contains(&n)) || (phone_ctx && (7..=15).contains(&n)) {
            return Some(self.push_phone(s, e, ctx == Some(Ctx::Fax), 65));
        }
        None
    }

    fn grouped(&mut self, groups: &[(usize, usize)], sep: u8) -> Option<usize> {
        let b = self.b;
        let mut len_store = [0usize; 8];
        for (l, g) in len_store.iter_mut().zip(groups) {
            *l = g.1 - g.0;
        }
        let lens = len_store.get(..groups.len()).unwrap_or(&[]);
        let (s, e) = (groups.first()?.0, groups.last()?.1);
        let d = digits_of(b, s, e);
        let before = self.before(s);
        // IPv4: exactly four dotted octets, not part of a longer dotted run
        if sep == b'.' && lens.len() == 4 {
            let ok = groups.iter().all(|&(gs, ge)| {
                let v = digits_of(b, gs, ge);
                !v.is_empty()
                    && v.len() <= 3
                    && (v.len() == 1 || v.first() != Some(&0))
                    && number(&v) <= 255
            });
            // a version pin or a product's version (`numpy==1.2.3.4`, `redis>=5.0.1.2`,
            // `Chrome/4.19.33.196`, `agent 4.19.33.196`), a section number (`3.2.1.4`: every
            // part one digit)
            let pinned = matches!(before, b'v' | b'V' | b'=' | b'<' | b'>' | b'~' | b'^')
                || (before == b'/' && s >= 2 && at(b, s - 2).is_ascii_alphabetic());
            let small = d.len() == 4;
            let versionish = pinned
                || small
                || matches!(self.context(s), Some(Ctx::Negative | Ctx::Version))
                || self.version_before(s);
            // loopback, unspecified and netmasks identify no one, nor does a network's address
            // or its broadcast (a last octet of 0 or 255: `10.1.2.0`, a version `4.2.0.0`)
            let first = number(&digits_of(b, s, groups.first()?.1));
            let last = number(&digits_of(b, groups.last()?.0, e));
            let special = matches!(first, 0 | 127 | 255) || matches!(last, 0 | 255);
            if ok && !versionish && !special {
                self.push(EntityType::IpAddress, s, e, 85);
                return Some(e);
            }
            if ok {
                return Some(e);
            }
        }
        // numeric dates
        if lens.len() == 3 && matches!(sep, b'/' | b'-' | b'.') {
            let g = |k: usize| -> Option<u32> {
                let &(gs, ge) = groups.get(k)?;
                u32::try_from(number(&digits_of(b, gs, ge))).ok()
            };
            let (a, m, c) = (g(0)?, g(1)?, g(2)?);
            let (date, year) = match (lens.first()?, lens.get(1)?, lens.get(2)?) {
                (4, 2, 2) => (valid_date(a, m, c), a),
                (1 | 2, 1 | 2, 4) => (valid_date(c, a, m) || valid_date(c, m, a), c),
                (1 | 2, 1 | 2, 2) => (
                    (1..=12).contains(&a) && (1..=31).contains(&m)
                        || (1..=12).contains(&m) && (1..=31).contains(&a),
                    0,
                ),
                _ => (false, 0),
            };
            if date {
                self.dated(s, e, year);
                return Some(e);
            }
        }
        if d.len() < 5 {
            // no typed number, phone or card is shorter (`3.4.5`, `1/2/3`)
            return None;
        }
        let ctx = self.context(s);
        if ctx == Some(Ctx::Negative) {
            return Some(e);
        }
        let typed = ctx.and_then(typed_id);
        // SSN / ITIN: 3-2-4
        if lens == [3, 2, 4] && matches!(sep, b'-' | b' ') && typed.is_none() {
            if itin_ok(&d) {
                self.push(EntityType::UsItin, s, e, 85);
            } else if ssn_ok(&d) {
                self.push(EntityType::UsSsn, s, e, 85);
            }
            return Some(e);
        }
        // NANP phones: 3-3-4 and 1-3-3-4
        if matches!(sep, b'-' | b'.' | b' ')
            && (lens == [3, 3, 4] || (lens == [1, 3, 3, 4] && d.first() == Some(&1)))
            && nanp_ok(&d)
            && before != b'#'
            && typed.is_none()
        {
            return Some(self.push_phone(s, e, ctx == Some(Ctx::Fax), 80));
        }
        // cards: 12–19 digits in groups of 4 (or 4-6-5), maybe followed by other numbers (an
        // expiry date, a CVV): the longest run of groups that is a valid card
        if matches!(sep, b' ' | b'-') && d.len() >= 12 && lens.first() == Some(&4) {
            for k in (3..=groups.len()).rev() {
                let ke = groups.get(k - 1)?.1;
                let dk = digits_of(b, s, ke);
                if (12..=19).contains(&dk.len()) && card_ok(&dk) {
                    self.push(EntityType::CreditCard, s, ke, 90);
                    return Some(ke);
                }
            }
            if (13..=19).contains(&d.len()) && typed.is_none() {
                return Some(e);
            }
        }
        // ZIP+4
        if lens == [5, 4] && sep == b'-' && (self.after_state(s) || ctx == Some(Ctx::Zip)) {
            self.push(EntityType::ZipCode, s, e, 80);
            return Some(e);
        }
        // a number typed by its context, printed in groups (`MRN# 358-63-50`, `account #
        // 7734-001928`, `IMEI 35 209900 176148 1`)
        if let Some(kind) = typed {
            if (5..=20).contains(&d.len()) {
                self.push(kind, s, e, 80);
                return Some(e);
            }
        }
        // the groups go on with another separator (`021-6278 9900`): a phone of mixed
        // separators, read whole by `mixed_phone`
        if self.next_group(e).is_some() {
            return None;
        }
        // a phone context word: any 7–15 digits
        if matches!(ctx, Some(Ctx::Phone | Ctx::Fax)) && (7..=15).contains(&d.len()) {
            return Some(self.push_phone(s, e, ctx == Some(Ctx::Fax), 70));
        }
        // national numbers with a trunk prefix (`05.53.18.69.64`, `020 7946 0958`,
        // `090-1234-5678`): a 0 and a non-zero digit, three groups or more, 9–12 digits
        if matches!(sep, b' ' | b'-' | b'.')
            && lens.len() >= 3
            && lens.first().is_some_and(|&l| (2..=5).contains(&l))
            && d.first() == Some(&0)
            && d.get(1).is_some_and(|&x| x != 0)
            && (9..=12).contains(&d.len())
        {
            return Some(self.push_phone(s, e, false, 65));
        }
        None
    }

    /// Whether a version (`3.11.6`, `3.5.0.0`, see [`version_shape`]) stands in the 64 bytes
    /// before `s` on its line, after the last finding: a dotted quad in a list of versions
    /// (`Upgrade path: 3.4.2.1, then 4.0.0.12`, `Python 3.11.6 on Linux 6.5.0.27`) is one too.
    fn version_before(&self, s: usize) -> bool {
        let b = self.b;
        let mut j = s.saturating_sub(64).max(self.last_end);
        let part = |c: u8| c.is_ascii_digit() || c == b'.';
        while j > 0 && j < s && part(at(b, j - 1)) {
            j += 1;
        }
        while j < s {
            let c = at(b, j);
            if c == b'\n' {
                return false;
            }
            if c.is_ascii_digit() && (j == 0 || !alnum(at(b, j - 1)) && at(b, j - 1) != b'.') {
                let mut e = run(b, j, 16, part);
                while e > j && at(b, e - 1) == b'.' {
                    e -= 1;
                }
                if e < s && !alnum(at(b, e)) && b.get(j..e).is_some_and(version_shape) {
                    return true;
                }
                j = run(b, j, 64, part).max(j + 1);
            } else {
                j += 1;
            }
        }
        false
    }

    /// A date found at `s..e` (`year` 0 when it has none of four digits): DATE_OF_BIRTH or DATE
    /// when the context ties it to a person — a birth or clinical phrase within 40 characters
    /// before it, or, with no phrase, a name right before it (`Ruth Okafor (02/11/1957)`,
    /// `Jan Novák, 25.07.1948`) when the year is before 2010 (a later date after a name is
    /// more often an event than a birth); timestamps and undated mentions are not findings.
    fn dated(&mut self, s: usize, e: usize, year: u32) {
        let b = self.b;
        let timestamp = at(b, e) == b'T' && at(b, e + 1).is_ascii_digit()
            || at(b, e) == b' ' && at(b, e + 1).is_ascii_digit() && at(b, e + 3) == b':';
        match self.context_where(s, |c| matches!(c, Ctx::Dob | Ctx::ClinicalDate)) {
            Some(Ctx::Dob) => self.push(EntityType::DateOfBirth, s, e, 90),
            Some(Ctx::ClinicalDate) if !timestamp => self.push(EntityType::Date, s, e, 75),
            None if (1900..2010).contains(&year) && !timestamp && self.after_name(s) => {
                self.push(EntityType::DateOfBirth, s, e, 70);
            }
            _ => {}
        }
    }

    /// Whether the last finding is a name that ends right before `s`, with at most a comma,
    /// a bracket or a dash and spaces between.
    fn after_name(&self, s: usize) -> bool {
        let Some(f) = self.out.last() else {
            return false;
        };
        f.entity == EntityType::Person
            && f.end <= s
            && s - f.end <= 3
            && self.b.get(f.end..s).is_some_and(|g| {
                g.iter()
                    .all(|&c| matches!(c, b' ' | b',' | b'(' | b'-' | b'|'))
            })
    }

    /// A Chinese, Japanese or Korean date whose year is `s..e` (`1985年7月6日`, `1990년 3월
    /// 15일`): typed by [`dated`](Self::dated); where it ends.
    fn cjk_date(&mut self, s: usize, e: usize) -> Option<usize> {
        if e - s != 4 {
            return None;
        }
        let b = self.b;
        let year = u32::try_from(number(&digits_of(b, s, e))).ok()?;
        let unit = |k: usize, han: &str, hangul: &str| -> Option<usize> {
            let t = self.text.get(k..)?;
            if t.starts_with(han) {
                Some(k + han.len())
            } else if t.starts_with(hangul) {
                Some(k + hangul.len())
            } else {
                None
            }
        };
        let num = |k: usize| -> Option<(usize, u32)> {
            let k = if at(b, k) == b' ' { k + 1 } else { k };
            let ne = run(b, k, 3, |c| c.is_ascii_digit());
            (1..=2)
                .contains(&(ne - k))
                .then(|| (ne, u32::try_from(number(&digits_of(b, k, ne))).unwrap_or(0)))
        };
        let k = unit(e, "年", "년")?;
        let (k, month) = num(k)?;
        let k = unit(k, "月", "월")?;
        let (k, day) = num(k)?;
        let end = unit(k, "日", "일")?;
        if !valid_date(year, month, day) {
            return None;
        }
        self.dated(s, end, year);
        Some(end)
    }

    /// `, CA 94105` or `CA 94105`: a US state code right before.
    fn after_state(&self, s: usize) -> bool {
        s >= self.last_end + 3
            && at(self.b, s - 1) == b' '
            && self.w.states.contains(self.word_at(s - 3, s - 1))
            && (s == 3 || !alnum(at(self.b, s - 4)))
    }

    fn single_number(&mut self, s: usize, e: usize) -> Option<usize> {
        let d = digits_of(self.b, s, e);
        let n = d.len();
        if (1..=6).contains(&n) {
            let b = self.b;
            let next = at(b, e + 1);
            let spaced_after = at(b, e) == b' ' || at(b, e) == b'.' || at(b, e) == b',';
            let spaced_before = s >= self.last_end + 2
                && at(b, s - 1) == b' '
                && (at(b, s - 2).is_ascii_alphabetic()
                    || at(b, s - 2) >= 0x80
                    || at(b, s - 2) == b'.');
            if spaced_before && !alnum(at(b, e)) {
                if let Some(end) = self.po_box(s, e) {
                    return Some(end);
                }
            }
            if at(b, e) == b' ' && (next.is_ascii_uppercase() || next.is_ascii_digit()) {
                if let Some(end) = self.address(s, e) {
                    return Some(end);
                }
            }
            if spaced_before || (at(b, e) == b' ' && next.is_ascii_lowercase()) {
                if let Some(end) = self.german_address(s) {
                    return Some(end);
                }
            }
            if n <= 2 && (spaced_after || spaced_before) {
                if let Some(end) = self.month_date(s, e) {
                    return Some(end);
                }
            }
        }
        if n == 5 && self.after_state(s) {
            self.push(EntityType::ZipCode, s, e, 80);
            return Some(e);
        }
        if n < 5 {
            // a plate of digits and letters (`1234 BCD`), typed by its context
            let b = self.b;
            let caps = run(b, e + 1, 5, |c| c.is_ascii_uppercase());
            if at(b, e) == b' '
                && (2..=4).contains(&(caps - e - 1))
                && !alnum(at(b, caps))
                && n >= 2
            {
                return self.id_token(s);
            }
            // no typed number is shorter than five digits
            return None;
        }
        let ctx = self.context(s);
        match ctx {
            Some(Ctx::Negative) => return Some(e),
            Some(Ctx::Ssn) if n == 9 && ssn_ok(&d) => self.push(EntityType::UsSsn, s, e, 90),
            Some(Ctx::Itin | Ctx::Ssn) if n == 9 && itin_ok(&d) => {
                self.push(EntityType::UsItin, s, e, 90);
            }
            Some(Ctx::Routing) if aba_ok(&d) => self.push(EntityType::RoutingNumber, s, e, 90),
            Some(Ctx::Npi) if npi_ok(&d) => self.push(EntityType::Npi, s, e, 95),
            // after a phone context word any 7–15 digits (`Desk: 6507527354`, `电话：13812345678`)
            Some(Ctx::Phone) if (7..=15).contains(&n) => {
                return Some(self.push_phone(s, e, false, 75));
            }
            Some(Ctx::Fax) if (7..=15).contains(&n) => {
                return Some(self.push_phone(s, e, true, 75));
            }
            Some(Ctx::Passport) if (8..=9).contains(&n) => {
                self.push(EntityType::UsPassport, s, e, 85);
            }
            Some(Ctx::Bank) if (6..=17).contains(&n) => {
                self.push(EntityType::BankAccount, s, e, 85);
            }
            Some(Ctx::Account) if (5..=17).contains(&n) => {
                self.push(EntityType::AccountNumber, s, e, 85);
            }
            Some(Ctx::Mrn) if (5..=12).contains(&n) => {
                self.push(EntityType::MedicalRecordNumber, s, e, 90);
            }
            Some(Ctx::HealthPlan) if (6..=15).contains(&n) => {
                self.push(EntityType::HealthPlanId, s, e, 85);
            }
            Some(Ctx::DriverLicense) if (5..=13).contains(&n) => {
                self.push(EntityType::UsDriverLicense, s, e, 85);
            }
            Some(Ctx::License) if (5..=13).contains(&n) => {
                self.push(EntityType::LicenseNumber, s, e, 85);
            }
            Some(Ctx::Device) if (8..=20).contains(&n) => {
                self.push(EntityType::DeviceId, s, e, 85);
            }
            Some(Ctx::Zip) if n == 5 => self.push(EntityType::ZipCode, s, e, 80),
            // an IMEI named after it (`864452039319775 (IMEI)`): 15 digits with its check digit
            _ if n == 15 && luhn_digits(&d) && self.imei_after(e) => {
                self.push(EntityType::DeviceId, s, e, 85);
            }
            // a product's barcode (`商品コード 4901234567894`) is no card: 13 digits with an
            // EAN-13 check digit, unless a card is named
            _ if n == 13 && ctx != Some(Ctx::Card) && ean13_ok(&d) => return None,
            _ if card_ok(&d) => self.push(EntityType::CreditCard, s, e, 85),
            _ => return None,
        }
        Some(e)
    }

    /// Whether `IMEI` follows `e` (`… (IMEI)`, `… IMEI`).
    fn imei_after(&self, e: usize) -> bool {
        let b = self.b;
        let mut k = e;
        if at(b, k) == b' ' {
            k += 1;
        }
        if at(b, k) == b'(' {
            k += 1;
        }
        b.get(k..k + 4)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"imei"))
            && !alnum(at(b, k + 4))
    }

    /// A date written with a dot and a space between its parts (`4. 6. 1975`, Czech, Slovak,
    /// German): day and month of one or two digits, a year of four; typed by its context as
    /// any numeric date ([`dated`](Self::dated)). Where the scan goes on.
    fn spaced_date(&mut self, s: usize, e: usize) -> Option<usize> {
        let b = self.b;
        let two = |k: usize| {
            let end = run(b, k, 3, |c| c.is_ascii_digit());
            ((1..=2).contains(&(end - k)) && at(b, end) == b'.' && at(b, end + 1) == b' ')
                .then_some(end)
        };
        if !(1..=2).contains(&(e - s)) || at(b, e) != b'.' || at(b, e + 1) != b' ' {
            return None;
        }
        let me = two(e + 2)?;
        let ys = me + 2;
        let ye = run(b, ys, 5, |c| c.is_ascii_digit());
        if ye - ys != 4 || alnum(at(b, ye)) {
            return None;
        }
        let num = |a: usize, z: usize| u32::try_from(number(&digits_of(b, a, z))).ok();
        let (d, m, y) = (num(s, e)?, num(e + 2, me)?, num(ys, ye)?);
        if !valid_date(y, m, d) {
            return None;
        }
        self.dated(s, ye, y);
        Some(ye)
    }

    /// `123 Main Street`, `42 W 5th Ave, Apt 3B`.
    fn address(&mut self, s: usize, num_end: usize) -> Option<usize> {
        let b = self.b;
        if num_end - s > 6 || at(b, num_end) != b' ' {
            return None;
        }
        let mut j = num_end + 1;
        for name_words in 0..5 {
            let ws = j;
            let we = run(b, ws, 32, |c| alnum(c) || c >= 0x80);
            if we == ws {
                return None;
            }
            let word = self.word_at(ws, we);
            let first = at(b, ws);
            // a suffix followed by another is part of the name (`Park Lane`, `Plaza Drive`)
            let next_suffix = at(b, we) == b' '
                && self
                    .w
                    .street_suffixes
                    .contains(self.word_at(we + 1, run(b, we + 1, 32, alnum)));
            if name_words > 0 && self.w.street_suffixes.contains(word) && !next_suffix {
                let mut end = we;
                // a quadrant or direction after the suffix: `Pennsylvania Avenue NW`
                let de = run(b, we + 1, 3, |c| c.is_ascii_uppercase());
                if at(b, we) == b' '
                    && matches!(
                        self.word_at(we + 1, de),
                        "N" | "S" | "E" | "W" | "NW" | "NE" | "SW" | "SE"
                    )
                    && !alnum(at(b, de))
                {
                    end = de;
                }
                // a unit: `, Apt 4B`, ` Suite 210`, ` #12`
                let k = if at(b, end) == b',' { end + 1 } else { end };
                if at(b, k) == b' ' {
                    let us = k + 1;
                    let ue = run(b, us, 12, |c| {
                        c.is_ascii_alphabetic() || c == b'.' || c == b'#'
                    });
                    let unit = self.word_at(us, ue).trim_end_matches('.');
                    if matches!(
                        unit,
                        "Apt" | "Apartment" | "Suite" | "Ste" | "Unit" | "#" | "Floor" | "Fl"
                    ) {
                        let vs = if at(b, ue) == b' ' { ue + 1 } else { ue };
                        let ve = run(b, vs, 8, |c| alnum(c) || c == b'-');
                        if ve > vs {
                            end = ve;
                        }
                    } else {
                        // `, Fifth Floor`, `, 2nd Floor`
                        let oe = run(b, us, 8, alnum);
                        let ordinal = matches!(
                            self.word_at(us, oe),
                            "First"
                                | "Second"
                                | "Third"
                                | "Fourth"
                                | "Fifth"
                                | "Sixth"
                                | "Seventh"
                                | "Eighth"
                                | "Ninth"
                                | "Tenth"
                                | "Ground"
                        ) || (at(b, us).is_ascii_digit()
                            && matches!(
                                self.word_at(us, oe)
                                    .trim_start_matches(|c: char| c.is_ascii_digit()),
                                "st" | "nd" | "rd" | "th"
                            ));
                        if ordinal && self.word_at(oe, oe + 6) == " Floor" && !alnum(at(b, oe + 6))
                        {
                            end = oe + 6;
                        }
                    }
                }
                let end = self.address_tail(end, false).unwrap_or(end);
                self.push(EntityType::Address, s, end, 85);
                return Some(end);
            }
            let ordinal = first.is_ascii_digit()
                && matches!(
                    word.trim_start_matches(|c: char| c.is_ascii_digit()),
                    "st" | "nd" | "rd" | "th"
                );
            let capital = first.is_ascii_uppercase();
            if !(capital || ordinal) {
                return None;
            }
            if at(b, we) == b',' && capital {
                // a street without a suffix (`17969 Broadway`), when a city, state and ZIP
                // code follow
                let end = self.address_tail(we, true)?;
                self.push(EntityType::Address, s, end, 80);
                return Some(end);
            }
            if at(b, we) != b' ' {
                return None;
            }
            j = we + 1;
        }
        None
    }

    /// A capitalized word of a place name at `k` (`Springfield`, `Köln`, `St.`, `Aix-en-Provence`):
    /// where it ends.
    fn place_word(&self, k: usize) -> Option<usize> {
        if !self.char_at(k).is_some_and(char::is_uppercase) {
            return None;
        }
        let e = self.name_word_end(k);
        // `St. Louis`, `Mt. Vernon`: an abbreviation followed by the rest of the name
        let e = if at(self.b, e) == b'.' && e - k <= 3 && at(self.b, e + 1) == b' ' {
            e + 1
        } else {
            e
        };
        let w = self.word_at(k, e);
        (w.chars().any(char::is_lowercase) && !self.w.stop_words.contains(w)).then_some(e)
    }

    /// A city name at `k`: up to `max` place words, joined by spaces or by particles (`Frankfurt
    /// am Main`, `Saint-Denis`, `New York`).
    fn city(&self, k: usize, max: usize) -> Option<usize> {
        let b = self.b;
        let mut e = self.place_word(k)?;
        let mut words = 1;
        while words < max && at(b, e) == b' ' {
            let ws = e + 1;
            if let Some(we) = self.place_word(ws) {
                e = we;
                words += 1;
                continue;
            }
            let pe = run(b, ws, 4, |c| c.is_ascii_lowercase());
            let particle = matches!(
                self.word_at(ws, pe),
                "am" | "an" | "im" | "der" | "sur" | "de" | "la" | "le" | "del" | "en"
            );
            match self.place_word(pe + 1) {
                Some(we) if particle && at(b, pe) == b' ' => {
                    e = we;
                    words += 1;
                }
                _ => break,
            }
        }
        Some(e)
    }

    /// The rest of an address after its street (`, Springfield, IL 62704`, `, 10115 Berlin`,
    /// `\n75002 Paris`, `, Toronto, ON M5H 2N2`, `, Leeds LS6 2AA`): where it ends, or `None`
    /// when none follows. `strict`: only a city with a state or province and a postcode counts
    /// (what confirms a street without a suffix).
    fn address_tail(&self, end: usize, strict: bool) -> Option<usize> {
        let b = self.b;
        let k = match (at(b, end), at(b, end + 1)) {
            (b',', b' ' | b'\n') => end + 2,
            (b'\n', _) => end + 1,
            _ => return None,
        };
        // European: postcode, then city (`10115 Berlin`, `D-10115 Berlin`, `1012 AB Amsterdam`)
        let mut p = k;
        if at(b, p).is_ascii_uppercase() && at(b, p + 1) == b'-' {
            p += 2;
        } else if at(b, p).is_ascii_uppercase()
            && at(b, p + 1).is_ascii_uppercase()
            && at(b, p + 2) == b'-'
        {
            p += 3;
        }
        let mut pe = run(b, p, 6, |c| c.is_ascii_digit());
        // Polish `00-590`
        if pe - p == 2 && at(b, pe) == b'-' {
            let pe3 = run(b, pe + 1, 4, |c| c.is_ascii_digit());
            if pe3 - pe - 1 == 3 {
                pe = pe3;
            }
        }
        if (4..=6).contains(&(pe - p)) && at(b, pe) == b' ' && !strict {
            let mut cs = pe + 1;
            if at(b, cs).is_ascii_uppercase()
                && at(b, cs + 1).is_ascii_uppercase()
                && at(b, cs + 2) == b' '
            {
                cs += 3; // Dutch `1012 AB`
            }
            return self.city(cs, 3);
        }
        // American, Canadian, British: city, then state or province and postcode
        let ce = self.city(k, 3)?;
        let mut j = ce;
        if at(b, j) == b',' {
            j += 1;
        }
        // a city alone ends the address when the sentence goes on or ends after it (`14
        // Harbour View Road, Cork.`); a given name there starts a new clause instead
        let city_alone = || {
            let next = at(b, ce);
            let ends = matches!(next, 0 | b'.' | b';' | b')' | b'\n' | b'!' | b'?')
                || (next == b' ' && at(b, ce + 1).is_ascii_lowercase());
            let w = self.word_at(k, self.name_word_end(k));
            (ends && !strict && (!self.w.given.contains(w) || self.w.places.contains(w)))
                .then_some(ce)
        };
        if at(b, j) != b' ' {
            return city_alone();
        }
        j += 1;
        let two = self.word_at(j, j + 2);
        let code_end = j + 2;
        if two.len() == 2 && !alnum(at(b, code_end)) {
            if self.w.states.contains(two) {
                if at(b, code_end) == b' ' {
                    // one space before the ZIP code, or two as in typeset addresses
                    let zs = if at(b, code_end + 1) == b' ' {
                        code_end + 2
                    } else {
                        code_end + 1
                    };
                    let ze = run(b, zs, 6, |c| c.is_ascii_digit());
                    if ze - zs == 5 && !alnum(at(b, ze)) {
                        let ext = run(b, ze + 1, 5, |c| c.is_ascii_digit());
                        if at(b, ze) == b'-' && ext - ze - 1 == 4 && !alnum(at(b, ext)) {
                            return Some(ext);
                        }
                        return Some(ze);
                    }
                }
                return (!strict).then_some(code_end);
            }
            if PROVINCES.contains(&two) && at(b, code_end) == b' ' {
                return canadian_postcode(b, code_end + 1).or((!strict).then_some(code_end));
            }
        }
        uk_postcode(b, j).or_else(city_alone)
    }

    /// A post-office box, the number at `s..e` (`PO Box 1234`, `P.O. Box 12`, `Postfach 10 20`,
    /// `Apartado 45`, `Caixa Postal 9`, `Casella Postale 3`, `BP 12`), with the rest of its
    /// address when one follows: pushed; where it ends.
    fn po_box(&mut self, s: usize, e: usize) -> Option<usize> {
        // most numbers follow other words: look at the word's last two letters, then its end,
        // before walking back
        if !matches!(
            (at(self.b, s.saturating_sub(3)), at(self.b, s - 2)),
            (b'o', b'x')
                | (b'O', b'X')
                | (b'c', b'h')
                | (b'd', b'o')
                | (b'B', b'P')
                | (b'P', b'.')
                | (b'u', b's')
                | (b'a', b'l')
                | (b'l', b'e')
        ) {
            return None;
        }
        let before = self.b.get(..s - 1)?;
        if ![
            &b"Box"[..],
            b"BOX",
            b"box",
            b"Postfach",
            b"Apartado",
            b"BP",
            b"B.P.",
            b"Postbus",
            b"Postal",
            b"Postale",
        ]
        .iter()
        .any(|w| before.ends_with(w))
        {
            return None;
        }
        let floor = self.last_end.max(s.saturating_sub(LOOK_BACK));
        let (words, n) = self.words_before(s - 1, floor, 2);
        let words = words.get(..n).unwrap_or(&[]);
        let w = |k: usize| words.get(k).map_or("", |&(ws, we)| self.word_at(ws, we));
        let start = match (w(0), w(1)) {
            ("Box" | "BOX" | "box", "PO" | "P.O." | "P.O" | "POB" | "Post" | "Office") => {
                words.get(1)?.0
            }
            ("Postfach" | "Apartado" | "BP" | "B.P." | "Postbus", _) => words.first()?.0,
            ("Postal", "Caixa") | ("Postale", "Casella" | "Boîte") => words.get(1)?.0,
            _ => return None,
        };
        let end = self.address_tail(e, false).unwrap_or(e);
        self.push(EntityType::Address, start, end, 80);
        Some(end)
    }

    /// `Hauptstraße 12`, `Calle Mayor 5`, `12 rue de la Paix`.
    fn german_address(&mut self, s: usize) -> Option<usize> {
        let b = self.b;
        let mut num_end = run(b, s, 6, |c| c.is_ascii_digit());
        // a range or a flat: `5-7`, `10/12`
        if matches!(at(b, num_end), b'-' | b'/') && at(b, num_end + 1).is_ascii_digit() {
            let r = run(b, num_end + 1, 5, |c| c.is_ascii_digit());
            if !alnum(at(b, r)) {
                num_end = r;
            }
        }
        let end =
            if at(b, num_end).is_ascii_lowercase() && !at(b, num_end + 1).is_ascii_alphabetic() {
                num_end + 1
            } else {
                num_end
            };
        if end > num_end || !at(b, end).is_ascii_alphanumeric() {
            // French: number, then a street word
            if at(b, end) == b' ' {
                let ws = end + 1;
                let we = run(b, ws, 16, |c| c.is_ascii_alphabetic() || c >= 0x80);
                let mut fb = [0u8; 32];
                let street = lower(self.word_at(ws, we), &mut fb);
                if self.w.french_streets.contains(street) && at(b, we) == b' ' {
                    let mut k = we;
                    for _ in 0..5 {
                        if at(b, k) != b' ' {
                            break;
                        }
                        let e2 = run(b, k + 1, 24, |c| {
                            c.is_ascii_alphabetic() || c >= 0x80 || c == b'\'' || c == b'-'
                        });
                        if e2 == k + 1 {
                            break;
                        }
                        k = e2;
                    }
                    let k = self.address_tail(k, false).unwrap_or(k);
                    self.push(EntityType::Address, s, k, 80);
                    return Some(k);
                }
            }
        }
        // German and Spanish: the street name comes first
        if s < self.last_end + 2 || at(b, s - 1) != b' ' {
            return None;
        }
        let mut ws = s - 1;
        let mut words = 0;
        let mut start = None;
        while words < 4 && ws > self.last_end {
            let we = ws;
            let mut k = we;
            while k > self.last_end
                && s - k < LOOK_BACK
                && (at(b, k - 1).is_ascii_alphabetic()
                    || at(b, k - 1) >= 0x80
                    || at(b, k - 1) == b'.')
            {
                k -= 1;
            }
            if k == we {
                break;
            }
            let word = self.word_at(k, we);
            if words == 0
                && at(b, k).is_ascii_uppercase()
                && self
                    .w
                    .german_street_endings
                    .iter()
                    .any(|e| ends_with_ci(word.as_bytes(), e.as_bytes()))
            {
                start = Some(k);
                break;
            }
            if self.w.spanish_streets.contains(word) {
                start = Some(k);
                break;
            }
            if !at(b, k).is_ascii_uppercase()
                && !matches!(
                    word,
                    "de" | "del" | "la" | "las" | "los" | "di" | "da" | "do" | "dos"
                )
            {
                break;
            }
            words += 1;
            if k <= self.last_end || at(b, k - 1) != b' ' {
                break;
            }
            ws = k - 1;
        }
        let start = start?;
        let end = self.address_tail(end, false).unwrap_or(end);
        self.push(EntityType::Address, start, end, 80);
        Some(end)
    }

    /// `March 3, 1985`, `3 March 1985`, `3. März 1985`, `15 de marzo de 1990`, `July 4th,
    /// 1976`, `4th of July 1976`, `1er mars 1990`.
    fn month_date(&mut self, s: usize, e: usize) -> Option<usize> {
        let b = self.b;
        if e - s > 2 {
            return None;
        }
        let day = number(&digits_of(b, s, e));
        // the day's ordinal suffix
        let e = ordinal_at(b, e).unwrap_or(e);
        if !(1..=31).contains(&day) {
            return None;
        }
        let year_at = |k: usize| -> Option<usize> {
            let ye = run(b, k, 5, |c| c.is_ascii_digit());
            let y = number(&digits_of(b, k, ye));
            (ye - k == 4 && (1900..=2099).contains(&y) && !alnum(at(b, ye))).then_some(ye)
        };
        // month before the day
        if s >= self.last_end + 2 && at(b, s - 1) == b' ' {
            let me = s - 1;
            let mut ms = me;
            while ms > self.last_end
                && s - ms < LOOK_BACK
                && (at(b, ms - 1).is_ascii_alphabetic()
                    || at(b, ms - 1) >= 0x80
                    || at(b, ms - 1) == b'.')
            {
                ms -= 1;
            }
            let mut buf = [0u8; 32];
            let m = lower(self.word_at(ms, me).trim_end_matches('.'), &mut buf);
            if ms < me && self.w.months.contains(m) {
                let mut k = e;
                if at(b, k) == b',' {
                    k += 1;
                }
                if at(b, k) == b' ' {
                    if let Some(ye) = year_at(k + 1) {
                        self.dated(ms, ye, year_of(b, ye));
                        return Some(ye);
                    }
                }
            }
        }
        // day before the month
        let mut k = e;
        if at(b, k) == b'.' {
            k += 1;
        }
        if at(b, k) != b' ' {
            return None;
        }
        k += 1;
        if matches!(self.word_at(k, k + 3), "de " | "of ") {
            k += 3;
        }
        let me = run(b, k, 12, |c| {
            c.is_ascii_alphabetic() || c >= 0x80 || c == b'.'
        });
        let mut buf = [0u8; 32];
        let m = lower(self.word_at(k, me).trim_end_matches('.'), &mut buf);
        if me == k || !self.w.months.contains(m) {
            return None;
        }
        let mut k = me;
        if at(b, k) == b',' {
            k += 1;
        }
        if self.word_at(k, k + 4) == " de " {
            k += 3;
        }
        if at(b, k) != b' ' {
            return None;
        }
        let ye = year_at(k + 1)?;
        self.dated(s, ye, year_of(b, ye));
        Some(ye)
    }

    /// An identifier with letters and digits, typed by the context word before it. Plates,
    /// licences, member and account numbers may be printed in groups with single spaces
    /// (`8XKR 412`, `A123 4567 8901`, `B-MW 4471`, `1234 BCD`): a group joins when it holds a
    /// digit, or, for a plate, when it is up to four capitals.
    fn id_token(&mut self, s: usize) -> Option<usize> {
        let b = self.b;
        let trimmed = |e: usize| {
            let mut e = e;
            while e > s && at(b, e - 1) == b'-' {
                e -= 1;
            }
            e
        };
        let first = trimmed(run(b, s, 24, |c| alnum(c) || c == b'-'));
        if first == s || alnum(at(b, first)) {
            return None;
        }
        let raw = b.get(s..first)?;
        let spaced_next = at(b, first) == b' ' && alnum(at(b, first + 1));
        if !(raw.iter().any(u8::is_ascii_digit) || spaced_next && raw.len() <= 5) {
            return None;
        }
        let lettered = !raw.iter().any(u8::is_ascii_digit);
        if lettered {
            // capitals before the digits (`B-MW 4471`), not a context word itself (`MBI 1EG4-…`,
            // `SSN 123…`)
            let mut buf = [0u8; 32];
            if self
                .w
                .context
                .contains_key(lower(self.word_at(s, first), &mut buf))
            {
                return None;
            }
        }
        let ctx = self.context(s)?;
        if lettered && !matches!(ctx, Ctx::Plate | Ctx::DriverLicense) {
            return None; // only a plate or a licence starts with letters alone
        }
        let mut e = first;
        if matches!(
            ctx,
            Ctx::Plate
                | Ctx::DriverLicense
                | Ctx::License
                | Ctx::HealthPlan
                | Ctx::Account
                | Ctx::Bank
        ) {
            for _ in 0..4 {
                if at(b, e) != b' ' {
                    break;
                }
                let gs = e + 1;
                let ge = trimmed(run(b, gs, 8, |c| alnum(c) || c == b'-'));
                let g = b.get(gs..ge).unwrap_or(&[]);
                let joins = !g.is_empty()
                    && !alnum(at(b, ge))
                    && at(b, ge) != b'-'
                    && (g.iter().any(u8::is_ascii_digit)
                        || (ctx == Ctx::Plate
                            && g.len() <= 4
                            && g.iter().all(u8::is_ascii_uppercase)));
                if !joins || ge - s > 24 {
                    break;
                }
                e = ge;
            }
        }
        let t = b.get(s..e)?;
        let digits = t.iter().filter(|c| c.is_ascii_digit()).count();
        // identifiers printed on cards, plates and devices are in one case: `HmacSha256` is code
        let mixed_case =
            t.iter().any(u8::is_ascii_lowercase) && t.iter().any(u8::is_ascii_uppercase);
        // a licence number has a few digits: `Apache-2` is a licence, not a licence number
        let few = matches!(ctx, Ctx::DriverLicense | Ctx::License) && digits < 4;
        if digits == 0 || mixed_case || few {
            return None;
        }
        let len = e - s;
        let kind = match ctx {
            Ctx::Mrn if (5..=16).contains(&len) => EntityType::MedicalRecordNumber,
            Ctx::HealthPlan if (6..=20).contains(&len) => EntityType::HealthPlanId,
            Ctx::DriverLicense if (5..=20).contains(&len) => EntityType::UsDriverLicense,
            Ctx::License if (5..=20).contains(&len) => EntityType::LicenseNumber,
            Ctx::Passport if (8..=10).contains(&len) => EntityType::UsPassport,
            Ctx::Plate | Ctx::Vin if (4..=17).contains(&len) => EntityType::VehicleId,
            Ctx::Device if (6..=24).contains(&len) => EntityType::DeviceId,
            Ctx::Account if (5..=20).contains(&len) => EntityType::AccountNumber,
            Ctx::Bank if (6..=20).contains(&len) => EntityType::BankAccount,
            _ => return None,
        };
        self.push(kind, s, e, 85);
        Some(e)
    }

    /// A credential after a secret's context (`key:`, `Bearer`, `client_secret=`, `密钥`), seen
    /// from any letter or digit inside it: a token of 16–512 characters of base64, base64url,
    /// hex or a vendor's alphabet that looks random — a digit, four letters, a change of
    /// character class at least every five characters and no run of eight letters of one case
    /// (words and identifiers have those). Each token is checked once.
    fn secret(&mut self, i: usize) -> Option<usize> {
        if i < self.secret_until || !self.on(EntityType::ApiKey) {
            return None;
        }
        let b = self.b;
        let tok = |c: u8| alnum(c) || matches!(c, b'+' | b'/' | b'_' | b'-' | b'.' | b'~');
        // most tokens are short: read forward first, and walk back only when the token is long
        // enough or starts before `i`
        let ahead = run(b, i, 16, tok);
        if ahead - i < 16 && !(i > self.last_end && tok(at(b, i - 1))) {
            self.secret_until = ahead;
            return None;
        }
        let mut s = i;
        while s > self.last_end && i - s < 512 && tok(at(b, s - 1)) {
            s -= 1;
        }
        let mut e = i;
        while e < b.len()
            && e - s < 512
            && tok(at(b, e))
            && !(at(b, e) == b'-' && at(b, e + 1) == b'-')
        {
            e += 1;
        }
        self.secret_until = e.max(i + 1);
        if e - s >= 512 || tok(at(b, e)) || alnum(self.before(s)) {
            return None; // longer than any key: a blob, not a credential
        }
        // base64 padding (`…w4=`), or punctuation that ends the sentence
        let mut end = e;
        while at(b, end) == b'=' && end - e < 2 {
            end += 1;
        }
        if end == e {
            while e > s && matches!(at(b, e - 1), b'.' | b'-' | b'_' | b'~' | b'/') {
                e -= 1;
            }
            end = e;
        }
        let t = b.get(s..e)?;
        if t.len() < 16 || !looks_random(t) {
            return None;
        }
        if self.context_where(s, |c| c == Ctx::Secret) != Some(Ctx::Secret) {
            return None;
        }
        self.push(EntityType::ApiKey, s, end, 80);
        Some(end)
    }

    // ---------- uppercase starts ----------

    fn upper(&mut self, i: usize) -> usize {
        let b = self.b;
        // a letter of an alphabetic script glued before it makes this the middle of a word;
        // CJK, full-width forms and punctuation do not (`アクセスキーはAKIA…です`)
        let glued = self.before(i) >= 0x80
            && self
                .char_before(i)
                .is_some_and(|c| c.is_alphanumeric() && !cjk_letter(c));
        if !self.starts(i) || glued {
            // JWT: `eyJ…` seen at its `J`
            if at(b, i) == b'J'
                && i >= self.last_end + 2
                && at(b, i - 2) == b'e'
                && at(b, i - 1) == b'y'
            {
                if let Some(e) = self.jwt(i - 2) {
                    return e;
                }
            }
            if !glued {
                if let Some(e) = self.secret(i) {
                    return e;
                }
            }
            return run(b, i, usize::MAX, alnum);
        }
        // Google API keys: `AIza` and 35 more
        if b.get(i..i + 4) == Some(b"AIza") {
            let e = self.key_token(i, b"_-");
            if e - i == 39 {
                self.push(EntityType::ApiKey, i, e, 95);
                return e;
            }
        }
        let alnum_end = run(b, i, 64, alnum);
        let token = b.get(i..alnum_end).unwrap_or(&[]);
        let len = token.len();
        let mut has_digit = token.iter().any(u8::is_ascii_digit);
        if !has_digit && at(b, alnum_end) == b'-' {
            let id_end = run(b, i, 64, |c| alnum(c) || c == b'-');
            has_digit = b
                .get(i..id_end)
                .is_some_and(|t| t.iter().any(u8::is_ascii_digit));
        }
        if len == 20
            && (token.starts_with(b"AKIA") || token.starts_with(b"ASIA"))
            && token
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            self.push(EntityType::AwsAccessKey, i, alnum_end, 99);
            return alnum_end;
        }
        if has_digit {
            if at(b, i + 1).is_ascii_uppercase()
                && at(b, i + 2).is_ascii_digit()
                && at(b, i + 3).is_ascii_digit()
            {
                if let Some(e) = self.iban(i) {
                    return e;
                }
            }
            if len == 17 && !alnum(at(b, alnum_end)) && vin_ok(token) {
                self.push(EntityType::VehicleId, i, alnum_end, 90);
                return alnum_end;
            }
            if matches!(at(b, i + 2), b':' | b'-') || at(b, i + 4) == b'.' {
                if let Some(e) = self.mac(i) {
                    return e;
                }
            }
            if let Some(e) = self.id_token(i) {
                return e;
            }
            if let Some(e) = self.secret(i) {
                return e;
            }
            return id_run(b, i);
        }
        // capitals and a group of digits after a space (`B-MW 4471`, `ABC 1234`): a plate or
        // a licence when the context says so
        let id_end = run(b, i, 8, |c| c.is_ascii_uppercase() || c == b'-');
        if id_end - i <= 5 && at(b, id_end) == b' ' && at(b, id_end + 1).is_ascii_digit() {
            if let Some(e) = self.id_token(i) {
                return e;
            }
        }
        if len >= 16 {
            if let Some(e) = self.secret(i) {
                return e;
            }
        }
        self.name(i)
    }

    fn iban(&mut self, s: usize) -> Option<usize> {
        let b = self.b;
        let mut j = s;
        let mut count = 0;
        // candidate ends: where a group of the printed form ends
        let mut ends = Vec::new();
        // written in one case: `DE89 3704 …` or `de89 3704 …`
        let lowercase = at(b, s).is_ascii_lowercase();
        let letter = |c: u8| {
            if lowercase {
                c.is_ascii_lowercase()
            } else {
                c.is_ascii_uppercase()
            }
        };
        while count < 34 {
            let c = at(b, j);
            if letter(c) || c.is_ascii_digit() {
                count += 1;
                j += 1;
                if count >= 15 && !alnum(at(b, j)) {
                    ends.push(j);
                }
            } else if c == b' '
                && count % 4 == 0
                && (letter(at(b, j + 1)) || at(b, j + 1).is_ascii_digit())
            {
                j += 1;
            } else {
                break;
            }
        }
        let end = ends.into_iter().rev().find(|&e| {
            b.get(s..e).is_some_and(|t| {
                if lowercase {
                    iban_ok(&t.to_ascii_uppercase())
                } else {
                    iban_ok(t)
                }
            })
        })?;
        self.push(EntityType::Iban, s, end, 95);
        Some(end)
    }

    /// A letter outside ASCII: a name may start here (Álvarez, Øster), if it is an uppercase
    /// letter at the start of a word.
    fn latin(&mut self, i: usize) -> usize {
        let b = self.b;
        let upper = self
            .text
            .get(i..)
            .and_then(|t| t.chars().next())
            .is_some_and(char::is_uppercase);
        if upper && !(alnum(self.before(i)) || self.before(i) >= 0x80) {
            return self.name(i);
        }
        run(b, i, 64, |c| {
            c.is_ascii_alphabetic() || (c >= 0x80 && class(c) != CJK)
        })
    }

    /// A run of kana and Han characters: a name after a Chinese or Japanese cue (`我叫王小明`,
    /// `名前: 山田太郎`). Checks for a cue only at the characters that end one, so CJK prose
    /// costs one comparison per character.
    fn cjk(&mut self, i: usize) -> usize {
        let mut j = i;
        while let Some(c) = self.char_at(j) {
            if !(('\u{3000}'..='\u{9FFF}').contains(&c) || hangul(c)) {
                break;
            }
            j += c.len_utf8();
            if cjk_cue_end(c) && self.on(EntityType::Person) {
                if let Some(e) = self.cjk_name_after(j) {
                    return e;
                }
            }
            if cjk_region_end(c) && self.on(EntityType::Address) {
                if let Some(e) = self.cjk_address(j) {
                    return e;
                }
            }
        }
        j.max(i + 1)
    }

    /// A Chinese or Japanese address whose region ends at `p` (`東京都港区六本木6-10-1`,
    /// `北京市朝阳区建国路88号`), pushed; where it ends. The address runs on over Han characters,
    /// katakana, digits and dashes, and ends after its last number (with `号`, `番地`, `号室`, …);
    /// a district or street word (区, 市, 町, 路, 街, …) must stand before that number, so
    /// `北京市人口2000万` is no address.
    fn cjk_address(&mut self, p: usize) -> Option<usize> {
        let before = self.text.get(self.last_end..p)?;
        let region = self
            .w
            .cjk_regions
            .get(last_two(before))?
            .iter()
            .find(|r| before.ends_with(*r))?;
        let s = p - region.len();
        let mut k = p;
        let mut end = None;
        let mut marker = false;
        while k - p < 96 {
            let Some(c) = self.char_at(k) else { break };
            let han = ('\u{4E00}'..='\u{9FFF}').contains(&c);
            let katakana = ('\u{30A0}'..='\u{30FF}').contains(&c);
            let digit = c.is_ascii_digit() || ('０'..='９').contains(&c);
            let dash = matches!(c, '-' | '－' | '‐' | '−' | 'ー');
            if !(han || katakana || digit || dash || matches!(c, 'が' | 'の' | 'ヶ'))
                || matches!(c, '的' | '是' | '在' | '和' | '有' | '了' | '吗')
            {
                break;
            }
            k += c.len_utf8();
            if matches!(
                c,
                '区' | '區'
                    | '段'
                    | '市'
                    | '町'
                    | '村'
                    | '郡'
                    | '路'
                    | '街'
                    | '道'
                    | '巷'
                    | '弄'
                    | '丁'
                    | '条'
            ) {
                marker = true;
            }
            if digit && marker {
                // the number ends here unless more digits follow; a suffix joins it
                let rest = self.text.get(k..).unwrap_or("");
                let suffix = [
                    "号室", "号楼", "番地", "丁目", "号", "號", "番", "階", "室", "栋", "楼", "樓",
                ]
                .iter()
                .find(|x| rest.starts_with(*x))
                .map_or(0, |x| x.len());
                end = Some(k + suffix);
            }
        }
        let end = end?;
        self.push(EntityType::Address, s, end, 75);
        Some(end)
    }

    /// The name after a CJK cue ending at `p`, pushed; where it ends.
    fn cjk_name_after(&mut self, p: usize) -> Option<usize> {
        let before = self.text.get(self.last_end..p)?;
        let &(_, weak) = self
            .w
            .cjk_cues
            .get(last_two(before))?
            .iter()
            .find(|(cue, _)| before.ends_with(cue))?;
        let mut k = p;
        let mut skipped = 0;
        while let Some(c) = self.char_at(k) {
            if !matches!(c, ':' | '：' | ' ' | '\u{3000}') || skipped >= 3 {
                break;
            }
            k += c.len_utf8();
            skipped += 1;
        }
        let han = |c: char| {
            ('\u{4E00}'..='\u{9FFF}').contains(&c) || ('\u{3400}'..='\u{4DBF}').contains(&c)
        };
        let s = k;
        if self.char_at(s).is_some_and(hangul) {
            return self.korean_name_at(s, weak);
        }
        // the run of Han characters, up to where a particle or honorific starts
        let mut ends = [0usize; 6];
        let mut n = 0;
        while n < 6 {
            let Some(c) = self.char_at(k) else { break };
            let rest = self.text.get(k..).unwrap_or("");
            if !han(c)
                || matches!(
                    c,
                    '的' | '是'
                        | '在'
                        | '和'
                        | '与'
                        | '及'
                        | '今'
                        | '我'
                        | '你'
                        | '他'
                        | '她'
                        | '様'
                        | '殿'
                        | '氏'
                )
                || ["先生", "女士", "小姐", "同学", "老师", "医生", "教授"]
                    .iter()
                    .any(|h| rest.starts_with(h))
            {
                break;
            }
            k += c.len_utf8();
            if let Some(slot) = ends.get_mut(n) {
                *slot = k;
            }
            n += 1;
        }
        let surname = self.char_at(s).is_some_and(|c| CJK_SURNAMES.contains(c));
        let take = match n {
            2..=4 => n,
            // a longer run: a Chinese name (surname and one or two characters) followed by words
            5.. if surname => 3,
            _ => return None,
        };
        if weak && !surname {
            return None;
        }
        let e = *ends.get(take - 1)?;
        self.push(EntityType::Person, s, e, 75);
        Some(e)
    }

    /// A Korean name at `s` after a cue (`제 이름은 김민준입니다`): a common surname and two
    /// syllables, cut from the particles and endings written onto it; a two-syllable run alone
    /// is a name too (`이름: 김민`). Pushed; where it ends.
    fn korean_name_at(&mut self, s: usize, weak: bool) -> Option<usize> {
        let mut k = s;
        let mut ends = [0usize; 3];
        let mut n = 0;
        while let Some(c) = self.char_at(k) {
            if !hangul(c) {
                break;
            }
            k += c.len_utf8();
            if let Some(slot) = ends.get_mut(n) {
                *slot = k;
            }
            n += 1;
            if n > 8 {
                break;
            }
        }
        let surname = self.char_at(s).is_some_and(|c| KOREAN_SURNAMES.contains(c));
        let take = match n {
            2 if !weak || surname => 2,
            3.. if surname => 3,
            _ => return None,
        };
        let e = *ends.get(take - 1)?;
        self.push(EntityType::Person, s, e, 75);
        Some(e)
    }

    /// A capitalized word: end of the letters that may belong to a name starting at `i`.
    fn name_word_end(&self, i: usize) -> usize {
        let b = self.b;
        let mut j = i + 1;
        while j < b.len() {
            let c = at(b, j);
            let joiner = (c == b'-' || c == b'\'') && at(b, j + 1).is_ascii_alphabetic();
            if c.is_ascii_alphabetic() || c >= 0x80 || joiner {
                j += 1;
            } else {
                break;
            }
            if j - i > 40 {
                break;
            }
        }
        // stop before non-letter non-ASCII (punctuation such as `’` or CJK): keep letters only
        let word = self.word_at(i, j);
        let letters = word
            .char_indices()
            .find(|(_, ch)| !(ch.is_alphabetic() || *ch == '-' || *ch == '\''))
            .map_or(word.len(), |(k, _)| k);
        // a possessive is not part of the name: `Hinnant's`
        let word = word.get(..letters).unwrap_or("");
        if letters > 3 && word.ends_with("'s") {
            return i + letters - 2;
        }
        i + letters
    }

    /// Whether `s..e` looks like a name: uppercase first, lowercase after.
    fn name_like(&self, s: usize, e: usize) -> bool {
        let word = self.word_at(s, e);
        let mut chars = word.chars();
        if !chars.next().is_some_and(char::is_uppercase) || self.w.not_surnames.contains(word) {
            return false;
        }
        // at least one lowercase letter, never two capitals in a row (McDonald yes, API no),
        // and a capital inside only after a short prefix (MacLeod, DeShawn; not TestClient,
        // ProviderKind)
        let mut lower = false;
        let mut prev_upper = true;
        let mut prev_joiner = false;
        for (k, c) in chars.enumerate() {
            let joiner = matches!(c, '-' | '\'');
            if c.is_lowercase() {
                lower = true;
                prev_upper = false;
            } else if c.is_uppercase() {
                if prev_upper || (k > 2 && !prev_joiner) {
                    return false;
                }
                prev_upper = true;
            } else {
                prev_upper = false;
            }
            prev_joiner = joiner;
        }
        lower
    }

    /// The words before `k` on the same line, nearest first: up to four runs of letters
    /// (`'`, `’`, `.` and `-` inside), one or two spaces apart, none before `floor`.
    fn words_before(&self, mut k: usize, floor: usize, max: usize) -> ([(usize, usize); 4], usize) {
        let b = self.b;
        let mut words = [(0usize, 0usize); 4];
        let mut n = 0;
        while n < max.min(4) {
            let e = k;
            while k > floor
                && e - k < 24
                && (at(b, k - 1).is_ascii_alphabetic()
                    || at(b, k - 1) >= 0x80
                    || matches!(at(b, k - 1), b'\'' | b'.' | b'-'))
            {
                k -= 1;
            }
            // a word cut from a longer token (`charge_to`, `v2to`) is no cue
            if k == e || (k > floor && (alnum(at(b, k - 1)) || at(b, k - 1) == b'_')) {
                break;
            }
            if let Some(w) = words.get_mut(n) {
                *w = (k, e);
            }
            n += 1;
            let mut spaces = 0;
            while k > floor && at(b, k - 1) == b' ' && spaces < 2 {
                k -= 1;
                spaces += 1;
            }
            if spaces == 0 {
                break;
            }
        }
        (words, n)
    }

    /// Whether the words ending at `k` end with a name cue (only closing lines when
    /// `sign_off_only`): its kind, and where its first word starts. Reads the nearest word, and
    /// the words before it only when a phrase ending with it has more words.
    fn cue_phrase(&self, k: usize, floor: usize, sign_off_only: bool) -> Option<(CueKind, usize)> {
        let (one, n) = self.words_before(k, floor, 1);
        let &(s, e) = one.get(..n).unwrap_or(&[]).first()?;
        let mut buf = [0u8; 32];
        let last = lower(self.word_at(s, e), &mut buf);
        self.cue_phrase_at(k, floor, (s, e), last, sign_off_only)
    }

    /// [`cue_phrase`](Self::cue_phrase) when the nearest word `(s, e)` and its lowercase form
    /// are already known.
    fn cue_phrase_at(
        &self,
        k: usize,
        floor: usize,
        (s, e): (usize, usize),
        last: &str,
        sign_off_only: bool,
    ) -> Option<(CueKind, usize)> {
        let last = last.trim_end_matches('.').trim_start_matches('\'');
        let entries = self.w.name_cues.get(last)?;
        let more = entries.iter().any(|(earlier, _)| !earlier.is_empty());
        let one = [(s, e), (0, 0), (0, 0), (0, 0)];
        let (words, n) = if more {
            self.words_before(k, floor, 4)
        } else {
            (one, 1)
        };
        let words = words.get(..n).unwrap_or(&[]);
        'phrases: for (earlier, kind) in entries {
            if sign_off_only && *kind != CueKind::SignOff {
                continue;
            }
            let mut rest = words.get(1..).unwrap_or(&[]).iter();
            let mut first = s;
            for want in earlier.iter().rev() {
                let Some(&(ws, we)) = rest.next() else {
                    continue 'phrases;
                };
                let mut wb = [0u8; 32];
                if lower(self.word_at(ws, we), &mut wb).trim_start_matches('\'') != *want {
                    continue 'phrases;
                }
                first = ws;
            }
            return Some((*kind, first));
        }
        None
    }

    /// What introduces a capitalized word at `i` as a name, if anything: a title (`Dr.`), a
    /// form field (`Name:`, `Patient:`), a phrase or label (`my name is`, `Dear`, `tenant,`), or
    /// a closing line above it (`Best regards,\n`). Looks back at most [`LOOK_BACK`] bytes.
    fn name_cue(&self, i: usize) -> Option<Cue> {
        let b = self.b;
        let floor = self.last_end.max(i.saturating_sub(LOOK_BACK));
        let mut k = i;
        let mut spaces = 0;
        while k > floor && matches!(at(b, k - 1), b' ' | b'\t') && spaces < 3 {
            k -= 1;
            spaces += 1;
        }
        if k > floor && matches!(at(b, k - 1), b'\n' | b'\r') {
            // a closing line on its own line above: `Best regards,` / `Mit freundlichen Grüßen`
            let mut newlines = 0;
            while k > floor && matches!(at(b, k - 1), b'\n' | b'\r' | b' ' | b'\t') {
                if at(b, k - 1) == b'\n' {
                    newlines += 1;
                    if newlines > 2 {
                        return None;
                    }
                }
                k -= 1;
            }
            if k > floor && matches!(at(b, k - 1), b',' | b'!' | b'.') {
                k -= 1;
            }
            // the closing words are the whole line
            let (_, first) = self.cue_phrase(k, floor, true)?;
            let line_start = first <= floor || matches!(at(b, first - 1), b'\n' | b'\r');
            return line_start.then_some(Cue::Phrase);
        }
        let punct = (k > floor && matches!(at(b, k - 1), b':' | b',' | b'=')).then(|| at(b, k - 1));
        if punct.is_some() {
            k -= 1;
            let mut sp = 0;
            while k > floor && at(b, k - 1) == b' ' && sp < 2 {
                k -= 1;
                sp += 1;
            }
        } else if spaces == 0 {
            return None;
        }
        let (one, n) = self.words_before(k, floor, 1);
        let &(s, e) = one.get(..n).unwrap_or(&[]).first()?;
        let written = self.word_at(s, e);
        if punct.is_none()
            && spaces == 1
            && matches!(
                written,
                "San"
                    | "Santa"
                    | "Santo"
                    | "São"
                    | "Saint"
                    | "Sainte"
                    | "St."
                    | "Ste."
                    | "Sankt"
                    | "Fort"
                    | "Port"
                    | "Mount"
                    | "Mt."
                    | "Cape"
                    | "Lake"
                    | "Los"
                    | "Las"
            )
        {
            return Some(Cue::Place);
        }
        let mut buf = [0u8; 32];
        let lowered = lower(written, &mut buf);
        // the longest title is `dott.ssa`
        if punct.is_none() && written.len() <= 8 {
            let w = lowered.trim_start_matches('\'');
            // a title, not a unit after a number (`3.3 ms. First`)
            let after_number =
                s > floor && at(b, s - 1) == b' ' && at(b, s.saturating_sub(2)).is_ascii_digit();
            if self.w.titles.contains(w) && !after_number {
                return Some(Cue::Title);
            }
        }
        // `FROM Customers`, `WHERE Name`: a keyword in capitals introduces no name
        let colon = matches!(punct, Some(b':' | b'='));
        if !colon && written.len() >= 3 && written.bytes().all(|c| c.is_ascii_uppercase()) {
            return None;
        }
        // a label that ends a sentence (`a patent holder.  Therefore`) introduces nothing
        if written.ends_with('.') {
            return None;
        }
        match self.cue_phrase_at(k, floor, (s, e), lowered, false)?.0 {
            CueKind::Field if !colon => None,
            _ if colon => Some(Cue::Form),
            _ => Some(Cue::Phrase),
        }
    }

    /// Whether a known surname that is not also an everyday word follows (`Philippa Gonzales`).
    fn surname_follows(&self, e1: usize) -> bool {
        let b = self.b;
        let ws = e1 + 1;
        if at(b, e1) != b' ' || (!at(b, ws).is_ascii_uppercase() && at(b, ws) < 0x80) {
            return false;
        }
        let we = self.name_word_end(ws);
        let word = self.word_at(ws, we);
        self.w.surnames.contains(word)
            && !self.w.word_surnames.contains(word)
            && self.name_like(ws, we)
    }

    /// Whether a name-like word may continue a name: not a sentence opener or field name.
    fn name_word_ok(&self, s: usize, e: usize) -> bool {
        let w = self.word_at(s, e);
        // a short word that closes the name before punctuation (`Nguyễn Văn An,`) is part of it
        let closes = w.len() <= 3 && matches!(at(self.b, e), 0 | b',' | b'.' | b';' | b')' | b'\n');
        !self.w.stop_words.contains(w)
            || closes
            || self.w.surnames.contains(w)
            || self.w.given.contains(w)
    }

    fn name(&mut self, i: usize) -> usize {
        let b = self.b;
        // ASCII fast path: most capitalized words are plain ASCII and end at a space or `.`
        let ascii_end = run(b, i + 1, 40, |c| c.is_ascii_lowercase());
        // a capitalized local part of an e-mail address (`Anna.Kowalska@…`)
        let next = at(b, ascii_end);
        let joined = matches!(next, b'.' | b'_' | b'%' | b'+' | b'-')
            && (alnum(at(b, ascii_end + 1)) || at(b, ascii_end + 1) >= 0x80);
        if next >= 0x80 || next.is_ascii_alphanumeric() || next == b'@' || joined {
            if let Some(a) = self.email_ahead(i) {
                return self.email(a);
            }
        }
        let e1 = if at(b, ascii_end) < 0x80
            && !at(b, ascii_end).is_ascii_alphabetic()
            && !matches!(at(b, ascii_end), b'-' | b'\'')
        {
            if ascii_end - i < 2 || self.w.not_surnames.contains(self.word_at(i, ascii_end)) {
                return run(b, i, usize::MAX, word_byte);
            }
            ascii_end
        } else {
            let e1 = self.name_word_end(i);
            if !self.name_like(i, e1) {
                return run(b, i, usize::MAX, word_byte);
            }
            e1
        };
        let given = self.w.given.contains(self.word_at(i, e1));
        let mut buf = [0u8; 32];
        // a title is a cue for the next word, never a name itself
        if !given && e1 - i <= 6 {
            let own_end = if at(b, e1) == b'.' { e1 + 1 } else { e1 };
            let own = lower(self.word_at(i, own_end), &mut buf);
            if self.w.titles.contains(own) || self.w.titles.contains(own.trim_end_matches('.')) {
                return e1;
            }
        }
        // code, not a name: `Principal::new`, `Config {`, `TestClient(app)`, `Vec<T>`
        if matches!(at(b, e1), b'(' | b'<' | b'{' | b'}' | b'[') || b.get(e1..e1 + 2) == Some(b"::")
        {
            return e1;
        }
        let cue = self.name_cue(i);
        // a saint's or a place's prefix makes a place: `San Francisco`, `São Paulo`, `St. Louis`
        if cue == Some(Cue::Place) {
            return e1;
        }
        let first = self.word_at(i, e1);
        // sentence openers, field names, countries and cities never start a name, whatever
        // precedes them (`Merci Garcia`, `FROM Customers`, `from Germany`); a title still makes
        // `Mr. Le` a name
        if (cue != Some(Cue::Title) || (e1 - i > 3 && !self.w.surnames.contains(first)))
            && !given
            && self.w.never_first.contains(first)
        {
            return e1;
        }
        if cue.is_none() && !given && !self.surname_follows(e1) {
            return e1;
        }
        // following words: a middle initial, particles (`de`, `van`), then capitalized words;
        // after a cue any name-like word (`Alejandro Ruiz Ortega`), without one only known names
        let mut end = e1;
        let mut extra = 0;
        let max_extra = if cue.is_some() { 3 } else { 2 };
        // `Nowak, Katarzyna` in a form field
        if cue == Some(Cue::Form) && at(b, e1) == b',' && at(b, e1 + 1) == b' ' {
            let ws = e1 + 2;
            let we = self.name_word_end(ws);
            if we > ws && self.name_like(ws, we) && self.name_word_ok(ws, we) {
                end = we;
                extra = 1;
            }
        }
        loop {
            if at(b, end) != b' ' || extra >= max_extra {
                break;
            }
            let ws = end + 1;
            if at(b, ws).is_ascii_uppercase() && at(b, ws + 1) == b'.' && at(b, ws + 2) == b' ' {
                let we = self.name_word_end(ws + 3);
                if at(b, ws + 3).is_ascii_uppercase() && self.name_like(ws + 3, we) {
                    end = we;
                    extra += 1;
                    continue;
                }
                break;
            }
            if cue.is_some() && at(b, ws).is_ascii_lowercase() {
                let pe = run(b, ws, 6, |c| c.is_ascii_lowercase());
                let particle = matches!(
                    self.word_at(ws, pe),
                    "de" | "del"
                        | "della"
                        | "di"
                        | "da"
                        | "das"
                        | "do"
                        | "dos"
                        | "du"
                        | "van"
                        | "von"
                        | "der"
                        | "den"
                        | "ten"
                        | "ter"
                        | "le"
                        | "bin"
                        | "ibn"
                        | "al"
                        | "y"
                        | "e"
                );
                let ns = pe + 1;
                let ne = self.name_word_end(ns);
                if particle && at(b, pe) == b' ' && self.name_like(ns, ne) {
                    end = ne;
                    extra += 1;
                    continue;
                }
                break;
            }
            if !at(b, ws).is_ascii_uppercase() && at(b, ws) < 0x80 {
                break;
            }
            let we = self.name_word_end(ws);
            if !self.name_like(ws, we) || !self.name_word_ok(ws, we) {
                break;
            }
            let word = self.word_at(ws, we);
            // without a cue, after the first extra word only a known surname or given name
            // extends the name
            if cue.is_none()
                && extra >= 1
                && !self.w.surnames.contains(word)
                && !self.w.given.contains(word)
            {
                break;
            }
            end = we;
            extra += 1;
        }
        if cue.is_some() || extra > 0 {
            let confidence = if cue.is_some() { 80 } else { 75 };
            self.push(EntityType::Person, i, end, confidence);
            return end;
        }
        e1
    }

    // ---------- punctuation triggers ----------

    /// The char before byte `i` (on a boundary), if any.
    fn char_before(&self, i: usize) -> Option<char> {
        self.text.get(..i).and_then(|t| t.chars().next_back())
    }

    /// The char at byte `i` (on a boundary), if any.
    fn char_at(&self, i: usize) -> Option<char> {
        self.text.get(i..).and_then(|t| t.chars().next())
    }

    /// Where the local part of an e-mail address running forward from `i` meets its `@`, if
    /// it does within 64 bytes: a capitalized local part (`Anna.Kowalska@…`) is an address, not
    /// a name.
    fn email_ahead(&self, i: usize) -> Option<usize> {
        let mut j = i;
        while j - i < 64 {
            match self.char_at(j) {
                Some('@') => {
                    return (j > i && self.char_at(j + 1).is_some_and(domain_char)).then_some(j)
                }
                Some(c) if local_char(c) => j += c.len_utf8(),
                _ => return None,
            }
        }
        None
    }

    fn email(&mut self, a: usize) -> usize {
        // the local part: ASCII atoms and letters of alphabetic scripts (`jürgen.müller@…`)
        let mut s = a;
        while s > self.last_end && a - s < 64 {
            let c = at(self.b, s - 1);
            if c < 0x80 {
                // the usual case: ASCII, byte by byte
                if !local_char(char::from(c)) {
                    break;
                }
                s -= 1;
                continue;
            }
            match self.char_before(s) {
                Some(c) if local_char(c) => s -= c.len_utf8(),
                _ => break,
            }
        }
        while s < a && at(self.b, s) == b'.' {
            s += 1;
        }
        if s == a {
            return a + 1;
        }
        // the domain: labels of ASCII letters, digits, `-` and letters of alphabetic scripts
        // (`müller.de`)
        let mut e = a + 1;
        while e - a < 255 {
            let c = at(self.b, e);
            if c < 0x80 {
                if !(domain_char(char::from(c)) || c == b'.') || e >= self.b.len() {
                    break;
                }
                // two dashes only in punycode (`xn--`): a run of them (a private key's
                // `-----BEGIN` glued to the address) ends the domain
                if c == b'-'
                    && at(self.b, e + 1) == b'-'
                    && !(e >= 2
                        && self
                            .b
                            .get(e - 2..e)
                            .is_some_and(|x| x.eq_ignore_ascii_case(b"xn")))
                {
                    break;
                }
                e += 1;
                continue;
            }
            match self.char_at(e) {
                Some(c) if domain_char(c) => e += c.len_utf8(),
                _ => break,
            }
        }
        while e > a + 1 && matches!(at(self.b, e - 1), b'.' | b'-') {
            e -= 1;
        }
        // the longest domain whose last label is a top-level domain (`a@b.es.x` → `a@b.es`)
        loop {
            let domain = self.word_at(a + 1, e);
            let Some(dot) = domain.rfind('.') else {
                return a + 1;
            };
            let tld = domain.get(dot + 1..).unwrap_or("");
            if dot == 0 {
                return a + 1;
            }
            let chars = tld.chars().count();
            let letters = tld
                .chars()
                .all(|c| c.is_ascii_alphabetic() || domain_char(c) && !c.is_ascii());
            if ((2..=24).contains(&chars) && letters) || (tld.starts_with("xn--") && tld.len() > 5)
            {
                break;
            }
            e = a + 1 + dot;
        }
        self.push(EntityType::Email, s, e, 95);
        e
    }

    fn url_end(&self, from: usize) -> usize {
        let b = self.b;
        let mut e = run(b, from, 2048, |c| {
            !(c.is_ascii_whitespace()
                || c.is_ascii_control()
                || matches!(c, b'<' | b'>' | b'"' | b'\'' | b'`'))
        });
        // a private key's `-----BEGIN` glued to the URL is not part of it
        if let Some(k) = b
            .get(from..e)
            .and_then(|u| u.windows(10).position(|w| w == b"-----BEGIN"))
        {
            e = from + k;
        }
        // the cap may fall inside a character (CJK glued to the URL): end before it, or the
        // finding would be dropped for not lying on a boundary
        while e > from && !self.text.is_char_boundary(e) {
            e -= 1;
        }
        loop {
            let last = at(b, e - 1);
            if e <= from {
                break;
            }
            let open_close = |o: u8, c: u8| {
                let seg = b.get(from..e).unwrap_or(&[]);
                seg.iter().filter(|&&x| x == c).count() > seg.iter().filter(|&&x| x == o).count()
            };
            if matches!(last, b'.' | b',' | b';' | b':' | b'!' | b'?' | b'*')
                || (last == b')' && open_close(b'(', b')'))
                || (last == b']' && open_close(b'[', b']'))
                || (last == b'}' && open_close(b'{', b'}'))
            {
                e -= 1;
            } else {
                break;
            }
        }
        e
    }

    fn colon(&mut self, c: usize) -> usize {
        let b = self.b;
        if at(b, c + 1) == b'/' && at(b, c + 2) == b'/' {
            let mut s = c;
            while s > self.last_end && c - s < 8 && at(b, s - 1).is_ascii_alphabetic() {
                s -= 1;
            }
            let scheme = self.word_at(s, c).to_ascii_lowercase();
            if matches!(
                scheme.as_str(),
                "http" | "https" | "ftp" | "ftps" | "sftp" | "ws" | "wss"
            ) && self.starts(s)
            {
                let e = self.url_end(c + 3);
                if e > c + 3 && alnum(at(b, c + 3)) {
                    self.push(EntityType::Url, s, e, 90);
                    return e;
                }
            }
            return c + 3;
        }
        let hexc = |x: u8| x.is_ascii_hexdigit() || x == b':';
        if !(c > 0 && hexc(at(b, c - 1))
            || at(b, c + 1) == b':'
            || at(b, c + 1).is_ascii_hexdigit())
        {
            return c + 1;
        }
        let mut s = c;
        while s > self.last_end && c - s < 39 && hexc(at(b, s - 1)) {
            s -= 1;
        }
        if c - s == 2 {
            if let Some(e) = self.mac(s) {
                return e;
            }
        }
        let e = run(b, c, 45, |x| hexc(x) || x == b'.');
        let mut e2 = e;
        while e2 > c && at(b, e2 - 1) == b'.' {
            e2 -= 1;
        }
        if alnum(self.before(s)) || self.before(s) == b'.' || alnum(at(b, e)) {
            // a label glued to its value (`SSN:434576781`): the value is read on its own
            if s == c {
                return c + 1;
            }
            return e.max(c + 1);
        }
        let cand = self.word_at(s, e2);
        if cand.bytes().filter(|&x| x == b':').count() >= 2 {
            if let Ok(ip) = cand.parse::<Ipv6Addr>() {
                if !ip.is_loopback() && !ip.is_unspecified() && cand.len() >= 6 {
                    self.push(EntityType::IpAddress, s, e2, 85);
                }
            }
        }
        e.max(c + 1)
    }

    fn dot(&mut self, d: usize) -> usize {
        let b = self.b;
        if d >= 3
            && self.word_at(d - 3, d).eq_ignore_ascii_case("www")
            && d - 3 >= self.last_end
            && self.starts(d - 3)
        {
            let e = self.url_end(d + 1);
            let host = b.get(d + 1..e).unwrap_or(&[]);
            if host.contains(&b'.') && host.first().is_some_and(|c| alnum(*c)) {
                self.push(EntityType::Url, d - 3, e, 85);
                return e;
            }
        }
        d + 1
    }

    /// The end of a key's body from `from`: letters, digits and `extra`, at most 512 bytes; a
    /// run of dashes ends it (a key never swallows the `-----BEGIN` of a private key glued to
    /// it).
    fn key_token(&self, from: usize, extra: &[u8]) -> usize {
        let b = self.b;
        let mut j = from;
        while j < b.len() && j - from < 512 {
            let c = at(b, j);
            if !(alnum(c) || extra.contains(&c)) || (c == b'-' && at(b, j + 1) == b'-') {
                break;
            }
            j += 1;
        }
        j
    }

    fn dash(&mut self, i: usize) -> usize {
        let b = self.b;
        if b.get(i..).is_some_and(|r| r.starts_with(b"-----BEGIN ")) {
            return self.private_key(i);
        }
        let prefix = |p: &[u8]| {
            i >= self.last_end + p.len()
                && b.get(i - p.len()..i) == Some(p)
                && self.starts(i - p.len())
        };
        if prefix(b"sk") {
            let e = self.key_token(i + 1, b"_-");
            if e - (i + 1) >= 20 {
                self.push(EntityType::ApiKey, i - 2, e, 95);
                return e;
            }
        } else if prefix(b"glpat") {
            let e = self.key_token(i + 1, b"_-");
            if e - (i + 1) >= 20 {
                self.push(EntityType::GitlabToken, i - 5, e, 99);
                return e;
            }
        } else if i >= 4
            && b.get(i - 4..i - 1) == Some(b"xox")
            && matches!(at(b, i - 1), b'a' | b'b' | b'p' | b'o' | b's' | b'r')
            && i >= self.last_end + 4
            && self.starts(i - 4)
        {
            let e = self.key_token(i + 1, b"-");
            if e - (i + 1) >= 10 {
                self.push(EntityType::SlackToken, i - 4, e, 99);
                return e;
            }
        }
        i + 1
    }

    fn private_key(&mut self, s: usize) -> usize {
        let b = self.b;
        let header_end = run(b, s + 11, 60, |c| c != b'\n' && c != b'\r');
        let header = b.get(s..header_end).unwrap_or(&[]);
        if !header.windows(16).any(|w| w == b"PRIVATE KEY-----") {
            return s + 1;
        }
        let limit = (header_end + PRIVATE_KEY_BODY).min(b.len());
        let body = b.get(header_end..limit).unwrap_or(&[]);
        let end = match body.windows(9).position(|w| w == b"-----END ") {
            Some(p) => {
                let after = header_end + p + 9;
                let close = b
                    .get(after..(after + 60).min(b.len()))
                    .and_then(|r| r.windows(5).position(|w| w == b"-----"))
                    .map_or(after, |q| after + q + 5);
                close
            }
            // no end marker: the key body as far as it goes
            None => run(b, header_end, PRIVATE_KEY_BODY, |c| {
                alnum(c) || matches!(c, b'+' | b'/' | b'=' | b'\n' | b'\r' | b' ')
            }),
        };
        self.push(EntityType::PrivateKey, s, end, 99);
        end.max(s + 1)
    }

    fn underscore(&mut self, u: usize) -> usize {
        let b = self.b;
        // vendors' keys by their prefix: Stripe secret, restricted and webhook keys, Hugging
        // Face, npm, Shopify, DigitalOcean
        for &(prefix, min) in VENDOR_KEYS {
            let head = prefix.iter().position(|&c| c == b'_').unwrap_or(0);
            if u >= head + self.last_end
                && b.get(u - head..).is_some_and(|r| r.starts_with(prefix))
                && self.starts(u - head)
            {
                let from = u - head + prefix.len();
                let e = self.key_token(from, b"");
                if e - from >= min {
                    self.push(EntityType::ApiKey, u - head, e, 95);
                    return e;
                }
                return from;
            }
        }
        if u >= 3
            && b.get(u - 3..u - 1) == Some(b"gh")
            && matches!(at(b, u - 1), b'p' | b'o' | b'u' | b's' | b'r')
            && u >= self.last_end + 3
            && self.starts(u - 3)
        {
            let e = self.key_token(u + 1, b"");
            if (36..=255).contains(&(e - u - 1)) {
                self.push(EntityType::GithubToken, u - 3, e, 99);
                return e;
            }
        }
        if u >= 6
            && b.get(u - 6..u) == Some(b"github")
            && b.get(u + 1..u + 5) == Some(b"pat_")
            && u >= self.last_end + 6
            && self.starts(u - 6)
        {
            let e = self.key_token(u + 5, b"_");
            if e - (u + 5) >= 22 {
                self.push(EntityType::GithubToken, u - 6, e, 99);
                return e;
            }
        }
        u + 1
    }

    fn jwt(&mut self, s: usize) -> Option<usize> {
        let b = self.b;
        if alnum(self.before(s)) || matches!(self.before(s), b'_' | b'-' | b'.') {
            return None;
        }
        let mut seg_start = s;
        let mut segs = 0;
        let mut end = s;
        while segs < 3 {
            let mut e = seg_start;
            // a run of dashes ends a segment (a private key's `-----BEGIN` glued to the token)
            while e < b.len()
                && e - seg_start < JWT_SEGMENT
                && (alnum(at(b, e))
                    || at(b, e) == b'_'
                    || (at(b, e) == b'-' && at(b, e + 1) != b'-'))
            {
                e += 1;
            }
            if e - seg_start < 5 {
                return None;
            }
            if segs == 1 && b.get(seg_start..seg_start + 3) != Some(b"eyJ") {
                return None;
            }
            segs += 1;
            end = e;
            if segs < 3 {
                if at(b, e) != b'.' {
                    return None;
                }
                seg_start = e + 1;
            }
        }
        self.push(EntityType::Jwt, s, end, 95);
        Some(end)
    }

    fn plus(&mut self, p: usize) -> usize {
        let b = self.b;
        if !at(b, p + 1).is_ascii_digit() || alnum(self.before(p)) {
            return p + 1;
        }
        let mut j = p + 1;
        let mut digits = 0;
        let mut end = j;
        // the number up to each separator: where to fall back if the last group turns out glued
        // to letters (`+34 612 517 857lippa81@…`) or the groups run past 15 digits (`+190960520273
        // 6686 C Pl`: the 6686 starts an address), so that redacting the neighbour never exposes
        // a number the longer run hid
        let mut seps: Vec<(usize, usize)> = Vec::new();
        while j < b.len() && j - p < 32 {
            let c = at(b, j);
            if c.is_ascii_digit() {
                digits += 1;
                j += 1;
                end = j;
            } else if matches!(c, b' ' | b'-' | b'.')
                && (at(b, j + 1).is_ascii_digit() || at(b, j + 1) == b'(')
                && !(c == b' ' && self.email_ahead(j + 1).is_some())
            {
                seps.push((end, digits));
                j += 1;
            } else if c == b'(' {
                let close = run(b, j + 1, 4, |x| x.is_ascii_digit());
                if at(b, close) != b')' || close == j + 1 {
                    break;
                }
                digits += close - j - 1;
                j = close + 1;
                if at(b, j) == b' ' {
                    j += 1;
                }
            } else {
                break;
            }
        }
        if alnum(at(b, end)) || digits > 15 {
            if let Some(&(e, d)) = seps.iter().rev().find(|(_, d)| (8..=15).contains(d)) {
                (end, digits) = (e, d);
            }
        }
        if (8..=15).contains(&digits) && !alnum(at(b, end)) && at(b, p + 1) != b'0' {
            let kind = if self.context(p) == Some(Ctx::Fax) {
                EntityType::Fax
            } else {
                EntityType::Phone
            };
            self.push(kind, p, end, 85);
            return end;
        }
        p + 1
    }

    fn paren(&mut self, p: usize) -> usize {
        let b = self.b;
        // (415) 555-0132, optionally after `1 ` or `+1 ` handled by `plus`; national area
        // codes in brackets: `(21) 9249-7822`, `(030) 1234567`, `(0211) 254 28 90`
        let area_end = run(b, p + 1, 6, |c| c.is_ascii_digit());
        let area = area_end - p - 1;
        if !(2..=5).contains(&area) || at(b, area_end) != b')' || alnum(self.before(p)) {
            return p + 1;
        }
        let mut j = area_end + 1;
        if at(b, j) == b' ' {
            j += 1;
        }
        let ex_end = run(b, j, 6, |c| c.is_ascii_digit());
        if area == 3 && ex_end - j == 3 && matches!(at(b, ex_end), b'-' | b'.' | b' ') {
            let line_end = run(b, ex_end + 1, 5, |c| c.is_ascii_digit());
            if line_end - ex_end - 1 == 4
                && !alnum(at(b, line_end))
                && nanp_ok(&digits_of(b, p, line_end))
            {
                let fax = self.context(p) == Some(Ctx::Fax);
                return self.push_phone(p, line_end, fax, 85);
            }
        }
        // the rest: groups of digits joined by spaces or dashes, 9–12 digits in all
        let mut e = ex_end;
        if e == j {
            return p + 1;
        }
        let mut groups = 1;
        while groups < 5 && matches!(at(b, e), b' ' | b'-') && at(b, e + 1).is_ascii_digit() {
            e = run(b, e + 1, 8, |c| c.is_ascii_digit());
            groups += 1;
        }
        let n = digits_of(b, p, e).count;
        if !(9..=12).contains(&n) || alnum(at(b, e)) || (ex_end - j < 3) {
            return p + 1;
        }
        let ctx = self.context(p);
        if ctx == Some(Ctx::Negative) {
            return p + 1;
        }
        self.push_phone(p, e, ctx == Some(Ctx::Fax), 75)
    }
}

/// [`lower`] for the unit tests.
#[cfg(test)]
pub(crate) fn lower_for_tests<'a>(word: &str, buf: &'a mut [u8; 32]) -> &'a str {
    lower(word, buf)
}
