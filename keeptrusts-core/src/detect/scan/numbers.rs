//! Runs of digits: the dispatcher for a digit, groups of one separator, typed numbers,
//! cards, IP addresses, MAC addresses, MBIs, IBANs and mixed tokens.

use super::*;

impl Run<'_> {
    /// A token starting with a digit at `i`: where the scan goes on.
    ///
    /// A run of numbers joined by separators (`05 05 05 …`, `0612 345 678 0612-345-678`) is read
    /// from its first group only: a group inside it is never the start of a value. Were it one,
    /// redacting that value would leave the groups before it as a shorter run of their own,
    /// which the next scan could read as another value (redaction would not be idempotent). A
    /// run starts at a group with no number right before it, or right after a finding or a run
    /// read past its first group.
    pub(super) fn digit(&mut self, i: usize) -> usize {
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

    pub(super) fn number_at(&mut self, i: usize) -> usize {
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
            // a travel document's date: day, English month abbreviation, year (`11MAR1978`,
            // `29Jul81`)
            if groups.len() == 1 && first_e - first_s <= 2 {
                if let Some(e) = self.glued_month_date(first_s, first_e) {
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
    pub(super) fn inside_token(&mut self, i: usize) -> usize {
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
    pub(super) fn mac(&mut self, s: usize) -> Option<usize> {
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
        // not glued to more hex groups or a word, nor to a bracket (a redaction marker's start:
        // `ab:…:ab:abi@x.mx` has no address, so `ab:…:ab:[EMAIL]` has none either)
        let after = at(b, end);
        let more = |c: u8| c.is_ascii_hexdigit() || c == b'[';
        if alnum(after)
            || after == b'['
            || (matches!(after, b':' | b'-' | b'.') && more(at(b, end + 1)))
        {
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
    pub(super) fn mbi(&mut self, s: usize) -> Option<usize> {
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

    pub(super) fn grouped(&mut self, groups: &[(usize, usize)], sep: u8) -> Option<usize> {
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
            // (`ip=84.213.47.190`, a key and `=`, is an address; `==`, `>=`, `~=` pin a version)
            let pinned = matches!(before, b'v' | b'V' | b'<' | b'>' | b'~' | b'^')
                || (before == b'='
                    && (s < 2 || !at(b, s - 2).is_ascii_alphanumeric() && at(b, s - 2) != b'_'))
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
        let first = d.first().copied().unwrap_or(0);
        if sep == b' ' {
            // a trunk prefix and the subscriber number in one group (`0176 24839105`,
            // `01632 960123`)
            let trunk_two = matches!(lens, [3..=5, 6..=8])
                && first == 0
                && d.get(1).is_some_and(|&x| x != 0)
                && (11..=12).contains(&d.len());
            // nine digits in four groups without a trunk prefix (Spain: `612 48 93 07`,
            // `91 544 27 18`), ten in two fives (India: `99674 21508`)
            let spanish = matches!(lens, [3, 2, 2, 2] | [2, 3, 2, 2]) && (6..=9).contains(&first);
            let indian = lens == [5, 5] && (6..=9).contains(&first);
            if trunk_two || spanish || indian {
                return Some(self.push_phone(s, e, false, 60));
            }
        }
        None
    }

    pub(super) fn single_number(&mut self, s: usize, e: usize) -> Option<usize> {
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
            // `Cad. No: 241`, `Sok. No:12`
            if s >= self.last_end + 4 && (at(b, s - 1) == b':' || at(b, s - 2) == b':') {
                if let Some(end) = self.turkish_address(s, e) {
                    return Some(end);
                }
            }
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
            let after_comma =
                s >= self.last_end + 3 && at(b, s - 1) == b' ' && at(b, s - 2) == b',';
            // `5, avenue Victor Hugo`
            let comma_after =
                at(b, e) == b',' && at(b, e + 1) == b' ' && at(b, e + 2).is_ascii_lowercase();
            if spaced_before
                || after_comma
                || comma_after
                || (at(b, e) == b' ' && next.is_ascii_lowercase())
            {
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
    pub(super) fn imei_after(&self, e: usize) -> bool {
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

    /// An identifier with letters and digits, typed by the context word before it. Plates,
    /// licences, member and account numbers may be printed in groups with single spaces
    /// (`8XKR 412`, `A123 4567 8901`, `B-MW 4471`, `1234 BCD`): a group joins when it holds a
    /// digit, or, for a plate, when it is up to four capitals.
    pub(super) fn id_token(&mut self, s: usize) -> Option<usize> {
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
        // where each joined group ends, for the fallback below
        let mut ends = [first; 5];
        let mut groups = 1;
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
                if let Some(slot) = ends.get_mut(groups) {
                    *slot = ge;
                    groups += 1;
                }
            }
        }
        // what the token is when it ends at `end`: its groups joined, or its first group alone
        // when the joined run is too long for its kind (`account 00234567-8e 4294 0283 830427`:
        // the groups after the account number are a card, which the next pass would find
        // before it and leave the account number alone)
        let kind_of = |end: usize| -> Option<EntityType> {
            let t = b.get(s..end)?;
            let digits = t.iter().filter(|c| c.is_ascii_digit()).count();
            // identifiers printed on cards, plates and devices are in one case: `HmacSha256` is
            // code
            let mixed_case =
                t.iter().any(u8::is_ascii_lowercase) && t.iter().any(u8::is_ascii_uppercase);
            // a licence number has a few digits: `Apache-2` is a licence, not a licence number
            let few = matches!(ctx, Ctx::DriverLicense | Ctx::License) && digits < 4;
            if digits == 0 || mixed_case || few {
                return None;
            }
            let len = end - s;
            Some(match ctx {
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
            })
        };
        // ... and when the first group alone is too short, the longest run of groups that is
        // one (`iban de14 42e 0283 7808 12`: the bank account is `de14 42e`, as it is once the
        // phone number after it is a marker)
        let (kind, e) = match kind_of(e) {
            Some(kind) => (kind, e),
            None if e != first => match kind_of(first) {
                Some(kind) => (kind, first),
                None => ends
                    .iter()
                    .take(groups)
                    .rev()
                    .find_map(|&end| Some((kind_of(end)?, end)))?,
            },
            None => return None,
        };
        self.push(kind, s, e, 85);
        Some(e)
    }

    pub(super) fn iban(&mut self, s: usize) -> Option<usize> {
        let b = self.b;
        let mut j = s;
        let mut count = 0;
        // candidate ends: where a group of the printed form ends (at most one per character)
        let mut ends = [0usize; 34];
        let mut n_ends = 0;
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
                    if let Some(slot) = ends.get_mut(n_ends) {
                        *slot = j;
                        n_ends += 1;
                    }
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
        let end = ends.get(..n_ends)?.iter().rev().copied().find(|&e| {
            b.get(s..e).is_some_and(|t| {
                if lowercase {
                    // 34 characters and their spaces
                    let mut up = [0u8; 48];
                    match up.get_mut(..t.len()) {
                        Some(u) => {
                            u.iter_mut()
                                .zip(t)
                                .for_each(|(d, c)| *d = c.to_ascii_uppercase());
                            iban_ok(u)
                        }
                        None => iban_ok(&t.to_ascii_uppercase()),
                    }
                } else {
                    iban_ok(t)
                }
            })
        })?;
        self.push(EntityType::Iban, s, end, 95);
        Some(end)
    }
}
