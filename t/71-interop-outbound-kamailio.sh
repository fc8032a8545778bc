#!/bin/bash
# 71-interop-outbound-kamailio: the sidecar's [connect] side against a real
# peer server. sipp (plaintext TCP, one connection per call: -t tn) plays
# the legacy server's outbound traffic into a [connect] listener; the sidecar
# carries it over MTLS to Kamailio with its tls module, which requires and
# verifies our client certificate (ca_list = the test CA):
#
#   sipp -> TCP -> sip-sidecar [connect] -> MTLS -> Kamailio (tls module)
#
# [connect good] presents client.crt (signed by the test CA): zero failed
# calls, Kamailio sees a verified certificate ($tls_peer_verified = 1, CN
# peer.example.test) on every request, and from the second connection on the
# sidecar resumes the TLS session with Kamailio's ticket ("resumed").
# [connect rogue] presents client-rogue.crt (signed by rogue-ca): Kamailio
# refuses the handshake, the sidecar logs the refusal, no call succeeds and
# Kamailio receives no request; the daemon still serves [connect good].
#
# SPDX-License-Identifier: MIT
. "${T_SRC:-$(dirname "$0")}/lib.sh"
. "$T_SRC/data/interop/interop.sh"

require_sidecar
require_cmd sipp kamailio
KAM_MPATH=$(kamailio_mpath) || skip_all "no Kamailio module directory with sl.so"
for m in sl tm rr pv textops siputils xlog; do
	[ -f "$KAM_MPATH/$m.so" ] || skip_all "Kamailio module $m.so not installed"
done
[ -f "$KAM_MPATH/tls.so" ] || skip_all "Kamailio tls module not installed (kamailio-tls-modules)"
certs_dir >/dev/null || skip_all "no test certificates"

CALLS=20

plan 18

K_TLS=$(free_port) && C_GOOD=$(free_port) && C_ROGUE=$(free_port) || bail_out "no free ports"
KLOG=$T_TMP/kamailio-tls.log

# ---- the peer server: Kamailio, MTLS required, our test CA trusted
cat >"$T_TMP/tls.cfg" <<EOF
[server:default]
method = TLSv1.2+
verify_certificate = yes
require_certificate = yes
certificate = $CERTS/server.crt
private_key = $CERTS/server.key
ca_list = $CERTS/ca.crt

[client:default]
verify_certificate = no
require_certificate = no
EOF
start_kamailio kamailio-tls "tls:127.0.0.1:$K_TLS" -A WITH_TLS -A "TLS_CONFIG=\"$T_TMP/tls.cfg\""
ok $? "Kamailio (tls module, require_certificate) listens on 127.0.0.1:$K_TLS"

# ---- the sidecar: two [connect] sections to the same server
cat >"$T_TMP/sidecar.conf" <<EOF
[global]
allow-root = yes
log-level = info
handshake-timeout = 5s

[connect good]
bind = 127.0.0.1:$C_GOOD
server = 127.0.0.1:$K_TLS
server-name = sip.example.test
cert = $CERTS/client.crt
key = $CERTS/client.key
ca = $CERTS/ca.crt

[connect rogue]
bind = 127.0.0.1:$C_ROGUE
server = 127.0.0.1:$K_TLS
server-name = sip.example.test
cert = $CERTS/client-rogue.crt
key = $CERTS/client-rogue.key
ca = $CERTS/ca.crt
EOF
start_sidecar "$T_TMP/sidecar.conf" "$C_GOOD" "$C_ROGUE"
ok $? "sidecar [connect] listeners on $C_GOOD (good) and $C_ROGUE (rogue)"

SIPP_OPTS=(-sn uac -t tn -max_socket 100 -recv_timeout 3s -timeout 20s)

# ---- run 1: good client certificate, one TLS connection per call
run_sipp sipp-good "127.0.0.1:$C_GOOD" "${SIPP_OPTS[@]}" -m "$CALLS" -r 50
diag "$(sipp_summary good)"
is 0 "$SIPP_STATUS" "good: sipp exits 0 (every call succeeded)" ||
	diag "$(grep -E -A 12 'Messages +Retrans' "$SIPP_SCREEN" 2>/dev/null | tail -n 13)"
