//! The one-pass scanner behind the built-in detectors.
//!
//! One walk over the bytes. A 256-entry class table skips every byte that cannot start a value
//! (lowercase letters, spaces, most punctuation) and sends the rest to a handler: digits to the
//! number shapes, `@` to e-mail, `:` to URLs and IPv6, `(` and `+` to phones, `-` `_` `.` to key
//! prefixes, uppercase letters to names, IBANs, VINs, AWS keys and IDs. Each handler looks at a
//! bounded neighbourhood (context words: the 40 bytes before a value, through one small
//! Aho-Corasick automaton) and returns a position past what it consumed, so the walk is linear
//! on any input. Checksums (Luhn, mod-97, ABA, VIN, NPI, SSN rules) reject look-alikes.

use std::cell::Cell;
use std::net::Ipv6Addr;

use super::words::{
    cjk_cue_end, cjk_region_end, everyday_word, last_two, name_flag, name_role, words, Ctx,
    CueKind, Words, CJK_SURNAMES, FIRMS, KOREAN_SURNAMES, NOT_LONE, PERSON_AFTER, PERSON_BEFORE,
    PLACE_PREFIXES, ROLE_WORDS, WEAK_STREET_SUFFIXES,
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

mod addresses;
mod checks;
mod context;
mod dates;
mod name_shape;
mod names;
mod numbers;
mod phones;
mod tails;
mod tokens;

use checks::*;
pub use checks::{iban_ok, luhn_digits};

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

/// Whether a word could be a secret's field name ([`secret_name`]) by its length and its last
/// letter alone, in either case: most words end otherwise, so this answers most of them.
fn may_be_secret_name(w: &[u8]) -> bool {
    w.len() > 3
        && matches!(
            w.last().map(u8::to_ascii_lowercase),
            Some(b'y' | b't' | b'n' | b'd' | b'l')
        )
}

/// A field name ending in a secret's word after a separator or a known prefix
/// (`stripe_secret_key`, `x-auth-token`, `client_secret`, `apikey`, `accesstoken`), lowercase.
fn secret_name(w: &str) -> bool {
    if !may_be_secret_name(w.as_bytes())
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

/// The end of the run of bytes from `from` that `pred` accepts, at most `max` long.
#[inline]
fn run(b: &[u8], from: usize, max: usize, pred: impl Fn(u8) -> bool) -> usize {
    let end = from.saturating_add(max).min(b.len());
    let mut j = from;
    while j < end && pred(at(b, j)) {
        j += 1;
    }
    j
}

/// The first byte at or after `i` that may start a value (a non-zero [`class`]), eight bytes
/// at a time through lowercase words and spaces.
#[inline]
fn next_start(b: &[u8], i: usize) -> Option<usize> {
    let rest = b.get(i..)?;
    // the next start is often close: look at the first bytes one by one
    let head = rest.get(..rest.len().min(8))?;
    if let Some(k) = head.iter().position(|&c| class(c) != 0) {
        return Some(i + k);
    }
    let mut off = head.len();
    for chunk in rest.get(off..)?.chunks_exact(8) {
        if chunk.iter().fold(0, |a, &c| a | class(c)) != 0 {
            break;
        }
        off += 8;
    }
    let k = rest.get(off..)?.iter().position(|&c| class(c) != 0)?;
    Some(i + off + k)
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
fn lower<'a>(word: &'a str, buf: &'a mut [u8; 32]) -> &'a str {
    // most words are lowercase already: nothing to copy
    if !word
        .bytes()
        .any(|c| c.is_ascii_uppercase() || c == 0xC3 || c == 0xD0)
    {
        // (a word cut inside a character reads as nothing, as below)
        return word.get(..word.len().min(32)).unwrap_or("");
    }
    let n = word.len().min(32);
    let src = word.as_bytes().get(..n).unwrap_or(&[]);
    if src.is_ascii() {
        buf.iter_mut()
            .zip(src)
            .for_each(|(d, &s)| *d = s.to_ascii_lowercase());
        return std::str::from_utf8(buf.get(..n).unwrap_or(&[])).unwrap_or("");
    }
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
    /// The last context read ([`Run::context`]): its start, the end of the last finding then,
    /// and what it found.
    ctx_memo: Cell<(usize, usize, Option<Ctx>)>,
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
            ctx_memo: Cell::new((usize::MAX, 0, None)),
        };
        let mut i = 0;
        let n = b.len();
        while i < n {
            // skip everything that cannot start a value
            match next_start(b, i) {
                Some(k) => i = k,
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

    fn word_at(&self, s: usize, e: usize) -> &str {
        self.text.get(s..e).unwrap_or("")
    }

    // ---------- numbers ----------

    /// The char before byte `i` (on a boundary), if any.
    fn char_before(&self, i: usize) -> Option<char> {
        self.text.get(..i).and_then(|t| t.chars().next_back())
    }

    /// The char at byte `i` (on a boundary), if any.
    fn char_at(&self, i: usize) -> Option<char> {
        self.text.get(i..).and_then(|t| t.chars().next())
    }
}

/// [`lower`] for the unit tests.
#[cfg(test)]
pub(crate) fn lower_for_tests<'a>(word: &'a str, buf: &'a mut [u8; 32]) -> &'a str {
    lower(word, buf)
}
