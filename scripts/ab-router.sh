#!/usr/bin/env bash
# Compares router builds (and nginx) on HTTP/1.1 keep-alive, HTTPS or
# HTTP/2, interleaved in rounds so the drift of this noisy VM hits every
# candidate alike: for each, req/s, µs of proxy CPU per request (perf stat
# task-clock when perf is there, else /proc ticks), p50/p99 from wrk or
# h2load. The proxy is pinned to CPU 1 with GOMAXPROCS=1; the load
# generator (1 thread) and peerbench's backend share CPU 0.
#
#   scripts/ab-router.sh OLD_BINARY NEW_BINARY            # two builds
#   CONNS=1 ROUNDS=5 scripts/ab-router.sh BINARY nginx    # against nginx
#   MODE=h2 SYSCALLS=1 scripts/ab-router.sh OLD NEW       # HTTP/2, with system calls
#   MODE=handshake scripts/ab-router.sh OLD NEW            # a TLS handshake per request
#   RATE=8000 scripts/ab-router.sh direct BINARY nginx    # open loop: latency at a fixed rate
#
# A candidate is a router binary, the word nginx, or (with RATE) the word
# direct: the backend itself. With RATE set, spacebench sends RATE requests
# a second over 64 connections (latency from the intended send time) in
# place of wrk's closed loop. Knobs: MODE (http: plain HTTP/1.1 with wrk;
# https: HTTP/1.1 over TLS 1.3 with wrk; handshake: the same with
# `Connection: close`, a full handshake per request, like peerbench's
# tls-handshake; h2: HTTP/2 over TLS with h2load, STREAMS (10) per connection), CONNS (32), DURATION (4 s), ROUNDS (3),
# LOG (file: router lines and nginx's access log to a file, one line per
# request; off: to /dev/null and access_log off), SYSCALLS=1 (a second,
# separate run per candidate and round counts system calls per request
# with perf: all, write, read, and writes on client sockets, which are
# the TLS writes under TLS; it slows the proxy, so its CPU figures are
# not used). Needs wrk (h2load for h2, openssl for TLS, nginx for that
# candidate); traffic stays on 127.0.0.1.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
conns="${CONNS:-32}" dur="${DURATION:-4}" rounds="${ROUNDS:-3}" logmode="${LOG:-file}"
mode="${MODE:-http}" streams="${STREAMS:-10}" syscalls="${SYSCALLS:-}"
[[ $# -ge 1 ]] || { sed -n '2,28p' "$0" >&2; exit 2; }
case "$mode" in
http | https | handshake | h2) ;;
*) echo "ab-router: MODE is http, https, handshake or h2" >&2; exit 2 ;;
esac
[[ "$mode" == h2 ]] && { command -v h2load >/dev/null || { echo "ab-router: h2load is not installed" >&2; exit 1; }; }
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

backend_port=18180 proxy_port=18190 tls_port=18191
(cd "$root/../shared/peerbench/backend" && go build -o "$work/backend" .)
rate="${RATE:-}"
if [[ -n "$rate" ]]; then
	(cd "$root" && go build -o "$work/spacebench" ./cmd/spacebench)
fi
GOMAXPROCS=1 taskset -c 0 "$work/backend" -addr "127.0.0.1:$backend_port" -size 64 >/dev/null 2>&1 &
pids+=($!)

log="$work/access.log"
[[ "$logmode" == off ]] && log=/dev/null
tlsListen="" tlsApp=""
if [[ "$mode" != http ]]; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost -addext subjectAltName=DNS:localhost \
		-keyout "$work/key.pem" -out "$work/cert.pem" >/dev/null 2>&1
	tlsListen=", https: \"127.0.0.1:$tls_port\""
	tlsApp="    tls: [{cert: \"$work/cert.pem\", key: \"$work/key.pem\"}]"
fi
cat >"$work/space.yaml" <<YAML
space: ab
listen: {http: "127.0.0.1:$proxy_port"$tlsListen}
log: {router: "$log", level: warn}
limits: {concurrency_per_dyno: 100000, requests_per_client: 100000, connections_per_client: 10000}
apps:
  - name: bench
    domains: [localhost]
