//! Tokens after a trigger byte: uppercase tokens (AWS keys, IBANs, VINs, IDs), e-mail
//! addresses at `@`, URLs and IPv6 at `:`, key prefixes at `-` `_` `.`, private-key blocks,
//! JWTs and secrets after their context.

use super::*;

impl Run<'_> {
    /// An uppercase letter at a token's start: AWS and Google keys, IBANs, VINs, MAC
    /// addresses, context-typed IDs and secrets, else a name (`Self::name`).
    pub(super) fn upper(&mut self, i: usize) -> usize {
        let b = self.b;
        // a letter of an alphabetic script glued before it makes this the middle of a word;
        // CJK, full-width forms and punctuation do not (`アクセスキーはAKIA…です`)
        let glued = self.before(i) >= 0x80
            && self
                .char_before(i)
                .is_some_and(|c| c.is_alphanumeric() && !cjk_letter(c));
        if !self.starts(i) || glued {
            // JWT: `eyJ…` seen at its `J`
            if at(b, i) == b'J'
                && i >= self.last_end + 2
                && at(b, i - 2) == b'e'
                && at(b, i - 1) == b'y'
            {
                if let Some(e) = self.jwt(i - 2) {
                    return e;
                }
            }
            if !glued {
                if let Some(e) = self.secret(i) {
                    return e;
                }
            }
            return run(b, i, usize::MAX, alnum);
        }
        if let Some(e) = self.military_address(i) {
            return e;
        }
        // Google API keys: `AIza` and 35 more
        if b.get(i..i + 4) == Some(b"AIza") {
            let e = self.key_token(i, b"_-");
            if e - i == 39 {
                self.push(EntityType::ApiKey, i, e, 95);
                return e;
            }
        }
        let alnum_end = run(b, i, 64, alnum);
        let token = b.get(i..alnum_end).unwrap_or(&[]);
        let len = token.len();
        let mut has_digit = token.iter().any(u8::is_ascii_digit);
        if !has_digit && at(b, alnum_end) == b'-' {
            let id_end = run(b, i, 64, |c| alnum(c) || c == b'-');
            has_digit = b
                .get(i..id_end)
                .is_some_and(|t| t.iter().any(u8::is_ascii_digit));
        }
        if len == 20
            && (token.starts_with(b"AKIA") || token.starts_with(b"ASIA"))
            && token
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            self.push(EntityType::AwsAccessKey, i, alnum_end, 99);
            return alnum_end;
        }
        if has_digit {
            if at(b, i + 1).is_ascii_uppercase()
                && at(b, i + 2).is_ascii_digit()
                && at(b, i + 3).is_ascii_digit()
            {
                if let Some(e) = self.iban(i) {
                    return e;
                }
            }
            if len == 17 && !alnum(at(b, alnum_end)) && vin_ok(token) {
                self.push(EntityType::VehicleId, i, alnum_end, 90);
                return alnum_end;
            }
            if matches!(at(b, i + 2), b':' | b'-') || at(b, i + 4) == b'.' {
                if let Some(e) = self.mac(i) {
                    return e;
                }
            }
            if let Some(e) = self.id_token(i) {
                return e;
            }
            if let Some(e) = self.secret(i) {
                return e;
            }
            return id_run(b, i);
        }
        // capitals and a group of digits after a space (`B-MW 4471`, `ABC 1234`): a plate or
        // a licence when the context says so
        let id_end = run(b, i, 8, |c| c.is_ascii_uppercase() || c == b'-');
        if id_end - i <= 5 && at(b, id_end) == b' ' && at(b, id_end + 1).is_ascii_digit() {
            if let Some(e) = self.id_token(i) {
                return e;
            }
        }
        if len >= 16 {
            if let Some(e) = self.secret(i) {
                return e;
            }
        }
        self.name(i)
    }

    /// A credential after a secret's context (`key:`, `Bearer`, `client_secret=`, `密钥`), seen
    /// from any letter or digit inside it: a token of 16–512 characters of base64, base64url,
    /// hex or a vendor's alphabet that looks random — a digit, four letters, a change of
    /// character class at least every five characters and no run of eight letters of one case
    /// (words and identifiers have those). Each token is checked once.
    pub(super) fn secret(&mut self, i: usize) -> Option<usize> {
        if i < self.secret_until || !self.on(EntityType::ApiKey) {
            return None;
        }
        let b = self.b;
        let tok = |c: u8| alnum(c) || matches!(c, b'+' | b'/' | b'_' | b'-' | b'.' | b'~');
        // most tokens are short: read forward first, and walk back only when the token is long
        // enough or starts before `i`
        let ahead = run(b, i, 16, tok);
        if ahead - i < 16 && !(i > self.last_end && tok(at(b, i - 1))) {
            self.secret_until = ahead;
            return None;
        }
        let mut s = i;
        while s > self.last_end && i - s < 512 && tok(at(b, s - 1)) {
            s -= 1;
        }
        let mut e = i;
        while e < b.len()
            && e - s < 512
            && tok(at(b, e))
            && !(at(b, e) == b'-' && at(b, e + 1) == b'-')
        {
            e += 1;
        }
        self.secret_until = e.max(i + 1);
        if e - s >= 512 || tok(at(b, e)) || alnum(self.before(s)) {
            return None; // longer than any key: a blob, not a credential
        }
        // base64 padding (`…w4=`), or punctuation that ends the sentence
        let mut end = e;
        while at(b, end) == b'=' && end - e < 2 {
            end += 1;
        }
        if end == e {
            while e > s && matches!(at(b, e - 1), b'.' | b'-' | b'_' | b'~' | b'/') {
                e -= 1;
            }
            end = e;
        }
        let t = b.get(s..e)?;
        if t.len() < 16 || !looks_random(t) {
            return None;
        }
        if self.context_where(s, |c| c == Ctx::Secret) != Some(Ctx::Secret) {
            return None;
        }
        self.push(EntityType::ApiKey, s, end, 80);
        Some(end)
    }

    // ---------- uppercase starts ----------

    /// Where the local part of an e-mail address running forward from `i` meets its `@`, if
    /// it does within 64 bytes: a capitalized local part (`Anna.Kowalska@…`) is an address, not
    /// a name.
    pub(super) fn email_ahead(&self, i: usize) -> Option<usize> {
        let b = self.b;
        let mut j = i;
        // ASCII a byte at a time, the rest by character
        while j - i < 64 {
            let c = at(b, j);
            if c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-') {
                j += 1;
            } else {
                break;
            }
        }
        while j - i < 64 {
            match self.char_at(j) {
                Some('@') => {
                    return (j > i && self.char_at(j + 1).is_some_and(domain_char)).then_some(j)
                }
                Some(c) if local_char(c) => j += c.len_utf8(),
                _ => return None,
            }
        }
        None
    }

    pub(super) fn email(&mut self, a: usize) -> usize {
        // the local part: ASCII atoms and letters of alphabetic scripts (`jürgen.müller@…`)
        let mut s = a;
        while s > self.last_end && a - s < 64 {
            let c = at(self.b, s - 1);
            if c < 0x80 {
                // the usual case: ASCII, byte by byte
                if !local_char(char::from(c)) {
                    break;
                }
                s -= 1;
                continue;
            }
            match self.char_before(s) {
                Some(c) if local_char(c) => s -= c.len_utf8(),
                _ => break,
            }
        }
        while s < a && at(self.b, s) == b'.' {
            s += 1;
        }
        if s == a {
            return a + 1;
        }
        // the domain: labels of ASCII letters, digits, `-` and letters of alphabetic scripts
        // (`müller.de`)
        let mut e = a + 1;
        while e - a < 255 {
            let c = at(self.b, e);
            if c < 0x80 {
                if !(domain_char(char::from(c)) || c == b'.') || e >= self.b.len() {
                    break;
                }
                // two dashes only in punycode (`xn--`): a run of them (a private key's
                // `-----BEGIN` glued to the address) ends the domain
                if c == b'-'
                    && at(self.b, e + 1) == b'-'
                    && !(e >= 2
                        && self
                            .b
                            .get(e - 2..e)
                            .is_some_and(|x| x.eq_ignore_ascii_case(b"xn")))
                {
                    break;
                }
                e += 1;
                continue;
            }
            match self.char_at(e) {
                Some(c) if domain_char(c) => e += c.len_utf8(),
                _ => break,
            }
        }
        while e > a + 1 && matches!(at(self.b, e - 1), b'.' | b'-') {
            e -= 1;
        }
        // the longest domain whose last label is a top-level domain (`a@b.es.x` → `a@b.es`)
        loop {
            let domain = self.word_at(a + 1, e);
            let Some(dot) = domain.rfind('.') else {
                return a + 1;
            };
            let tld = domain.get(dot + 1..).unwrap_or("");
            if dot == 0 {
                return a + 1;
            }
            let chars = tld.chars().count();
            let letters = tld
                .chars()
                .all(|c| c.is_ascii_alphabetic() || domain_char(c) && !c.is_ascii());
            if ((2..=24).contains(&chars) && letters) || (tld.starts_with("xn--") && tld.len() > 5)
            {
                break;
            }
            e = a + 1 + dot;
        }
        self.push(EntityType::Email, s, e, 95);
        e
    }

    pub(super) fn url_end(&self, from: usize) -> usize {
        let b = self.b;
        let mut e = run(b, from, 2048, |c| {
            !(c.is_ascii_whitespace()
                || c.is_ascii_control()
                || matches!(c, b'<' | b'>' | b'"' | b'\'' | b'`'))
        });
        // a private key's `-----BEGIN` glued to the URL is not part of it
        if let Some(k) = b
            .get(from..e)
            .and_then(|u| u.windows(10).position(|w| w == b"-----BEGIN"))
        {
            e = from + k;
        }
        // the cap may fall inside a character (CJK glued to the URL): end before it, or the
        // finding would be dropped for not lying on a boundary
        while e > from && !self.text.is_char_boundary(e) {
            e -= 1;
        }
        loop {
            let last = at(b, e - 1);
            if e <= from {
                break;
            }
            let open_close = |o: u8, c: u8| {
                let seg = b.get(from..e).unwrap_or(&[]);
                seg.iter().filter(|&&x| x == c).count() > seg.iter().filter(|&&x| x == o).count()
            };
            if matches!(last, b'.' | b',' | b';' | b':' | b'!' | b'?' | b'*')
                || (last == b')' && open_close(b'(', b')'))
                || (last == b']' && open_close(b'[', b']'))
                || (last == b'}' && open_close(b'{', b'}'))
            {
                e -= 1;
            } else {
                break;
            }
        }
        e
    }

    pub(super) fn colon(&mut self, c: usize) -> usize {
        let b = self.b;
        if at(b, c + 1) == b'/' && at(b, c + 2) == b'/' {
            let mut s = c;
            while s > self.last_end && c - s < 8 && at(b, s - 1).is_ascii_alphabetic() {
                s -= 1;
            }
            let scheme = self.word_at(s, c).to_ascii_lowercase();
            if matches!(
                scheme.as_str(),
                "http" | "https" | "ftp" | "ftps" | "sftp" | "ws" | "wss"
            ) && self.starts(s)
            {
                let e = self.url_end(c + 3);
                if e > c + 3 && alnum(at(b, c + 3)) {
                    self.push(EntityType::Url, s, e, 90);
                    return e;
                }
            }
            return c + 3;
        }
        let hexc = |x: u8| x.is_ascii_hexdigit() || x == b':';
        if !(c > 0 && hexc(at(b, c - 1))
            || at(b, c + 1) == b':'
            || at(b, c + 1).is_ascii_hexdigit())
        {
            return c + 1;
        }
        let mut s = c;
        while s > self.last_end && c - s < 39 && hexc(at(b, s - 1)) {
            s -= 1;
        }
        if c - s == 2 {
            if let Some(e) = self.mac(s) {
                return e;
            }
        }
        let e = run(b, c, 45, |x| hexc(x) || x == b'.');
        let mut e2 = e;
        while e2 > c && at(b, e2 - 1) == b'.' {
            e2 -= 1;
        }
        // glued to a word on its right, or to a bracket (what a redaction marker starts with:
        // `abab::i@e.mx` is no address, so neither is `abab::[EMAIL]` once the e-mail address
        // is redacted)
        if alnum(self.before(s)) || self.before(s) == b'.' || alnum(at(b, e)) || at(b, e) == b'[' {
            // a label glued to its value (`SSN:434576781`): the value is read on its own
            if s == c {
                return c + 1;
            }
            return e.max(c + 1);
        }
        let cand = self.word_at(s, e2);
        if cand.bytes().filter(|&x| x == b':').count() >= 2 {
            if let Ok(ip) = cand.parse::<Ipv6Addr>() {
                if !ip.is_loopback() && !ip.is_unspecified() && cand.len() >= 6 {
                    self.push(EntityType::IpAddress, s, e2, 85);
                }
            }
        }
        e.max(c + 1)
    }

    pub(super) fn dot(&mut self, d: usize) -> usize {
        let b = self.b;
        if d >= 3
            && self.word_at(d - 3, d).eq_ignore_ascii_case("www")
            && d - 3 >= self.last_end
            && self.starts(d - 3)
        {
            let e = self.url_end(d + 1);
            let host = b.get(d + 1..e).unwrap_or(&[]);
            if host.contains(&b'.') && host.first().is_some_and(|c| alnum(*c)) {
                self.push(EntityType::Url, d - 3, e, 85);
                return e;
            }
        }
        d + 1
    }

    /// The end of a key's body from `from`: letters, digits and `extra`, at most 512 bytes; a
    /// run of dashes ends it (a key never swallows the `-----BEGIN` of a private key glued to
    /// it).
    pub(super) fn key_token(&self, from: usize, extra: &[u8]) -> usize {
        let b = self.b;
        let mut j = from;
        while j < b.len() && j - from < 512 {
            let c = at(b, j);
            if !(alnum(c) || extra.contains(&c)) || (c == b'-' && at(b, j + 1) == b'-') {
                break;
            }
            j += 1;
        }
        j
    }

    pub(super) fn dash(&mut self, i: usize) -> usize {
        let b = self.b;
        if b.get(i..).is_some_and(|r| r.starts_with(b"-----BEGIN ")) {
            return self.private_key(i);
        }
        let prefix = |p: &[u8]| {
            i >= self.last_end + p.len()
                && b.get(i - p.len()..i) == Some(p)
                && self.starts(i - p.len())
        };
        if prefix(b"sk") {
            let e = self.key_token(i + 1, b"_-");
            if e - (i + 1) >= 20 {
                self.push(EntityType::ApiKey, i - 2, e, 95);
                return e;
            }
        } else if prefix(b"glpat") {
            let e = self.key_token(i + 1, b"_-");
            if e - (i + 1) >= 20 {
                self.push(EntityType::GitlabToken, i - 5, e, 99);
                return e;
            }
        } else if i >= 4
            && b.get(i - 4..i - 1) == Some(b"xox")
            && matches!(at(b, i - 1), b'a' | b'b' | b'p' | b'o' | b's' | b'r')
            && i >= self.last_end + 4
            && self.starts(i - 4)
        {
            let e = self.key_token(i + 1, b"-");
            if e - (i + 1) >= 10 {
                self.push(EntityType::SlackToken, i - 4, e, 99);
                return e;
            }
        }
        i + 1
    }

    pub(super) fn private_key(&mut self, s: usize) -> usize {
        let b = self.b;
        // the header is `-----BEGIN `, a label ending in `PRIVATE KEY` and five dashes, on its
        // line within 60 bytes; a label has no `--` (RFC 7468), so the first dashes close it
        // (`-----BEGIN PAoIB-----END PRIVATE KEY-----` is no header: its `-----END ` ends
        // whatever block came before, as the stream reads it)
        let line_end = run(b, s + 11, 60, |c| c != b'\n' && c != b'\r');
        let label_end = b
            .get(s + 11..line_end)
            .and_then(|h| h.windows(5).position(|w| w == b"-----"))
            .map(|p| s + 11 + p);
        let Some(header_end) = label_end
            .filter(|&e| {
                b.get(s + 11..e)
                    .is_some_and(|l| l.ends_with(b"PRIVATE KEY"))
            })
            .map(|e| e + 5)
        else {
            return s + 1;
        };
        let limit = (header_end + PRIVATE_KEY_BODY).min(b.len());
        // the end marker may share the header's closing dashes
        // (`-----BEGIN PRIVATE KEY-----END PRIVATE KEY-----`), as the stream reads it
        let body_start = header_end - 5;
        let body = b.get(body_start..limit).unwrap_or(&[]);
        let end = match body.windows(9).position(|w| w == b"-----END ") {
            Some(p) => {
                let after = body_start + p + 9;
                let close = b
                    .get(after..(after + 60).min(b.len()))
                    .and_then(|r| r.windows(5).position(|w| w == b"-----"))
                    .map_or(after, |q| after + q + 5);
                close
            }
            // no end marker: the key body as far as it goes
            None => run(b, header_end, PRIVATE_KEY_BODY, |c| {
                alnum(c) || matches!(c, b'+' | b'/' | b'=' | b'\n' | b'\r' | b' ')
            }),
        };
        self.push(EntityType::PrivateKey, s, end, 99);
        end.max(s + 1)
    }

    pub(super) fn underscore(&mut self, u: usize) -> usize {
        let b = self.b;
        // vendors' keys by their prefix: Stripe secret, restricted and webhook keys, Hugging
        // Face, npm, Shopify, DigitalOcean
        for &(prefix, min) in VENDOR_KEYS {
            let head = prefix.iter().position(|&c| c == b'_').unwrap_or(0);
            if u >= head + self.last_end
                && b.get(u - head..).is_some_and(|r| r.starts_with(prefix))
                && self.starts(u - head)
            {
                let from = u - head + prefix.len();
                let e = self.key_token(from, b"");
                if e - from >= min {
                    self.push(EntityType::ApiKey, u - head, e, 95);
                    return e;
                }
                return from;
            }
        }
        if u >= 3
            && b.get(u - 3..u - 1) == Some(b"gh")
            && matches!(at(b, u - 1), b'p' | b'o' | b'u' | b's' | b'r')
            && u >= self.last_end + 3
            && self.starts(u - 3)
        {
            let e = self.key_token(u + 1, b"");
            if (36..=255).contains(&(e - u - 1)) {
                self.push(EntityType::GithubToken, u - 3, e, 99);
                return e;
            }
        }
        if u >= 6
            && b.get(u - 6..u) == Some(b"github")
            && b.get(u + 1..u + 5) == Some(b"pat_")
            && u >= self.last_end + 6
            && self.starts(u - 6)
        {
            let e = self.key_token(u + 5, b"_");
            if e - (u + 5) >= 22 {
                self.push(EntityType::GithubToken, u - 6, e, 99);
                return e;
            }
        }
        u + 1
    }

    pub(super) fn jwt(&mut self, s: usize) -> Option<usize> {
        let b = self.b;
        if alnum(self.before(s)) || matches!(self.before(s), b'_' | b'-' | b'.') {
            return None;
        }
        let mut seg_start = s;
        let mut segs = 0;
        let mut end = s;
        while segs < 3 {
            let mut e = seg_start;
            // a run of dashes ends a segment (a private key's `-----BEGIN` glued to the token)
            while e < b.len()
                && e - seg_start < JWT_SEGMENT
                && (alnum(at(b, e))
                    || at(b, e) == b'_'
                    || (at(b, e) == b'-' && at(b, e + 1) != b'-'))
            {
                e += 1;
            }
            if e - seg_start < 5 {
                return None;
            }
            if segs == 1 && b.get(seg_start..seg_start + 3) != Some(b"eyJ") {
                return None;
            }
            segs += 1;
            end = e;
            if segs < 3 {
                if at(b, e) != b'.' {
                    return None;
                }
                seg_start = e + 1;
            }
        }
        self.push(EntityType::Jwt, s, end, 95);
        Some(end)
    }
}
