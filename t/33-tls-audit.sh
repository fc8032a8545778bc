#!/bin/bash
# 33-tls-audit.sh: testssl.sh (Debian package testssl.sh) against three
# listeners of one daemon, on 127.0.0.1 only: TLS with an ECDSA
# certificate, TLS with an RSA certificate, and MTLS (client-auth =
# require; testssl offers no client certificate, which is enough to see the
# protocols and suites). All with the default tls-priority. For each:
#  - no finding of severity MEDIUM, HIGH or CRITICAL (testssl's JSON);
#  - SSLv2, SSLv3, TLS 1.0 and 1.1 not offered; TLS 1.2 and 1.3 offered;
#  - every TLS 1.2 suite has forward secrecy (ECDHE/DHE) and is an AEAD
#    (GCM, CCM, ChaCha20-Poly1305): no RSA key transport, no CBC.
# testssl is slow (a minute or more per check group on a busy 2-core
# machine), so only what means something for a TLS 1.2/1.3-only server is
# run: protocols (-p) and every suite per protocol (-E) on each listener;
# of the vulnerabilities (-U), those that the protocols and suites offered
# do not settle, once: Heartbleed, CCS injection, renegotiation, CRIME
# (compression) and fallback SCSV on the ECDSA listener (-H -I -R -C -Z),
# ROBOT on the RSA one (-BB), renegotiation on the MTLS one (-R). (POODLE,
# DROWN and BEAST need SSL 3/2 or TLS 1.0; SWEET32, FREAK, LOGJAM, LUCKY13
# and RC4 need suites that -E shows absent.) The server-defaults group (-S:
# certificate and session details) alone costs about four minutes and
# checks nothing of the above: left out. The certificates are made here
# like a public one would be (90 days, CRL and OCSP URIs) anyway, and the
# test CA is given to testssl (--add-ca). The three scans run in parallel
# (2-7 minutes, depending on the machine's load). Skipped when testssl is
# not installed (scripts/deps.sh --full installs it) and in a build with
# sanitizers (scripts/test-sanitizers.sh: the plain build's run is the
# audit).
# SPDX-License-Identifier: MIT

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

require_sidecar
command -v testssl >/dev/null 2>&1 ||
	skip_all "testssl not installed (Debian package testssl.sh; scripts/deps.sh --full installs it)"
[ -z "${T_SANITIZER:-}" ] || skip_all "the TLS audit runs in the plain build"
require_cmd certtool
certs_dir >/dev/null || skip_all "no test certificates (t/mkcerts.sh)"
C=$CERTS

# ------------------------------------------------ certificates
# mkcert NAME KEY: a server certificate for sip.example.test signed by the
# test CA with an existing key (no key generation: quick)
mkcert() {
	cat >"$T_TMP/$1.tmpl" <<EOT
cn = "sip.example.test"
organization = "sip-sidecar tests"
dns_name = "sip.example.test"
ip_address = "127.0.0.1"
expiration_days = 90
crl_dist_points = "http://crl.example.test/ca.crl"
ocsp_uri = "http://ocsp.example.test/"
signing_key
encryption_key
tls_www_server
EOT
	certtool --generate-certificate --no-text --load-privkey "$2" \
		--load-ca-certificate "$C/ca.crt" --load-ca-privkey "$C/ca.key" \
		--template "$T_TMP/$1.tmpl" --outfile "$T_TMP/$1.crt" >>"$T_TMP/certtool.out" 2>&1
}
mkcert ecdsa "$C/server.key" || bail_out "certtool failed: $(tail -n 5 "$T_TMP/certtool.out")"
mkcert rsa "$C/server-rsa.key" || bail_out "certtool failed: $(tail -n 5 "$T_TMP/certtool.out")"

# ------------------------------------------------ daemon
start_backend audit || bail_out "no backend"
P_ECDSA=$(free_port)
P_RSA=$(free_port)
P_MTLS=$(free_port)
cat >"$T_TMP/audit.conf" <<EOF
[global]
allow-root = yes
handshake-timeout = 10s
max-connections = 1000

[listen ecdsa]
bind = 127.0.0.1:$P_ECDSA
backend = 127.0.0.1:$BACKEND_PORT
cert = $T_TMP/ecdsa.crt
key = $C/server.key

[listen rsa]
bind = 127.0.0.1:$P_RSA
backend = 127.0.0.1:$BACKEND_PORT
cert = $T_TMP/rsa.crt
key = $C/server-rsa.key

[listen mtls]
bind = 127.0.0.1:$P_MTLS
backend = 127.0.0.1:$BACKEND_PORT
cert = $T_TMP/ecdsa.crt
key = $C/server.key
client-auth = require
ca = $C/ca.crt
crl = $C/ca.crl
EOF
start_sidecar "$T_TMP/audit.conf" "$P_ECDSA" "$P_RSA" "$P_MTLS" || bail_out "the daemon did not start"

