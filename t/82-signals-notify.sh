#!/bin/bash
# 82-signals-notify.sh: SIGTERM/SIGINT graceful stop and the sd_notify
# protocol (issue 6, items 1-2; INTERFACE.md "Signals").
#  - run 1, under a fake systemd notification socket (t/notifysock) with
#    WATCHDOG_USEC=200000 and WATCHDOG_PID = the daemon's own PID:
#    READY=1 once listening, WATCHDOG=1 repeatedly, RELOADING=1 +
#    MONOTONIC_USEC= then READY=1 + STATUS="reload ok" around a reload,
#    STATUS="reload failed" after a failed one, STOPPING=1 on SIGTERM; the
#    stop itself: listeners closed at once, a busy connection drains, an idle
#    one is closed at shutdown-timeout (1s), exit 0;
#  - WATCHDOG_PID naming another process: no WATCHDOG=1;
#  - SIGTERM / SIGINT with no connection: prompt exit 0 (shutdown-timeout 5s);
#    SIGINT with an idle connection: waits for it up to shutdown-timeout.
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2154,SC2119 # BACKEND_*_<NAME> come from start_backend; reload_sidecar takes no script args

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

require_sidecar
certs_dir >/dev/null || skip_all "no test certificates"
NOTIFYSOCK=$T_BUILD/notifysock
[ -x "$NOTIFYSOCK" ] || bail_out "not built: $NOTIFYSOCK"

