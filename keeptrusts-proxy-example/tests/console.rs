//! The console (`/console`) against `kt gateway run`, tried as an attacker would: forms without
//! or with another session's CSRF token, a session kept after its key was revoked or its member
//! removed, an idle session, a member editing the URL to reach another team.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::collections::BTreeMap;

mod common;
use common::{call, chat, http, root, stop, Env, Reply};

/// A browser: keeps the cookies the console sets.
struct Browser {
    addr: String,
    cookies: BTreeMap<String, String>,
}

/// A form value as a browser sends it (`application/x-www-form-urlencoded`): letters, digits
/// and `*-._` as they are, a space as `+`, every other byte as `%XX`.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Browser {
    fn new(addr: &str) -> Browser {
        Browser {
            addr: addr.to_owned(),
            cookies: BTreeMap::new(),
        }
    }

    fn send(
        &mut self,
        method: &str,
        path: &str,
        form: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> Reply {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if !cookie.is_empty() {
            headers.push(("Cookie", &cookie));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let r = http(&self.addr, method, path, None, &headers, body.as_bytes());
        for line in r.headers.lines() {
            if let Some(c) = line.strip_prefix("set-cookie: ") {
                let (kv, _) = c.split_once(';').unwrap_or((c, ""));
                let (k, v) = kv.split_once('=').unwrap();
                if v.is_empty() || c.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        r
    }

    fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, &[], &[])
    }

    fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.send("POST", path, form, &[])
    }

    /// Posts the form of operation `op` with the session's CSRF token `csrf` and `fields`.
    fn act(&mut self, path: &str, csrf: &str, op: &str, fields: &[(&str, &str)]) -> Reply {
        let mut form = vec![("csrf", csrf), ("op", op)];
        form.extend_from_slice(fields);
        self.post(path, &form)
    }

    /// Signs in with `key` through the sign-in form.
    fn sign_in(&mut self, key: &str) -> Reply {
        let page = self.get("/console/sign-in");
        assert_eq!(page.status, 200);
        let csrf = csrf(&page.body);
        self.post("/console/sign-in", &[("csrf", &csrf), ("key", key)])
    }

    /// The CSRF token of the session, as its pages carry it.
    fn token(&mut self) -> String {
        let page = self.get("/console/overview");
        assert_eq!(page.status, 200, "{}", page.body);
        csrf(&page.body)
    }
}

fn csrf(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    body[at..at + 64].to_owned()
}

fn location(r: &Reply) -> String {
    r.headers
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap_or("")
        .to_owned()
}

fn header<'a>(r: &'a Reply, name: &str) -> &'a str {
    r.headers
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or("")
}

/// `platform` (the owner), `support` (an admin and two members), `legal` (a member), with a
/// support wallet; returns the keys (owner, support admin, ana, bo, counsel).
fn org(env: &Env) -> [String; 5] {
    common::org(env, "Platform", "root@yourco.com")
}

