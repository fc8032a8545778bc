#!/bin/bash
# Runs sip-sidecar as bench.sh's "custom" target: writes a configuration from
# the variables bench.sh sets (LISTEN_ADDR LISTEN_PORT BACKEND_ADDR
# BACKEND_PORT CERT_FILE KEY_FILE WORKERS) and execs the daemon.
#   SIDECAR      path of the binary (default: ../sidecar/sip-sidecar next to this script)
#   SIP_FRAMING  on|off (default on)
#   TOPOLOGY     on|off (default on): address translation at the TLS boundary
#   LOG_LEVEL    default warn (one log line per connection costs a write(2))
#   METRICS      ADDR:PORT: metrics on, scraped every SCRAPE_EVERY seconds
#                (default 1) while the daemon runs (their cost in a run)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${SIDECAR:-$here/../sidecar/sip-sidecar}
conf=$(mktemp /tmp/sidecar-bench.XXXXXX.conf)
cat > "$conf" <<CONF
[global]
allow-root = yes
log-level = ${LOG_LEVEL:-warn}
max-connections = 9000
workers = ${WORKERS:-1}
status-socket = off
${METRICS:+metrics = $METRICS}

[listen bench]
bind = $LISTEN_ADDR:$LISTEN_PORT
backend = $BACKEND_ADDR:$BACKEND_PORT
cert = $CERT_FILE
key = $KEY_FILE
sip-framing = ${SIP_FRAMING:-on}
topology = ${TOPOLOGY:-on}
CONF
chmod 644 "$conf"
if [ -n "${METRICS:-}" ]; then
	# the same PID after exec: scrape while it lives, from a process of its
	# own session (not a descendant: the harness measures those)
	setsid -f bash -c 'while kill -0 "$0" 2>/dev/null; do
		sleep "$1"
		exec 3<>"/dev/tcp/${2%:*}/${2##*:}" 2>/dev/null || continue
		printf "GET /metrics HTTP/1.0\r\n\r\n" >&3
		cat <&3 >/dev/null
		exec 3<&-
	done' "$$" "${SCRAPE_EVERY:-1}" "$METRICS" </dev/null >/dev/null 2>&1
fi
exec "$bin" -c "$conf"
