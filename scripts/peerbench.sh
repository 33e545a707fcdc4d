#!/usr/bin/env bash
# Runs ../shared/peerbench with spacerouter plugged in as ROUTER_CMD and
# prints its summary. peerbench's own knobs pass through, e.g.
#   SCENARIOS="http mem" ROUNDS=3 scripts/peerbench.sh
#   DURATION=3 ROUNDS=1 SCENARIOS=http CONNS=32 scripts/peerbench.sh   # quick look
#   ROUTER_BIN=/tmp/bins/router-adbfa06 scripts/peerbench.sh   # a build other than this tree
# peerbench needs nginx haproxy caddy wrk nghttp2-client (Debian packages).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="${PEERBENCH_DIR:-$root/../shared/peerbench}"
[[ -x "$src/run.sh" ]] || { echo "no peerbench at $src (set PEERBENCH_DIR)" >&2; exit 1; }
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
	PATH="/usr/local/go/bin:$PATH"
fi
# shared/ is read-only: run a copy, keep its results beside the repo.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$src/." "$work/"
chmod -R u+w "$work"
if [[ -n "${ROUTER_BIN:-}" ]]; then
	cp "$ROUTER_BIN" "$work/spacerouter"   # another build, e.g. a "before"
else
	(cd "$root" && go build -trimpath -o "$work/spacerouter" ./cmd/spacerouter)
fi
export SPACEROUTER_BIN="$work/spacerouter"
export ROUTER_HOSTNAME=localhost
export ROUTER_TLS="${ROUTER_TLS:-1}" ROUTER_H2="${ROUTER_H2:-1}"
export ROUTER_CMD="$root/scripts/peerbench-router.sh"
export OUTDIR="${OUTDIR:-$root/bench/results/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUTDIR"
"$work/run.sh"
echo "results: $OUTDIR"
