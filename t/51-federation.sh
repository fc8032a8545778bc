#!/bin/bash
# 51-federation.sh: the shipped federation example (config/federation/) on
# loopback. Two sidecars, example.com's (A, example-com.conf) and the
# partner's (B, partner-net.conf), each with its own CA and a stand-in legacy
# server (recbackend -a). The configurations under test are the shipped
# files, with only paths and ports replaced: /etc/sip-sidecar/ -> a
# directory with certificates made here by certtool under the names the
# examples use (sip.example.com, sip.partner.example.net), 5060/5061/5070 ->
# free ports, the peer's host name -> localhost, plus allow-root for CI.
#
# A request from legacy A goes plaintext -> A's [connect] -> MTLS -> B's
# [listen] (client-auth = require, trust = example-com) -> plaintext ->
# legacy B, whose 200 OK travels back; legacy B must see exactly one
# X-TLS-Peer-Identity: sip.example.com (the one legacy A tried to slip in is
# removed), and the same the other way round. The partner's CA may vouch for
# the partner's name only: a certificate it issued for sip.example.com is
# refused by A as "not allowed".
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2154 # BACKEND_PORT_<NAME> are set by start_backend

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

require_sidecar
require_cmd certtool
for b in "$RECBACKEND" "$TCPCLIENT" "$TLSCLIENT"; do
	[ -x "$b" ] || bail_out "not built: $b"
done
EXAMPLES=$T_SRC/../config/federation
if [ ! -f "$EXAMPLES/example-com.conf" ] || [ ! -f "$EXAMPLES/partner-net.conf" ]; then
	bail_out "no federation example in $EXAMPLES"
fi

