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

fn card_ok(d: &[u8]) -> bool {
    (13..=19).contains(&d.len()) && card_iin(d) && luhn_digits(d)
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
            if let Some(p) = text.rfind("-----BEGIN ") {
                let open = !text.get(p..).is_some_and(|t| t.contains("-----END "));
                // header line, body, end marker and its line
                if open && b.len() - p <= 11 + 60 + PRIVATE_KEY_BODY + 9 + 60 {
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

    /// The nearest context phrase ending in the 40 bytes before `start`. Walks back word by
    /// word (words are runs of non-space, trimmed of punctuation at either end) and stops at the
    /// first phrase found, so the usual case — `SSN 123-45-6789` — costs one lookup. It gives up
    /// at a word holding a digit or a redaction marker: that is another value, which the context
    /// words before it describe.
    fn context(&self, start: usize) -> Option<Ctx> {
        let b = self.b;
        let floor = start.saturating_sub(CONTEXT_WINDOW).max(self.last_end);
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
                    | b'['
                    | b']'
                    | b'='
                    | b'-'
                    | b'*'
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
            if k == floor && floor > 0 && !at(b, k - 1).is_ascii_whitespace() {
                break; // the word is cut by the window
            }
            // another value (a number, an ID, a redaction marker) stands between: the context
            // words before it belong to it, not to this one
            if b.get(k..we).is_some_and(|w| {
                w.iter()
                    .any(|&c| c.is_ascii_digit() || c == b'[' || c == b'*')
            }) {
                return None;
            }
            let (mut s2, mut e2) = (k, we);
            while s2 < e2 && trim(at(b, s2)) {
                s2 += 1;
            }
            while e2 > s2 && trim(at(b, e2 - 1)) {
                e2 -= 1;
            }
            if s2 == e2 || e2 - s2 > 32 {
                continue;
            }
            let mut buf = [0u8; 32];
            let last = lower(self.word_at(s2, e2), &mut buf);
            let Some(phrases) = self.w.context.get(last) else {
                continue;
            };
            'phrases: for (earlier, kind) in phrases {
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
                return Some(*kind);
            }
        }
        None
    }

    fn word_at(&self, s: usize, e: usize) -> &str {
        self.text.get(s..e).unwrap_or("")
    }

    // ---------- numbers ----------

    fn digit(&mut self, i: usize) -> usize {
        let b = self.b;
        if !self.starts(i) {
            return run(b, i, usize::MAX, alnum);
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
            let c = at(b, e);
            let next_digit = at(b, e + 1).is_ascii_digit();
            if count < 8 && next_digit && matches!(c, b'-' | b'.' | b' ' | b'/') {
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
        if tail.is_ascii_alphabetic() || (tail == b'-' && alnum(at(b, end + 1))) {
            // a mixed token such as 7ABC123, 1EG4-TE5-MK73, 12a, 5th
            if let Some(e) = self.german_address(i) {
                return e;
            }
            if let Some(e) = self.id_token(i) {
                return e;
            }
            if let Some(e) = self.address(i, first_e) {
                return e;
            }
            return id_run(b, i);
        }
        if groups.len() == 1 {
            if let Some(e) = self.single_number(first_s, first_e) {
                return e;
            }
            return first_e;
        }
        if let Some(e) = self.grouped(groups, sep) {
            return e;
        }
        // nothing as a whole: the first group on its own
        if let Some(e) = self.single_number(first_s, first_e) {
            return e;
        }
        first_e
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
            let versionish =
                before == b'v' || before == b'V' || self.context(s) == Some(Ctx::Negative);
            // loopback, unspecified and netmasks identify no one
            let first = number(&digits_of(b, s, groups.first()?.1));
            let special = matches!(first, 0 | 127 | 255);
            if ok && !versionish && !special {
                self.push(EntityType::IpAddress, s, e, 85);
                return Some(e);
            }
            return None;
        }
        // numeric dates
        if lens.len() == 3 && matches!(sep, b'/' | b'-' | b'.') {
            let g = |k: usize| -> Option<u32> {
                let &(gs, ge) = groups.get(k)?;
                u32::try_from(number(&digits_of(b, gs, ge))).ok()
            };
            let (a, m, c) = (g(0)?, g(1)?, g(2)?);
            let date = match (lens.first()?, lens.get(1)?, lens.get(2)?) {
                (4, 2, 2) => valid_date(a, m, c),
                (1 | 2, 1 | 2, 4) => valid_date(c, a, m) || valid_date(c, m, a),
                (1 | 2, 1 | 2, 2) => {
                    (1..=12).contains(&a) && (1..=31).contains(&m)
                        || (1..=12).contains(&m) && (1..=31).contains(&a)
                }
                _ => false,
            };
            if date {
                self.dated(s, e);
                return Some(e);
            }
        }
        // SSN / ITIN: 3-2-4
        if lens == [3, 2, 4] && matches!(sep, b'-' | b' ') {
            let ctx = self.context(s);
            if ctx == Some(Ctx::Negative) {
                return Some(e);
            }
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
        {
            let ctx = self.context(s);
            if nanp_ok(&d) && ctx != Some(Ctx::Negative) && before != b'#' {
                let kind = if ctx == Some(Ctx::Fax) {
                    EntityType::Fax
                } else {
                    EntityType::Phone
                };
                self.push(kind, s, e, 80);
            }
            return Some(e);
        }
        // cards: 13–19 digits in groups of 4 (or 4-6-5)
        if matches!(sep, b' ' | b'-') && (13..=19).contains(&d.len()) && lens.first() == Some(&4) {
            if card_ok(&d) && self.context(s) != Some(Ctx::Negative) {
                self.push(EntityType::CreditCard, s, e, 90);
            }
            return Some(e);
        }
        // ZIP+4
        if lens == [5, 4] && sep == b'-' && self.zip_context(s) {
            self.push(EntityType::ZipCode, s, e, 80);
            return Some(e);
        }
        // international numbers written without `+`, with a phone context word
        if matches!(sep, b' ' | b'-' | b'.') && (9..=15).contains(&d.len()) && d.first() == Some(&0)
        {
            let ctx = self.context(s);
            if matches!(ctx, Some(Ctx::Phone | Ctx::Fax)) {
                let kind = if ctx == Some(Ctx::Fax) {
                    EntityType::Fax
                } else {
                    EntityType::Phone
                };
                self.push(kind, s, e, 70);
                return Some(e);
            }
        }
        None
    }

    /// A date found at `s..e`: DATE_OF_BIRTH or DATE when the context ties it to a person;
    /// timestamps and undated mentions are not findings.
    fn dated(&mut self, s: usize, e: usize) {
        let b = self.b;
        let timestamp = at(b, e) == b'T' && at(b, e + 1).is_ascii_digit()
            || at(b, e) == b' ' && at(b, e + 1).is_ascii_digit() && at(b, e + 3) == b':';
        match self.context(s) {
            Some(Ctx::Dob) => self.push(EntityType::DateOfBirth, s, e, 90),
            Some(Ctx::ClinicalDate) if !timestamp => self.push(EntityType::Date, s, e, 75),
            _ => {}
        }
    }

    /// `, CA 94105` or `CA 94105`: a US state code right before.
    fn after_state(&self, s: usize) -> bool {
        s >= self.last_end + 3
            && at(self.b, s - 1) == b' '
            && self.w.states.contains(self.word_at(s - 3, s - 1))
            && (s == 3 || !alnum(at(self.b, s - 4)))
    }

    fn zip_context(&self, s: usize) -> bool {
        self.after_state(s) || self.context(s) == Some(Ctx::Zip)
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
            Some(Ctx::Phone) if nanp_ok(&d) => self.push(EntityType::Phone, s, e, 75),
            Some(Ctx::Fax) if nanp_ok(&d) => self.push(EntityType::Fax, s, e, 75),
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
            _ if card_ok(&d) => self.push(EntityType::CreditCard, s, e, 85),
            _ => return None,
        }
        Some(e)
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

    /// `March 3, 1985`, `3 March 1985`, `3. März 1985`, `15 de marzo de 1990`.
    fn month_date(&mut self, s: usize, e: usize) -> Option<usize> {
        let b = self.b;
        if e - s > 2 {
            return None;
        }
        let day = number(&digits_of(b, s, e));
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
                        self.dated(ms, ye);
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
        if self.word_at(k, k + 3) == "de " {
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
        self.dated(s, ye);
        Some(ye)
    }

    /// An identifier with letters and digits, typed by the context word before it.
    fn id_token(&mut self, s: usize) -> Option<usize> {
        let b = self.b;
        let mut e = run(b, s, 24, |c| alnum(c) || c == b'-');
        while e > s && at(b, e - 1) == b'-' {
            e -= 1;
        }
        let len = e - s;
        let raw = b.get(s..e)?;
        if !raw.iter().any(u8::is_ascii_digit) || alnum(at(b, e)) {
            return None;
        }
        let kind = match self.context(s)? {
            Ctx::Mrn if (5..=16).contains(&len) => EntityType::MedicalRecordNumber,
            Ctx::HealthPlan if (6..=20).contains(&len) => EntityType::HealthPlanId,
            Ctx::DriverLicense if (5..=16).contains(&len) => EntityType::UsDriverLicense,
            Ctx::License if (5..=16).contains(&len) => EntityType::LicenseNumber,
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

    // ---------- uppercase starts ----------

    fn upper(&mut self, i: usize) -> usize {
        let b = self.b;
        if !self.starts(i) || self.before(i) >= 0x80 {
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
            return run(b, i, usize::MAX, alnum);
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
            if let Some(e) = self.id_token(i) {
                return e;
            }
            return id_run(b, i);
        }
        self.name(i)
    }

    fn iban(&mut self, s: usize) -> Option<usize> {
        let b = self.b;
        let mut j = s;
        let mut count = 0;
        // candidate ends: where a group of the printed form ends
        let mut ends = Vec::new();
        while count < 34 {
            let c = at(b, j);
            if c.is_ascii_uppercase() || c.is_ascii_digit() {
                count += 1;
                j += 1;
                if count >= 15 && !alnum(at(b, j)) {
                    ends.push(j);
                }
            } else if c == b' '
                && count % 4 == 0
                && (at(b, j + 1).is_ascii_uppercase() || at(b, j + 1).is_ascii_digit())
            {
                j += 1;
            } else {
                break;
            }
        }
        let end = ends
            .into_iter()
            .rev()
            .find(|&e| b.get(s..e).is_some_and(iban_ok))?;
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
        let e = run(b, c, 45, |x| hexc(x) || x == b'.');
        let mut e2 = e;
        while e2 > c && at(b, e2 - 1) == b'.' {
            e2 -= 1;
        }
        if alnum(self.before(s)) || self.before(s) == b'.' || alnum(at(b, e)) {
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
        // (415) 555-0132, optionally after `1 ` or `+1 ` handled by `plus`
        let area_end = run(b, p + 1, 4, |c| c.is_ascii_digit());
        if area_end - p - 1 != 3 || at(b, area_end) != b')' {
            return p + 1;
        }
        let mut j = area_end + 1;
        if at(b, j) == b' ' {
            j += 1;
        }
        let ex_end = run(b, j, 4, |c| c.is_ascii_digit());
        if ex_end - j != 3 || !matches!(at(b, ex_end), b'-' | b'.' | b' ') {
            return p + 1;
        }
        let line_end = run(b, ex_end + 1, 5, |c| c.is_ascii_digit());
        if line_end - ex_end - 1 != 4 || alnum(at(b, line_end)) {
            return p + 1;
        }
        let d = digits_of(b, p, line_end);
        if !nanp_ok(&d) {
            return p + 1;
        }
        let kind = if self.context(p) == Some(Ctx::Fax) {
            EntityType::Fax
        } else {
            EntityType::Phone
        };
        self.push(kind, p, line_end, 85);
        line_end
    }
}

/// [`lower`] for the unit tests.
#[cfg(test)]
pub(crate) fn lower_for_tests<'a>(word: &str, buf: &'a mut [u8; 32]) -> &'a str {
    lower(word, buf)
}
