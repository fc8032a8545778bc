#!/bin/bash
# 20-tls-relay.sh: the core TLS relay of sip-sidecar, end to end: a TLS client
# (t/tlsclient) -> the daemon -> a stand-in legacy server (t/recbackend).
# Covers: a SIP round trip byte for byte, the accepted/closed log lines,
# IPv6, TLS 1.2, refusal of TLS 1.1/1.0, certificate selection (ECDSA vs
# RSA by signature algorithms, SNI), pipelining, 1 MiB each way with
# sip-framing = off, session resumption, a backend that is down, SIGTERM.
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2154 # BACKEND_PORT_<NAME>, BACKEND_PID_<NAME> are set by start_backend

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

require_sidecar
for b in "$RECBACKEND" "$TLSCLIENT"; do
	[ -x "$b" ] || bail_out "not built: $b"
done
certs_dir >/dev/null || skip_all "no test certificates (t/mkcerts.sh)"
C=$CERTS

plan 65

# ---------------------------------------------------------------- helpers

# accepts DIR: how many connections the backend recorded in DIR has accepted.
accepts() {
	log_count "$1/events.log" '^accept '
}

# info_field NAME: NAME=VALUE from tlsclient --print-info output in $T_OUT.
info_field() {
	grep -o "$1=[^ ]*" "$T_OUT" | head -n 1 | cut -d= -f2
}

have_ipv6=0
grep -qi '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null && have_ipv6=1

# ------------------------------------------------------------------ setup
start_backend ans -a || bail_out "cannot start the answering backend"
start_backend echo -e || bail_out "cannot start the echo backend"
BACKEND_DIR_ans=$T_TMP/ans
BACKEND_DIR_echo=$T_TMP/echo
p_pub=$(free_port)
p_v6=$(free_port)
p_raw=$(free_port)
p_down=$(free_port)
p_dead=$(free_port) # claimed, never listened on: the backend that is down

conf=$T_TMP/relay.conf
cat >"$conf" <<EOF
[global]
allow-root = yes
log-level = info

# server.crt (ECDSA) first: the default; server-rsa.crt for RSA-only
# clients; server-wrongname.crt (wrong.example.test) by SNI
[listen pub]
bind = 127.0.0.1:$p_pub
backend = 127.0.0.1:$BACKEND_PORT_ans
topology = off             # byte-exact relay checks; translation: t/44-topology.sh
cert = $C/server.crt
key = $C/server.key
cert = $C/server-rsa.crt
key = $C/server-rsa.key
cert = $C/server-wrongname.crt
key = $C/server-wrongname.key

[listen raw]
bind = 127.0.0.1:$p_raw
backend = 127.0.0.1:$BACKEND_PORT_echo
topology = off             # byte-exact relay checks; translation: t/44-topology.sh
cert = $C/server.crt
key = $C/server.key
sip-framing = off

[listen down]
bind = 127.0.0.1:$p_down
backend = 127.0.0.1:$p_dead
topology = off             # byte-exact relay checks; translation: t/44-topology.sh
cert = $C/server.crt
key = $C/server.key
sip-framing = off
EOF
ports=("$p_pub" "$p_raw" "$p_down")
if [ "$have_ipv6" = 1 ]; then
	cat >>"$conf" <<EOF

[listen v6]
bind = [::1]:$p_v6
backend = 127.0.0.1:$BACKEND_PORT_ans
topology = off             # byte-exact relay checks; translation: t/44-topology.sh
cert = $C/server.crt
key = $C/server.key
EOF
	ports+=("$p_v6")
fi

start_sidecar "$conf" "${ports[@]}" || bail_out "the daemon did not start"
pass "the daemon starts with four listeners and listens"

serial_ecdsa=$("$TLSCLIENT" --show-serial "$C/server.crt" | cut -d= -f2)
serial_rsa=$(certtool -i --infile "$C/server-rsa.crt" 2>/dev/null |
	sed -n 's/^[[:space:]]*Serial Number (hex):[[:space:]]*//p' | sed 's/^\(00\)*//' | tr 'A-F' 'a-f')
