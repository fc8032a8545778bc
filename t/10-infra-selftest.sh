#!/bin/bash
# 10-infra-selftest.sh: tests the integration-test infrastructure itself
# (lib.sh, recbackend, tcpclient, tlsclient) without the daemon. The TLS
# checks use gnutls-serv (gnutls-bin) and the certificates of mkcerts.sh and
# are skipped when either is missing. Note: gnutls-serv has no bind-address
# option, so it listens on the wildcard address (random port 20000-29999)
# for the few seconds those checks take.
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2154 # BACKEND_PORT_<NAME> are set by start_backend

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

for b in "$RECBACKEND" "$TCPCLIENT" "$TLSCLIENT"; do
	[ -x "$b" ] || bail_out "not built: $b"
done

# ------------------------------------------------------------ lib.sh itself
p1=$(free_port)
p2=$(free_port)
like '^2[0-9]{4}$' "$p1" "free_port prints a port in 20000-29999"
isnt "$p1" "$p2" "free_port does not hand out the same port twice"
port_listening "$p1"
ok $((!$?)) "the free port is not listening"
[ -d "$T_PORT_DIR/$p1" ]
ok $? "free_port claims its port for parallel tests"

t0=$SECONDS
wait_for_log "$T_TMP/none.log" 'never' 1
is 1 "$?" "wait_for_log fails on a missing line"
# the timeout counts 50 ms polls, each a grep and a sleep: on a machine
# whose CPUs are busy a "1 s" wait takes several seconds, but it ends
[ $((SECONDS - t0)) -le 15 ]
ok $? "wait_for_log is bounded by its timeout ($((SECONDS - t0)) s for 1 s of polls)"

# ------------------------------------------------------ recbackend: record
start_backend rec
ok $? "start_backend starts a recording backend"
like '^[0-9]+$' "$BACKEND_PORT" "start_backend sets BACKEND_PORT"
is "$BACKEND_PORT" "$BACKEND_PORT_rec" "... and BACKEND_PORT_<NAME>"
wait_port 127.0.0.1 "$BACKEND_PORT" 5
ok $? "wait_port sees the backend listening"

# raw bytes, e.g. a PROXY v2 signature, NULs and a SIP request
printf '\r\n\r\n\0\r\nQUIT\n\x21\x11\0\x0cOPTIONS sip:a SIP/2.0\r\nl: 0\r\n\r\n' >"$T_TMP/raw.bin"
head -c 10000 /dev/urandom >>"$T_TMP/raw.bin"
raw_size=$(stat -c %s "$T_TMP/raw.bin")
ok_cmd "tcpclient sends a file" "$TCPCLIENT" -c "127.0.0.1:$BACKEND_PORT" \
	--send "$T_TMP/raw.bin" --out "$T_TMP/raw.out" --read-timeout 200
[ ! -s "$T_TMP/raw.out" ]
ok $? "the recording backend answers nothing"
wait_for_log "$T_TMP/rec/events.log" "^close 1 $raw_size\$" 5
ok $? "events.log: close 1 with the byte count"
files_equal "$T_TMP/raw.bin" "$T_TMP/rec/conn-1.bin" "conn-1.bin holds exactly the bytes sent"
is "$(printf 'accept 1\nclose 1 %s' "$raw_size")" "$(cat "$T_TMP/rec/events.log")" "events.log lines"

# ------------------------------------------------------ recbackend: answer
start_backend ans -a
ok_cmd "--sip 5: five OPTIONS one at a time" "$TCPCLIENT" -c "127.0.0.1:$BACKEND_PORT" --sip 5
like 'sent=5 ok=5' "$(cat "$T_OUT")" "... summary sent=5 ok=5"
ok_cmd "--pipeline 200 with bodies" "$TCPCLIENT" -c "127.0.0.1:$BACKEND_PORT" \
	--pipeline 200 --body-size 300 --header "X-Test: 1"
like 'sent=200 ok=200' "$(cat "$T_OUT")" "... summary sent=200 ok=200"

