#!/usr/bin/env bash
# Checks with testssl.sh that what a TLS client sees from spacerouter is exactly
# the TLS profile table of SPEC.md section 5 (versions and cipher suites).
#
#   scripts/testssl.sh            (from anywhere; about 2-2.5 minutes on 2 CPUs)
#
# It builds spacerouter, makes an RSA-2048 and an ECDSA P-256 self-signed
# certificate for four app domains, runs the router on a free 127.0.0.1 port
# with one app per profile (each app holds both certificates, so ECDSA suites
# can negotiate), runs `testssl -p -E` against each app by SNI, and compares
# the offered protocols and (protocol, suite) pairs with
# scripts/testssl/expected.json (scripts/testssl/compare.py). It prints one
# line per profile, "ok" or the differences, and exits 1 on any difference.
#
# Needs (installs nothing): go, python3, openssl, testssl (Debian package
# testssl.sh, 3.0.8 in Debian 12). Only loopback is used: testssl runs with
# --ip 127.0.0.1 and --nodns none. Only the router this script started is
# stopped, by its PID.
#
# Environment:
#   TESTSSL_TIMEOUT  seconds allowed for each testssl run (default 480)
#   TESTSSL_JOBS     testssl runs at once, 1-4 (default 4: 117 s in all on
#                    2 CPUs; 1 at a time: 138 s). Worst case is bounded by
#                    ceil(4/JOBS) * (TESTSSL_TIMEOUT + 10) s plus the build.
#   TESTSSL_KEEP=1   keep the work directory (certs, config, logs, JSON)
#
# --fast is not used: it makes -E use OpenSSL for every cipher, and the system
# OpenSSL 3 cannot speak TLS 1.1, so the strict profile's TLS 1.1 suites go
# missing (tried: 1.1 "offered" but no 1.1 suites listed), and it was no
# faster here.
set -euo pipefail
start=$SECONDS
root="$(cd "$(dirname "$0")/.." && pwd)"
here="$root/scripts/testssl"
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
	PATH="/usr/local/go/bin:$PATH"
fi

missing=0
need() { # need CMD HOW-TO-INSTALL
	if ! command -v "$1" >/dev/null 2>&1; then
		echo "testssl.sh: '$1' not found; install it: $2" >&2
		missing=1
	fi
}
need testssl "apt-get update && apt-get install -y testssl.sh   (Debian/Ubuntu; elsewhere: git clone --depth 1 https://github.com/drwetter/testssl.sh and put testssl.sh on PATH as 'testssl')"
need openssl "apt-get install -y openssl"
need python3 "apt-get install -y python3"
need go "https://go.dev/dl/ (the version in go.mod)"
need timeout "apt-get install -y coreutils"
[[ $missing -eq 0 ]] || exit 2

