#!/usr/bin/env bash
# Load test of the gateway (issue 8): a fast local mock provider (nginx returning a fixed chat
# completion), the gateway in release mode, and wrk. Prints requests/s, p50 and p99 latency and
# the gateway's peak RSS for:
#   1. direct to the mock                      (the floor)
#   2. gateway, no policies                    (auth, reservation, settlement, audit event)
#   3. gateway, the seed's multi-team pack     (rbac + pii-detector + wallet + audit, SQLite)
#   4. the same governed gateway, Responses API (POST /v1/responses, translated to the mock's chat
#      completions) and 5. embeddings (POST /v1/embeddings, two inputs, one with an e-mail)
# each at concurrency 64, then the added latency at concurrency 1.
#
# KT_DURABILITY=relaxed measures the gateway answering before its writes are committed (the
# default, durable, waits for them; docs/gateway.md "Durability").
# KT_GOVERNED_PACK=FILE replaces the governed pack of run 3 (e.g. benches/load/governed-rate-limited.yaml:
# the same pack with rate limits far above the load, to measure what counting costs).
# The gateway is built in $CARGO_TARGET_DIR when it is set (else ./target).
#
# Needs nginx and wrk (Debian: apt-get install nginx-light wrk); installs them when run as root
# and they are missing. Usage: bash benches/load/run.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
here=benches/load

for tool in wrk nginx; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      apt-get install -y wrk nginx-light >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk nginx-light >/dev/null; }
    else
      echo "load: $tool is missing (apt-get install wrk nginx-light)" >&2
      exit 2
    fi
  fi
done

cargo build --release -p keeptrusts-proxy-example >/dev/null 2>&1
kt=${CARGO_TARGET_DIR:-$PWD/target}/release/kt
governed_pack=${KT_GOVERNED_PACK:-$here/governed.yaml}
work=$(mktemp -d)
pids=()
source "$here/common.sh"
trap cleanup EXIT

nginx -c "$PWD/$here/nginx.conf" -p "$work" &
pids+=($!)
sleep 0.5

# wrk output → "rps p50 p99 non-2xx requests"; the 4th argument is the request script
measure() {
  local url=$1 conns=$2 threads=$3 script=${4:-post.lua}
  wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s "$here/$script" "$url" 2>/dev/null | awk '
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = $2 }
    /^ +99%/ { p99 = $2 }
    /Non-2xx/ { bad = $NF }
    / requests in / { n = $1 }
    END { printf "%s %s %s %s %s\n", rps, p50, p99, (bad == "" ? 0 : bad), n }'
}

start_gateway() {
  local pack=$1 port=$2 store="sqlite:$work/$2.db"
  seed_org "$store"
  RUST_LOG=warn "$kt" gateway run --pack "$pack" --listen "127.0.0.1:$port" --store "$store" \
    --durability "${KT_DURABILITY:-durable}" 2>"$work/$port.log" &
  gw=$!
  pids+=($gw)
  wait_listening load "$port" "$gw" 50
}


