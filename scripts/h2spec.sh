#!/usr/bin/env bash
# Runs h2spec (the HTTP/2 conformance suite) against spacerouter's TLS
# listener: the built-in demo space, whose dynos answer GET / and POST /.
# Every case must pass.
# Needs h2spec on PATH or in $(go env GOPATH)/bin:
#   go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible  (as .ci/run does)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
	PATH="/usr/local/go/bin:$PATH"
fi
PATH="$PATH:$(go env GOPATH)/bin"
command -v h2spec >/dev/null || { echo "h2spec not found" >&2; exit 1; }

# Cases that may fail, by h2spec id, with their reason: none. The router's
# HTTP/2 is its own (router/h2) and passes all 145 cases.
declare -A pinned=()

work="$(mktemp -d)"
pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
(cd "$root" && go build -o "$work/spacerouter" ./cmd/spacerouter)
"$work/spacerouter" >"$work/lines.log" 2>"$work/stderr.log" &
pid=$!
port=""
for _ in $(seq 100); do
	port="$(sed -n 's#.*https://localhost:\([0-9]*\)/.*#\1#p' "$work/stderr.log" | head -1)"
	[[ -n "$port" ]] && break
	sleep 0.1
done
[[ -n "$port" ]] || { echo "the demo space did not start:" >&2; cat "$work/stderr.log" >&2; exit 1; }

# -h localhost: SNI must name an app; localhost resolves to 127.0.0.1.
h2spec -t -k -h localhost -p "$port" -o 5 -j "$work/h2spec.xml" >"$work/h2spec.out" 2>&1 || true
tail -n 3 "$work/h2spec.out"

failed="$(python3 - "$work/h2spec.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
for suite in root.iter("testsuite"):
    for i, case in enumerate(suite.findall("testcase"), 1):
        if case.find("failure") is not None or case.find("error") is not None:
            print(f"{suite.get('package')}/{i}")
PY
)"
status=0
for id in $failed; do
	if [[ -n "${pinned[$id]:-}" ]]; then
		echo "pinned: $id: ${pinned[$id]}"
	else
		echo "FAILED: $id (not pinned)"
		status=1
	fi
done
if [[ $status -ne 0 ]]; then
	sed -n '/^Failures:/,$p' "$work/h2spec.out"
fi
total="$(grep -o 'tests="[0-9]*"' "$work/h2spec.xml" | head -1 || true)"
n_failed=$(wc -w <<<"$failed")
echo "h2spec: $n_failed failed, all pinned: $([[ $status -eq 0 ]] && echo yes || echo no)"
exit $status
