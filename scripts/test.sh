#!/usr/bin/env bash
# Runs every wsguard test: formatting, vet, unit and integration tests with
# the race detector, the headless-Chromium browser tests, and a short run of
# every fuzz target on its seed corpus. Browser tests are never skipped: this
# script installs Debian's chromium when it can, and stops otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

need_chromium() {
  for c in chromium chromium-browser google-chrome; do
    if command -v "$c" >/dev/null 2>&1; then return 0; fi
  done
  return 1
}

if ! need_chromium; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Debian's chromium for the browser tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is required for the browser tests: install it (Debian: sudo apt-get install chromium) and run again" >&2
    exit 1
  fi
fi
# Python's websockets library reads our frames in the interop tests: a
# client nobody here wrote.
if ! /usr/bin/python3 -c 'import websockets' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Debian's python3-websockets for the interop tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-websockets >/dev/null
  else
    echo "python3-websockets is required for the interop tests: install it (Debian: sudo apt-get install python3-websockets) and run again" >&2
    exit 1
  fi
fi
export CHROME_BIN="${CHROME_BIN:-$(command -v chromium || command -v chromium-browser || command -v google-chrome)}"

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "not gofmt'd:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== gosec"
# Pinned: a new gosec release may add rules; bump deliberately. Every
# finding is fixed or carries "#nosec Gxxx -- reason" at its line.
GOSEC_VERSION=v2.22.11
go install "github.com/securego/gosec/v2/cmd/gosec@${GOSEC_VERSION}"
gobin="$(go env GOBIN)"; gobin="${gobin:-$(go env GOPATH)/bin}"
"$gobin/gosec" -exclude-generated -quiet ./...

echo "== go test -race"
go test -race -count=1 -timeout 20m ./...

echo "== fuzz targets (10s each)"
fuzzlog="$(mktemp)"
trap 'rm -f "$fuzzlog"' EXIT
for pkg in $(go list ./...); do
  for f in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "-- $pkg $f"
    # Quiet when it passes; on failure show why (a crasher is also saved
    # under the package's testdata/fuzz, to commit as a regression seed).
    if ! go test -run '^$' -fuzz "^${f}\$" -fuzztime 10s "$pkg" >"$fuzzlog" 2>&1; then
      tail -n 60 "$fuzzlog"; exit 1
    fi
  done
done
echo "all tests passed"
