#!/usr/bin/env bash
# The ROUTER_CMD that ../shared/peerbench runs for spacerouter: writes a
# one-app space for the harness's backend and execs the router in the
# foreground (the harness reads its CPU and memory by PID). Environment from
# peerbench: ROUTER_PORT, BACKEND_ADDR, PEERBENCH_LOG, PEERBENCH_ACCESS_LOG;
# SPACEROUTER_BIN names the binary.
set -euo pipefail
cfg="$(mktemp --suffix=.yaml)"
log="${PEERBENCH_ACCESS_LOG:-}"
if [[ "${PEERBENCH_LOG:-on}" == off || -z "$log" ]]; then
	log=/dev/null
fi
# Builds from before issue 9 do not know the per-client limits.
per_client="  requests_per_client: 100000
  connections_per_client: 10000
"
write_cfg() {
cat >"$cfg" <<YAML
space: peerbench
listen:
  http: 127.0.0.1:${ROUTER_PORT}
  https: 127.0.0.1:${ROUTER_TLS_PORT:-18453}
log:
  router: "${log}"
  level: warn
limits:
  # One dyno behind up to 256+ client connections (320 HTTP/2 streams),
  # all from 127.0.0.1, and 2000 idle connections in the mem scenario:
  # the defaults (200 in flight per dyno, 100 per client address, 1000
  # connections per address) would answer H11 or refuse, as they should,
  # and measure nothing.
  concurrency_per_dyno: 100000
${per_client}apps:
  - name: bench
    domains: [localhost]
    # peerbench's certificate (RSA-2048, localhost). Features omitted: the
    # salesforce profile of a new app; wrk and h2load negotiate TLS 1.3.
    tls: [{cert: "${PEERBENCH_CERT}", key: "${PEERBENCH_KEY}"}]
    dynos:
      - {name: web.1, address: "${BACKEND_ADDR}"}
YAML
}
write_cfg
if ! "${SPACEROUTER_BIN:?}" -config "$cfg" -check >/dev/null 2>&1; then
	per_client=""
	write_cfg
fi
exec "${SPACEROUTER_BIN:?}" -config "$cfg"
