//! Rewrites text so that detected values are replaced by markers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::detect::{resolve_overlaps, Detector, EntityType, Finding};

/// How a redacted value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarkerFormat {
    /// `[EMAIL]` (default).
    Label,
    /// `****`.
    Mask,
    /// `[EMAIL:3f2a9c]`, a keyed stable digest.
    Hash,
    /// `****1234`.
    Partial,
}

/// `redaction:` of a detector.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionOptions {
    /// Marker style.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker_format: Option<MarkerFormat>,
    /// Pad or cut markers to the length of the value they replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_length: Option<bool>,
    /// Marker text per entity type, overriding the format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_markers: Option<BTreeMap<EntityType, String>>,
}

/// A `hash`-format key from any string (SHA-256 of it): the same material gives the same
/// digests across processes and front doors.
pub fn key_from(material: &str) -> [u8; 32] {
    Sha256::digest(material.as_bytes()).into()
}

/// Replaces findings with markers in the configured format.
#[derive(Debug, Clone)]
pub struct Redactor {
    format: MarkerFormat,
    preserve_length: bool,
    custom_markers: BTreeMap<EntityType, String>,
    custom_names: Vec<String>,
    key: [u8; 32],
}

impl Redactor {
    /// Builds a redactor. `key` keys the `hash` format's digest; `custom_names` label
    /// [`EntityType::Custom`] findings by pattern index.
    pub fn new(
        options: Option<&RedactionOptions>,
        custom_names: Vec<String>,
        key: [u8; 32],
    ) -> Self {
        let o = options.cloned().unwrap_or_default();
        Redactor {
            format: o.marker_format.unwrap_or(MarkerFormat::Label),
            preserve_length: o.preserve_length.unwrap_or(false),
            custom_markers: o.custom_markers.unwrap_or_default(),
            custom_names,
            key,
        }
    }

    fn label(&self, f: &Finding) -> String {
        match (f.entity, f.custom) {
            (EntityType::Custom, Some(i)) => self.custom_names.get(usize::from(i)).map_or_else(
                || "CUSTOM".to_owned(),
                |n| n.to_ascii_uppercase().replace('-', "_"),
            ),
            (e, _) => e.as_str().to_owned(),
        }
    }

    /// The marker for one finding whose value is `value`.
    pub fn marker(&self, f: &Finding, value: &str) -> String {
        let chars = value.chars().count();
        let marker = if let Some(m) = self.custom_markers.get(&f.entity) {
            m.clone()
        } else {
            match self.format {
                MarkerFormat::Label => format!("[{}]", self.label(f)),
                MarkerFormat::Mask => "*".repeat(chars.max(1)),
                MarkerFormat::Hash => {
                    let mut h = Sha256::new();
                    h.update(self.key);
                    h.update(value.as_bytes());
                    let digest = h.finalize();
                    let mut hex = String::with_capacity(6);
                    for b in digest.iter().take(3) {
                        let _ = write!(hex, "{b:02x}");
                    }
                    format!("[{}:{hex}]", self.label(f))
                }
                MarkerFormat::Partial => {
                    let keep = if chars > 8 { 4 } else { 0 };
                    let tail: String = value.chars().skip(chars - keep).collect();
                    format!("{}{tail}", "*".repeat(chars - keep))
                }
            }
        };
        if self.preserve_length {
            let n = marker.chars().count();
            if n < chars {
                return format!("{marker}{}", "*".repeat(chars - n));
            }
            return marker.chars().take(chars).collect();
        }
        marker
    }

    /// Rewrites `text`. `findings` must be sorted and non-overlapping (see
    /// [`resolve_overlaps`](crate::detect::resolve_overlaps)); spans off char boundaries are skipped.
    pub fn redact(&self, text: &str, findings: &[Finding]) -> String {
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        for f in findings {
            if f.start < pos {
                continue;
            }
            let (Some(before), Some(value)) = (text.get(pos..f.start), text.get(f.start..f.end))
            else {
                continue;
            };
            out.push_str(before);
            out.push_str(&self.marker(f, value));
            pos = f.end;
        }
        out.push_str(text.get(pos..).unwrap_or(""));
        out
    }
}

