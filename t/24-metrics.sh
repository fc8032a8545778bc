#!/bin/bash
# The Prometheus metrics endpoint: counters move with real traffic, refusals
# are counted by their reason word, loaded certificates show their expiry.
. "${T_SRC:-$(dirname "$0")}/lib.sh"
require_sidecar
certs_dir
plan 21

start_backend be -a
tls=$(free_port) mtls=$(free_port) met=$(free_port)
cat > "$T_TMP/m.conf" <<EOF2
[global]
allow-root = yes
metrics = 127.0.0.1:$met
[listen tls]
bind = 127.0.0.1:$tls
backend = 127.0.0.1:$BACKEND_PORT
cert = $CERTS/server.crt
key = $CERTS/server.key
[listen mtls]
bind = 127.0.0.1:$mtls
backend = 127.0.0.1:$BACKEND_PORT
cert = $CERTS/server.crt
key = $CERTS/server.key
client-auth = require
ca = $CERTS/ca.crt
EOF2
start_sidecar "$T_TMP/m.conf" "$tls" "$mtls" "$met" || bail_out "sidecar did not start"

scrape() {
	exec 3<>"/dev/tcp/127.0.0.1/$met" || return 1
	printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
	timeout 5 cat <&3
	exec 3<&-
}
metric() { scrape | tr -d '\r' | grep "^$1 " | awk '{print $NF}'; }

is 0 "$(metric sip_sidecar_handshakes_total)" "no handshake yet"
printf 'OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: m1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' > "$T_TMP/req"
"$TLSCLIENT" -c "127.0.0.1:$tls" --ca "$CERTS/ca.crt" --send "$T_TMP/req" --read-timeout 500 > "$T_TMP/out" 2>/dev/null
like '^SIP/2.0 200' "$(head -1 "$T_TMP/out")" "a TLS client gets its 200"
"$TLSCLIENT" -c "127.0.0.1:$mtls" --ca "$CERTS/ca.crt" --send "$T_TMP/req" --read-timeout 500 >/dev/null 2>&1
"$TLSCLIENT" -c "127.0.0.1:$mtls" --ca "$CERTS/ca.crt" --cert "$CERTS/client-expired.crt" \
	--key "$CERTS/client-expired.key" --send "$T_TMP/req" --read-timeout 500 >/dev/null 2>&1
wait_for_log_count "$SIDECAR_LOG" 'refused: ' 2 5
wait_for_log "$SIDECAR_LOG" 'closed: ' 5
page=$(scrape | tr -d '\r')
like '^HTTP/1.0 200 OK' "$page" "HTTP 200"
is 1 "$(echo "$page" | grep '^sip_sidecar_handshakes_total ' | awk '{print $2}')" "one admitted handshake"
is 1 "$(echo "$page" | grep -F 'sip_sidecar_refused_total{reason="no certificate"}' | awk '{print $NF}')" \
	"refusal counted as no certificate"
is 1 "$(echo "$page" | grep -F 'sip_sidecar_refused_total{reason="expired"}' | awk '{print $NF}')" \
	"refusal counted as expired"
is 1 "$(echo "$page" | grep '^sip_sidecar_messages_in_total ' | awk '{print $2}')" "one message in"
notafter=$(echo "$page" | grep -F "file=\"$CERTS/server.crt\"" | head -1 | awk '{print $NF}')
want=$(date -d "$(certtool -i --infile "$CERTS/server.crt" | sed -n 's/.*Not After: //p')" +%s)
is "$want" "$notafter" "server certificate expiry exported"
# counters are live: traffic on a connection that stays open shows at once
in0=$(metric sip_sidecar_messages_in_total)
out0=$(metric sip_sidecar_messages_out_total)
b0=$(metric sip_sidecar_bytes_in_total)
"$TLSCLIENT" -c "127.0.0.1:$tls" --ca "$CERTS/ca.crt" --send "$T_TMP/req" --read-timeout 30000 \
	--max-time 40000 >"$T_TMP/open.out" 2>/dev/null &
OPEN=$!
track_pid "$OPEN"
for ((i = 0; i < 200; i++)); do
	[ "$(metric sip_sidecar_messages_out_total)" = "$((out0 + 1))" ] && break
	sleep 0.05
done
page=$(scrape | tr -d '\r')
is "$((in0 + 1))" "$(echo "$page" | grep '^sip_sidecar_messages_in_total ' | awk '{print $2}')" \
	"live: the open connection's request counted"
is "$((out0 + 1))" "$(echo "$page" | grep '^sip_sidecar_messages_out_total ' | awk '{print $2}')" \
	"live: its answer counted"
b1=$(echo "$page" | grep '^sip_sidecar_bytes_in_total ' | awk '{print $2}')
[ "$b1" -gt "$b0" ]
ok $? "live: its bytes counted ($b0 -> $b1)"
is 1 "$(echo "$page" | grep '^sip_sidecar_connections ' | awk '{print $2}')" "... while the connection is open"
kill "$OPEN" 2>/dev/null
wait_pid_exit "$OPEN" 10
untrack_pid "$OPEN"

# the page itself: every series once, every metric with HELP and TYPE
dups=$(echo "$page" | grep -v '^#' | sed -n '/^sip_sidecar_/p' | sed 's/ [^ ]*$//' | sort | uniq -d)
is "" "$dups" "no series twice (two listeners share a certificate file)"
missing=""
for n in $(echo "$page" | sed -n 's/^\(sip_sidecar_[a-z_]*\)[{ ].*/\1/p' | sort -u); do
	echo "$page" | grep -q "^# HELP $n " && echo "$page" | grep -q "^# TYPE $n " || missing="$missing $n"
done
is "" "$missing" "every metric has HELP and TYPE"
like "^sip_sidecar_build_info\{version=\"[0-9.]+\",gnutls=\"3\.[0-9.]+\",libev=\"4\.[0-9]+\"\} 1$" \
	"$(echo "$page" | grep '^sip_sidecar_build_info')" "build info: version, GnuTLS, libev"
t0=$(echo "$page" | grep '^sip_sidecar_last_reload_success_timestamp_seconds ' | awk '{print $2}')
now=$(date +%s)
[ -n "$t0" ] && [ "$t0" -gt $((now - 600)) ] && [ "$t0" -le "$now" ]
ok $? "last reload success: the start ($t0)"
if command -v promtool >/dev/null 2>&1; then
	echo "$page" | sed '1,/^$/d' >"$T_TMP/page.prom"
	ok_cmd "promtool check metrics" sh -c "promtool check metrics <'$T_TMP/page.prom'"
else
	skip 1 "promtool (prometheus) not installed"
fi
for ((i = 0; i < 40 && $(date +%s) == t0; i++)); do sleep 0.05; done
reload_sidecar 10
ok $? "reload ok"
t1=$(metric sip_sidecar_last_reload_success_timestamp_seconds)
[ -n "$t1" ] && [ "$t1" -gt "$t0" ]
ok $? "last reload success moves with the reload ($t0 -> $t1)"
is 1 "$(metric sip_sidecar_reloads_ok_total)" "one reload counted"
stop_sidecar
is 0 "$SIDECAR_STATUS" "clean stop"
