#!/bin/bash
# 21-config-check.sh: `sip-sidecar -t` (check the configuration and every
# file it names), -V, -h, usage errors, and a daemon started with a bad
# configuration. Problems are reported as "FILE:LINE: message", exit 1.
# SPDX-License-Identifier: MIT

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

require_sidecar
certs_dir >/dev/null || skip_all "no test certificates (t/mkcerts.sh)"
C=$CERTS

plan 62

p1=$(free_port)
p2=$(free_port)
p3=$(free_port)
p4=$(free_port)
pb=$(free_port)

# conf NAME LINES...: writes $T_TMP/NAME.conf: a [global] section and a
# [listen pub] section whose first 4 lines are fixed (lines 1-6 of the file),
# then LINES, one per line (line 7 onwards). Prints the path.
conf() {
	local f=$T_TMP/$1.conf
	shift
	{
		printf '[global]\nallow-root = yes\n[listen pub]\nbind = 127.0.0.1:%s\nbackend = 127.0.0.1:%s\n' "$p1" "$pb"
		printf '# line 6\n'
		local l
		for l in "$@"; do printf '%s\n' "$l"; done
	} >"$f"
	echo "$f"
}

# check_bad DESC FILE REGEX: -t exits 1 and prints a line matching REGEX.
check_bad() {
	ok_status 1 "-t: $1: exit 1" "$SIDECAR" -t -c "$2"
	like "$3" "$(cat "$T_OUT")" "... $1: reported as FILE:LINE: message"
}

# -------------------------------------------------------------- the good one
good=$(conf good "cert = $C/server.crt" "key = $C/server.key" \
	"cert = $C/server-rsa.crt" "key = $C/server-rsa.key")
ok_status 0 "-t: a good configuration: exit 0" "$SIDECAR" -t -c "$good"
unlike "$good:[0-9]+:" "$(cat "$T_OUT")" "... and no FILE:LINE: problem"

mtls=$(conf mtls "cert = $C/server.crt" "key = $C/server.key" "client-auth = require" \
	"ca = $C/ca.crt" "crl = $C/ca.crl")
ok_status 0 "-t: a good MTLS configuration with a CA and its CRL: exit 0" "$SIDECAR" -t -c "$mtls"

# ------------------------------------------------------------- one problem
f=$(conf nocert "cert = $T_TMP/no-such.crt" "key = $C/server.key")
check_bad "missing cert file" "$f" "^$f:7: .*no-such\.crt"

mkdir -p "$T_TMP/dir.crt"
f=$(conf dircert "cert = $T_TMP/dir.crt" "key = $C/server.key")
check_bad "cert file that is a directory" "$f" "$f:7: .*dir\.crt"

if [ "$(id -u)" != 0 ]; then
	cp "$C/server.crt" "$T_TMP/unreadable.crt"
	chmod 000 "$T_TMP/unreadable.crt"
	f=$(conf unread "cert = $T_TMP/unreadable.crt" "key = $C/server.key")
	check_bad "cert file without read permission" "$f" "$f:7: .*unreadable\.crt"
else
	skip 2 "running as root: mode 000 does not stop root reading a file"
fi

f=$(conf nokey "cert = $C/server.crt" "key = $T_TMP/no-such.key")
check_bad "missing key file" "$f" "^$f:8: .*no-such\.key"

f=$(conf mismatch "cert = $C/server-rsa.crt" "key = $C/server.key")
check_bad "key not matching its certificate (server.key with server-rsa.crt)" "$f" \
	"$f:[78]: .*server\.key.*(match|server-rsa)"
like "server-rsa\.crt" "$(cat "$T_OUT")" "... naming the certificate"

f=$(conf expired "cert = $C/server-expired.crt" "key = $C/server-expired.key")
check_bad "expired own certificate" "$f" "$f:7: .*server-expired\.crt.*expired"

: >"$T_TMP/empty.pem"
f=$(conf emptyca "cert = $C/server.crt" "key = $C/server.key" "client-auth = require" \
	"ca = $T_TMP/empty.pem")
check_bad "empty CA bundle" "$f" "$f:10: .*empty\.pem"

printf '# no certificate in here\nhello\n' >"$T_TMP/nocert.pem"
f=$(conf junkca "cert = $C/server.crt" "key = $C/server.key" "client-auth = require" \
	"ca = $T_TMP/nocert.pem")
check_bad "CA file without a certificate" "$f" "$f:10: .*nocert\.pem"

f=$(conf keyca "cert = $C/server.crt" "key = $C/server.key" "client-auth = require" \
	"ca = $C/ca.key")
check_bad "CA file holding a private key" "$f" "$f:10: .*ca\.key"

f=$(conf badcrl "cert = $C/server.crt" "key = $C/server.key" "client-auth = require" \
	"ca = $C/ca.crt" "crl = $C/ca2.crl")
check_bad "CRL not signed by the section's CA (ca2.crl under ca.crt)" "$f" "$f:11: .*ca2\.crl"

f=$(conf syntax "cert = $C/server.crt" "key = $C/server.key" "this line has no equals sign")
check_bad "syntax error" "$f" "^$f:9: "

f=$(conf unknown "cert = $C/server.crt" "key = $C/server.key" "colour = blue")
check_bad "unknown key" "$f" "^$f:9: .*colour"

f=$(conf badval "cert = $C/server.crt" "key = $C/server.key" "client-auth = sometimes")
check_bad "bad value" "$f" "^$f:9: .*(client-auth|sometimes)"

ok_status 1 "-t: a configuration file that does not exist: exit 1" \
	"$SIDECAR" -t -c "$T_TMP/no-such.conf"
