//! Names: capitalized words after a cue or from the name lists, `Last, First`, CJK and Korean
//! names after their cues (uppercase tokens such as IBANs and keys are in `tokens.rs`).

use super::name_shape::{fold, name_case, surname_shape};
use super::*;

impl Run<'_> {
    /// A letter outside ASCII: a name may start here (Álvarez, Øster), if it is an uppercase
    /// letter at the start of a word.
    pub(super) fn latin(&mut self, i: usize) -> usize {
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
    pub(super) fn cjk(&mut self, i: usize) -> usize {
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

    /// The name after a CJK cue ending at `p`, pushed; where it ends.
    pub(super) fn cjk_name_after(&mut self, p: usize) -> Option<usize> {
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
    pub(super) fn korean_name_at(&mut self, s: usize, weak: bool) -> Option<usize> {
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
    pub(super) fn name_word_end(&self, i: usize) -> usize {
        let b = self.b;
        let mut j = i + 1;
        // ASCII letters only: the word is all letters, without a possessive
        let mut plain = at(b, i).is_ascii_alphabetic();
        while j < b.len() {
            let c = at(b, j);
            let joiner = (c == b'-' || c == b'\'') && at(b, j + 1).is_ascii_alphabetic();
            if c.is_ascii_alphabetic() {
                j += 1;
            } else if c >= 0x80 || joiner {
                plain = false;
                j += 1;
            } else {
                break;
            }
            if j - i > 40 {
                break;
            }
        }
        if plain {
            return j;
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
    pub(super) fn name_like(&self, s: usize, e: usize) -> bool {
        let word = self.word_at(s, e);
        let mut chars = word.chars();
        if !chars.next().is_some_and(char::is_uppercase) || self.w.not_surnames.contains(word) {
            return false;
        }
        // an ASCII word is walked by bytes (an ASCII character's case is its byte's), the rest
        // by characters
        if word.is_ascii() {
            name_case(word.bytes().skip(1).map(|c| {
                (
                    c.is_ascii_lowercase(),
                    c.is_ascii_uppercase(),
                    matches!(c, b'-' | b'\''),
                )
            }))
        } else {
            name_case(chars.map(|c| (c.is_lowercase(), c.is_uppercase(), matches!(c, '-' | '\''))))
        }
    }

    /// The words before `k` on the same line, nearest first: up to four runs of letters
    /// (`'`, `’`, `.` and `-` inside), one or two spaces apart, none before `floor`.
    pub(super) fn words_before(
        &self,
        mut k: usize,
        floor: usize,
        max: usize,
    ) -> ([(usize, usize); 4], usize) {
        let b = self.b;
        let mut words = [(0usize, 0usize); 4];
        let mut n = 0;
        while n < max.min(4) {
            let Some((s, e)) = self.word_before(k, floor) else {
                break;
            };
            if let Some(w) = words.get_mut(n) {
                *w = (s, e);
            }
            n += 1;
            k = s;
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

    /// The nearest of [`words_before`](Self::words_before), without the others.
    pub(super) fn word_before(&self, mut k: usize, floor: usize) -> Option<(usize, usize)> {
        let b = self.b;
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
            return None;
        }
        Some((k, e))
    }

    /// Whether the words ending at `k` end with a name cue (only closing lines when
    /// `sign_off_only`): its kind, and where its first word starts. Reads the nearest word, and
    /// the words before it only when a phrase ending with it has more words.
    pub(super) fn cue_phrase(
        &self,
        k: usize,
        floor: usize,
        sign_off_only: bool,
    ) -> Option<(CueKind, usize)> {
        let (s, e) = self.word_before(k, floor)?;
        let mut buf = [0u8; 32];
        let last = lower(self.word_at(s, e), &mut buf);
        self.cue_phrase_at(k, floor, (s, e), last, sign_off_only)
    }

    /// [`cue_phrase`](Self::cue_phrase) when the nearest word `(s, e)` and its lowercase form
    /// are already known.
    pub(super) fn cue_phrase_at(
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
    pub(super) fn name_cue(&self, i: usize) -> Option<Cue> {
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
        let (s, e) = self.word_before(k, floor)?;
        let written = self.word_at(s, e);
        if punct.is_none() && spaces == 1 && PLACE_PREFIXES.contains(&written) {
            return Some(Cue::Place);
        }
        // most words are no title and end no cue: seen without lowercasing them
        if self.plainly_no_cue(written, punct.is_none() && written.len() <= 8) {
            return None;
        }
        let mut buf = [0u8; 32];
        let lowered = lower(written, &mut buf);
        // the longest title is `dott.ssa`
        if punct.is_none() && written.len() <= 8 {
            let w = lowered.trim_start_matches('\'');
            // a title, not a unit after a number (`3.3 ms. First`); a number that is a value
            // found before the floor reads as the text's start, as once it is redacted
            let after_number =
                s >= floor + 2 && at(b, s - 1) == b' ' && at(b, s - 2).is_ascii_digit();
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

    /// Whether `written`, lowercase, is plainly neither a title (looked at when `title`) nor
    /// the last word of a name cue, as [`name_cue`](Self::name_cue) reads them (without a
    /// leading `'`; a cue also without trailing dots), seen without lowercasing it: the first
    /// and last bytes of both forms are ASCII, the word is at most 32 bytes (lowercasing keeps
    /// the length and the filter bits), and the word lists' filters know neither form.
    fn plainly_no_cue(&self, written: &str, title: bool) -> bool {
        let ascii_ends = |w: &str| {
            let w = w.as_bytes();
            matches!((w.first(), w.last()), (Some(f), Some(l)) if f.is_ascii() && l.is_ascii())
        };
        let as_title = written.trim_start_matches('\'');
        let as_cue = written.trim_end_matches('.').trim_start_matches('\'');
        written.len() <= 32
            && ascii_ends(as_title)
            && ascii_ends(as_cue)
            && !(title && self.w.titles.may_contain(as_title))
            && !self.w.name_cues.may_contain(as_cue)
    }

    /// Whether a known surname that is not also an everyday word follows (`Philippa Gonzales`).
    pub(super) fn surname_follows(&self, e1: usize) -> bool {
        let b = self.b;
        let ws = e1 + 1;
        if at(b, e1) != b' ' || (!at(b, ws).is_ascii_uppercase() && at(b, ws) < 0x80) {
            return false;
        }
        let we = self.name_word_end(ws);
        let word = self.word_at(ws, we);
        // a double-barrelled surname is one when a part is (`Delacroix-Ames`)
        let mut f = self.w.name_flags.flags(word);
        if word.contains('-') {
            for part in word.split('-') {
                f |= self.w.name_flags.flags(part) & (name_flag::SURNAME | name_flag::WORD_SURNAME);
            }
        }
        let known = f & name_flag::SURNAME != 0 && f & name_flag::WORD_SURNAME == 0;
        (known || (f == 0 && surname_shape(word) && !self.everyday(ws, we)))
            && self.name_like(ws, we)
    }

    /// Whether the words from `i` (the first ends at `e1`, one or two more may follow) are
    /// followed within a few bytes (`,`, `;`, ` <`, ` (`, `: `) by an e-mail address whose
    /// local part holds one of them, accents folded (`Siobhán` in `siobhan.nf`).
    fn spelled_by_email(&self, i: usize, e1: usize) -> bool {
        let b = self.b;
        // the words by their bytes alone first (most capitalized words are followed by none
        // of this): capitalized runs of letters, hyphens and apostrophes
        let mut words = [(i, e1); 3];
        let mut n = 1;
        let mut end = e1;
        while n < 3
            && at(b, end) == b' '
            && (at(b, end + 1).is_ascii_uppercase() || at(b, end + 1) >= 0x80)
        {
            let we = run(b, end + 1, 40, |c| {
                c.is_ascii_alphabetic() || c >= 0x80 || c == b'-' || c == b'\''
            });
            if let Some(w) = words.get_mut(n) {
                *w = (end + 1, we);
            }
            n += 1;
            end = we;
        }
        // the separator: `,` `;` or a space, then maybe `<` or `(`
        let mut k = end;
        if matches!(at(b, k), b',' | b';' | b':') {
            k += 1;
        }
        if at(b, k) == b' ' {
            k += 1;
        }
        if matches!(at(b, k), b'<' | b'(') {
            k += 1;
        }
        if k == end || k - end > 3 {
            return false;
        }
        if !alnum(at(b, k)) {
            return false;
        }
        let Some(a) = self.email_ahead(k) else {
            return false;
        };
        // now the words as names: each name-like, ending where a name word ends
        for &(ws, we) in words.iter().take(n).skip(1) {
            if self.name_word_end(ws) != we || !self.name_like(ws, we) {
                return false;
            }
        }
        let local = self.word_at(k, a).to_ascii_lowercase();
        let de = run(b, a + 1, 64, |c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-')
        });
        let domain = self.word_at(a + 1, de).to_ascii_lowercase();
        let folded: Vec<String> = words
            .iter()
            .take(n)
            .map(|&(ws, we)| fold(self.word_at(ws, we)))
            .collect();
        // a team's or a role's mailbox names no one (`Customer Care <customer.care@…>`), nor
        // does a company's own domain (`Nordic Pixel, nordic@pixel.se`)
        let long = |w: &&String| w.len() >= 3;
        !folded.iter().any(|w| ROLE_WORDS.contains(&w.as_str()))
            && !folded
                .iter()
                .filter(long)
                .any(|w| domain.contains(w.as_str()))
            && folded
                .iter()
                .filter(long)
                .any(|w| local.contains(w.as_str()))
    }

    /// Whether the word `s..e` is a chat line's speaker: it opens its line (after a `[…]`
    /// time stamp at most) and `:` follows it.
    fn speaker(&self, s: usize, e: usize) -> bool {
        let b = self.b;
        let colon = if at(b, e) == b' ' { e + 1 } else { e };
        if at(b, colon) != b':' || !matches!(at(b, colon + 1), b' ' | b'\n') {
            return false;
        }
        let opens = |k: usize| k == 0 || at(b, k - 1) == b'\n';
        // (the time stamp is read back to the floor at most, like any look back)
        opens(s)
            || (s >= self.last_end + 2 && at(b, s - 1) == b' ' && at(b, s - 2) == b']' && {
                let mut k = s - 2;
                while k > self.last_end && s - k < 24 && at(b, k) != b'[' {
                    k -= 1;
                }
                at(b, k) == b'[' && opens(k)
            })
    }

    /// Whether the known given name `s..e`, alone, is someone: no everyday word nor a thing's
    /// name ([`NOT_LONE`]), after a word of [`PERSON_BEFORE`] or before one of [`PERSON_AFTER`]
    /// (each lower case, on the same line, one space apart).
    fn lone_given(&self, s: usize, e: usize) -> bool {
        let b = self.b;
        let w = self.word_at(s, e);
        if e - s < 3 || NOT_LONE.binary_search(&w).is_ok() || self.everyday(s, e) {
            return false;
        }
        let lower_word = |ws: usize, we: usize| {
            let v = self.word_at(ws, we);
            (!v.is_empty() && v.bytes().all(|c| c.is_ascii_lowercase() || c >= 0x80)).then_some(v)
        };
        let after = at(b, e) == b' ' && {
            let we = run(b, e + 1, 16, |c| c.is_ascii_lowercase());
            !alnum(at(b, we))
                && lower_word(e + 1, we).is_some_and(|v| PERSON_AFTER.binary_search(&v).is_ok())
        };
        after
            || (s >= self.last_end + 2
                && at(b, s - 1) == b' '
                && self
                    .word_before(s - 1, self.last_end)
                    .is_some_and(|(ws, we)| {
                        lower_word(ws, we).is_some_and(|v| PERSON_BEFORE.binary_search(&v).is_ok())
                    }))
    }

    /// Whether the capitalized word `s..e` is an everyday English word in lower case.
    fn everyday(&self, s: usize, e: usize) -> bool {
        let mut buf = [0u8; 32];
        let w = self.word_at(s, e);
        w.len() < 32 && everyday_word(lower(w, &mut buf))
    }

    /// Whether `own` (a capitalized word and its dot, at most 32 bytes) may be a title,
    /// lowercase, with or without its trailing dots: `false` when the title list's filter
    /// knows neither form and both end in ASCII (lowercasing keeps the filter bits).
    fn may_be_title(&self, own: &str) -> bool {
        let bare = own.trim_end_matches('.');
        let (o, w) = (own.as_bytes(), bare.as_bytes());
        let ascii = |w: &[u8]| matches!((w.first(), w.last()), (Some(f), Some(l)) if f.is_ascii() && l.is_ascii());
        !(o.len() <= 32
            && ascii(o)
            && ascii(w)
            && !self.w.titles.may_contain(own)
            && !self.w.titles.may_contain(bare))
    }

    /// Whether a name-like word may continue a name: not a sentence opener or field name.
    pub(super) fn name_word_ok(&self, s: usize, e: usize) -> bool {
        let w = self.word_at(s, e);
        // a short word that closes the name before punctuation (`Nguyễn Văn An,`) is part of it
        let closes = w.len() <= 3 && matches!(at(self.b, e), 0 | b',' | b'.' | b';' | b')' | b'\n');
        let f = self.w.name_flags.flags(w);
        f & name_flag::STOP_WORD == 0 || closes || f & (name_flag::SURNAME | name_flag::GIVEN) != 0
    }

    pub(super) fn name(&mut self, i: usize) -> usize {
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
        let (e1, flags) = if at(b, ascii_end) < 0x80
            && !at(b, ascii_end).is_ascii_alphabetic()
            && !matches!(at(b, ascii_end), b'-' | b'\'')
        {
            if ascii_end - i < 2 {
                return run(b, i, usize::MAX, word_byte);
            }
            let flags = self.w.name_flags.flags(self.word_at(i, ascii_end));
            if flags & name_flag::NOT_SURNAME != 0 {
                return run(b, i, usize::MAX, word_byte);
            }
            (ascii_end, flags)
        } else {
            let e1 = self.name_word_end(i);
            if !self.name_like(i, e1) {
                return run(b, i, usize::MAX, word_byte);
            }
            (e1, self.w.name_flags.flags(self.word_at(i, e1)))
        };
        // `Tom`, `Will`: a given name before a known surname, otherwise a word
        let given = flags & name_flag::GIVEN != 0
            || (flags & name_flag::WORD_GIVEN != 0 && self.surname_follows(e1));
        let surname = flags & name_flag::SURNAME != 0;
        let mut buf = [0u8; 32];
        // a title is a cue for the next word, never a name itself
        if !given
            && e1 - i <= 6
            && self.may_be_title(self.word_at(i, if at(b, e1) == b'.' { e1 + 1 } else { e1 }))
        {
            let own_end = if at(b, e1) == b'.' { e1 + 1 } else { e1 };
            let own = lower(self.word_at(i, own_end), &mut buf);
            let bare = own.trim_end_matches('.');
            if self.w.titles.contains(own)
                || (bare.len() < own.len() && self.w.titles.contains(bare))
            {
                return e1;
            }
        }
        // `San Francisco`: a place's prefix starts no name (the word after it is a place)
        if !given && flags & name_flag::PLACE_PREFIX != 0 {
            return e1;
        }
        // code, not a name: `Principal::new`, `Config {`, `TestClient(app)`, `Vec<T>`
        if matches!(at(b, e1), b'(' | b'<' | b'{' | b'}' | b'[') || b.get(e1..e1 + 2) == Some(b"::")
        {
            return e1;
        }
        // a sentence opener, field name, country or city longer than three letters that is no
        // surname never starts a name, whatever precedes it (below): no need to read the cue
        let never_first = !given && flags & name_flag::NEVER_FIRST != 0;
        if never_first && e1 - i > 3 && !surname {
            return e1;
        }
        let cue = self.name_cue(i);
        // a team or a desk after a cue is no one (`Cordiali saluti, Reception`, `Thanks, Support
        // Team`)
        if cue.is_some() && !given && ROLE_WORDS.contains(&fold(self.word_at(i, e1)).as_str()) {
            return e1;
        }
        // a saint's or a place's prefix makes a place: `San Francisco`, `São Paulo`, `St. Louis`
        if cue == Some(Cue::Place) {
            return e1;
        }

        // sentence openers, field names, countries and cities never start a name, whatever
        // precedes them (`Merci Garcia`, `FROM Customers`, `from Germany`); a title still makes
        // `Mr. Le` a name
        if (cue != Some(Cue::Title) || (e1 - i > 3 && !surname)) && never_first {
            return e1;
        }
        // no cue and no known given name: a name all the same when the e-mail address right
        // after it spells one of its words (`Rosalind Achebe,rosalind.achebe@…`, `Jörg Brandauer
        // <j.brandauer@…>`)
        // A known surname after an everyday English word is a changelog's or a title's pair
        // (`Configure Travis`, `Current Rand`), not a name.
        if cue.is_none()
            && !given
            && (!self.surname_follows(e1) || self.everyday(i, e1))
            && !self.spelled_by_email(i, e1)
        {
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
                        | "binti"
                        | "bint"
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
            let word = self.word_at(ws, we);
            let role = self.w.name_roles.flags(word);
            // a particle written with a capital inside a name, with the word it binds
            // (`Fatima Zahra El Idrissi`, `Giuseppina Lo Russo`, `Siobhán Ní Bhriain`)
            if (extra >= 1 || given || cue.is_some())
                && at(b, we) == b' '
                && role & name_role::PARTICLE != 0
            {
                let ne = self.name_word_end(we + 1);
                if ne - we > 3 && self.name_like(we + 1, ne) && self.name_word_ok(we + 1, ne) {
                    end = ne;
                    extra += 1;
                    continue;
                }
            }
            // without a cue, capitalized words before a street's or an institution's word name
            // the street or the institution (`Jefferson Davis Highway`, `Carlson Group`)
            if cue.is_none() && role & name_role::PLACE_AFTER != 0 {
                return we;
            }
            if role & name_role::HONORIFIC != 0 {
                break;
            }
            if !self.name_like(ws, we) || !self.name_word_ok(ws, we) {
                break;
            }
            // without a cue, after the first extra word a known surname or given name extends
            // the name, or a third word that is no sentence opener, field name, country or city
            // (`Tomás Echeverría Ugarte`, `Mehmet Ali Yıldırımtürk`: two surnames, two given
            // names)
            let f = self.w.name_flags.flags(word);
            // without a cue, an everyday word or a place that is no known surname ends the name
            // before it starts (`Rand Book`, `Mac Catalyst`, `Jackson Mississippi`; `Jane Doe`
            // and `Tim Cook` stay names)
            if cue.is_none()
                && extra == 0
                && f & name_flag::SURNAME == 0
                && (self.everyday(ws, we)
                    || (f & name_flag::NEVER_FIRST != 0 && f & name_flag::GIVEN == 0))
            {
                break;
            }
            if cue.is_none()
                && extra >= 1
                && f & (name_flag::SURNAME | name_flag::GIVEN) == 0
                && (f & name_flag::NEVER_FIRST != 0 || we - ws < 3)
            {
                break;
            }
            end = we;
            extra += 1;
        }
        // a street named after someone is a street (`Calle Juan Carlos 5`, `Jl. Kenanga Raya
        // No. 17`): the house number's walk back reads it
        if cue.is_none()
            && extra > 0
            && i >= self.last_end + 2
            && at(b, i - 1) == b' '
            && self
                .word_before(i - 1, self.last_end)
                .is_some_and(|(s, e)| self.w.spanish_streets.contains(self.word_at(s, e)))
        {
            return e1;
        }
        // a chat's speaker: a known given name opening a line before `:` (`Jess: did anyone…`,
        // `[09:14] Tomás: yes`, `Camille : oui`)
        if cue.is_none() && extra == 0 && flags & name_flag::GIVEN != 0 && self.speaker(i, e1) {
            self.push(EntityType::Person, i, e1, 75);
            return e1;
        }
        // a lone given name in a sentence: a known given name that is no everyday word, between
        // a person's word before it or a person's verb after it (`an offer to Tuan`, `Lars
        // sends`, `Callum and Fatima`)
        if cue.is_none() && extra == 0 && flags & name_flag::GIVEN != 0 && self.lone_given(i, e1) {
            self.push(EntityType::Person, i, e1, 70);
            return e1;
        }
        // a firm named after its founders (`Morgan Stanley`, `Goldman Sachs`)
        if cue.is_none() && extra == 1 && FIRMS.contains(&self.word_at(i, end)) {
            return end;
        }
        if cue.is_some() || extra > 0 {
            let confidence = if cue.is_some() { 80 } else { 75 };
            self.push(EntityType::Person, i, end, confidence);
            return end;
        }
        e1
    }

    // ---------- punctuation triggers ----------
}
