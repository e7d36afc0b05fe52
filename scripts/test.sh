#!/usr/bin/env bash
# Runs every wsguard test: formatting, vet, staticcheck, gosec, unit and
# integration tests with the race detector, the headless-Chromium browser
# tests, and a short run of every fuzz target on its seed corpus. Browser
# tests are never skipped.
#
# What it fetches, only when missing, and says so as it does:
#   - Debian packages chromium (browser tests), python3-websockets
#     (interop tests), postgresql (store tests; started, and opened to
#     user postgres from 127.0.0.1, only when this script installed it),
#     redis-server (broker and cluster-limit tests; started when none
#     answers on 127.0.0.1:6379 and it may) and systemd (systemd-analyze
#     checks the unit in deploy/), with apt-get when run as root;
#   - the npm packages locked in each package-lock.json of the repository
#     (Node `ws` and friends for the interop tests), with npm ci;
#   - the Go modules of go.mod (the server and its tests) and of tools.mod
#     (gosec and staticcheck, pinned there), from GOPROXY into the module
#     cache; each download is listed.
# Once those are present it needs no network: the tools are built from the
# module cache by `go tool` and never installed into GOPATH/bin.
set -euo pipefail
cd "$(dirname "$0")/.."

scratch="$(mktemp)"
trap 'rm -f "$scratch"' EXIT

have_chromium() {
  for c in chromium chromium-browser google-chrome; do
    if command -v "$c" >/dev/null 2>&1; then return 0; fi
  done
  return 1
}

# apt_install PKG WHY installs a Debian package, or stops with the command
# that would.
apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== fetching: apt-get install $1 ($2)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
  else
    echo "$1 is required for $2: install it (Debian: sudo apt-get install $1) and run again" >&2
    exit 1
  fi
}

if ! have_chromium; then
  apt_install chromium "the browser tests"
fi
# Python's websockets library reads our frames in the interop tests: a
# client nobody here wrote.
if ! /usr/bin/python3 -c 'import websockets' >/dev/null 2>&1; then
  apt_install python3-websockets "the interop tests"
fi

# systemd's own checker verifies deploy/wsguard.service (deploy/systemd_test.go).
if ! command -v systemd-analyze >/dev/null 2>&1; then
  apt_install systemd "the systemd unit check (systemd-analyze verify)"
fi

