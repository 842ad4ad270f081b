//! The rest of an address after its street: units, districts, city, region and postcode, in
//! the known national forms and as comma-separated parts up to a postcode.

use super::*;

impl Run<'_> {
    /// The rest of an address after its street (`, Springfield, IL 62704`, `, 10115 Berlin`,
    /// `\n75002 Paris`, `, Toronto, ON M5H 2N2`, `, Leeds LS6 2AA`): where it ends, or `None`
    /// when none follows. `strict`: only a city with a state or province and a postcode counts
    /// (what confirms a street without a suffix).
    pub(super) fn address_tail(&self, end: usize, strict: bool) -> Option<usize> {
        let k = match (at(self.b, end), at(self.b, end + 1)) {
            (b',', b' ' | b'\n') => end + 2,
            (b'\n', _) => end + 1,
            // `Rua Augusta, 1500 - Consolação, São Paulo - SP, 01304-001`
            (b' ', b'-') if at(self.b, end + 2) == b' ' && !strict => end + 3,
            _ => return None,
        };
        let known = self.known_tail(k, strict);
        // districts and a city before the postcode, however many (`RT 03/RW 05, Kel. Cempaka
        // Putih, Jakarta Pusat 10510`): the longer reading wins
        match (
            known,
            (!strict).then(|| self.segments_to_postcode(k, 5)).flatten(),
        ) {
            (Some(a), Some(g)) => Some(a.max(g)),
            (a, g) => a.or(g),
        }
    }

    /// The comma-separated parts of an address's line from `k` up to one that holds its
    /// postcode (`RT 03/RW 05, Kel. Cempaka Putih, Jakarta Pusat 10510`, `3e étage, 67000
    /// Strasbourg`, `Stoke Newington, London N16 9PH`): where the postcode part ends. At most
    /// `parts` parts of 48 bytes, each holding only letters, digits, spaces and `.` `/` `-` `#`
    /// `:`; the sentence may go on after the postcode part (`80121 Napoli NA è in giacenza`).
    pub(super) fn segments_to_postcode(&self, k: usize, parts: usize) -> Option<usize> {
        let b = self.b;
        let mut s = k;
        for _ in 0..parts {
            let e = run(b, s, 48, |c| {
                c.is_ascii_alphanumeric()
                    || c >= 0x80
                    || matches!(c, b' ' | b'.' | b'/' | b'-' | b'#' | b':')
            });
            if e == s || !(alnum(at(b, s)) || at(b, s) >= 0x80) {
                return None;
            }
            if let Some(end) = self.postcode_part(s, e) {
                return Some(end);
            }
            if at(b, e) != b',' || at(b, e + 1) != b' ' {
                return None;
            }
            s = e + 2;
        }
        None
    }

    /// Where the postcode and city that open the part `s..t` of an address end: a postcode
    /// first (`80337 München`, `1016 JB Amsterdam`, `110 00 Praha 1`, `80121 Napoli NA`), a
    /// postcode last (`Jakarta Pusat 10510`, `Ultimo NSW 2007` with a state before four
    /// digits, `London N16 9PH`, `BC V6E 4R3`), or a postcode with its separator alone
    /// (`01426-001`). The part may end there, or the sentence go on after it (a `.`, or a
    /// space and a lower-case word).
    fn postcode_part(&self, s: usize, t: usize) -> Option<usize> {
        let b = self.b;
        let digit = |c: u8| c.is_ascii_digit();
        let closes = |k: usize| {
            k == t
                || (k < t
                    && (at(b, k) == b'.'
                        || (at(b, k) == b' '
                            && self.char_at(k + 1).is_some_and(char::is_lowercase))))
        };
        let d = run(b, s, 7, digit);
        if d > s {
            let mut p = d;
            match d - s {
                3 if at(b, p) == b' ' && run(b, p + 1, 3, digit) == p + 3 => p += 3,
                5 if at(b, p) == b'-' && run(b, p + 1, 4, digit) == p + 4 => p += 4,
                4..=6 => {}
                _ => return None,
            }
            if p > d && closes(p) {
                return Some(p);
            }
            if at(b, p) != b' ' {
                return None;
            }
            let mut c = p + 1;
            if at(b, c).is_ascii_uppercase()
                && at(b, c + 1).is_ascii_uppercase()
                && at(b, c + 2) == b' '
            {
                c += 3; // Dutch `1016 JB`
            }
            let mut ce = self.city(c, 4)?;
            // a province after a slash (`34728 Kadıköy/İstanbul`)
            if at(b, ce) == b'/' {
                ce = self.city(ce + 1, 2).unwrap_or(ce);
            }
            // a district number or a province after the city (`Praha 1`, `Napoli NA`)
            let district = run(b, ce + 1, 2, digit);
            let province = run(b, ce + 1, 3, |c| c.is_ascii_uppercase());
            let end = if at(b, ce) == b' ' && district > ce + 1 && !alnum(at(b, district)) {
                district
            } else if at(b, ce) == b' ' && province == ce + 3 && !alnum(at(b, province)) {
                province
            } else {
                ce
            };
            return closes(end).then_some(end);
        }
        // a postcode after a word: the words from the second on, left to right
        let mut prev = s;
        let mut w = run(b, s, 48, |c| c != b' ').min(t);
        while w < t && at(b, w) == b' ' {
            let ws = w + 1;
            let we = run(b, ws, 48, |c| c != b' ' && c != b'.').min(t);
            if let Some(e) = uk_postcode(b, prev).or_else(|| canadian_postcode(b, prev)) {
                if closes(e) {
                    return Some(e);
                }
            }
            let n = we - ws;
            let digits = run(b, ws, 7, digit) == we;
            let word = self.word_at(prev, w);
            let state =
                (2..=3).contains(&word.len()) && word.bytes().all(|c| c.is_ascii_uppercase());
            if digits
                && ((5..=6).contains(&n) && at(b, prev).is_ascii_uppercase() || n == 4 && state)
                && closes(we)
            {
                return Some(we);
            }
            prev = ws;
            w = run(b, ws, 48, |c| c != b' ').min(t);
        }
        None
    }

    /// [`Self::address_tail`]'s known forms: a European postcode and city, an American,
    /// Canadian or British city and code, or a city alone.
    fn known_tail(&self, k: usize, strict: bool) -> Option<usize> {
        let b = self.b;
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
        // Swedish, Czech, Slovak and Greek `903 26`
        if pe - p == 3
            && at(b, pe) == b' '
            && run(b, pe + 1, 3, |c| c.is_ascii_digit()) == pe + 3
            && at(b, pe + 3) == b' '
            && !strict
        {
            return self.city(pe + 4, 3);
        }
        if (4..=6).contains(&(pe - p)) && at(b, pe) == b' ' && !strict {
            let mut cs = pe + 1;
            if at(b, cs).is_ascii_uppercase()
                && at(b, cs + 1).is_ascii_uppercase()
                && at(b, cs + 2) == b' '
            {
                cs += 3; // Dutch `1012 AB`
            }
            let ce = self.city(cs, 3)?;
            // an Italian province after the city (`40121 Bologna BO`)
            let province = at(b, ce) == b' '
                && at(b, ce + 1).is_ascii_uppercase()
                && at(b, ce + 2).is_ascii_uppercase()
                && !alnum(at(b, ce + 3));
            return Some(if province { ce + 3 } else { ce });
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
            let alone = ends && !strict && (!self.w.given.contains(w) || self.w.places.contains(w));
            // a British postcode on the line after the city (`London\nSW1A 1AA`)
            let below = (next == b'\n').then(|| uk_postcode(b, ce + 1)).flatten();
            below.or(alone.then_some(ce))
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
}