# ------------------------------------------------------------------ PKI
# The files the examples name, in $ETC (= their /etc/sip-sidecar/).
ETC=$T_TMP/etc
mkdir -p "$ETC/work"
pki_ok=1
gen() { # gen OUT-NAME ARGS...: certtool, chatter to the log
	certtool "$@" >>"$ETC/work/certtool.log" 2>&1 || {
		pki_ok=0
		diag "certtool $* failed:" "$(tail -n 5 "$ETC/work/certtool.log")"
	}
}
key() { gen --generate-privkey --no-text --key-type=ecdsa --curve=secp256r1 --outfile "$1"; }
root() { # root NAME CN SERIAL
	printf 'cn = "%s"\norganization = "%s"\nserial = %s\nexpiration_days = 365\nca\ncert_signing_key\ncrl_signing_key\n' \
		"$2" "$1" "$3" >"$ETC/work/$1.tmpl"
	key "$ETC/work/$1.key"
	gen --generate-self-signed --no-text --load-privkey "$ETC/work/$1.key" \
		--template "$ETC/work/$1.tmpl" --outfile "$ETC/work/$1.crt"
}
leaf() { # leaf FILE-BASE CA NAME SERIAL: one certificate for both TLS roles
	printf 'cn = "%s"\nserial = %s\nexpiration_days = 365\ndns_name = "%s"\nuri = "sip:%s"\nsigning_key\ntls_www_server\ntls_www_client\n' \
		"$3" "$4" "$3" "$3" >"$ETC/work/$1.tmpl"
	key "$ETC/$1.key"
	gen --generate-certificate --no-text --load-privkey "$ETC/$1.key" \
		--load-ca-certificate "$ETC/work/$2.crt" --load-ca-privkey "$ETC/work/$2.key" \
		--template "$ETC/work/$1.tmpl" --outfile "$ETC/$1.pem"
}
crl() { # crl CA OUT
	printf 'crl_next_update = 365\ncrl_number = 1\n' >"$ETC/work/crl.tmpl"
	gen --generate-crl --no-text --load-ca-privkey "$ETC/work/$1.key" \
		--load-ca-certificate "$ETC/work/$1.crt" --template "$ETC/work/crl.tmpl" --outfile "$2"
}
root example-com "example.com federation root" 1
root partner-net "partner.example.net federation root" 2
leaf sip.example.com example-com sip.example.com 16
leaf sip.partner.example.net partner-net sip.partner.example.net 17
# the partner's CA issuing a certificate for OUR name: must not work on A
leaf impostor partner-net sip.example.com 18
cp "$ETC/work/example-com.crt" "$ETC/example-com-root.pem"
cp "$ETC/work/partner-net.crt" "$ETC/partner-net-root.pem"
crl example-com "$ETC/example-com.crl"
crl partner-net "$ETC/partner-net.crl"
chmod 600 "$ETC"/*.key
[ "$pki_ok" = 1 ] || bail_out "cannot make the federation PKI"

# ------------------------------------------------------ the two configs
start_backend legacyA -a || bail_out "cannot start legacy server A"
start_backend legacyB -a || bail_out "cannot start legacy server B"
LA=$(free_port)  # A's [listen partner-net]
CA=$(free_port)  # A's [connect partner-net]
LB=$(free_port)  # B's [listen example-com]
CB=$(free_port)  # B's [connect example-com]

# subst IN OUT BACKEND LISTEN CONNECT PEER-HOST PEER-PORT
subst() {
	sed -e "s#/etc/sip-sidecar/#$ETC/#g" \
		-e "s#^bind = 0\.0\.0\.0:5061\$#bind = 127.0.0.1:$4#" \
		-e "s#^backend = 127\.0\.0\.1:5060\$#backend = 127.0.0.1:$3#" \
		-e "s#^bind = 127\.0\.0\.1:5070\$#bind = 127.0.0.1:$5#" \
		-e "s#^server = $6:5061\$#server = localhost:$7#" \
		-e '/^\[global\]/a allow-root = yes' "$1" >"$2"
}
subst "$EXAMPLES/example-com.conf" "$T_TMP/a.conf" "$BACKEND_PORT_legacyA" "$LA" "$CA" \
	'sip\.partner\.example\.net' "$LB"
subst "$EXAMPLES/partner-net.conf" "$T_TMP/b.conf" "$BACKEND_PORT_legacyB" "$LB" "$CB" \
	'sip\.example\.com' "$LA"

# Every address and path of the examples was replaced (else the test would
# run something other than the shipped files, or fail obscurely).
for f in a b; do
	left=$(grep -Ev '^[[:space:]]*#' "$T_TMP/$f.conf" | grep -E '/etc/sip-sidecar|:50(60|61|70)$|0\.0\.0\.0|\[::\]')
	is "" "$left" "$f.conf: every path and port of the example substituted"
done
like "bind = 127.0.0.1:$LA.*bind = 127.0.0.1:$CA" "$(tr '\n' ' ' <"$T_TMP/a.conf")" \
	"a.conf: the listener and the connect listener got their own ports"
is 1 "$(grep -c "^server = localhost:$LB\$" "$T_TMP/a.conf")" "a.conf: [connect] points at B's listener"
is 1 "$(grep -c "^server = localhost:$LA\$" "$T_TMP/b.conf")" "b.conf: [connect] points at A's listener"

ok_cmd "sip-sidecar -t accepts example-com.conf (paths substituted)" "$SIDECAR" -t -c "$T_TMP/a.conf"
ok_cmd "sip-sidecar -t accepts partner-net.conf (paths substituted)" "$SIDECAR" -t -c "$T_TMP/b.conf"

start_named sidecarA "$T_TMP/a.conf" "$LA" "$CA"
ok $? "sidecar A (example-com.conf) starts"
start_named sidecarB "$T_TMP/b.conf" "$LB" "$CB"
ok $? "sidecar B (partner-net.conf) starts"
LOGA=$T_TMP/sidecarA.log
LOGB=$T_TMP/sidecarB.log

# ---------------------------------------------- legacy A -> legacy B
HDR=X-TLS-Peer-Identity
ok_cmd "legacy A -> A [connect] -> MTLS -> B [listen] -> legacy B: 200 OK back" \
	"$TCPCLIENT" -c "127.0.0.1:$CA" --sip 1 --header "$HDR: spoofed.example.org" \
	--out "$T_TMP/respA" --read-timeout 3000
like 'sent=1 ok=1' "$(cat "$T_OUT")" "... one request, one matching 200"
wait_for_log "$T_TMP/legacyB/events.log" '^close 1 ' 5
got=$(cat "$T_TMP/legacyB/conn-1.bin" 2>/dev/null)
like '^OPTIONS sip:' "$got" "legacy B received the request"
is 1 "$(grep -ci "^$HDR:" "$T_TMP/legacyB/conn-1.bin" 2>/dev/null)" \
	"legacy B saw exactly one $HDR header"
is 1 "$(grep -c $'^'"$HDR: sip.example.com"$'\r$' "$T_TMP/legacyB/conn-1.bin" 2>/dev/null)" \
	"... with A's verified identity sip.example.com"
unlike 'spoofed' "$got" "... and not the one legacy A sent itself"
is 1 "$(grep -ci "^$HDR:" "$T_TMP/respA" 2>/dev/null)" "the 200 OK reached legacy A with one $HDR header"
is 1 "$(grep -c $'^'"$HDR: sip.partner.example.net"$'\r$' "$T_TMP/respA" 2>/dev/null)" \
	"... naming B's verified identity sip.partner.example.net"
is 1 "$(log_count "$LOGA" "connect=partner-net server=127\.0\.0\.1:$LB accepted TLS1\.[23] .* identity=sip\.partner\.example\.net")" \
	"A logs the outbound connection with the partner's identity"
is 1 "$(log_count "$LOGB" "listen=example-com peer=127\.0\.0\.1:[0-9]+ accepted TLS1\.[23] .* identity=sip\.example\.com")" \
	"B logs the inbound connection with example.com's identity"

# ---------------------------------------------- legacy B -> legacy A
ok_cmd "legacy B -> B [connect] -> MTLS -> A [listen] -> legacy A: 200 OK back" \
	"$TCPCLIENT" -c "127.0.0.1:$CB" --sip 1 --header "$HDR: spoofed.example.org" \
	--out "$T_TMP/respB" --read-timeout 3000
like 'sent=1 ok=1' "$(cat "$T_OUT")" "... one request, one matching 200"
wait_for_log "$T_TMP/legacyA/events.log" '^close 1 ' 5
got=$(cat "$T_TMP/legacyA/conn-1.bin" 2>/dev/null)
is 1 "$(grep -ci "^$HDR:" "$T_TMP/legacyA/conn-1.bin" 2>/dev/null)" \
	"legacy A saw exactly one $HDR header"
is 1 "$(grep -c $'^'"$HDR: sip.partner.example.net"$'\r$' "$T_TMP/legacyA/conn-1.bin" 2>/dev/null)" \
	"... with B's verified identity sip.partner.example.net"
unlike 'spoofed' "$got" "... and not the one legacy B sent itself"
is 1 "$(grep -c $'^'"$HDR: sip.example.com"$'\r$' "$T_TMP/respB" 2>/dev/null)" \
	"the 200 OK reached legacy B naming A's verified identity"

# ------------------- the partner's CA cannot vouch for example.com's name
ok_status 3 "A refuses a certificate for sip.example.com issued by the partner's CA" \
	"$TLSCLIENT" -c "127.0.0.1:$LA" --ca "$ETC/example-com-root.pem" --verify-name sip.example.com \
	--cert "$ETC/impostor.pem" --key "$ETC/impostor.key" --sip 1 --read-timeout 2000
wait_for_log "$LOGA" "listen=partner-net peer=127\.0\.0\.1:[0-9]+ refused: not allowed" 5
ok $? "... logged as \"not allowed\""
sleep 0.2
n=$(find "$T_TMP/legacyA" -name 'conn-*.bin' | wc -l)
is 1 "$n" "... and legacy A received no connection from it"
ok_cmd "A still admits the partner afterwards" \
	"$TCPCLIENT" -c "127.0.0.1:$CB" --sip 2 --read-timeout 3000
like 'sent=2 ok=2' "$(cat "$T_OUT")" "... two requests, two 200s"

# ------------------------------------------------------------- shutdown
for s in sidecarA sidecarB; do
	pidvar=PID_$s
	kill -TERM "${!pidvar}"
	wait_pid_exit "${!pidvar}" 10
	wait "${!pidvar}" 2>/dev/null
	is 0 "$?" "$s exits 0 on SIGTERM"
done
is 0 "$(grep -Ec 'refused' "$LOGB")" "B refused nothing"

done_testing
