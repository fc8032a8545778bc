#!/bin/bash
# Socket activation: listening sockets passed by systemd (LISTEN_FDS) are
# used instead of binding; t/listenfd stands in for systemd. It binds
# without SO_REUSEADDR, so a daemon that tried to bind the same address
# itself would fail to start.
. "${T_SRC:-$(dirname "$0")}/lib.sh"
require_sidecar
certs_dir
plan 8
LISTENFD=$T_BUILD/listenfd
[ -x "$LISTENFD" ] || bail_out "not built: $LISTENFD"

start_backend be -a
p1=$(free_port) p2=$(free_port)
printf 'OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bKs\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: s1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' > "$T_TMP/req"
for workers in 1 2; do
	cat > "$T_TMP/s.conf" <<EOF2
[global]
allow-root = yes
workers = $workers
[listen a]
bind = 127.0.0.1:$p1
backend = 127.0.0.1:$BACKEND_PORT
cert = $CERTS/server.crt
key = $CERTS/server.key
[listen b]
bind = 127.0.0.1:$p2
backend = 127.0.0.1:$BACKEND_PORT
cert = $CERTS/server.crt
key = $CERTS/server.key
EOF2
	SIDECAR_WRAPPER="$LISTENFD 127.0.0.1:$p1 127.0.0.1:$p2 --" start_sidecar "$T_TMP/s.conf" ||
		bail_out "the daemon did not start with passed sockets"
	is 2 "$(log_count "$SIDECAR_LOG" 'uses the socket systemd passed')" "workers=$workers: both listeners use the passed sockets"
	out1=$("$TLSCLIENT" -c "127.0.0.1:$p1" --ca "$CERTS/ca.crt" --send "$T_TMP/req" --read-timeout 400 2>/dev/null | head -1)
	out2=$("$TLSCLIENT" -c "127.0.0.1:$p2" --ca "$CERTS/ca.crt" --send "$T_TMP/req" --read-timeout 400 2>/dev/null | head -1)
	like '^SIP/2.0 200' "$out1" "workers=$workers: a TLS client gets its 200 through the first"
	like '^SIP/2.0 200' "$out2" "workers=$workers: ... and through the second"
	stop_sidecar
	is 0 "$SIDECAR_STATUS" "workers=$workers: clean stop"
	: > "$SIDECAR_LOG"
done
