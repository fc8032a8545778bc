#!/bin/bash
# 81-reload-listeners.sh: listeners across SIGHUP reloads (issue 6, item 1).
#  - a [listen] section added by reload accepts once "reload ok" is logged,
#    a removed one refuses connections (its established connection stays);
#  - an unchanged listener keeps its socket: a tight connect loop running
#    across the reload sees no refusal;
#  - a reload whose new listener cannot bind (the port is held by another
#    process) fails as a whole: "reload failed", nothing it would have added
#    or removed changes.
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2154,SC2119 # BACKEND_*_<NAME> come from start_backend; reload_sidecar takes no script args

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

require_sidecar
certs_dir >/dev/null || skip_all "no test certificates"

start_backend be -a || bail_out "backend"
BE=$BACKEND_PORT
start_backend occupy -x || bail_out "backend"
BUSY=$BACKEND_PORT # a port another process listens on
P_KEEP=$(free_port)
P_GONE=$(free_port)
P_NEW=$(free_port)
P_EXTRA=$(free_port)
CONF=$T_TMP/sidecar.conf

section() { # NAME PORT
	printf '\n[listen %s]\nbind = 127.0.0.1:%s\nbackend = 127.0.0.1:%s\ncert = %s\nkey = %s\n' \
		"$1" "$2" "$BE" "$CERTS/server.crt" "$CERTS/server.key"
}
# write_conf NAME:PORT...: [global] and one [listen] per argument
write_conf() {
	local s
	{
		printf '[global]\nallow-root = yes\nlog-level = info\nshutdown-timeout = 1s\n'
		for s in "$@"; do section "${s%%:*}" "${s#*:}"; done
	} >"$CONF.new"
	mv -f "$CONF.new" "$CONF"
}

# serve PORT: one TLS connection with one OPTIONS answered
serve() {
	"$TLSCLIENT" -c "127.0.0.1:$1" --ca "$CERTS/ca.crt" --sip 1 --connect-timeout 2000 >"$T_TMP/serve.out" 2>&1
}
# refused PORT: a TCP connect is refused
refused() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

write_conf "keep:$P_KEEP" "gone:$P_GONE"
start_sidecar "$CONF" "$P_KEEP" "$P_GONE" || bail_out "sidecar does not start"
LOG=$SIDECAR_LOG

serve "$P_KEEP"
ok $? "listener keep serves"
serve "$P_GONE"
ok $? "listener gone serves"
refused "$P_NEW"
ok $? "the port of the listener to be added refuses connections before the reload"

# a connection on "gone" established before its listener is removed
acc=$(log_count "$LOG" 'listen=gone .*accepted')
"$TLSCLIENT" -c "127.0.0.1:$P_GONE" --ca "$CERTS/ca.crt" --hold 1500 --sip 1 \
	>"$T_TMP/held.out" 2>"$T_TMP/held.err" &
HELD=$!
track_pid "$HELD"
wait_for_log_count "$LOG" 'listen=gone .*accepted' $((acc + 1)) 5
ok $? "a client holds a connection on gone"

# connect_loop: tight TCP connects to keep until some 300 connects after
# $T_TMP/reloaded appeared (bounded: 20000 connects, 15 s). Prints
# "total N before N refused N".
connect_loop() {
	local n=0 bad=0 before=-1 t_end=$((SECONDS + 15))
	while ((n < 20000 && SECONDS < t_end)); do
		if exec 3<>"/dev/tcp/127.0.0.1/$P_KEEP"; then
			exec 3<&-
		else
			bad=$((bad + 1))
		fi
		n=$((n + 1))
		if ((before < 0)); then
			[ -e "$T_TMP/reloaded" ] && before=$n
		elif ((n >= before + 300)); then
			break
		fi
	done 2>/dev/null
	echo "total $n before $before refused $bad"
}
connect_loop >"$T_TMP/loop.out" 2>&1 &
LOOP=$!
track_pid "$LOOP"
sleep 0.3

write_conf "keep:$P_KEEP" "new:$P_NEW"
reload_sidecar
is 0 "$?" "reload adding [listen new] and removing [listen gone]: reload ok"
touch "$T_TMP/reloaded"
line=$(grep 'reload ok' "$LOG" | tail -n 1)
like "removed \[listen gone\] 127\.0\.0\.1:$P_GONE" "$line" "... the log line names the removed listener"
like "added \[listen new\] 127\.0\.0\.1:$P_NEW" "$line" "... and the added one"
serve "$P_NEW"
ok $? "the added listener serves right after \"reload ok\""
refused "$P_GONE"
ok $? "the removed listener's port refuses connections"
serve "$P_GONE"
is 2 "$?" "... a TLS client gets \"connect failed\" (exit 2) there"

wait_pid_exit "$LOOP" 20
untrack_pid "$LOOP"
read -r _ total _ before _ nref <"$T_TMP/loop.out"
diag "connect loop: $(cat "$T_TMP/loop.out")"
[ "${before:-0}" -gt 0 ] && [ "${total:-0}" -ge $((before + 300)) ]
ok $? "the connect loop ran across the reload ($before connects before, $((total - before)) after)"
is 0 "$nref" "the unchanged listener refused no connection during the reload"
is 1 "$(log_count "$LOG" "listen=keep listening on")" "the unchanged listener was not reopened"
is 0 "$(log_count "$LOG" "listen=keep closed listener")" "... nor closed"
serve "$P_KEEP"
ok $? "the unchanged listener still serves TLS"

wait_pid_exit "$HELD" 10
wait "$HELD"
is 0 "$?" "a connection established on the removed listener continued"
like 'sent=1 ok=1' "$(cat "$T_TMP/held.out")" "... its request after the reload was answered"
untrack_pid "$HELD"

# --------------------------------------------- reload that cannot bind
# keep + busy (port held by recbackend) + extra; "new" dropped: none of it
# may happen.
write_conf "keep:$P_KEEP" "busy:$BUSY" "extra:$P_EXTRA"
busy_line=$(grep -n "^bind = 127.0.0.1:$BUSY\$" "$CONF" | cut -d: -f1)
reload_sidecar
is 1 "$?" "reload with a listener on a port in use: reload failed"
like "reload failed: ${CONF//./\\.}:$busy_line: .*127\.0\.0\.1:$BUSY.*(in use|listen)" \
	"$(grep 'reload failed' "$LOG" | tail -n 1)" "... the log names the bind line and the address"
serve "$P_KEEP"
ok $? "after the failed reload: keep still serves"
serve "$P_NEW"
ok $? "... new (which that file dropped) still serves"
port_listening "$P_EXTRA"
ok $((!$?)) "... extra (which could bind) was not left listening"
refused "$P_EXTRA"
ok $? "... and refuses connections"
t_alive "$BACKEND_PID_occupy"
ok $? "... the process holding the port is untouched"
is 0 "$(log_count "$LOG" 'listen=(extra|busy) listening')" "... no listening line for busy or extra"
is 0 "$(log_count "$LOG" 'listen=new closed listener')" "... no closed line for new"

# the same file once the port is free: whole reload goes through
kill "$BACKEND_PID_occupy"
wait_pid_exit "$BACKEND_PID_occupy" 5
reload_sidecar
is 0 "$?" "once the port is free the same file reloads ok"
serve "$BUSY"
ok $? "... busy serves"
serve "$P_EXTRA"
ok $? "... extra serves"
refused "$P_NEW"
ok $? "... new is closed"

stop_sidecar 5
is 0 "$SIDECAR_STATUS" "the daemon exits 0 on SIGTERM"
done_testing
