#!/bin/bash
# 31-trust.sh: [trust] sections (federation partners). One daemon, two
# listeners, each with its own recording backend (recbackend -a):
#   fed    its own ca.crt + ca.crl with allow-peer = peer.example.test, and
#          trust = partner ([trust partner]: ca2.crt + ca2.crl, peer =
#          sip.partner.example.test)
#   only   trust = partner and no trust set of its own
# A partner's CA vouches only for the partner's names: partner-evil.crt (by
# ca2, claiming peer.example.test) is refused although peer.example.test is
# allowed through our own CA. Each refusal is checked three ways: the log
# reason, a backend that got nothing, a good client served right after.
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2154 # BACKEND_PORT_<NAME> are set by start_backend

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

require_sidecar
certs_dir >/dev/null || skip_all "no test certificates (t/mkcerts.sh)"
C=$CERTS
HDR=X-TLS-Peer-Identity

start_backend fed -a || bail_out "no backend"
start_backend only -a || bail_out "no backend"
P_fed=$(free_port)
P_only=$(free_port)
cat >"$T_TMP/trust.conf" <<EOF
[global]
allow-root = yes
handshake-timeout = 5s

[trust partner]
ca = $C/ca2.crt
crl = $C/ca2.crl
peer = sip.partner.example.test

[listen fed]
bind = 127.0.0.1:$P_fed
backend = 127.0.0.1:$BACKEND_PORT_fed
cert = $C/server.crt
key = $C/server.key
client-auth = require
ca = $C/ca.crt
crl = $C/ca.crl
allow-peer = peer.example.test
trust = partner
identity-header = $HDR

[listen only]
bind = 127.0.0.1:$P_only
backend = 127.0.0.1:$BACKEND_PORT_only
cert = $C/server.crt
key = $C/server.key
client-auth = require
trust = partner
identity-header = $HDR
EOF
start_sidecar "$T_TMP/trust.conf" "$P_fed" "$P_only" || bail_out "the daemon did not start"

# ------------------------------------------------ helpers

# accepts LISTENER: connections its backend has accepted so far.
accepts() {
	log_count "$T_TMP/$1/events.log" '^accept '
}

# client LISTENER CERT [TLSCLIENT-OPTS...]: one OPTIONS over TLS with
# $CERTS/CERT.crt (server verified against ca.crt); output in $T_OUT, status
# in $T_STATUS.
client() {
	local port=P_$1 cert=$2
	shift 2
	"$TLSCLIENT" -c "127.0.0.1:${!port}" --ca "$C/ca.crt" --cert "$C/$cert.crt" --key "$C/$cert.key" \
		--sip 1 --read-timeout 2000 "$@" >"$T_OUT" 2>&1
	T_STATUS=$?
}

# last_conn LISTENER: the bytes the backend got on its newest connection.
last_conn() {
	cat "$T_TMP/$1/conn-$(accepts "$1").bin" 2>/dev/null
}

# id_headers TEXT: the identity header lines in TEXT (any case), CRs dropped.
id_headers() {
	printf '%s' "$1" | tr -d '\r' | grep -i "^${HDR}[[:space:]]*:"
}

# served DESC LISTENER CERT: the client got its 200. 1 test.
served() {
	is "0 sent=1 ok=1" "$T_STATUS $(grep -o 'sent=[0-9]* ok=[0-9]*' "$T_OUT")" "$1" ||
		diag "$(tail -n 5 "$T_OUT")"
}

# accept_case DESC LISTENER CERT IDENTITY [TLSCLIENT-OPTS...]: the client
# gets its 200, the log says accepted with IDENTITY, and the backend got
# exactly one connection, with the request and exactly one identity header
# carrying IDENTITY. 5 tests.
accept_case() {
	local desc=$1 l=$2 cert=$3 id=$4 pat="listen=$2 .* (accepted|refused)" n0 before
	shift 4
	n0=$(log_count "$SIDECAR_LOG" "$pat")
	before=$(accepts "$l")
	client "$l" "$cert" "$@"
	served "$desc: admitted, 200 OK"
	wait_for_log_count "$SIDECAR_LOG" "$pat" $((n0 + 1)) 5
	like " accepted TLS[^ ]* [^ ]+ identity=${id//./\\.}( |$)" \
		"$(grep -E "$pat" "$SIDECAR_LOG" | sed -n "$((n0 + 1))p")" "$desc: log: accepted, identity=$id"
	is $((before + 1)) "$(accepts "$l")" "$desc: the backend got one connection"
	like '^OPTIONS sip:' "$(last_conn "$l")" "$desc: ... with the request"
	is "$HDR: $id" "$(id_headers "$(last_conn "$l")")" \
		"$desc: exactly one $HDR header, the verified identity"
}

# refuse_case DESC LISTENER CERT REASON GOOD-CERT: the handshake fails
# (tlsclient exit 3), the log says "refused: REASON", the backend gets no
# connection, and a client with GOOD-CERT is served right after. 5 tests.
refuse_case() {
	local desc=$1 l=$2 cert=$3 reason=$4 good=$5 pat="listen=$2 .* (accepted|refused)" n0 before
	n0=$(log_count "$SIDECAR_LOG" "$pat")
	before=$(accepts "$l")
	client "$l" "$cert"
	is 3 "$T_STATUS" "$desc: the handshake fails (tlsclient exit 3)" || diag "$(tail -n 5 "$T_OUT")"
	wait_for_log_count "$SIDECAR_LOG" "$pat" $((n0 + 1)) 5
	like "listen=$l peer=127\\.0\\.0\\.1:[0-9]+ refused: $reason( \\(|$)" \
		"$(grep -E "$pat" "$SIDECAR_LOG" | sed -n "$((n0 + 1))p")" "$desc: log: refused: $reason"
	is "$before" "$(accepts "$l")" "$desc: the backend got nothing"
	client "$l" "$good"
	served "$desc: a good client ($good.crt) is still served"
	is $((before + 1)) "$(accepts "$l")" "$desc: ... on one new backend connection"
}

# ------------------------------------------------ own CA + partner
accept_case "fed: partner.crt (by ca2, a partner name)" fed partner sip.partner.example.test \
	--header "$HDR: peer.example.test"
accept_case "fed: client.crt (by our ca)" fed client peer.example.test
refuse_case "fed: partner-evil.crt (by ca2, claims our peer.example.test)" fed partner-evil \
	"not allowed" partner
refuse_case "fed: client-dns.crt (by our ca, not in allow-peer)" fed client-dns "not allowed" client
refuse_case "fed: client-revoked.crt (our crl still applies)" fed client-revoked revoked partner
refuse_case "fed: client-rogue.crt (neither ca)" fed client-rogue "unknown ca" client

# ------------------------------------------------ partner only
accept_case "only: partner.crt" only partner sip.partner.example.test
refuse_case "only: client.crt (our ca is not trusted here)" only client "unknown ca" partner
refuse_case "only: partner-evil.crt" only partner-evil "not allowed" partner

stop_sidecar 10
ok $? "the daemon stops on SIGTERM"
is 0 "$SIDECAR_STATUS" "... with exit status 0"
done_testing
