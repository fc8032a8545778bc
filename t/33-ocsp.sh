#!/bin/bash
# 33-ocsp.sh: OCSP stapling of our own certificates (ocsp-response = FILE).
# Responses for server.crt are made in the test PKI with "openssl ocsp"
# (signed by the test CA): a fresh one, a stale one (made 10 days in the
# past with faketime), one for another certificate (server2.crt), one
# saying "revoked". Checks -t on each, that a client asking for the status
# (openssl s_client -status, gnutls-cli --save-ocsp) gets the fresh one
# byte for byte, that a client is served either way, that SIGHUP loads a new
# response (and a stale one is logged and not stapled; a mismatching one
# fails the reload and the old staple stays).
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2154 # BACKEND_PORT_<NAME> are set by start_backend

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

require_sidecar
require_cmd certtool openssl faketime gnutls-cli
certs_dir >/dev/null || skip_all "no test certificates (t/mkcerts.sh)"
C=$CERTS
O=$T_TMP/ocsp
mkdir -p "$O"
export TZ=UTC

# ------------------------------------------------ responses
# index_line CRT STATUS: an "openssl ca" index line for CRT (V or R)
index_line() {
	local exp ser subj rev=
	exp=$(date -u -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%y%m%d%H%M%SZ)
	ser=$(openssl x509 -in "$1" -noout -serial | cut -d= -f2)
	subj=$(openssl x509 -in "$1" -noout -subject -nameopt compat | sed 's/^subject=//')
	[ "$2" = R ] && rev=$(date -u -d '-1 day' +%y%m%d%H%M%SZ)
	printf '%s\t%s\t%s\t%s\tunknown\t%s\n' "$2" "$exp" "$rev" "$ser" "$subj"
}
# respond OUT CRT STATUS [FAKETIME [SIGNER [VALIDITY]]]: a response about
# CRT, signed by SIGNER (default: ca), valid VALIDITY (openssl ocsp options,
# default -ndays 2) from the (faked) time it is made
respond() {
	local out=$1 crt=$2 st=$3 ft=${4:-} signer=${5:-ca} validity=${6:--ndays 2}
	index_line "$crt" "$st" >"$O/index.txt"
	if ! openssl ocsp -issuer "$C/ca.crt" -cert "$crt" -reqout "$O/req.der" -no_nonce >>"$O/openssl.log" 2>&1; then
		bail_out "openssl ocsp (request) failed: $(tail -n 3 "$O/openssl.log")"
	fi
	# shellcheck disable=SC2086 # $validity is two words on purpose
	if ! ${ft:+faketime -f "$ft"} openssl ocsp -index "$O/index.txt" -rsigner "$C/$signer.crt" \
		-rkey "$C/$signer.key" -CA "$C/ca.crt" -reqin "$O/req.der" -respout "$out" $validity \
		>>"$O/openssl.log" 2>&1; then
		bail_out "openssl ocsp (response) failed: $(tail -n 3 "$O/openssl.log")"
	fi
}
respond "$O/good.der" "$C/server.crt" V
respond "$O/good2.der" "$C/server.crt" V "-1h"
respond "$O/stale.der" "$C/server.crt" V "-10d"
respond "$O/other.der" "$C/server2.crt" V
respond "$O/revoked.der" "$C/server.crt" R
respond "$O/forged.der" "$C/server.crt" V "" rogue-ca
printf 'not an OCSP response\n' >"$O/junk.der"
cmp -s "$O/good.der" "$O/good2.der"
isnt 0 $? "two different fresh responses"
cat "$C/server.crt" "$C/ca.crt" >"$O/server-chain.crt"