printf 'OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/TCP h;branch=z9hG4bK1\r\n  ;folded=1\r\nf: <sip:a>;tag=1\r\nt: <sip:b>\r\ni: cid-1\r\nCSeq: 7 OPTIONS\r\nX-TLS-Peer-Identity: x\r\nl: 5\r\n\r\nhello' >"$T_TMP/compact.req"
printf '\r\n\r\nACK sip:a SIP/2.0\r\ni: cid-1\r\nContent-Length: 0\r\n\r\nSIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n' >>"$T_TMP/compact.req"
printf 'SIP/2.0 200 OK\r\nv: SIP/2.0/TCP h;branch=z9hG4bK1\r\n  ;folded=1\r\nf: <sip:a>;tag=1\r\nt: <sip:b>\r\ni: cid-1\r\nCSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n' >"$T_TMP/compact.want"
ok_cmd "compact headers, a body, keep-alives, ACK and a response" "$TCPCLIENT" \
	-c "127.0.0.1:$BACKEND_PORT" --send "$T_TMP/compact.req" --out "$T_TMP/compact.got" \
	--read-timeout 300
files_equal "$T_TMP/compact.want" "$T_TMP/compact.got" \
	"one 200 copying Via/From/To/Call-ID/CSeq; ACK and response unanswered"

# a request split across two writes, by bash itself
resp=
if exec 3<>"/dev/tcp/127.0.0.1/$BACKEND_PORT"; then
	printf 'OPTIONS sip:x SIP/2.0\r\nCall-ID: split\r\nCSeq: 1 OPT' >&3
	sleep 0.2
	printf 'IONS\r\nContent-Length: 0\r\n\r\n' >&3
	IFS= read -r -t 3 resp <&3
	exec 3<&-
fi
is $'SIP/2.0 200 OK\r' "$resp" "a request split across writes is answered"

start_backend close1 -a -C 1
ok_status 1 "-C 1 closes after one answer (tcpclient exits 1)" "$TCPCLIENT" \
	-c "127.0.0.1:$BACKEND_PORT" --sip 2 --read-timeout 1000
like 'sent=[12] ok=1' "$(cat "$T_OUT")" "... summary ok=1 (request 2 unsent or unanswered)"

# -------------------------------------------------------- recbackend: echo
start_backend echo -e
head -c 1048576 /dev/urandom >"$T_TMP/1m.bin"
ok_cmd "1 MiB echoed (--half-close)" "$TCPCLIENT" -c "127.0.0.1:$BACKEND_PORT" \
	--send "$T_TMP/1m.bin" --out "$T_TMP/1m.out" --half-close --read-timeout 3000
files_equal "$T_TMP/1m.bin" "$T_TMP/1m.out" "... byte-exact back"
wait_for_log "$T_TMP/echo/events.log" '^close 1 1048576$' 5
ok $? "... backend saw the close and 1048576 bytes"
files_equal "$T_TMP/1m.bin" "$T_TMP/echo/conn-1.bin" "... and recorded them byte-exact"

if start_backend echo6 -e -l '[::1]:0' 2>/dev/null; then
	printf 'over IPv6\n' >"$T_TMP/v6.txt"
	ok_cmd "IPv6 backend and client" "$TCPCLIENT" -c "[::1]:$BACKEND_PORT" \
		--send "$T_TMP/v6.txt" --out "$T_TMP/v6.out" --read-timeout 300
	files_equal "$T_TMP/v6.txt" "$T_TMP/v6.out" "... echoed"
else
	skip 2 "no IPv6 loopback"
fi

# ----------------------------------------------- silent, stall, close, hold
start_backend quiet -x
silent_pid=$BACKEND_PID
printf 'ping\r\n' >"$T_TMP/ping.txt"
ok_status 1 "--expect-close fails when the peer stays open" "$TCPCLIENT" \
	-c "127.0.0.1:$BACKEND_PORT" --send "$T_TMP/ping.txt" --expect-close --read-timeout 300
(sleep 0.3 && kill -USR1 "$silent_pid") >/dev/null 2>&1 &
track_pid $!
ok_cmd "SIGUSR1 makes the backend hang up; --expect-close sees it" "$TCPCLIENT" \
	-c "127.0.0.1:$BACKEND_PORT" --send "$T_TMP/ping.txt" --expect-close --read-timeout 5000
t0=$(date +%s%N)
ok_cmd "--hold keeps an idle connection open" "$TCPCLIENT" -c "127.0.0.1:$BACKEND_PORT" \
	--hold 400 --send "$T_TMP/ping.txt" --read-timeout 100
[ $((($(date +%s%N) - t0) / 1000000)) -ge 400 ]
ok $? "... for the time asked"
wait_for_log "$T_TMP/quiet/events.log" '^close 3 6$' 5
ok $? "... and sends after it"

