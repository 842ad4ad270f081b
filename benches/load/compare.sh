#!/usr/bin/env bash
# One-core comparison (issues 25 and 26), side by side in one run: the server under test pinned to
# CPU 1, the load generator (wrk) and the mock provider (nginx) pinned to CPU 0; 64 connections,
# the 1.4 KB support-ticket prompt (two emails, two phones, an address; benches/load/ticket.lua).
#
#   1. nginx as a plain reverse proxy in front of the mock   (the practical limit of a hop)
#   2. keeptrusts, governed, durable (the default)          (rbac + pii-detector on prompt and
#   3. keeptrusts, governed, relaxed                          answer + wallet + audit, SQLite)
#   4. keeptrusts, governed, durable, PostgreSQL             (when KEEPTRUSTS_TEST_POSTGRES_URL is set)
#   5. keeptrusts, governed, durable, on both cores          (nothing pinned; the load generator
#                                                              shares the cores: for reference)
#
# For each: requests/s, CPU per request (user + system time of the server's process from
# /proc/<pid>/stat over the run, divided by the requests answered: what noise moves least), the
# ratio to nginx, the p50 added at one connection (over direct to the mock), and peak RSS. The
# foreign CPU on the server's core (busy time of CPU 1 not spent by the server) is printed per run:
# it is the machine's noise.
#
# Needs nginx, wrk and taskset; a machine with at least 2 CPUs.
# Usage: bash benches/load/compare.sh [seconds per run, default 10]; KT_BIN=path/to/kt measures
# another build (an A/B against an older commit).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
here=benches/load
[ "$(nproc)" -ge 2 ] || { echo "compare: needs 2 CPUs" >&2; exit 2; }
for tool in wrk nginx taskset; do
  command -v "$tool" >/dev/null 2>&1 || { echo "compare: $tool is missing (apt-get install wrk nginx-light util-linux)" >&2; exit 2; }
done

# KT_BIN: another build of `kt` to measure (an A/B against an older commit)
if [ -n "${KT_BIN:-}" ]; then
  kt=$KT_BIN
else
  cargo build --release -p keeptrusts-proxy-example >/dev/null 2>&1
  kt=${CARGO_TARGET_DIR:-$PWD/target}/release/kt
fi
work=$(mktemp -d)
pids=()
source "$here/common.sh"
trap cleanup EXIT
tick=$(getconf CLK_TCK)

taskset -c 0 nginx -c "$PWD/$here/nginx.conf" -p "$work" &
pids+=($!)
sleep 0.5

# user + system ticks of a process, and busy ticks of CPU 1
proc_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
cpu1_busy() { awk '$1 == "cpu1" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

# wrk on CPU 0 (or $load_cpus) → "rps p50 requests"
measure() {
  local url=$1 conns=$2 lua=$3
  taskset -c "${load_cpus:-0}" wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$lua" "$url" 2>/dev/null | awk '
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = $2 }
    /Non-2xx/ { bad = $NF }
    / requests in / { n = $1 }
    END { printf "%s %s %s %s\n", rps, p50, n, (bad == "" ? 0 : bad) }'
}

# a wrk latency ("412.00us", "1.20ms") in microseconds
micros() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /ms$/) n *= 1000; else if (v ~ /[0-9]s$/) n *= 1000000; printf "%.0f", n }'; }


