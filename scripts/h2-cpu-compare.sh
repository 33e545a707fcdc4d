#!/usr/bin/env bash
# Compares the server CPU per request of router/h2's Conn (h2spectarget)
# and golang.org/x/net/http2's Server (xnettarget) under h2load, in
# interleaved rounds. Small load: N requests, C connections, M streams.
#
#   scripts/h2-cpu-compare.sh [rounds]    (N=100000 C=4 M=16 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
N=${N:-100000} C=${C:-4} M=${M:-16}
command -v h2load >/dev/null || { echo "h2load (nghttp2) not found" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/spacerouter" ./router/h2/internal/h2spectarget
go build -o "$dir/xnet" ./router/h2/internal/xnettarget
tck=$(getconf CLK_TCK)
run() { # name port
	"$dir/$1" -addr "127.0.0.1:$2" >/dev/null 2>&1 &
	local pid=$!
	for _ in $(seq 50); do h2load -n 10 -c 1 "https://127.0.0.1:$2/" >/dev/null 2>&1 && break; sleep 0.1; done
	h2load -n 2000 -c "$C" -m "$M" "https://127.0.0.1:$2/" >/dev/null 2>&1
	read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
	local out
	out=$(h2load -n "$N" -c "$C" -m "$M" "https://127.0.0.1:$2/" 2>&1 | grep -E "^finished in" || true)
	read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
	kill "$pid"; wait "$pid" 2>/dev/null || true
	awk -v n="$1" -v t=$((u1 - u0 + s1 - s0)) -v hz="$tck" -v req="$N" -v o="$out" \
		'BEGIN { printf "%-12s server CPU %6.2f us/request   (%s)\n", n, t / hz * 1e6 / req, o }'
}
for _ in $(seq "$rounds"); do
	run spacerouter 18450
	run xnet 18451
done
