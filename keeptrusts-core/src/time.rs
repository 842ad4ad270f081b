//! Time as the core sees it: milliseconds since the Unix epoch, always passed in by the host
//! (the core never reads a clock), and the UTC calendar the wallets and dashboards count in.

/// Milliseconds since the Unix epoch, passed in by the host.
pub type Millis = i64;

/// One UTC day.
pub const DAY: Millis = 86_400_000;

/// The start (UTC midnight) of the day holding `t`.
pub fn day_of(t: Millis) -> Millis {
    t.div_euclid(DAY) * DAY
}

/// The start (Monday 00:00 UTC) of the ISO week holding `t`.
pub fn week_of(t: Millis) -> Millis {
    // 1970-01-01 was a Thursday: shift so weeks start on Monday
    (t.div_euclid(DAY) + 3).div_euclid(7) * 7 * DAY - 3 * DAY
}

/// The first millisecond of the UTC month containing `now`.
pub fn month_start(now: Millis) -> Millis {
    let day = now.div_euclid(DAY);
    let (y, m, _) = civil_from_days(day);
    days_from_civil(y, m, 1).saturating_mul(DAY)
}

/// `t` as a UTC date, `2026-12-02`.
pub fn utc_date(t: Millis) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `t` as a UTC time to the second, `2026-12-02 13:45:00Z`.
pub fn utc_time(t: Millis) -> String {
    let s = t.rem_euclid(DAY) / 1000;
    format!(
        "{} {:02}:{:02}:{:02}Z",
        utc_date(t),
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// 00:00 UTC of a date written `2026-12-02` (years 1970 to 9999); `None` for anything else,
/// `2026-02-31` included.
pub fn parse_utc_date(date: &str) -> Option<Millis> {
    if date.len() != 10 {
        return None;
    }
    let mut parts = date.splitn(3, '-').map(|p| p.parse::<u32>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let t = days_from_civil(i64::from(y), m, d).saturating_mul(DAY);
    // a day past the month's end reads back as another date
    (utc_date(t) == date).then_some(t)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_print_in_utc() {
        assert_eq!(utc_date(1_796_219_100_000), "2026-12-02");
        assert_eq!(utc_time(1_796_219_100_000), "2026-12-02 13:45:00Z");
        assert_eq!(utc_time(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc_date(-1), "1969-12-31");
        assert_eq!(parse_utc_date("2000-02-29"), Some(951_782_400_000));
        assert_eq!(parse_utc_date("1970-01-01"), Some(0));
        for bad in ["2026-02-31", "2026-1-1", "x", "1969-12-31", "2026-12-02T00"] {
            assert_eq!(parse_utc_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn days_weeks_and_months_start_where_the_utc_calendar_says() {
        // 2026-12-02T13:45:00Z, a Wednesday
        let t = 1_796_219_100_000;
        assert_eq!(day_of(t), 1_796_169_600_000);
        assert_eq!(week_of(t), 1_796_169_600_000 - 2 * DAY);
        assert_eq!(month_start(t), 1_796_169_600_000 - DAY);
        // before the epoch too
        assert_eq!(day_of(-1), -DAY);
        assert_eq!(month_start(-1), -31 * DAY);
    }

    #[test]
    fn month_boundaries() {
        // 2026-11-24T21:37:00Z
        let now = 1_795_556_220_000;
        assert_eq!(month_start(now), 1_793_491_200_000); // 2026-11-01
        assert_eq!(month_start(1_793_491_200_000), 1_793_491_200_000);
        assert_eq!(month_start(1_793_491_199_999), 1_790_812_800_000); // 2026-10-01
        assert_eq!(month_start(0), 0);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }
}
