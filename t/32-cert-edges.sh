#!/bin/bash
# 32-cert-edges.sh: certificate edge cases end to end. One daemon, each
# listener with its own recording backend:
#   tls    client-auth = none (TLS only)
#   strict client-auth = require, ca.crt + ca.crl (fresh), defaults
#   deep   like strict with verify-depth = 10
#   stale  like strict but with a CRL past its nextUpdate (crl-stale default: refuse)
#   warn   the same stale CRL with crl-stale = warn
# Checks: a stale CRL refuses ("stale crl") or only warns; a chain of 10
# intermediate CAs is refused by default ("chain too long") and admitted
# with verify-depth = 10; an RSA-1024 client key ("weak key") and a SHA-1
# signed client certificate ("weak signature") are refused while a normal
# client passes; a ticket from the TLS-only listener never resumes on an
# MTLS listener; each refusal logged with its reason, counted in the
# metrics, nothing reaching the backend, and a good client served after.
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
P=$T_TMP/pki
mkdir -p "$P"

# ------------------------------------------------ extra certificates
export TZ=UTC
# run CMD...: certtool's chatter to a log, bail out on failure
run() {
	"$@" >>"$T_TMP/certtool.out" 2>&1 || bail_out "failed: $* ($(tail -n 3 "$T_TMP/certtool.out"))"
}
leaf_tmpl() {
	printf 'cn = "peer.example.test"\ndns_name = "peer.example.test"\nexpiration_days = 30\nsigning_key\ntls_www_client\n'
}
# a CRL by ca revoking client-revoked, whose nextUpdate passed yesterday
printf 'crl_this_update_date = "%s"\ncrl_next_update_date = "%s"\ncrl_number = 7\n' \
	"$(date -u -d '-3 days' '+%Y-%m-%d %H:%M:%S')" "$(date -u -d '-1 day' '+%Y-%m-%d %H:%M:%S')" >"$P/stale.tmpl"
run certtool --generate-crl --no-text --load-ca-privkey "$C/ca.key" --load-ca-certificate "$C/ca.crt" \
	--load-certificate "$C/client-revoked.crt" --template "$P/stale.tmpl" --outfile "$P/stale.crl"
# RSA-1024 client, and a SHA-1 signed one (ECDSA key)
run certtool --generate-privkey --no-text --key-type=rsa --bits=1024 --outfile "$P/rsa1024.key"
leaf_tmpl >"$P/leaf.tmpl"
run certtool --generate-certificate --no-text --load-privkey "$P/rsa1024.key" --load-ca-certificate "$C/ca.crt" \
	--load-ca-privkey "$C/ca.key" --template "$P/leaf.tmpl" --outfile "$P/rsa1024.crt"
run certtool --generate-certificate --no-text --hash SHA1 --load-privkey "$C/client.key" \
	--load-ca-certificate "$C/ca.crt" --load-ca-privkey "$C/ca.key" --template "$P/leaf.tmpl" \
	--outfile "$P/sha1.crt"
cp "$C/client.key" "$P/sha1.key"
# a chain of 10 intermediate CAs under ca (one key for all: quick)
issuer=$C/ca
printf 'cn = "intermediate"\nca\ncert_signing_key\ncrl_signing_key\nexpiration_days = 30\n' >"$P/int.tmpl"
for i in 1 2 3 4 5 6 7 8 9 10; do
	sed "s/intermediate/intermediate $i/" "$P/int.tmpl" >"$P/int$i.tmpl"
	run certtool --generate-certificate --no-text --load-privkey "$C/client.key" \
		--load-ca-certificate "$issuer.crt" --load-ca-privkey "$issuer.key" --template "$P/int$i.tmpl" \
		--outfile "$P/int$i.crt"
	cp "$C/client.key" "$P/int$i.key"
	issuer=$P/int$i
done
run certtool --generate-certificate --no-text --load-privkey "$C/client.key" --load-ca-certificate "$issuer.crt" \
	--load-ca-privkey "$issuer.key" --template "$P/leaf.tmpl" --outfile "$P/deepleaf.crt"
cat "$P/deepleaf.crt" "$P"/int{10,9,8,7,6,5,4,3,2,1}.crt >"$P/deep.crt"
cp "$C/client.key" "$P/deep.key"
is 11 "$(grep -c 'BEGIN CERTIFICATE' "$P/deep.crt")" "the deep chain: a leaf and 10 intermediate CAs"

# ------------------------------------------------ daemon
for l in tls strict deep stale warn; do
	start_backend "$l" -a || bail_out "no backend"
