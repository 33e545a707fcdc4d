#!/usr/bin/env bash
# Runs h2spec v2.2.1 (all 145 cases, none pinned) against router/h2's Conn
# through its Go test, installing h2spec first when it is missing.
#
#   scripts/h2spec-h2conn.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(go env GOPATH)/bin"
if ! command -v h2spec >/dev/null && [ ! -x "$bin/h2spec" ]; then
	# The module proxy serves this version only as +incompatible.
	GOFLAGS= go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible
fi
exec go test -count=1 -run '^TestH2Spec$' -v ./router/h2/