# ------------------------------------------------ -t
start_backend b -a || bail_out "no backend"
PORT=$(free_port)
conf() { # RESPONSE-FILE > conf
	cat <<EOF
[global]
allow-root = yes
handshake-timeout = 5s

[listen ocsp]
bind = 127.0.0.1:$PORT
backend = 127.0.0.1:$BACKEND_PORT_b
cert = $O/server-chain.crt
ocsp-response = $1
key = $C/server.key
cert = $C/server-rsa.crt
key = $C/server-rsa.key
EOF
}
check() { # DESC RESPONSE-FILE STATUS REGEX
	conf "$2" >"$T_TMP/check.conf"
	"$SIDECAR" -t -c "$T_TMP/check.conf" >"$T_TMP/check.out" 2>&1
	is "$3" $? "-t: $1: exit status $3"
	like "$4" "$(cat "$T_TMP/check.out")" "-t: $1: says so" || diag "$(cat "$T_TMP/check.out")"
}
check "a fresh response" "$O/good.der" 0 "configuration ok"
check "a stale response" "$O/stale.der" 0 \
	"warning: .*check\\.conf:[0-9]+: OCSP response .*stale\\.der is stale \\(past its nextUpdate .*\\): not stapled"
check "a response for server2.crt" "$O/other.der" 1 \
	"check\\.conf:[0-9]+: OCSP response .*other\\.der is not for certificate .*server-chain\\.crt \\(serial 10\\)"
check "a response saying revoked" "$O/revoked.der" 1 "check\\.conf:[0-9]+: OCSP response .*revoked\\.der says certificate .* is revoked"
check "a response signed by rogue-ca" "$O/forged.der" 1 \
	"check\\.conf:[0-9]+: OCSP response .*forged\\.der: its signature does not verify with the issuer of"
check "junk" "$O/junk.der" 1 "check\\.conf:[0-9]+: .*junk\\.der is not an OCSP response"
check "a missing file" "$O/none.der" 1 "check\\.conf:[0-9]+: cannot read .*none\\.der"
printf '[global]\nallow-root = yes\n[listen x]\nbind = 127.0.0.1:%s\nbackend = 127.0.0.1:1\nocsp-response = %s\ncert = %s\nkey = %s\n' \
	"$PORT" "$O/good.der" "$C/server.crt" "$C/server.key" >"$T_TMP/order.conf"
"$SIDECAR" -t -c "$T_TMP/order.conf" >"$T_TMP/check.out" 2>&1
like "order\\.conf:6: ocsp-response must follow the 'cert' it is for" "$(cat "$T_TMP/check.out")" \
	"-t: ocsp-response before any cert is refused with FILE:LINE"

# ------------------------------------------------ stapling
cp "$O/good.der" "$O/current.der"
conf "$O/current.der" >"$T_TMP/ocsp.conf"
start_sidecar "$T_TMP/ocsp.conf" "$PORT" || bail_out "the daemon did not start"

# s_client [OPTS]: openssl s_client -status against the listener, output in $T_OUT
s_client() {
	timeout 20 openssl s_client -connect "127.0.0.1:$PORT" -servername sip.example.test -CAfile "$C/ca.crt" \
		-status "$@" </dev/null >"$T_OUT" 2>&1
}
s_client
like "OCSP Response Status: successful" "$(cat "$T_OUT")" "s_client -status: a response is stapled"
like "Cert Status: good" "$(cat "$T_OUT")" "... saying good"
like "Verify return code: 0 " "$(cat "$T_OUT")" "... and the chain verifies"
s_client -tls1_2
like "OCSP Response Status: successful" "$(cat "$T_OUT")" "TLS 1.2: stapled too"
s_client -sigalgs rsa_pss_rsae_sha256
like "OCSP response: no response sent" "$(cat "$T_OUT")" \
	"the RSA certificate (no ocsp-response): nothing stapled"
like "Server public key is 2048 bit" "$(cat "$T_OUT")" "... (it was the RSA certificate)"
rm -f "$O/saved.der"
timeout 20 gnutls-cli -p "$PORT" --x509cafile "$C/ca.crt" --sni-hostname sip.example.test \
	--verify-hostname sip.example.test --save-ocsp "$O/saved.der" 127.0.0.1 </dev/null >"$T_OUT" 2>&1
