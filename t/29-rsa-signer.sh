#!/bin/bash
# Our own RSA keys sign through libcrypto when it is built in (rsasign.c):
# every RSA signature scheme a client may ask for interoperates with
# OpenSSL's and GnuTLS's clients (TLS 1.3 RSA-PSS-RSAE with SHA-256/384/512;
# TLS 1.2 PKCS#1 v1.5 and PSS), -V and the start line name the signer, a
# mismatched or unusable key is still refused by -t, and a reload loads the
# new key.
. "${T_SRC:-$(dirname "$0")}/lib.sh"
require_sidecar
require_cmd certtool
require_cmd gnutls-cli
require_cmd openssl
certs_dir
plan 25

if ldd "$SIDECAR" 2>/dev/null | grep -q libcrypto; then want=libcrypto; else want=gnutls; fi
like "RSA signer $want" "$("$SIDECAR" -V)" "-V names the RSA signer ($want)"

start_backend be -a
p=$(free_port)
write_conf() {
	cat >"$T_TMP/r.conf" <<EOF
[global]
allow-root = yes
status-socket = off
[listen rsa]
bind = 127.0.0.1:$p
backend = 127.0.0.1:$BACKEND_PORT
cert = $1
key = $2
sip-framing = on
EOF
}
write_conf "$CERTS/server-rsa.crt" "$CERTS/server-rsa.key"
start_sidecar "$T_TMP/r.conf" "$p" || bail_out "sidecar did not start"
like "ready .*RSA signer $want" "$(cat "$SIDECAR_LOG")" "the start line names the signer"

# s_client SIGALG VERSION: the peer signature lines of one handshake
osc() {
	echo Q | timeout 20 openssl s_client -connect "127.0.0.1:$p" -CAfile "$CERTS/ca.crt" "-$2" -sigalgs "$1" \
		-verify_return_error -verify_hostname sip.example.test 2>&1 |
		grep -E '^(Peer signing digest|Peer signature type)|Verify return code' | tr -s ' \n' '  '
}
for h in 256 384 512; do
	out=$(osc "rsa_pss_rsae_sha$h" tls1_3)
	like "Peer signing digest: SHA$h Peer signature type: RSA-PSS .*Verify return code: 0 \(ok\)" "$out" \
		"openssl, TLS 1.3, rsa_pss_rsae_sha$h"
done
for h in 256 384 512; do
	out=$(osc "RSA+SHA$h" tls1_2)
	like "Peer signing digest: SHA$h Peer signature type: RSA .*Verify return code: 0 \(ok\)" "$out" \
		"openssl, TLS 1.2, PKCS#1 v1.5 with SHA-$h"
done
out=$(osc rsa_pss_rsae_sha256 tls1_2)
like "Peer signing digest: SHA256 Peer signature type: RSA-PSS .*Verify return code: 0 \(ok\)" "$out" \
	"openssl, TLS 1.2, rsa_pss_rsae_sha256"

# gnutls-cli PRIORITY: completes with the CA's verification
gcli() {
	timeout 20 gnutls-cli --x509cafile "$CERTS/ca.crt" -p "$p" 127.0.0.1 --verify-hostname sip.example.test \
		--priority "$1" </dev/null 2>&1
}
for h in 256 384 512; do
	out=$(gcli "NORMAL:-VERS-ALL:+VERS-TLS1.3:-SIGN-ALL:+SIGN-RSA-PSS-RSAE-SHA$h")
	like "Handshake was completed" "$out" "gnutls-cli, TLS 1.3, RSA-PSS-RSAE-SHA$h"
done
for h in 256 384 512; do
	out=$(gcli "NORMAL:-VERS-ALL:+VERS-TLS1.2:-SIGN-ALL:+SIGN-RSA-SHA$h")
	like "Handshake was completed" "$out" "gnutls-cli, TLS 1.2, RSA-SHA$h"
done
out=$(gcli "NORMAL:-VERS-ALL:+VERS-TLS1.2:-SIGN-ALL:+SIGN-RSA-PSS-RSAE-SHA384")
like "Handshake was completed" "$out" "gnutls-cli, TLS 1.2, RSA-PSS-RSAE-SHA384"
printf 'OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bKr\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: r\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' >"$T_TMP/req"
"$TLSCLIENT" -c "127.0.0.1:$p" --ca "$CERTS/ca.crt" --send "$T_TMP/req" --read-timeout 5000 >"$T_TMP/out" 2>/dev/null
like '^SIP/2.0 200' "$(head -1 "$T_TMP/out")" "a SIP request through the RSA listener gets its 200"

# a new RSA certificate and key on reload
umask 077
certtool --generate-privkey --no-text --key-type=rsa --bits=2048 --outfile "$T_TMP/new.key" >/dev/null 2>&1
printf 'cn = "sip.example.test"\ndns_name = "sip.example.test"\nip_address = "127.0.0.1"\nserial = 4242\nexpiration_days = 30\ntls_www_server\nsigning_key\n' \
	>"$T_TMP/new.tmpl"
certtool --generate-certificate --load-privkey "$T_TMP/new.key" --load-ca-certificate "$CERTS/ca.crt" \
	--load-ca-privkey "$CERTS/ca.key" --template "$T_TMP/new.tmpl" --outfile "$T_TMP/new.crt" >/dev/null 2>&1 ||
	bail_out "cannot make a certificate"
write_conf "$T_TMP/new.crt" "$T_TMP/new.key"
reload_sidecar 10
ok $? "reload with a new RSA certificate and key"
"$TLSCLIENT" -c "127.0.0.1:$p" --ca "$CERTS/ca.crt" --send "$T_TMP/req" --read-timeout 5000 --print-info \
	>"$T_TMP/out2" 2>&1
want_serial=$("$TLSCLIENT" --show-serial "$T_TMP/new.crt" | cut -d= -f2)
like "cert-serial=$want_serial" "$(cat "$T_TMP/out2")" "... the new certificate is served ($want_serial)"
out=$(osc rsa_pss_rsae_sha256 tls1_3)
like "Verify return code: 0 \(ok\)" "$out" "... and its key signs"
stop_sidecar
is 0 "$SIDECAR_STATUS" "clean stop"

# -t refuses a key that is not the certificate's, and a key file it cannot use
certtool --generate-privkey --no-text --key-type=rsa --bits=2048 --outfile "$T_TMP/other.key" >/dev/null 2>&1
write_conf "$CERTS/server-rsa.crt" "$T_TMP/other.key"
"$SIDECAR" -t -c "$T_TMP/r.conf" >"$T_TMP/t.out" 2>&1
is 1 $? "-t: an RSA key of another certificate: exit 1"
like "r\.conf:[0-9]+: key .*other\.key does not match certificate" "$(cat "$T_TMP/t.out")" "... says which, at file:line"
printf -- '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n' >"$T_TMP/bad.key"
write_conf "$CERTS/server-rsa.crt" "$T_TMP/bad.key"
"$SIDECAR" -t -c "$T_TMP/r.conf" >"$T_TMP/t.out" 2>&1
is 1 $? "-t: a key file that is not a key: exit 1"
like "r\.conf:[0-9]+: .*bad\.key" "$(cat "$T_TMP/t.out")" "... names the file at file:line"
done_testing
