#!/usr/bin/env python3
"""Generates the detection evaluation corpus: conformance/detection/corpus.jsonl.

Each line is {"id", "kind", ["genre",] "text", "spans": [{"start", "end", "type"}]} with byte offsets into
the UTF-8 text and types spelled as in docs/detection.md. The generator is deterministic (fixed seed): run it
again and the file is byte-identical. Documents are built from realistic templates (support
tickets, clinical notes, HR mail, chat, code and config with keys, several languages and scripts)
whose placeholders are filled with generated values — checksummed where the real thing is
(Luhn cards and NPIs, mod-97 IBANs, ABA routing numbers, VIN check digits, SSN rules) — and the
span of every inserted value is recorded as it is inserted. PII-free documents carry the hard
negatives: version strings, Luhn-invalid numbers, order and PO numbers, UUIDs, hashes,
timestamps, loopback addresses, prices, and capitalized words that are not names ("technical"),
and longer meeting-note and documentation prose in several languages ("prose").

Usage: python3 scripts/gen-detection-corpus.py [--out PATH]
"""
import argparse
import json
import random
import re
import string
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
R = random.Random(20261124)


def names(path):
    return [l.strip() for l in open(ROOT / "keeptrusts-core" / "data" / path, encoding="utf-8")
            if l.strip() and not l.startswith("#")]


GIVEN = names("given_names.txt")
SURNAMES = names("surnames.txt")
# names the dictionaries do not hold: real people have them too
RARE_GIVEN = ["Xiomara", "Thaddeus", "Oluwadamilare", "Eulalia", "Kestrel", "Bartholomew", "Zebulon",
              "Ignatius", "Philippa", "Cosima"]
RARE_SURNAMES = ["Quackenbush", "Vandersloot", "Oyelaran", "Przybylski", "Featherstonehaugh",
                 "Nakashima-Reyes", "Abernathy", "Thistlewood", "Okonjo", "Brzezinski"]
STREETS = ["Main", "Oak", "Maple", "Cedar", "Elm", "Washington", "Lake", "Pine", "Sunset", "Highland",
           "Jefferson", "Lincoln", "Madison", "Franklin", "Chestnut", "Walnut", "Spruce", "Willow",
           "River", "Mill", "Church", "Park", "5th", "42nd", "Market", "Broad", "Meadow", "Orchard"]
SUFFIXES = ["Street", "St", "Avenue", "Ave", "Road", "Rd", "Boulevard", "Blvd", "Lane", "Ln", "Drive",
            "Dr", "Way", "Court", "Ct", "Place", "Terrace", "Parkway", "Circle"]
CITIES = [("Springfield", "IL"), ("Austin", "TX"), ("Portland", "OR"), ("Columbus", "OH"),
          ("Denver", "CO"), ("Madison", "WI"), ("Raleigh", "NC"), ("Tucson", "AZ"), ("Boise", "ID"),
          ("Albany", "NY"), ("Sacramento", "CA"), ("Richmond", "VA"), ("Nashville", "TN")]
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "proton.me", "icloud.com", "yourco.com",
           "example.org", "mail.de", "orange.fr", "hotmail.es", "libero.it", "uol.com.br"]
MONTHS_EN = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
             "October", "November", "December"]
MONTHS_DE = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
             "Oktober", "November", "Dezember"]
MONTHS_FR = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
             "octobre", "novembre", "décembre"]
MONTHS_ES = ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
             "octubre", "noviembre", "diciembre"]


# ---------------------------------------------------------------- values

def luhn_complete(prefix, length):
    digits = [int(c) for c in prefix]
    while len(digits) < length - 1:
        digits.append(R.randint(0, 9))
    for check in range(10):
        cand = digits + [check]
        total = 0
        for i, d in enumerate(reversed(cand)):
            if i % 2 == 1:
                d *= 2
                if d > 9:
                    d -= 9
            total += d
        if total % 10 == 0:
            return "".join(map(str, cand))
    raise AssertionError


def luhn_ok(s):
    total = 0
    for i, d in enumerate(reversed([int(c) for c in s])):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card():
    kind = R.choice(["visa", "visa", "mc", "amex", "disc", "mc2"])
    if kind == "visa":
        n = luhn_complete("4", 16)
    elif kind == "mc":
        n = luhn_complete(str(R.randint(51, 55)), 16)
    elif kind == "mc2":
        n = luhn_complete(str(R.randint(2221, 2720)), 16)
    elif kind == "amex":
        n = luhn_complete(R.choice(["34", "37"]), 15)
    else:
        n = luhn_complete("6011", 16)
    style = R.choice(["space", "dash", "plain", "space"])
    if len(n) == 15:
        groups = [n[:4], n[4:10], n[10:]]
    else:
        groups = [n[i:i + 4] for i in range(0, 16, 4)]
    return {"space": " ".join(groups), "dash": "-".join(groups), "plain": n}[style]


def bad_card():
    n = luhn_complete("4", 16)
    last = (int(n[-1]) + R.randint(1, 9)) % 10
    n = n[:-1] + str(last)
    assert not luhn_ok(n)
    return " ".join(n[i:i + 4] for i in range(0, 16, 4))


def ssn(sep="-"):
    while True:
        area = R.randint(1, 899)
        if area != 666:
            break
    return f"{area:03d}{sep}{R.randint(1, 99):02d}{sep}{R.randint(1, 9999):04d}"


def itin():
    group = R.choice(list(range(70, 89)) + list(range(50, 66)))
    return f"9{R.randint(0, 99):02d}-{group:02d}-{R.randint(1, 9999):04d}"


