//! Addresses: a house number, street, unit, city, region and postcode as one span; German,
//! French, Spanish and CJK forms; PO boxes.

use super::*;

impl Run<'_> {
    /// A US military address's last line at `i` (`APO AE 09012`, `FPO AP 96601-1234`, `DPO AA
    /// 34056`), pushed with the line before it when that names the unit (`PSC 1234, Box 5678`,
    /// `Unit 2050 Box 4190`, `CMR 480`, `USS Nimitz`): where it ends.
    pub(super) fn military_address(&mut self, i: usize) -> Option<usize> {
        let b = self.b;
        if !matches!(b.get(i..i + 3)?, b"APO" | b"FPO" | b"DPO")
            || at(b, i + 3) != b' '
            || at(b, i + 4) != b'A'
            || !matches!(at(b, i + 5), b'A' | b'E' | b'P')
            || at(b, i + 6) != b' '
        {
            return None;
        }
        let zs = i + 7;
        let mut ze = run(b, zs, 6, |c| c.is_ascii_digit());
        if ze - zs != 5 || alnum(at(b, ze)) {
            return None;
        }
        let ext = run(b, ze + 1, 5, |c| c.is_ascii_digit());
        if at(b, ze) == b'-' && ext - ze - 1 == 4 && !alnum(at(b, ext)) {
            ze = ext;
        }
        // the unit's line: the line before, when it starts with a unit's word
        let mut start = i;
        if i >= self.last_end + 2 && at(b, i - 1) == b'\n' {
            let mut ls = i - 1;
            while ls > self.last_end && i - ls < 48 && at(b, ls - 1) != b'\n' {
                ls -= 1;
            }
            let line = b.get(ls..i - 1).unwrap_or(&[]);
            let unit = [
                &b"PSC "[..],
                b"Unit ",
                b"CMR ",
                b"USS ",
                b"USNS ",
                b"USCGC ",
            ]
            .iter()
            .any(|w| line.starts_with(w));
            if unit && (ls == 0 || at(b, ls - 1) == b'\n') {
                start = ls;
            }
        }
        self.push(EntityType::Address, start, ze, 85);
        Some(ze)
    }

    /// A Turkish address whose house number is at `s..end`: the street's name and word, `No:`
    /// and the number, the flat and floor, and the rest (`Bağdat Cad. No: 241 D: 7, 34728
    /// Kadıköy/İstanbul`, `Moda Caddesi No:45 Daire:7, Kadıköy, 34710 İstanbul`), pushed.
    pub(super) fn turkish_address(&mut self, s: usize, end: usize) -> Option<usize> {
        let b = self.b;
        let no = [&b"No: "[..], b"No:", b"No "]
            .into_iter()
            .find(|w| s >= w.len() && b.get(s - w.len()..s) == Some(*w))?;
        let p = s - no.len();
        if p < self.last_end + 2 || at(b, p - 1) != b' ' {
            return None;
        }
        let (ws, we) = self.word_before(p - 1, self.last_end)?;
        if !TURKISH_STREETS.contains(&self.word_at(ws, we)) {
            return None;
        }
        // one or two capitalized words name the street (`Bağdat`, `Halaskargazi`, `Atatürk
        // Mah. Cumhuriyet`)
        let mut start = None;
        let mut k = ws;
        for _ in 0..2 {
            if k < self.last_end + 2 || at(b, k - 1) != b' ' {
                break;
            }
            // no further back than any look back goes (what a stream's rescan sees)
            match self.word_before(k - 1, self.last_end) {
                Some((cs, _))
                    if s - cs < LOOK_BACK && self.char_at(cs).is_some_and(char::is_uppercase) =>
                {
                    start = Some(cs);
                    k = cs;
                }
                _ => break,
            }
        }
        let start = start?;
        // the flat and the floor: ` D: 7`, ` Daire: 7`, ` Kat: 3`, ` D:7`
        let mut e = end;
        for _ in 0..2 {
            let unit = [
                &b" Daire: "[..],
                b" Daire:",
                b" D: ",
                b" D:",
                b" Kat: ",
                b" Kat:",
            ]
            .into_iter()
            .find(|w| b.get(e..e + w.len()) == Some(*w));
            let Some(unit) = unit else { break };
            let ve = run(b, e + unit.len(), 4, |c| c.is_ascii_digit());
            if ve == e + unit.len() || alnum(at(b, ve)) {
                break;
            }
            e = ve;
        }
        let e = self.address_tail(e, false).unwrap_or(e);
        self.push(EntityType::Address, start, e, 80);
        Some(e)
    }

    /// `123 Main Street`, `42 W 5th Ave, Apt 3B`.
    pub(super) fn address(&mut self, s: usize, num_end: usize) -> Option<usize> {
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
                // a suffix that is also an everyday noun (`Summit`, `Meadows`) makes a street
                // only with a unit, a direction or the rest of the address after it
                if end == we && WEAK_STREET_SUFFIXES.contains(&word) {
                    return None;
                }
                let start = self.unit_before(s);
                self.push(EntityType::Address, start, end, 85);
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
            // a direction written with its period (`1147 W. Belmont Ave`)
            if at(b, we) == b'.'
                && at(b, we + 1) == b' '
                && matches!(word, "N" | "S" | "E" | "W" | "NW" | "NE" | "SW" | "SE")
            {
                j = we + 2;
                continue;
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
    pub(super) fn place_word(&self, k: usize) -> Option<usize> {
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
    pub(super) fn city(&self, k: usize, max: usize) -> Option<usize> {
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

    /// A post-office box, the number at `s..e` (`PO Box 1234`, `P.O. Box 12`, `Postfach 10 20`,
    /// `Apartado 45`, `Caixa Postal 9`, `Casella Postale 3`, `BP 12`), with the rest of its
    /// address when one follows: pushed; where it ends.
    pub(super) fn po_box(&mut self, s: usize, e: usize) -> Option<usize> {
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
    pub(super) fn german_address(&mut self, s: usize) -> Option<usize> {
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
            // French: number, then a street word (`12 rue de la Paix`, `5, avenue Victor Hugo`)
            let gap = match (at(b, end), at(b, end + 1)) {
                (b' ', _) => Some(1),
                (b',', b' ') => Some(2),
                _ => None,
            };
            if let Some(gap) = gap {
                let ws = end + gap;
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
                    // after a comma the street word may be a plain word (`chapter 5, place
                    // the lid`): the postcode and city must confirm it
                    let k = match self.address_tail(k, false) {
                        Some(t) => t,
                        None if gap == 1 => k,
                        None => return None,
                    };
                    self.push(EntityType::Address, s, k, 80);
                    return Some(k);
                }
            }
        }
        if let Some(e) = self.turkish_address(s, end) {
            return Some(e);
        }
        // German and Spanish: the street name comes first
        if s < self.last_end + 2 || at(b, s - 1) != b' ' {
            return None;
        }
        // a comma between a street that a prefix opens and its number (`Calle de Alcalá, 45`,
        // `Via Garibaldi, 12`, `Rua Augusta, 1500`)
        let comma = s >= self.last_end + 3 && at(b, s - 2) == b',';
        let mut ws = if comma { s - 2 } else { s - 1 };
        let mut words = 0;
        let mut start = None;
        // a German street named by a preposition (`Am Lerchenberg 3`, `An der Alster 12`,
        // `Im Winkel 4`): an address only with its postcode and city after it
        let mut preposition = None;
        // where the earliest word read starts
        let mut first_word = s;
        while words < 4 && ws > self.last_end {
            let we = ws;
            let mut k = we;
            // letters, dots and the hyphens of a street named after someone
            // (`Hermann-Löns-Straße`)
            while k > self.last_end
                && s - k < LOOK_BACK
                && (at(b, k - 1).is_ascii_alphabetic()
                    || at(b, k - 1) >= 0x80
                    || at(b, k - 1) == b'.'
                    || (at(b, k - 1) == b'-' && k - 1 > self.last_end && at(b, k - 2) != b' '))
            {
                k -= 1;
            }
            if k == we {
                break;
            }
            let word = self.word_at(k, we);
            if words == 0
                && !comma
                && at(b, k).is_ascii_uppercase()
                && self
                    .w
                    .german_street_endings
                    .iter()
                    .any(|e| ends_with_ci(word.as_bytes(), e.as_bytes()))
            {
                // a street word written apart after a place's adjective (`Schleißheimer
                // Straße`, `Berliner Allee`)
                let apart = matches!(
                    word,
                    "Straße" | "Strasse" | "Str." | "Allee" | "Weg" | "Platz" | "Gasse" | "Ring"
                );
                let adjective = (apart && k >= self.last_end + 2 && at(b, k - 1) == b' ')
                    .then(|| self.word_before(k - 1, self.last_end))
                    .flatten()
                    .filter(|&(ps, pe)| {
                        s - ps < LOOK_BACK
                            && at(b, ps).is_ascii_uppercase()
                            && self.word_at(ps, pe).ends_with("er")
                    });
                start = Some(adjective.map_or(k, |(ps, _)| ps));
                break;
            }
            if self.w.spanish_streets.contains(word) {
                start = Some(k);
                break;
            }
            if words >= 1
                && matches!(
                    word,
                    "Am" | "An" | "Im" | "In" | "Auf" | "Zum" | "Zur" | "Unter"
                )
                && (k == 0 || !alnum(at(b, k - 1)))
            {
                preposition = Some(k);
                break;
            }
            if !at(b, k).is_ascii_uppercase()
                && !matches!(
                    word,
                    "der"
                        | "dem"
                        | "den"
                        | "de"
                        | "del"
                        | "la"
                        | "las"
                        | "los"
                        | "di"
                        | "dei"
                        | "degli"
                        | "della"
                        | "delle"
                        | "dello"
                        | "da"
                        | "das"
                        | "do"
                        | "dos"
                )
            {
                break;
            }
            words += 1;
            first_word = k;
            if k <= self.last_end || at(b, k - 1) != b' ' {
                break;
            }
            ws = k - 1;
        }
        if start.is_none() {
            if comma {
                return None;
            }
            if let Some(p) = preposition {
                let end = self.address_tail(self.unit_after(end), false)?;
                self.push(EntityType::Address, p, end, 75);
                return Some(end);
            }
            // a street with no street word (`Karlova 14`, `Nørrebrogade 12` aside), when its
            // postcode and city follow at once (`, 110 00 Praha 1`)
            if words == 0 || at(b, end) != b',' || at(b, end + 1) != b' ' {
                return None;
            }
            let tail = self.segments_to_postcode(end + 2, 1)?;
            self.push(EntityType::Address, first_word, tail, 75);
            return Some(tail);
        }
        let start = start?;
        let end = self.unit_after(end);
        // with a comma before the number, only with the postcode and city after it
        let end = match self.address_tail(end, false) {
            Some(t) => t,
            None if !comma => end,
            None => return None,
        };
        self.push(EntityType::Address, start, end, 80);
        Some(end)
    }

    /// Where an address whose house number is at `s` starts when a unit, and maybe a building,
    /// stand before it on its line (`Flat 3, 27 Kingsley Road`, `Unit 6, Riverside Works, 42
    /// Wharf Road`, `#1204 - 1288 West Georgia Street`): at the unit; else `s`.
    fn unit_before(&self, s: usize) -> usize {
        let b = self.b;
        // a Canadian unit written before the number with a dash (`#1204 - 1288 West Georgia
        // Street`, `1204 - 1288 …`)
        if s >= self.last_end + 5 && b.get(s - 3..s) == Some(b" - ") {
            let te = s - 3;
            let mut ts = te;
            while ts > self.last_end && te - ts < 7 && at(b, ts - 1).is_ascii_alphanumeric() {
                ts -= 1;
            }
            if at(b, ts).is_ascii_digit() && ts < te {
                let hash = ts > self.last_end && at(b, ts - 1) == b'#';
                let start = if hash { ts - 1 } else { ts };
                // without `#`, a unit of three characters or more (not a range `12 - 14`)
                if (hash || te - ts >= 3)
                    && (start == 0 || matches!(at(b, start - 1), b' ' | b'\n' | b':' | b',' | b'('))
                {
                    return start;
                }
            }
        }
        let mut k = s;
        for _ in 0..2 {
            if k < self.last_end + 4 || at(b, k - 1) != b' ' || at(b, k - 2) != b',' {
                return s;
            }
            // the segment before the comma, back to the line's start or the previous comma
            let seg_end = k - 2;
            let mut seg = seg_end;
            while seg > self.last_end && !matches!(at(b, seg - 1), b',' | b'\n' | b':' | b'(') {
                seg -= 1;
            }
            while at(b, seg) == b' ' {
                seg += 1;
            }
            // the segment ends with a unit word and its number (`… Unit 6`)
            let mut ts = seg_end;
            while ts > seg && at(b, ts - 1) != b' ' {
                ts -= 1;
            }
            let mut us = ts.saturating_sub(1);
            while us > seg && at(b, us - 1).is_ascii_alphabetic() {
                us -= 1;
            }
            let unit = ts > seg
                && seg_end - ts <= 6
                && b.get(ts..seg_end)
                    .is_some_and(|t| t.iter().all(|&c| alnum(c) || c == b'-'))
                && matches!(
                    self.word_at(us, ts - 1),
                    "Unit"
                        | "Flat"
                        | "Apt"
                        | "Apartment"
                        | "Suite"
                        | "Ste"
                        | "Room"
                        | "Floor"
                        | "Level"
                        | "Plot"
                        | "Block"
                );
            if unit && (us == seg || at(b, us - 1) == b' ') {
                return us;
            }
            // a building's name between unit and number: capitalized words only
            let named = seg_end - seg <= 40
                && at(b, seg).is_ascii_uppercase()
                && b.get(seg..seg_end).is_some_and(|w| {
                    w.iter()
                        .all(|&c| c.is_ascii_alphabetic() || c == b' ' || c == b'\'')
                });
            if !named {
                return s;
            }
            k = seg;
        }
        s
    }

    /// Where a unit after a house number ends: a letter (`Storgatan 14 B`) or, after a comma,
    /// a floor and door (`Calle del Pez Volador 41, 3º B`, `…, 2.ª izq.`); `end` when none
    /// follows. Only before a comma or a line break, where the rest of the address goes on.
    fn unit_after(&self, end: usize) -> usize {
        let b = self.b;
        let closes = |k: usize| matches!(at(b, k), b',' | b'\n');
        if at(b, end) == b' ' && at(b, end + 1).is_ascii_uppercase() && closes(end + 2) {
            return end + 2;
        }
        if at(b, end) == b',' && at(b, end + 1) == b' ' {
            let ds = end + 2;
            let de = run(b, ds, 2, |c| c.is_ascii_digit());
            let mut k = if at(b, de) == b'.' { de + 1 } else { de };
            // º or ª
            if de > ds && at(b, k) == 0xC2 && matches!(at(b, k + 1), 0xBA | 0xAA) {
                k += 2;
                if at(b, k) == b' ' {
                    let le = run(b, k + 1, 5, |c| c.is_ascii_alphabetic());
                    if le > k + 1 && le - k - 1 <= 4 {
                        k = if at(b, le) == b'.' { le + 1 } else { le };
                    }
                }
                if closes(k) {
                    return k;
                }
            }
        }
        end
    }

    /// A Chinese or Japanese address whose region ends at `p` (`東京都港区六本木6-10-1`,
    /// `北京市朝阳区建国路88号`), pushed; where it ends. The address runs on over Han characters,
    /// katakana, digits and dashes, and ends after its last number (with `号`, `番地`, `号室`, …);
    /// a district or street word (区, 市, 町, 路, 街, …) must stand before that number, so
    /// `北京市人口2000万` is no address.
    pub(super) fn cjk_address(&mut self, p: usize) -> Option<usize> {
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
        // a postcode written before the region (`518057 广东省…`, `〒106-0032 東京都…`)
        let b = self.b;
        let mut s = s;
        let gap = usize::from(s > 0 && at(b, s - 1) == b' ');
        let mut ps = s - gap;
        while ps > self.last_end
            && s - gap - ps < 8
            && (at(b, ps - 1).is_ascii_digit() || at(b, ps - 1) == b'-')
        {
            ps -= 1;
        }
        let pc = b.get(ps..s - gap).unwrap_or(&[]);
        let shaped = pc.len() == 6 && pc.iter().all(u8::is_ascii_digit)
            || pc.len() == 8 && pc.get(3) == Some(&b'-');
        if shaped && (ps == 0 || !alnum(at(b, ps - 1))) {
            // with its `〒` when it has one
            s = if b.get(ps.saturating_sub(3)..ps) == Some("〒".as_bytes()) {
                ps - 3
            } else {
                ps
            };
        }
        self.push(EntityType::Address, s, end, 75);
        Some(end)
    }
}

/// Turkish street words, after the street's name (`Bağdat Cad.`, `Moda Caddesi`, `Gül Sok.`).
const TURKISH_STREETS: &[&str] = &[
    "Cad.", "Caddesi", "Cd.", "Sok.", "Sokak", "Sokağı", "Sk.", "Bulvarı", "Blv.", "Bulv.", "Yolu",
];
