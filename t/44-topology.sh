#!/bin/bash
# 44-topology.sh: SIP topology at the TLS boundary, end to end, with the
# stand-in legacy server (recbackend -a -r: a registrar that answers 200 OK
# with the request's Contact and Record-Route) and TLS test clients.
#  - what the legacy server sees: the top Via over TCP (;rport;sc-tls), the
#    advertised Route translated to its own address, the client's Contact
#    wrapped into a flow URI of the sidecar's loopback flow listener;
#  - what the client sees: its own Via, its own Contact in the 200 OK, the
#    advertised address where the legacy server wrote its own;
#  - the default advertised host (the certificate's DNS name) and `advertise`;
#  - a request the legacy server sends to a flow URI over a new connection to
#    the flow listener reaches the client's TLS connection, translated, after
#    the connection was quiet longer than idle-timeout (a registered flow
#    lives as long as its binding);
#  - a request for a flow that is gone gets 430 and "flow failed";
#  - a forged flow token and an unparsable URI get 400 at the door, nothing of
#    them reaches the legacy server, and the daemon serves the next client;
#  - a client cannot take over another's flow: its Contact is wrapped into
#    its own flow, whatever it claims.
# SPDX-License-Identifier: MIT
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

require_sidecar
for b in "$RECBACKEND" "$TLSCLIENT" "$TCPCLIENT"; do
	[ -x "$b" ] || bail_out "not built: $b"
done
certs_dir >/dev/null || skip_all "no test certificates (t/mkcerts.sh)"
C=$CERTS

plan 56

crlf() { printf '%s\r\n' "$@"; }
client() {
	local port=$1
	shift
	"$TLSCLIENT" -c "127.0.0.1:$port" --ca "$C/ca.crt" --verify-name sip.example.test "$@"
}
# backend_has REGEX: some backend connection's bytes match (grep -E -a)
backend_has() {
	cat "$REG"/conn-*.bin 2>/dev/null | tr -d '\r' | grep -Eaq -- "$1"
}
wait_backend() {
	local i
	for ((i = 0; i < 400; i++)); do
		backend_has "$1" && return 0
		sleep 0.05
	done
	return 1
}
wait_file_has() {
	local i
	for ((i = 0; i < 400; i++)); do
		[ -f "$1" ] && tr -d '\r' <"$1" | grep -Eaq -- "$2" && return 0
		sleep 0.05
	done
	return 1
}

start_backend reg -a -r || bail_out "cannot start the registrar stand-in"
REG=$T_TMP/reg
BP=$BACKEND_PORT_reg
start_backend far -a -r || bail_out "cannot start the far stand-in"
FAR=$T_TMP/far
P=$(free_port)
PA=$(free_port)
PF=$(free_port)
PC=$(free_port)
conf=$T_TMP/sidecar.conf
cat >"$conf" <<EOF
[global]
allow-root = yes
workers = 1
idle-timeout = 3s
registration-margin = 1s
log-level = debug

[listen pub]
bind = 127.0.0.1:$P
backend = 127.0.0.1:$BP
cert = $C/server.crt
key = $C/server.key

[listen adv]
bind = 127.0.0.1:$PA
backend = 127.0.0.1:$BP
cert = $C/server.crt
key = $C/server.key
advertise = edge.example.test

# a peer server's stand-in for [connect]: no translation there, so its
# backend records what [connect] sent
[listen far]
bind = 127.0.0.1:$PF
backend = 127.0.0.1:$BACKEND_PORT_far
cert = $C/server.crt
key = $C/server.key
topology = off