serial_wrong=$("$TLSCLIENT" --show-serial "$C/server-wrongname.crt" | cut -d= -f2)
[ -n "$serial_rsa" ] || serial_rsa=$("$TLSCLIENT" --show-serial "$C/server-rsa.crt" | cut -d= -f2)

# ------------------------------------------------ a SIP round trip, logs
req=$T_TMP/options.req
printf 'OPTIONS sip:ping@sip.example.test SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-relay-1\r\nMax-Forwards: 70\r\nFrom: <sip:t@test.invalid>;tag=rt1\r\nTo: <sip:ping@sip.example.test>\r\nCall-ID: relay-1@test.invalid\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' >"$req"
mark_log
n=$(($(accepts "$BACKEND_DIR_ans") + 1))
ok_cmd "OPTIONS over TLS 1.3 (verifying the server as 127.0.0.1)" "$TLSCLIENT" \
	-c "127.0.0.1:$p_pub" --ca "$C/ca.crt" --send "$req" --out "$T_TMP/options.resp" \
	--read-timeout 1000 --print-info
is TLS1.3 "$(info_field version)" "... negotiated TLS 1.3"
like '^SIP/2\.0 200 OK' "$(head -n 1 "$T_TMP/options.resp")" "... got 200 OK through the daemon"
like 'Call-ID: relay-1@test\.invalid' "$(cat "$T_TMP/options.resp")" "... for our request"
wait_for_file "$BACKEND_DIR_ans/conn-$n.bin" 5
files_equal "$req" "$BACKEND_DIR_ans/conn-$n.bin" "the backend received the request byte for byte"
wait_new 'closed:' 5
accepted=$(newlog | grep -E "listen=pub peer=127\.0\.0\.1:[0-9]+ accepted " | head -n 1)
like 'accepted TLS1\.3 [A-Z0-9-]+ anonymous$' "$accepted" "log: accepted TLS1.3 CIPHER anonymous"
unlike 'resumed' "$accepted" "... not resumed"
reqsize=$(stat -c %s "$req")
respsize=$(stat -c %s "$T_TMP/options.resp")
closed=$(newlog | grep -E 'listen=pub .* closed:' | head -n 1)
like "closed: [^;]+; in=$reqsize bytes/1 msgs out=$respsize bytes/1 msgs duration=[0-9.]+s" "$closed" \
	"log: closed with in=$reqsize bytes/1 msgs out=$respsize bytes/1 msgs and a duration"

# ------------------------------------------------------------------ IPv6
if [ "$have_ipv6" = 1 ]; then
	mark_log
	ok_cmd "IPv6: --sip 3 on [::1]" "$TLSCLIENT" -c "[::1]:$p_v6" --ca "$C/ca.crt" --sip 3
	like 'sent=3 ok=3' "$(cat "$T_OUT")" "... all three answered"
	wait_new 'listen=v6 peer=\[::1\]:[0-9]+ closed:' 5
	like 'listen=v6 peer=\[::1\]:[0-9]+ accepted TLS1\.3' "$(newlog)" "... logged with the IPv6 peer"
else
	skip 3 "no IPv6 loopback"
fi

# -------------------------------------------------------- TLS versions
mark_log
ok_cmd "a TLS 1.2-only client is served" "$TLSCLIENT" -c "127.0.0.1:$p_pub" --ca "$C/ca.crt" \
	--priority 'NORMAL:-VERS-ALL:+VERS-TLS1.2' --sip 1 --print-info
is TLS1.2 "$(info_field version)" "... with TLS 1.2"
like 'sent=1 ok=1' "$(cat "$T_OUT")" "... and answered"
wait_new 'accepted TLS1\.2' 5
ok $? "log: accepted TLS1.2"