is "$CALLS" "$SIPP_SUCCESS" "good: sipp: Successful call = $CALLS"
is 0 "$SIPP_FAILED" "good: sipp: Failed call = 0"
wait_for_log_count "$SIDECAR_LOG" "connect=good server=[^ ]+ closed:" "$CALLS" 10
n=$(log_count "$SIDECAR_LOG" "connect=good server=127\.0\.0\.1:$K_TLS accepted TLS1\.[23] [^ ]+ identity=sip\.example\.test")
is "$CALLS" "$n" "good: $CALLS TLS connections to Kamailio, its certificate verified as sip.example.test"
n=$(log_count "$SIDECAR_LOG" "connect=good server=[^ ]+ closed: [^;]*; in=[0-9]+ bytes/2 msgs out=[0-9]+ bytes/3 msgs")
is "$CALLS" "$n" "good: each connection carried INVITE/ACK/BYE out and two 200s back"
total=$(log_count "$KLOG" 'interop: ')
verified=$(log_count "$KLOG" 'interop: (INVITE|ACK|BYE) proto=tls src=[^ ]+ tls_verified=1 tls_cn=peer\.example\.test$')
is $((CALLS * 3)) "$total" "good: Kamailio received $((CALLS * 3)) requests"
is "$total" "$verified" "good: Kamailio saw a verified client certificate (CN peer.example.test) on every request"

# Resumption: the first connection is a full handshake, later ones present
# the newest ticket from Kamailio (OpenSSL issues TLS 1.3 tickets). Run 1's
# calls start within 0.4 s: on a busy machine all of them may start before
# the first ticket arrives, so resumption is checked on run 3 (below).
accepted=$(grep "connect=good server=[^ ]* accepted " "$SIDECAR_LOG")
resumed=$(printf '%s\n' "$accepted" | grep -c ' resumed$')
unlike ' resumed$' "$(printf '%s\n' "$accepted" | head -n 1)" "good: the first connection is a full handshake"
diag "good: $resumed of $((CALLS - 1)) connections after the first were resumed"

# ---- run 2: client certificate signed by rogue-ca: Kamailio refuses
before=$(log_count "$KLOG" 'interop: ')
kerr_before=$(log_count "$KLOG" 'TLS accept:error')
run_sipp sipp-rogue "127.0.0.1:$C_ROGUE" "${SIPP_OPTS[@]}" -m 3 -r 10
diag "$(sipp_summary rogue)"
is 1 "$SIPP_STATUS" "rogue: sipp exits 1 (calls failed)"
is "0/3" "${SIPP_SUCCESS:-?}/${SIPP_FAILED:-?}" "rogue: sipp: Successful call 0, Failed call 3 (no 200 came back)"
wait_for_log_count "$SIDECAR_LOG" "connect=rogue server=[^ ]+ refused: " 3 5
like "connect=rogue server=127\.0\.0\.1:$K_TLS refused: handshake failed \(peer sent alert: [^)]+\)" \
	"$(grep 'connect=rogue ' "$SIDECAR_LOG")" "rogue: the sidecar logs the refusal with Kamailio's alert"
diag "$(grep 'connect=rogue .* refused' "$SIDECAR_LOG" | head -n 1)"
is "$before" "$(log_count "$KLOG" 'interop: ')" "rogue: Kamailio received no request"
kerr=$(grep 'TLS accept:error' "$KLOG" | tail -n +"$((kerr_before + 1))")
like 'TLS accept:error.*(did not return a certificate|certificate verify failed|unknown ca|certificate required)' \
	"$kerr" "rogue: Kamailio refused the handshake (no acceptable client certificate)"
diag "Kamailio: $(printf '%s\n' "$kerr" | head -n 1 | sed 's/^.*TLS accept:/TLS accept:/')"

# ---- run 3: the daemon still serves the good [connect]
run_sipp sipp-again "127.0.0.1:$C_GOOD" "${SIPP_OPTS[@]}" -m 5 -r 50
diag "$(sipp_summary again)"
is "0 5 0" "$SIPP_STATUS ${SIPP_SUCCESS:-?} ${SIPP_FAILED:-?}" \
	"good again: sipp exits 0 with 5 successful calls, 0 failed"
# ... resuming the TLS session with a ticket from run 1
again=$(grep "connect=good server=[^ ]* accepted " "$SIDECAR_LOG" | tail -n +"$((CALLS + 1))")
resumed=$(printf '%s\n' "$again" | grep -c ' resumed$')
ok "$([ "$resumed" -ge 1 ] && echo 0 || echo 1)" \
	"good: connections after run 1 resume the TLS session ($resumed of $(printf '%s\n' "$again" | grep -c .) resumed)"

stop_sidecar
is 0 "$SIDECAR_STATUS" "sidecar exits 0 on SIGTERM"

done_testing
