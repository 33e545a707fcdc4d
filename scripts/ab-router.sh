#!/usr/bin/env bash
# Compares router builds (and nginx) on HTTP/1.1 keep-alive, interleaved in
# rounds so the drift of this noisy VM hits every candidate alike: for each,
# req/s, µs of proxy CPU per request (perf stat task-clock when perf is
# there, else /proc ticks), p50/p99 from wrk. The proxy is pinned to CPU 1
# with GOMAXPROCS=1; wrk (1 thread) and peerbench's backend share CPU 0.
#
#   scripts/ab-router.sh OLD_BINARY NEW_BINARY            # two builds
#   CONNS=1 ROUNDS=5 scripts/ab-router.sh BINARY nginx    # against nginx
#   RATE=8000 scripts/ab-router.sh direct BINARY nginx    # open loop: latency at a fixed rate
#
# A candidate is a router binary, the word nginx, or (with RATE) the word
# direct: the backend itself. With RATE set, spacebench sends RATE requests
# a second over 64 connections (latency from the intended send time) in
# place of wrk's closed loop. Knobs: CONNS (32),
# DURATION (4 s), ROUNDS (3), LOG (file: router lines and nginx's access log
# to a file, one line per request; off: to /dev/null and access_log off).
# Needs wrk (and nginx for that candidate); traffic stays on 127.0.0.1.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
conns="${CONNS:-32}" dur="${DURATION:-4}" rounds="${ROUNDS:-3}" logmode="${LOG:-file}"
[[ $# -ge 1 ]] || { sed -n '2,14p' "$0" >&2; exit 2; }
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
	PATH="/usr/local/go/bin:$PATH"
fi
for tool in wrk taskset; do
	command -v "$tool" >/dev/null || { echo "ab-router: $tool is not installed" >&2; exit 1; }
done

work="$(mktemp -d)"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

backend_port=18180 proxy_port=18190
(cd "$root/../shared/peerbench/backend" && go build -o "$work/backend" .)
rate="${RATE:-}"
if [[ -n "$rate" ]]; then
	(cd "$root" && go build -o "$work/spacebench" ./cmd/spacebench)
fi
GOMAXPROCS=1 taskset -c 0 "$work/backend" -addr "127.0.0.1:$backend_port" -size 64 >/dev/null 2>&1 &
pids+=($!)

log="$work/access.log"
[[ "$logmode" == off ]] && log=/dev/null
cat >"$work/space.yaml" <<YAML
space: ab
listen: {http: "127.0.0.1:$proxy_port"}
log: {router: "$log", level: warn}
limits: {concurrency_per_dyno: 100000, requests_per_client: 100000, connections_per_client: 10000}
apps:
  - name: bench
    domains: [localhost]
    dynos: [{name: web.1, address: "127.0.0.1:$backend_port"}]
YAML
# Builds from before issue 9 do not know the per-client limits (all of
# wrk's connections come from 127.0.0.1: the defaults would answer H11).
sed 's/, requests_per_client: 100000, connections_per_client: 10000//' "$work/space.yaml" >"$work/space-old.yaml"
access="access_log $work/nginx-access.log combined;"
[[ "$logmode" == off ]] && access="access_log off;"
mkdir -p "$work/ng"
cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/ng/nginx.pid;
error_log $work/ng/error.log warn;
events { worker_connections 8000; use epoll; }
http {
    $access
    client_body_temp_path $work/ng/body;
    proxy_temp_path $work/ng/proxy;
    fastcgi_temp_path $work/ng/fastcgi;
    uwsgi_temp_path $work/ng/uwsgi;
    scgi_temp_path $work/ng/scgi;
    keepalive_requests 1000000;
    upstream backend { server 127.0.0.1:$backend_port; keepalive 1024; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:$proxy_port;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
NGINX

# cpu_ms PIDS...: CPU time of the processes so far, in ms (/proc ticks).
cpu_ms() {
	local t=0 p
	for p in "$@"; do
		[[ -r /proc/$p/stat ]] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo $((t * 1000 / $(getconf CLK_TCK)))
}

# load URL: the measured run, printing "requests req/s p50 p99" (wrk's
# units, or ms from spacebench with RATE).
load() {
	if [[ -n "$rate" ]]; then
		taskset -c 0 "$work/spacebench" -rate "$rate" -c 64 -d "${dur}s" -json -H 'Host: localhost' "$1" |
			python3 -c 'import json, sys
d = json.load(sys.stdin)
l = d["latency_ms"]
print(d["requests"], round(d["rps"]), "%.3fms" % l["p50"], "%.3fms" % l["p99"], "p99.9=%.3fms" % l["p999"], "errors=%d" % d["error_count"])'
		return
	fi
	taskset -c 0 wrk -t1 -c"$conns" -d"$dur" --latency -H 'Host: localhost' "$1" | awk '
		/requests in/ {n = $1} /Requests\/sec/ {r = $2} $1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2}
		END {print n, r, p50, p99}'
}

url="http://127.0.0.1:$proxy_port/"
printf '%-28s %5s %10s %10s %9s %9s %s\n' candidate conns req/s us_cpu/req p50 p99 more
for round in $(seq "$rounds"); do
	for cand in "$@"; do
		if [[ "$cand" == direct ]]; then
			[[ -n "$rate" ]] || { echo "ab-router: direct needs RATE" >&2; exit 2; }
			read -r reqs rps p50 p99 more < <(load "http://127.0.0.1:$backend_port/")
			printf '%-28s %5s %10s %10s %9s %9s %s\n' direct 64 "$rps" - "$p50" "$p99" "$more"
			continue
		fi
		if [[ "$cand" == nginx ]]; then
			taskset -c 1 nginx -c "$work/nginx.conf" &
		else
			cfg="$work/space.yaml"
			"$cand" -config "$cfg" -check >/dev/null 2>&1 || cfg="$work/space-old.yaml"
			GOMAXPROCS=1 taskset -c 1 "$cand" -config "$cfg" 2>"$work/router.err" &
		fi
		p=$!
		for _ in $(seq 50); do
			curl -s -o /dev/null -H 'Host: localhost' "$url" 2>/dev/null && break
			sleep 0.1
		done
		taskset -c 0 wrk -t1 -c"$conns" -d1 -H 'Host: localhost' "$url" >/dev/null
		tree=("$p" $(pgrep -P "$p" || true))
		before=$(cpu_ms "${tree[@]}")
		if command -v perf >/dev/null 2>&1; then
			perf stat -e task-clock -p "$(IFS=,; echo "${tree[*]}")" -o "$work/perf.txt" -- sleep "$dur" 2>/dev/null &
			ps=$!
		else
			ps=""
		fi
		read -r reqs rps p50 p99 more < <(load "$url")
		after=$(cpu_ms "${tree[@]}")
		ms=$((after - before))
		if [[ -n "$ps" ]] && wait "$ps" && grep -q task-clock "$work/perf.txt"; then
			# perf's figure is finer than /proc's ticks; a perf that
			# attached late (far below the ticks) is not used.
			pms=$(awk '/task-clock/ {gsub(",", "", $1); print $1}' "$work/perf.txt")
			if awk -v p="$pms" -v t="$ms" 'BEGIN {exit !(p > t / 2)}'; then
				ms=$pms
			fi
		fi
		[[ -n "$rate" ]] && conns=64
		printf '%-28s %5s %10s %10.2f %9s %9s %s\n' "$(basename "$cand")" "$conns" "$rps" \
			"$(awk -v ms="$ms" -v n="$reqs" 'BEGIN {print ms * 1000 / n}')" "$p50" "$p99" "${more:-}"
		kill "$p"
		wait "$p" 2>/dev/null || true
	done
done
