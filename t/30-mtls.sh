#!/bin/bash
# 30-mtls.sh: inbound MTLS (client certificates) end to end. One daemon with
# three listeners, each with its own recording backend (recbackend -a):
#   req    client-auth = require, ca.crt + ca.crl, allow-peer = peer.example.test,
#          cn.example.test, *.wild.example.test, identity-header
#   opt    client-auth = optional, same trust and identity-header
#   other  client-auth = require, ca = ca2.crt only (its own trust)
# Checks the accepted identities (SAN dNSName, case, CN fallback, one-label
# wildcard in allow-peer), every refusal reason (each with the log word, a
# backend that got nothing, and a good client served right after), the
# identity header (exactly one, spoofed ones removed, none for anonymous
# clients), resumption with the identity, and that a session ticket from one
# listener never resumes on another (a full handshake judges the client).
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2154 # BACKEND_PORT_<NAME> are set by start_backend

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

require_sidecar
require_cmd certtool
certs_dir >/dev/null || skip_all "no test certificates (t/mkcerts.sh)"
C=$CERTS
HDR=X-TLS-Peer-Identity

# ------------------------------------------------ extra certificates
# Signed by ca with client.key (no key generation: quick). Names chosen for
# the allow-peer pattern *.wild.example.test.
# extra_cert NAME DNSNAME
extra_cert() {
	cat >"$T_TMP/$1.tmpl" <<EOF
cn = "$2"
organization = "sip-sidecar tests"
dns_name = "$2"
expiration_days = 30
signing_key
tls_www_client
EOF
	certtool --generate-certificate --no-text --load-privkey "$C/client.key" \
		--load-ca-certificate "$C/ca.crt" --load-ca-privkey "$C/ca.key" \
		--template "$T_TMP/$1.tmpl" --outfile "$T_TMP/$1.crt" >>"$T_TMP/certtool.out" 2>&1
}
extra_cert wild1 sip.wild.example.test || bail_out "certtool failed: $(tail -n 5 "$T_TMP/certtool.out")"
extra_cert wild2 a.sip.wild.example.test || bail_out "certtool failed: $(tail -n 5 "$T_TMP/certtool.out")"
extra_cert wild0 wild.example.test || bail_out "certtool failed: $(tail -n 5 "$T_TMP/certtool.out")"
extra_cert wildcert '*.wild.example.test' || bail_out "certtool failed: $(tail -n 5 "$T_TMP/certtool.out")"

# ------------------------------------------------ daemon
start_backend req -a || bail_out "no backend"
start_backend opt -a || bail_out "no backend"
start_backend other -a || bail_out "no backend"
P_REQ=$(free_port)
P_OPT=$(free_port)
P_OTHER=$(free_port)
cat >"$T_TMP/mtls.conf" <<EOF
[global]
allow-root = yes
handshake-timeout = 5s

[listen req]
bind = 127.0.0.1:$P_REQ
backend = 127.0.0.1:$BACKEND_PORT_req
cert = $C/server.crt
key = $C/server.key
client-auth = require
ca = $C/ca.crt
crl = $C/ca.crl
allow-peer = peer.example.test
allow-peer = cn.example.test
allow-peer = *.wild.example.test
identity-header = $HDR

[listen opt]
bind = 127.0.0.1:$P_OPT
backend = 127.0.0.1:$BACKEND_PORT_opt
cert = $C/server.crt
key = $C/server.key
client-auth = optional
ca = $C/ca.crt
crl = $C/ca.crl
allow-peer = peer.example.test
identity-header = $HDR

[listen other]
bind = 127.0.0.1:$P_OTHER
backend = 127.0.0.1:$BACKEND_PORT_other
cert = $C/server.crt
key = $C/server.key
client-auth = require
ca = $C/ca2.crt
crl = $C/ca2.crl
identity-header = $HDR
EOF
start_sidecar "$T_TMP/mtls.conf" "$P_REQ" "$P_OPT" "$P_OTHER" || bail_out "the daemon did not start"

# ------------------------------------------------ helpers

# port_of LISTENER
port_of() {
	case $1 in
	req) echo "$P_REQ" ;;
	opt) echo "$P_OPT" ;;
	other) echo "$P_OTHER" ;;
	esac
}

# accepts LISTENER: connections its backend has accepted so far.
accepts() {
	log_count "$T_TMP/$1/events.log" '^accept '
}

