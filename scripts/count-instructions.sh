#!/bin/sh
# count-instructions.sh BINARY BENCH N1 N2 [PATTERN...]
#
# Instructions per benchmark op, counted by valgrind's callgrind, so that
# the figure does not depend on what else the machine is running:
#   (Ir at -test.benchtime N2x - Ir at N1x) / (N2 - N1)
# The difference removes the set-up the two runs share. With PATTERNs only
# the code inside the matching functions is counted (callgrind
# --toggle-collect); that is exact only for a benchmark whose loop does not
# switch goroutines. Without, the whole program is counted, the Go
# scheduler's idle spinning included: expect about ±10% from run to run,
# less with CPU=1. BINARY is a test binary (go test -c -o BINARY ./pkg).
# Asynchronous preemption is switched off: callgrind does not survive its
# signals.
set -eu
[ $# -ge 4 ] || { echo "usage: $0 BINARY BENCH N1 N2 [PATTERN...]" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "$0: install valgrind (apt-get install valgrind)" >&2; exit 1; }
bin=$1 bench=$2 n1=$3 n2=$4
shift 4
tog=""
for t in "$@"; do tog="$tog --toggle-collect=$t"; done
ir() {
	# shellcheck disable=SC2086 # $tog is a list of options
	GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind $tog --callgrind-out-file=/dev/null \
		"$bin" -test.run '^$' -test.bench "$bench" -test.benchtime "${1}x" -test.cpu "${CPU:-2}" 2>&1 >/dev/null |
		sed -n 's/.*Collected : //p'
}
a=$(ir "$n1")
b=$(ir "$n2")
echo "$bench: Ir($n1)=$a Ir($n2)=$b per op=$(((b - a) / (n2 - n1)))"