def nanp_digits():
    return f"{R.randint(2, 9)}{R.randint(0, 8)}{R.randint(0, 9)}", f"{R.randint(2, 9)}{R.randint(0, 9)}{R.randint(0, 9)}", f"{R.randint(0, 9999):04d}"


def phone():
    a, b, c = nanp_digits()
    return R.choice([f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"+1 {a} {b} {c}",
                     f"+1-{a}-{b}-{c}", f"({a}) {b}-{c}", f"1-{a}-{b}-{c}"])


def intl_phone():
    return R.choice([
        f"+49 30 {R.randint(1000000, 99999999)}", f"+49 171 {R.randint(1000000, 9999999)}",
        f"+33 1 {R.randint(10, 99)} {R.randint(10, 99)} {R.randint(10, 99)} {R.randint(10, 99)}",
        f"+33 6 {R.randint(10, 99)} {R.randint(10, 99)} {R.randint(10, 99)} {R.randint(10, 99)}",
        f"+44 20 {R.randint(7000, 7999)} {R.randint(1000, 9999)}",
        f"+34 612 {R.randint(100, 999)} {R.randint(100, 999)}",
        f"+39 06 {R.randint(1000, 9999)} {R.randint(1000, 9999)}",
        f"+81 3-{R.randint(1000, 9999)}-{R.randint(1000, 9999)}",
        f"+86 138 {R.randint(1000, 9999)} {R.randint(1000, 9999)}",
        f"+55 11 9{R.randint(1000, 9999)}-{R.randint(1000, 9999)}",
        f"+7 495 {R.randint(100, 999)}-{R.randint(10, 99)}-{R.randint(10, 99)}",
    ])


IBAN_SPECS = {"DE": 18, "GB": 18, "FR": 23, "ES": 20, "NL": 14, "IT": 23, "CH": 17}


def iban(spaced=None):
    country = R.choice(list(IBAN_SPECS))
    n = IBAN_SPECS[country]
    if country == "GB":
        bban = "".join(R.choice(string.ascii_uppercase) for _ in range(4)) + "".join(R.choice(string.digits) for _ in range(14))
    elif country == "NL":
        bban = "".join(R.choice(string.ascii_uppercase) for _ in range(4)) + "".join(R.choice(string.digits) for _ in range(10))
    elif country == "IT":
        bban = R.choice(string.ascii_uppercase) + "".join(R.choice(string.digits) for _ in range(22))
    else:
        bban = "".join(R.choice(string.digits) for _ in range(n))
    rearranged = bban + country + "00"
    num = "".join(str(int(c, 36)) for c in rearranged)
    check = 98 - int(num) % 97
    value = f"{country}{check:02d}{bban}"
    if spaced is None:
        spaced = R.random() < 0.6
    if spaced:
        value = " ".join(value[i:i + 4] for i in range(0, len(value), 4))
    return value


def aba():
    while True:
        d = [R.randint(0, 9) for _ in range(8)]
        w = [3, 7, 1, 3, 7, 1, 3, 7]
        s = sum(a * b for a, b in zip(d, w))
        check = (10 - s % 10) % 10
        if d[0] in (0, 1, 2, 3):
            return "".join(map(str, d)) + str(check)


def npi():
    base = str(R.choice([1, 2])) + "".join(str(R.randint(0, 9)) for _ in range(8))
    for c in range(10):
        if luhn_ok("80840" + base + str(c)):
            return base + str(c)
    raise AssertionError


VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


def vin():
    vals = {**{str(i): i for i in range(10)}}
    for i, c in enumerate("ABCDEFGH"):
        vals[c] = i + 1
    for i, c in enumerate("JKLMN"):
        vals[c] = i + 1
    vals["P"] = 7
    vals["R"] = 9
    for i, c in enumerate("STUVWXYZ"):
        vals[c] = i + 2
    weights = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]
    while True:
        s = [R.choice(VIN_CHARS) for _ in range(17)]
        s[0] = R.choice("1245JKSWZ")
        total = sum(vals[c] * w for c, w in zip(s, weights))
        check = total % 11
        s[8] = "X" if check == 10 else str(check)
        v = "".join(s)
        if any(c.isdigit() for c in v) and any(c.isalpha() for c in v):
            return v


def ipv4():
    while True:
        a = R.choice([R.randint(11, 223), 10, 192, 172])
        if a == 127:
            continue
        if a == 192:
            return f"192.168.{R.randint(0, 255)}.{R.randint(1, 254)}"
        if a == 172:
            return f"172.{R.randint(16, 31)}.{R.randint(0, 255)}.{R.randint(1, 254)}"
        return f"{a}.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}"


def ipv6():
    groups = [f"{R.randint(0, 65535):x}" for _ in range(8)]
    groups[0] = R.choice(["2001", "2a02", "2607", "fe80"])
    if R.random() < 0.6:
        return f"{groups[0]}:{groups[1]}:{groups[2]}::{groups[6]}:{groups[7]}"
    return ":".join(groups)


def alnum(n, alphabet=string.ascii_letters + string.digits):
    return "".join(R.choice(alphabet) for _ in range(n))


def aws_key():
    return R.choice(["AKIA", "ASIA"]) + alnum(16, string.ascii_uppercase + string.digits)


def github():
    return R.choice(["ghp_", "gho_", "ghs_"]) + alnum(36)


def gitlab():
    return "glpat-" + alnum(20, string.ascii_letters + string.digits + "_-")


def slack():
    return f"xoxb-{R.randint(10**10, 10**11)}-{R.randint(10**11, 10**12)}-{alnum(24)}"