done
P_TLS=$(free_port)
P_STRICT=$(free_port)
P_DEEP=$(free_port)
P_STALE=$(free_port)
P_WARN=$(free_port)
P_METRICS=$(free_port)
section() { # NAME PORT CRL [EXTRA]
	printf '[listen %s]\nbind = 127.0.0.1:%s\nbackend = 127.0.0.1:%s\ncert = %s\nkey = %s\nclient-auth = require\nca = %s\ncrl = %s\n%s\n\n' \
		"$1" "$2" "$(eval echo "\$BACKEND_PORT_$1")" "$C/server.crt" "$C/server.key" "$C/ca.crt" "$3" "${4:-}"
}
{
	printf '[global]\nallow-root = yes\nhandshake-timeout = 5s\nmetrics = 127.0.0.1:%s\n\n' "$P_METRICS"
	printf '[listen tls]\nbind = 127.0.0.1:%s\nbackend = 127.0.0.1:%s\ncert = %s\nkey = %s\n\n' \
		"$P_TLS" "$BACKEND_PORT_tls" "$C/server.crt" "$C/server.key"
	section strict "$P_STRICT" "$C/ca.crl"
	section deep "$P_DEEP" "$C/ca.crl" "verify-depth = 10"
	section stale "$P_STALE" "$P/stale.crl"
	section warn "$P_WARN" "$P/stale.crl" "crl-stale = warn"
} >"$T_TMP/edges.conf"

"$SIDECAR" -t -c "$T_TMP/edges.conf" >"$T_TMP/check.out" 2>&1
is 0 $? "-t: the configuration is usable"
like "error: .*stale.crl .* is past its nextUpdate" "$(cat "$T_TMP/check.out")" "-t: says the CRL is stale"
sed 's/^crl-stale = warn$/crl-stale = maybe/' "$T_TMP/edges.conf" >"$T_TMP/bad.conf"
"$SIDECAR" -t -c "$T_TMP/bad.conf" >"$T_TMP/bad.out" 2>&1
is 1 $? "-t: crl-stale = maybe is refused"
like "bad\\.conf:[0-9]+: invalid crl-stale 'maybe' \\(refuse or warn\\)" "$(cat "$T_TMP/bad.out")" "... with FILE:LINE"
sed 's/^verify-depth = 10$/verify-depth = 16/' "$T_TMP/edges.conf" >"$T_TMP/bad.conf"
"$SIDECAR" -t -c "$T_TMP/bad.conf" >"$T_TMP/bad.out" 2>&1
is 1 $? "-t: verify-depth = 16 is refused"
like "bad\\.conf:[0-9]+: invalid verify-depth '16' \\(1 to 15\\)" "$(cat "$T_TMP/bad.out")" "... with FILE:LINE"

start_sidecar "$T_TMP/edges.conf" "$P_TLS" "$P_STRICT" "$P_DEEP" "$P_STALE" "$P_WARN" ||
	bail_out "the daemon did not start"

# ------------------------------------------------ helpers
port_of() {
	case $1 in
	tls) echo "$P_TLS" ;; strict) echo "$P_STRICT" ;; deep) echo "$P_DEEP" ;;
	stale) echo "$P_STALE" ;; warn) echo "$P_WARN" ;;
	esac
}
accepts() { log_count "$T_TMP/$1/events.log" '^accept '; }
# client LISTENER CRT KEY [OPTS]: one OPTIONS; CRT "" for none
client() {
	local l=$1 crt=$2 key=$3
	shift 3
	local args=()
	[ -n "$crt" ] && args=(--cert "$crt" --key "$key")
	"$TLSCLIENT" -c "127.0.0.1:$(port_of "$l")" --ca "$C/ca.crt" "${args[@]}" \
		--sip 1 --read-timeout 2000 "$@" >"$T_OUT" 2>&1
	T_STATUS=$?
}
metric() {
	local page
	exec 3<>"/dev/tcp/127.0.0.1/$P_METRICS" || return 1
	printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
	page=$(timeout 5 cat <&3)
	exec 3<&-
	printf '%s\n' "$page" | tr -d '\r' | grep -F "sip_sidecar_refused_total{reason=\"$1\"}" | awk '{print $NF}'
}
# accepted DESC LISTENER CRT KEY [OPTS]
accepted() {
	local desc=$1 l=$2 before
	shift 2
	before=$(accepts "$l")
	mark_log
	client "$l" "$@"
	is "0 sent=1 ok=1" "$T_STATUS $(grep -o 'sent=[0-9]* ok=[0-9]*' "$T_OUT")" "$desc: admitted, 200 OK" ||
		diag "$(tail -n 5 "$T_OUT")"
	wait_new "listen=$l .* accepted " 5
	ok $? "$desc: log: accepted"
	is $((before + 1)) "$(accepts "$l")" "$desc: the backend got the connection"
}
# refused DESC LISTENER REASON CRT KEY [OPTS]
refused() {
	local desc=$1 l=$2 reason=$3 before m0
	shift 3
	before=$(accepts "$l")
	m0=$(metric "$reason")
	mark_log
	client "$l" "$@"
	cp "$T_OUT" "$T_TMP/refused.out"
	is 3 "$T_STATUS" "$desc: the handshake fails (a fatal alert)" || diag "$(tail -n 5 "$T_OUT")"
	wait_new "listen=$l peer=127\\.0\\.0\\.1:[0-9]+ refused: $reason( \\(|$)" 5
	ok $? "$desc: log: refused: $reason" || diag "$(newlog | tail -n 3)"
	is "$before" "$(accepts "$l")" "$desc: the backend got nothing"
	is $((${m0:-0} + 1)) "$(metric "$reason")" "$desc: counted as refused_total{reason=\"$reason\"}"
	client "$l" "$C/client.crt" "$C/client.key"
	if [ "$l" = stale ]; then
		isnt 0 "$T_STATUS" "$desc: (on stale every client of ca is refused)"
	else
		is "0 sent=1 ok=1" "$T_STATUS $(grep -o 'sent=[0-9]* ok=[0-9]*' "$T_OUT")" \
			"$desc: a good client is still served" || diag "$(tail -n 5 "$T_OUT")"
	fi
}

