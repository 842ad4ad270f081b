//! Rewrites text so that detected values are replaced by markers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::detect::{resolve_overlaps, Detector, EntityType, Finding};
use crate::pack::spec::{MarkerFormat, RedactionOptions};

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

/// Bytes a [`StreamRedactor`] holds back from the end of what it has seen before emitting: more
/// than any multi-word value (names, addresses, spaced card and phone numbers) can span, so a
/// value is always seen whole before the text around it is released.
pub const STREAM_HOLD_BACK: usize = 512;

/// Bytes of already-emitted text kept as left context for the next scan: more than the
/// detector ever looks back ([`LOOK_BACK`](crate::detect::LOOK_BACK)) plus a value's length.
const STREAM_CONTEXT: usize = 160;

/// How far back the left context may reach to start at a whitespace boundary.
const STREAM_CONTEXT_MAX: usize = 4096;

/// Redacts a stream of text chunks (an SSE response) as it arrives. Feed chunks with
/// [`push`](Self::push), which returns the text that is safe to send now; call
/// [`finish`](Self::finish) at the end. The concatenated output equals [`Redactor::redact`] on
/// the whole text, for any chunking, as long as no run of text without whitespace is longer
/// than 4 KiB: text is released only up to a whitespace boundary at least [`STREAM_HOLD_BACK`]
/// bytes before the end, never inside a detected value or an unterminated private-key block, and
/// each rescan starts at a whitespace boundary far enough back to see everything the detector
/// looks at.
#[derive(Debug)]
pub struct StreamRedactor<'a> {
    parts: Parts<'a>,
    /// already-emitted raw text kept for context (starts at a whitespace boundary)
    left: String,
    /// raw text not yet emitted
    pending: String,
    findings: Vec<Finding>,
    /// whether any emitted text was redacted
    redacted: bool,
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

fn whitespace_cut_at_or_before(s: &str, mut cut: usize) -> usize {
    let b = s.as_bytes();
    while cut > 0 && !(b.get(cut - 1).is_some_and(u8::is_ascii_whitespace)) {
        cut -= 1;
    }
    cut
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

    /// Adds a chunk; returns the redacted text that can be sent now (possibly empty).
    pub fn push(&mut self, chunk: &str) -> String {
        self.pending.push_str(chunk);
        if self.pending.len() <= STREAM_HOLD_BACK {
            return String::new();
        }
        let window = format!("{}{}", self.left, self.pending);
        let offset = self.left.len();
        self.findings.clear();
        self.parts.detector().scan(&window, &mut self.findings);
        let mut cut =
            whitespace_cut_at_or_before(&self.pending, self.pending.len() - STREAM_HOLD_BACK);
        // never inside an unterminated private key block
        if let Some(p) = window.rfind("-----BEGIN ") {
            if p >= offset && !window.get(p..).is_some_and(|t| t.contains("-----END ")) {
                cut = cut.min(whitespace_cut_at_or_before(&self.pending, p - offset));
            }
        }
        // never inside any candidate value (before overlaps are resolved)
        loop {
            let abs = offset + cut;
            let straddling = self
                .findings
                .iter()
                .filter(|f| f.start < abs && abs < f.end)
                .map(|f| f.start)
                .min();
            match straddling {
                Some(start) if start >= offset => {
                    cut = whitespace_cut_at_or_before(&self.pending, start - offset);
                }
                Some(_) => {
                    cut = 0;
                    break;
                }
                None => break,
            }
        }
        if cut == 0 {
            return String::new();
        }
        self.emit(&window, offset, cut)
    }

    /// Ends the stream: returns the rest, redacted.
    pub fn finish(&mut self) -> String {
        let window = format!("{}{}", self.left, self.pending);
        let offset = self.left.len();
        self.findings.clear();
        self.parts.detector().scan(&window, &mut self.findings);
        let cut = self.pending.len();
        self.emit(&window, offset, cut)
    }

    /// Redacts `pending[..cut]` with the window's findings and moves it to `left`.
    fn emit(&mut self, window: &str, offset: usize, cut: usize) -> String {
        resolve_overlaps(&mut self.findings);
        let end = offset + cut;
        let local: Vec<Finding> = self
            .findings
            .iter()
            .filter(|f| f.start >= offset && f.end <= end)
            .map(|f| Finding {
                start: f.start - offset,
                end: f.end - offset,
                ..*f
            })
            .collect();
        self.redacted |= !local.is_empty();
        let out = self
            .parts
            .redactor()
            .redact(window.get(offset..end).unwrap_or(""), &local);
        // keep at least STREAM_CONTEXT bytes as left context, from a whitespace boundary (so no
        // word is cut) found within STREAM_CONTEXT_MAX bytes; a longer run without whitespace is
        // cut at a character boundary
        let emitted = window.get(..end).unwrap_or("");
        let b = emitted.as_bytes();
        let want = emitted.len().saturating_sub(STREAM_CONTEXT);
        let limit = emitted.len().saturating_sub(STREAM_CONTEXT_MAX);
        let mut from = want;
        while from > limit && !(from == 0 || b.get(from - 1).is_some_and(u8::is_ascii_whitespace)) {
            from -= 1;
        }
        if !(from == 0 || b.get(from - 1).is_some_and(u8::is_ascii_whitespace)) {
            from = want;
            while from < emitted.len() && !emitted.is_char_boundary(from) {
                from += 1;
            }
        }
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
