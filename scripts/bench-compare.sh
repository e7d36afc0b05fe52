#!/usr/bin/env bash
# Runs the side-by-side scenario of BENCHMARKS.md: wsguard and Centrifugo
# 6.9.1, 10,000 subscribers × 100 messages × 100 bytes, runs alternated
# between the two servers (which goes first swaps every round), for each
# publisher (http, socket) and each in-flight mode (1, 10). Each subscriber
# is a user of its own; the connection set-up is also measured with one
# user for all, and every scenario once more with the coder/websocket load
# client. Run it on a quiet machine: the load client and the server share
# the cores, so anything else running is noise in every figure.
#
# Raw output of every run goes to $OUT, one block per run; a line per run
# with the main figures goes to $OUT.tsv. The whole script is bounded by
# MAX_SECONDS and each run by RUN_MINUTES.
#
# Knobs (environment): CONNS MESSAGES SIZE RUNS CODER_RUNS ONE_USER_RUNS
# RUN_MINUTES MAX_SECONDS OUT CENTRIFUGO, PUBLISHERS and INFLIGHTS (the
# scenarios, space-separated), NODES (servers per run: with more than one,
# wsguard runs on PostgreSQL and Redis and Centrifugo on its Redis engine,
# at POSTGRES and REDIS when set, the bench's defaults otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS="${CONNS:-10000}"
MESSAGES="${MESSAGES:-100}"
SIZE="${SIZE:-100}"
RUNS="${RUNS:-3}"                   # per server, per scenario, gorilla client
CODER_RUNS="${CODER_RUNS:-1}"       # per server, per scenario, coder client
ONE_USER_RUNS="${ONE_USER_RUNS:-3}" # per server, http publisher, in flight 1
RUN_MINUTES="${RUN_MINUTES:-10}"    # the bench's own bound on one run
MAX_SECONDS="${MAX_SECONDS:-21600}" # no run starts after this many seconds
OUT="${OUT:-bench-compare-$(date -u +%Y%m%dT%H%M%SZ).txt}"
PUBLISHERS="${PUBLISHERS:-http socket}"
INFLIGHTS="${INFLIGHTS:-1 10}"
NODES="${NODES:-1}"
CENTRIFUGO_VERSION=v6.9.1

echo "== building wsguard"
bindir="$(mktemp -d)"
trap 'rm -rf "$bindir"' EXIT
bin="$bindir/wsguard"
go build -o "$bin" ./cmd/wsguard

gobin="$(go env GOBIN)"; gobin="${gobin:-$(go env GOPATH)/bin}"
CENTRIFUGO="${CENTRIFUGO:-$gobin/centrifugo}"
# go version -m reads the module version built in, which go install sets
# (the binary's own "version" output is only set by release builds).
if ! go version -m "$CENTRIFUGO" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+github.com/centrifugal/centrifugo/v6[[:space:]]+${CENTRIFUGO_VERSION}\b"; then
  echo "== installing Centrifugo $CENTRIFUGO_VERSION (go install, a few minutes)"
  timeout 20m go install "github.com/centrifugal/centrifugo/v6@${CENTRIFUGO_VERSION}"
  CENTRIFUGO="$gobin/centrifugo"
fi
go version -m "$CENTRIFUGO" | sed -n '1,2p'

# One socket per subscriber in each process (the load client's and the
# server's, which inherit this limit apart), plus some spare.
need=$((CONNS + 1000))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
  ulimit -n "$need" 2>/dev/null || { echo "ulimit -n is $(ulimit -n), need $need: raise it and run again" >&2; exit 1; }
fi

{
  echo "# bench-compare $(date -u +%FT%TZ)"
  echo "# $(uname -srm), $(nproc) CPUs, $(go version)"
  echo "# $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null || true)"
  echo "# $(git rev-parse --short HEAD 2>/dev/null || true) CONNS=$CONNS MESSAGES=$MESSAGES SIZE=$SIZE RUNS=$RUNS CODER_RUNS=$CODER_RUNS ONE_USER_RUNS=$ONE_USER_RUNS RUN_MINUTES=$RUN_MINUTES NODES=$NODES PUBLISHERS=$PUBLISHERS INFLIGHTS=$INFLIGHTS"
} >"$OUT"
printf 'run\ttarget\tnodes\tclient\tusers\tpublisher\tinflight\texit\tload\thandshakes_per_s\tsubscribes_per_s\tsetups_per_s\tidle_memory\tdeliveries_per_s\tcpu_per_delivery\tbacking_cpu_per_delivery\tlatency_p50_p99_max\n' >"$OUT.tsv"