# ------------------------------------------------ scans
# scan NAME PORT CHECKS...: testssl in the background -> $T_TMP/NAME.json,
# NAME.txt
PIDS=()
scan() {
	local name=$1 port=$2
	shift 2
	TMPDIR=$T_TMP testssl --quiet --color 0 --warnings off --nodns none --fast \
		--connect-timeout 10 --openssl-timeout 10 "$@" --add-ca "$C/ca.crt" \
		--jsonfile "$T_TMP/$name.json" "127.0.0.1:$port" >"$T_TMP/$name.txt" 2>&1 </dev/null &
	PIDS+=($!)
	track_pid $!
}
t0=$SECONDS
scan ecdsa "$P_ECDSA" -p -E -H -I -R -C -Z
scan rsa "$P_RSA" -p -E -BB
scan mtls "$P_MTLS" -p -E -R
for p in "${PIDS[@]}"; do
	wait_pid_exit "$p" 900
	untrack_pid "$p"
done
diag "three testssl scans took $((SECONDS - t0)) s"

# findings FILE: "ID<TAB>SEVERITY<TAB>FINDING" per finding of testssl's flat
# JSON (one key per line)
findings() {
	awk '
	function val(s) { sub(/^[^:]*:[ \t]*"/, "", s); sub(/"[ \t]*,?[ \t]*$/, "", s); return s }
	/"id"[ \t]*:/ { id = val($0) }
	/"severity"[ \t]*:/ { sev = val($0) }
	/"finding"[ \t]*:/ { print id "\t" sev "\t" val($0) }
	' "$1"
}

# audit NAME: the checks of one listener (4 tests)
audit() {
	local name=$1 f=$T_TMP/$1.json all bad proto want p got suites weak
	if [ ! -s "$f" ]; then
		fail "$name: testssl wrote its JSON report"
		diag "$(tail -n 20 "$T_TMP/$name.txt")"
		skip 3 "$name: no report"
		return
	fi
	all=$(findings "$f")
	[ "$(grep -c . <<<"$all")" -gt 10 ]
	ok $? "$name: testssl reported ($(grep -c . <<<"$all") findings)"

	bad=$(awk -F'\t' '$2 == "MEDIUM" || $2 == "HIGH" || $2 == "CRITICAL"' <<<"$all")
	is "" "$bad" "$name: no finding of severity MEDIUM or worse"

	proto=""
	for p in SSLv2 SSLv3 TLS1 TLS1_1 TLS1_2 TLS1_3; do
		case $p in
		TLS1_2 | TLS1_3) want="offered" ;;
		*) want="not offered" ;;
		esac
		got=$(awk -F'\t' -v id="$p" '$1 == id { print $3; exit }' <<<"$all")
		[[ $got == "$want"* ]] || proto="$proto $p='$got'"
	done
	is "" "$proto" "$name: SSLv2, SSLv3, TLS 1.0 and 1.1 not offered; TLS 1.2 and 1.3 offered"

	# "TLS 1.2   xc02f   ECDHE-RSA-AES128-GCM-SHA256 ... TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
	suites=$(awk -F'\t' '$1 ~ /^cipher-tls1_2_/ { n = split($3, w, " "); print w[n] }' <<<"$all")
	weak=$(grep -Ev '^TLS_(EC)?DHE_[A-Z0-9]+_WITH_.*(_GCM_|_CCM|CHACHA20_POLY1305)' <<<"$suites")
	[ -n "$suites" ] && [ -z "$weak" ]
	ok $? "$name: every TLS 1.2 suite has forward secrecy and AEAD ($(echo $suites))"
	[ -z "$weak" ] || diag "$name: weak TLS 1.2 suites: $(echo $weak)"
}

plan 13
audit ecdsa
audit rsa
audit mtls

# the daemon lived through it and relays a client's message
printf 'OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bK-audit\r\nFrom: <sip:t@test.invalid>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: audit@test.invalid\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' \
	>"$T_TMP/options.txt"
before=$(cat "$BACKEND_DIR"/conn-*.bin 2>/dev/null | grep -ac 'Call-ID: audit@test.invalid')
"$TLSCLIENT" -c "127.0.0.1:$P_ECDSA" --ca "$C/ca.crt" --send "$T_TMP/options.txt" --read-timeout 300 \
	>"$T_TMP/after.out" 2>&1
relayed() {
	[ "$(cat "$BACKEND_DIR"/conn-*.bin 2>/dev/null | grep -ac 'Call-ID: audit@test.invalid')" -gt "$before" ]
}
for ((i = 0; i < 200; i++)); do
	relayed && break
	sleep 0.05
done
relayed
ok $? "after the scans the daemon still relays a client's message to the backend"

done_testing