#[test]
fn sign_in_gives_a_strict_session_cookie_and_every_page_a_strict_csp() {
    let env = Env::new("console-signin");
    let [owner, ..] = org(&env);
    let (mut gw, addr) = env.gateway(&[]);
    let mut b = Browser::new(&addr);

    // `/` and `/console` send the browser to the console; without a session, to the sign-in
    let r = b.get("/");
    assert_eq!(
        (r.status, location(&r).as_str()),
        (303, "/console/overview")
    );
    let r = b.get("/console/overview");
    assert_eq!(r.status, 303);
    assert!(location(&r).starts_with("/console/sign-in"));

    // a wrong key: 401 with the reason next to the field, no session
    let r = b.sign_in("kt_0000000000000000000000000000000000000000000000000000000000000000");
    assert_eq!(r.status, 401);
    assert!(r.body.contains("id=\"key-error\""), "{}", r.body);
    assert!(!b.cookies.contains_key("kt_session"));
    // a sign-in form posted without its pre-session token (login CSRF) is refused
    let mut other = Browser::new(&addr);
    let r = other.post(
        "/console/sign-in",
        &[("csrf", &"0".repeat(64)), ("key", &owner)],
    );
    assert_eq!(r.status, 403);
    assert!(!other.cookies.contains_key("kt_session"));

    let r = b.sign_in(&owner);
    assert_eq!(
        (r.status, location(&r).as_str()),
        (303, "/console/overview")
    );
    let set = r
        .headers
        .lines()
        .find(|l| l.starts_with("set-cookie: kt_session="))
        .unwrap();
    assert!(
        set.contains("HttpOnly")
            && set.contains("SameSite=Strict")
            && set.contains("Path=/console")
    );
    assert!(!set.contains("Secure"), "plain HTTP: no Secure flag");

    let r = b.get("/console/overview");
    assert_eq!(r.status, 200);
    let csp = header(&r, "content-security-policy");
    assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"));
    assert!(!r.body.contains("<script>"), "no inline script");
    assert!(!r.body.contains("style=\""), "no inline style");
    assert!(
        !r.body.contains("http://") && !r.body.contains("https://"),
        "nothing from elsewhere"
    );
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");

    // the assets come from the binary
    let js = b.get("/console/assets/console.js");
    assert_eq!(js.status, 200);
    assert!(header(&js, "content-type").starts_with("text/javascript"));
    assert_eq!(b.get("/console/assets/console.css").status, 200);

    // behind a TLS terminator the cookie is Secure
    let mut tls = Browser::new(&addr);
    let page = tls.send(
        "GET",
        "/console/sign-in",
        &[],
        &[("X-Forwarded-Proto", "https")],
    );
    let token = csrf(&page.body);
    let r = tls.send(
        "POST",
        "/console/sign-in",
        &[("csrf", &token), ("key", &owner)],
        &[("X-Forwarded-Proto", "https")],
    );
    assert_eq!(r.status, 303);
    assert!(
        r.headers.contains("SameSite=Strict; Secure"),
        "{}",
        r.headers
    );
    stop(&mut gw);
    // the wrong key's sign-in is audited like a refused API call: its hint, never the secret
    let refused: Vec<_> = common::all_events(&env)
        .into_iter()
        .filter(|e| e["status"] == 401)
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["reason"], "unauthenticated");
    assert!(refused[0]["key_hint"].is_string());
}

#[test]
fn a_form_without_the_sessions_csrf_token_changes_nothing() {
    let env = Env::new("console-csrf");
    let [owner, ..] = org(&env);
    let (mut gw, addr) = env.gateway(&[]);
    let mut b = Browser::new(&addr);
    b.sign_in(&owner);
    let token = b.token();

    // another session's token does not do either
    let mut other = Browser::new(&addr);
    other.sign_in(&owner);
    let foreign = other.token();
    assert_ne!(token, foreign);

    let path = "/console/settings/members?team=platform";
    for bad in [None, Some(""), Some(foreign.as_str())] {
        let mut form = vec![("op", "create_team"), ("name", "Shadow")];
        if let Some(t) = bad {
            form.push(("csrf", t));
        }
        let r = b.post(path, &form);
        assert_eq!(r.status, 403, "csrf {bad:?}");
    }
    // sign-out is a form too
    assert_eq!(b.post("/console/sign-out", &[]).status, 403);
    assert!(!env.ok(&["team", "list"]).contains("shadow"));

    let r = b.post(
        path,
        &[("op", "create_team"), ("name", "Shadow"), ("csrf", &token)],
    );
    assert_eq!(r.status, 303);
    assert!(env.ok(&["team", "list"]).contains("shadow"));
    // the flash message says what happened
    assert!(b.get(path).body.contains("Team shadow created."));
    stop(&mut gw);
}