printf "%-44s %12s %10s %10s %10s %8s\n" "run (concurrency 64, ${secs}s)" "requests/s" "p50" "p99" "peak RSS" "non-2xx"
read -r rps p50 p99 bad _ < <(KT_KEY= measure http://127.0.0.1:41090/v1/chat/completions 64 2)
printf "%-44s %12s %10s %10s %10s %8s\n" "direct to the mock provider" "$rps" "$p50" "$p99" "-" "$bad"
read -r d1_rps d1_p50 d1_p99 _ < <(KT_KEY= measure http://127.0.0.1:41090/v1/chat/completions 1 1)

start_gateway "$here/passthrough.yaml" 41091
read -r rps p50 p99 bad _ < <(measure http://127.0.0.1:41091/v1/chat/completions 64 2)
printf "%-44s %12s %10s %10s %10s %8s\n" "gateway, no policies" "$rps" "$p50" "$p99" "$(peak_rss_mb $gw) MB" "$bad"
read -r g1_rps g1_p50 g1_p99 _ < <(measure http://127.0.0.1:41091/v1/chat/completions 1 1)

start_gateway "$governed_pack" 41092
read -r rps p50 p99 bad n64 < <(measure http://127.0.0.1:41092/v1/chat/completions 64 2)
printf "%-44s %12s %10s %10s %10s %8s\n" "gateway, seed multi-team pack (SQLite)" "$rps" "$p50" "$p99" "$(peak_rss_mb $gw) MB" "$bad"
read -r s1_rps s1_p50 s1_p99 _ n1 < <(measure http://127.0.0.1:41092/v1/chat/completions 1 1)
read -r rps p50 p99 bad nr64 < <(measure http://127.0.0.1:41092/v1/responses 64 2 responses.lua)
printf "%-44s %12s %10s %10s %10s %8s\n" "  the same, Responses API" "$rps" "$p50" "$p99" "$(peak_rss_mb $gw) MB" "$bad"
read -r r1_rps r1_p50 r1_p99 _ nr1 < <(measure http://127.0.0.1:41092/v1/responses 1 1 responses.lua)
read -r rps p50 p99 bad ne64 < <(measure http://127.0.0.1:41092/v1/embeddings 64 2 embeddings.lua)
printf "%-44s %12s %10s %10s %10s %8s\n" "  the same, embeddings (2 inputs)" "$rps" "$p50" "$p99" "$(peak_rss_mb $gw) MB" "$bad"
read -r e1_rps e1_p50 e1_p99 _ ne1 < <(measure http://127.0.0.1:41092/v1/embeddings 1 1 embeddings.lua)
rss=$(peak_rss_mb $gw)
# what each gateway answered, by verdict (explains any non-2xx above)
for port in 41091 41092; do
  echo "gateway on $port: $(curl -s "http://127.0.0.1:$port/metrics" | grep '^keeptrusts_requests_total' | sed -E 's/keeptrusts_requests_total//' | tr '\n' ' ')"
done >"$work/verdicts.txt"
# stop the governed gateway and check what it wrote: every request's event in one intact chain,
# the settlements in the wallet, nothing left reserved
kill -TERM "$gw"
wait "$gw" 2>/dev/null || true
governed_store="sqlite:$work/41092.db"

echo
printf "%-44s %10s %10s\n" "concurrency 1" "p50" "p99"
printf "%-44s %10s %10s\n" "direct to the mock provider" "$d1_p50" "$d1_p99"
printf "%-44s %10s %10s\n" "gateway, no policies" "$g1_p50" "$g1_p99"
printf "%-44s %10s %10s\n" "gateway, seed multi-team pack (SQLite)" "$s1_p50" "$s1_p99"
printf "%-44s %10s %10s\n" "  the same, Responses API" "$r1_p50" "$r1_p99"
printf "%-44s %10s %10s\n" "  the same, embeddings (2 inputs)" "$e1_p50" "$e1_p99"
echo "governed gateway peak RSS after all runs: $rss MB"
cat "$work/verdicts.txt"
echo "requests wrk saw answered by the governed gateway: $((n64 + n1 + nr64 + nr1 + ne64 + ne1)) (requests still in flight when wrk stopped are answered or given back after it)"
echo "governed store after shutdown: $("$kt" events verify --store "$governed_store")"
"$kt" wallet balance --store "$governed_store"
# what the gateways logged at warn level and above (a non-2xx answer is explained here)
for port in 41091 41092; do
  if grep -qE "WARN|ERROR" "$work/$port.log"; then
    echo "gateway on $port logged:"
    grep -E "WARN|ERROR" "$work/$port.log" | sed -E 's/request_id=[^ ]+ //; s/^[^ ]+ +//' | sort | uniq -c | sort -rn | head -10
  fi
done
