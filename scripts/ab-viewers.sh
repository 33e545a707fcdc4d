#!/usr/bin/env bash
# What dashboard viewers cost the proxy (issue 13): one router with
# admin.auth (mockoidc, from scripts/dashviewers) serves HTTP/1.1
# keep-alive load from wrk while 0 or VIEWERS (10) dashboards watch its
# app: each loaded the page, reloads its data every POLL (1 s; the page
# does every 10 s: this puts reloads inside every run) and streams the
# app's live router lines over server-sent events. The two cases alternate
# within each round on the same router process, so the drift of this noisy
# VM hits both alike. Per case: req/s, µs of router CPU per request (perf
# stat task-clock when perf is there, else /proc ticks), p50/p99 from wrk.
#
#   scripts/ab-viewers.sh [ROUTER_BINARY]          # default: built from this tree
#   ROUNDS=8 CONNS=32 scripts/ab-viewers.sh
#
# The router is pinned to CPU 1 with GOMAXPROCS=1; wrk (1 thread),
# peerbench's backend, the provider and the viewers share CPU 0, so the
# viewers' own reading is not in the router's figure. Knobs: CONNS (32),
# DURATION (4 s), ROUNDS (6), VIEWERS (10), POLL (1s), LOG (file: router lines to a
# file; off: /dev/null). Traffic stays on 127.0.0.1.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
conns="${CONNS:-32}" dur="${DURATION:-4}" rounds="${ROUNDS:-6}" viewers="${VIEWERS:-10}" poll="${POLL:-1s}" logmode="${LOG:-file}"
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
	PATH="/usr/local/go/bin:$PATH"
fi
for tool in wrk taskset curl; do
	command -v "$tool" >/dev/null || { echo "ab-viewers: $tool is not installed" >&2; exit 1; }
done

work="$(mktemp -d)"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

backend_port=18280 proxy_port=18290 admin_port=18298 idp_port=18299
(cd "$root/../shared/peerbench/backend" && go build -o "$work/backend" .)
(cd "$root" && go build -tags dashviewers -o "$work/dashviewers" ./scripts/dashviewers)
router="${1:-}"
if [[ -z "$router" ]]; then
	(cd "$root" && go build -trimpath -o "$work/spacerouter" ./cmd/spacerouter)
	router="$work/spacerouter"
fi
GOMAXPROCS=1 taskset -c 0 "$work/backend" -addr "127.0.0.1:$backend_port" -size 64 >/dev/null 2>&1 &
pids+=($!)
GOMAXPROCS=1 taskset -c 0 "$work/dashviewers" idp -addr "127.0.0.1:$idp_port" -dir "$work" &
pids+=($!)
for _ in $(seq 50); do [[ -s "$work/env" ]] && break; sleep 0.1; done
# shellcheck disable=SC1091
source "$work/env"

log="$work/router.log"
[[ "$logmode" == off ]] && log=/dev/null
cat >"$work/space.yaml" <<YAML
space: ab
listen: {http: "127.0.0.1:$proxy_port", admin: "127.0.0.1:$admin_port"}
log: {router: "$log", level: warn}
limits: {concurrency_per_dyno: 100000, requests_per_client: 100000, connections_per_client: 10000}
admin:
  auth:
    issuer: "$ISSUER"
    client_id: "$CLIENT_ID"
    client_secret_file: "$work/secret"
    redirect_url: "http://127.0.0.1:$admin_port/auth/callback"
    roles: [{group: ops, role: admin}]
apps:
  - name: bench
    domains: [localhost]
    dynos: [{name: web.1, address: "127.0.0.1:$backend_port"}]
YAML
GOMAXPROCS=1 taskset -c 1 "$router" -config "$work/space.yaml" 2>"$work/router.err" &
rp=$!
pids+=($rp)
url="http://127.0.0.1:$proxy_port/"
for _ in $(seq 50); do
	curl -s -o /dev/null -H 'Host: localhost' "$url" 2>/dev/null && break
	sleep 0.1
done
curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$admin_port/api/apps" ||
	{ echo "ab-viewers: the admin API refuses the token: $(cat "$work/router.err")" >&2; exit 1; }
taskset -c 0 wrk -t1 -c"$conns" -d1 -H 'Host: localhost' "$url" >/dev/null

cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' "/proc/$1/stat"; }

# measure N: one wrk run with N viewers watching.
measure() {
	local n=$1 vp="" before after ms reqs rps p50 p99 more ps=""
	if ((n > 0)); then
		GOMAXPROCS=1 taskset -c 0 "$work/dashviewers" view -admin "http://127.0.0.1:$admin_port" -token "$TOKEN" \
			-app bench -n "$n" -poll "$poll" >"$work/view.out" 2>&1 &
		vp=$!
		for _ in $(seq 100); do grep -q ready "$work/view.out" && break; sleep 0.05; done
		grep -q ready "$work/view.out" || { echo "ab-viewers: viewers did not start: $(cat "$work/view.out")" >&2; exit 1; }
	fi
	before=$(cpu_ms "$rp")
	if command -v perf >/dev/null 2>&1; then
		perf stat -e task-clock -p "$rp" -o "$work/perf.txt" -- sleep "$dur" 2>/dev/null &
		ps=$!
	fi
	read -r reqs rps p50 p99 more < <(taskset -c 0 wrk -t1 -c"$conns" -d"$dur" --latency -H 'Host: localhost' "$url" | awk '
		/requests in/ {n = $1} /Requests\/sec/ {r = $2} $1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2}
		/Non-2xx/ {bad = $NF} END {print n, r, p50, p99, bad ? "non-2xx=" bad : ""}')
	after=$(cpu_ms "$rp")
	ms=$((after - before))
	if [[ -n "$ps" ]] && wait "$ps" && grep -q task-clock "$work/perf.txt"; then
		pms=$(awk '/task-clock/ {gsub(",", "", $1); print $1}' "$work/perf.txt")
		if awk -v p="$pms" -v t="$ms" 'BEGIN {exit !(p > t / 2)}'; then ms=$pms; fi
	fi
	if [[ -n "$vp" ]]; then
		kill "$vp"
		wait "$vp" 2>/dev/null || true
		more="${more:+$more }$(tail -n 1 "$work/view.out")"
	fi
	printf '%-8s %5s %10s %10.2f %9s %9s %s\n' "$n" "$conns" "$rps" \
		"$(awk -v ms="$ms" -v n="$reqs" 'BEGIN {print ms * 1000 / n}')" "$p50" "$p99" "${more:-}"
}

printf '%-8s %5s %10s %10s %9s %9s %s\n' viewers conns req/s us_cpu/req p50 p99 more
for round in $(seq "$rounds"); do
	if ((round % 2)); then order="0 $viewers"; else order="$viewers 0"; fi
	for n in $order; do measure "$n"; done
done