start_backend stall -S
head -c $((32 * 1024 * 1024)) /dev/zero >"$T_TMP/32m.bin"
ok_status 4 "a backend that never reads stalls the sender (exit 4)" "$TCPCLIENT" \
	-c "127.0.0.1:$BACKEND_PORT" --send "$T_TMP/32m.bin" --read-timeout 500
like 'send stalled' "$(cat "$T_OUT")" "... reported as a stall"

ok_status 2 "connect to a port nobody listens on: exit 2" "$TCPCLIENT" -c "127.0.0.1:$p2"

# ------------------------------------------------- start_sidecar/stop_sidecar
cat >"$T_TMP/fake.conf" <<EOF
[listen test]
bind = 127.0.0.1:$p1
EOF
SIDECAR=/bin/false start_sidecar "$T_TMP/fake.conf" "$p1" >"$T_TMP/expected-diag.out"
is 1 "$?" "start_sidecar fails when the daemon exits"
is 1 "$SIDECAR_STATUS" "... and records its status"
like 'exited with status 1' "$(cat "$T_TMP/expected-diag.out")" "... and says so"

# a stand-in daemon: logs "listening" and listens on the bind port
cat >"$T_TMP/fake-sidecar" <<EOF
#!/bin/sh
port=\$(sed -n 's/^bind = 127.0.0.1:\([0-9]*\)\$/\1/p' "\$2")
echo "listener test: listening on 127.0.0.1:\$port" >&2
exec "$RECBACKEND" -x -l "127.0.0.1:\$port"
EOF
chmod +x "$T_TMP/fake-sidecar"
SIDECAR=$T_TMP/fake-sidecar start_sidecar "$T_TMP/fake.conf" "$p1"
ok $? "start_sidecar waits for the bind port"
port_listening "$p1"
ok $? "... which then listens"
stop_sidecar 5
ok $? "stop_sidecar stops it"
is 0 "$SIDECAR_STATUS" "... and records exit status 0"
SIDECAR=$T_TMP/fake-sidecar start_sidecar "$T_TMP/fake.conf"
ok $? "start_sidecar without ports waits for a new 'listening' log line"
stop_sidecar 5
is 2 "$(log_count "$SIDECAR_LOG" listening)" "both runs logged to sidecar.log"

# ---------------------------------------------------------------- tlsclient
if ! command -v gnutls-serv >/dev/null 2>&1; then
	skip 29 "gnutls-serv not installed"
	done_testing
fi
if ! certs_dir >/dev/null; then
	skip 29 "no test certificates (t/mkcerts.sh)"
	done_testing
fi
pass "certs_dir made the test PKI"
C=$CERTS

tls_port=$(free_port)
gnutls-serv --echo --crlf -q -p "$tls_port" --x509certfile "$C/server.crt" \
	--x509keyfile "$C/server.key" >/dev/null 2>"$T_TMP/gnutls-serv.log" </dev/null &
track_pid $!
wait_port 127.0.0.1 "$tls_port" 10
ok $? "gnutls-serv (TLS echo) is up"

printf 'OPTIONS sip:x SIP/2.0\r\n\r\n' >"$T_TMP/small.txt"
ok_cmd "tlsclient verifies 127.0.0.1 against --ca and gets its echo" "$TLSCLIENT" \
	-c "127.0.0.1:$tls_port" --ca "$C/ca.crt" --send "$T_TMP/small.txt" \
	--out "$T_TMP/small.out" --read-timeout 500 --print-info
files_equal "$T_TMP/small.txt" "$T_TMP/small.out" "... byte-exact"
info=$(cat "$T_OUT")
like 'version=TLS1\.3 cipher=[^ ]+ ' "$info" "--print-info: version and cipher"
like 'resumed=no' "$info" "--print-info: resumed=no on a full handshake"
want_serial=$("$TLSCLIENT" --show-serial "$C/server.crt")
like "${want_serial}[[:space:]]" "$info" "--print-info: the server leaf's serial ($want_serial)"
like 'cert-dn=.*CN=sip\.example\.test' "$info" "--print-info: the subject DN"

ok_status 3 "a name the certificate lacks fails the handshake (exit 3)" "$TLSCLIENT" \
	-c "127.0.0.1:$tls_port" --ca "$C/ca.crt" --verify-name wrong.example.test \
	--send "$T_TMP/small.txt" --read-timeout 500
like 'handshake failed' "$(cat "$T_OUT")" "... with the GnuTLS error"
ok_cmd "--sni names the server (and is the default verify name)" "$TLSCLIENT" \
	-c "127.0.0.1:$tls_port" --ca "$C/ca.crt" --sni sip.example.test \
	--send "$T_TMP/small.txt" --read-timeout 300
