#!/bin/sh
# mkcerts.sh DIR: make a throw-away test PKI with certtool (gnutls-bin).
#
# Used by t/unit-verify and by the integration tests. Idempotent: does nothing
# when DIR/.done exists; concurrent runs on the same DIR serialise on
# DIR/.lock (flock) and the files appear only when complete. Exit status: 0 ok,
# 77 when certtool is missing (automake's SKIP), 1 on any other failure.
# Keys are ECDSA P-256 (fast) except server-rsa.key (RSA-2048). All files PEM.
# Dates: "normal" certificates are valid from yesterday for 3650 days; CAs
# from 2019-01-01 for 3650 days from now. Serial numbers are unique across
# the whole set (listed below, decimal; verify.c reports them in hex).
#
# Files (NAME.crt + NAME.key for each certificate):
#   ca                 root CA "sip-sidecar test CA"                   serial 1
#   ca2                partner root CA "partner test CA"               serial 2
#   rogue-ca           untrusted root CA "rogue test CA"               serial 3
#  servers (signed by ca; EKU tls_www_server; SANs dNSName sip.example.test,
#  IP 127.0.0.1, IP ::1; CN sip.example.test) unless said:
#   server             ECDSA                                           serial 16
#   server-rsa         RSA-2048 key, otherwise like server             serial 17
#   server2            like server, own key (rotation test)            serial 18
#   server-wrongname   dNSName wrong.example.test only (CN the same)   serial 19
#   server-expired     valid 2020-01-01 .. 2020-12-31                  serial 20
#   server-clientonly  EKU tls_www_client only                         serial 21
#   server-revoked     listed in ca.crl                                serial 22
#  clients (signed by ca; EKU tls_www_client) unless said:
#   client             URI sip:peer.example.test, dNSName peer.example.test,
#                      CN peer.example.test                            serial 32
#   client-dns         dNSName other.example.test only                 serial 33
#   client-cn          no SAN; CN cn.example.test                      serial 34
#   client-uri-user    URI sip:alice@user.example.test only;
#                      CN user.example.test (must NOT be used)         serial 35
#   client-wild        dNSName *.example.test                          serial 36
#   client-upper       dNSName PEER.Example.TEST                       serial 37
#   client-expired     like client, valid 2020-01-01 .. 2020-12-31     serial 38
#   client-notyet      like client, valid from now+365d for 365 days   serial 39
#   client-revoked     like client, listed in ca.crl                   serial 40
#   client-serveronly  like client, EKU tls_www_server only            serial 41
#   client-selfsigned  like client, self-signed (not a CA)             serial 42
#   client-rogue       like client, signed by rogue-ca                 serial 43
#   partner            by ca2: dNSName sip.partner.example.test and
#                      URI sip:sip.partner.example.test                serial 48
#   partner-evil       by ca2: dNSName peer.example.test               serial 49
# Other files:
#   ca.crl             by ca, revokes client-revoked and server-revoked;
#                      nextUpdate in 365 days
#   ca2.crl            by ca2, empty; nextUpdate in 365 days
#   bundle.crt         ca.crt followed by ca2.crt
#   .done              marker: the set is complete
#
# SPDX-License-Identifier: MIT
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
dir=$1
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
[ -f "$dir/.done" ] && exit 0
if ! command -v certtool >/dev/null 2>&1; then
	echo "mkcerts.sh: certtool not found (install gnutls-bin)" >&2
	exit 77
fi
mkdir -p "$dir"
if command -v flock >/dev/null 2>&1; then
	exec 9>"$dir/.lock"
	flock 9
	[ -f "$dir/.done" ] && exit 0
fi

