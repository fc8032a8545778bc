#!/bin/bash
# 70-interop-sipp-kamailio: real SIP software through the sidecar's [listen]
# side. sipp (Debian's sip-tester, which has no TLS) runs its built-in UAC
# call flow (INVITE/100?/180?/200/ACK/BYE/200) over one plaintext TCP
# connection to stunnel in client mode, which verifies the sidecar's
# certificate (test CA, host sip.example.test) and speaks TLS to sip-sidecar,
# which relays plaintext to Kamailio on loopback, the legacy server:
#
#   sipp -> TCP -> stunnel -> TLS -> sip-sidecar [listen] -> TCP -> Kamailio
#
# Two listeners, two Kamailio instances: "plain" (no PROXY header) and "pp2"
# (proxy-protocol = v2, Kamailio with tcp_accept_haproxy=yes). Both runs must
# end with zero failed calls; with PROXY v2, Kamailio must see the TLS client's
# address (stunnel's outgoing 127.0.0.1:PORT, the sidecar's "peer=") instead
# of the sidecar's own backend connection.
#
# SPDX-License-Identifier: MIT
. "${T_SRC:-$(dirname "$0")}/lib.sh"
. "$T_SRC/data/interop/interop.sh"

require_sidecar
require_cmd sipp kamailio
command -v stunnel4 >/dev/null 2>&1 || command -v stunnel >/dev/null 2>&1 ||
	skip_all "stunnel (stunnel4) not installed"
KAM_MPATH=$(kamailio_mpath) || skip_all "no Kamailio module directory with sl.so"
for m in sl tm rr pv textops siputils xlog; do
	[ -f "$KAM_MPATH/$m.so" ] || skip_all "Kamailio module $m.so not installed"
done
certs_dir >/dev/null || skip_all "no test certificates"

CALLS=200
RATE=100

plan 23

K_PLAIN=$(free_port) && K_PP2=$(free_port) && L_PLAIN=$(free_port) && L_PP2=$(free_port) &&
	S_PLAIN=$(free_port) && S_PP2=$(free_port) || bail_out "no free ports"

# ---- the legacy servers
start_kamailio kamailio-plain "tcp:127.0.0.1:$K_PLAIN"
ok $? "Kamailio (plain) listens on 127.0.0.1:$K_PLAIN"
start_kamailio kamailio-pp2 "tcp:127.0.0.1:$K_PP2" -A WITH_HAPROXY
ok $? "Kamailio (tcp_accept_haproxy=yes) listens on 127.0.0.1:$K_PP2"

# ---- the sidecar
cat >"$T_TMP/sidecar.conf" <<EOF
[global]
allow-root = yes
log-level = info
handshake-timeout = 5s

[listen plain]
bind = 127.0.0.1:$L_PLAIN
backend = 127.0.0.1:$K_PLAIN
cert = $CERTS/server.crt
key = $CERTS/server.key

[listen pp2]
bind = 127.0.0.1:$L_PP2
backend = 127.0.0.1:$K_PP2
cert = $CERTS/server.crt
key = $CERTS/server.key
proxy-protocol = v2
EOF
start_sidecar "$T_TMP/sidecar.conf" "$L_PLAIN" "$L_PP2"
ok $? "sidecar listens on $L_PLAIN and $L_PP2 (proxy-protocol = v2)"

# ---- stunnel in client mode: sipp's TLS, verifying the sidecar
cat >"$T_TMP/stunnel.conf" <<EOF
foreground = yes
pid = $T_TMP/stunnel.pid
syslog = no
debug = info

[plain]
client = yes
accept = 127.0.0.1:$S_PLAIN
connect = 127.0.0.1:$L_PLAIN
sni = sip.example.test
verifyChain = yes
CAfile = $CERTS/ca.crt
checkHost = sip.example.test

[pp2]
client = yes
accept = 127.0.0.1:$S_PP2
connect = 127.0.0.1:$L_PP2
sni = sip.example.test
verifyChain = yes
CAfile = $CERTS/ca.crt
checkHost = sip.example.test
EOF
start_stunnel "$T_TMP/stunnel.conf" "$S_PLAIN" "$S_PP2"
ok $? "stunnel (client mode) listens on $S_PLAIN and $S_PP2"

SIPP_OPTS=(-sn uac -t t1 -m "$CALLS" -r "$RATE" -recv_timeout 5s -timeout 20s -timeout_error)