/// Bytes a [`StreamRedactor`] holds back from the end of what it has seen before releasing text:
/// every value the built-in detector reports is reported (as far as it goes) once this many bytes
/// past its start are seen, so no value is ever cut by a release (a value that needs more before
/// it is recognized, an open private-key block or an unfinished JWT, is held by
/// [`Detector::unfinished`]).
pub const STREAM_HOLD_BACK: usize = 512;

/// How far before the hold-back edge a release looks for a break (after whitespace, else after
/// punctuation) to cut at; without one it cuts at the character boundary at the edge.
const STREAM_CUT_SEARCH: usize = 256;

/// Bytes a stream gathers between two scans (so a stream of one-byte chunks is not rescanned on
/// every byte).
const STREAM_STEP: usize = 256;

/// While a stream holds a value back, a rescan waits for half as much again as it holds, at
/// most this much more.
const STREAM_STALL_STEP: usize = 4096;

/// The most a [`StreamRedactor`] holds back while no value is being held: the hold-back, the
/// search for a break and one step. After any push, whatever its size,
/// [`StreamRedactor::held`] is at most this, unless a value that may still be growing
/// straddles the edge.
pub const STREAM_WINDOW: usize = STREAM_HOLD_BACK + STREAM_CUT_SEARCH + STREAM_STEP;

/// The most a [`StreamRedactor`] holds back at all (plus one chunk): a value still growing past
/// this (only a custom pattern can match that much: the longest built-in value is
/// [`LONGEST_VALUE`](crate::detect::LONGEST_VALUE), 24 KiB) is redacted in pieces, each piece
/// replaced by its own marker.
pub const STREAM_HOLD_MAX: usize = 64 * 1024;

/// Bytes of already-emitted text kept as left context for the next scan: more than the
/// detector ever looks back ([`LOOK_BACK`](crate::detect::LOOK_BACK)) plus a value's length.
const STREAM_CONTEXT: usize = 160;

/// How far back the left context may reach to start at a break.
const STREAM_CONTEXT_MAX: usize = 4096;

/// Redacts a stream of text chunks (an SSE response) as it arrives. Feed chunks with
/// [`push`](Self::push), which returns the text that is safe to send now; call
/// [`finish`](Self::finish) at the end.
///
/// **Release.** Text is released up to a cut at least [`STREAM_HOLD_BACK`] bytes before the end
/// of what was received: the last whitespace boundary within 256 bytes before that edge, else
/// the last boundary after punctuation, else the character boundary at the edge (CJK prose,
/// base64), and never inside a value the detector reports there (a cut moves back to its start)
/// nor after the start of one it calls [`unfinished`](Detector::unfinished). So what is held
/// back after a push is at most [`STREAM_WINDOW`] (1 KiB), whatever the chunk sizes, or more
/// while a value that may still grow straddles the edge: back to its start, plus up to 4 KiB
/// gathered before the next rescan, and never more than [`STREAM_HOLD_MAX`] (64 KiB) plus one
/// chunk.
///
/// **Work.** A stream is scanned again only once it has gathered 256 more bytes (while it holds
/// a value back: half again as much as it holds, at most 4 KiB more), each scan reading the held
/// text and at most 4 KiB of left context, so the total work is linear in the stream's length
/// whatever the chunk sizes ([`scanned`](Self::scanned) counts it: about 3.7 bytes read per byte
/// for CJK prose or base64 in 1 to 16 byte chunks).
///
/// **Equality.** The concatenated output equals [`Redactor::redact`] on the whole text, for any
/// chunking, when (a) every value the detector reports is recognized within
/// [`STREAM_HOLD_BACK`] bytes of its start or announced by [`Detector::unfinished`] (true of
/// every built-in type; a pack's `detect_patterns` qualify when their matches are shorter than
/// 512 bytes), (b) no value is longer than [`STREAM_HOLD_MAX`] (built-in values are at most
/// [`LONGEST_VALUE`](crate::detect::LONGEST_VALUE), 24 KiB), and (c) each rescan reads the text
/// as the whole text's scan does. (c) holds when the rescan's left context (at least 160 bytes
/// before the first byte it may release) starts after whitespace within 4 KiB, at the end of a
/// value found within 4 KiB (the built-in scan reads the text after a value as if the text
/// started there), or at the stream's start. Otherwise (4 KiB without whitespace or a value) it
/// starts *at* a separator (a CJK character or punctuation, or one of `,;!?"'()[]{}<>=*&|~^$#/`),
/// or in a run of letters and digits with none at the char boundary 160 bytes back, and the scan
/// may read a token from there differently (a shape the whole text reads as the middle of a
/// longer token, `sk-…` or a URL scheme, recognized at that start). A value that reaches from
/// sent text into new text is redacted in the new text, never let through; values of (b)'s kind
/// are redacted in pieces. The property tests over whitespace-free runs (CJK prose, base64, hex,
/// digit and capital runs, glued values) and the fuzz target check (c) too and find no
/// difference; docs/detection.md lists the detector fixes they led to.
#[derive(Debug)]
pub struct StreamRedactor<'a> {
    parts: Parts<'a>,
    /// already-emitted raw text kept for context (starts at a break when there is one)
    left: String,
    /// raw text not yet emitted
    pending: String,
    findings: Vec<Finding>,
    /// whether any emitted text was redacted
    redacted: bool,
    /// the length of `pending` at which the next scan runs
    next_scan: usize,
    /// bytes handed to the detector so far
    scanned: u64,
    /// whether `left` starts where the scan reads the text as the whole text's scan does (the
    /// stream's start, after whitespace, or a value's end)
    left_exact: bool,
}