like "no-such\.conf" "$(cat "$T_OUT")" "... naming the file"

# ---------------------------------------------------------- several problems
multi=$T_TMP/multi.conf
cat >"$multi" <<EOF
[global]
allow-root = yes
[listen a]
bind = 127.0.0.1:$p1
backend = 127.0.0.1:$pb
cert = $T_TMP/no-such.crt
key = $C/server.key
[listen b]
bind = 127.0.0.1:$p2
backend = 127.0.0.1:$pb
cert = $C/server-rsa.crt
key = $C/server.key
[listen c]
bind = 127.0.0.1:$p3
backend = 127.0.0.1:$pb
cert = $C/server-expired.crt
key = $C/server-expired.key
client-auth = require
ca = $C/ca.crt
crl = $C/ca2.crl
[listen d]
bind = 127.0.0.1:$p4
backend = 127.0.0.1:$pb
cert = $C/server.crt
key = $C/server.key
client-auth = require
ca = $T_TMP/empty.pem
EOF
ok_status 1 "-t: several file problems in one configuration: exit 1" "$SIDECAR" -t -c "$multi"
out=$(cat "$T_OUT")
like "$multi:6: .*no-such\.crt" "$out" "... the missing cert (line 6)"
like "$multi:1[12]: .*server\.key.*server-rsa\.crt|$multi:1[12]: .*server-rsa\.crt.*server\.key" "$out" \
	"... the key mismatch (line 11/12)"
like "$multi:16: .*expired" "$out" "... the expired certificate (line 16)"
like "$multi:20: .*ca2\.crl" "$out" "... the CRL of another CA (line 20)"
like "$multi:27: .*empty\.pem" "$out" "... the empty CA bundle (line 27)"
is 5 "$(grep -Ec "^$multi:[0-9]+: " "$T_OUT")" "... exactly five FILE:LINE: lines"

multi2=$T_TMP/multi2.conf
cat >"$multi2" <<EOF
[global]
allow-root = yes
log-level = chatty
[listen a]
bind = 127.0.0.1:$p1
backend = 127.0.0.1:$pb
cert = $C/server.crt
key = $C/server.key
no equals sign here
colour = blue
EOF
ok_status 1 "-t: several syntax problems in one configuration: exit 1" "$SIDECAR" -t -c "$multi2"
out=$(cat "$T_OUT")
like "$multi2:3: " "$out" "... the bad log-level (line 3)"
like "$multi2:9: " "$out" "... the line without '=' (line 9)"
like "$multi2:10: .*colour" "$out" "... the unknown key (line 10)"

# ---------------------------------------------------- key file permissions
cp "$C/server.key" "$T_TMP/open.key"
chmod 0644 "$T_TMP/open.key"
f=$(conf openkey "cert = $C/server.crt" "key = $T_TMP/open.key")
ok_status 0 "-t: a private key with mode 0644 is usable (exit 0)" "$SIDECAR" -t -c "$f"
like "warn[a-z]*:? .*open\.key|open\.key.*(readable|mode|0?644)" "$(cat "$T_OUT")" \
	"... but warned about, naming the key"
cp "$C/server.key" "$T_TMP/closed.key"
chmod 0600 "$T_TMP/closed.key"
f=$(conf closedkey "cert = $C/server.crt" "key = $T_TMP/closed.key")
ok_status 0 "-t: the same key with mode 0600" "$SIDECAR" -t -c "$f"
unlike "closed\.key" "$(cat "$T_OUT")" "... gives no warning"

# -------------------------------------------------------------- -V -h usage
ok_status 0 "-V: exit 0" "$SIDECAR" -V
out=$(cat "$T_OUT")
version=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$T_BUILD/../autoconf.h" 2>/dev/null)
if [ -n "$version" ]; then
	like "sip-sidecar ${version//./\\.}" "$out" "... prints the package version ($version)"
else
	like "sip-sidecar [0-9]+\.[0-9]+" "$out" "... prints the version"
fi
like "GnuTLS [0-9]+\.[0-9]+\.[0-9]+" "$out" "... and the GnuTLS version"
like "libev [0-9]+\.[0-9]+" "$out" "... and the libev version"

ok_status 0 "-h: exit 0" "$SIDECAR" -h
like "usage: .*-c FILE" "$(cat "$T_OUT")" "... prints the usage"
ok_status 2 "an unknown option: exit 2" "$SIDECAR" -Z
like "usage" "$(cat "$T_OUT")" "... with the usage"
ok_status 2 "-c without its argument: exit 2" "$SIDECAR" -c

# ------------------------------------------------ starting with a bad config
f=$(conf startbad "cert = $C/server-rsa.crt" "key = $C/server.key")
"$SIDECAR" -c "$f" >"$T_TMP/startbad.out" 2>"$T_TMP/startbad.err" </dev/null &
pid=$!
track_pid "$pid"
wait_pid_exit "$pid" 10
ok $? "the daemon with a bad configuration exits at once"
wait "$pid" 2>/dev/null
is 1 "$?" "... with status 1"
untrack_pid "$pid"
like "$f:8: .*(match|server-rsa)" "$(cat "$T_TMP/startbad.err")" "... FILE:LINE: message on stderr"
port_listening "$p1"
ok $((!$?)) "... and never listened"

f=$(conf startgood "cert = $C/server.crt" "key = $C/server.key")
start_sidecar "$f" "$p1"
ok $? "the daemon starts with the good configuration on the same port"
stop_sidecar 10
is 0 "$SIDECAR_STATUS" "... and stops with status 0"

done_testing
