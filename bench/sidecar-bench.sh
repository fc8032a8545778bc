#!/bin/sh
# Runs sip-sidecar as bench.sh's "custom" target: writes a configuration from
# the variables bench.sh sets (LISTEN_ADDR LISTEN_PORT BACKEND_ADDR
# BACKEND_PORT CERT_FILE KEY_FILE WORKERS) and execs the daemon.
#   SIDECAR      path of the binary (default: ../sidecar/sip-sidecar next to this script)
#   SIP_FRAMING  on|off (default on)
#   TOPOLOGY     on|off (default on): address translation at the TLS boundary
#   LOG_LEVEL    default warn (one log line per connection costs a write(2))
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

[listen bench]
bind = $LISTEN_ADDR:$LISTEN_PORT
backend = $BACKEND_ADDR:$BACKEND_PORT
cert = $CERT_FILE
key = $KEY_FILE
sip-framing = ${SIP_FRAMING:-on}
topology = ${TOPOLOGY:-on}
CONF
chmod 644 "$conf"
exec "$bin" -c "$conf"