/// The detector and redactor a stream uses: borrowed from a compiled policy, or shared (a
/// stream that must own them, as a binding's object does).
#[derive(Debug)]
enum Parts<'a> {
    Borrowed(&'a dyn Detector, &'a Redactor),
    Shared(Arc<dyn Detector>, Arc<Redactor>),
}

impl Parts<'_> {
    fn detector(&self) -> &dyn Detector {
        match self {
            Parts::Borrowed(d, _) => *d,
            Parts::Shared(d, _) => d.as_ref(),
        }
    }

    fn redactor(&self) -> &Redactor {
        match self {
            Parts::Borrowed(_, r) => r,
            Parts::Shared(_, r) => r,
        }
    }
}

/// The largest char boundary of `s` at or before `i`.
fn floor_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The smallest char boundary of `s` at or after `i`.
fn ceil_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Where to cut `s` in `floor..=limit` (char boundaries): the last boundary after whitespace,
/// else the last after punctuation, else `limit`.
fn cut_between(s: &str, floor: usize, limit: usize) -> usize {
    let floor = floor.min(limit);
    let mut after_punct = None;
    for (i, c) in s.get(floor..limit).unwrap_or("").char_indices().rev() {
        let end = floor + i + c.len_utf8();
        if c.is_whitespace() {
            return end;
        }
        if after_punct.is_none() && is_punctuation(c) {
            after_punct = Some(end);
        }
    }
    after_punct.unwrap_or(limit)
}

/// [`cut_between`] within [`STREAM_CUT_SEARCH`] bytes before `limit`.
fn cut_at_or_before(s: &str, limit: usize) -> usize {
    cut_between(
        s,
        ceil_boundary(s, limit.saturating_sub(STREAM_CUT_SEARCH)),
        limit,
    )
}

/// Punctuation a release may cut after: ASCII and CJK (full-width) punctuation, general
/// punctuation (U+2000–U+206F).
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || ('\u{2000}'..='\u{206F}').contains(&c)
        || ('\u{3000}'..='\u{303F}').contains(&c)
        || ('\u{FF00}'..='\u{FF0F}').contains(&c)
        || ('\u{FF1A}'..='\u{FF20}').contains(&c)
        || ('\u{FF3B}'..='\u{FF40}').contains(&c)
        || ('\u{FF5B}'..='\u{FF65}').contains(&c)
}

