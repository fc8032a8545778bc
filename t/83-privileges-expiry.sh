#!/bin/bash
# 83-privileges-expiry.sh: privileges and certificate lifetime (issue 6,
# items 3-4). Needs root (skipped otherwise).
#  - user = nobody: the daemon binds, drops to nobody/nogroup (checked in
#    /proc/PID/status), serves, and reloads as nobody; without `user` and
#    without `allow-root = yes` it refuses to run as root (exit 1);
#  - a private key readable by others: a warning at start and on reload;
#  - lifetime: a server certificate, a CA and a CRL (nextUpdate) that expire
#    within 30 days give warnings naming FILE:LINE and the file, at start, on
#    reload and from -t (which still exits 0); an expired CA in a `ca` bundle
#    is logged as an error but does not stop the daemon (the other CAs keep
#    working and a client of the expired CA is refused); an expired own
#    certificate makes the configuration unusable; a CRL past its nextUpdate loads
#    with an error (it still revokes what it lists).
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2154,SC2119 # BACKEND_*_<NAME> come from start_backend; reload_sidecar takes no script args

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

require_sidecar
[ "$(id -u)" = 0 ] || skip_all "not running as root"
require_cmd certtool timeout
getent passwd nobody >/dev/null || skip_all "no user nobody"
certs_dir >/dev/null || skip_all "no test certificates"

NOBODY_UID=$(id -u nobody)
if getent group nogroup >/dev/null; then
	GROUP=nogroup
else
	GROUP=$(getent group "$(id -g nobody)" | cut -d: -f1)
fi
GROUP_GID=$(getent group "$GROUP" | cut -d: -f3)
if [ -z "$GROUP" ] || [ -z "$GROUP_GID" ]; then skip_all "no group for nobody"; fi

start_backend be -a || bail_out "backend"
P=$(free_port)
CONF=$T_TMP/sidecar.conf

# conf GLOBAL-LINES LISTEN-LINES: writes $CONF
conf() {
	printf '[global]\nlog-level = info\nshutdown-timeout = 1s\n%s\n\n[listen pub]\nbind = 127.0.0.1:%s\nbackend = 127.0.0.1:%s\n%s\n' \
		"$1" "$P" "$BACKEND_PORT" "$2" >"$CONF.new"
	mv -f "$CONF.new" "$CONF"
}
line_of() { grep -n -- "$1" "$CONF" | head -n 1 | cut -d: -f1; }
serve() { "$TLSCLIENT" -c "127.0.0.1:$P" --ca "$CERTS/ca.crt" --sip 1 "$@" >"$T_TMP/serve.out" 2>&1; }
status_field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr -s ' \t' ' ' | sed 's/ $//'; }

# ----------------------------------------------------- privilege drop
# the service user must reach its files: T_TMP is 0700
chmod 711 "$T_TMP"
D=$T_TMP/etc
mkdir -m 755 "$D"
cp "$CERTS/server.crt" "$CERTS/server.key" "$D/"
chown nobody:"$GROUP" "$D/server.crt" "$D/server.key"
chmod 644 "$D/server.crt"
chmod 600 "$D/server.key"
conf "user = nobody
group = $GROUP" "cert = $D/server.crt
key = $D/server.key"
start_sidecar "$CONF" "$P"
ok $? "user = nobody, group = $GROUP: the daemon starts as root"
pid=$SIDECAR_PID
wait_for_log "$SIDECAR_LOG" 'running as user nobody' 5
ok $? "... logs the drop to nobody"
uids=$(status_field "$pid" Uid)
gids=$(status_field "$pid" Gid)
groups=$(status_field "$pid" Groups)
is "$NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID" "$uids" "/proc/PID/status Uid: real, effective, saved, fs are nobody's"
is "$GROUP_GID $GROUP_GID $GROUP_GID $GROUP_GID" "$gids" "/proc/PID/status Gid: all $GROUP"
is "$GROUP_GID" "$groups" "/proc/PID/status Groups: only $GROUP (root's groups dropped)"
serve
ok $? "it serves TLS after the drop"
reload_sidecar
is 0 "$?" "it reloads as nobody (files readable by the service user)"
serve
ok $? "... and serves after the reload"
is 0 "$(log_count "$SIDECAR_LOG" 'private key .* readable')" "no key-mode warning for a 0600 key"
stop_sidecar 5
is 0 "$SIDECAR_STATUS" "... and exits 0 on SIGTERM"