#[test]
fn a_session_ends_when_idle_and_at_sign_out() {
    let env = Env::new("console-expiry");
    let [owner, ..] = org(&env);
    let pack = root().join("examples/packs/gateway-quickstart.yaml");
    let (mut gw, addr) = env.gateway_env(&pack, &[], &[("KT_CONSOLE_IDLE", "2s")]);
    let mut b = Browser::new(&addr);
    b.sign_in(&owner);
    assert_eq!(b.get("/console/events").status, 200);
    let stolen = b.cookies.clone();
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    let r = b.get("/console/events");
    assert_eq!(r.status, 303);
    assert_eq!(location(&r), "/console/sign-in?reason=expired");
    // and it stays ended, with the same cookie
    let mut replay = Browser::new(&addr);
    replay.cookies = stolen;
    assert_eq!(replay.get("/console/events").status, 303);

    // sign-out ends the session at once; its cookie does not work again
    b.sign_in(&owner);
    let token = b.token();
    let kept = b.cookies.clone();
    let r = b.post("/console/sign-out", &[("csrf", &token)]);
    assert_eq!(
        (r.status, location(&r).as_str()),
        (303, "/console/sign-in?reason=signed_out")
    );
    assert!(
        !b.cookies.contains_key("kt_session"),
        "the cookie is cleared"
    );
    let mut replay = Browser::new(&addr);
    replay.cookies = kept;
    assert_eq!(replay.get("/console/overview").status, 303);
    stop(&mut gw);
}