/// Where the left context of a rescan starts in `emitted` (ending where the next scan's new
/// text starts), at least [`STREAM_CONTEXT`] bytes back, and whether that start is exact (the
/// scan reads the text after it as the whole text's scan does):
/// 1. after ASCII whitespace (what the detector reads words by) found within
///    [`STREAM_CONTEXT_MAX`] bytes;
/// 2. inside a longer run without whitespace: where a value the detector found ends (`sync`,
///    sorted; the built-in scan reads the text after a value as if the text started there);
/// 3. else the previous start, if it was exact (`exact`: the stream's start, whitespace or a
///    value's end) and is within reach;
/// 4. else at a separator: a CJK character or CJK punctuation, or ASCII punctuation that no
///    value holds and no look-back reads (`,;!?"'()[]{}<>=*&|~^$#/`). The rescan starts *at*
///    it, so the scan meets it as the whole text's scan does and reads what follows with the
///    same character before it;
/// 5. else at the char boundary [`STREAM_CONTEXT`] bytes back (a run of letters and digits).
///
/// Whitespace inside a value the detector found (`spans`: a private-key block, a phone number
/// with spaces) is no start: a rescan from there would read the value's tail as context (`KEY-----`
/// before a token) where the whole text's scan reads from the value's end. The start moves to
/// that end when it is far enough back, else to whitespace before the value.
fn context_start(
    emitted: &str,
    exact: bool,
    sync: &[usize],
    spans: &[(usize, usize)],
) -> (usize, bool) {
    let want = floor_boundary(emitted, emitted.len().saturating_sub(STREAM_CONTEXT));
    if want == 0 {
        return (0, exact);
    }
    let limit = emitted.len().saturating_sub(STREAM_CONTEXT_MAX);
    let mut top = want;
    while let Some(k) = emitted
        .as_bytes()
        .get(limit..top)
        .and_then(|head| head.iter().rposition(u8::is_ascii_whitespace))
    {
        let k = limit + k + 1;
        match spans.iter().find(|&&(s, e)| s < k && k < e) {
            None => return (k, true),
            Some(&(_, e)) if e <= want && emitted.is_char_boundary(e) => return (e, true),
            Some(&(s, _)) => top = s.min(k - 1),
        }
    }
    if let Some(&q) = sync
        .iter()
        .rev()
        .find(|&&q| limit <= q && q <= want && emitted.is_char_boundary(q))
    {
        return (q, true);
    }
    if limit == 0 && exact {
        return (0, true);
    }
    // a start inside a value found in this run (a capped URL swallowing CJK text) would not see
    // the value and read its tail as new text: start at its end instead, where the whole text's
    // scan reads on as from the start of a text
    let after_value = |k: usize| {
        spans
            .iter()
            .find(|&&(s, e)| s < k && k < e && e <= emitted.len() && emitted.is_char_boundary(e))
            .map(|&(_, e)| (e, true))
    };
    let limit = ceil_boundary(emitted, limit);
    for (i, c) in emitted.get(limit..want).unwrap_or("").char_indices().rev() {
        if is_separator(c) {
            return after_value(limit + i).unwrap_or((limit + i, false));
        }
    }
    after_value(want).unwrap_or((want, false))
}

/// A character the built-in scan never reads into a value from either side and whose presence
/// before a position reads like the start of the text: kana, Han and Hangul, CJK and full-width
/// punctuation, and some ASCII punctuation.
fn is_separator(c: char) -> bool {
    matches!(
        c,
        ',' | ';'
            | '!'
            | '?'
            | '"'
            | '\''
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '<'
            | '>'
            | '='
            | '*'
            | '&'
            | '|'
            | '~'
            | '^'
            | '$'
            | '#'
            | '/'
    ) || ('\u{3000}'..='\u{9FFF}').contains(&c)
        || ('\u{AC00}'..='\u{D7AF}').contains(&c)
        || ('\u{FF00}'..='\u{FF65}').contains(&c)
}

