#!/usr/bin/env bash
# Produces BENCHMARKS.md: spacerouter side by side with nginx, HAProxy, Caddy,
# Go's ReverseProxy and direct, measured by ../shared/peerbench on this
# machine (HTTP/1.1 at 1, 32 and 256 connections with and without the access
# log, HTTPS, HTTP/2, full TLS handshakes, 2000 idle connections).
#
#   scripts/bench-peers.sh                       # the full run (~25 min)
#   ROUNDS=1 DURATION=3 scripts/bench-peers.sh   # a quick look
#   SUMMARY=DIR/summary.md ROUTER_VERSION=abc123 scripts/bench-peers.sh
#                                                # rewrite the file from a finished run
#
# scripts/bench-peers-notes.md (where spacerouter stands against its goals,
# with the profile that says why) goes between the header and the tables.
#
# peerbench's knobs pass through (see ../shared/peerbench/README.md). Needs
# the Debian packages nginx haproxy caddy wrk nghttp2-client.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export ROUNDS="${ROUNDS:-3}" DURATION="${DURATION:-5}" WARMUP="${WARMUP:-1}"
export OUTDIR="${OUTDIR:-$(mktemp -d)}"
out="${BENCHMARKS_FILE:-$root/BENCHMARKS.md}"
cmd="ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP${SCENARIOS:+ SCENARIOS=\"$SCENARIOS\"} scripts/bench-peers.sh"
summary="${SUMMARY:-}"
if [[ -z "$summary" ]]; then
	"$root/scripts/peerbench.sh"
	summary="$OUTDIR/summary.md"
fi
{
	echo "# spacerouter next to its peers"
	echo
	echo "Produced by \`$cmd\` (it wraps \`../shared/peerbench\` through"
	echo "\`scripts/peerbench.sh\`; re-run it to refresh this file). spacerouter version: ${ROUTER_VERSION:-$(git -C "$root" describe --always --dirty)}."
	echo
	echo "How to read it: the proxy under test has one core to itself; the load generator and the"
	echo "backend share the other. Compare **µs of proxy CPU per request** and **req/s per proxy"
	echo "core**: they do not depend on which side saturates. This 2-vCPU VM varies by about ±30 %"
	echo "from run to run, so only differences beyond that are meaningful. The router runs one app"
	echo "on \`localhost\` (features omitted: the salesforce profile) with the access log where"
	echo "peerbench points it; \`limits.concurrency_per_dyno\` is raised so 256 connections to one"
	echo "dyno are not answered with H11. peerbench's OpenSSL check connects without SNI, which the"
	echo "router refuses by design, so its row there reads (NONE). The peers write one access-log"
	echo "line per request with one \`write(2)\` each; spacerouter writes its router lines in batches"
	echo "(one \`write(2)\` per round of the Go scheduler under load; README, *The router line*), so"
	echo "the \`http-nolog\` rows compare the proxying alone."
	echo
	if [[ -f "$root/scripts/bench-peers-notes.md" ]]; then
		cat "$root/scripts/bench-peers-notes.md"
		echo
	fi
	sed 's/^# peerbench run .*/## The run/' "$summary"
} >"$out"
echo "wrote $out"