#[test]
fn a_revoked_key_or_a_removed_member_loses_the_session() {
    let env = Env::new("console-revoke");
    let [owner, admin, ana, bo, _] = org(&env);
    let (mut gw, addr) = env.gateway(&[]);
    let mut a = Browser::new(&addr);
    a.sign_in(&ana);
    assert_eq!(a.get("/console/overview").status, 200);
    let mut o = Browser::new(&addr);
    o.sign_in(&owner);
    assert_eq!(o.get("/console/usage").status, 200);

    // the support admin revokes ana's key through the API: her session ends at its next request
    let id = &ana[..11];
    let r = call(&addr, "DELETE", &format!("/v1/keys/{id}"), &admin, b"");
    assert_eq!(r.status, 200, "{}", r.body);
    let r = a.get("/console/overview");
    assert_eq!(
        (r.status, location(&r).as_str()),
        (303, "/console/sign-in?reason=key_revoked")
    );
    assert_eq!(a.get("/console/overview").status, 303);

    // bo is removed from support through the console by the owner: his session ends too
    let mut bb = Browser::new(&addr);
    bb.sign_in(&bo);
    assert_eq!(bb.get("/console/usage").status, 200);
    let token = o.token();
    let form = [("email", "bo@yourco.com")];
    let r = o.act(
        "/console/settings/members?team=support",
        &token,
        "remove_member",
        &form,
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let r = bb.get("/console/usage");
    assert_eq!(
        (r.status, location(&r).as_str()),
        (303, "/console/sign-in?reason=not_a_member")
    );
    stop(&mut gw);
}

#[test]
fn a_member_sees_their_own_team_and_events_and_nothing_else_by_editing_the_url() {
    let env = Env::new("console-scope");
    let [owner, _, ana, bo, counsel] = org(&env);
    let (mut gw, addr) = env.gateway(&[]);
    assert_eq!(
        chat(&addr, Some(&ana), "gpt-4o-mini", "hello from ana", &[]).status,
        200
    );
    assert_eq!(
        chat(
            &addr,
            Some(&bo),
            "gpt-4o-mini",
            "hello from bo, 123-45-6789",
            &[]
        )
        .status,
        200
    );
    assert_eq!(
        chat(&addr, Some(&counsel), "gpt-4o-mini", "hello", &[]).status,
        409
    );

    let mut a = Browser::new(&addr);
    a.sign_in(&ana);
    let events = a.get("/console/events");
    assert_eq!(events.status, 200);
    assert!(events.body.contains("ana@yourco.com"));
    assert!(
        !events.body.contains("bo@yourco.com"),
        "a member sees only their own events"
    );
    assert!(!events.body.contains("123-45-6789"));
    // a date range: nothing before 2001, everything up to 9999
    let old = a.get("/console/events?since=1990-01-01&until=2000-12-31");
    assert!(old.body.contains("No events match"), "{}", old.body);
    assert!(!old.body.contains("<td>ana@yourco.com</td>"));
    assert!(a
        .get("/console/events?since=2001-01-01&until=9999-12-31")
        .body
        .contains("<td>ana@yourco.com</td>"));
    assert!(
        !events.body.contains("Team</label><select"),
        "no team switcher for a member"
    );
    let usage = a.get("/console/usage");
    assert!(usage.body.contains("ana@yourco.com") && !usage.body.contains("bo@yourco.com"));
    assert!(usage.body.contains("Team total"));

    // another team, the org roll-up, another team's settings or event: refused as the API does
    for path in [
        "/console/overview?team=legal",
        "/console/events?team=legal",
        "/console/spend?team=platform",
        "/console/usage?team=legal",
        "/console/overview?team=*",
        "/console/settings/members?team=legal",
    ] {
        let r = a.get(path);
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert!(!r.body.contains("counsel@yourco.com"), "{path}");
    }
    // legal's event (its seq) under support's or legal's name: not found or refused
    let mut o = Browser::new(&addr);
    o.sign_in(&owner);
    let legal = o.get("/console/events?team=legal");
    let at = legal.body.find("/console/events/").unwrap() + "/console/events/".len();
    let seq: String = legal.body[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(a.get(&format!("/console/events/{seq}")).status, 404);
    assert_eq!(
        a.get(&format!("/console/events/{seq}?team=legal")).status,
        403
    );
    // a member's form is refused by the API, with its message next to the field
    let token = a.token();
    let form = [("name", "Mine")];
    let r = a.act(
        "/console/settings/members?team=support",
        &token,
        "create_team",
        &form,
    );
    assert_eq!(r.status, 403);
    assert!(r.body.contains("id=\"err-create_team-name\""), "{}", r.body);
    stop(&mut gw);
}

#[test]
fn an_owner_switches_teams_and_sees_the_org_rollup() {
    let env = Env::new("console-owner");
    let [owner, _, ana, _, counsel] = org(&env);
    let (mut gw, addr) = env.gateway(&[]);
    assert_eq!(
        chat(&addr, Some(&ana), "gpt-4o-mini", "hello", &[]).status,
        200
    );
    assert_eq!(
        chat(&addr, Some(&counsel), "gpt-4o-mini", "hello", &[]).status,
        409
    );
    let mut o = Browser::new(&addr);
    o.sign_in(&owner);
    let home = o.get("/console/overview");
    assert!(
        home.body.contains("id=\"team-switch\""),
        "the owner has the switcher"
    );
    let support = o.get("/console/events?team=support");
    assert_eq!(support.status, 200);
    assert!(
        support.body.contains("ana@yourco.com") && !support.body.contains("counsel@yourco.com")
    );
    let legal = o.get("/console/events?team=legal");
    assert!(legal.body.contains("counsel@yourco.com") && !legal.body.contains("ana@yourco.com"));
    let all = o.get("/console/overview?team=*");
    assert_eq!(all.status, 200);
    assert!(all.body.contains("<svg"), "charts of the roll-up");
    assert_eq!(o.get("/console/escalations?team=legal").status, 200);
    stop(&mut gw);
}

#[test]
fn an_admin_manages_members_keys_wallets_tickets_and_escalations() {
    let env = Env::new("console-admin");
    let [owner, admin, ana, ..] = org(&env);
    let (mut gw, addr) = env.gateway(&[]);
    let mut o = Browser::new(&addr);
    o.sign_in(&owner);
    let t = o.token();
    let m = "/console/settings/members?team=engineering";
    let form = [("name", "Engineering"), ("description", "builds")];
    let r = o.act(m, &t, "create_team", &form);
    assert_eq!(r.status, 303);
    let form = [("email", "eve@yourco.com"), ("role", "member")];
    let r = o.act(m, &t, "add_member", &form);
    assert_eq!(r.status, 303, "{}", r.body);
    // an invalid email: the API's message next to the field
    let form = [("email", "not-an-email"), ("role", "member")];
    let r = o.act(m, &t, "add_member", &form);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("id=\"err-add_member-email\""), "{}", r.body);
    let form = [("email", "eve@yourco.com"), ("label", "laptop")];
    let r = o.act(m, &t, "create_key", &form);
    assert_eq!(r.status, 200);
    let at = r.body.find("<code id=\"new-key\">").unwrap() + 19;
    let key = r.body[at..at + 67].to_owned();
    assert!(key.starts_with("kt_"));
    assert!(r.body.contains("data-copy=\"new-key\""));
    assert_eq!(
        chat(&addr, Some(&key), "gpt-4o-mini", "hi", &[]).status,
        402,
        "no wallet yet"
    );
    // shown once: the page does not show it again
    assert!(!o.get(m).body.contains(&key));
    let form = [("id", &key[..11])];
    let r = o.act(m, &t, "revoke_key", &form);
    assert_eq!(r.status, 303);
    assert_eq!(
        chat(&addr, Some(&key), "gpt-4o-mini", "hi", &[]).status,
        401
    );

    // wallets: allocate monthly, see it with a bar; a bad amount is shown next to the field
    let w = "/console/settings/wallets?team=engineering";
    let form = [
        ("scope", "team"),
        ("id", "engineering"),
        ("amount", "abc"),
        ("currency", "USD"),
    ];
    let r = o.act(w, &t, "allocate", &form);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("err-allocate-"), "{}", r.body);
    let form = [
        ("scope", "team"),
        ("id", "engineering"),
        ("amount", "20"),
        ("currency", "USD"),
        ("period", "monthly"),
    ];
    let r = o.act(w, &t, "allocate", &form);
    assert_eq!(r.status, 303, "{}", r.body);
    let page = o.get(w);
    assert!(page.body.contains("team:engineering") && page.body.contains("monthly"));
    assert!(page.body.contains("class=\"meter\""));

    // a ticket: support's wallet runs dry, the admin approves charging it to support
    env.allocate("support", "0");
    let r = chat(&addr, Some(&ana), "gpt-4o-mini", "hello", &[]);
    assert_eq!(r.status, 402);
    let ticket = r.json()["error"]["ticket_id"].as_str().unwrap().to_owned();
    let mut a = Browser::new(&addr);
    a.sign_in(&admin);
    let ta = a.token();
    let sw = "/console/settings/wallets?team=support";
    assert!(a.get(sw).body.contains(&ticket));
    let approve = |to| {
        [
            ("id", ticket.as_str()),
            ("ruling", "approve"),
            ("charge_to", to),
        ]
    };
    let r = a.act(sw, &ta, "ticket", &approve("team:nowhere"));
    assert!(r.status >= 400, "an unknown wallet is refused");
    assert!(
        r.body.contains(&format!("err-ticket-charge_to-{ticket}")),
        "{}",
        r.body
    );
    let r = a.act(sw, &ta, "ticket", &approve("team:support"));
    assert_eq!(r.status, 303, "{}", r.body);
    let retry = chat(
        &addr,
        Some(&ana),
        "gpt-4o-mini",
        "hello",
        &[("X-Keeptrusts-Ticket-Id", &ticket)],
    );
    assert_eq!(retry.status, 200, "{}", retry.body);

    // an escalation: legal's request waits; the owner approves it in the console
    let counsel = env.key("legal", "counsel@yourco.com");
    env.allocate("legal", "10");
    let text = "Review this contract for jane@example.com";
    let r = chat(&addr, Some(&counsel), "gpt-4o", text, &[]);
    assert_eq!(r.status, 409);
    let esc = r.json()["error"]["escalation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let e = "/console/escalations?team=legal";
    let queue = o.get(e).body;
    assert!(queue.contains(&esc));
    // the reviewer sees what they approve, redacted
    assert!(
        queue.contains("Review this contract for [EMAIL]"),
        "{queue}"
    );
    assert!(!queue.contains("jane@example.com"));
    let form = [("id", esc.as_str()), ("ruling", "approve")];
    let r = o.act(e, &t, "escalation", &form);
    assert_eq!(r.status, 303, "{}", r.body);
    let retry = chat(
        &addr,
        Some(&counsel),
        "gpt-4o",
        text,
        &[("X-Keeptrusts-Escalation-Id", &esc)],
    );
    assert_eq!(retry.status, 200, "{}", retry.body);
    stop(&mut gw);
}

#[test]
fn a_sign_in_link_works_once_and_its_key_ends_with_the_session() {
    let env = Env::new("console-link");
    org(&env);
    let (mut gw, addr) = env.gateway(&[]);
    let url = env.ok(&[
        "console",
        "link",
        "--email",
        "ana@yourco.com",
        "--url",
        &format!("http://{addr}"),
    ]);
    let path = url
        .trim()
        .strip_prefix(&format!("http://{addr}"))
        .unwrap()
        .to_owned();
    assert!(path.starts_with("/console/link?token=kt_"));
    let token = path.split("token=").nth(1).unwrap().to_owned();
    let (code, _, err) = env.kt(&["console", "link", "--email", "nobody@yourco.com"]);
    assert_eq!(code, 2, "{err}");

    // opening the link does not use it (a mail scanner may fetch it); pressing the button does
    let mut b = Browser::new(&addr);
    let page = b.get(&path);
    assert_eq!(page.status, 200);
    let page = b.get(&path);
    let c = csrf(&page.body);
    let r = b.post("/console/link", &[("csrf", &c), ("token", &token)]);
    assert_eq!(
        (r.status, location(&r).as_str()),
        (303, "/console/overview"),
        "{}",
        r.body
    );
    assert!(b.get("/console/overview").body.contains("ana@yourco.com"));

    // a second time it does not sign in
    let mut again = Browser::new(&addr);
    let c = csrf(&again.get(&path).body);
    let r = again.post("/console/link", &[("csrf", &c), ("token", &token)]);
    assert_eq!(r.status, 401);
    assert!(!again.cookies.contains_key("kt_session"));
    // nor as an API key
    assert_eq!(
        chat(&addr, Some(&token), "gpt-4o-mini", "hi", &[]).status,
        401
    );

    // signing out revokes the session's key
    let t = b.token();
    b.post("/console/sign-out", &[("csrf", &t)]);
    let keys = env.ok(&["key", "list", "--team", "support"]);
    let link_keys: Vec<&str> = keys
        .lines()
        .filter(|l| l.contains("console-link"))
        .collect();
    assert_eq!(link_keys.len(), 2, "{keys}");
    assert!(link_keys.iter().all(|l| !l.contains(" active ")), "{keys}");
    stop(&mut gw);
}

/// `kt quickstart` on `env`'s store, from the repository root (its default pack); what it
/// printed before it listened (the keys, once), and its address.
fn quickstart(env: &Env) -> (std::process::Child, String, String) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kt"))
        .args([
            "quickstart",
            "--listen",
            "127.0.0.1:0",
            "--store",
            &env.store,
        ])
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut out = String::new();
    let addr = loop {
        let line = lines
            .next()
            .expect("the gateway prints its address")
            .unwrap();
        if let Some(a) = line.strip_prefix("kt gateway: listening on http://") {
            break a.to_owned();
        }
        out.push_str(&line);
        out.push('\n');
    };
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    (child, out, addr)
}