files_equal "$O/good.der" "$O/saved.der" "gnutls-cli --save-ocsp: the staple is the file, byte for byte"
"$TLSCLIENT" -c "127.0.0.1:$PORT" --ca "$C/ca.crt" --sni sip.example.test --sip 1 >"$T_OUT" 2>&1
is "0 sent=1 ok=1" "$? $(grep -o 'sent=[0-9]* ok=[0-9]*' "$T_OUT")" "a client not asking for the status is served"

# ------------------------------------------------ reload
cp "$O/good2.der" "$O/current.der"
reload_sidecar 10
is 0 $? "SIGHUP with a newer response: reload ok"
rm -f "$O/saved.der"
timeout 20 gnutls-cli -p "$PORT" --x509cafile "$C/ca.crt" --sni-hostname sip.example.test \
	--verify-hostname sip.example.test --save-ocsp "$O/saved.der" 127.0.0.1 </dev/null >"$T_OUT" 2>&1
files_equal "$O/good2.der" "$O/saved.der" "... the new response is stapled"

cp "$O/other.der" "$O/current.der"
mark_log
reload_sidecar 10
is 1 $? "SIGHUP with a response for another certificate: reload failed"
like "OCSP response .*current\\.der is not for certificate" "$(newlog)" "... logged with the reason"
rm -f "$O/saved.der"
timeout 20 gnutls-cli -p "$PORT" --x509cafile "$C/ca.crt" --sni-hostname sip.example.test \
	--verify-hostname sip.example.test --save-ocsp "$O/saved.der" 127.0.0.1 </dev/null >"$T_OUT" 2>&1
files_equal "$O/good2.der" "$O/saved.der" "... the previous response is still stapled"

cp "$O/stale.der" "$O/current.der"
mark_log
reload_sidecar 10
is 0 $? "SIGHUP with a stale response: reload ok"
like "warning: .*current\\.der is stale \\(past its nextUpdate .*\\): not stapled" "$(newlog)" "... logged as stale"
s_client
like "OCSP response: no response sent" "$(cat "$T_OUT")" "... and nothing is stapled"
"$TLSCLIENT" -c "127.0.0.1:$PORT" --ca "$C/ca.crt" --sni sip.example.test --sip 1 >"$T_OUT" 2>&1
is "0 sent=1 ok=1" "$? $(grep -o 'sent=[0-9]* ok=[0-9]*' "$T_OUT")" "... clients are still served"

# a response that goes stale while the daemon runs: made 40 s in the past,
# valid 1 minute
respond "$O/short.der" "$C/server.crt" V "-40s" ca "-nmin 1"
short_next=$(date -u -d "$(ocsptool -j --infile "$O/short.der" | sed -n 's/^[[:space:]]*Next Update: //p')" +%s)
cp "$O/short.der" "$O/current.der"
mark_log
reload_sidecar 10
is 0 $? "SIGHUP with a response valid for 20 more seconds: reload ok"
s_client
if [ "$(date +%s)" -lt $((short_next - 2)) ]; then
	like "OCSP Response Status: successful" "$(cat "$T_OUT")" "... stapled while fresh"
else
	skip "the machine took too long: the short response is already stale" 1
fi
# poll (bounded) until its nextUpdate has passed and the staple is gone
for ((i = 0; i < 60; i++)); do
	[ "$(date +%s)" -gt "$short_next" ] && break
	sleep 1
done
s_client
like "OCSP response: no response sent" "$(cat "$T_OUT")" "past its nextUpdate: no longer stapled"
wait_new "listen=ocsp OCSP response .*current\\.der is stale since .*: no longer stapled" 5
ok $? "... logged once it is stale" || diag "$(newlog | tail -n 3)"
s_client
is 1 "$(newlog | grep -c 'is stale since')" "... and only once"

stop_sidecar 10
ok $? "the daemon stops on SIGTERM"
is 0 "$SIDECAR_STATUS" "... with exit status 0"
done_testing