# refuse to run as root
LOG2=$T_TMP/root.log
conf "" "cert = $CERTS/server.crt
key = $CERTS/server.key"
timeout 10 "$SIDECAR" -c "$CONF" >"$LOG2" 2>&1 </dev/null
is 1 "$?" "no user and no allow-root: the daemon refuses to start as root (exit 1)"
like 'refusing to run as root' "$(cat "$LOG2")" "... and says why (root)"
port_listening "$P"
ok $((!$?)) "... leaving no listener behind"
conf "user = no-such-user-sidecar-test" "cert = $CERTS/server.crt
key = $CERTS/server.key"
timeout 10 "$SIDECAR" -c "$CONF" >"$LOG2" 2>&1 </dev/null
is 1 "$?" "an unknown user: exit 1"
like "unknown user 'no-such-user-sidecar-test'" "$(cat "$LOG2")" "... naming it"

# ------------------------------------------------------------- key mode
cp "$CERTS/server.key" "$T_TMP/open.key"
chmod 644 "$T_TMP/open.key"
conf "allow-root = yes" "cert = $CERTS/server.crt
key = $T_TMP/open.key"
KL=$(line_of "^key = ")
ok_cmd "-t with a 0644 key: usable (exit 0)" "$SIDECAR" -t -c "$CONF"
like "warning: .*:$KL: private key .*open\.key is readable by group or others \(mode 644\)" "$(cat "$T_OUT")" \
	"-t warns about the 0644 key"
start_sidecar "$CONF" "$P" || bail_out "sidecar does not start"
LOG=$SIDECAR_LOG
KEY_RE="warning: .*:$KL: private key .*open\.key is readable by group or others"
is 1 "$(log_count "$LOG" "$KEY_RE")" "a 0644 private key: one warning at start, naming FILE:LINE and the key"
reload_sidecar
is 0 "$?" "reload ok"
is 2 "$(log_count "$LOG" "$KEY_RE")" "... and the warning again on reload"
chmod 600 "$T_TMP/open.key"
reload_sidecar
is 0 "$?" "after chmod 600: reload ok"
is 2 "$(log_count "$LOG" "$KEY_RE")" "... without the warning"
stop_sidecar 5

# ------------------------------------------------------------- lifetime
export TZ=UTC # certtool reads template dates as local time
now=$(date +%s)
day=86400
d() { date -u -d "@$1" '+%Y-%m-%d %H:%M:%S'; }
SOON=$(date -u -d "@$((now + 10 * day))" +%Y-%m-%d)
K=$T_TMP/pki
mkdir -p "$K"
gen() { # certtool ARGS...: quiet unless it fails
	certtool "$@" >>"$K/certtool.log" 2>&1 || bail_out "certtool $* failed: $(tail -n 5 "$K/certtool.log")"
}
key() { gen --generate-privkey --no-text --key-type=ecdsa --curve=secp256r1 --outfile "$K/$1.key"; }
for n in soon soon-ca old-ca old-client; do key $n; done
cat >"$K/soon.tmpl" <<EOF
cn = "sip.example.test"
serial = 1001
activation_date = "$(d $((now - day)))"
expiration_date = "$(d $((now + 10 * day)))"
dns_name = "sip.example.test"
ip_address = "127.0.0.1"
signing_key
tls_www_server
EOF
gen --generate-certificate --no-text --load-privkey "$K/soon.key" --load-ca-certificate "$CERTS/ca.crt" \
	--load-ca-privkey "$CERTS/ca.key" --template "$K/soon.tmpl" --outfile "$K/soon.crt"
