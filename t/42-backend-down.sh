#!/bin/bash
# 42-backend-down.sh: the legacy server is not listening. With SIP framing
# on, requests from a TLS client get "503 Service Unavailable" with a
# Retry-After header and their Via/From/To/Call-ID/CSeq copied (an ACK and a
# response get nothing); the event is logged once per connection, not per
# message; the daemon keeps serving; once the backend is up, the next
# connection goes through.
# SPDX-License-Identifier: MIT

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

plan 23

crlf() { printf '%s\r\n' "$@"; }
# req METHOD CALLID CSEQ [BODY]: a request as the TLS client sends it.
req() {
	local body=${4-}
	crlf "$1 sip:svc@example.test SIP/2.0" "Via: SIP/2.0/TLS 127.0.0.1:5099;branch=z9hG4bK-$2-$3" \
		"Max-Forwards: 70" "From: <sip:tester@example.test>;tag=ft-$2" "To: <sip:svc@example.test>" \
		"Call-ID: $2" "CSeq: $3 $1" "Content-Length: ${#body}" ""
	printf '%s' "$body"
}
# resp503 CALLID CSEQ METHOD: the 503 the daemon must send (the To tag it
# adds and the Retry-After value written as TAG and N, see norm).
resp503() {
	crlf "SIP/2.0 503 Service Unavailable" "Via: SIP/2.0/TLS 127.0.0.1:5099;branch=z9hG4bK-$1-$2" \
		"From: <sip:tester@example.test>;tag=ft-$1" "To: <sip:svc@example.test>;tag=TAG" \
		"Call-ID: $1" "CSeq: $2 $3" "Retry-After: N" "Content-Length: 0" ""
}
norm() {
	sed -E -e 's/^(To: [^\r]*);tag=[0-9a-f]{1,16}(\r?)$/\1;tag=TAG\2/' \
		-e 's/^Retry-After: [0-9]+( ?\([^)]*\))?(;[^\r]*)?(\r?)$/Retry-After: N\3/'
}

# ------------------------------------------------------------------ setup
BP=$(free_port) # claimed for this script, nobody listens on it yet
P=$(free_port)
conf=$T_TMP/sidecar.conf
cat >"$conf" <<EOF
[global]
allow-root = yes
log-level = info
[listen sip]
bind = 127.0.0.1:$P
backend = 127.0.0.1:$BP
cert = $C/server.crt
key = $C/server.key
EOF
start_sidecar "$conf" "$P" || bail_out "the daemon did not start"
port_listening "$BP"
ok $((!$?)) "nothing listens on the backend port $BP"

# INVITE (with a body), OPTIONS, ACK, a response, OPTIONS: one write
sdp=$(crlf "v=0" "o=- 1 1 IN IP4 127.0.0.1" "s=-" "c=IN IP4 127.0.0.1" "t=0 0" "m=audio 4000 RTP/AVP 0")
sdp=$sdp$'\r\n'
{
	req INVITE down-1 1 "$sdp"
	req OPTIONS down-2 2
	req ACK down-1 1
	crlf "SIP/2.0 200 OK" "Via: SIP/2.0/TLS 10.0.0.1;branch=z9hG4bK-x" "From: <sip:a@b>;tag=1" \
		"To: <sip:c@d>;tag=2" "Call-ID: down-peer-response" "CSeq: 9 BYE" "Content-Length: 0" ""
	req OPTIONS down-3 3
} >"$T_TMP/reqs"
{
	resp503 down-1 1 INVITE
	resp503 down-2 2 OPTIONS
	resp503 down-3 3 OPTIONS
} >"$T_TMP/want"

mark_log
ok_cmd "a TLS client sends INVITE, OPTIONS, ACK, a response, OPTIONS on one connection" \
	"$TLSCLIENT" -c "127.0.0.1:$P" --send "$T_TMP/reqs" --out "$T_TMP/out" --read-timeout 1000
is 3 "$(grep -ac '^SIP/2.0 ' "$T_TMP/out")" "... 3 answers: one per request, none for the ACK or the response"
is "down-1 down-2 down-3" "$(grep -a '^Call-ID:' "$T_TMP/out" | tr -d '\r' | cut -d' ' -f2 | xargs)" \
	"... in order, with the Call-IDs of the requests"
is 3 "$(grep -acE '^Retry-After: [0-9]+' "$T_TMP/out")" "... each with a Retry-After header"
norm <"$T_TMP/out" >"$T_TMP/out.norm"
files_equal "$T_TMP/want" "$T_TMP/out.norm" \
	"... each a complete 503 Service Unavailable with Via/From/To/Call-ID/CSeq copied, Content-Length: 0"
[ "$(grep -ac $'\r$' "$T_TMP/out")" = "$(grep -ac '' "$T_TMP/out")" ]
ok $? "... every line ends with CRLF"
like "peer=127\.0\.0\.1:[0-9]+ accepted" "$(newlog)" "the TLS handshake itself succeeded"
is 1 "$(newlog | grep -v 'closed:' | grep -c 'unavailable')" \
	"the unavailable backend is logged once for the connection, not once per message"
like "listen=sip peer=127\.0\.0\.1:[0-9]+ .*unavailable" "$(newlog)" "... naming the listener and the peer"

# the daemon keeps serving: a second connection, the same answer, one more line
mark_log
ok_status 1 "a second connection: --sip 2 gets no 200" \
	"$TLSCLIENT" -c "127.0.0.1:$P" --sip 2 --out "$T_TMP/out2" --read-timeout 1000
like 'sent=2 ok=0' "$(cat "$T_OUT")" "... both requests answered, neither with 200"
is 2 "$(grep -ac '^SIP/2.0 503 Service Unavailable' "$T_TMP/out2")" "... but with two 503s"
is 1 "$(newlog | grep -v 'closed:' | grep -c 'unavailable')" "... and one more log line for the new connection"

# an ACK alone gets nothing
printf '' >"$T_TMP/empty"
ack=$T_TMP/ack
req ACK down-4 1 >"$ack"
ok_cmd "an ACK alone" "$TLSCLIENT" -c "127.0.0.1:$P" --send "$ack" --out "$T_TMP/out3" --read-timeout 700
files_equal "$T_TMP/empty" "$T_TMP/out3" "... gets no answer"

# the backend comes up on its port: the next connection goes through
start_backend up -a -l "127.0.0.1:$BP" || bail_out "cannot start the backend on port $BP"
is "$BP" "$BACKEND_PORT" "the backend is now up on port $BP"
mark_log
ok_cmd "the next connection: OPTIONS answered with 200 by the backend" \
	"$TLSCLIENT" -c "127.0.0.1:$P" --sip 1 --read-timeout 3000
like 'sent=1 ok=1' "$(cat "$T_OUT")" "... sent=1 ok=1"
wait_for_log "$T_TMP/up/events.log" '^close 1 ' 5
like 'Call-ID:' "$(cat "$T_TMP/up/conn-1.bin" 2>/dev/null)" "... the request reached the backend"
is 0 "$(newlog | grep -c 'unavailable')" "... and nothing is logged as unavailable"

ok_cmd "the daemon is still running" kill -0 "$SIDECAR_PID"
stop_sidecar 10
is 0 "$SIDECAR_STATUS" "SIGTERM: exit status 0"

done_testing