[connect out]
bind = 127.0.0.1:$PC
server = 127.0.0.1:$PF
server-name = sip.example.test
ca = $C/ca.crt
EOF
start_sidecar "$conf" "$P" "$PA" "$PF" "$PC" || bail_out "the daemon did not start"
FP=$(sed -n 's/.*flows: the legacy server reaches TLS clients through 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$SIDECAR_LOG" | head -n 1)
[ -n "$FP" ]
ok $? "the flow listener's port is logged ($FP)"

# ---------------------------------------------------------------- REGISTER
VIA="Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK-reg"
crlf "REGISTER sip:sip.example.test SIP/2.0" "$VIA" "Max-Forwards: 70" \
	"Route: <sip:sip.example.test:$P;transport=tls;lr>" \
	"From: <sip:alice@sip.example.test>;tag=a1" "To: <sip:alice@sip.example.test>" \
	"Call-ID: reg-alice" "CSeq: 1 REGISTER" \
	"Contact: \"Alice, A.\" <sip:alice@192.0.2.10:5061;transport=tls;ob>;expires=30" \
	"Record-Route: <sip:sip.example.test:$P;transport=tls;lr;ftag=a1>" \
	"Content-Length: 0" "" >"$T_TMP/reg.in"
"$TLSCLIENT" -c "127.0.0.1:$P" --ca "$C/ca.crt" --verify-name sip.example.test --send "$T_TMP/reg.in" \
	--out "$T_TMP/alice.out" --read-timeout 60000 --max-time 90000 >"$T_TMP/alice.log" 2>&1 &
ALICE=$!
track_pid "$ALICE"
wait_backend 'Call-ID: reg-alice'
ok $? "the REGISTER reaches the legacy server"
backend_has "^Via: SIP/2.0/TCP 192.0.2.10:5061;branch=z9hG4bK-reg;rport;sc-tls$"
ok $? "... its top Via says TCP, with rport and the sc-tls mark"
backend_has "^Route: <sip:127.0.0.1:$BP;transport=tcp;lr>$"
ok $? "... the advertised Route names the legacy server itself"
backend_has "^Record-Route: <sip:127.0.0.1:$BP;transport=tcp;lr;ftag=a1>$"
ok $? "... and so does the Record-Route (ftag kept)"
backend_has "^Contact: \"Alice, A.\" <sip:alice@127.0.0.1:$FP;transport=tcp;sc-flow=[A-Za-z0-9_-]+;sc-o=[A-Za-z0-9_-]+>;expires=30$"
ok $? "... the Contact is a flow URI of the flow listener (display name with comma, expires kept)"
! backend_has "192.0.2.10:5061;transport=tls"
ok $? "... the client's TLS Contact does not reach the legacy server"
ALICE_FLOW=$(cat "$REG"/conn-*.bin | tr -d '\r' | sed -n 's/^Contact: .*<\(sip:alice@127.0.0.1:[0-9]*;[^>]*\)>.*/\1/p' | head -n 1)
[ -n "$ALICE_FLOW" ]
ok $? "the flow URI: $ALICE_FLOW"

wait_file_has "$T_TMP/alice.out" '^SIP/2.0 200 OK'
ok $? "the client gets the 200 OK"
wait_file_has "$T_TMP/alice.out" "^Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK-reg;rport=[0-9]+$"
ok $? "... with its own Via back (TLS, rport filled in, the mark gone)"
wait_file_has "$T_TMP/alice.out" "^Contact: \"Alice, A.\" <sip:alice@192.0.2.10:5061;transport=tls;ob>;expires=30$"
ok $? "... and its own Contact in the binding list"
wait_file_has "$T_TMP/alice.out" "^Record-Route: <sip:sip.example.test:$P;transport=tls;lr;ftag=a1>$"
ok $? "... the legacy server's Record-Route shows the advertised address (from the certificate)"
! tr -d '\r' <"$T_TMP/alice.out" | grep -aq "127.0.0.1"
ok $? "... no loopback address reaches the client"

# ---------------------------------------------------- advertise = edge...
crlf "OPTIONS sip:edge.example.test SIP/2.0" "$VIA-o" "Max-Forwards: 70" \
	"Record-Route: <sip:edge.example.test:$PA;transport=tls;lr>" \
	"From: <sip:carol@sip.example.test>;tag=c1" "To: <sip:edge.example.test>" \
	"Call-ID: opt-edge" "CSeq: 1 OPTIONS" "Content-Length: 0" "" >"$T_TMP/edge.in"
client "$PA" --send "$T_TMP/edge.in" --out "$T_TMP/edge.out" >/dev/null 2>&1
ok $? "a client of the listener with advertise = edge.example.test"
backend_has "^Record-Route: <sip:127.0.0.1:$BP;transport=tcp;lr>$"
ok $? "... its advertised Record-Route reaches the legacy server as its own"
tr -d '\r' <"$T_TMP/edge.out" | grep -aq "^Record-Route: <sip:edge.example.test:$PA;transport=tls;lr>$"
ok $? "... and comes back as edge.example.test with the bind port"

# ------------------------------------- a quiet registered flow stays open
# A client that did not register, connected after alice, is closed for
# idleness: alice's connection has been quiet at least as long.
mark_log
crlf "OPTIONS sip:sip.example.test SIP/2.0" "$VIA-q" "Max-Forwards: 70" \
	"From: <sip:quiet@sip.example.test>;tag=q1" "To: <sip:sip.example.test>" \
	"Call-ID: opt-quiet" "CSeq: 1 OPTIONS" "Content-Length: 0" "" >"$T_TMP/quiet.in"
client "$P" --send "$T_TMP/quiet.in" --read-timeout 30000 --expect-close >"$T_TMP/quiet.log" 2>&1
ok $? "an unregistered client is closed by the daemon"
wait_new "closed: idle timeout" 20
ok $? "... for idleness (idle-timeout = 3s)"
t_alive "$ALICE" && ! newlog | grep -q "peer=127.0.0.1:[0-9]* closed: idle timeout.*msgs out=1 bytes"
ok $? "the registered client's connection is still open"

# ------------------------------------ the legacy server calls the client
crlf "INVITE $ALICE_FLOW SIP/2.0" "Via: SIP/2.0/TCP 127.0.0.1:$BP;branch=z9hG4bK-inv" "Max-Forwards: 69" \
	"Record-Route: <sip:127.0.0.1:$BP;transport=tcp;lr>" \
	"From: <sip:bob@sip.example.test>;tag=b1" "To: <sip:alice@sip.example.test>" \
	"Call-ID: inv-1" "CSeq: 1 INVITE" "Contact: <sip:bob@127.0.0.1:$BP;transport=tcp>" \
	"Content-Length: 0" "" >"$T_TMP/inv.in"
"$TCPCLIENT" -c "127.0.0.1:$FP" --send "$T_TMP/inv.in" --out "$T_TMP/inv.out" --read-timeout 1000 \
	>/dev/null 2>&1
ok $? "the legacy server sends an INVITE to the flow URI over a new connection"
wait_file_has "$T_TMP/alice.out" "^INVITE sip:alice@192.0.2.10:5061;transport=tls;ob SIP/2.0$"
ok $? "... the client gets it on its own TLS connection, for its own Contact"
wait_file_has "$T_TMP/alice.out" "^Via: SIP/2.0/TLS sip.example.test:$P;branch=z9hG4bK-inv$"
ok $? "... the legacy server's Via shows the advertised address"
wait_file_has "$T_TMP/alice.out" "^Record-Route: <sip:sip.example.test:$P;transport=tls;lr>$"
ok $? "... and so does its Record-Route"
wait_file_has "$T_TMP/alice.out" "^Contact: <sip:bob@sip.example.test:$P;transport=tls>$"
ok $? "... and its Contact"
[ ! -s "$T_TMP/inv.out" ]
ok $? "... the flow connection gets no error back"

# the client answers; the answer reaches the legacy server, translated back
crlf "SIP/2.0 180 Ringing" "Via: SIP/2.0/TLS sip.example.test:$P;branch=z9hG4bK-inv" \
	"Record-Route: <sip:sip.example.test:$P;transport=tls;lr>" \
	"From: <sip:bob@sip.example.test>;tag=b1" "To: <sip:alice@sip.example.test>;tag=a2" \
	"Call-ID: inv-1" "CSeq: 1 INVITE" "Contact: <sip:alice@192.0.2.10:5061;transport=tls;ob>" \
	"Content-Length: 0" "" >"$T_TMP/ring.in"
client "$P" --send "$T_TMP/ring.in" >/dev/null 2>&1
ok $? "a response from a TLS client to the legacy server's request"
wait_backend "^Via: SIP/2.0/TCP 127.0.0.1:$BP;branch=z9hG4bK-inv$"
ok $? "... reaches it with its own Via back"

# ---------------------------------------------- a client cannot take a flow
ADV_FLOW=${ALICE_FLOW/127.0.0.1:$FP;transport=tcp/sip.example.test:$P;transport=tls}
crlf "REGISTER sip:sip.example.test SIP/2.0" "$VIA-m" "Max-Forwards: 70" \
	"From: <sip:mallory@sip.example.test>;tag=m1" "To: <sip:alice@sip.example.test>" \
	"Call-ID: reg-mallory" "CSeq: 1 REGISTER" "Contact: <$ADV_FLOW>;expires=30" \
	"Content-Length: 0" "" >"$T_TMP/mal.in"
client "$P" --send "$T_TMP/mal.in" --out "$T_TMP/mal.out" >/dev/null 2>&1
ok $? "a client registers alice's flow URI as its own Contact"
wait_backend "Call-ID: reg-mallory"
ok $? "... the REGISTER reaches the legacy server"
MAL_FLOW=$(cat "$REG"/conn-*.bin | tr -d '\r' | grep -a -A6 'Call-ID: reg-mallory' | sed -n 's/^Contact: <sip:[^@]*@127.0.0.1:[0-9]*;transport=tcp;sc-flow=\([^;]*\);.*/\1/p' | head -n 1)
ALICE_TOKEN=$(printf '%s' "$ALICE_FLOW" | sed -n 's/.*sc-flow=\([^;]*\);.*/\1/p')
[ -n "$MAL_FLOW" ] && [ "$MAL_FLOW" != "$ALICE_TOKEN" ]
ok $? "... but as a flow of its own connection, not alice's"

# ----------------------- an in-dialog request without Route: the sidecar routes it
# (a legacy server that does not record-route is not in the dialog's path)
crlf "BYE $ADV_FLOW SIP/2.0" "Via: SIP/2.0/TLS 192.0.2.20:5061;branch=z9hG4bK-dbye;rport" "Max-Forwards: 70" \
	"From: <sip:dave@sip.example.test>;tag=d1" "To: <sip:alice@sip.example.test>;tag=a2" \
	"Call-ID: bye-direct" "CSeq: 2 BYE" "Content-Length: 0" "" >"$T_TMP/dbye.in"
mark_log
"$TLSCLIENT" -c "127.0.0.1:$P" --ca "$C/ca.crt" --verify-name sip.example.test --send "$T_TMP/dbye.in" \
	--out "$T_TMP/dave.out" --read-timeout 30000 --max-time 60000 >"$T_TMP/dave.log" 2>&1 &
DAVE=$!
track_pid "$DAVE"
wait_file_has "$T_TMP/alice.out" "^BYE sip:alice@192.0.2.10:5061;transport=tls;ob SIP/2.0$"
ok $? "a BYE without Route for alice's advertised flow reaches alice, for her own Contact"
wait_file_has "$T_TMP/alice.out" "^Via: SIP/2.0/TLS sip.example.test:$P;branch=z9hG4bKsc-"
ok $? "... with the sidecar's own Via on top (stateless proxy)"
wait_new "routed by the sidecar: BYE"
ok $? "... logged: routed by the sidecar"
! backend_has "Call-ID: bye-direct"
ok $? "... and the legacy server never sees it"
tr -d '\r' <"$T_TMP/alice.out" | sed -n '/^BYE /,/^$/p' | grep '^Via:' >"$T_TMP/bye-vias"
{
	crlf "SIP/2.0 200 OK"
	while IFS= read -r l; do crlf "$l"; done <"$T_TMP/bye-vias"
	crlf "From: <sip:dave@sip.example.test>;tag=d1" "To: <sip:alice@sip.example.test>;tag=a2" \
		"Call-ID: bye-direct" "CSeq: 2 BYE" "Content-Length: 0" ""
} >"$T_TMP/bye200.in"
client "$P" --send "$T_TMP/bye200.in" >/dev/null 2>&1
ok $? "alice's answer (sent here from another connection)"
wait_file_has "$T_TMP/dave.out" "^SIP/2.0 200 OK$"
ok $? "... reaches the sender of the BYE through the sidecar's Via"
wait_file_has "$T_TMP/dave.out" "^Via: SIP/2.0/TLS 192.0.2.20:5061;branch=z9hG4bK-dbye;rport=[0-9]+$"
ok $? "... with its own Via back, the sidecar's gone"
! backend_has "SIP/2.0 200 OK.*bye-direct" && ! backend_has "^CSeq: 2 BYE"
ok $? "... and the legacy server never sees it"
kill "$DAVE" 2>/dev/null
wait_pid_exit "$DAVE" 10
untrack_pid "$DAVE"
sed 's/branch=z9hG4bKsc-./branch=z9hG4bKsc-A/' "$T_TMP/bye200.in" >"$T_TMP/bye200f.in"
cmp -s "$T_TMP/bye200.in" "$T_TMP/bye200f.in" &&
	sed -i 's/branch=z9hG4bKsc-./branch=z9hG4bKsc-B/' "$T_TMP/bye200f.in"
mark_log
client "$P" --send "$T_TMP/bye200f.in" >/dev/null 2>&1
wait_new "refused: forged flow token"
ok $? "an answer with a forged Via of the sidecar is refused (forged flow token)"

# --------------------------------------------------------- forged tokens
mark_log
FORGED=${ADV_FLOW/sc-flow=?/sc-flow=A}
[ "$FORGED" = "$ADV_FLOW" ] && FORGED=${ADV_FLOW/sc-flow=?/sc-flow=B}
crlf "BYE $FORGED SIP/2.0" "$VIA-f" "Max-Forwards: 70" \
	"From: <sip:mallory@sip.example.test>;tag=m1" "To: <sip:alice@sip.example.test>;tag=a2" \
	"Call-ID: bye-forged" "CSeq: 2 BYE" "Content-Length: 0" "" >"$T_TMP/forged.in"
client "$P" --send "$T_TMP/forged.in" --out "$T_TMP/forged.out" >/dev/null 2>&1
tr -d '\r' <"$T_TMP/forged.out" | grep -aq '^SIP/2.0 400 '
ok $? "a request for a forged flow token gets 400"
wait_new "refused: forged flow token"
ok $? "... logged: refused: forged flow token"
! backend_has "Call-ID: bye-forged"
ok $? "... nothing of it reaches the legacy server"

crlf "OPTIONS sip:sip.example.test SIP/2.0" "$VIA-u" "Max-Forwards: 70" \
	"From: <sip:u@sip.example.test>;tag=u1" "To: <sip:sip.example.test>" \
	"Call-ID: opt-unparsable" "CSeq: 1 OPTIONS" "Contact: <sip:u@:5061;transport=tls>" \
	"Content-Length: 0" "" >"$T_TMP/unp.in"
client "$P" --send "$T_TMP/unp.in" --out "$T_TMP/unp.out" >/dev/null 2>&1
tr -d '\r' <"$T_TMP/unp.out" | grep -aq '^SIP/2.0 400 '
ok $? "a Contact with an unparsable URI gets 400"
wait_new "refused: malformed message \(unparsable URI\)"
ok $? "... logged: refused: malformed message (unparsable URI)"
! backend_has "Call-ID: opt-unparsable"
ok $? "... nothing of it reaches the legacy server"

client "$P" --sip 1 >/dev/null 2>&1
ok $? "the daemon still serves the next client"

# ------------------------------------------------- the flow is gone: 430
mark_log
kill "$ALICE" 2>/dev/null
wait_pid_exit "$ALICE" 10
untrack_pid "$ALICE"
wait_new "peer=127.0.0.1:[0-9]+ closed" 10
ok $? "alice's client is gone and its connection closed"
"$TCPCLIENT" -c "127.0.0.1:$FP" --send "$T_TMP/inv.in" --out "$T_TMP/inv2.out" --read-timeout 3000 \
	>/dev/null 2>&1
tr -d '\r' <"$T_TMP/inv2.out" | grep -aq '^SIP/2.0 430 Flow Failed$'
ok $? "a request for the gone flow gets 430 Flow Failed"
tr -d '\r' <"$T_TMP/inv2.out" | grep -aq '^Call-ID: inv-1$'
ok $? "... for that request"
wait_new "flow failed: the connection is gone"
ok $? "... logged: flow failed"
crlf "INVITE sip:nobody@127.0.0.1:$FP;transport=tcp SIP/2.0" "Via: SIP/2.0/TCP 127.0.0.1:$BP;branch=z9hG4bK-nf" \
	"From: <sip:bob@sip.example.test>;tag=b1" "To: <sip:nobody@sip.example.test>" \
	"Call-ID: inv-none" "CSeq: 1 INVITE" "Content-Length: 0" "" >"$T_TMP/none.in"
"$TCPCLIENT" -c "127.0.0.1:$FP" --send "$T_TMP/none.in" --out "$T_TMP/none.out" --read-timeout 3000 \
	>/dev/null 2>&1
tr -d '\r' <"$T_TMP/none.out" | grep -aq '^SIP/2.0 430 Flow Failed$'
ok $? "a request without a flow token on the flow listener gets 430 too"

# ------------------------------------------- [connect]: the legacy's own
crlf "INVITE sip:carol@sip.example.test SIP/2.0" "Via: SIP/2.0/TCP 127.0.0.1:$BP;branch=z9hG4bK-out" \
	"Max-Forwards: 69" "Record-Route: <sip:127.0.0.1:$BP;transport=tcp;lr;ftag=o1>" \
	"From: <sip:bob@sip.example.test>;tag=o1" "To: <sip:carol@sip.example.test>" \
	"Call-ID: out-1" "CSeq: 1 INVITE" "Contact: <sip:bob@127.0.0.1:$BP;transport=tcp>" \
	"Content-Length: 0" "" >"$T_TMP/out.in"
"$TCPCLIENT" -c "127.0.0.1:$PC" --send "$T_TMP/out.in" --out "$T_TMP/out.out" --read-timeout 3000 \
	>/dev/null 2>&1
ok $? "the legacy server sends an INVITE out through [connect]"
far_has() { cat "$FAR"/conn-*.bin 2>/dev/null | tr -d '\r' | grep -Eaq -- "$1"; }
far_has "^Record-Route: <sip:sip.example.test:$P;transport=tls;lr;ftag=o1>$" &&
	far_has "^Contact: <sip:bob@sip.example.test:$P;transport=tls>$" &&
	far_has "^Via: SIP/2.0/TLS sip.example.test:$P;branch=z9hG4bK-out$"
ok $? "... the peer server sees the first listener's advertised address (Record-Route, Contact, Via)"
! cat "$FAR"/conn-*.bin | grep -aq "127.0.0.1"
ok $? "... and no loopback address"
tr -d '\r' <"$T_TMP/out.out" | grep -aq "^Record-Route: <sip:127.0.0.1:$BP;transport=tcp;lr;ftag=o1>$" &&
	tr -d '\r' <"$T_TMP/out.out" | grep -aq "^Via: SIP/2.0/TCP 127.0.0.1:$BP;branch=z9hG4bK-out$"
ok $? "... its answer brings the legacy server's own address back"

stop_sidecar
is 0 "$SIDECAR_STATUS" "the daemon exits 0 on SIGTERM"
done_testing
