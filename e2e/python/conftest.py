"""The gateway the end-to-end tests talk to: a fresh SQLite store set up with the `kt` CLI (the
seed's three teams, one member and key each, wallets) and `kt gateway run` on the quick start pack
with the mock provider. KT_BIN names the `kt` binary (default target/debug/kt).
"""
import json
import os
import re
import subprocess
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KT = os.environ.get("KT_BIN", str(ROOT / "target" / "debug" / "kt"))


def kt(store, *args):
    out = subprocess.run([KT, *args, "--store", store], capture_output=True, text=True)
    assert out.returncode == 0, f"kt {args}: {out.stderr}"
    return out.stdout


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    store = "sqlite:" + str(tmp_path_factory.mktemp("kt") / "kt.db")
    for team in ["Support", "Engineering", "Legal"]:
        kt(store, "team", "create", "--name", team)
    kt(store, "team", "add-member", "--team", "support", "--email", "agent@yourco.com")
    kt(store, "team", "add-member", "--team", "engineering", "--email", "dev@yourco.com")
    kt(store, "team", "add-member", "--team", "legal", "--email", "counsel@yourco.com")
    keys = {
        team: json.loads(kt(store, "key", "create", "--team", team, "--email", email, "--json"))["key"]
        for team, email in [("support", "agent@yourco.com"), ("engineering", "dev@yourco.com"), ("legal", "counsel@yourco.com")]
    }
    kt(store, "wallet", "allocate", "--team", "support", "--amount", "5")
    kt(store, "wallet", "allocate", "--team", "legal", "--amount", "1000")
    kt(store, "wallet", "allocate", "--team", "engineering", "--amount", "0.003")
    proc = subprocess.Popen(
        [KT, "gateway", "run", "--pack", str(ROOT / "examples/packs/gateway-quickstart.yaml"),
         "--listen", "127.0.0.1:0", "--store", store],
        stderr=subprocess.PIPE, text=True)
    addr = None
    for line in proc.stderr:
        m = re.match(r"kt gateway: listening on (http://\S+)", line)
        if m:
            addr = m.group(1)
            break
    assert addr, "the gateway started"
    # keep reading its log so the pipe never fills
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    yield {"url": addr + "/v1", "keys": keys, "store": store}
    proc.terminate()
    proc.wait(timeout=10)