# PostgreSQL: the store suite, the two-node tests and the shared-store
# server tests run against a real server (each test creates a database of
# its own and drops it). WSGUARD_TEST_POSTGRES names another admin URL. On
# a fresh Debian machine, as root, install and start Debian's package and
# let user postgres in from 127.0.0.1 without a password (only when this
# script installed it: an existing server's access rules are left alone).
pg_url="${WSGUARD_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
pg_ok() { command -v psql >/dev/null 2>&1 && psql "$pg_url" -qtAc 'SELECT 1' >/dev/null 2>&1; }
if ! pg_ok; then
  if [ -z "${WSGUARD_TEST_POSTGRES:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    pg_installed=""
    if ! ls -d /etc/postgresql/*/main >/dev/null 2>&1; then
      apt_install postgresql "the PostgreSQL store tests"
      pg_installed=1
    fi
    pg_ver=$(ls /etc/postgresql | sort -V | tail -n 1)
    echo "== starting PostgreSQL $pg_ver (pg_ctlcluster)"
    pg_ctlcluster --skip-systemctl-redirect "$pg_ver" main start 2>/dev/null || true
    pg_hba="/etc/postgresql/$pg_ver/main/pg_hba.conf"
    if [ -n "$pg_installed" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$pg_hba"; then
      echo "== test machine: user postgres may connect from 127.0.0.1 without a password ($pg_hba)"
      sed -i '1i host all all 127.0.0.1/32 trust' "$pg_hba"
      pg_ctlcluster --skip-systemctl-redirect "$pg_ver" main reload
    fi
    for _ in $(seq 1 30); do pg_ok && break; sleep 1; done
  fi
  if ! pg_ok; then
    echo "PostgreSQL is required for the store tests and is not reachable at ${pg_url%%\?*}:" >&2
    echo "  install and start it (Debian: sudo apt-get install postgresql; sudo pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start)," >&2
    echo "  let user postgres connect from 127.0.0.1 (pg_hba.conf: host all all 127.0.0.1/32 trust)," >&2
    echo "  or set WSGUARD_TEST_POSTGRES to the admin URL of a server the tests may create databases on" >&2
    exit 1
  fi
fi

# Redis carries events and limits between nodes; its tests use the Redis at
# 127.0.0.1:6379 (or WSGUARD_TEST_REDIS=HOST:PORT), each under a prefix of
# its own, and start private redis-server processes for outage tests.
redis_addr="${WSGUARD_TEST_REDIS:-127.0.0.1:6379}"
redis_host="${redis_addr%:*}"
redis_port="${redis_addr##*:}"
redis_up() {
  command -v redis-cli >/dev/null 2>&1 &&
    [ "$(redis-cli -h "$redis_host" -p "$redis_port" ping 2>/dev/null)" = PONG ]
}
if ! command -v redis-server >/dev/null 2>&1; then
  apt_install redis-server "the Redis broker and cluster-limit tests"
fi
if ! redis_up; then
  if [ -z "${WSGUARD_TEST_REDIS:-}" ] && [ "$(id -u)" = 0 ]; then
    echo "== starting redis-server on 127.0.0.1:6379 (no persistence) for the tests"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    for _ in $(seq 50); do redis_up && break; sleep 0.1; done
  fi
  if ! redis_up; then
    echo "Redis does not answer at $redis_addr: start one (Debian: sudo apt-get install redis-server;" \
      "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no)" \
      "or set WSGUARD_TEST_REDIS=HOST:PORT, and run again" >&2
    exit 1
  fi
fi

# Node packages that tests use as clients and servers nobody here wrote
# (the `ws` package) and to check the browser client's types: every folder
# with a package-lock.json gets `npm ci`, exactly the locked versions.
if locks=$(git ls-files '*package-lock.json' 2>/dev/null) && [ -n "$locks" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    apt_install npm "the Node.js interop tests"
  fi
  for lock in $locks; do
    dir=$(dirname "$lock")
    echo "== npm ci in $dir (from $(npm config get registry) when missing)"
    if ! npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >"$scratch" 2>&1; then
      cat "$scratch" >&2
      echo "npm ci failed in $dir: run it there with access to the npm registry" >&2
      exit 1
    fi
  done
fi

# go mod download -x logs each network request as "# get URL: STATUS";
# with everything in the module cache it makes none.
for modfile in go.mod tools.mod; do
  echo "== Go modules of $modfile: go mod download (from $(go env GOPROXY) when missing)"
  if ! go mod download -modfile="$modfile" -x >"$scratch" 2>&1; then
    cat "$scratch" >&2
    echo "could not download the modules of $modfile: run once with network access (GOPROXY=$(go env GOPROXY))" >&2
    exit 1
  fi
  fetched=$(sed -n 's/^# get \(.*\): \([0-9][0-9]*\).*/  fetched \1 (\2)/p' "$scratch")
  if [ -n "$fetched" ]; then echo "$fetched"; else echo "  nothing to fetch: all in $(go env GOMODCACHE)"; fi
done
echo "== go mod verify, go mod tidy"
go mod verify
go mod verify -modfile=tools.mod >/dev/null
# go.mod says exactly what the code imports, direct and indirect marked
# right; prints the change to make when it does not.
go mod tidy -diff

export CHROME_BIN="${CHROME_BIN:-$(command -v chromium || command -v chromium-browser || command -v google-chrome)}"

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "not gofmt'd:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

# The linters are pinned in tools.mod, apart from go.mod so that their
# dependencies never change the versions the server is built with. A new
# release may add checks: bump deliberately
# (go get -modfile=tools.mod -tool PKG@VERSION).
echo "== staticcheck"
go tool -modfile=tools.mod staticcheck ./...

echo "== gosec"
# Every finding is fixed or carries "#nosec Gxxx -- reason" at its line.
go tool -modfile=tools.mod gosec -exclude-generated -quiet ./...

echo "== go test -race"
go test -race -count=1 -timeout 40m ./...

# The Go client is a module of its own (so that importing it pulls in
# none of the server's dependencies); ./... above does not reach it. Its
# tests build the server from this repository and run it as a process.
echo "== Go client module (clients/go): tidy, vet, staticcheck, gosec, go test -race"
(
  cd clients/go
  go mod download -x >"$scratch" 2>&1 || { cat "$scratch" >&2; echo "could not download the modules of clients/go/go.mod" >&2; exit 1; }
  go mod verify >/dev/null
  go mod tidy -diff
  go vet ./...
  go tool -modfile=../../tools.mod staticcheck ./...
  go tool -modfile=../../tools.mod gosec -exclude-generated -quiet ./...
  go test -race -count=1 -timeout 10m ./...
)

echo "== fuzz targets (10s each)"
for pkg in $(go list ./...); do
  for f in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "-- $pkg $f"
    # Quiet when it passes; on failure show why (a crasher is also saved
    # under the package's testdata/fuzz, to commit as a regression seed).
    if ! go test -run '^$' -fuzz "^${f}\$" -fuzztime 10s "$pkg" >"$scratch" 2>&1; then
      # Some failures are the fuzzing engine's, not the code's, and leave no
      # input to blame: a worker lost before it reaches F.Fuzz ("terminated
      # without fuzzing") or to a signal from the kernel, and Go 1.26's race
      # at the -fuzztime deadline (golang/go#75804: the target fails with a
      # bare "context deadline exceeded" just as its time runs out). Say so
      # and run the target once more, counting executions rather than time
      # (a count has no deadline to race). A failure with an input is never
      # retried.
      if ! grep -q 'Failing input written to' "$scratch" &&
         { grep -q -e 'fuzzing process terminated without fuzzing' \
                   -e 'terminated by unexpected signal; no crash will be recorded' "$scratch" ||
           grep -A1 -e "^--- FAIL: $f " "$scratch" | grep -qx '    context deadline exceeded'; }; then
        execs=$(grep -o 'execs: [0-9]*' "$scratch" | tail -n 1 | grep -o '[0-9]*' || true)
        budget="${execs:-0}x"
        if [ "${execs:-0}" -lt 1000 ]; then budget=100000x; fi
        echo "   the fuzzing engine failed without an input to blame; running $f again for $budget executions:"
        grep -e 'terminated' -e 'context deadline exceeded' "$scratch" | sed 's/^/   /'
        if go test -run '^$' -fuzz "^${f}\$" -fuzztime "$budget" "$pkg" >"$scratch" 2>&1; then
          continue
        fi
      fi
      tail -n 60 "$scratch"; exit 1
    fi
  done
done
echo "all tests passed"