for v in 1.1 1.0; do
	mark_log
	before=$(accepts "$BACKEND_DIR_ans")
	ok_status 3 "a TLS $v-only client is refused (handshake fails)" "$TLSCLIENT" \
		-c "127.0.0.1:$p_pub" --ca "$C/ca.crt" --priority "NORMAL:-VERS-ALL:+VERS-TLS$v" \
		--sip 1 --read-timeout 1000
	wait_new 'listen=pub peer=127\.0\.0\.1:[0-9]+ refused: handshake failed' 5
	ok $? "... log: refused: handshake failed"
	sleep 0.1
	is "$before" "$(accepts "$BACKEND_DIR_ans")" "... the backend got no connection"
done
ok_cmd "... and a good client is still served" "$TLSCLIENT" -c "127.0.0.1:$p_pub" \
	--ca "$C/ca.crt" --sip 1
like 'sent=1 ok=1' "$(cat "$T_OUT")" "... answered"

# -------------------------------------------------- certificate selection
ok_cmd "a default client" "$TLSCLIENT" -c "127.0.0.1:$p_pub" --ca "$C/ca.crt" --sip 1 --print-info
is "$serial_ecdsa" "$(info_field cert-serial)" "... gets the ECDSA certificate (serial $serial_ecdsa)"
ok_cmd "a client offering only RSA signatures" "$TLSCLIENT" -c "127.0.0.1:$p_pub" \
	--ca "$C/ca.crt" --priority 'NORMAL:-SIGN-ALL:+SIGN-RSA-SHA256:+SIGN-RSA-PSS-RSAE-SHA256' \
	--sip 1 --print-info
is "$serial_rsa" "$(info_field cert-serial)" "... gets the RSA certificate (certtool serial $serial_rsa)"
ok_cmd "a TLS 1.2 client offering only RSA signatures" "$TLSCLIENT" -c "127.0.0.1:$p_pub" \
	--ca "$C/ca.crt" --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.2:-SIGN-ALL:+SIGN-RSA-SHA256:+SIGN-RSA-SHA384' \
	--sip 1 --print-info
is "$serial_rsa" "$(info_field cert-serial)" "... gets the RSA certificate too"
ok_cmd "SNI wrong.example.test" "$TLSCLIENT" -c "127.0.0.1:$p_pub" --ca "$C/ca.crt" \
	--sni wrong.example.test --sip 1 --print-info
is "$serial_wrong" "$(info_field cert-serial)" "... selects server-wrongname.crt (serial $serial_wrong)"
ok_cmd "SNI sip.example.test" "$TLSCLIENT" -c "127.0.0.1:$p_pub" --ca "$C/ca.crt" \
	--sni sip.example.test --sip 1 --print-info
is "$serial_ecdsa" "$(info_field cert-serial)" "... selects server.crt"

# ------------------------------------------------------------- pipelining
n=$(($(accepts "$BACKEND_DIR_ans") + 1))
ok_cmd "--pipeline 20 on one connection" "$TLSCLIENT" -c "127.0.0.1:$p_pub" --ca "$C/ca.crt" \
	--pipeline 20 --out "$T_TMP/pipe.out"
like 'sent=20 ok=20' "$(cat "$T_OUT")" "... all 20 answered (200, matching CSeq and Call-ID)"
is 20 "$(grep -c '^SIP/2.0 200 OK' "$T_TMP/pipe.out")" "... 20 responses received"
wait_for_file "$BACKEND_DIR_ans/conn-$n.bin" 5
is "$(seq 1 20 | tr '\n' ' ')" \
	"$(grep -a '^CSeq:' "$BACKEND_DIR_ans/conn-$n.bin" | tr -dc '0-9 \n' | awk '{print $1}' | tr '\n' ' ')" \
	"... the backend got CSeq 1..20 in order"
is 20 "$(grep -ac '^OPTIONS ' "$BACKEND_DIR_ans/conn-$n.bin")" "... 20 requests on one backend connection"

# -------------------------------------------- 1 MiB each way, framing off
head -c 1048576 /dev/urandom >"$T_TMP/1m.bin"
mark_log
n=$(($(accepts "$BACKEND_DIR_echo") + 1))
ok_cmd "1 MiB of binary data through sip-framing = off, echoed back (--half-close)" \
	"$TLSCLIENT" -c "127.0.0.1:$p_raw" --ca "$C/ca.crt" --send "$T_TMP/1m.bin" \
	--out "$T_TMP/1m.out" --half-close --read-timeout 5000
