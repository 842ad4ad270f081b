//! Phones: groups with a trunk prefix or a context word, `+` international numbers,
//! bracketed area codes, extensions and `-Fax` labels.

use super::*;

impl Run<'_> {
    /// The separator at `e` if another group of the same number follows it: a separator and a
    /// digit, but not a space before an e-mail address's local part (`+1 874 539 254ppa81@…`:
    /// the address is a word of its own, and the number ends before it whether or not the
    /// address has been replaced by a marker yet).
    pub(super) fn next_group(&self, e: usize) -> Option<u8> {
        let c = at(self.b, e);
        let joins = matches!(c, b' ' | b'-' | b'.' | b'/')
            && at(self.b, e + 1).is_ascii_digit()
            && !(c == b' ' && self.email_ahead(e + 1).is_some());
        joins.then_some(c)
    }

    /// A phone's extension or label at `e`: `x549`, ` x12`, ` ext. 22`, ` ext 4417`,
    /// `-Fax`, `-Cell`: where it ends, and whether it says fax.
    pub(super) fn phone_suffix(&self, e: usize) -> Option<(usize, bool)> {
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
    pub(super) fn push_phone(&mut self, s: usize, e: usize, fax: bool, confidence: u8) -> usize {
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
    pub(super) fn mixed_phone(&mut self, s: usize) -> Option<usize> {
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

    pub(super) fn plus(&mut self, p: usize) -> usize {
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

    pub(super) fn paren(&mut self, p: usize) -> usize {
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
