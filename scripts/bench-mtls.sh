#!/usr/bin/env bash
# Issue 11: what a verified client certificate costs the router
# (scripts/bench-peers-notes.md, "Issue 11: what a verified client costs").
#
# One router, two apps on the same dyno and the same RSA-2048 server
# certificate: "plain" (no mtls) and "priv" (mtls: require, a certificate of
# the space CA made with spacerouter ca). spacebench loads each over HTTPS in
# turn, interleaved, ROUNDS times, in two ways:
#
#   keepalive  -c CONNS keep-alive HTTP/1.1 connections: the per-request cost
#              (a client certificate is verified once per connection)
#   handshake  -c CONNS with Connection: close, no session resumption: a full
#              TLS 1.3 handshake per request, with or without the client
#              certificate
#
# For each run it reports req/s and the router's CPU per request (perf stat
# task-clock on the router's PID, divided by spacebench's request count),
# then the medians. The router is pinned to ROUTER_CPU with GOMAXPROCS=1; the
# backend (peerbench's, 64-byte body) and spacebench share CLIENT_CPU.
#
# Needs: go, openssl, taskset, jq, perf (falls back to /proc utime+stime),
# ../shared/peerbench/backend. Stops only the processes it started, by PID.
#
#   ROUNDS=5 DURATION=5 CONNS=32 scripts/bench-mtls.sh
#   SERVER_KEY=ec SCENARIOS=handshake scripts/bench-mtls.sh   # an ECDSA P-256 server certificate
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-5}"
CONNS="${CONNS:-32}"
ROUTER_CPU="${ROUTER_CPU:-1}"
CLIENT_CPU="${CLIENT_CPU:-0}"
PEERBENCH="${PEERBENCH:-../shared/peerbench}"
HTTP_PORT="${HTTP_PORT:-18180}"
HTTPS_PORT="${HTTPS_PORT:-18543}"
BACKEND_PORT="${BACKEND_PORT:-18181}"
SERVER_KEY="${SERVER_KEY:-rsa}" # rsa (RSA-2048, as peerbench) or ec (ECDSA P-256)
SCENARIOS="${SCENARIOS:-keepalive handshake}"

work="$(mktemp -d)"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

echo "== building into $work" >&2
go build -o "$work/spacerouter" ./cmd/spacerouter
go build -o "$work/spacebench" ./cmd/spacebench
(cd "$PEERBENCH/backend" && go build -o "$work/backend" .)

cd "$work"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=bench root" \
	-addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign \
	-keyout root-key.pem -out root.pem >/dev/null 2>&1
case "$SERVER_KEY" in
rsa) newkey=(-newkey rsa:2048) ;;
ec) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
*) echo "SERVER_KEY=$SERVER_KEY: want rsa or ec" >&2; exit 2 ;;
esac
openssl req "${newkey[@]}" -nodes -subj "/CN=plain.test" -keyout server-key.pem -out server.csr >/dev/null 2>&1
openssl x509 -req -in server.csr -CA root.pem -CAkey root-key.pem -days 30 -out server-leaf.pem \
	-extfile <(printf 'subjectAltName=DNS:plain.test,DNS:priv.test\nextendedKeyUsage=serverAuth') >/dev/null 2>&1
cat server-leaf.pem root.pem >server.pem
cat >space.yaml <<YAML
space: bench
listen:
  http: 127.0.0.1:${HTTP_PORT}
  https: 127.0.0.1:${HTTPS_PORT}
log:
  router: router.log
  level: warn
limits:
  concurrency_per_dyno: 100000
space_ca:
  cert: ca/space-ca.pem
  key: ca/space-ca-key.pem
  state_dir: ca/state
apps:
  - name: plain
    domains: [plain.test]
    tls: [{cert: server.pem, key: server-key.pem}]
    dynos: [{name: web.1, address: "127.0.0.1:${BACKEND_PORT}"}]
  - name: priv
    domains: [priv.test]
    tls: [{cert: server.pem, key: server-key.pem}]
    mtls: {mode: require}
    dynos: [{name: web.1, address: "127.0.0.1:${BACKEND_PORT}"}]
YAML
./spacerouter ca init -config space.yaml >/dev/null
id="$(./spacerouter ca issue -config space.yaml -app priv -name bench | awk 'END{print $NF}')"
./spacerouter ca download -config space.yaml -id "$id" -dir client >/dev/null