read -r _ direct_p50 _ _ < <(KT_KEY= measure http://127.0.0.1:41090/v1/chat/completions 1 "$here/ticket.lua")
direct_us=$(micros "$direct_p50")

# run <label> <pid> <url>: the 64-connection run with CPU accounting, then the 1-connection run
rows=()
run() {
  local label=$1 pid=$2 url=$3
  local t0 b0 t1 b1 rps p50 n bad one_p50
  t0=$(proc_ticks "$pid"); b0=$(cpu1_busy)
  read -r rps _ n bad < <(measure "$url" 64 "$here/ticket.lua")
  t1=$(proc_ticks "$pid"); b1=$(cpu1_busy)
  read -r _ one_p50 _ _ < <(measure "$url" 1 "$here/ticket.lua")
  local cpu_ms foreign added
  cpu_ms=$(awk -v d=$((t1 - t0)) -v n="$n" -v hz="$tick" 'BEGIN { printf "%.3f", (n > 0 ? d / hz * 1000 / n : 0) }')
  foreign=$(awk -v b=$((b1 - b0)) -v d=$((t1 - t0)) -v hz="$tick" -v s="$secs" 'BEGIN { f = (b - d) / hz / s * 100; printf "%.1f%%", (f < 0 ? 0 : f) }')
  added=$(awk -v a="$(micros "$one_p50")" -v d="$direct_us" 'BEGIN { printf "+%.2f ms", (a - d) / 1000 }')
  rows+=("$label|$rps|$cpu_ms|$added|$(peak_rss_mb "$pid") MB|$bad|$foreign")
}

# nginx as a plain proxy, on CPU 1
taskset -c 1 nginx -c "$PWD/$here/proxy.conf" -p "$work" &
proxy=$!
pids+=($proxy)
sleep 0.5
# the worker process does the work (the master only waits)
proxy_worker=$(pgrep -P "$proxy" | head -1)
KT_KEY= run "nginx as a plain reverse proxy" "$proxy_worker" http://127.0.0.1:41093/v1/chat/completions
kill "$proxy" 2>/dev/null || true

gateway() {
  local port=$1 durability=$2 store=$3
  seed_org "$store"
  # MALLOC_ARENA_MAX set here, so `kt gateway run` does not start itself again (docs/gateway.md)
  MALLOC_ARENA_MAX=2 RUST_LOG=warn taskset -c "${cpus:-1}" "$kt" gateway run --pack "$here/governed.yaml" --listen "127.0.0.1:$port" \
    --store "$store" --durability "$durability" 2>"$work/$port.log" &
  gw=$!
  pids+=($gw)
  wait_listening compare "$port" "$gw" 100
}

gateway 41094 durable "sqlite:$work/durable.db"
run "keeptrusts governed, durable (SQLite)" "$gw" http://127.0.0.1:41094/v1/chat/completions
kill -TERM "$gw"; sleep 0.5
gateway 41095 relaxed "sqlite:$work/relaxed.db"
run "keeptrusts governed, relaxed (SQLite)" "$gw" http://127.0.0.1:41095/v1/chat/completions
kill -TERM "$gw"; sleep 0.5
if [ -n "${KEEPTRUSTS_TEST_POSTGRES_URL:-}" ]; then
  db=kt_compare_$$
  psql "$KEEPTRUSTS_TEST_POSTGRES_URL" -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
  gateway 41096 durable "${KEEPTRUSTS_TEST_POSTGRES_URL%/*}/$db"
  run "keeptrusts governed, durable (PostgreSQL)" "$gw" http://127.0.0.1:41096/v1/chat/completions
  kill -TERM "$gw"; sleep 1
  psql "$KEEPTRUSTS_TEST_POSTGRES_URL" -q -c "DROP DATABASE $db" >/dev/null || true
fi

cpus=0,1 load_cpus=0,1 gateway 41097 durable "sqlite:$work/both.db"
load_cpus=0,1 run "keeptrusts governed, durable, 2 cores shared" "$gw" http://127.0.0.1:41097/v1/chat/completions
kill -TERM "$gw"; sleep 0.5

echo "one core for the server (CPU 1; the last row: both cores, shared with the load generator), 64 connections, ${secs}s per run, 1.4 KB ticket prompt; direct p50 at 1 connection: $direct_p50"
printf "%-44s %11s %10s %9s %14s %9s %8s %8s\n" "server" "requests/s" "x nginx" "CPU/req" "added p50 (1c)" "peak RSS" "non-2xx" "foreign"
ref=$(echo "${rows[0]}" | cut -d'|' -f2)
for r in "${rows[@]}"; do
  IFS='|' read -r label rps cpu added rss bad foreign <<<"$r"
  ratio=$(awk -v a="$rps" -v b="$ref" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }')
  printf "%-44s %11s %10s %7s ms %14s %9s %8s %8s\n" "$label" "$rps" "$ratio" "$cpu" "$added" "$rss" "$bad" "$foreign"
done