files_equal "$T_TMP/1m.bin" "$T_TMP/1m.out" "... the client got it back byte for byte"
wait_for_log "$BACKEND_DIR_echo/events.log" "^close $n 1048576\$" 5
ok $? "... the backend saw 1048576 bytes and the close"
files_equal "$T_TMP/1m.bin" "$BACKEND_DIR_echo/conn-$n.bin" "... and recorded them byte for byte"
wait_new 'listen=raw .* closed:' 5
like 'listen=raw .* closed: .*in=1048576 bytes/[0-9]+ msgs out=1048576 bytes/[0-9]+ msgs' "$(newlog)" \
	"log: 1048576 bytes each way"

# ------------------------------------------------------ session resumption
rm -f "$T_TMP/sess"
mark_log
ok_cmd "first connection saves a session (--sessfile)" "$TLSCLIENT" -c "127.0.0.1:$p_pub" \
	--ca "$C/ca.crt" --sessfile "$T_TMP/sess" --sip 1 --print-info
is no "$(info_field resumed)" "... full handshake"
[ -s "$T_TMP/sess" ]
ok $? "... a session ticket was received"
ok_cmd "second connection with the same --sessfile" "$TLSCLIENT" -c "127.0.0.1:$p_pub" \
	--ca "$C/ca.crt" --sessfile "$T_TMP/sess" --sip 1 --print-info
is yes "$(info_field resumed)" "... resumed=yes"
like 'sent=1 ok=1' "$(cat "$T_OUT")" "... and answered"
wait_new 'accepted TLS1\.3 [A-Z0-9-]+ anonymous resumed$' 5
ok $? "log: accepted ... anonymous resumed"
is 1 "$(newlog | grep -c ' resumed$')" "log: only the second handshake is resumed"

# ------------------------------------------------------ backend is down
mark_log
before_ans=$(accepts "$BACKEND_DIR_ans")
printf 'some bytes for nobody\r\n' >"$T_TMP/nobody.txt"
ok_cmd "backend down: the TLS connection is closed by the daemon" "$TLSCLIENT" \
	-c "127.0.0.1:$p_down" --ca "$C/ca.crt" --send "$T_TMP/nobody.txt" --expect-close \
	--read-timeout 3000 --print-info --out "$T_TMP/nobody.out"
like 'peer-closed=yes' "$(cat "$T_OUT")" "... peer-closed=yes"
unlike 'error|fatal|non-properly|reset' "$(cat "$T_OUT")" "... cleanly (close_notify, no TLS error)"
[ ! -s "$T_TMP/nobody.out" ]
ok $? "... and nothing was received"
wait_new "listen=down peer=127\\.0\\.0\\.1:[0-9]+ backend 127\\.0\\.0\\.1:$p_dead unavailable" 5
ok $? "log: backend 127.0.0.1:$p_dead unavailable"
wait_new 'listen=down .* closed: backend unavailable' 5
ok $? "log: closed: backend unavailable"
ok_cmd "the daemon keeps serving" "$TLSCLIENT" -c "127.0.0.1:$p_pub" --ca "$C/ca.crt" --sip 2
like 'sent=2 ok=2' "$(cat "$T_OUT")" "... answered"
is $((before_ans + 1)) "$(accepts "$BACKEND_DIR_ans")" "... (the other backend saw only that connection)"

# ---------------------------------------------------------------- SIGTERM
mark_log
daemon_pid=$SIDECAR_PID
stop_sidecar 10
ok $? "SIGTERM: the daemon exits"
is 0 "$SIDECAR_STATUS" "... with status 0"
like 'stopped' "$(newlog | tail -n 3)" "... after logging 'stopped'"
[ ! -d "/proc/$daemon_pid" ] && ! port_listening "$p_pub"
ok $? "... and no longer listens"

done_testing