GOMAXPROCS=1 taskset -c "$CLIENT_CPU" ./backend -addr "127.0.0.1:${BACKEND_PORT}" -size 64 &
pids+=($!)
GOMAXPROCS=1 taskset -c "$ROUTER_CPU" ./spacerouter -config space.yaml 2>router.err &
router=$!
pids+=("$router")
for _ in $(seq 100); do
	curl -sk -o /dev/null --resolve "plain.test:${HTTPS_PORT}:127.0.0.1" "https://plain.test:${HTTPS_PORT}/" && break
	sleep 0.05
done

# cpu_ms prints the router's utime+stime in ms (the /proc fallback).
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)*1000/hz}' "/proc/$router/stat"; }

# run APP SCENARIO: one spacebench run; prints "rps us_per_req".
run() {
	local app="$1" scenario="$2" args=()
	[[ "$app" == priv ]] && args+=(-cert client/client.crt -key client/client.key)
	[[ "$scenario" == handshake ]] && args+=(-H "Connection: close")
	local before after ms
	if command -v perf >/dev/null 2>&1; then
		perf stat -x, -e task-clock -p "$router" -o perf.txt &
		local perfpid=$!
		sleep 0.1
	else
		before="$(cpu_ms)"
	fi
	GOMAXPROCS=1 taskset -c "$CLIENT_CPU" ./spacebench -json -insecure -c "$CONNS" -d "${DURATION}s" \
		-sni "${app}.test" -H "Host: ${app}.test" "${args[@]}" "https://127.0.0.1:${HTTPS_PORT}/" >out.json 2>/dev/null ||
		{ echo "spacebench failed for $app $scenario: $(jq -c .first_errors out.json)" >&2; exit 1; }
	if [[ -n "${perfpid:-}" ]]; then
		kill -INT "$perfpid"
		wait "$perfpid" || true
		ms="$(awk -F, '$3=="task-clock"{print $1}' perf.txt)"
	else
		after="$(cpu_ms)"
		ms="$(awk -v a="$after" -v b="$before" 'BEGIN{print a-b}')"
	fi
	local ok
	ok="$(jq '.status["200"] // 0' out.json)"
	[[ "$ok" == "$(jq .requests out.json)" ]] || { echo "not all 200 for $app $scenario: $(jq -c .status out.json)" >&2; exit 1; }
	jq -r --arg ms "$ms" '"\(.rps) \(($ms|tonumber)*1000/.requests)"' out.json
}

# A warm-up run of each app, not counted: the router's first seconds
# (goroutine stacks, buffers, the dyno pool) would cost the first app.
for app in plain priv; do DURATION=1 run "$app" keepalive >/dev/null; done

declare -A rps cpu ratio
for ((r = 1; r <= ROUNDS; r++)); do
	for scenario in $SCENARIOS; do
		declare -A this=()
		order=(plain priv)
		((r % 2 == 0)) && order=(priv plain)
		for app in "${order[@]}"; do
			res="$(run "$app" "$scenario")"
			read -r q c <<<"$res"
			rps[$scenario.$app]+="$q "
			cpu[$scenario.$app]+="$c "
			this[$app]="$c"
			printf 'round %d %-9s %-5s %8.0f req/s %7.1f µs router CPU/req\n' "$r" "$scenario" "$app" "$q" "$c" >&2
		done
		ratio[$scenario]+="$(awk -v a="${this[priv]}" -v b="${this[plain]}" 'BEGIN{print a/b}') "
	done
done

# med prints the median, min and max of its arguments.
# FMT is the printf format of med's figures.
med() { printf '%s\n' "$@" | sort -g | awk -v f="${FMT:-%.1f}" '{v[NR]=$1} END{m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; printf f" ("f"–"f")", m, v[1], v[NR]}'; }

echo
echo "| scenario | app | req/s (median, min–max) | µs of router CPU per request (median, min–max) | priv ÷ plain, same round (median, min–max) |"
echo "|---|---|---:|---:|---:|"
for scenario in $SCENARIOS; do
	for app in plain priv; do
		r=""
		# shellcheck disable=SC2086
		[[ "$app" == priv ]] && r="$(FMT=%.3f med ${ratio[$scenario]})"
		# shellcheck disable=SC2086
		echo "| $scenario | $app | $(FMT=%.0f med ${rps[$scenario.$app]}) | $(med ${cpu[$scenario.$app]}) | $r |"
	done
done
echo
echo "(${ROUNDS} interleaved rounds of ${DURATION}s, -c ${CONNS}, ${SERVER_KEY} server certificate, router on CPU ${ROUTER_CPU} with GOMAXPROCS=1, spacebench and backend on CPU ${CLIENT_CPU}; $(nproc) CPUs, $(go version | awk '{print $3}'), $(openssl version | awk '{print $1, $2}'))"
