#!/usr/bin/env bash
# User-space instructions per request of `kairos serve`, counted by valgrind's callgrind: the
# same for the same code and inputs whatever else the machine does (CPU µs/request is not).
#
#   bench/count_instructions.sh CONFIG PORT [PATH]        # e.g. bench/configs/bare.yaml 27090
#   bench/count_instructions.sh --command 'CMD' PORT [PATH]   # any proxy, e.g. the aiohttp anchor
#
# Needs valgrind, hey and a backend where CONFIG points (../shared/bench/proxy_anchors.sh starts
# one on 127.0.0.1:27080). Serves N=1000 and N=4000 requests (hey -c 10) in two runs under
# callgrind and prints (I(4000) - I(1000)) / 3000, so start-up cancels out. Set ROOT to measure
# another checkout (a git worktree) with the same venv.
set -euo pipefail
root=${ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
if [[ $1 == --command ]]; then  # from here on, as in the first form: $1 what to run, $2 port
  shift
  read -r -a server <<<"$1"; label=$1
else
  kairos=${KAIROS:-$(command -v kairos || true)}
  [[ -n $kairos ]] || { echo "no kairos on PATH: activate the venv or set KAIROS" >&2; exit 2; }
  config=$(realpath "$1"); server=("$kairos" serve --config "$config"); label="$config, $root"
fi
port=$2; path=${3:-/api/item?id=1}
pythonpath="$root:$(printf '%s:' "$root"/plugins/*/)"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

count() {  # $1 = requests; prints the instructions callgrind collected over the whole run
  (cd "$root" && PYTHONPATH=$pythonpath PYTHONHASHSEED=0 valgrind --tool=callgrind \
    --callgrind-out-file="$scratch/out.$1" "${server[@]}" >"$scratch/log.$1" 2>&1) &
  local pid=$!
  for _ in $(seq 600); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port$path" 2>/dev/null && break
    sleep 0.5
  done
  hey -n "$1" -c 10 "http://127.0.0.1:$port$path" >"$scratch/hey.$1"
  grep -q "\[200\].*$1 responses" "$scratch/hey.$1" || { echo "not every answer was 200:" >&2; cat "$scratch/hey.$1" >&2; }
  pkill -INT -f "callgrind-out-file=$scratch/out.$1" || true
  wait "$pid" || true
  grep -o "Collected : [0-9]*" "$scratch/log.$1" | awk '{print $3}'
}

small=$(count 1000)
large=$(count 4000)
echo "$(( (large - small) / 3000 )) instructions per request ($label)"