#[test]
fn quickstart_sets_up_the_seeds_org_once_and_serves_the_console() {
    let env = Env::new("console-quickstart");
    let (mut gw, out, addr) = quickstart(&env);
    let key_of = |email: &str| -> String {
        out.lines()
            .find(|l| l.contains(&format!(" {email} ")))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("{email} in {out}"))
            .to_owned()
    };
    assert!(out.contains("/console"), "{out}");
    let owner = key_of("root@yourco.com");
    let agent = key_of("agent@yourco.com");
    let mut o = Browser::new(&addr);
    assert_eq!(o.sign_in(&owner).status, 303);
    let teams = o.get("/console/settings/members").body;
    for t in ["engineering", "support", "legal"] {
        assert!(teams.contains(&format!("<code>{t}</code>")), "{t}");
    }
    assert!(o
        .get("/console/settings/wallets?team=*")
        .body
        .contains("team:legal"));
    let mut a = Browser::new(&addr);
    a.sign_in(&agent);
    assert_eq!(a.get("/console/overview").status, 200);
    assert_eq!(a.get("/console/overview?team=legal").status, 403);
    // the example pack's chains: support redacts
    let r = chat(&addr, Some(&agent), "gpt-4o-mini", "SSN 123-45-6789", &[]);
    assert!(r.body.contains("[US_SSN]"), "{}", r.body);
    stop(&mut gw);

    // a second run on the same store sets up nothing and prints no key
    let (mut gw, out, _) = quickstart(&env);
    assert!(
        out.contains("already has teams; nothing was created") && !out.contains(" kt_"),
        "{out}"
    );
    stop(&mut gw);
}

