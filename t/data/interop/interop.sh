# interop.sh: helpers for the interop tests with real SIP software
# (t/70-interop-sipp-kamailio.sh, t/71-interop-outbound-kamailio.sh).
# Source it after lib.sh:
#
#     . "$T_SRC/data/interop/interop.sh"
#
# kamailio_mpath                 print Kamailio's module directory (the one with
#                                sl.so; Debian: /usr/lib/<triplet>/kamailio/modules)
# start_kamailio NAME SOCKET [KAMAILIO-OPTS...]
#                                run Kamailio in the foreground (-DD -E) with
#                                $T_SRC/data/interop/kamailio.cfg listening on
#                                SOCKET (tcp:127.0.0.1:PORT or tls:...); runtime
#                                dir $T_TMP/NAME.run, log $T_TMP/NAME.log; waits
#                                until PORT listens. Sets KAM_PID (tracked).
# start_stunnel CONF PORT...     run stunnel (foreground = yes in CONF), log
#                                $T_TMP/stunnel.log; waits for every PORT.
#                                Sets STUNNEL_PID (tracked).
# run_sipp NAME TARGET [SIPP-OPTS...]
#                                run sipp against TARGET with its statistics
#                                screen, CSV and error trace in $T_TMP/NAME-*,
#                                stdout in $T_TMP/NAME.log, bounded by
#                                SIPP_WAIT seconds (default 30; then SIGTERM).
#                                Sets SIPP_STATUS (exit status), SIPP_SUCCESS,
#                                SIPP_FAILED (cumulative "Successful call" and
#                                "Failed call" of the final screen, "" if none),
#                                SIPP_SCREEN (the screen file).
# sipp_counter SCREEN NAME       the cumulative value of counter NAME
# sipp_summary NAME              one line: exit status and the call counters
#
# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2034 # variables here are for the sourcing script

INTEROP_DATA=$T_SRC/data/interop
KAM_PID=
KAM_MPATH=
STUNNEL_PID=
SIPP_STATUS=
SIPP_SUCCESS=
SIPP_FAILED=
SIPP_SCREEN=

kamailio_mpath() {
	local d f
	if command -v dpkg >/dev/null 2>&1; then
		f=$(dpkg -L kamailio 2>/dev/null | grep -m 1 '/kamailio/modules/sl\.so$')
		if [ -n "$f" ] && [ -f "$f" ]; then
			dirname "$f"
			return 0
		fi
	fi
	for d in /usr/lib/*/kamailio/modules /usr/lib64/kamailio/modules /usr/lib/kamailio/modules \
		/usr/local/lib/*/kamailio/modules /usr/local/lib64/kamailio/modules \
		/usr/local/lib/kamailio/modules; do
		if [ -f "$d/sl.so" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

start_kamailio() {
	local name=$1 sock=$2 port run i
	shift 2
	port=${sock##*:}
	run=$T_TMP/$name.run
	mkdir -p "$run" || return 1
	[ -n "$KAM_MPATH" ] || KAM_MPATH=$(kamailio_mpath) || return 1
	# -DD: no daemon, the main process stays our child and stops its
	# workers on SIGTERM. -Y/-w: a private runtime dir, nothing in /run.
	kamailio -f "$INTEROP_DATA/kamailio.cfg" -L "$KAM_MPATH" -DD -E -l "$sock" \
		-Y "$run" -w "$run" -P "$run/kamailio.pid" -m 32 -M 8 "$@" \
		>"$T_TMP/$name.log" 2>&1 </dev/null &
	KAM_PID=$!
	track_pid "$KAM_PID"
	for ((i = 0; i < 300; i++)); do
		port_listening "$port" && return 0
		if ! t_alive "$KAM_PID"; then
			diag "start_kamailio $name: kamailio exited:" "$(tail -n 15 "$T_TMP/$name.log")"
			return 1
		fi
		sleep 0.05
	done
	diag "start_kamailio $name: port $port not listening after 15 s:" "$(tail -n 15 "$T_TMP/$name.log")"
	return 1
}

start_stunnel() {
	local conf=$1 p i ready bin
	shift
	bin=$(command -v stunnel4 || command -v stunnel)
	"$bin" "$conf" >>"$T_TMP/stunnel.log" 2>&1 </dev/null &
	STUNNEL_PID=$!
	track_pid "$STUNNEL_PID"
	for ((i = 0; i < 200; i++)); do
		ready=1
		for p in "$@"; do
			port_listening "$p" || { ready=0; break; }
		done
		[ "$ready" = 1 ] && return 0
		if ! t_alive "$STUNNEL_PID"; then
			diag "start_stunnel: stunnel exited:" "$(tail -n 15 "$T_TMP/stunnel.log")"
			return 1
		fi
		sleep 0.05
	done
	diag "start_stunnel: not listening after 10 s:" "$(tail -n 15 "$T_TMP/stunnel.log")"
	return 1
}

sipp_counter() {
	[ -f "$1" ] || return 0
	awk -F'|' -v n="$2" 'index($1, n) { v = $3 } END { gsub(/[[:space:]]/, "", v); print v }' "$1"
}

run_sipp() {
	local name=$1 target=$2 pfx pid
	shift 2
	pfx=$T_TMP/$name
	SIPP_SCREEN=$pfx-screen.txt
	rm -f "$SIPP_SCREEN" "$pfx-stat.csv" "$pfx-errors.log" "$pfx.log"
	# in $T_TMP: sipp drops files named after the scenario in its cwd
	(cd "$T_TMP" && exec sipp "$target" -i 127.0.0.1 -nostdin \
		-trace_screen -screen_file "$SIPP_SCREEN" \
		-trace_stat -stf "$pfx-stat.csv" \
		-trace_err -error_file "$pfx-errors.log" "$@") >"$pfx.log" 2>&1 </dev/null &
	pid=$!
	track_pid "$pid"
	if ! wait_pid_exit "$pid" "${SIPP_WAIT:-30}"; then
		diag "run_sipp $name: still running after ${SIPP_WAIT:-30} s: SIGTERM"
		kill -TERM "$pid" 2>/dev/null
		wait_pid_exit "$pid" 3 || kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	SIPP_STATUS=$?
	untrack_pid "$pid"
	SIPP_SUCCESS=$(sipp_counter "$SIPP_SCREEN" 'Successful call')
	SIPP_FAILED=$(sipp_counter "$SIPP_SCREEN" 'Failed call')
}

sipp_summary() {
	echo "sipp $1: exit status $SIPP_STATUS, Successful call ${SIPP_SUCCESS:-?}, Failed call ${SIPP_FAILED:-?}"
}
