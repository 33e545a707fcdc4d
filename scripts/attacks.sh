#!/usr/bin/env bash
# Issue 9 item 2: slot-holding attacks against one app, and what other users
# of that app see meanwhile. For each attack, an attacker on 127.0.0.1 runs
# while spacebench, as other users on 127.0.0.2, sends RATE requests a second
# to the same app (open loop, latency from the intended send time); the
# figure is the share of their requests answered 2xx during the attack.
# Goal: >= 99%.
#
#   scripts/attacks.sh                 # every attack
#   ATTACKS="slowbody" scripts/attacks.sh
#
# Attacks (ATTACKS, default all three):
#   slowbody  slowhttptest -B: CONNS connections each POST a 64 KiB body a
#             few bytes every 2 s (R-U-Dead-Yet)
#   slowread  slowhttptest -X: CONNS connections ask for a 1 MiB response and
#             read it a few bytes at a time through a tiny TCP window
#   h2window  h2load: HTTP/2 connections with a zero stream window (-w 0),
#             250 streams each, renewed: responses that can never flow
# Knobs: ROUTER (a router binary to attack instead of this checkout's),
# CONNS (2000), RATE (200), ATTACK_SECONDS (40: attack length; the victims'
# load runs from second 5 to SECONDS-5). Needs slowhttptest, nghttp2-client
# (h2load), the router built from this checkout, and ../shared/peerbench's
# backend as the dynos. Traffic stays on loopback; every process it starts
# is stopped by PID at the end.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
attacks="${ATTACKS:-slowbody slowread h2window}"
conns="${CONNS:-2000}" rate="${RATE:-200}" secs="${ATTACK_SECONDS:-40}"
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
	PATH="/usr/local/go/bin:$PATH"
fi
for tool in slowhttptest h2load; do
	command -v "$tool" >/dev/null || { echo "attacks: $tool is not installed (apt-get install slowhttptest nghttp2-client)" >&2; exit 1; }
done
ulimit -n 65536 2>/dev/null || true

work="$(mktemp -d)"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$root/../shared/peerbench/backend" && go build -o "$work/backend" .)
(cd "$root" && go build -o "$work/spacerouter" ./cmd/spacerouter && go build -o "$work/spacebench" ./cmd/spacebench)
if [[ -n "${ROUTER:-}" ]]; then
	cp "$ROUTER" "$work/spacerouter" # another build, for a before/after
fi
"$work/backend" -addr 127.0.0.1:18281 -size 1048576 >/dev/null 2>&1 &
pids+=($!)
"$work/backend" -addr 127.0.0.1:18282 -size 1048576 >/dev/null 2>&1 &
pids+=($!)

# A certificate for the https listener (HTTP/2).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=localhost -addext subjectAltName=DNS:localhost \
	-keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cat >"$work/space.yaml" <<YAML
space: attacks
listen: {http: "127.0.0.1:18280", https: "127.0.0.1:18283"}
log: {router: "$work/router.log", level: warn}
apps:
  - name: shop
    domains: [localhost]
    tls: [{cert: "$work/cert.pem", key: "$work/key.pem"}]
    features: [spaces-tls-modern]
    dynos:
      - {name: web.1, address: "127.0.0.1:18281"}
      - {name: web.2, address: "127.0.0.1:18282"}
YAML
"$work/spacerouter" -config "$work/space.yaml" 2>"$work/router.err" &
pids+=($!)
for _ in $(seq 100); do
	curl -s -o /dev/null http://localhost:18280/ 2>/dev/null && break
	sleep 0.1
done

# victims runs other users' load from 127.0.0.2 for secs-10 seconds after a
# 5 s head start of the attack, and prints the share answered 2xx.
victims() {
	sleep 5
	"$work/spacebench" -local 127.0.0.2 -rate "$rate" -c 64 -d "$((secs - 10))s" -timeout 10s -json \
		http://localhost:18280/ >"$work/victims.json" 2>"$work/victims.err" || true
	python3 - "$work/victims.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
# Responses, transport errors and due requests never sent all count.
total = r.get("requests", 0) + r.get("error_count", 0) + r.get("unsent", 0)
ok = sum(n for s, n in r.get("status", {}).items() if s.startswith("2"))
print(f"{ok}/{total} = {100.0 * ok / max(total, 1):.2f}% answered 2xx, p99 {r['latency_ms']['p99']:.1f} ms")
PY
}

for attack in $attacks; do
	case "$attack" in
	slowbody)
		slowhttptest -B -c "$conns" -r 500 -i 2 -s 65536 -x 8 -l "$secs" -p 5 -u http://localhost:18280/ >"$work/attack.log" 2>&1 &
		;;
	slowread)
		slowhttptest -X -c "$conns" -r 500 -w 1 -y 64 -n 2 -z 32 -k 3 -l "$secs" -p 5 -u http://localhost:18280/ >"$work/attack.log" 2>&1 &
		;;
	h2window)
		(
			end=$((SECONDS + secs))
			while ((SECONDS < end)); do
				timeout "$((end - SECONDS + 1))" h2load -c 4 -m 250 -n 1000 -w 0 -W 16 https://localhost:18283/ >/dev/null 2>&1 || true
			done
		) &
		;;
	*)
		echo "attacks: unknown attack $attack" >&2
		exit 2
		;;
	esac
	apid=$!
	pids+=("$apid")
	printf '%-9s other users: %s\n' "$attack" "$(victims)"
	wait "$apid" 2>/dev/null || true
	sleep 2
done
printf 'router lines by code during the run: %s\n' \
	"$(grep -o 'code=H[0-9]*' "$work/router.log" | sort | uniq -c | tr -s ' \n' ' ' || true)"