#[test]
fn a_hostile_members_forms_are_refused_by_the_api_and_change_nothing() {
    let env = Env::new("console-hostile");
    let [_, _, ana, bo, counsel] = org(&env);
    let (mut gw, addr) = env.gateway(&[]);
    env.allocate("legal", "10");
    let r = chat(&addr, Some(&counsel), "gpt-4o", "Review this contract", &[]);
    assert_eq!(r.status, 409);
    let esc = r.json()["error"]["escalation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut a = Browser::new(&addr);
    a.sign_in(&ana);
    let t = a.token();
    // another member's key, a role for herself, another team's escalation, a wallet: all the
    // API's refusals, shown; nothing changes
    let tries: [(&str, Vec<(&str, &str)>); 5] = [
        (
            "/console/settings/members?team=support",
            vec![("op", "revoke_key"), ("id", &bo[..11])],
        ),
        (
            "/console/settings/members?team=support",
            vec![
                ("op", "set_member"),
                ("email", "ana@yourco.com"),
                ("role", "admin"),
            ],
        ),
        (
            "/console/settings/members?team=legal",
            vec![("op", "remove_member"), ("email", "counsel@yourco.com")],
        ),
        (
            "/console/escalations?team=legal",
            vec![("op", "escalation"), ("id", &esc), ("ruling", "approve")],
        ),
        (
            "/console/settings/wallets?team=support",
            vec![
                ("op", "allocate"),
                ("scope", "team"),
                ("id", "support"),
                ("amount", "1000"),
                ("currency", "USD"),
            ],
        ),
    ];
    for (path, mut form) in tries {
        form.push(("csrf", &t));
        let r = a.post(path, &form);
        assert!(
            r.status == 403 || r.status == 404,
            "{path} {form:?}: {} {}",
            r.status,
            r.body
        );
        assert!(
            r.body.contains("class=\"error\""),
            "{path}: the API's message is shown"
        );
    }
    assert_eq!(
        chat(&addr, Some(&bo), "gpt-4o-mini", "still here", &[]).status,
        200
    );
    assert_eq!(
        chat(
            &addr,
            Some(&counsel),
            "gpt-4o",
            "Review this contract",
            &[("X-Keeptrusts-Escalation-Id", &esc)]
        )
        .status,
        409
    );
    assert!(a
        .get("/console/overview")
        .body
        .contains("member of support"));
    stop(&mut gw);
    let teams = env.ok(&["team", "show", "--team", "legal"]);
    assert!(teams.contains("counsel@yourco.com"), "{teams}");
    let balance = env.ok(&["wallet", "balance"]);
    assert!(!balance.contains("1000"), "{balance}");
}
