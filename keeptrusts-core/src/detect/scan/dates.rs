//! Dates: numeric, spaced, CJK (`1985年7月6日`) and with month names in several languages.

use super::*;

impl Run<'_> {
    /// A date found at `s..e` (`year` 0 when it has none of four digits): DATE_OF_BIRTH or DATE
    /// when the context ties it to a person — a birth or clinical phrase within 40 characters
    /// before it, or, with no phrase, a name right before it (`Ruth Okafor (02/11/1957)`,
    /// `Jan Novák, 25.07.1948`) when the year is before 2010 (a later date after a name is
    /// more often an event than a birth); timestamps and undated mentions are not findings.
    pub(super) fn dated(&mut self, s: usize, e: usize, year: u32) {
        let b = self.b;
        let timestamp = at(b, e) == b'T' && at(b, e + 1).is_ascii_digit()
            || at(b, e) == b' ' && at(b, e + 1).is_ascii_digit() && at(b, e + 3) == b':';
        match self.context_where(s, |c| matches!(c, Ctx::Dob | Ctx::ClinicalDate)) {
            Some(Ctx::Dob) => self.push(EntityType::DateOfBirth, s, e, 90),
            Some(Ctx::ClinicalDate) if !timestamp => self.push(EntityType::Date, s, e, 75),
            None if (1900..2010).contains(&year) && !timestamp && self.after_name(s) => {
                self.push(EntityType::DateOfBirth, s, e, 70);
            }
            _ => {}
        }
    }

    /// `11MAR1978`, `29Jul1981`, `05jan99`: a day (`s..e`), a month's three letters (the
    /// month list's: `MAR`, `Jul`) in one case or capitalized, and a year of two or four
    /// digits, glued, as airline and passport records print them; typed by
    /// [`dated`](Self::dated); where it ends.
    pub(super) fn glued_month_date(&mut self, s: usize, e: usize) -> Option<usize> {
        let b = self.b;
        let day = u32::try_from(number(&digits_of(b, s, e))).ok()?;
        let m = b.get(e..e + 3)?;
        let one_case = m.iter().all(u8::is_ascii_uppercase)
            || m.iter().all(u8::is_ascii_lowercase)
            || (m.first().is_some_and(u8::is_ascii_uppercase)
                && m.iter().skip(1).all(u8::is_ascii_lowercase));
        let mut buf = [0u8; 32];
        let month = one_case
            && self
                .w
                .months
                .contains(lower(self.word_at(e, e + 3), &mut buf));
        let ye = run(b, e + 3, 5, |c| c.is_ascii_digit());
        if !month || !matches!(ye - e - 3, 2 | 4) || alnum(at(b, ye)) || !(1..=31).contains(&day) {
            return None;
        }
        let y = u32::try_from(number(&digits_of(b, e + 3, ye))).ok()?;
        let year = if ye - e - 3 == 2 { 1900 + y } else { y };
        self.dated(s, ye, year);
        Some(ye)
    }

    /// A Chinese, Japanese or Korean date whose year is `s..e` (`1985年7月6日`, `1990년 3월
    /// 15일`): typed by [`dated`](Self::dated); where it ends.
    pub(super) fn cjk_date(&mut self, s: usize, e: usize) -> Option<usize> {
        if e - s != 4 {
            return None;
        }
        let b = self.b;
        let year = u32::try_from(number(&digits_of(b, s, e))).ok()?;
        let unit = |k: usize, han: &str, hangul: &str| -> Option<usize> {
            let t = self.text.get(k..)?;
            if t.starts_with(han) {
                Some(k + han.len())
            } else if t.starts_with(hangul) {
                Some(k + hangul.len())
            } else {
                None
            }
        };
        let num = |k: usize| -> Option<(usize, u32)> {
            let k = if at(b, k) == b' ' { k + 1 } else { k };
            let ne = run(b, k, 3, |c| c.is_ascii_digit());
            (1..=2)
                .contains(&(ne - k))
                .then(|| (ne, u32::try_from(number(&digits_of(b, k, ne))).unwrap_or(0)))
        };
        let k = unit(e, "年", "년")?;
        let (k, month) = num(k)?;
        let k = unit(k, "月", "월")?;
        let (k, day) = num(k)?;
        let end = unit(k, "日", "일")?;
        if !valid_date(year, month, day) {
            return None;
        }
        self.dated(s, end, year);
        Some(end)
    }

    /// A date written with a dot and a space between its parts (`4. 6. 1975`, Czech, Slovak,
    /// German): day and month of one or two digits, a year of four; typed by its context as
    /// any numeric date ([`dated`](Self::dated)). Where the scan goes on.
    pub(super) fn spaced_date(&mut self, s: usize, e: usize) -> Option<usize> {
        let b = self.b;
        let two = |k: usize| {
            let end = run(b, k, 3, |c| c.is_ascii_digit());
            ((1..=2).contains(&(end - k)) && at(b, end) == b'.' && at(b, end + 1) == b' ')
                .then_some(end)
        };
        if !(1..=2).contains(&(e - s)) || at(b, e) != b'.' || at(b, e + 1) != b' ' {
            return None;
        }
        let me = two(e + 2)?;
        let ys = me + 2;
        let ye = run(b, ys, 5, |c| c.is_ascii_digit());
        if ye - ys != 4 || alnum(at(b, ye)) {
            return None;
        }
        let num = |a: usize, z: usize| u32::try_from(number(&digits_of(b, a, z))).ok();
        let (d, m, y) = (num(s, e)?, num(e + 2, me)?, num(ys, ye)?);
        if !valid_date(y, m, d) {
            return None;
        }
        self.dated(s, ye, y);
        Some(ye)
    }

    /// `March 3, 1985`, `3 March 1985`, `3. März 1985`, `15 de marzo de 1990`, `July 4th,
    /// 1976`, `4th of July 1976`, `1er mars 1990`.
    pub(super) fn month_date(&mut self, s: usize, e: usize) -> Option<usize> {
        let b = self.b;
        if e - s > 2 {
            return None;
        }
        let day = number(&digits_of(b, s, e));
        // the day's ordinal suffix
        let e = ordinal_at(b, e).unwrap_or(e);
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
                        self.dated(ms, ye, year_of(b, ye));
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
        if matches!(self.word_at(k, k + 3), "de " | "of ") {
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
        self.dated(s, ye, year_of(b, ye));
        Some(ye)
    }
}
