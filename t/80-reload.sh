#!/bin/bash
# 80-reload.sh: SIGHUP reload (issue 6, item 1).
#  - certificate rotation under continuous load: a loop of new connections
#    (one OPTIONS each) and a persistent connection opened before the reload
#    (gnutls-cli fed through a FIFO, so requests go out before, during and
#    after the reload on the same TLS session); zero failed requests, new
#    handshakes present the new certificate, "reload ok" names its serial;
#  - reloads that must fail as a whole (garbage key, missing certificate,
#    key not matching the certificate, syntax error): "reload failed:
#    FILE:LINE: ...", the old configuration keeps serving;
#  - session tickets: a TLS-only listener's ticket survives a reload; on an
#    MTLS listener a ticket obtained before a reload that removed the client's
#    CA does not resume into the backend (CVE-2025-23419 class);
#  - established MTLS connections are re-verified on reload: the peer no
#    longer trusted is closed ("refused on reload"), the trusted one stays.
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2154,SC2119 # BACKEND_*_<NAME> come from start_backend; reload_sidecar takes no script args

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

require_sidecar
require_cmd certtool gnutls-cli
certs_dir >/dev/null || skip_all "no test certificates"

W=$T_TMP/w
mkdir -p "$W"
cp "$CERTS/server.crt" "$W/live.crt"
cp "$CERTS/server.key" "$W/live.key"
chmod 600 "$W/live.key"
cp "$CERTS/bundle.crt" "$W/trust.crt" # ca + ca2

# serial of a certificate as certtool prints it (hex), lower case
serial_of() {
	certtool -i --infile "$1" | sed -n 's/^[[:space:]]*Serial Number (hex): *//p' | head -n 1 |
		tr 'A-F' 'a-f' | sed 's/^\(00\)*//'
}
S1=$(serial_of "$CERTS/server.crt")
S2=$(serial_of "$CERTS/server2.crt")
if [ -z "$S1" ] || [ -z "$S2" ] || [ "$S1" = "$S2" ]; then
	bail_out "cannot read serials with certtool ($S1/$S2)"
fi

start_backend tbe -a || bail_out "backend"
start_backend mbe -a || bail_out "backend"
PT=$(free_port)
PM=$(free_port)
CONF=$T_TMP/sidecar.conf