start_backend be -a || bail_out "backend"
P=$(free_port)
CONF=$T_TMP/sidecar.conf
write_conf() { # SHUTDOWN-TIMEOUT [EXTRA-LINE]
	cat >"$CONF.new" <<EOF
[global]
allow-root = yes
log-level = info
shutdown-timeout = $1

[listen pub]
bind = 127.0.0.1:$P
backend = 127.0.0.1:$BACKEND_PORT
cert = $CERTS/server.crt
key = $CERTS/server.key
EOF
	[ $# -gt 1 ] && printf '%s\n' "$2" >>"$CONF.new"
	mv -f "$CONF.new" "$CONF"
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
refused() { ! (exec 3<>"/dev/tcp/127.0.0.1/$P") 2>/dev/null; }

# start_notify NAME: a notification socket $T_TMP/NAME.sock writing
# $T_TMP/NAME.txt; sets NPID
start_notify() {
	rm -f "$T_TMP/$1.sock"
	: >"$T_TMP/$1.txt"
	"$NOTIFYSOCK" "$T_TMP/$1.sock" "$T_TMP/$1.txt" 30 >"$T_TMP/$1.log" 2>&1 &
	NPID=$!
	track_pid "$NPID"
	wait_for_file "$T_TMP/$1.sock" 5 || bail_out "notifysock did not start: $(cat "$T_TMP/$1.log")"
}
# events FILE: the notifications without the watchdog pings
# the notifications that mark events (periodic STATUS= alone and
# WATCHDOG=1 are not events)
events() { grep -v -e '^WATCHDOG=1$' -e '^STATUS=[^|]*$' "$1"; }

# a wrapper that execs the daemon with WATCHDOG_PID = its own PID (or, with
# WD_OTHER set, the PID of this test script)
cat >"$T_TMP/wdwrap" <<EOF
#!/bin/sh
WATCHDOG_PID=\${WD_OTHER:-\$\$}
export WATCHDOG_PID
exec "\$@"
EOF
chmod +x "$T_TMP/wdwrap"
WRAP_SAVE=${SIDECAR_WRAPPER:-}

# prompt MS: the stop took under 2 s although shutdown-timeout is 5 s (a
# build with sanitizers spends seconds in its exit-time leak check on a
# loaded machine: skipped there)
prompt() {
	if [ -n "${T_SANITIZER:-}" ]; then
		skip 1 "stop time ($1 ms) not meaningful in a build with sanitizers"
		return
	fi
	[ "$1" -lt 2000 ]
	ok $? "... promptly although shutdown-timeout = 5s ($1 ms)"
}

# ------------------------------------------------------------------ run 1
write_conf 1s
start_notify n1
N1=$T_TMP/n1.txt
export NOTIFY_SOCKET=$T_TMP/n1.sock WATCHDOG_USEC=200000
SIDECAR_WRAPPER="$T_TMP/wdwrap $WRAP_SAVE"
start_sidecar "$CONF" "$P" || bail_out "sidecar does not start"
unset NOTIFY_SOCKET WATCHDOG_USEC
SIDECAR_WRAPPER=$WRAP_SAVE
LOG=$SIDECAR_LOG

wait_for_log "$N1" '^READY=1' 5
ok $? "READY=1 arrives"
port_listening "$P"
ok $? "... and the listener is bound by then"
like '^READY=1 \| STATUS=' "$(events "$N1" | head -n 1)" "READY=1 (with a STATUS=) is the first notification"
ok_cmd "the daemon serves" "$TLSCLIENT" -c "127.0.0.1:$P" --ca "$CERTS/ca.crt" --sip 1

# STATUS= follows the open connections (checked every 5 s, sent on change)
"$TLSCLIENT" -c "127.0.0.1:$P" --ca "$CERTS/ca.crt" --read-timeout 30000 --max-time 40000 \
	>"$T_TMP/held.log" 2>&1 &
HELD=$!
track_pid "$HELD"
wait_for_log "$N1" '^STATUS=1 connection, 0 verified peers; running, generation 1; configuration loaded [0-9]+[smhd] ago$' 20
ok $? "STATUS= tells systemd: 1 connection, 0 verified peers, the configuration and its age"
kill "$HELD" 2>/dev/null
wait_pid_exit "$HELD" 10
untrack_pid "$HELD"

w0=$(log_count "$N1" '^WATCHDOG=1$')
sleep 1
w1=$(log_count "$N1" '^WATCHDOG=1$')
[ $((w1 - w0)) -ge 4 ] && [ $((w1 - w0)) -le 50 ]
ok $? "WATCHDOG=1 arrives repeatedly with WATCHDOG_USEC=200000 ($((w1 - w0)) in 1 s)"

reload_sidecar
is 0 "$?" "SIGHUP: reload ok"
wait_for_log_count "$N1" '^READY=1' 2 5
mapfile -t ev < <(events "$N1")
like '^RELOADING=1 \| MONOTONIC_USEC=[0-9]+$' "${ev[1]-}" "reload: RELOADING=1 with MONOTONIC_USEC= first"
like '^READY=1 \| STATUS=.*reload ok' "${ev[2]-}" "... then READY=1 with STATUS=...reload ok"
mono1=${ev[1]-}; mono1=${mono1##*=}

write_conf 1s "no-such-key = 1"
reload_sidecar
is 1 "$?" "SIGHUP with a broken file: reload failed"
wait_for_log_count "$N1" '^READY=1' 3 5
mapfile -t ev < <(events "$N1")
like '^RELOADING=1 \| MONOTONIC_USEC=[0-9]+$' "${ev[3]-}" "failed reload: RELOADING=1 first"
like '^READY=1 \| STATUS=.*reload failed' "${ev[4]-}" "... then READY=1 with STATUS=...reload failed"
mono2=${ev[3]-}; mono2=${mono2##*=}
now_us=$(($(date +%s%N) / 1000))
[ "${mono2:-0}" -gt "${mono1:-0}" ] 2>/dev/null && [ "$mono2" -lt $((now_us / 2)) ]
ok $? "MONOTONIC_USEC grows between reloads and is a monotonic, not a wall-clock, time ($mono1, $mono2)"
write_conf 1s

# SIGTERM while one connection is busy and one idle
ok_cmd "still serving after the failed reload" "$TLSCLIENT" -c "127.0.0.1:$P" --ca "$CERTS/ca.crt" --sip 1
acc=$(log_count "$LOG" 'accepted')
"$TLSCLIENT" -c "127.0.0.1:$P" --ca "$CERTS/ca.crt" --hold 10000 --read-timeout 10000 --expect-close \
	>"$T_TMP/idle.out" 2>"$T_TMP/idle.err" &
IDLE=$!
track_pid "$IDLE"
"$TLSCLIENT" -c "127.0.0.1:$P" --ca "$CERTS/ca.crt" --hold 400 --sip 3 \
	>"$T_TMP/busy.out" 2>"$T_TMP/busy.err" &
BUSY=$!
track_pid "$BUSY"
wait_for_log_count "$LOG" 'accepted' $((acc + 2)) 5
ok $? "two connections open (one idle, one about to send)"
pid=$SIDECAR_PID
t0=$(now_ms)
kill -TERM "$pid"
wait_for_log "$LOG" 'stopping' 2
for ((i = 0; i < 10; i++)); do refused && break; sleep 0.02; done
refused && t_alive "$pid"
ok $? "SIGTERM: the listener refuses new connections at once while the daemon drains"
wait_pid_exit "$BUSY" 5
wait "$BUSY"
is 0 "$?" "the busy connection is still served during the drain"
like 'sent=3 ok=3' "$(cat "$T_TMP/busy.out")" "... all 3 requests answered"
untrack_pid "$BUSY"
stop_sidecar 5
t1=$(now_ms)
is 0 "$SIDECAR_STATUS" "the daemon exits 0"
el=$((t1 - t0))
[ "$el" -ge 800 ] && [ "$el" -lt 3000 ]
ok $? "... after waiting about shutdown-timeout = 1s for the idle connection (${el} ms)"
like 'shutdown-timeout reached: closing 1 connection' "$(cat "$LOG")" "the log says the idle connection was closed at the timeout"
wait_pid_exit "$IDLE" 5
wait "$IDLE"
is 0 "$?" "the idle client saw the connection closed"
untrack_pid "$IDLE"
like '^STOPPING=1' "$(events "$N1" | tail -n 1)" "STOPPING=1 is the last notification"
kill "$NPID"

# ------------------------------------------------------------------ run 2
write_conf 5s
start_notify n2
export NOTIFY_SOCKET=$T_TMP/n2.sock WATCHDOG_USEC=200000
SIDECAR_WRAPPER="$T_TMP/wdwrap $WRAP_SAVE"
export WD_OTHER=$$
start_sidecar "$CONF" "$P" || bail_out "sidecar does not start"
unset NOTIFY_SOCKET WATCHDOG_USEC WD_OTHER
SIDECAR_WRAPPER=$WRAP_SAVE
wait_for_log "$T_TMP/n2.txt" '^READY=1' 5
ok $? "run 2: READY=1"
sleep 0.5
is 0 "$(log_count "$T_TMP/n2.txt" '^WATCHDOG=1')" "WATCHDOG_PID naming another process: no WATCHDOG=1"
ok_cmd "run 2 serves" "$TLSCLIENT" -c "127.0.0.1:$P" --ca "$CERTS/ca.crt" --sip 1
t0=$(now_ms)
stop_sidecar 10
t1=$(now_ms)
is 0 "$SIDECAR_STATUS" "SIGTERM with no connection: exit 0"
prompt $((t1 - t0))
like '^STOPPING=1' "$(events "$T_TMP/n2.txt" | tail -n 1)" "... STOPPING=1"
kill "$NPID"

# ------------------------------------------------------------------ run 3
write_conf 1s
start_sidecar "$CONF" "$P" || bail_out "sidecar does not start"
acc=$(log_count "$LOG" 'accepted')
"$TLSCLIENT" -c "127.0.0.1:$P" --ca "$CERTS/ca.crt" --hold 10000 --read-timeout 10000 --expect-close \
	>"$T_TMP/idle3.out" 2>"$T_TMP/idle3.err" &
IDLE=$!
track_pid "$IDLE"
wait_for_log_count "$LOG" 'accepted' $((acc + 1)) 5
pid=$SIDECAR_PID
t0=$(now_ms)
kill -INT "$pid"
for ((i = 0; i < 25; i++)); do refused && break; sleep 0.02; done
refused && t_alive "$pid"
ok $? "SIGINT with an idle connection: stops accepting, keeps running"
wait_pid_exit "$pid" 5
t1=$(now_ms)
stop_sidecar 1 >/dev/null 2>&1 # collects the exit status
is 0 "$SIDECAR_STATUS" "SIGINT: exit 0"
el=$((t1 - t0))
[ "$el" -ge 800 ] && [ "$el" -lt 3000 ]
ok $? "... after about shutdown-timeout = 1s (${el} ms)"
wait_pid_exit "$IDLE" 5
untrack_pid "$IDLE"

# ------------------------------------------------------------------ run 4
write_conf 5s
start_sidecar "$CONF" "$P" || bail_out "sidecar does not start"
pid=$SIDECAR_PID
t0=$(now_ms)
kill -INT "$pid"
wait_pid_exit "$pid" 10
t1=$(now_ms)
stop_sidecar 1 >/dev/null 2>&1
is 0 "$SIDECAR_STATUS" "SIGINT with no connection: exit 0"
prompt $((t1 - t0))

done_testing
