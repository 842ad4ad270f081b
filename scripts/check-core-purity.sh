#!/usr/bin/env bash
# keeptrusts-core must stay pure: no async runtime, HTTP stack, database driver or binding crate
# anywhere in its normal dependency tree.
set -euo pipefail
cd "$(dirname "$0")/.."
forbidden='^(tokio|tokio-[a-z-]+|hyper|hyper-util|h2|reqwest|pyo3|pyo3-[a-z-]+|napi|napi-derive|napi-sys|rusqlite|libsqlite3-sys|postgres|tokio-postgres|sqlx|sqlx-[a-z-]+|mio|async-std) '
tree=$(cargo tree -p keeptrusts-core -e normal --prefix none --format '{p}' | sort -u)
if hits=$(printf '%s\n' "$tree" | grep -E "$forbidden"); then
  echo "keeptrusts-core depends on crates it must not use:" >&2
  printf '%s\n' "$hits" >&2
  exit 1
fi
echo "keeptrusts-core is pure: $(printf '%s\n' "$tree" | wc -l) crates, none of tokio/hyper/pyo3/napi/rusqlite/postgres"