began=$SECONDS
n=0
row() { # the value column of a bench output row
  grep -F "| $1 |" "$2" | head -1 | awk -F'|' '{gsub(/^ +| +$/, "", $3); print $3}'
}

# one TARGET CLIENT USERS PUBLISHER INFLIGHT: one run, appended to $OUT.
one() {
  local target=$1 client=$2 users=$3 publisher=$4 inflight=$5
  if (( SECONDS - began > MAX_SECONDS )); then
    echo "MAX_SECONDS ($MAX_SECONDS) reached: stopping before run $((n + 1))" | tee -a "$OUT"
    exit 2
  fi
  n=$((n + 1))
  local args=(bench --target "$target" --conns "$CONNS" --messages "$MESSAGES" --size "$SIZE"
    --inflight "$inflight" --publisher "$publisher" --client "$client" --timeout "${RUN_MINUTES}m" --nodes "$NODES")
  [ -n "${POSTGRES:-}" ] && args+=(--postgres "$POSTGRES")
  [ -n "${REDIS:-}" ] && args+=(--redis "$REDIS")
  [ "$target" = centrifugo ] && args+=(--centrifugo "$CENTRIFUGO")
  [ "$users" = one ] && args+=(--one-user)
  local log; log="$(mktemp)"
  echo "== run $n: $target ($NODES node(s)), $client, $users user(s), $publisher publisher, in flight $inflight"
  local rc=0
  # The load average as the run starts: what else the machine was doing.
  local load; load="$(cut -d' ' -f1 /proc/loadavg)"
  # The bench bounds itself; timeout is the backstop if it does not.
  timeout --kill-after=30s "$((RUN_MINUTES * 60 + 60))s" "$bin" "${args[@]}" >"$log" 2>&1 || rc=$?
  {
    echo
    echo "=== run $n target=$target client=$client users=$users publisher=$publisher inflight=$inflight exit=$rc $(date -u +%FT%TZ)"
    cat "$log"
  } >>"$OUT"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$target" "$NODES" "$client" "$users" "$publisher" "$inflight" "$rc" "$load" \
    "$(row 'handshakes per second' "$log")" "$(row 'subscribes per second' "$log")" "$(row 'connection set-ups per second (handshake + subscribe)' "$log")" \
    "$(row 'idle memory per connection (server RSS)' "$log")" "$(row 'deliveries per second' "$log")" "$(row 'server CPU per delivery' "$log")" \
    "$(row 'PostgreSQL and Redis CPU per delivery' "$log")" "$(row 'delivery latency p50 / p99 / max' "$log")" >>"$OUT.tsv"
  tail -n 1 "$OUT.tsv"
  rm -f "$log"
}

# pair CLIENT USERS PUBLISHER INFLIGHT ROUND: both servers, the order
# swapped every round so that neither always runs on a warmer machine.
pair() {
  if (( $5 % 2 )); then
    one wsguard "$1" "$2" "$3" "$4"; one centrifugo "$1" "$2" "$3" "$4"
  else
    one centrifugo "$1" "$2" "$3" "$4"; one wsguard "$1" "$2" "$3" "$4"
  fi
}

for publisher in $PUBLISHERS; do
  for inflight in $INFLIGHTS; do
    for ((r = 1; r <= RUNS; r++)); do pair gorilla distinct "$publisher" "$inflight" "$r"; done
    for ((r = 1; r <= CODER_RUNS; r++)); do pair coder distinct "$publisher" "$inflight" "$r"; done
  done
done
for ((r = 1; r <= ONE_USER_RUNS; r++)); do pair gorilla one http 1 "$r"; done

echo "== done: $n runs in $((SECONDS - began)) s; raw output in $OUT, one line per run in $OUT.tsv"