def api_key():
    return R.choice(["sk-proj-" + alnum(48, string.ascii_letters + string.digits + "_-"),
                     "sk-ant-api03-" + alnum(40, string.ascii_letters + string.digits + "_-"),
                     "sk-" + alnum(48)])


def b64url(n):
    return alnum(n, string.ascii_letters + string.digits + "-_")


def jwt():
    return "eyJ" + b64url(R.randint(15, 30)) + ".eyJ" + b64url(R.randint(30, 90)) + "." + b64url(43)


def private_key():
    kind = R.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "OPENSSH PRIVATE KEY", "EC PRIVATE KEY"])
    lines = [alnum(64, string.ascii_letters + string.digits + "+/") for _ in range(R.randint(3, 8))]
    return f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----"


def person(rare=0.08):
    g = R.choice(RARE_GIVEN) if R.random() < rare else R.choice(GIVEN)
    s = R.choice(RARE_SURNAMES) if R.random() < rare else R.choice(SURNAMES)
    if R.random() < 0.1:
        return f"{g} {R.choice(string.ascii_uppercase)}. {s}"
    return f"{g} {s}"


def surname():
    return R.choice(SURNAMES)


def email_for(name=None):
    if name is None:
        name = person()
    parts = [p for p in name.replace(".", "").split() if len(p) > 1]
    first, last = parts[0].lower(), parts[-1].lower()
    ascii_ = lambda s: s.encode("ascii", "ignore").decode()
    first, last = ascii_(first), ascii_(last.replace("'", ""))
    local = R.choice([f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}{R.randint(1, 99)}", f"{first}{R.randint(70, 99)}"])
    return f"{local}@{R.choice(DOMAINS)}"


def dob_value(style=None):
    y, m, d = R.randint(1940, 2005), R.randint(1, 12), R.randint(1, 28)
    style = style or R.choice(["us", "iso", "long", "dmy_long", "dot"])
    return {
        "us": f"{m:02d}/{d:02d}/{y}", "iso": f"{y}-{m:02d}-{d:02d}",
        "long": f"{MONTHS_EN[m - 1]} {d}, {y}", "dmy_long": f"{d} {MONTHS_EN[m - 1]} {y}",
        "dot": f"{d:02d}.{m:02d}.{y}",
    }[style]


def recent_date():
    y, m, d = R.choice([2023, 2024, 2025]), R.randint(1, 12), R.randint(1, 28)
    return R.choice([f"{m:02d}/{d:02d}/{y}", f"{y}-{m:02d}-{d:02d}", f"{MONTHS_EN[m - 1]} {d}, {y}"])


def street_address(unit=None):
    num = R.choice([R.randint(1, 99), R.randint(100, 999), R.randint(1000, 9999), R.randint(10000, 29999)])
    words = R.choice(STREETS)
    if R.random() < 0.2:
        words = R.choice(["North", "South", "East", "West", "N", "S", "E", "W"]) + " " + words
    if R.random() < 0.15:
        words += " " + R.choice(["Hill", "Creek", "Ridge", "Valley"])
    s = f"{num} {words} {R.choice(SUFFIXES)}"
    if unit is None:
        unit = R.random() < 0.25
    if unit:
        s += R.choice([", Apt ", " Apt ", ", Suite ", " Unit ", ", Unit "]) + R.choice([str(R.randint(1, 40)), f"{R.randint(1, 9)}{R.choice('ABCD')}"])
    return s


def zipc():
    return f"{R.randint(10000, 99999)}" if R.random() < 0.85 else f"{R.randint(10000, 99999)}-{R.randint(1000, 9999)}"


def mrn():
    return R.choice([f"{R.randint(10000000, 99999999)}", f"{R.randint(100000, 999999)}",
                     f"{R.choice(string.ascii_uppercase)}{R.randint(1000000, 9999999)}",
                     f"MR{R.randint(100000, 999999)}"])


def member_id():
    return R.choice([f"{alnum(3, string.ascii_uppercase)}{R.randint(100000000, 999999999)}",
                     f"{R.randint(1, 9)}{alnum(1, 'ACDEFGHJKMNPQRTUVWXY')}{alnum(1, 'ACDEFGHJKMNPQRTUVWXY0123456789')}{R.randint(0, 9)}-{alnum(1, 'ACDEFGHJKMNPQRTUVWXY')}{alnum(1, 'ACDEFGHJKMNPQRTUVWXY0123456789')}{R.randint(0, 9)}-{alnum(2, 'ACDEFGHJKMNPQRTUVWXY')}{R.randint(10, 99)}",
                     f"W{R.randint(100000000, 999999999)}"])


def dl():
    return R.choice([f"{R.choice(string.ascii_uppercase)}{R.randint(1000000, 9999999)}",
                     f"{R.randint(100000000, 999999999)}", f"{R.choice(string.ascii_uppercase)}{R.randint(100, 999)}-{R.randint(1000, 9999)}-{R.randint(1000, 9999)}"])


def passport():
    return R.choice([f"{R.randint(100000000, 999999999)}", f"{R.choice(string.ascii_uppercase)}{R.randint(10000000, 99999999)}"])


def plate():
    return R.choice([f"{R.randint(1, 9)}{alnum(3, string.ascii_uppercase)}{R.randint(100, 999)}",
                     f"{alnum(3, string.ascii_uppercase)}{R.randint(1000, 9999)}"])


def serial():
    return R.choice([f"SN{alnum(10, string.ascii_uppercase + string.digits)}",
                     f"{alnum(4, string.ascii_uppercase)}-{R.randint(100000, 999999)}",
                     luhn_complete(str(R.randint(35, 99)), 15)])


def account():
    return f"{R.randint(10**7, 10**12)}"


# ---------------------------------------------------------------- templates

GEN = {
    "NAME": ("PERSON", person), "NAME_KNOWN": ("PERSON", lambda: person(rare=0)),
    "SURNAME": ("PERSON", surname), "GIVEN": ("PERSON", lambda: R.choice(GIVEN)),
    "EMAIL": ("EMAIL", email_for), "PHONE": ("PHONE", phone), "INTL_PHONE": ("PHONE", intl_phone),
    "FAX": ("FAX", phone), "SSN": ("US_SSN", ssn), "SSN_PLAIN": ("US_SSN", lambda: ssn("")),
    "ITIN": ("US_ITIN", itin), "CARD": ("CREDIT_CARD", card), "IBAN": ("IBAN", iban),
    "IP": ("IP_ADDRESS", ipv4), "IP6": ("IP_ADDRESS", ipv6), "DOB": ("DATE_OF_BIRTH", dob_value),
    "DATE": ("DATE", recent_date), "ADDRESS": ("ADDRESS", street_address), "ZIP": ("ZIP_CODE", zipc),
    "MRN": ("MEDICAL_RECORD_NUMBER", mrn), "MEMBER": ("HEALTH_PLAN_ID", member_id),
    "ACCOUNT": ("ACCOUNT_NUMBER", account), "BANK": ("BANK_ACCOUNT", account),
    "ROUTING": ("ROUTING_NUMBER", aba), "DL": ("US_DRIVER_LICENSE", dl),
    "PASSPORT": ("US_PASSPORT", passport), "LICENSE": ("LICENSE_NUMBER", lambda: f"{alnum(2, string.ascii_uppercase)}{R.randint(100000, 9999999)}"),
    "VIN": ("VEHICLE_ID", vin), "PLATE": ("VEHICLE_ID", plate), "SERIAL": ("DEVICE_ID", serial),
    "NPI": ("NPI", npi), "AWS": ("AWS_ACCESS_KEY", aws_key), "GITHUB": ("GITHUB_TOKEN", github),
    "GITLAB": ("GITLAB_TOKEN", gitlab), "SLACK": ("SLACK_TOKEN", slack), "APIKEY": ("API_KEY", api_key),
    "JWT": ("JWT", jwt), "PRIVKEY": ("PRIVATE_KEY", private_key),
    "URL": ("URL", lambda: R.choice([
        f"https://portal.{R.choice(['mychart', 'careconnect', 'healthhub'])}.org/patient/{R.randint(10000, 99999)}",
        f"https://www.linkedin.com/in/{email_for().split('@')[0].replace('.', '-')}",
        f"https://drive.yourco.com/u/{R.randint(100, 999)}/file/{alnum(12)}",
        f"http://{R.choice(['photos', 'files'])}.example.net/{email_for().split('@')[0]}/{R.randint(1, 99)}.jpg"])),
}

# free-text values that are not findings (hard negatives); no type
NEG = {
    "VERSION": lambda: R.choice([f"v{R.randint(1, 9)}.{R.randint(0, 30)}.{R.randint(0, 20)}",
                                 f"version {R.randint(1, 12)}.{R.randint(0, 9)}.{R.randint(0, 99)}.{R.randint(0, 9999)}",
                                 f"{R.randint(1, 5)}.{R.randint(0, 20)}.{R.randint(0, 20)}",
                                 f"build 10.0.{R.randint(10000, 22000)}.{R.randint(100, 3000)}"]),
    "BADCARD": bad_card,
    "ORDER": lambda: R.choice([f"Order #{R.randint(100, 999)}-{R.randint(100, 999)}-{R.randint(1000, 9999)}",
                               f"PO {R.randint(4500000000, 4599999999)}", f"order number {R.randint(10**6, 10**8)}",
                               f"invoice INV-{R.randint(2023, 2025)}-{R.randint(1000, 99999)}",
                               f"ticket #{R.randint(10000, 999999)}", f"tracking number 1Z{alnum(16, string.ascii_uppercase + string.digits)}"]),
    "UUID": lambda: "-".join(alnum(n, "0123456789abcdef") for n in (8, 4, 4, 4, 12)),
    "HASH": lambda: R.choice([alnum(40, "0123456789abcdef"), alnum(7, "0123456789abcdef"), "sha256:" + alnum(64, "0123456789abcdef")]),
    "TS": lambda: R.choice([f"2024-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}T{R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}Z",
                            f"2025-{R.randint(1, 12):02d}-{R.randint(1, 28):02d} {R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}",
                            f"{R.randint(1700000000, 1800000000)}"]),
    "PRICE": lambda: R.choice([f"${R.randint(1, 9)},{R.randint(100, 999)}.{R.randint(10, 99)}", f"€{R.randint(1, 999)}.{R.randint(10, 99)}", f"{R.randint(1, 99)}%"]),
    "LOOPBACK": lambda: R.choice(["127.0.0.1", "0.0.0.0", "localhost:8080", "127.0.0.1:5432", "255.255.255.0"]),
    "PORT": lambda: str(R.choice([80, 443, 3000, 5432, 6379, 8080, 9090])),
    "COUNT": lambda: f"{R.randint(2, 5000):,}",
    "RELDATE": lambda: R.choice([f"{MONTHS_EN[R.randint(0, 11)]} {R.randint(1, 28)}, {R.randint(2022, 2026)}", f"Q{R.randint(1, 4)} {R.randint(2023, 2026)}", f"{R.randint(2023, 2026)}-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}"]),
    "PLACE": lambda: R.choice(["Virginia Beach", "Georgia Tech", "Victoria Station", "Jordan River", "Salt Lake City", "New York", "San Francisco", "Lake Tahoe", "Madison Square Garden", "Washington State University"]),
    "PRODUCT": lambda: R.choice(["PostgreSQL", "Kubernetes", "GitHub Actions", "Visual Studio Code", "Apache Kafka", "Amazon S3", "Google Cloud Run", "Microsoft Teams", "Slack", "Jira"]),
}

PII_TEMPLATES = {
    "ticket": [
        "Hi support, my name is {NAME} and I was charged twice on card {CARD}. You can reach me at {PHONE} or {EMAIL}. This is about {ORDER}.",
        "Customer {NAME} ({EMAIL}) reports that the invoice was sent to the wrong address. Correct mailing address: {ADDRESS}, {CITY_ZIP}. Callback number: {PHONE}.",
        "Ticket escalated. Caller: {NAME_KNOWN}. Verified identity with SSN {SSN} and date of birth {DOB}. Account number {ACCOUNT}. Customer asked us not to email {EMAIL} again.",
        "Please update the billing card for account {ACCOUNT}: new card {CARD}, expiry 09/28. Contact: {NAME} at {PHONE}.",
        "Refund request from {EMAIL}: duplicate charge on {CARD}. Refund to bank account {BANK}, routing number {ROUTING}.",
        "Hello, I moved to {ADDRESS}, {CITY_ZIP}. My phone is now {PHONE}. Thanks, {GIVEN}",
        "The user {NAME} logged in from {IP} and changed the recovery email to {EMAIL}. Flagging {ORDER} for fraud review.",
        "Chargeback on {CARD} (customer {NAME}). Shipping went to {ADDRESS}, {CITY_ZIP}; {ORDER} was delivered on time.",
        "Dear {TITLE} {SURNAME}, we received your request. We will call you at {PHONE} within 2 business days. Reference: {ORDER}.",
        "Agent note: customer gave SSN {SSN} over the phone, which we must not store. Email on file {EMAIL}. Internal {UUID}.",
        "Wire transfer failed for IBAN {IBAN}. Beneficiary: {NAME}. Please confirm the IBAN and resend.",
        "Fraud alert: login for {EMAIL} from {IP6} and then {IP}. Phone on file {PHONE}.",
        "Reset link for {NAME} was sent to {EMAIL}; profile page {URL}.",
    ],
    "clinical": [
        "Patient: {NAME}\nDOB: {DOB}\nMRN: {MRN}\nAdmitted {DATE} with chest pain. Attending NPI {NPI}. Insurance member ID {MEMBER}.",
        "Discharge summary for {NAME_KNOWN} (MRN {MRN}), date of birth {DOB}. Discharged on {DATE} to home at {ADDRESS}, {CITY_ZIP}. Follow-up call: {PHONE}.",
        "Referral: {TITLE} {SURNAME} seen on {DATE}. Fax records to {FAX_CTX}. Medicare MBI {MEMBER}. Pacemaker serial {SERIAL}.",
        "Nurse note: patient {NAME} reports dizziness. Emergency contact {NAME} at {PHONE}. Patient ID {MRN}. Visit {DATE}.",
        "Pt {NAME}, born {DOB}, presents with type 2 diabetes. HbA1c 8.1%. Health plan ID {MEMBER}. Email for portal: {EMAIL}.",
        "Accident report: patient {NAME} was driving vehicle VIN {VIN}, license plate {PLATE}. Driver's license {DL}. Appointment {DATE}.",
        "Prescriber {TITLE} {SURNAME}, NPI {NPI}, DEA {LICENSE}. Patient {NAME_KNOWN}, DOB {DOB}, MRN {MRN}.",
        "Lab results for {NAME} (chart {MRN}) uploaded to {URL}. Call back at {PHONE} regarding the encounter on {DATE}.",
        "Insulin pump device ID {SERIAL} assigned to patient {NAME}, DOB {DOB}. Home address {ADDRESS}, {CITY_ZIP}.",
    ],
    "hr": [
        "Hi {GIVEN},\n\nWelcome aboard! Please send your SSN ({SSN} is what we have on file — please confirm), a copy of your passport {PASSPORT} and your direct deposit details: checking account {BANK}, routing {ROUTING}.\n\nBest,\n{NAME_KNOWN}",
        "Offer letter for {NAME}, residing at {ADDRESS}, {CITY_ZIP}. Date of birth {DOB}. Personal email {EMAIL}, mobile {PHONE}.",
        "Payroll change: employee {NAME} (ITIN {ITIN}) moves salary payments to IBAN {IBAN}.",
        "Background check for candidate {NAME}: driver's license {DL}, SSN {SSN}, DOB {DOB}.",
        "Emergency contact update for {NAME_KNOWN}: spouse {NAME}, phone {PHONE}, address {ADDRESS}, {CITY_ZIP}.",
        "Dear {TITLE} {SURNAME},\n\nyour expense report was approved. The reimbursement goes to account number {ACCOUNT}.\n\nRegards,\n{NAME}",
        "Benefits enrollment: {NAME}, member number {MEMBER}, dependents born {DOB}. Questions to {EMAIL}.",
    ],
    "chat": [
        "hey, can you text me at {PHONE}? my email is {EMAIL}",
        "Thanks, {GIVEN}! I'll send the contract to {EMAIL} tonight.",
        "call {NAME} at {PHONE} about the lease, she lives at {ADDRESS}",
        "my card {CARD} got declined again, can you check?",
        "Hi {GIVEN}, the meeting moved to Thursday. Ping {NAME} if you need the dial-in.",
        "ssn is {SSN_PLAIN}, dob {DOB}. please don't share",
        "can you forward this to {EMAIL}? {NAME} asked for it",
        "fyi {NAME} changed her number to {PHONE}",
    ],
    "code": [
        "export AWS_ACCESS_KEY_ID={AWS}\nexport AWS_REGION=us-east-1\n# owner: {EMAIL}",
        "import openai\nclient = openai.OpenAI(api_key=\"{APIKEY}\")\nresp = client.chat.completions.create(model=\"gpt-4o-mini\", messages=msgs)",
        "GITHUB_TOKEN={GITHUB} gh repo clone yourco/api",
        "SLACK_BOT_TOKEN={SLACK}\nGITLAB_TOKEN={GITLAB}\nLOG_LEVEL=debug",
        "curl -H \"Authorization: Bearer {JWT}\" {URL}",
        "Here is the deploy key, please don't commit it:\n{PRIVKEY}\n",
        "# staging db\nhost = {IP}\nport = 5432\nuser = app\n# contact {NAME} ({EMAIL}) for access",
        "server {{\n  listen 443;\n  allow {IP};\n  allow {IP6};\n  deny all;\n}}",
        "def test_login():\n    token = \"{GITHUB}\"\n    assert login(token).ok  # {UUID}",
        "Error: request from {IP} rejected (user {EMAIL}, request id {UUID})",
    ],
    "de": [
        "Sehr geehrte Frau {SURNAME},\n\nvielen Dank für Ihre Nachricht. Ihre neue Adresse {DE_ADDRESS} haben wir gespeichert. Telefon: {INTL_PHONE}.\n\nMit freundlichen Grüßen",
        "Bitte überweisen Sie den Betrag auf das Konto IBAN {IBAN}. Rückfragen an {EMAIL}.",
        "Patient Herr {SURNAME}, geboren am {DE_DOB}, Versichertennummer {MEMBER}. Termin am {DATE}.",
        "Hallo {GIVEN}, meine Handynummer ist {INTL_PHONE}, E-Mail {EMAIL}.",
    ],
    "fr": [
        "Bonjour {GIVEN},\n\nje vous confirme mon adresse : {FR_ADDRESS}, 75002 Paris. Mon portable : {INTL_PHONE}.",
        "Madame, Monsieur, veuillez débiter le compte IBAN {IBAN}. Contact : {EMAIL}.",
        "Le patient M. {SURNAME}, né le {FR_DOB}, a été vu en consultation. Téléphone {INTL_PHONE}.",
        "Mme {SURNAME} a changé d'adresse e-mail : {EMAIL}.",
    ],
    "es": [
        "Hola {GIVEN}, mi teléfono es {INTL_PHONE} y mi correo {EMAIL}.",
        "Estimada Sra. {SURNAME}: su fecha de nacimiento {ES_DOB} no coincide con nuestros registros. Dirección: {ES_ADDRESS}, Madrid.",
        "Transferencia a la cuenta IBAN {IBAN} a nombre de {NAME_KNOWN}.",
    ],
    "it_pt": [
        "Gentile Dott. {SURNAME}, la contatteremo al numero {INTL_PHONE}. Email: {EMAIL}.",
        "Olá {GIVEN}, o pagamento foi feito para o IBAN {IBAN}. Qualquer dúvida: {EMAIL}.",
        "Caro {GIVEN}, il tuo IBAN {IBAN} è stato verificato.",
    ],
    "cjk": [
        "お客様のメールアドレス {EMAIL} と電話番号 {INTL_PHONE} を確認しました。カード番号 {CARD} は無効です。",
        "客户 {CJK_NAME} 的邮箱是 {EMAIL}，手机号码 {INTL_PHONE}。",
        "患者 {CJK_NAME} 様、生年月日 DOB {DOB}、電話 {INTL_PHONE}。",
        "Здравствуйте! Мой email {EMAIL}, телефон {INTL_PHONE}. IBAN {IBAN}.",
        "사용자 {EMAIL} 이(가) {IP} 에서 로그인했습니다.",
    ],
}

FREE_TEMPLATES = [
    "We upgraded {PRODUCT} from {VERSION} to {VERSION} last week; the migration took {COUNT} seconds on the staging cluster.",
    "The release notes for {VERSION} mention a fix for the connection pool. See {ORDER} for the customer report.",
    "Build failed at {TS}: test_checkout expected {PRICE} but got {PRICE}. Commit {HASH}.",
    "Please review {ORDER}; the vendor confirmed delivery for {RELDATE}.",
    "Request {UUID} took {COUNT} ms. The service listens on {LOOPBACK} and port {PORT}.",
    "Our team offsite is in {PLACE} on {RELDATE}. Budget is {PRICE} per person.",
    "The test card {BADCARD} should be rejected by the Luhn check, and it is.",
    "Docker image digest {HASH} was pushed at {TS}. Rollback to {VERSION} if p99 latency exceeds 250 ms.",
    "Summarize this paragraph: The quarterly revenue grew {PRICE} compared to last year, driven by {PRODUCT} adoption in {PLACE}.",
    "How do I configure {PRODUCT} to retry failed jobs? We are on {VERSION} and see {COUNT} retries per hour.",
    "Translate to French: The meeting is moved to Thursday afternoon. Please bring the draft of the proposal.",
    "Write a SQL query that returns the top {PORT} customers by revenue for {RELDATE}.",
    "def retry(fn, attempts={PORT}):\n    for i in range(attempts):\n        try:\n            return fn()\n        except TimeoutError:\n            time.sleep(2 ** i)",
    "Log excerpt:\n{TS} INFO worker started pid={COUNT}\n{TS} WARN queue depth {COUNT}\n{TS} INFO job {UUID} done",
    "Compare {PRODUCT} and {PRODUCT} for a team of {COUNT} engineers. Cost is about {PRICE} per month.",
    "The invoice total is {PRICE}; {ORDER} ships from the warehouse in {PLACE}.",
    "Explain the difference between TCP and UDP for a beginner, with an example using port {PORT}.",
    "Refactor this function to avoid the N+1 query. It runs {COUNT} queries for {COUNT} rows.",
    "Our SLA is 99.9% uptime. In {RELDATE} we had {COUNT} minutes of downtime across {PLACE} and {PLACE}.",
    "Checksum mismatch: expected {HASH}, got {HASH}. Rebuild with {VERSION}.",
    "Grant read access on bucket logs-prod to the analytics role; the request is {ORDER}.",
    "Will the new scheduler handle {COUNT} concurrent jobs? Mark the ticket as blocked if not.",
    "Rechnungsbetrag {PRICE}, fällig zum {RELDATE}. Bitte nutzen Sie die Referenz {ORDER}.",
    "La nouvelle version {VERSION} corrige le problème de mémoire signalé le mois dernier.",
    "La versión {VERSION} ya está disponible; actualice antes del {RELDATE}.",
    "新しいバージョン {VERSION} では、接続プールの不具合が修正されました。詳細は {ORDER} を参照してください。",
    "请在 {RELDATE} 之前升级到 {VERSION}，否则 {PRODUCT} 将无法连接。",
    "Сборка {VERSION} прошла успешно за {COUNT} секунд.",
    "Kubernetes pod restarted {COUNT} times since {TS}; node pool is n2-standard-8 in us-central1.",
    "The matrix is 1920x1080 pixels, {COUNT} frames at 60 fps, encoded with H.264 profile 4.2.",
    "Serial port settings: 9600 baud, 8 data bits, no parity, 1 stop bit. Firmware {VERSION}.",
    "Christian, Dior and Chanel are brands; Paris and Milan are cities. None of these are customers.",
    "Dear team, thanks for the great quarter! Hi all, the retro is on {RELDATE}.",
    "Coordinates 37.7749, -122.4194 mark the office; elevation 16 m; {COUNT} desks.",
]


PROSE = [
    "The quarterly planning meeting focused on reliability work for the next two releases.",
    "Most of the discussion was about reducing the time it takes to recover from a failed deployment.",
    "We agreed that every service should expose the same health endpoint and the same metrics.",
    "The search team explained how the new ranking model handles misspelled queries.",
    "Customers in the pilot group reported that the dashboard loads noticeably faster than before.",
    "There is still some confusion about which team owns the shared configuration repository.",
    "A short retrospective will follow on Friday, and everyone is welcome to add topics to the agenda.",
    "The onboarding guide now explains how to request access to the staging environment.",
    "Please keep the design document up to date as the implementation evolves.",
    "The proposal compares three approaches to caching and recommends the simplest one.",
    "Latency improved after the connection pool was resized, but throughput stayed the same.",
    "We will revisit the decision once we have a month of production data.",
    "The support backlog shrank by a third after the documentation was rewritten.",
    "Our style guide asks for short functions, clear names and tests for every bug fix.",
    "The migration to the new build system is mostly complete; two legacy jobs remain.",
    "In the long run we want every team to be able to ship without waiting for a central review.",
    "The office in Berlin will be closed during the holidays, and the one in Lisbon stays open.",
    "Several people asked for a summary of the security training, which is attached below.",
    "A good incident report describes what happened, why it happened and what we changed.",
    "The budget for the conference was approved, so we can book the venue next week.",
    "Writing clear error messages saves more support time than any other single change.",
    "The new hire program pairs every engineer with a mentor for the first three months.",
    "When in doubt, prefer the boring technology that the team already knows how to operate.",
    "The analytics pipeline runs every night and finishes well before the morning standup.",
    "It is worth measuring before optimizing, because intuition about performance is often wrong.",
    "The roadmap for next year is ambitious but realistic if we keep the scope under control.",
    "Each squad presented a demo, and the audience voted for the most useful improvement.",
    "The localization work covers French, German, Spanish and Japanese in the first phase.",
    "Remember to rotate credentials regularly and never paste them into chat.",
    "The workshop on accessibility was well attended and produced a long list of fixes.",
    "Die Besprechung hat gezeigt, dass wir mehr Zeit für Tests einplanen müssen.",
    "Unser Team arbeitet an einer neuen Version der Suchfunktion, die schneller und genauer ist.",
    "La réunion de jeudi portera sur la feuille de route et les priorités du trimestre.",
    "Nous avons amélioré la documentation pour faciliter la prise en main du produit.",
    "El equipo terminó la migración antes de lo previsto y sin interrupciones del servicio.",
    "La próxima versión incluirá mejoras de rendimiento y una interfaz más sencilla.",
    "Il progetto procede secondo i piani e la prossima revisione è prevista a fine mese.",
    "新しい設計では、サービス間の通信がより簡単になります。",
    "我们的目标是在下个季度提高系统的稳定性和可维护性。",
    "Команда продолжает работу над улучшением производительности системы.",
]


def prose_doc():
    paras = []
    for _ in range(R.randint(2, 6)):
        paras.append(" ".join(R.choice(PROSE) for _ in range(R.randint(3, 7))))
    return "\n\n".join(paras)


def title():
    return R.choice(["Mr.", "Mrs.", "Ms.", "Dr.", "Dr", "Prof."])


def fill(template, kind_hint=""):
    """Renders a template; returns (text, spans) with byte offsets."""
    out = []
    spans = []
    pos = 0

    def add(s, typ=None):
        nonlocal pos
        b = s.encode("utf-8")
        if typ:
            spans.append({"start": pos, "end": pos + len(b), "type": typ})
        out.append(s)
        pos += len(b)

    i = 0
    while i < len(template):
        if template.startswith("{{", i):
            add("{")
            i += 2
            continue
        if template.startswith("}}", i):
            add("}")
            i += 2
            continue
        if template[i] == "{":
            j = template.index("}", i)
            key = template[i + 1:j]
            i = j + 1
            if key in GEN:
                typ, g = GEN[key]
                add(g(), typ)
            elif key in NEG:
                add(NEG[key]())
            elif key == "TITLE":
                add(title())
            elif key == "CITY_ZIP":
                city, st = R.choice(CITIES)
                add(f"{city}, {st} ")
                add(zipc(), "ZIP_CODE")
            elif key == "FAX_CTX":
                add(phone(), "FAX")
            elif key == "DE_ADDRESS":
                add(f"{R.choice(['Haupt', 'Bahnhof', 'Schiller', 'Goethe', 'Linden', 'Rosen'])}{R.choice(['straße', 'strasse', 'weg', 'platz', 'allee'])} {R.randint(1, 150)}", "ADDRESS")
                add(f", {R.randint(10000, 99999)} {R.choice(['Berlin', 'München', 'Hamburg', 'Köln'])}")
            elif key == "FR_ADDRESS":
                add(f"{R.randint(1, 120)} {R.choice(['rue', 'avenue', 'boulevard'])} {R.choice(['de la Paix', 'Victor Hugo', 'des Lilas', 'Saint-Honoré', 'du Temple'])}", "ADDRESS")
            elif key == "ES_ADDRESS":
                add(f"{R.choice(['Calle', 'Avenida', 'Paseo'])} {R.choice(['Mayor', 'de Alcalá', 'del Prado', 'Serrano'])} {R.randint(1, 200)}", "ADDRESS")
            elif key == "DE_DOB":
                add(f"{R.randint(1, 28)}. {R.choice(MONTHS_DE)} {R.randint(1940, 2005)}", "DATE_OF_BIRTH")
            elif key == "FR_DOB":
                add(f"{R.randint(1, 28)} {R.choice(MONTHS_FR)} {R.randint(1940, 2005)}", "DATE_OF_BIRTH")
            elif key == "ES_DOB":
                add(f"{R.randint(1, 28)} de {R.choice(MONTHS_ES)} de {R.randint(1940, 2005)}", "DATE_OF_BIRTH")
            elif key == "CJK_NAME":
                add(R.choice(["田中太郎", "王伟", "李娜", "佐藤花子", "张敏", "鈴木一郎"]), "PERSON")
            else:
                raise KeyError(key)
            continue
        j = i
        while j < len(template) and template[j] != "{" and not template.startswith("}}", j):
            j += 1
        add(template[i:j])
        i = j
    text = "".join(out)
    return text, whole_addresses(text, spans)


def whole_addresses(text, spans):
    """One ADDRESS span from the street to the postcode and city (issue 20): a street followed
    by `, City, ST ` and its ZIP code, by `, 12345 City`, or by `, City` that ends the sentence,
    is annotated as one address."""
    b = text.encode("utf-8")
    out = []
    i = 0
    while i < len(spans):
        s = spans[i]
        if s["type"] == "ADDRESS":
            rest = b[s["end"]:].decode("utf-8")
            nxt = spans[i + 1] if i + 1 < len(spans) else None
            m = re.match(r", [A-Z][a-z]+(?: [A-Z][a-z]+)*, [A-Z]{2} ", rest)
            if m and nxt and nxt["type"] == "ZIP_CODE" and nxt["start"] == s["end"] + len(m.group(0).encode("utf-8")):
                out.append({"start": s["start"], "end": nxt["end"], "type": "ADDRESS"})
                i += 2
                continue
            m = re.match(r", \d{5} [A-ZÄÖÜ][a-zäöüß]+", rest) or re.match(r", Madrid(?=\.)", rest)
            if m:
                out.append({"start": s["start"], "end": s["end"] + len(m.group(0).encode("utf-8")), "type": "ADDRESS"})
                i += 1
                continue
        out.append(s)
        i += 1
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "conformance" / "detection" / "corpus.jsonl"))
    args = ap.parse_args()
    plan = [("ticket", 320), ("clinical", 300), ("hr", 200), ("chat", 190), ("code", 170),
            ("de", 60), ("fr", 50), ("es", 40), ("it_pt", 30), ("cjk", 40)]
    docs = []
    n = 0
    for kind, count in plan:
        for _ in range(count):
            text, spans = fill(R.choice(PII_TEMPLATES[kind]))
            n += 1
            docs.append({"id": f"{kind}-{n:05d}", "kind": kind, "text": text, "spans": spans})
    for _ in range(760):
        parts = [fill(R.choice(FREE_TEMPLATES)) for _ in range(R.randint(1, 3))]
        text = "\n\n".join(p[0] for p in parts)
        n += 1
        docs.append({"id": f"free-{n:05d}", "kind": "pii_free", "genre": "technical", "text": text, "spans": []})
    for _ in range(200):
        n += 1
        docs.append({"id": f"prose-{n:05d}", "kind": "pii_free", "genre": "prose", "text": prose_doc(), "spans": []})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    free = sum(1 for d in docs if d["kind"] == "pii_free")
    print(f"{len(docs)} documents ({free} PII-free), {sum(len(d['spans']) for d in docs)} spans -> {args.out}")


if __name__ == "__main__":
    main()