work=$(mktemp -d "$dir/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# certtool reads template dates as local time: pin UTC.
TZ=UTC
export TZ
now=$(date +%s)
day=86400
d() { date -u -d "@$1" '+%Y-%m-%d %H:%M:%S'; }
ca_from="2019-01-01 00:00:00"
ca_until=$(d $((now + 3650 * day)))
from=$(d $((now - day)))
until=$ca_until
old_from="2020-01-01 00:00:00"
old_until="2020-12-31 00:00:00"
future_from=$(d $((now + 365 * day)))
future_until=$(d $((now + 730 * day)))

# run CMD...: certtool's chatter goes to a log, shown only on failure.
run() {
	if ! "$@" >>certtool.log 2>&1; then
		echo "mkcerts.sh: failed: $*" >&2
		cat certtool.log >&2
		exit 1
	fi
}

# key NAME [rsa]
key() {
	if [ "${2:-}" = rsa ]; then
		run certtool --generate-privkey --no-text --key-type=rsa --bits=2048 --outfile "$1.key"
	else
		run certtool --generate-privkey --no-text --key-type=ecdsa --curve=secp256r1 --outfile "$1.key"
	fi
}

# cert NAME ISSUER|self: the template is read from stdin.
cert() {
	cat >"$1.tmpl"
	if [ "$2" = self ]; then
		run certtool --generate-self-signed --no-text --load-privkey "$1.key" \
			--template "$1.tmpl" --outfile "$1.crt"
	else
		run certtool --generate-certificate --no-text --load-privkey "$1.key" \
			--load-ca-certificate "$2.crt" --load-ca-privkey "$2.key" \
			--template "$1.tmpl" --outfile "$1.crt"
	fi
}

# ca NAME SERIAL CN
ca() {
	key "$1"
	cert "$1" self <<EOF
cn = "$3"
organization = "sip-sidecar tests"
serial = $2
activation_date = "$ca_from"
expiration_date = "$ca_until"
ca
cert_signing_key
crl_signing_key
EOF
}

# leaf NAME ISSUER SERIAL CN [FROM UNTIL]: the SAN/EKU lines are read from stdin.
leaf() {
	cert "$1" "$2" <<EOF
cn = "$4"
organization = "sip-sidecar tests"
serial = $3
activation_date = "${5:-$from}"
expiration_date = "${6:-$until}"
signing_key
$(cat)
EOF
}

server_names='dns_name = "sip.example.test"
ip_address = "127.0.0.1"
ip_address = "::1"'
client_names='uri = "sip:peer.example.test"
dns_name = "peer.example.test"'

ca ca 1 "sip-sidecar test CA"
ca ca2 2 "partner test CA"
ca rogue-ca 3 "rogue test CA"

for n in server server2 server-wrongname server-expired server-clientonly server-revoked; do key $n; done
key server-rsa rsa
printf '%s\ntls_www_server\n' "$server_names" | leaf server ca 16 sip.example.test
printf '%s\ntls_www_server\nencryption_key\n' "$server_names" | leaf server-rsa ca 17 sip.example.test
printf '%s\ntls_www_server\n' "$server_names" | leaf server2 ca 18 sip.example.test
printf 'dns_name = "wrong.example.test"\ntls_www_server\n' | leaf server-wrongname ca 19 sip.example.test
printf '%s\ntls_www_server\n' "$server_names" |
	leaf server-expired ca 20 sip.example.test "$old_from" "$old_until"
printf '%s\ntls_www_client\n' "$server_names" | leaf server-clientonly ca 21 sip.example.test
printf '%s\ntls_www_server\n' "$server_names" | leaf server-revoked ca 22 sip.example.test

for n in client client-dns client-cn client-uri-user client-wild client-upper client-expired \
	client-notyet client-revoked client-serveronly client-selfsigned client-rogue partner partner-evil; do
	key $n
done
printf '%s\ntls_www_client\n' "$client_names" | leaf client ca 32 peer.example.test
printf 'dns_name = "other.example.test"\ntls_www_client\n' | leaf client-dns ca 33 other.example.test
printf 'tls_www_client\n' | leaf client-cn ca 34 cn.example.test
printf 'uri = "sip:alice@user.example.test"\ntls_www_client\n' | leaf client-uri-user ca 35 user.example.test
printf 'dns_name = "*.example.test"\ntls_www_client\n' | leaf client-wild ca 36 wild.example.test
printf 'dns_name = "PEER.Example.TEST"\ntls_www_client\n' | leaf client-upper ca 37 upper.example.test
printf '%s\ntls_www_client\n' "$client_names" |
	leaf client-expired ca 38 peer.example.test "$old_from" "$old_until"
printf '%s\ntls_www_client\n' "$client_names" |
	leaf client-notyet ca 39 peer.example.test "$future_from" "$future_until"
printf '%s\ntls_www_client\n' "$client_names" | leaf client-revoked ca 40 peer.example.test
printf '%s\ntls_www_server\n' "$client_names" | leaf client-serveronly ca 41 peer.example.test
printf '%s\ntls_www_client\n' "$client_names" | leaf client-selfsigned self 42 peer.example.test
printf '%s\ntls_www_client\n' "$client_names" | leaf client-rogue rogue-ca 43 peer.example.test
printf 'dns_name = "sip.partner.example.test"\nuri = "sip:sip.partner.example.test"\ntls_www_client\ntls_www_server\n' |
	leaf partner ca2 48 sip.partner.example.test
printf 'dns_name = "peer.example.test"\ntls_www_client\n' | leaf partner-evil ca2 49 peer.example.test

cat client-revoked.crt server-revoked.crt >revoked.pem
printf 'crl_next_update = 365\ncrl_number = 1\n' >crl.tmpl
run certtool --generate-crl --no-text --load-ca-privkey ca.key --load-ca-certificate ca.crt \
	--load-certificate revoked.pem --template crl.tmpl --outfile ca.crl
run certtool --generate-crl --no-text --load-ca-privkey ca2.key --load-ca-certificate ca2.crt \
	--template crl.tmpl --outfile ca2.crl
cat ca.crt ca2.crt >bundle.crt

chmod 600 ./*.key
mv ./*.crt ./*.key ./*.crl "$dir"/
touch "$dir/.done"