# calls_through NAME: the checks of one sipp run through listener NAME.
# Kamailio's log is $T_TMP/kamailio-NAME.log.
calls_through() {
	local name=$1 klog=$T_TMP/kamailio-$1.log n
	run_sipp "sipp-$name" "127.0.0.1:$2" "${SIPP_OPTS[@]}"
	diag "$(sipp_summary "$name")"
	is 0 "$SIPP_STATUS" "$name: sipp exits 0 (every call succeeded)" ||
		diag "$(grep -E -A 12 'Messages +Retrans' "$SIPP_SCREEN" 2>/dev/null | tail -n 13)"
	is "$CALLS" "$SIPP_SUCCESS" "$name: sipp: Successful call = $CALLS"
	is 0 "$SIPP_FAILED" "$name: sipp: Failed call = 0"
	# The sidecar relayed one TLS connection: 3 requests per call in,
	# 2 responses per call out, logged when stunnel closes it.
	wait_for_log "$SIDECAR_LOG" "listen=$name peer=[^ ]+ closed:" 10
	like "listen=$name peer=127\.0\.0\.1:[0-9]+ closed: [^;]*; in=[0-9]+ bytes/$((CALLS * 3)) msgs out=[0-9]+ bytes/$((CALLS * 2)) msgs" \
		"$(grep "listen=$name " "$SIDECAR_LOG" | grep ' closed:')" \
		"$name: sidecar relayed $((CALLS * 3)) requests and $((CALLS * 2)) responses over one TLS connection"
	n=$(log_count "$klog" 'interop: INVITE proto=tcp ')
	is "$CALLS" "$n" "$name: Kamailio received $CALLS INVITEs"
	n=$(log_count "$klog" 'interop: BYE proto=tcp ')
	is "$CALLS" "$n" "$name: Kamailio received $CALLS BYEs"
}

# ---- run 1: no PROXY header
calls_through plain "$S_PLAIN"
like "Certificate accepted at depth=0: .*CN=sip\.example\.test" "$(cat "$T_TMP/stunnel.log")" \
	"stunnel verified the sidecar's certificate (chain to the test CA, host sip.example.test)"
like "listen=plain peer=127\.0\.0\.1:[0-9]+ accepted TLS1\.[23] [^ ]+ anonymous" "$(cat "$SIDECAR_LOG")" \
	"sidecar logged the TLS client as accepted, anonymous"
diag "plain: Kamailio saw $(grep -o 'src=[^ ]*' "$T_TMP/kamailio-plain.log" | sort | uniq -c | tr -s ' ')" \
	"  (the sidecar's own backend connection)"

# ---- run 2: PROXY v2
calls_through pp2 "$S_PP2"
peer=$(sed -n 's/.*listen=pp2 peer=127\.0\.0\.1:\([0-9]*\) accepted .*/\1/p' "$SIDECAR_LOG" | head -n 1)
st_src=$(sed -n 's/.*Service \[pp2\] connected remote server from 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
	"$T_TMP/stunnel.log" | head -n 1)
is "$st_src" "$peer" "pp2: the sidecar's peer= is stunnel's outgoing address 127.0.0.1:$st_src"
srcs=$(grep -o 'interop: [A-Z]* proto=tcp src=[^ ]*' "$T_TMP/kamailio-pp2.log" | sed 's/.*src=//' | sort -u)
is 1 "$(printf '%s\n' "$srcs" | grep -c .)" "pp2: every request reached Kamailio from one client address ($srcs)"
is 127.0.0.1 "${srcs%:*}" "pp2: Kamailio sees the client's IP 127.0.0.1"
sport=${srcs##*:}
if [ -n "$peer" ] && [ "$sport" != "$peer" ] && [ -n "$sport" ] &&
	[ "$sport" = $((((peer & 255) << 8) | (peer >> 8))) ]; then
	# Kamailio < 5.7.5/5.8 reads the ports of a PROXY v2 header in the
	# wrong byte order (kamailio/kamailio GH #3683, fixed by PR #3685):
	# the sidecar sent the right port if Kamailio shows it byte-swapped.
	pass "pp2: Kamailio sees the client's port $peer (shown as $sport: this Kamailio swaps the bytes of PROXY v2 ports, kamailio issue 3683)"
	diag "Kamailio $(kamailio -v 2>/dev/null | sed -n 's/^version: kamailio \([^ ]*\).*/\1/p') shows port $peer as $sport (byte-swapped: its PROXY v2 parser bug, kamailio GH #3683)"
else
	is "$peer" "$sport" "pp2: Kamailio sees the client's port (the sidecar's peer=)"
fi
kill -TERM "$STUNNEL_PID" 2>/dev/null
wait_pid_exit "$STUNNEL_PID" 5
stop_sidecar
is 0 "$SIDECAR_STATUS" "sidecar exits 0 on SIGTERM"

done_testing
