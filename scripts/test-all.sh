#!/usr/bin/env bash
# Runs every test of the project, the same way on a laptop and in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# The PostgreSQL tests read this URL; without it they would not run, so the suite refuses to pass
# silently (.ci/run sets it; set KEEPTRUSTS_SKIP_POSTGRES=1 to run everything else on purpose).
if [ -z "${KEEPTRUSTS_TEST_POSTGRES_URL:-}" ] && [ "${KEEPTRUSTS_SKIP_POSTGRES:-}" != 1 ]; then
  echo "test-all: KEEPTRUSTS_TEST_POSTGRES_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test);" >&2
  echo "test-all: set it, or KEEPTRUSTS_SKIP_POSTGRES=1 to skip the PostgreSQL tests knowingly" >&2
  exit 2
fi

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

echo "== core purity"
bash scripts/check-core-purity.sh

echo "== cargo test (unit, integration, conformance vectors, property tests, doctests)"
cargo test --workspace 2>&1 | tee "$log"

echo "== example packs: lint and golden cases"
kt=target/debug/kt
for pack in examples/packs/*.yaml; do
  "$kt" policy lint --file "$pack" >/dev/null
  name=$(basename "$pack" .yaml)
  if [ -d "examples/packs/cases/$name" ]; then
    "$kt" policy test --file "$pack" --cases "examples/packs/cases/$name" | tee -a "$log" | tail -n 1
  fi
done

echo "== Python package: pip install ./bindings-python, then pytest (conformance vectors, API, stores, ASGI) and stubtest"
venv=target/py-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet pytest starlette httpx2 mypy
MATURIN_PEP517_ARGS="--profile dev" "$venv/bin/pip" install --quiet --force-reinstall --no-deps ./bindings-python
"$venv/bin/python" -m pytest -q bindings-python/tests 2>&1 | tee -a "$log" | tail -n 3
(cd "$(mktemp -d)" && "$OLDPWD/$venv/bin/python" -m mypy.stubtest keeptrusts --allowlist "$OLDPWD/bindings-python/stubtest-allowlist.txt")
"$venv/bin/python" -m mypy --strict bindings-python/examples/asgi_app.py

echo "== Node package: npm ci && npm test in bindings-node (conformance vectors, API, stores, Promises, Express; tsc --noEmit)"
(cd bindings-node && npm ci --no-audit --no-fund --loglevel=error && npm test 2>&1) | tee -a "$log" | grep -E '^# (tests|pass|fail) '

echo "== gateway end to end: the official openai (PyPI and npm) and anthropic (PyPI) packages against kt gateway run"
"$venv/bin/pip" install --quiet openai anthropic
KT_BIN="$PWD/target/debug/kt" "$venv/bin/python" -m pytest -q e2e/python 2>&1 | tee -a "$log" | tail -n 3
(cd e2e/node && npm ci --no-audit --no-fund --loglevel=error && KT_BIN="$PWD/../../target/debug/kt" npm test 2>&1) | tee -a "$log" | grep -E '^# (tests|pass|fail) '

echo "== console in headless Chromium: playwright-core driving Debian's /usr/bin/chromium against kt gateway run (screenshots to target/console-screenshots)"
(cd e2e/console && npm ci --no-audit --no-fund --loglevel=error && \
  KT_BIN="$PWD/../../target/debug/kt" timeout 600 npm test 2>&1) | tee -a "$log" | grep -E '^# (tests|pass|fail) '

if command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== fuzz smoke (stable toolchain, no sanitizer)"
  for target in pack_parse scan_redact engine_json wallet_ops gateway_request; do
    (cd fuzz && cargo fuzz build -s none "$target" && \
      mkdir -p "corpus/$target" && \
      cargo fuzz run -s none "$target" "corpus/$target" "seeds/$target" -- -max_total_time=20 -rss_limit_mb=2048 2>&1 | tail -n 3)
  done
else
  echo "== fuzz smoke skipped: cargo-fuzz is not installed (.ci/run installs it)"
fi

# One closing line for the whole run: cargo's per-binary results plus kt's golden cases.
awk '
  /^test result: / { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  /^[0-9]+ passed, [0-9]+ failed$/ { p += $1; f += $3 }
  /^[0-9]+ (passed|failed).* in [0-9.]+s/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  /^# pass [0-9]+$/ { p += $3 }
  /^# fail [0-9]+$/ { f += $3 }
  END { printf "%d passed, %d failed\n", p, f }
' "$log"