/// `text` in consecutive pieces of `size` bytes (at least one), each piece stretched to end on a
/// character boundary: how a stream of `text` might arrive, for feeding a [`StreamRedactor`]
/// in tests and fuzzing.
pub fn pieces(text: &str, size: usize) -> impl Iterator<Item = &str> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= text.len() {
            return None;
        }
        let mut end = (pos + size.max(1)).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        let piece = text.get(pos..end);
        pos = end;
        piece
    })
}

impl<'a> StreamRedactor<'a> {
    /// A redactor for one stream.
    pub fn new(detector: &'a dyn Detector, redactor: &'a Redactor) -> Self {
        StreamRedactor::with(Parts::Borrowed(detector, redactor))
    }

    fn with(parts: Parts<'a>) -> Self {
        StreamRedactor {
            parts,
            left: String::new(),
            pending: String::new(),
            findings: Vec::new(),
            redacted: false,
            next_scan: STREAM_HOLD_BACK + STREAM_STEP,
            scanned: 0,
            left_exact: true,
        }
    }

    /// A redactor for one stream that shares ownership of its detector and redactor, so it can
    /// outlive the scope that built them.
    pub fn shared(detector: Arc<dyn Detector>, redactor: Arc<Redactor>) -> StreamRedactor<'static> {
        StreamRedactor::with(Parts::Shared(detector, redactor))
    }

    /// Whether anything emitted so far was redacted.
    pub fn redacted(&self) -> bool {
        self.redacted
    }

    /// Bytes received and not yet released.
    pub fn held(&self) -> usize {
        self.pending.len()
    }

    /// Bytes handed to the detector so far (the stream's work: linear in its length).
    pub fn scanned(&self) -> u64 {
        self.scanned
    }

    /// Adds a chunk; returns the redacted text that can be sent now (possibly empty).
    pub fn push(&mut self, chunk: &str) -> String {
        self.pending.push_str(chunk);
        if self.pending.len() < self.next_scan {
            return String::new();
        }
        let window = format!("{}{}", self.left, self.pending);
        let offset = self.left.len();
        self.findings.clear();
        self.scanned = self.scanned.saturating_add(window.len() as u64);
        self.parts.detector().scan(&window, &mut self.findings);
        let held = self.pending.len();
        let raw_edge = held.saturating_sub(STREAM_HOLD_BACK);
        let edge = floor_boundary(&self.pending, raw_edge);
        // the search for a break ends STREAM_CUT_SEARCH bytes before the unrounded edge, so at
        // most STREAM_HOLD_BACK + STREAM_CUT_SEARCH bytes stay held
        let floor = ceil_boundary(&self.pending, raw_edge.saturating_sub(STREAM_CUT_SEARCH));
        let mut cut = cut_between(&self.pending, floor, edge);
        // never after the start of a value that may still grow
        if let Some(p) = self.parts.detector().unfinished(&window) {
            if p >= offset && p - offset < cut {
                cut = cut_at_or_before(&self.pending, p - offset);
            }
        }
        // never inside a value reported in the new text (one that started in the left context
        // was released before it was a value: it is not held now either)
        loop {
            let abs = offset + cut;
            let straddling = self
                .findings
                .iter()
                .filter(|f| f.start >= offset && f.start < abs && abs < f.end)
                .map(|f| f.start)
                .min();
            match straddling {
                Some(start) => cut = cut_at_or_before(&self.pending, start - offset),
                None => break,
            }
        }
        // a value longer than the most a stream holds goes out in pieces
        if cut == 0 && held >= STREAM_HOLD_MAX {
            cut = edge;
        }
        if cut == 0 {
            // nothing can go yet: scan again when half as much again (at most 4 KiB) arrived
            self.next_scan = held
                .saturating_add((held / 2).clamp(STREAM_STEP, STREAM_STALL_STEP))
                .min(STREAM_HOLD_MAX);
            return String::new();
        }
        let out = self.emit(&window, offset, cut);
        self.next_scan = self.pending.len() + STREAM_STEP;
        out
    }

    /// Ends the stream: returns the rest, redacted.
    pub fn finish(&mut self) -> String {
        let window = format!("{}{}", self.left, self.pending);
        let offset = self.left.len();
        self.findings.clear();
        self.scanned = self.scanned.saturating_add(window.len() as u64);
        self.parts.detector().scan(&window, &mut self.findings);
        let cut = self.pending.len();
        self.emit(&window, offset, cut)
    }

    /// Redacts `pending[..cut]` with the window's findings and moves it to `left`. Every finding
    /// that overlaps the released text is redacted in it, cut to it: a value longer than the
    /// most a stream holds (released in pieces), or one that reaches into it from text already
    /// released (which a rescan inside a run without whitespace can read differently from the
    /// whole text: what reaches into new text is redacted rather than let through).
    fn emit(&mut self, window: &str, offset: usize, cut: usize) -> String {
        let end = offset + cut;
        // the ends of built-in values released that no value runs across (sorted)
        let mut sync: Vec<usize> = self
            .findings
            .iter()
            .filter(|f| f.custom.is_none() && f.end <= end)
            .map(|f| f.end)
            .filter(|&q| !self.findings.iter().any(|f| f.start < q && q < f.end))
            .collect();
        sync.sort_unstable();
        let spans: Vec<(usize, usize)> = self
            .findings
            .iter()
            .filter(|f| f.custom.is_none() && f.start < end)
            .map(|f| (f.start, f.end))
            .collect();
        resolve_overlaps(&mut self.findings);
        let local: Vec<Finding> = self
            .findings
            .iter()
            .filter(|f| f.start < end && f.end > offset)
            .map(|f| Finding {
                start: f.start.max(offset) - offset,
                end: f.end.min(end) - offset,
                ..*f
            })
            .collect();
        self.redacted |= !local.is_empty();
        let out = self
            .parts
            .redactor()
            .redact(window.get(offset..end).unwrap_or(""), &local);
        let emitted = window.get(..end).unwrap_or("");
        let (from, exact) = context_start(emitted, self.left_exact, &sync, &spans);
        self.left_exact = exact;
        self.left = emitted.get(from..).unwrap_or("").to_owned();
        self.pending = window.get(end..).unwrap_or("").to_owned();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(entity: EntityType, start: usize, end: usize) -> Finding {
        Finding {
            entity,
            start,
            end,
            confidence: 90,
            custom: None,
        }
    }

    fn opts(format: MarkerFormat) -> RedactionOptions {
        RedactionOptions {
            marker_format: Some(format),
            ..Default::default()
        }
    }

    #[test]
    fn formats() {
        let text = "mail a@b.co card 4111111111111111";
        let fs = [
            f(EntityType::Email, 5, 11),
            f(EntityType::CreditCard, 17, 33),
        ];
        let label = Redactor::new(None, vec![], [0; 32]);
        assert_eq!(label.redact(text, &fs), "mail [EMAIL] card [CREDIT_CARD]");
        let mask = Redactor::new(Some(&opts(MarkerFormat::Mask)), vec![], [0; 32]);
        assert_eq!(mask.redact(text, &fs), "mail ****** card ****************");
        let partial = Redactor::new(Some(&opts(MarkerFormat::Partial)), vec![], [0; 32]);
        assert_eq!(
            partial.redact(text, &fs),
            "mail ****** card ************1111"
        );
        let hash = Redactor::new(Some(&opts(MarkerFormat::Hash)), vec![], [7; 32]);
        let a = hash.redact(text, &fs);
        assert_eq!(a, hash.redact(text, &fs));
        assert!(a.starts_with("mail [EMAIL:") && !a.contains("a@b.co"));
    }

    #[test]
    fn preserve_length() {
        let o = RedactionOptions {
            preserve_length: Some(true),
            ..Default::default()
        };
        let r = Redactor::new(Some(&o), vec![], [0; 32]);
        assert_eq!(
            r.redact("x a@b.cdefgh", &[f(EntityType::Email, 2, 12)]),
            "x [EMAIL]***"
        );
    }
}