$tlsApp
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
        $([[ "$mode" != http ]] && echo "listen 127.0.0.1:$tls_port ssl http2; ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem; ssl_protocols TLSv1.3;")
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
# units, or ms from spacebench with RATE or from h2load's log with h2).
load() {
	if [[ "$mode" == h2 ]]; then
		taskset -c 0 h2load -t1 -c"$conns" -m"$streams" -D"$dur" --log-file="$work/h2.log" "$1" >"$work/h2.out" 2>&1 || true
		# h2load's log: start time, status, elapsed µs per request.
		python3 - "$work/h2.out" "$work/h2.log" <<'PY'
import re, sys
out = open(sys.argv[1]).read()
m = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
f = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
lat = sorted(int(l.split()[2]) for l in open(sys.argv[2]) if len(l.split()) >= 3)
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1000 if lat else 0
errs = int(m.group(2)) + int(m.group(3)) if m else -1
print(m.group(1) if m else 0, f.group(3) if f else 0, "%.2fms" % p(0.5), "%.2fms" % p(0.99), "errors=%d" % errs)
PY
		return
	fi
	if [[ -n "$rate" ]]; then
		taskset -c 0 "$work/spacebench" -rate "$rate" -c 64 -d "${dur}s" -json -H 'Host: localhost' "$1" |
			python3 -c 'import json, sys
d = json.load(sys.stdin)
l = d["latency_ms"]
print(d["requests"], round(d["rps"]), "%.3fms" % l["p50"], "%.3fms" % l["p99"], "p99.9=%.3fms" % l["p999"], "errors=%d" % d["error_count"])'
		return
	fi
	taskset -c 0 wrk -t1 -c"$conns" -d"$dur" --latency -H 'Host: localhost' "${close[@]}" "$1" | awk '
		/requests in/ {n = $1} /Requests\/sec/ {r = $2} $1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2}
		/Non-2xx/ {bad = $NF} END {print n, r, p50, p99, bad ? "non-2xx=" bad : ""}'
}

# syscount PIDS URL: a separate run under perf (PIDS: comma-separated), printing system calls per
# request: all, write(+writev, sendto, sendmsg), read(+recvfrom), and the
# writes on client sockets (those on the proxy's listening ports).
syscount() {
	local p=$1 url=$2 reqs
	perf record -q -e raw_syscalls:sys_enter -e 'syscalls:sys_enter_write*' -e syscalls:sys_enter_sendto \
		-e syscalls:sys_enter_sendmsg -e syscalls:sys_enter_read -e syscalls:sys_enter_recvfrom \
		-p "$p" -o "$work/sys.data" -- sleep "$dur" >/dev/null 2>&1 &
	local ps=$!
	sleep 0.2
	# The client sockets, looked up while the load runs.
	(sleep 1; ss -tnpH state established 2>/dev/null | grep -E "pid=(${p//,/|}),") >"$work/ss.txt" &
	local sp=$!
	read -r reqs _ < <(load "$url")
	wait "$ps" "$sp" || true
	perf script -i "$work/sys.data" -F event,trace 2>/dev/null | python3 -c '
import re, sys
n, ports = int(sys.argv[1]), sys.argv[2].split(",")
client = set()
for line in open(sys.argv[3]):
    addrs = re.findall(r"\S+:\d+(?=\s)", line)
    fd = re.search(r"fd=(\d+)", line)
    if fd and addrs and addrs[0].rsplit(":", 1)[1] in ports:
        client.add(int(fd.group(1)))
c = {"all": 0, "write": 0, "read": 0, "client_write": 0}
for line in sys.stdin:
    if "raw_syscalls:sys_enter" in line:
        c["all"] += 1
        continue
    m = re.search(r"sys_enter_(\w+):\s+fd: (0x[0-9a-f]+|\d+)", line)
    if not m:
        continue
    kind = "read" if m.group(1) in ("read", "recvfrom") else "write"
    c[kind] += 1
    if kind == "write" and int(m.group(2), 0) in client:
        c["client_write"] += 1
print("syscalls/req=%.2f writes/req=%.2f reads/req=%.2f client-writes/req=%.2f" % tuple(c[k] / max(n, 1) for k in ("all", "write", "read", "client_write")))
' "$reqs" "$proxy_port,$tls_port" "$work/ss.txt"
}

url="http://127.0.0.1:$proxy_port/"
close=()
case "$mode" in
https | h2) url="https://localhost:$tls_port/" ;;
handshake) url="https://localhost:$tls_port/" close=(-H 'Connection: close') ;;
esac
ready="http://127.0.0.1:$proxy_port/"
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
			curl -s -o /dev/null -H 'Host: localhost' "$ready" 2>/dev/null && break
			sleep 0.1
		done
		if [[ "$mode" == h2 ]]; then
			taskset -c 0 h2load -t1 -c"$conns" -m"$streams" -D1 "$url" >/dev/null 2>&1
		else
			taskset -c 0 wrk -t1 -c"$conns" -d1 -H 'Host: localhost' "${close[@]}" "$url" >/dev/null
		fi
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
		if [[ -n "$syscalls" ]] && command -v perf >/dev/null 2>&1; then
			more="${more:+$more }$(syscount "$(IFS=,; echo "${tree[*]}")" "$url")"
		fi
		printf '%-28s %5s %10s %10.2f %9s %9s %s\n' "$(basename "$cand")" "$conns" "$rps" \
			"$(awk -v ms="$ms" -v n="$reqs" 'BEGIN {print ms * 1000 / n}')" "$p50" "$p99" "${more:-}"
		kill "$p"
		wait "$p" 2>/dev/null || true
	done
done
