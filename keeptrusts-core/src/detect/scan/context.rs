//! Context: the words before a value (one Aho-Corasick pass over the look-back, CJK cues
//! read by character), versions and names before a number, a state before a ZIP code.

use super::*;

impl Run<'_> {
    /// The nearest context phrase ending in the 40 characters before `start` (at most
    /// [`LOOK_BACK`] bytes). Walks back word by word (words are runs of non-space, trimmed of
    /// punctuation at either end) and stops at the first phrase found, so the usual case —
    /// `SSN 123-45-6789` — costs one lookup. It gives up at a word holding a digit or a
    /// redaction marker unless the word is a phrase itself (`I-9`): that is another value,
    /// which the context words before it describe. Chinese, Japanese and Korean phrases, written
    /// without a space before the value, are matched as the characters that end the text
    /// before it ([`Run::cjk_context`]).
    ///
    /// The answer depends only on the text, `start` and the end of the last finding, so the
    /// last one is kept: the handlers that try one candidate in turn (a number as a date, a
    /// typed number, an ID, a phone) ask for the same context without walking it again.
    pub(super) fn context(&self, start: usize) -> Option<Ctx> {
        let (s, floor, c) = self.ctx_memo.get();
        if s == start && floor == self.last_end {
            return c;
        }
        let c = self.context_walk(start, |_| true);
        self.ctx_memo.set((start, self.last_end, c));
        c
    }

    /// [`context`](Self::context), skipping phrases that `fits` rejects (a date's context walks
    /// past `card` in `Date of birth (as on the card): …`); a negative phrase always counts.
    pub(super) fn context_where(&self, start: usize, fits: impl Fn(Ctx) -> bool) -> Option<Ctx> {
        // the walk meets phrases in the same order whatever `fits` says: where the unrestricted
        // walk finds none, or finds one that fits, this one stops at the same place
        match self.context(start) {
            None => None,
            Some(c) if c == Ctx::Negative || fits(c) => Some(c),
            Some(_) => self.context_walk(start, fits),
        }
    }

    /// The walk behind [`context_where`](Self::context_where).
    fn context_walk(&self, start: usize, fits: impl Fn(Ctx) -> bool) -> Option<Ctx> {
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
            let word = self.word_at(s2, e2);
            if self.plainly_no_context(word) {
                if valued {
                    return None;
                }
                continue;
            }
            let mut buf = [0u8; 32];
            let last = lower(word, &mut buf);
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
            // the words before this one, lowercase, read once for all its phrases (nearest
            // first; `None` for an empty or overlong word, which no phrase matches)
            let mut prev = PrevWords::new(k);
            'phrases: for (earlier, kind) in phrases {
                if valued && !earlier.is_empty() {
                    continue;
                }
                // earlier words precede, nearest last: check them walking further back
                for (n, want) in earlier.iter().rev().enumerate() {
                    if prev.get(self, floor, n) != Some(want.as_bytes()) {
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

    /// Whether `word` (at most 32 bytes) is, lowercase, neither a phrase's last word, nor one
    /// after an elided article, nor a secret's field name, as seen without lowercasing it: its
    /// first and last bytes are ASCII (lowercasing keeps its length and their filter bits),
    /// it holds no apostrophe, and it is too short for a field name or ends otherwise.
    fn plainly_no_context(&self, word: &str) -> bool {
        let w = word.as_bytes();
        let (Some(&first), Some(&last)) = (w.first(), w.last()) else {
            return false;
        };
        first.is_ascii()
            && last.is_ascii()
            && w.len() <= 32
            && !self.w.context.may_contain(word)
            && !w.iter().any(|&c| c == b'\'' || c == 0xE2)
            && !may_be_secret_name(w)
    }

    /// A Chinese, Japanese or Korean context phrase that ends the text before `start` (after
    /// spaces, colons, `是`, `为`, `は`, `が` and Korean particles), or an ASCII name glued to `号`
    /// or `番号` (`IMEI号：`).
    pub(super) fn cjk_context(&self, floor: usize, start: usize) -> Option<Ctx> {
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

    /// Whether a version (`3.11.6`, `3.5.0.0`, see [`version_shape`]) stands in the 64 bytes
    /// before `s` on its line, after the last finding: a dotted quad in a list of versions
    /// (`Upgrade path: 3.4.2.1, then 4.0.0.12`, `Python 3.11.6 on Linux 6.5.0.27`) is one too.
    pub(super) fn version_before(&self, s: usize) -> bool {
        let b = self.b;
        let mut j = s.saturating_sub(64).max(self.last_end);
        // on its line: from the last line break before `s`, whatever the window held before
        // it (`4.9.3.96⏎2.1.4;4.9.3.19` reads the same when the first line is a marker)
        if let Some(k) = b
            .get(j..s)
            .and_then(|w| w.iter().rposition(|&c| c == b'\n'))
        {
            j += k + 1;
        }
        let part = |c: u8| c.is_ascii_digit() || c == b'.';
        while j > 0 && j < s && part(at(b, j - 1)) {
            j += 1;
        }
        while j < s {
            let c = at(b, j);
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

    /// Whether the last finding is a name that ends right before `s`, with at most a comma,
    /// a bracket or a dash and spaces between.
    pub(super) fn after_name(&self, s: usize) -> bool {
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

    /// `, CA 94105` or `CA 94105`: a US state code right before.
    pub(super) fn after_state(&self, s: usize) -> bool {
        s >= self.last_end + 3
            && at(self.b, s - 1) == b' '
            && self.w.states.contains(self.word_at(s - 3, s - 1))
            && (s == 3 || !alnum(at(self.b, s - 4)))
    }
}

/// The words before a context word, read back lazily and lowercased once each: a word with
/// several phrases (`number`: `phone number`, `serial number`, `medical record number`, …)
/// reads the text before it once, not once per phrase.
struct PrevWords {
    /// Where the walk back stands: the start of the last word read.
    k: usize,
    /// How many words are read.
    n: usize,
    /// The words read, nearest first: their lowercase bytes and length, or `None` when the
    /// word is empty or longer than 32 bytes (no phrase word is). A phrase has at most three
    /// words (checked where the phrases are built).
    words: [Option<([u8; 32], usize)>; 3],
    /// Set once a word is empty or overlong: the walk stops there.
    stopped: bool,
}

impl PrevWords {
    fn new(k: usize) -> Self {
        PrevWords {
            k,
            n: 0,
            words: [None; 3],
            stopped: false,
        }
    }

    /// The `n`-th word before (0 the nearest), lowercase, as the walk back from the context
    /// word reads it: spaces, then a run of non-space, none of it before `floor`.
    #[inline]
    fn get(&mut self, r: &Run<'_>, floor: usize, n: usize) -> Option<&[u8]> {
        if self.n <= n && !self.stopped {
            self.read(r, floor, n);
        }
        match self.words.get(n)? {
            Some((buf, len)) => buf.get(..*len),
            None => None,
        }
    }

    /// Reads the words up to the `n`-th.
    fn read(&mut self, r: &Run<'_>, floor: usize, n: usize) {
        while self.n <= n && !self.stopped {
            let b = r.b;
            let mut kk = self.k;
            while kk > floor && at(b, kk - 1).is_ascii_whitespace() {
                kk -= 1;
            }
            let pe = kk;
            while kk > floor && !at(b, kk - 1).is_ascii_whitespace() {
                kk -= 1;
            }
            self.k = kk;
            let slot = if pe == kk || pe - kk > 32 {
                self.stopped = true;
                None
            } else {
                let mut lb = [0u8; 32];
                let low = lower(r.word_at(kk, pe), &mut lb).as_bytes();
                let mut buf = [0u8; 32];
                buf.iter_mut().zip(low).for_each(|(d, &c)| *d = c);
                Some((buf, low.len()))
            };
            match self.words.get_mut(self.n) {
                Some(w) => *w = slot,
                None => self.stopped = true,
            }
            self.n += 1;
        }
    }
}
