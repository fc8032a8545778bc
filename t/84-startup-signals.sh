#!/bin/bash
# 84-startup-signals.sh: SIGTERM and SIGHUP that arrive while the daemon is
# still starting (listening already, or about to) are held until its signal
# watchers are up, then handled: a stop exits 0 ("stopped"), a reload
# reloads; neither kills the daemon by the signal's default action (exit
# status 143 / 129). A test that sends SIGTERM as soon as a port answers
# (start_sidecar, then stop_sidecar) met that window on a loaded machine.
# Each round sends the signal the moment the daemon's main thread shows
# SIGHUP, SIGINT and SIGTERM blocked (/proc/PID/status SigBlk), i.e.
# during start-up; a daemon that never blocks them fails the round.
# SPDX-License-Identifier: MIT

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

require_sidecar
certs_dir >/dev/null || skip_all "no test certificates"

start_backend be || bail_out "backend"
P=$(free_port)
CONF=$T_TMP/sidecar.conf
cat >"$CONF" <<EOF
[global]
allow-root = yes
shutdown-timeout = 2s

[listen pub]
bind = 127.0.0.1:$P
backend = 127.0.0.1:$BACKEND_PORT
cert = $CERTS/server.crt
key = $CERTS/server.key
EOF

# SIGHUP (bit 1), SIGINT (bit 2) and SIGTERM (bit 15) of a SigBlk mask
WANT=$(((1 << 0) | (1 << 1) | (1 << 14)))

# start_blocked LOG: starts the daemon and returns once its main thread
# blocks the three signals (status 0), or 1 if that is not seen within
# 10 s (or the daemon is gone). Sets PID.
start_blocked() {
	local i k v mask t_end=$((SECONDS + 10))
	"$SIDECAR" -c "$CONF" >"$1" 2>&1 </dev/null &
	PID=$!
	track_pid "$PID"
	for ((i = 0; ; i++)); do
		mask=
		# fork-free: the start-up window is short
		while read -r k v; do
			[ "$k" = "SigBlk:" ] && mask=$v
		done <"/proc/$PID/status" 2>/dev/null
		[ -n "$mask" ] && [ $((0x$mask & WANT)) = "$WANT" ] && return 0
		t_alive "$PID" || return 1
		[ "$SECONDS" -ge "$t_end" ] && return 1
		[ "$i" -gt 2000 ] && sleep 0.01
	done
}

plan 13
for round in 1 2 3 4 5; do
	log=$T_TMP/term-$round.log
	start_blocked "$log"
	ok $? "round $round: the starting daemon holds SIGTERM (blocked until its watcher is up)"
	kill -TERM "$PID" 2>/dev/null
	wait_pid_exit "$PID" 15
	wait "$PID" 2>/dev/null
	st=$?
	untrack_pid "$PID"
	is 0 "$st" "... a SIGTERM then stops it with exit status 0"
done

log=$T_TMP/hup.log
start_blocked "$log"
ok $? "SIGHUP during start-up: held as well"
kill -HUP "$PID" 2>/dev/null
wait_for_log "$log" 'reload (ok|failed)' 15
ok $? "... handled as a reload once the daemon runs (not its death)"
kill -TERM "$PID" 2>/dev/null
wait_pid_exit "$PID" 15
wait "$PID" 2>/dev/null
is 0 "$?" "... and the daemon still stops cleanly"
untrack_pid "$PID"

done_testing