cat >"$K/soon-ca.tmpl" <<EOF
cn = "short-lived test CA"
serial = 1002
activation_date = "$(d $((now - day)))"
expiration_date = "$(d $((now + 10 * day)))"
ca
cert_signing_key
crl_signing_key
EOF
gen --generate-self-signed --no-text --load-privkey "$K/soon-ca.key" --template "$K/soon-ca.tmpl" \
	--outfile "$K/soon-ca.crt"
cat >"$K/old-ca.tmpl" <<EOF
cn = "expired test CA"
serial = 1003
activation_date = "2019-01-01 00:00:00"
expiration_date = "2020-01-01 00:00:00"
ca
cert_signing_key
crl_signing_key
EOF
gen --generate-self-signed --no-text --load-privkey "$K/old-ca.key" --template "$K/old-ca.tmpl" \
	--outfile "$K/old-ca.crt"
cat >"$K/old-client.tmpl" <<EOF
cn = "peer.example.test"
serial = 1004
activation_date = "$(d $((now - day)))"
expiration_date = "$(d $((now + 365 * day)))"
dns_name = "peer.example.test"
signing_key
tls_www_client
EOF
gen --generate-certificate --no-text --load-privkey "$K/old-client.key" --load-ca-certificate "$K/old-ca.crt" \
	--load-ca-privkey "$K/old-ca.key" --template "$K/old-client.tmpl" --outfile "$K/old-client.crt"
printf 'crl_this_update_date = "%s"\ncrl_next_update_date = "%s"\ncrl_number = 5\n' \
	"$(d $((now - 3600)))" "$(d $((now + 10 * day)))" >"$K/soon-crl.tmpl"
gen --generate-crl --no-text --load-ca-privkey "$CERTS/ca.key" --load-ca-certificate "$CERTS/ca.crt" \
	--template "$K/soon-crl.tmpl" --outfile "$K/soon.crl"
printf 'crl_this_update_date = "2020-01-01 00:00:00"\ncrl_next_update_date = "2020-06-01 00:00:00"\ncrl_number = 6\n' \
	>"$K/old-crl.tmpl"
gen --generate-crl --no-text --load-ca-privkey "$CERTS/ca.key" --load-ca-certificate "$CERTS/ca.crt" \
	--template "$K/old-crl.tmpl" --outfile "$K/old.crl"