# ------------------------------------------------ stale CRL
accepted "a good client, fresh CRL" strict "$C/client.crt" "$C/client.key"
refused "a good client, CRL past its nextUpdate (crl-stale default)" stale "stale crl" \
	"$C/client.crt" "$C/client.key"
like "CRL stale since 20[0-9-]+T" "$(newlog | grep 'refused: stale crl' | head -n 1)" \
	"... the log says since when"
accepted "a good client, stale CRL with crl-stale = warn" warn "$C/client.crt" "$C/client.key"
like "listen=warn peer=127\\.0\\.0\\.1:[0-9]+ admitted with a warning: stale crl" "$(newlog)" \
	"... logged as a warning"
refused "a revoked client, stale CRL with crl-stale = warn (what it revokes stays revoked)" warn revoked \
	"$C/client-revoked.crt" "$C/client-revoked.key"

# ------------------------------------------------ depth, weak keys and hashes
refused "a chain of 10 intermediate CAs, default verify-depth 8" strict "chain too long" "$P/deep.crt" "$P/deep.key"
accepted "the same chain with verify-depth = 10" deep "$P/deep.crt" "$P/deep.key"
refused "an RSA-1024 client key" strict "weak key" "$P/rsa1024.crt" "$P/rsa1024.key"
refused "a SHA-1 signed client certificate" strict "weak signature" "$P/sha1.crt" "$P/sha1.key"

# ------------------------------------------------ tickets do not cross listeners
sess=$T_TMP/tls.sess
rm -f "$sess"
accepted "TLS-only listener: a session" tls "" "" --sessfile "$sess" --print-info
[ -s "$sess" ]
ok $? "... the client saved its ticket"
cp "$sess" "$T_TMP/tls2.sess"
accepted "TLS-only listener: the ticket resumes there" tls "" "" --sessfile "$T_TMP/tls2.sess" --print-info
like 'resumed=yes' "$(cat "$T_OUT")" "... resumed=yes"
cp "$sess" "$T_TMP/cross.sess"
refused "the TLS-only ticket on the MTLS listener, no certificate" strict "no certificate" "" "" \
	--sessfile "$T_TMP/cross.sess" --print-info
like 'resumed=no' "$(cat "$T_TMP/refused.out")" "... not resumed: a full handshake asked for a certificate"
cp "$sess" "$T_TMP/cross2.sess"
accepted "the TLS-only ticket on the MTLS listener with client.crt" strict "$C/client.crt" "$C/client.key" \
	--sessfile "$T_TMP/cross2.sess" --print-info
like 'resumed=no' "$(cat "$T_OUT")" "... a full handshake with the certificate"
like "listen=strict .* accepted .* identity=peer\\.example\\.test$" "$(newlog | grep accepted)" \
	"... logged with the verified identity, not resumed"

stop_sidecar 10
ok $? "the daemon stops on SIGTERM"
is 0 "$SIDECAR_STATUS" "... with exit status 0"
done_testing
