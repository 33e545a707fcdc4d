#!/usr/bin/env bash
# deploy/three-routers.sh: three spacerouter processes sharing one space
# through a local etcd (SPEC.md section 14; README, "Running several
# routers"). It builds spacerouter and deploy/devetcd (an embedded etcd and
# the demo space's two dynos: no etcd binary needed), starts them on
# loopback ports, imports a space with `spacerouter store import`, waits
# until every router's /healthz answers 200 and prints curl lines to try.
# Ctrl-C stops everything it started.
#
#   deploy/three-routers.sh            run until Ctrl-C
#   deploy/three-routers.sh --smoke    ask each router once, then stop (exit 1 on a failure)
#
# Ports: etcd 23790 (peer 23800), routers http 18081-18083, admin 19091-19093;
# override the base with ETCD_PORT, HTTP_BASE, ADMIN_BASE. Files go to $WORK
# (default: a new temporary directory, removed at the end).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
smoke=false
[[ ${1:-} == --smoke ]] && smoke=true
etcd_port=${ETCD_PORT:-23790}
http_base=${HTTP_BASE:-18080}
admin_base=${ADMIN_BASE:-19090}
work=${WORK:-}
if [[ -z $work ]]; then
	work=$(mktemp -d)
	remove_work=true
else
	mkdir -p "$work"
	remove_work=false
fi

pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if $remove_work; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building into $work"
(cd "$root" && go build -o "$work/spacerouter" ./cmd/spacerouter)
(cd "$root" && go build -tags devetcd -o "$work/devetcd" ./deploy/devetcd)

"$work/devetcd" -client "127.0.0.1:$etcd_port" -peer "127.0.0.1:$((etcd_port + 10))" -dir "$work/etcd" \
	>"$work/dynos.txt" 2>"$work/devetcd.log" &
pids+=($!)
for _ in $(seq 100); do
	[[ $(wc -l <"$work/dynos.txt") -ge 2 ]] && break
	sleep 0.1
done
mapfile -t dynos <"$work/dynos.txt"
if [[ ${#dynos[@]} -lt 2 ]]; then
	echo "devetcd did not start: $(cat "$work/devetcd.log")" >&2
	exit 1
fi
echo "etcd on http://127.0.0.1:$etcd_port; dynos ${dynos[0]} and ${dynos[1]}"

# The space, as a file-based space would have it; store import moves it
# into etcd.
cat >"$work/space.yaml" <<YAML
listen: {http: "127.0.0.1:0"}
timeouts: {connect: 2s}
apps:
  - name: demo
    domains: [demo.localhost, localhost]
    dynos:
      - {name: web.1, address: ${dynos[0]}}
      - {name: web.2, address: ${dynos[1]}}
YAML

for i in 1 2 3; do
	cat >"$work/router-$i.yaml" <<YAML
space: demo
listen: {http: "127.0.0.1:$((http_base + i))", admin: "127.0.0.1:$((admin_base + i))"}
log: {router: router-$i.lines}
store:
  etcd: {endpoints: ["http://127.0.0.1:$etcd_port"], prefix: /spacerouter/demo/, dial_timeout: 2s}
  cache_file: router-$i.cache.json
  router_id: edge-$i
YAML
done

"$work/spacerouter" store import -config "$work/router-1.yaml" -from "$work/space.yaml"

for i in 1 2 3; do
	"$work/spacerouter" -config "$work/router-$i.yaml" 2>"$work/router-$i.log" &
	pids+=($!)
done
for i in 1 2 3; do
	ok=false
	for _ in $(seq 100); do
		if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((admin_base + i))/healthz") == 200 ]]; then
			ok=true
			break
		fi
		sleep 0.1
	done
	if ! $ok; then
		echo "router $i: /healthz not 200 within 10 s; its log:" >&2
		cat "$work/router-$i.log" >&2
		exit 1
	fi
done

echo
echo "Three routers serve app demo from etcd. Try:"
for i in 1 2 3; do
	echo "  curl -i -H 'Host: demo.localhost' http://127.0.0.1:$((http_base + i))/"
done
echo "Change the space (every router follows within milliseconds): edit $work/space.yaml, then"
echo "  $work/spacerouter store import -config $work/router-1.yaml -from $work/space.yaml"
echo "What etcd holds, and each router's applied revision and refused keys:"
echo "  $work/spacerouter store get -config $work/router-1.yaml"
echo "  $work/spacerouter store get -config $work/router-1.yaml routers/"

if $smoke; then
	fail=0
	for i in 1 2 3; do
		code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: demo.localhost' "http://127.0.0.1:$((http_base + i))/")
		echo "router $i: GET http://demo.localhost/ -> $code"
		[[ $code == 200 ]] || fail=1
	done
	status=$("$work/spacerouter" store get -config "$work/router-1.yaml" routers/)
	echo "$status"
	[[ $(grep -c '^--- # routers/' <<<"$status") -eq 3 ]] || { echo "want 3 routers under routers/" >&2; fail=1; }
	exit $fail
fi
echo "Ctrl-C stops them."
wait