ok_status 3 "an unknown issuer fails the handshake" "$TLSCLIENT" \
	-c "127.0.0.1:$tls_port" --ca "$C/ca2.crt" --send "$T_TMP/small.txt" --read-timeout 300
ok_cmd "without --ca nothing is verified" "$TLSCLIENT" \
	-c "127.0.0.1:$tls_port" --verify-name wrong.example.test \
	--send "$T_TMP/small.txt" --read-timeout 300

rm -f "$T_TMP/sess"
ok_cmd "--repeat 2 --sessfile" "$TLSCLIENT" -c "127.0.0.1:$tls_port" --ca "$C/ca.crt" \
	--sessfile "$T_TMP/sess" --repeat 2 --send "$T_TMP/small.txt" --read-timeout 300 \
	--print-info --out /dev/null
is "no yes" "$(grep -o 'resumed=[a-z]*' "$T_OUT" | cut -d= -f2 | tr '\n' ' ' | sed 's/ $//')" \
	"... full handshake, then resumed"
ok_cmd "a later run resumes from the saved ticket" "$TLSCLIENT" -c "127.0.0.1:$tls_port" \
	--ca "$C/ca.crt" --sessfile "$T_TMP/sess" --send "$T_TMP/small.txt" --read-timeout 300 \
	--print-info --out /dev/null
like 'resumed=yes' "$(cat "$T_OUT")" "... resumed=yes"
ok_cmd "--priority selects TLS 1.2" "$TLSCLIENT" -c "127.0.0.1:$tls_port" \
	--ca "$C/ca.crt" --priority 'NORMAL:-VERS-TLS1.3' --read-timeout 200 --print-info
like 'version=TLS1\.2 ' "$(cat "$T_OUT")" "... version=TLS1.2"

base64 -w 76 "$T_TMP/1m.bin" | head -c 1048576 >"$T_TMP/1m.txt"
ok_cmd "1 MiB through TLS and back (--half-close)" "$TLSCLIENT" -c "127.0.0.1:$tls_port" \
	--ca "$C/ca.crt" --send "$T_TMP/1m.txt" --out "$T_TMP/1m.tls.out" --half-close \
	--read-timeout 3000
files_equal "$T_TMP/1m.txt" "$T_TMP/1m.tls.out" "... byte-exact"

ok_status 3 "a plaintext echo server fails the handshake" "$TLSCLIENT" \
	-c "127.0.0.1:$BACKEND_PORT_echo" --read-timeout 300
ok_status 3 "a silent server times the handshake out" "$TLSCLIENT" \
	-c "127.0.0.1:$BACKEND_PORT_quiet" --handshake-timeout 300

mtls_port=$(free_port)
gnutls-serv --echo --crlf -q -p "$mtls_port" -r --verify-client-cert \
	--x509cafile "$C/ca.crt" --x509certfile "$C/server.crt" \
	--x509keyfile "$C/server.key" >/dev/null 2>"$T_TMP/gnutls-serv-mtls.log" </dev/null &
track_pid $!
wait_port 127.0.0.1 "$mtls_port" 10
ok $? "gnutls-serv (MTLS echo) is up"
ok_status 3 "MTLS without a client certificate: exit 3 (TLS 1.3 alert after the handshake)" \
	"$TLSCLIENT" -c "127.0.0.1:$mtls_port" --ca "$C/ca.crt" --send "$T_TMP/small.txt" \
	--read-timeout 2000
ok_status 3 "an untrusted client certificate is still sent, and refused" "$TLSCLIENT" \
	-c "127.0.0.1:$mtls_port" --ca "$C/ca.crt" --cert "$C/client-rogue.crt" \
	--key "$C/client-rogue.key" --send "$T_TMP/small.txt" --read-timeout 2000
like 'alert: Access was denied' "$(cat "$T_OUT")" "... by the server's verification, not for lack of one"
ok_cmd "MTLS with the client certificate" "$TLSCLIENT" -c "127.0.0.1:$mtls_port" \
	--ca "$C/ca.crt" --cert "$C/client.crt" --key "$C/client.key" \
	--send "$T_TMP/small.txt" --out "$T_TMP/mtls.out" --read-timeout 500
files_equal "$T_TMP/small.txt" "$T_TMP/mtls.out" "... echoed"

done_testing
