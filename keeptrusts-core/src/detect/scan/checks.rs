//! Checksums and shape rules for the scanner's values: Luhn, mod-97, ABA, NPI, SSN and ITIN
//! ranges, NANP numbers, VINs, card ranges, dates, postcodes, random-looking secrets.

use super::*;

pub(super) fn number(d: &[u8]) -> u64 {
    d.iter().take(18).fold(0u64, |a, &x| a * 10 + u64::from(x))
}

/// Luhn checksum over digits.
pub fn luhn_digits(d: &[u8]) -> bool {
    if d.len() < 2 {
        return false;
    }
    let mut sum = 0u32;
    for (i, &x) in d.iter().rev().enumerate() {
        let mut v = u32::from(x);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Whether 13 digits carry an EAN-13 (GTIN-13) check digit: weights 1 and 3 from the left.
pub(super) fn ean13_ok(d: &[u8]) -> bool {
    if d.len() != 13 {
        return false;
    }
    let sum: u32 = d
        .iter()
        .take(12)
        .enumerate()
        .map(|(i, &x)| u32::from(x) * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    d.get(12)
        .is_some_and(|&c| (10 - sum % 10) % 10 == u32::from(c))
}

/// A dotted version (`3.11.6`, `3.5.0.0`): three parts of one to three digits, one of them a
/// single digit (so `12.05.23`, a date, is none), or four parts all of one digit or ending in
/// `.0` (a network's address, not a host's).
pub(super) fn version_shape(t: &[u8]) -> bool {
    let mut parts = [0usize; 5];
    let mut n = 0;
    for part in t.split(|&c| c == b'.') {
        if part.is_empty() || part.len() > 3 || n == 5 {
            return false;
        }
        if let Some(slot) = parts.get_mut(n) {
            *slot = part.len();
        }
        n += 1;
    }
    let parts = parts.get(..n).unwrap_or(&[]);
    match n {
        3 => parts.contains(&1),
        4 => parts.iter().all(|&l| l == 1) || t.ends_with(b".0"),
        _ => false,
    }
}

pub(super) fn card_iin(d: &[u8]) -> bool {
    let p = |n: usize| number(d.get(..n).unwrap_or(&[]));
    let (p1, p2, p3, p4) = (p(1), p(2), p(3), p(4));
    p1 == 4
        || (51..=55).contains(&p2)
        || (2221..=2720).contains(&p4)
        || p2 == 34
        || p2 == 37
        || p4 == 6011
        || (644..=649).contains(&p3)
        || p2 == 65
        || (3528..=3589).contains(&p4)
        || p2 == 36
        || p2 == 38
        || (300..=305).contains(&p3)
        || p2 == 62
}

/// Card numbers outside the usual 13–19 digits by their first digits: 12-digit Maestro (the
/// ranges its issuers printed 12-digit cards in) and the 15-digit JCB of 1800 and 2131.
pub(super) fn rare_card_iin(d: &[u8]) -> bool {
    let p4 = number(d.get(..4).unwrap_or(&[]));
    match d.len() {
        12 => matches!(
            p4,
            5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761 | 6762 | 6763
        ),
        15 => matches!(p4, 1800 | 2131),
        16 => (2200..=2204).contains(&p4), // Mir
        _ => false,
    }
}

pub(super) fn card_ok(d: &[u8]) -> bool {
    ((13..=19).contains(&d.len()) && card_iin(d) || rare_card_iin(d)) && luhn_digits(d)
}

pub(super) fn ssn_ok(d: &[u8]) -> bool {
    if d.len() != 9 {
        return false;
    }
    let area = number(d.get(..3).unwrap_or(&[]));
    let group = number(d.get(3..5).unwrap_or(&[]));
    let serial = number(d.get(5..).unwrap_or(&[]));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

pub(super) fn itin_ok(d: &[u8]) -> bool {
    if d.len() != 9 || d.first() != Some(&9) {
        return false;
    }
    let group = number(d.get(3..5).unwrap_or(&[]));
    matches!(group, 50..=65 | 70..=88 | 90..=92 | 94..=99)
}

pub(super) fn aba_ok(d: &[u8]) -> bool {
    if d.len() != 9 {
        return false;
    }
    let w = [3u32, 7, 1, 3, 7, 1, 3, 7, 1];
    let sum: u32 = d.iter().zip(w).map(|(&x, w)| u32::from(x) * w).sum();
    sum.is_multiple_of(10) && sum > 0
}

pub(super) fn npi_ok(d: &[u8]) -> bool {
    if d.len() != 10 || !matches!(d.first(), Some(1 | 2)) {
        return false;
    }
    let mut full = vec![8, 0, 8, 4, 0];
    full.extend_from_slice(d);
    luhn_digits(&full)
}

pub(super) fn nanp_ok(d: &[u8]) -> bool {
    let d = if d.len() == 11 && d.first() == Some(&1) {
        d.get(1..).unwrap_or(&[])
    } else {
        d
    };
    d.len() == 10
        && d.first().is_some_and(|&x| x >= 2)
        && d.get(3).is_some_and(|&x| x >= 2)
        && !(d.get(1) == Some(&9) && d.get(2) == Some(&9))
}

/// IBAN lengths by country (the SWIFT registry's countries).
pub(super) const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
];

/// Whole-text check: an IBAN (spaces ignored) of its country's length with a valid mod-97
/// checksum.
pub fn iban_ok(s: &[u8]) -> bool {
    // no IBAN is longer than 34 characters: anything longer fails the length check below
    let mut store = [0u8; 34];
    let mut n = 0;
    for &c in s.iter().filter(|b| **b != b' ') {
        match store.get_mut(n) {
            Some(slot) => *slot = c,
            None => return false,
        }
        n += 1;
    }
    let compact = store.get(..n).unwrap_or(&[]);
    let country = compact.get(..2).unwrap_or(&[]);
    let Some(&(_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| c.as_slice() == country) else {
        return false;
    };
    if compact.len() != len {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem = 0u32;
    for &c in tail.iter().chain(head) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

pub(super) fn vin_value(c: u8) -> Option<u32> {
    Some(match c {
        b'0'..=b'9' => u32::from(c - b'0'),
        b'A'..=b'H' => u32::from(c - b'A') + 1,
        b'J'..=b'N' => u32::from(c - b'J') + 1,
        b'P' => 7,
        b'R' => 9,
        b'S'..=b'Z' => u32::from(c - b'S') + 2,
        _ => return None,
    })
}

pub(super) fn vin_ok(s: &[u8]) -> bool {
    if s.len() != 17 || !s.iter().any(u8::is_ascii_digit) || !s.iter().any(u8::is_ascii_uppercase) {
        return false;
    }
    let w = [8u32, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    let mut sum = 0;
    for (&c, w) in s.iter().zip(w) {
        let Some(v) = vin_value(c) else { return false };
        sum += v * w;
    }
    let check = sum % 11;
    let expect = if check == 10 {
        b'X'
    } else {
        b'0' + u8::try_from(check).unwrap_or(0)
    };
    s.get(8) == Some(&expect)
}

/// Vendors' key prefixes and the shortest body after each.
pub(super) const VENDOR_KEYS: &[(&[u8], usize)] = &[
    (b"sk_live_", 16),
    (b"sk_test_", 16),
    (b"rk_live_", 16),
    (b"rk_test_", 16),
    (b"whsec_", 24),
    (b"hf_", 30),
    (b"npm_", 36),
    (b"shpat_", 32),
    (b"shpss_", 32),
    (b"shpca_", 32),
    (b"dop_v1_", 64),
];

/// Whether a token looks random rather than like words or an identifier (see
/// [`Run::secret`]).
pub(super) fn looks_random(t: &[u8]) -> bool {
    let class = |c: u8| match c {
        b'a'..=b'z' => 0u8,
        b'A'..=b'Z' => 1,
        b'0'..=b'9' => 2,
        _ => 3,
    };
    let digits = t.iter().filter(|c| c.is_ascii_digit()).count();
    let letters = t.iter().filter(|c| c.is_ascii_alphabetic()).count();
    if digits == 0 || letters < 4 {
        return false;
    }
    let (mut changes, mut run_len, mut longest) = (0usize, 0usize, 0usize);
    let mut prev = 9u8;
    for &c in t {
        let k = class(c);
        if k == prev {
            run_len += 1;
        } else {
            changes += 1;
            run_len = 1;
        }
        if k < 2 {
            longest = longest.max(run_len);
        }
        prev = k;
    }
    changes * 5 >= t.len() && longest < 8
}

/// The four-digit year that ends at `ye`.
pub(super) fn year_of(b: &[u8], ye: usize) -> u32 {
    u32::try_from(number(&digits_of(b, ye.saturating_sub(4), ye))).unwrap_or(0)
}

/// An ordinal suffix after a day at `e` (`4th`, `1st`, `22nd`, French `1er`): where it ends.
pub(super) fn ordinal_at(b: &[u8], e: usize) -> Option<usize> {
    let two = b.get(e..e + 2)?;
    (matches!(two, b"st" | b"nd" | b"rd" | b"th" | b"er") && !alnum(at(b, e + 2))).then_some(e + 2)
}

/// The entity type a context gives an identifier of letters and digits, or a number printed
/// in groups.
pub(super) fn typed_id(c: Ctx) -> Option<EntityType> {
    Some(match c {
        Ctx::Mrn => EntityType::MedicalRecordNumber,
        Ctx::HealthPlan => EntityType::HealthPlanId,
        Ctx::Account => EntityType::AccountNumber,
        Ctx::Bank => EntityType::BankAccount,
        Ctx::DriverLicense => EntityType::UsDriverLicense,
        Ctx::License => EntityType::LicenseNumber,
        Ctx::Passport => EntityType::UsPassport,
        Ctx::Device => EntityType::DeviceId,
        Ctx::Plate | Ctx::Vin => EntityType::VehicleId,
        _ => return None,
    })
}

pub(super) fn valid_date(y: u32, m: u32, d: u32) -> bool {
    (1..=12).contains(&m) && (1..=31).contains(&d) && (1900..=2099).contains(&y)
}

/// A Hangul syllable.
pub(super) fn hangul(c: char) -> bool {
    ('\u{AC00}'..='\u{D7A3}').contains(&c)
}

/// Canadian provinces and territories.
pub(super) const PROVINCES: &[&str] = &[
    "ON", "QC", "BC", "AB", "MB", "SK", "NS", "NB", "NL", "PE", "YT", "NT", "NU",
];

/// A Canadian postal code at `k` (`M5H 2N2`): where it ends.
pub(super) fn canadian_postcode(b: &[u8], k: usize) -> Option<usize> {
    let l = |i: usize| at(b, k + i).is_ascii_uppercase();
    let d = |i: usize| at(b, k + i).is_ascii_digit();
    (l(0) && d(1) && l(2) && at(b, k + 3) == b' ' && d(4) && l(5) && d(6) && !alnum(at(b, k + 7)))
        .then_some(k + 7)
}

/// A British postcode at `k` (`LS6 2AA`, `SW1A 1AA`, `M1 1AE`): where it ends.
pub(super) fn uk_postcode(b: &[u8], k: usize) -> Option<usize> {
    let letters = run(b, k, 3, |c| c.is_ascii_uppercase());
    if !(1..=2).contains(&(letters - k)) {
        return None;
    }
    let digits = run(b, letters, 3, |c| c.is_ascii_digit());
    if !(1..=2).contains(&(digits - letters)) {
        return None;
    }
    let outward = if at(b, digits).is_ascii_uppercase() {
        digits + 1
    } else {
        digits
    };
    let i = outward + 1;
    (at(b, outward) == b' '
        && at(b, i).is_ascii_digit()
        && at(b, i + 1).is_ascii_uppercase()
        && at(b, i + 2).is_ascii_uppercase()
        && !alnum(at(b, i + 3)))
    .then_some(i + 3)
}
