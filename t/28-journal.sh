#!/bin/bash
# When stderr is the journal, every event goes to the journal with the log
# words as fields (SIP_SIDECAR_SECTION, _PEER, _IDENTITY, _REASON), so that
# `journalctl SIP_SIDECAR_REASON=expired` finds refusals. Checked against a
# stand-in journal socket in a mount namespace of its own (the real path,
# /run/systemd/journal/socket, on a private tmpfs): needs root, unshare
# and socat.
. "${T_SRC:-$(dirname "$0")}/lib.sh"
require_sidecar
require_cmd socat
require_cmd unshare
certs_dir
[ "$(id -u)" = 0 ] || skip_all "needs root for a mount namespace"
unshare -m true 2>/dev/null || skip_all "mount namespaces are not available here"
ldd "$SIDECAR" 2>/dev/null | grep -q libsystemd ||
	skip_all "built without libsystemd: journal lines are '<N>'-prefixed stderr lines (t/82)"
plan 9

start_backend be -a
mtls=$(free_port)
cat >"$T_TMP/j.conf" <<EOF
[global]
allow-root = yes
status-socket = off
workers = 1
[listen mtls]
bind = 127.0.0.1:$mtls
backend = 127.0.0.1:$BACKEND_PORT
cert = $CERTS/server.crt
key = $CERTS/server.key
client-auth = require
ca = $CERTS/ca.crt
EOF
printf 'OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bKj\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: j\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' >"$T_TMP/req"

# In the namespace: the stand-in journal, the daemon with JOURNAL_STREAM
# naming its stderr, one refused and one admitted client, a clean stop.
cat >"$T_TMP/ns.sh" <<'EOF'
set -u
mount -t tmpfs tmpfs /run || exit 10
mkdir -p /run/systemd/journal
socat -u UNIX-RECV:/run/systemd/journal/socket "OPEN:$T_TMP/journal.out,creat,append" &
sp=$!
for i in $(seq 200); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
: >"$T_TMP/stderr.log"
JOURNAL_STREAM=$(stat -c '%d:%i' "$T_TMP/stderr.log") "$SIDECAR" -c "$T_TMP/j.conf" 2>>"$T_TMP/stderr.log" &
dp=$!
for i in $(seq 400); do grep -q 'ready' "$T_TMP/journal.out" 2>/dev/null && break; sleep 0.05; done
"$TLSCLIENT" -c "127.0.0.1:$MTLS" --ca "$CERTS/ca.crt" --cert "$CERTS/client-expired.crt" \
	--key "$CERTS/client-expired.key" --send "$T_TMP/req" --read-timeout 3000 >/dev/null 2>&1
"$TLSCLIENT" -c "127.0.0.1:$MTLS" --ca "$CERTS/ca.crt" --cert "$CERTS/client.crt" --key "$CERTS/client.key" \
	--send "$T_TMP/req" --read-timeout 5000 >"$T_TMP/ok.out" 2>&1
for i in $(seq 400); do grep -q 'closed: ' "$T_TMP/journal.out" 2>/dev/null && break; sleep 0.05; done
kill -TERM "$dp"
wait "$dp"
echo "$?" >"$T_TMP/daemon.rc"
kill "$sp" 2>/dev/null
wait "$sp" 2>/dev/null
exit 0
EOF
T_TMP=$T_TMP SIDECAR=$SIDECAR TLSCLIENT=$TLSCLIENT CERTS=$CERTS MTLS=$mtls \
	timeout 120 unshare -m bash "$T_TMP/ns.sh"
is 0 $? "the namespace run completed"
j=$(tr '\n' '|' <"$T_TMP/journal.out" 2>/dev/null)
like '^SIP/2.0 200' "$(head -1 "$T_TMP/ok.out")" "the admitted client gets its 200"
like 'MESSAGE=listen=mtls peer=127\.0\.0\.1:[0-9]+ refused: expired \(' "$j" \
	"the refusal's message, words unchanged"
like 'refused: expired [^|]*\|PRIORITY=4\|SYSLOG_IDENTIFIER=sip-sidecar\|SIP_SIDECAR_SECTION=mtls\|SIP_SIDECAR_PEER=127\.0\.0\.1:[0-9]+\|SIP_SIDECAR_REASON=expired\|' \
	"$j" "... with section, peer and reason fields (journalctl SIP_SIDECAR_REASON=expired)"
like 'accepted TLS[^|]*identity=peer\.example\.test\|PRIORITY=6\|[^M]*SIP_SIDECAR_IDENTITY=peer\.example\.test\|' \
	"$j" "an admitted peer's identity as a field"
unlike 'CODE_FILE=' "$j" "no CODE_FILE noise"
is "" "$(cat "$T_TMP/stderr.log")" "nothing doubled on stderr"
is 0 "$(cat "$T_TMP/daemon.rc" 2>/dev/null)" "clean stop"

# without the journal, stderr lines as always
start_sidecar "$T_TMP/j.conf" "$mtls" || bail_out "sidecar did not start"
"$TLSCLIENT" -c "127.0.0.1:$mtls" --ca "$CERTS/ca.crt" --cert "$CERTS/client-expired.crt" \
	--key "$CERTS/client-expired.key" --send "$T_TMP/req" --read-timeout 3000 >/dev/null 2>&1
wait_for_log "$SIDECAR_LOG" 'refused: expired' 10
ok $? "not the journal: the stderr line with timestamp and level"
stop_sidecar
done_testing