per_run_timeout="${TESTSSL_TIMEOUT:-480}"
jobs="${TESTSSL_JOBS:-4}"
[[ "$jobs" =~ ^[1-4]$ ]] || { echo "TESTSSL_JOBS must be 1-4" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/spacerouter-testssl.XXXXXX")"
router_pid=""
scan_pids=()
cleanup() {
	local p f
	for p in "${scan_pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for f in "$work"/*.pid; do
		[[ -e "$f" ]] && kill "$(cat "$f")" 2>/dev/null || true
	done
	if [[ -n "$router_pid" ]] && kill -0 "$router_pid" 2>/dev/null; then
		kill "$router_pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$router_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$router_pid" 2>/dev/null || true
		wait "$router_pid" 2>/dev/null || true
	fi
	if [[ "${TESTSSL_KEEP:-}" == 1 ]]; then
		echo "work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. Build.
(cd "$root" && go build -o "$work/spacerouter" ./cmd/spacerouter)

# 2. Certificates: one RSA-2048 and one ECDSA P-256, both naming the four
# domains. 365 days, so the router's "expires within 75 days" warning stays quiet.
profiles=(salesforce modern default strict)
san="subjectAltName=DNS:salesforce.test,DNS:modern.test,DNS:default.test,DNS:strict.test"
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=salesforce.test" \
	-addext "$san" -keyout "$work/rsa-key.pem" -out "$work/rsa.pem" 2>"$work/openssl.log"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj "/CN=salesforce.test" \
	-addext "$san" -keyout "$work/ecdsa-key.pem" -out "$work/ecdsa.pem" 2>>"$work/openssl.log"

# 3. Config: one app per profile (SPEC.md section 3: no features key ->
# salesforce; a features list naming no TLS profile -> default). The dyno
# refuses connections; only the handshake matters here.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
write_config() { # write_config PORT
	local tls="[{cert: $work/rsa.pem, key: $work/rsa-key.pem}, {cert: $work/ecdsa.pem, key: $work/ecdsa-key.pem}]"
	local dynos="[{name: web.1, address: 127.0.0.1:9, state: crashed}]"
	cat >"$work/space.yaml" <<EOF
space: testssl
listen: {https: 127.0.0.1:$1}
log: {router: $work/router-lines.log}
timeouts: {shutdown: 2s}
apps:
  - name: salesforce
    domains: [salesforce.test]
    tls: $tls
    dynos: $dynos
  - name: modern
    domains: [modern.test]
    features: [spaces-tls-modern]
    tls: $tls
    dynos: $dynos
  - name: default
    domains: [default.test]
    features: [http-disable-keepalive-to-dyno]
    tls: $tls
    dynos: $dynos
  - name: strict
    domains: [strict.test]
    features: [spaces-strict-tls]
    tls: $tls
    dynos: $dynos
EOF
}

# 4. Start the router on a free port (a few tries: the port may be taken
# between choosing and binding).
port=""
for _ in 1 2 3; do
	try="$(free_port)"
	write_config "$try"
	"$work/spacerouter" -config "$work/space.yaml" >"$work/router-stdout.log" 2>"$work/router-stderr.log" &
	router_pid=$!
	for _ in $(seq 100); do
		kill -0 "$router_pid" 2>/dev/null || break
		if (exec 3<>"/dev/tcp/127.0.0.1/$try") 2>/dev/null; then
			port="$try"
			break
		fi
		sleep 0.1
	done
	[[ -n "$port" ]] && break
	kill "$router_pid" 2>/dev/null || true
	wait "$router_pid" 2>/dev/null || true
	router_pid=""
done
if [[ -z "$port" ]]; then
	echo "spacerouter did not start:" >&2
	cat "$work/router-stderr.log" >&2
	exit 1
fi
echo "spacerouter (pid $router_pid) on 127.0.0.1:$port; testssl $(testssl --version 2>/dev/null | sed -n 's/.*testssl *\([0-9][^ ]*\).*/\1/p' | head -1)"

# 5. testssl per app, TESTSSL_JOBS at a time, each bounded by TESTSSL_TIMEOUT.
# timeout(1) runs testssl in a process group of its own and signals the whole
# group when the time is up or when it is itself sent SIGTERM (cleanup does
# that, by the PID saved in PROFILE.pid).
scan() { # scan PROFILE
	local rc=0 t
	timeout -k 10 "$per_run_timeout" testssl --quiet --color 0 --warnings batch --nodns none \
		--connect-timeout 10 --openssl-timeout 10 \
		--ip 127.0.0.1 -p -E --jsonfile "$work/$1.json" "$1.test:$port" \
		>"$work/$1.log" 2>&1 &
	t=$!
	echo "$t" >"$work/$1.pid"
	wait "$t" || rc=$?
	rm -f "$work/$1.pid" # done: never signal that PID again
	echo "$rc" >"$work/$1.rc"
}
echo "running testssl -p -E against ${profiles[*]} ($jobs at a time, up to ${per_run_timeout}s each)"
for p in "${profiles[@]}"; do
	while [[ ${#scan_pids[@]} -ge $jobs ]]; do
		wait "${scan_pids[0]}" || true
		scan_pids=("${scan_pids[@]:1}")
	done
	scan "$p" &
	scan_pids+=("$!")
done
for p in "${scan_pids[@]}"; do
	wait "$p" || true
done
scan_pids=()
for p in "${profiles[@]}"; do
	rc="$(cat "$work/$p.rc" 2>/dev/null || echo '?')"
	if [[ "$rc" == 124 || "$rc" == 137 ]]; then
		echo "$p: testssl timed out after ${per_run_timeout}s" >&2
	fi
done

# 6. Compare.
args=()
for p in "${profiles[@]}"; do
	args+=("$p=$work/$p.json")
done
status=0
python3 "$here/compare.py" "$here/expected.json" "${args[@]}" || status=$?
if [[ $status -ne 0 ]]; then
	for p in "${profiles[@]}"; do
		echo "--- testssl output, $p (exit $(cat "$work/$p.rc" 2>/dev/null || echo '?')):" >&2
		sed -n '/Testing protocols/,$p' "$work/$p.log" >&2 || true
	done
fi
echo "testssl.sh: $([[ $status -eq 0 ]] && echo PASS || echo FAIL) in $((SECONDS - start))s"
exit $status