# write_conf [EXTRA-LINE]: the configuration (atomically replaced)
write_conf() {
	cat >"$CONF.new" <<EOF
[global]
allow-root = yes
log-level = info
shutdown-timeout = 1s

[listen tls]
bind = 127.0.0.1:$PT
backend = 127.0.0.1:$BACKEND_PORT_tbe
cert = $W/live.crt
key = $W/live.key

[listen mtls]
bind = 127.0.0.1:$PM
backend = 127.0.0.1:$BACKEND_PORT_mbe
cert = $CERTS/server.crt
key = $CERTS/server.key
client-auth = require
ca = $W/trust.crt
EOF
	[ $# -gt 0 ] && printf '%s\n' "$1" >>"$CONF.new"
	mv -f "$CONF.new" "$CONF"
}
write_conf
CERT_LINE=$(grep -n "^cert = $W/live.crt" "$CONF" | cut -d: -f1)
KEY_LINE=$(grep -n "^key = $W/live.key" "$CONF" | cut -d: -f1)

start_sidecar "$CONF" "$PT" "$PM" || bail_out "sidecar does not start"
LOG=$SIDECAR_LOG

# tls_serial: one new TLS connection, one OPTIONS; prints the serial the
# server presented; status 0 if the request got its 200.
tls_serial() {
	local err=$T_TMP/serial.err
	"$TLSCLIENT" -c "127.0.0.1:$PT" --ca "$CERTS/ca.crt" --sip 1 --print-info >"$T_TMP/serial.out" 2>"$err"
	local rc=$?
	sed -n 's/.*cert-serial=\([0-9a-f]*\).*/\1/p' "$err" | head -n 1
	return $rc
}

got=$(tls_serial)
ok $? "a TLS client is served before any reload"
is "$S1" "$got" "it sees the first certificate (serial $S1)"

# ---------------------------------------------------------- tickets, first half
ok_cmd "TLS listener: a session ticket is obtained" \
	"$TLSCLIENT" -c "127.0.0.1:$PT" --ca "$CERTS/ca.crt" --sip 1 --sessfile "$T_TMP/tls.sess"
[ -s "$T_TMP/tls.sess" ]
ok $? "... and saved"
MTLS_CLIENT=(--ca "$CERTS/ca.crt" --cert "$CERTS/client.crt" --key "$CERTS/client.key")
ok_cmd "MTLS listener: the client obtains a session ticket" \
	"$TLSCLIENT" -c "127.0.0.1:$PM" "${MTLS_CLIENT[@]}" --sip 1 --sessfile "$T_TMP/mtls.sess"
ok_cmd "MTLS listener: the ticket resumes before any reload" \
	"$TLSCLIENT" -c "127.0.0.1:$PM" "${MTLS_CLIENT[@]}" --sip 1 --sessfile "$T_TMP/mtls.sess" --print-info
like 'resumed=yes' "$(cat "$T_OUT")" "... (client: resumed=yes)"

# ------------------------------------------------- persistent connection
mkfifo "$T_TMP/p.fifo" || bail_out "mkfifo"
gnutls-cli --insecure -p "$PT" 127.0.0.1 <"$T_TMP/p.fifo" >"$T_TMP/persist.out" 2>"$T_TMP/persist.err" &
GCLI=$!
track_pid "$GCLI"
exec 7<>"$T_TMP/p.fifo" # read-write: never blocks, even if gnutls-cli failed to start
wait_for_log "$T_TMP/persist.out" 'Handshake was completed' 10 || diag "gnutls-cli: $(cat "$T_TMP/persist.err")"

# persist N: one OPTIONS (CSeq N) on the persistent connection; true when
# its 200 OK arrives.
persist() {
	# in a subshell: a write to a dead gnutls-cli (SIGPIPE) ends only that
	(printf 'OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-p%s\r\nMax-Forwards: 70\r\nFrom: <sip:t@test.invalid>;tag=p\r\nTo: <sip:ping@127.0.0.1>\r\nCall-ID: persist-%s@test.invalid\r\nCSeq: %s OPTIONS\r\nContent-Length: 0\r\n\r\n' \
		"$1" "$1" "$1" >&7) 2>/dev/null || return 1
	wait_for_log "$T_TMP/persist.out" "^CSeq: $1 OPTIONS" 5
}
persist 1
ok $? "persistent connection: request 1 answered (before the reload)"

# -------------------------------------------- rotation under continuous load
# load_loop: new connections, one OPTIONS each, until $T_TMP/stop exists
# (at most 120 s or 2000 connections: a busy machine, or a build with
# sanitizers, may manage only one connection a second); one line per
# connection: "N STATUS SERIAL".
load_loop() {
	local i rc serial t_end=$((SECONDS + 120))
	for ((i = 1; i <= 2000 && SECONDS < t_end; i++)); do
		[ -e "$T_TMP/stop" ] && break
		"$TLSCLIENT" -c "127.0.0.1:$PT" --ca "$CERTS/ca.crt" --sip 1 --print-info \
			--read-timeout 3000 >/dev/null 2>"$T_TMP/load.err"
		rc=$?
		serial=$(sed -n 's/.*cert-serial=\([0-9a-f]*\).*/\1/p' "$T_TMP/load.err" | head -n 1)
		[ "$rc" = 0 ] || cp "$T_TMP/load.err" "$T_TMP/load-fail-$i.err"
		echo "$i $rc ${serial:-none}" >>"$T_TMP/load.txt"
	done
}
: >"$T_TMP/load.txt"
load_loop >"$T_TMP/load.log" 2>&1 &
LOADPID=$!
track_pid "$LOADPID"

wait_for_log_count "$T_TMP/load.txt" . 20 60
# a second connection opened before the reload, idle across it, then 5
# requests after it
"$TLSCLIENT" -c "127.0.0.1:$PT" --ca "$CERTS/ca.crt" --hold 1500 --sip 5 --print-info \
	>"$T_TMP/held.out" 2>"$T_TMP/held.err" &
HELD=$!
track_pid "$HELD"
wait_for_log "$T_TMP/held.err" 'cert-serial=' 5
persist 2
ok $? "persistent connection: request 2 answered (under load, before the reload)"
cp "$CERTS/server2.crt" "$W/live.crt"
cp "$CERTS/server2.key" "$W/live.key"
before=$(wc -l <"$T_TMP/load.txt")
reload_sidecar
is 0 "$?" "SIGHUP with a new certificate under load: reload ok"
like "reload ok: .*live\.crt serial $S2 expires [0-9-]+" "$(grep 'reload ok' "$LOG" | tail -n 1)" \
	"the reload log line names the new certificate's serial ($S2) and expiry"
persist 3
ok $? "persistent connection: request 3 answered (after the reload)"
wait_for_log_count "$T_TMP/load.txt" . $((before + 20)) 60
touch "$T_TMP/stop"
wait_pid_exit "$LOADPID" 10
untrack_pid "$LOADPID"
persist 4
ok $? "persistent connection: request 4 answered (after the load)"

total=$(wc -l <"$T_TMP/load.txt")
failed=$(awk '$2 != 0' "$T_TMP/load.txt" | wc -l)
[ "$total" -ge $((before + 20)) ]
ok $? "the load loop made connections before and after the reload ($before + $((total - before)))"
is 0 "$failed" "no request of the load loop failed"
[ "$failed" = 0 ] || diag "$(cat "$T_TMP"/load-fail-*.err 2>/dev/null | head -n 20)"
n_old=$(awk -v s="$S1" '$3 == s' "$T_TMP/load.txt" | wc -l)
n_new=$(awk -v s="$S2" '$3 == s' "$T_TMP/load.txt" | wc -l)
[ "$n_old" -gt 0 ] && [ "$n_new" -gt 0 ] && [ $((n_old + n_new)) = "$total" ]
ok $? "load handshakes saw serial $S1 ($n_old) then $S2 ($n_new), nothing else"
back=$(awk -v s1="$S1" -v s2="$S2" '$3 == s2 { seen = 1 } $3 == s1 && seen { n++ } END { print n + 0 }' "$T_TMP/load.txt")
is 0 "$back" "no handshake presented the old certificate after the first new one"
is "$S2" "$(tail -n 1 "$T_TMP/load.txt" | cut -d' ' -f3)" "the last load handshake presented serial $S2"

wait_pid_exit "$HELD" 10
wait "$HELD"
is 0 "$?" "the idle connection opened before the reload sent 5 requests after it"
like 'sent=5 ok=5' "$(cat "$T_TMP/held.out")" "... all 5 answered"
like "cert-serial=$S1" "$(cat "$T_TMP/held.err")" "... on its original session (serial $S1)"
untrack_pid "$HELD"

got=$(tls_serial)
ok $? "a new client after the reload is served"
is "$S2" "$got" "a new handshake presents the new certificate (serial $S2)"

# ------------------------------------------------- ticket across the reload
resumed_before=$(log_count "$LOG" 'listen=tls .*accepted .* resumed')
ok_cmd "TLS listener: the ticket from before the reload still works" \
	"$TLSCLIENT" -c "127.0.0.1:$PT" --ca "$CERTS/ca.crt" --sip 1 --sessfile "$T_TMP/tls.sess" --print-info
like 'resumed=yes' "$(cat "$T_OUT")" "... and the session resumed (client side)"
wait_for_log_count "$LOG" 'listen=tls .*accepted .* resumed' $((resumed_before + 1)) 5
ok $? "... \"resumed\" in the log"
ok_cmd "MTLS listener: the ticket resumes after a reload that kept the client's CA" \
	"$TLSCLIENT" -c "127.0.0.1:$PM" "${MTLS_CLIENT[@]}" --sip 1 --sessfile "$T_TMP/mtls.sess" --print-info
like 'resumed=yes' "$(cat "$T_OUT")" "... resumed=yes"

# ------------------------------------------------------- failing reloads
# failed_reload DESC REGEX: SIGHUP must fail, the last "reload failed" line
# must match REGEX, and the old configuration must keep serving.
n_persist=4
failed_reload() {
	local desc=$1 re=$2 got line
	reload_sidecar
	is 1 "$?" "$desc: reload fails"
	line=$(grep 'reload failed' "$LOG" | tail -n 1)
	like "$re" "$line" "$desc: the log names the problem"
	got=$(tls_serial)
	ok $? "$desc: new clients are still served"
	is "$S2" "$got" "$desc: with the running certificate (serial $S2)"
	n_persist=$((n_persist + 1))
	persist "$n_persist"
	ok $? "$desc: the connection opened before every reload still works"
}
CONF_RE=${CONF//./\\.}

printf 'this is not a private key\n' >"$W/live.key"
failed_reload "garbage key" "reload failed: $CONF_RE:$KEY_LINE: .*live\.key"
cp "$CERTS/server2.key" "$W/live.key"

mv "$W/live.crt" "$W/live.crt.away"
failed_reload "missing certificate file" "reload failed: $CONF_RE:$CERT_LINE: .*live\.crt.*(No such file|not found|ERROR)"
mv "$W/live.crt.away" "$W/live.crt"

cp "$CERTS/server.key" "$W/live.key"
failed_reload "key not matching the certificate" "reload failed: $CONF_RE:$KEY_LINE: .*live\.key.*match"
cp "$CERTS/server2.key" "$W/live.key"

write_conf "this-line-has-no-equals-sign"
bad_line=$(wc -l <"$CONF")
failed_reload "syntax error in the configuration" "reload failed: $CONF_RE:$bad_line: "
write_conf

is 0 "$(log_count "$LOG" 'reload ok: generation [3-9]')" "no failed reload was counted as a new generation"
reload_sidecar
is 0 "$?" "with the files repaired, the next reload succeeds"
like 'reload ok: generation 3' "$(grep 'reload ok' "$LOG" | tail -n 1)" "... as generation 3"

# --------------------------------------- MTLS: trust removed by a reload
# two MTLS connections established before the reload, idle across it: the
# client (CA "ca") and the partner (CA "ca2"); the reload leaves only ca2.
ls "$T_TMP/mbe" >"$T_TMP/mbe.before" 2>/dev/null
acc=$(log_count "$LOG" 'listen=mtls .*accepted')
"$TLSCLIENT" -c "127.0.0.1:$PM" "${MTLS_CLIENT[@]}" --hold 2500 --sip 1 --read-timeout 1000 \
	>"$T_TMP/hold-client.out" 2>"$T_TMP/hold-client.err" &
HC=$!
track_pid "$HC"
"$TLSCLIENT" -c "127.0.0.1:$PM" --ca "$CERTS/ca.crt" --cert "$CERTS/partner.crt" --key "$CERTS/partner.key" \
	--hold 2500 --sip 1 --read-timeout 1000 >"$T_TMP/hold-partner.out" 2>"$T_TMP/hold-partner.err" &
HP=$!
track_pid "$HP"
wait_for_log_count "$LOG" 'listen=mtls .*accepted' $((acc + 2)) 5
ok $? "two MTLS peers connected (peer.example.test by ca, sip.partner.example.test by ca2)"
cp "$CERTS/ca2.crt" "$W/trust.crt"
reload_sidecar
is 0 "$?" "reload with ca = ca2 only: reload ok"
wait_for_log "$LOG" 'listen=mtls .*refused on reload: unknown ca' 5
like 'refused on reload: unknown ca .*peer\.example\.test' "$(grep 'refused on reload' "$LOG" | tail -n 1)" \
	"the peer no longer trusted is disconnected: \"refused on reload: unknown ca\""
is 1 "$(log_count "$LOG" 'refused on reload')" "... and only that one"
wait_pid_exit "$HC" 5
wait "$HC"
isnt 0 "$?" "... its client sees the connection end"
untrack_pid "$HC"
wait_pid_exit "$HP" 5
wait "$HP"
is 0 "$?" "the still-trusted partner's connection continues after the reload"
like 'sent=1 ok=1' "$(cat "$T_TMP/hold-partner.out")" "... its request after the reload is answered"
untrack_pid "$HP"
ls "$T_TMP/mbe" >"$T_TMP/mbe.after" 2>/dev/null
new_with_data=0
for f in $(comm -13 "$T_TMP/mbe.before" "$T_TMP/mbe.after" | grep '^conn-'); do
	grep -q OPTIONS "$T_TMP/mbe/$f" && new_with_data=$((new_with_data + 1))
done
is 1 "$new_with_data" "the backend got the partner's request and nothing from the disconnected peer"

# the ticket from before: must not resume into the backend
acc_mbe=$(grep -c '^accept' "$T_TMP/mbe/events.log")
refused=$(log_count "$LOG" 'listen=mtls .* refused: unknown ca')
"$TLSCLIENT" -c "127.0.0.1:$PM" "${MTLS_CLIENT[@]}" --sip 1 --sessfile "$T_TMP/mtls.sess" --print-info \
	--read-timeout 1000 >"$T_TMP/resume.out" 2>"$T_TMP/resume.err"
rc=$?
isnt 0 "$rc" "MTLS: the ticket from before the trust change gets no service (exit $rc)"
diag "client: $(grep -o 'resumed=[a-z]*' "$T_TMP/resume.err")"
wait_for_log_count "$LOG" 'listen=mtls .* refused: unknown ca' $((refused + 1)) 5
ok $? "... refused with \"unknown ca\" in the log"
sleep 0.2
is "$acc_mbe" "$(grep -c '^accept' "$T_TMP/mbe/events.log")" "... and the backend got no connection"
ok_cmd "MTLS: the partner is still served afterwards" \
	"$TLSCLIENT" -c "127.0.0.1:$PM" --ca "$CERTS/ca.crt" --cert "$CERTS/partner.crt" \
	--key "$CERTS/partner.key" --sip 1
like 'sent=1 ok=1' "$(cat "$T_OUT")" "... and answered"

# ------------------------------------------------------------ end
exec 7>&-
stop_sidecar 5
is 0 "$SIDECAR_STATUS" "the daemon exits 0 on SIGTERM"
done_testing