# cert_args NAME: tlsclient options presenting certificate NAME ("" = none);
# NAME is looked up in $T_TMP first (the extra ones), then in $CERTS.
cert_args() {
	local crt key=
	case $1 in
	'') return ;;
	esac
	if [ -f "$T_TMP/$1.crt" ]; then
		crt=$T_TMP/$1.crt
		key=$C/client.key
	else
		crt=$C/$1.crt
		key=$C/$1.key
	fi
	printf '%s\n' --cert "$crt" --key "$key"
}

# client LISTENER CERT [TLSCLIENT-OPTS...]: one OPTIONS over TLS (server
# verified against ca.crt), output in $T_OUT, status in $T_STATUS.
client() {
	local l=$1 cert=$2 args
	shift 2
	mapfile -t args < <(cert_args "$cert")
	"$TLSCLIENT" -c "127.0.0.1:$(port_of "$l")" --ca "$C/ca.crt" "${args[@]}" \
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

# accept_case DESC LISTENER CERT IDENTITY|anonymous [TLSCLIENT-OPTS...]:
# the client gets its 200, the log says accepted with IDENTITY, and the
# backend got exactly one connection, with the request, carrying exactly one
# identity header with IDENTITY (none at all for anonymous). 5 tests.
accept_case() {
	local desc=$1 l=$2 cert=$3 id=$4 pat="listen=$2 .* (accepted|refused)" n0 before want
	shift 4
	n0=$(log_count "$SIDECAR_LOG" "$pat")
	before=$(accepts "$l")
	client "$l" "$cert" "$@"
	is "0 sent=1 ok=1" "$T_STATUS $(grep -o 'sent=[0-9]* ok=[0-9]*' "$T_OUT")" "$desc: admitted, 200 OK" ||
		diag "$(tail -n 5 "$T_OUT")"
	wait_for_log_count "$SIDECAR_LOG" "$pat" $((n0 + 1)) 5
	if [ "$id" = anonymous ]; then
		want=" accepted TLS[^ ]* [^ ]+ anonymous( |$)"
	else
		want=" accepted TLS[^ ]* [^ ]+ identity=${id//./\\.}( |$)"
	fi
	like "$want" "$(grep -E "$pat" "$SIDECAR_LOG" | sed -n "$((n0 + 1))p")" \
		"$desc: log: accepted, $([ "$id" = anonymous ] || printf identity=)$id"
	is $((before + 1)) "$(accepts "$l")" "$desc: the backend got one connection"
	like '^OPTIONS sip:' "$(last_conn "$l")" "$desc: ... with the request"
	if [ "$id" = anonymous ]; then
		is "" "$(id_headers "$(last_conn "$l")")" "$desc: no $HDR header reaches the backend"
	else
		is "$HDR: $id" "$(id_headers "$(last_conn "$l")")" \
			"$desc: exactly one $HDR header, the verified identity"
	fi
}

# refuse_case DESC LISTENER CERT REASON [TLSCLIENT-OPTS...]: the handshake
# fails (tlsclient exit 3), the log says "refused: REASON", the backend gets
# no connection, and a good client is served right after. 5 tests.
refuse_case() {
	local desc=$1 l=$2 cert=$3 reason=$4 pat="listen=$2 .* (accepted|refused)" n0 before
	shift 4
	n0=$(log_count "$SIDECAR_LOG" "$pat")
	before=$(accepts "$l")
	client "$l" "$cert" "$@"
	cp "$T_OUT" "$T_TMP/refused.out"
	is 3 "$T_STATUS" "$desc: the handshake fails (tlsclient exit 3)" || diag "$(tail -n 5 "$T_OUT")"
	wait_for_log_count "$SIDECAR_LOG" "$pat" $((n0 + 1)) 5
	like "listen=$l peer=127\\.0\\.0\\.1:[0-9]+ refused: $reason( \\(|$)" \
		"$(grep -E "$pat" "$SIDECAR_LOG" | sed -n "$((n0 + 1))p")" "$desc: log: refused: $reason"
	is "$before" "$(accepts "$l")" "$desc: the backend got nothing"
	client "$l" "$(good_cert "$l")"
	is "0 sent=1 ok=1" "$T_STATUS $(grep -o 'sent=[0-9]* ok=[0-9]*' "$T_OUT")" \
		"$desc: a good client is still served" || diag "$(tail -n 5 "$T_OUT")"
	is $((before + 1)) "$(accepts "$l")" "$desc: ... on one new backend connection"
}

good_cert() {
	case $1 in
	other) echo partner ;;
	*) echo client ;;
	esac
}