chmod 600 "$K"/*.key

conf "allow-root = yes" "cert = $K/soon.crt
key = $K/soon.key
client-auth = require
ca = $CERTS/ca.crt
ca = $K/soon-ca.crt
ca = $K/old-ca.crt
crl = $K/soon.crl"
L_CERT=$(line_of "^cert = ")
L_SOONCA=$(line_of "^ca = .*soon-ca")
L_OLDCA=$(line_of "^ca = .*old-ca")
L_CRL=$(line_of "^crl = ")
CF=${CONF//./\\.}
W_CERT="$CF:$L_CERT: certificate .*soon\.crt \(.*\) expires on $SOON, within 30 days"
W_CA="$CF:$L_SOONCA: CA .*soon-ca\.crt \(.*short-lived test CA.*\) expires on $SOON, within 30 days"
W_CRL="$CF:$L_CRL: CRL .*soon\.crl \(.*\) reaches its nextUpdate on $SOON, within 30 days"
E_CA="$CF:$L_OLDCA: CA .*old-ca\.crt \(.*expired test CA.*\) expired on 2020-01-01"

ok_cmd "-t with certificates near expiry and an expired CA: usable (exit 0)" "$SIDECAR" -t -c "$CONF"
T_CHECK=$(cat "$T_OUT")
like "warning: $W_CERT" "$T_CHECK" "-t warns: server certificate expires within 30 days"
like "warning: $W_CA" "$T_CHECK" "-t warns: CA expires within 30 days"
like "warning: $W_CRL" "$T_CHECK" "-t warns: CRL nextUpdate within 30 days"
like "$E_CA" "$T_CHECK" "-t reports the expired CA"
is 3 "$(grep -c 'within 30 days' "$T_OUT")" "-t: nothing else is reported as expiring (ca.crt has 10 years)"

start_sidecar "$CONF" "$P"
ok $? "the daemon starts with them"
LOG=$SIDECAR_LOG
is 1 "$(log_count "$LOG" "warning: $W_CERT")" "start: warning for the server certificate (FILE:LINE, file, date)"
is 1 "$(log_count "$LOG" "warning: $W_CA")" "start: warning for the CA"
is 1 "$(log_count "$LOG" "warning: $W_CRL")" "start: warning for the CRL"
is 1 "$(log_count "$LOG" "error: $E_CA")" "start: an error line for the expired CA"
is 3 "$(log_count "$LOG" 'within 30 days')" "start: no other expiry warning"

MTLS=(--cert "$CERTS/client.crt" --key "$CERTS/client.key")
serve "${MTLS[@]}" --print-info
ok $? "a client of a valid CA is served"
want=$("$TLSCLIENT" --show-serial "$K/soon.crt")
like "$want([^0-9a-f]|$)" "$(cat "$T_TMP/serve.out")" "... with the short-lived server certificate ($want)"

# a client whose CA has expired: refused, backend untouched, service goes on
nconn=$(grep -c '^accept' "$BACKEND_DIR/events.log")
serve --cert "$K/old-client.crt" --key "$K/old-client.key"
isnt 0 "$?" "a client certificate issued by the expired CA is not served"
wait_for_log "$LOG" 'listen=pub .* refused: expired' 5
ok $? "... refused: expired"
sleep 0.2
is "$nconn" "$(grep -c '^accept' "$BACKEND_DIR/events.log")" "... the backend got no connection"
serve "${MTLS[@]}"
ok $? "... and a good client is served afterwards"

reload_sidecar
is 0 "$?" "reload ok"
is 6 "$(log_count "$LOG" 'within 30 days')" "reload: the three warnings again"
is 2 "$(log_count "$LOG" "error: $E_CA")" "reload: the error for the expired CA again"
stop_sidecar 5
is 0 "$SIDECAR_STATUS" "exit 0 on SIGTERM"

# expired own certificate / CRL past nextUpdate: unusable
conf "allow-root = yes" "cert = $CERTS/server-expired.crt
key = $CERTS/server-expired.key"
ok_status 1 "-t: an expired own certificate makes the configuration unusable" "$SIDECAR" -t -c "$CONF"
like "$CF:[0-9]+: certificate .*server-expired\.crt expired on 2020-12-31" "$(cat "$T_OUT")" "... naming it"
conf "allow-root = yes" "cert = $CERTS/server.crt
key = $CERTS/server.key
client-auth = require
ca = $CERTS/ca.crt
crl = $K/old.crl"
# A stale CRL still revokes what it lists: the configuration loads (so a
# certificate rotation is never blocked by it) and -t says it is stale.
ok_status 0 "-t: a CRL past its nextUpdate still loads" "$SIDECAR" -t -c "$CONF"
like "error: $CF:[0-9]+: CRL .*old\.crl \(.*\) is past its nextUpdate" "$(cat "$T_OUT")" "... with an error naming it"
conf "allow-root = yes" "cert = $CERTS/server.crt
key = $CERTS/server.key
client-auth = require
ca = $CERTS/ca.crt
crl = $CERTS/ca2.crl"
ok_status 1 "-t: a CRL signed by another CA makes the configuration unusable" "$SIDECAR" -t -c "$CONF"
like "$CF:[0-9]+: CRL .*ca2\.crl is not signed by a CA of this section" "$(cat "$T_OUT")" "... naming it"

done_testing
