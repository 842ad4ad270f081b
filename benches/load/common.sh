# Shared by run.sh and compare.sh (sourced after they set $kt, $work and pids=()).

cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }

peak_rss_mb() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# seed_org STORE: the engineering team, its member dev@yourco.com with a key (exported as KT_KEY)
# and a wallet no load runs dry.
seed_org() {
  local store=$1
  "$kt" team create --name Engineering --store "$store" >/dev/null
  "$kt" team add-member --team engineering --email dev@yourco.com --store "$store" >/dev/null
  "$kt" wallet allocate --team engineering --amount 1000000000 --store "$store" >/dev/null
  KT_KEY=$("$kt" key create --team engineering --email dev@yourco.com --store "$store" | head -1)
  export KT_KEY
}

# wait_listening NAME PORT PID TRIES: waits (0.1 s a try) until the gateway PID logs that it listens
# on PORT; exits with its log if it stops first.
wait_listening() {
  local name=$1 port=$2 pid=$3 tries=$4
  for _ in $(seq "$tries"); do
    grep -q "listening on" "$work/$port.log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { echo "$name: the gateway on $port exited:" >&2; cat "$work/$port.log" >&2; exit 1; }
    sleep 0.1
  done
}