# ------------------------------------------------ req: accepted
accept_case "client.crt" req client peer.example.test
accept_case "client-upper.crt (PEER.Example.TEST, case-insensitive)" req client-upper peer.example.test
accept_case "client-cn.crt (no SAN: CN fallback)" req client-cn cn.example.test
accept_case "sip.wild.example.test (one label under *.wild.example.test)" req wild1 sip.wild.example.test

# spoofing: the client's own header, lower case with a blank before the colon
accept_case "spoofed 'x-tls-peer-identity : evil' is replaced" req client peer.example.test \
	--header "x-tls-peer-identity : evil"
unlike 'evil' "$(last_conn req)" "... 'evil' never reaches the backend"

# ------------------------------------------------ req: refused
refuse_case "client-expired.crt" req client-expired expired
refuse_case "client-notyet.crt" req client-notyet "not yet valid"
refuse_case "client-rogue.crt (rogue CA)" req client-rogue "unknown ca"
refuse_case "client-selfsigned.crt" req client-selfsigned "unknown ca"
refuse_case "client-revoked.crt" req client-revoked revoked
refuse_case "client-dns.crt (other.example.test)" req client-dns "not allowed"
refuse_case "no certificate" req "" "no certificate"
refuse_case "client-serveronly.crt (no TLS client purpose)" req client-serveronly "bad key usage"
refuse_case "client-wild.crt (*.example.test)" req client-wild "not allowed"
refuse_case "a certificate for *.wild.example.test (wildcard never matches)" req wildcert "not allowed"
refuse_case "a.sip.wild.example.test (two labels under *.wild.example.test)" req wild2 "not allowed"
refuse_case "wild.example.test (no label under *.wild.example.test)" req wild0 "not allowed"

# ------------------------------------------------ opt: client-auth = optional
accept_case "optional: client.crt" opt client peer.example.test
accept_case "optional: no certificate, spoofed header" opt "" anonymous \
	--header "X-TLS-Peer-Identity: peer.example.test"
refuse_case "optional: client-expired.crt" opt client-expired expired
refuse_case "optional: client-rogue.crt" opt client-rogue "unknown ca"

# ------------------------------------------------ resumption
sess=$T_TMP/req.sess
rm -f "$sess"
accept_case "resumption: first connection" req client peer.example.test --sessfile "$sess" --print-info
like 'resumed=no' "$(cat "$T_OUT")" "... a full handshake"
[ -s "$sess" ]
ok $? "... and the client saved a session ticket"
accept_case "resumption: second connection" req client peer.example.test --sessfile "$sess" --print-info
like 'resumed=yes' "$(cat "$T_OUT")" "... the client resumed"
like "listen=req .* accepted .* identity=peer\\.example\\.test resumed" \
	"$(grep -E 'listen=req .* accepted' "$SIDECAR_LOG" | tail -n 1)" "... logged 'resumed' with the identity"

# a ticket from req presented to other (whose only CA is ca2) without any
# certificate: tickets are bound to the listener that issued them, so other
# makes a full handshake, asks for a certificate and gets none
cp "$sess" "$T_TMP/cross.sess"
refuse_case "a req ticket presented to other" other "" "no certificate" --sessfile "$T_TMP/cross.sess" \
	--print-info
like 'resumed=no' "$(cat "$T_TMP/refused.out")" \
	"a req ticket presented to other: not resumed (a full handshake judged the client)"
# ... and a ticket from the TLS-only-like optional listener, taken without a
# certificate, never resumes into req: a full handshake asks for one
osess=$T_TMP/opt.sess
rm -f "$osess"
accept_case "an anonymous session on opt" opt "" anonymous --sessfile "$osess" --print-info
[ -s "$osess" ]
ok $? "... the client saved its ticket"
refuse_case "the anonymous opt ticket presented to req" req "" "no certificate" --sessfile "$osess" --print-info
like 'resumed=no' "$(cat "$T_TMP/refused.out")" "... not resumed"
cp "$osess" "$T_TMP/opt2.sess"
accept_case "the anonymous opt ticket presented to req with client.crt" req client peer.example.test \
	--sessfile "$T_TMP/opt2.sess" --print-info
like 'resumed=no' "$(cat "$T_OUT")" "... a full handshake with the certificate, not a resumption"

stop_sidecar 10
ok $? "the daemon stops on SIGTERM"
is 0 "$SIDECAR_STATUS" "... with exit status 0"
done_testing
