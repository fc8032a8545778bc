# lib.sh: TAP helpers and process plumbing for the sip-sidecar integration
# tests (bash). Source it first thing:
#
#     . "${T_SRC:-$(dirname "$0")}/lib.sh"
#
# Environment (set by `make check`; defaults for running a script by hand):
#   SIDECAR   the daemon binary      (default $T_BUILD/../sidecar/sip-sidecar)
#   T_SRC     the source t/ dir      (default: the directory of this file)
#   T_BUILD   the build t/ dir with recbackend, tlsclient, tcpclient (default $T_SRC)
#   SIDECAR_WRAPPER  optional command prefix for the daemon (e.g. "valgrind -q")
#   T_KEEP=1  keep $T_TMP even when every test passed
#
# Sets: T_TMP (fresh per script, removed at exit unless a test failed),
# RECBACKEND, TLSCLIENT, TCPCLIENT (tool paths).
#
# TAP:      plan N | ok STATUS DESC | pass DESC | fail DESC | ok_cmd DESC CMD...
#           ok_status WANT DESC CMD... | is WANT GOT DESC | isnt UNWANTED GOT DESC
#           like REGEX TEXT DESC | unlike REGEX TEXT DESC | files_equal A B DESC
#           diag MSG... | skip N WHY | skip_all WHY | bail_out WHY | done_testing
#           ok_cmd/ok_status leave the command's output in $T_OUT, status in $T_STATUS.
# Processes: track_pid PID | untrack_pid PID | wait_pid_exit PID [TIMEOUT_S]
#           start_backend NAME [RECBACKEND-OPTS...] -> BACKEND_PORT BACKEND_PID BACKEND_DIR
#           (also BACKEND_PORT_<NAME>, BACKEND_PID_<NAME>)
#           start_sidecar CONF [PORT...] -> SIDECAR_PID SIDECAR_LOG | start_named NAME CONF [PORT...]
#           stop_sidecar [TIMEOUT_S] -> SIDECAR_STATUS | reload_sidecar [TIMEOUT_S]
# Waiting (bounded, 50 ms polls, TIMEOUT_S integer seconds, default 10):
#           wait_port HOST PORT [T] | port_listening PORT | free_port
#           wait_for_file FILE [T] | wait_for_size FILE BYTES [T]
#           wait_for_log FILE REGEX [T] | wait_for_log_count FILE REGEX N [T]
#           log_count FILE REGEX | mark_log, newlog, wait_new REGEX [T] (log since a mark)
# Other:    certs_dir (-> CERTS) | require_cmd CMD... | require_sidecar
#
# Every background process must have its stdout and stderr redirected to a
# file (the helpers do): the TAP driver reads our stdout until every holder
# of that pipe has exited.
#
# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2034 # variables here are for the sourcing script

# automake runs tests with $(SHELL), often dash: continue in bash.
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi

set -u

: "${T_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
: "${T_BUILD:=$T_SRC}"
: "${SIDECAR:=$T_BUILD/../sidecar/sip-sidecar}"
RECBACKEND=$T_BUILD/recbackend
TLSCLIENT=$T_BUILD/tlsclient
TCPCLIENT=$T_BUILD/tcpclient

T_PLANNED=
T_RUN=0
T_FAILED=0
T_FINISHED=0          # done_testing or skip_all ran
T_PIDS=()
T_OUT=
T_STATUS=
T_PORT_DIR=${TMPDIR:-/tmp}/sip-sidecar-test-ports
SIDECAR_PID=
SIDECAR_STATUS=
SIDECAR_LOG=
BACKEND_PORT=
BACKEND_PID=
BACKEND_DIR=

if ! T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/sip-sidecar-test.XXXXXX"); then
	echo "Bail out! mktemp -d failed"
	exit 1
fi
T_OUT=$T_TMP/cmd.out
# A build made with ./configure --enable-sanitizers (T_SANITIZER=1 from
# make check): every process of this script writes its ASan/UBSan reports
# to $T_TMP/sanitizer.PID; t_cleanup fails the script if there is one.
if [ -n "${T_SANITIZER:-}" ]; then
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T_TMP/sanitizer"
	export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T_TMP/sanitizer"
fi

# ------------------------------------------------------------------ TAP

# t_where: "script:line" of the test-script line that called into lib.sh.
t_where() {
	local i
	for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
		if [ "${BASH_SOURCE[$i]}" != "${BASH_SOURCE[0]}" ]; then
			echo "${BASH_SOURCE[$i]}:${BASH_LINENO[$((i - 1))]}"
			return
		fi
	done
	echo "?"
}

# diag MSG...: print each line of each MSG as a TAP comment ("# ...").
diag() {
	local arg line
	for arg in "$@"; do
		while IFS= read -r line; do
			printf '# %s\n' "$line"
		done <<<"$arg"
	done
}

# t_result PASSED DESC: print one TAP line and count it.
t_result() {
	local desc=${2-}
	desc=${desc//\#/\\#}
	T_RUN=$((T_RUN + 1))
	if [ "$1" = 1 ]; then
		echo "ok $T_RUN - $desc"
		return 0
	fi
	T_FAILED=$((T_FAILED + 1))
	echo "not ok $T_RUN - $desc"
	diag "  Failed test '${2-}' at $(t_where)"
	return 1
}

# plan N: announce N tests.
plan() {
	T_PLANNED=$1
	echo "1..$1"
}

# ok STATUS DESC: passes if STATUS is 0 (e.g. `[ -s f ]; ok $? "f not empty"`).
ok() {
	if [ "${1-1}" = 0 ]; then t_result 1 "${2-}"; else t_result 0 "${2-}"; fi
}

pass() { t_result 1 "${1-}"; }
fail() { t_result 0 "${1-}"; }

# ok_cmd DESC CMD...: passes if CMD exits 0. Output (stdout+stderr) is kept
# in $T_OUT, the status in $T_STATUS; on failure both are shown.
ok_cmd() {
	ok_status 0 "$@"
}

# ok_status WANT DESC CMD...: passes if CMD exits with status WANT.
ok_status() {
	local want=$1 desc=$2
	shift 2
	"$@" >"$T_OUT" 2>&1
	T_STATUS=$?
	if [ "$T_STATUS" = "$want" ]; then
		t_result 1 "$desc"
		return 0
	fi
	t_result 0 "$desc"
	diag "  command: $*" "  exit status $T_STATUS, wanted $want; output (last 20 lines):"
	diag "$(tail -n 20 "$T_OUT")"
	return 1
}

# is WANT GOT DESC
is() {
	if [ "${1-}" = "${2-}" ]; then
		t_result 1 "${3-}"
		return 0
	fi
	t_result 0 "${3-}"
	diag "       got: '${2-}'" "  expected: '${1-}'"
	return 1
}

# isnt UNWANTED GOT DESC
isnt() {
	if [ "${1-}" != "${2-}" ]; then
		t_result 1 "${3-}"
		return 0
	fi
	t_result 0 "${3-}"
	diag "       got: '${2-}'" "  expected anything else"
	return 1
}

# like REGEX TEXT DESC: passes if TEXT matches the extended REGEX.
like() {
	if [[ ${2-} =~ ${1-} ]]; then
		t_result 1 "${3-}"
		return 0
	fi
	t_result 0 "${3-}"
	diag "  '${2-}'" "    doesn't match '${1-}'"
	return 1
}

# unlike REGEX TEXT DESC
unlike() {
	if ! [[ ${2-} =~ ${1-} ]]; then
		t_result 1 "${3-}"
		return 0
	fi
	t_result 0 "${3-}"
	diag "  '${2-}'" "    matches '${1-}'"
	return 1
}

# files_equal A B DESC: byte-exact comparison.
files_equal() {
	local out
	if out=$(cmp -- "$1" "$2" 2>&1); then
		t_result 1 "${3-}"
		return 0
	fi
	t_result 0 "${3-}"
	diag "  $out" "  sizes: $(stat -c %s -- "$1" 2>/dev/null || echo missing)" \
		"     vs $(stat -c %s -- "$2" 2>/dev/null || echo missing)"
	return 1
}

# skip N WHY: count N tests as skipped.
skip() {
	local i
	for ((i = 0; i < $1; i++)); do
		T_RUN=$((T_RUN + 1))
		echo "ok $T_RUN # skip ${2-}"
	done
}

# skip_all WHY: skip the whole script (must come before any test).
skip_all() {
	T_FINISHED=1
	echo "1..0 # SKIP ${1-}"
	exit 0
}

# bail_out WHY: abort the whole run.
bail_out() {
	T_FINISHED=1
	echo "Bail out! ${1-}"
	T_FAILED=$((T_FAILED + 1))
	exit 1
}

# done_testing: print the plan if none was given; exit 0 if all passed.
done_testing() {
	T_FINISHED=1
	[ -n "$T_PLANNED" ] || echo "1..$T_RUN"
	if [ "$T_FAILED" -gt 0 ]; then
		diag "Looks like you failed $T_FAILED test(s) of $T_RUN."
		exit 1
	fi
	if [ -n "$T_PLANNED" ] && [ "$T_PLANNED" != "$T_RUN" ]; then
		exit 1 # reported by t_cleanup
	fi
	exit 0
}

# ------------------------------------------------------------ processes

# track_pid PID: SIGTERM (then SIGKILL after 3 s) PID at exit.
track_pid() {
	T_PIDS+=("$1")
}

untrack_pid() {
	local keep=() p
	for p in "${T_PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	T_PIDS=("${keep[@]}")
}

# t_alive PID: true while PID runs (bash reaps its own children on exit).
t_alive() {
	kill -0 "$1" 2>/dev/null
}

# wait_pid_exit PID [TIMEOUT_S]: true once PID has exited.
wait_pid_exit() {
	local i n=$((${2:-10} * 20))
	for ((i = 0; i < n; i++)); do
		t_alive "$1" || return 0
		sleep 0.05
	done
	! t_alive "$1"
}

t_kill_tracked() {
	local p alive=() still i
	for p in "${T_PIDS[@]}"; do
		if t_alive "$p"; then
			kill -TERM "$p" 2>/dev/null
			alive+=("$p")
		fi
	done
	for ((i = 0; i < 60 && ${#alive[@]} > 0; i++)); do
		sleep 0.05
		still=()
		for p in "${alive[@]}"; do
			t_alive "$p" && still+=("$p")
		done
		alive=("${still[@]}")
	done
	for p in "${alive[@]}"; do
		diag "pid $p ignored SIGTERM for 3 s: SIGKILL"
		kill -KILL "$p" 2>/dev/null
	done
	for p in "${T_PIDS[@]}"; do
		wait "$p" 2>/dev/null # reap our own children; others: no-op
	done
	T_PIDS=()
}

# t_release_ports: drop the port claims free_port made for this script.
t_release_ports() {
	local d
	for d in "$T_PORT_DIR"/*/; do
		[ -f "${d}owner" ] || continue
		[ "$(cat "${d}owner" 2>/dev/null)" = "$$" ] && rm -rf "$d"
	done
}

t_dump_logs() {
	local f
	for f in "$T_TMP"/*.log "$T_TMP"/*/events.log; do
		[ -f "$f" ] || continue
		diag "---- tail of ${f#"$T_TMP"/} ----"
		diag "$(tail -n 30 "$f")"
	done
}

t_cleanup() {
	local rc=$? failed=0
	trap - EXIT
	t_kill_tracked
	t_release_ports
	if [ "$T_FINISHED" = 0 ] && [ -z "$T_PLANNED" ]; then
		# ended (error, `set -u`, exit) before done_testing
		T_RUN=$((T_RUN + 1))
		T_FAILED=$((T_FAILED + 1))
		echo "not ok $T_RUN - test script ended early (exit status $rc)"
		echo "1..$T_RUN"
	fi
	if [ -n "$T_PLANNED" ] && [ "$T_PLANNED" != "$T_RUN" ]; then
		diag "Looks like you planned $T_PLANNED test(s) but ran $T_RUN."
		failed=1
	fi
	[ "$T_FAILED" -gt 0 ] && failed=1
	[ "$rc" != 0 ] && failed=1
	if [ -n "${T_SANITIZER:-}" ] && compgen -G "$T_TMP/sanitizer.*" >/dev/null; then
		diag "sanitizer report(s):"
		cat "$T_TMP"/sanitizer.* | sed 's/^/# /' | head -n 200
		failed=1
	fi
	if [ "$failed" = 1 ]; then
		t_dump_logs
		diag "kept $T_TMP"
	elif [ "${T_KEEP:-0}" = 1 ]; then
		diag "kept $T_TMP"
	else
		rm -rf "$T_TMP"
	fi
	if [ "$failed" = 1 ] && [ "$rc" = 0 ]; then
		rc=1
	fi
	exit "$rc"
}
trap t_cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- ports

# t_used_ports: every local TCP port in use (any state), one per line.
t_used_ports() {
	local h
	awk 'FNR > 1 { n = split($2, a, ":"); print a[n] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null |
		while read -r h; do echo $((16#$h)); done
}

# port_listening PORT: true if some socket listens on TCP PORT (v4 or v6).
port_listening() {
	local hex
	hex=$(printf '%04X' "$1")
	if [ -r /proc/net/tcp ]; then
		awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
			/proc/net/tcp /proc/net/tcp6 2>/dev/null
		return
	fi
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# free_port: print an unused loopback TCP port in 20000-29999. The port is
# also claimed under $T_PORT_DIR (released at exit), so that tests running in
# parallel never pick the same one. Safe to call as $(free_port).
free_port() {
	local used port i start owner
	mkdir -p "$T_PORT_DIR" 2>/dev/null
	used=" $(t_used_ports | tr '\n' ' ') "
	start=$(((RANDOM * 32768 + RANDOM + $$) % 10000))
	for ((i = 0; i < 10000; i++)); do
		port=$((20000 + (start + i) % 10000))
		case $used in *" $port "*) continue ;; esac
		if mkdir "$T_PORT_DIR/$port" 2>/dev/null; then
			echo "$$" >"$T_PORT_DIR/$port/owner"
			echo "$port"
			return 0
		fi
		# a claim whose owner is gone is stale: clear it for next time
		owner=$(cat "$T_PORT_DIR/$port/owner" 2>/dev/null)
		if [ -n "$owner" ] && [ ! -d "/proc/$owner" ]; then
			rm -rf "${T_PORT_DIR:?}/$port"
		fi
	done
	diag "free_port: no free port in 20000-29999" >&2
	return 1
}

# wait_port HOST PORT [TIMEOUT_S]: wait until PORT listens. Checks the
# listen state in /proc (HOST is only used by the /dev/tcp fallback), so
# it opens no connection the daemon would log.
wait_port() {
	local i n=$((${3:-10} * 20))
	for ((i = 0; i < n; i++)); do
		if [ -r /proc/net/tcp ]; then
			port_listening "$2" && return 0
		else
			(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
		fi
		sleep 0.05
	done
	return 1
}

# ------------------------------------------------------------- waiting

# wait_for_file FILE [TIMEOUT_S]: until FILE exists.
wait_for_file() {
	local i n=$((${2:-10} * 20))
	for ((i = 0; i < n; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.05
	done
	[ -e "$1" ]
}

# wait_for_size FILE BYTES [TIMEOUT_S]: until FILE holds at least BYTES.
wait_for_size() {
	local i n=$((${3:-10} * 20)) s
	for ((i = 0; i <= n; i++)); do
		s=$(stat -c %s -- "$1" 2>/dev/null || echo -1)
		[ "$s" -ge "$2" ] && return 0
		[ "$i" -lt "$n" ] && sleep 0.05
	done
	return 1
}

# log_count FILE REGEX: how many lines of FILE match the extended REGEX.
log_count() {
	local n
	n=$(grep -Ec -- "$2" "$1" 2>/dev/null)
	echo "${n:-0}"
}

# wait_for_log FILE REGEX [TIMEOUT_S]: until a line of FILE matches REGEX.
wait_for_log() {
	wait_for_log_count "$1" "$2" 1 "${3:-10}"
}

# wait_for_log_count FILE REGEX N [TIMEOUT_S]: until N lines match.
# Bounded by the clock, not by a count of tries: on a busy machine each try
# (a grep) can take long.
wait_for_log_count() {
	local now end
	now=${EPOCHREALTIME/./}
	end=$((now + ${4:-10} * 1000000))
	while :; do
		[ "$(log_count "$1" "$2")" -ge "$3" ] && return 0
		now=${EPOCHREALTIME/./}
		[ "$now" -ge "$end" ] && return 1
		sleep 0.05
	done
}

# ------------------------------------------------------------ fixtures

# certs_dir: make the test PKI once per build tree ($T_BUILD/certs, by
# $T_SRC/mkcerts.sh, serialised with flock because tests run in parallel).
# Sets CERTS and prints the directory. Returns 1 (with a reason on stderr)
# if it cannot: use as `certs_dir >/dev/null || skip_all "no test certificates"`.
certs_dir() {
	local dir=$T_BUILD/certs rc=0
	CERTS=$dir
	if [ ! -f "$dir/.done" ]; then
		if [ ! -f "$T_SRC/mkcerts.sh" ]; then
			echo "# certs_dir: $T_SRC/mkcerts.sh not found" >&2
			return 1
		fi
		mkdir -p "$T_BUILD" || return 1
		if command -v flock >/dev/null 2>&1; then
			(
				flock 9 || exit 1
				[ -f "$dir/.done" ] || sh "$T_SRC/mkcerts.sh" "$dir"
			) 9>"$T_BUILD/.certs.lock" >"$T_TMP/mkcerts.log" 2>&1 || rc=$?
		else
			sh "$T_SRC/mkcerts.sh" "$dir" >"$T_TMP/mkcerts.log" 2>&1 || rc=$?
		fi
		if [ "$rc" != 0 ] || [ ! -f "$dir/.done" ]; then
			echo "# certs_dir: mkcerts.sh failed (status $rc):" >&2
			sed 's/^/# /' "$T_TMP/mkcerts.log" >&2
			return 1
		fi
	fi
	echo "$dir"
}

# require_cmd CMD...: skip the script unless every CMD is on PATH.
require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip_all "$c not installed"
	done
}

# require_sidecar: skip the script unless $SIDECAR is built.
require_sidecar() {
	[ -x "$SIDECAR" ] || skip_all "daemon not built: $SIDECAR"
}

# start_backend NAME [RECBACKEND-OPTS...]: run recbackend recording into
# $T_TMP/NAME (conn-N.bin, events.log; its stderr in $T_TMP/NAME.log) on a
# port it picks on 127.0.0.1 (pass -l '[::1]:0' for IPv6). Sets BACKEND_PORT,
# BACKEND_PID, BACKEND_DIR and BACKEND_PORT_<NAME>, BACKEND_PID_<NAME>
# (NAME with non-alphanumerics as _). Do not call it in a subshell.
start_backend() {
	local name=$1 dir pid i var
	shift
	dir=$T_TMP/$name
	mkdir -p "$dir" || return 1
	rm -f "$dir/port"
	"$RECBACKEND" -l 127.0.0.1:0 -d "$dir" -p "$dir/pid" -P "$dir/port" "$@" \
		>"$T_TMP/$name.log" 2>&1 </dev/null &
	pid=$!
	track_pid "$pid"
	for ((i = 0; i < 100; i++)); do
		[ -e "$dir/port" ] && break
		if ! t_alive "$pid"; then
			diag "start_backend $name: recbackend exited:" "$(tail -n 5 "$T_TMP/$name.log")"
			return 1
		fi
		sleep 0.05
	done
	if [ ! -e "$dir/port" ]; then
		diag "start_backend $name: no port file after 5 s"
		return 1
	fi
	BACKEND_PORT=$(cat "$dir/port")
	BACKEND_PID=$pid
	BACKEND_DIR=$dir
	var=${name//[^A-Za-z0-9_]/_}
	printf -v "BACKEND_PORT_$var" '%s' "$BACKEND_PORT"
	printf -v "BACKEND_PID_$var" '%s' "$pid"
	return 0
}

# start_sidecar CONF [PORT...]: run "$SIDECAR -c CONF" (stdout+stderr
# appended to $T_TMP/sidecar.log = $SIDECAR_LOG; PID in SIDECAR_PID) and
# wait until every PORT listens or, with no PORT, until the log has one new
# line containing "listening" per [listen]/[connect] section of CONF.
# Bounded by SIDECAR_START_TIMEOUT (s, default 10). Returns 1 with the log
# tail as diag if the daemon exits (SIDECAR_STATUS set) or never gets ready.
start_sidecar() {
	local conf=$1 start nlisteners i n p ready
	shift
	SIDECAR_LOG=$T_TMP/sidecar.log
	SIDECAR_STATUS=
	touch "$SIDECAR_LOG"
	start=$(wc -l <"$SIDECAR_LOG")
	nlisteners=$(grep -Ec '^[[:space:]]*\[(listen|connect)[[:space:]]' "$conf" 2>/dev/null)
	[ "${nlisteners:-0}" -gt 0 ] || nlisteners=1
	# shellcheck disable=SC2086 # the wrapper is a word list on purpose
	${SIDECAR_WRAPPER:-} "$SIDECAR" -c "$conf" >>"$SIDECAR_LOG" 2>&1 </dev/null &
	SIDECAR_PID=$!
	track_pid "$SIDECAR_PID"
	n=$((${SIDECAR_START_TIMEOUT:-10} * 20))
	for ((i = 0; i <= n; i++)); do
		if ! t_alive "$SIDECAR_PID"; then
			wait "$SIDECAR_PID" 2>/dev/null
			SIDECAR_STATUS=$?
			diag "start_sidecar: $SIDECAR exited with status $SIDECAR_STATUS during startup:"
			diag "$(tail -n +"$((start + 1))" "$SIDECAR_LOG" | tail -n 20)"
			untrack_pid "$SIDECAR_PID"
			SIDECAR_PID=
			return 1
		fi
		ready=1
		if [ $# -gt 0 ]; then
			for p in "$@"; do
				port_listening "$p" || { ready=0; break; }
			done
		else
			[ "$(tail -n +"$((start + 1))" "$SIDECAR_LOG" | grep -c listening)" -ge "$nlisteners" ] ||
				ready=0
		fi
		[ "$ready" = 1 ] && return 0
		[ "$i" -lt "$n" ] && sleep 0.05
	done
	diag "start_sidecar: not ready after ${SIDECAR_START_TIMEOUT:-10} s (ports: ${*:-none}):"
	diag "$(tail -n +"$((start + 1))" "$SIDECAR_LOG" | tail -n 20)"
	return 1
}

# stop_sidecar [TIMEOUT_S]: SIGTERM the daemon, wait (default 10 s) and
# record its exit status in SIDECAR_STATUS. If it does not exit in time it
# is SIGKILLed, SIDECAR_STATUS is "timeout" and 1 is returned.
stop_sidecar() {
	local pid=$SIDECAR_PID
	if [ -z "$pid" ]; then
		diag "stop_sidecar: no sidecar running"
		return 1
	fi
	kill -TERM "$pid" 2>/dev/null
	if ! wait_pid_exit "$pid" "${1:-10}"; then
		diag "stop_sidecar: still running ${1:-10} s after SIGTERM: SIGKILL"
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		SIDECAR_STATUS=timeout
		untrack_pid "$pid"
		SIDECAR_PID=
		return 1
	fi
	wait "$pid" 2>/dev/null
	SIDECAR_STATUS=$?
	untrack_pid "$pid"
	SIDECAR_PID=
	return 0
}

# reload_sidecar [TIMEOUT_S]: SIGHUP the daemon and wait for the next
# "reload ok" / "reload failed" log line. Returns 0 (ok), 1 (failed) or
# 2 (no such line in time).
reload_sidecar() {
	local before
	before=$(log_count "$SIDECAR_LOG" 'reload (ok|failed)')
	kill -HUP "$SIDECAR_PID" 2>/dev/null || return 2
	wait_for_log_count "$SIDECAR_LOG" 'reload (ok|failed)' "$((before + 1))" "${1:-10}" || return 2
	grep -E 'reload (ok|failed)' "$SIDECAR_LOG" | tail -n 1 | grep -q 'reload ok'
}

# mark_log: remember where the daemon's log ends; newlog prints what came
# after the mark; wait_new REGEX [TIMEOUT_S]: until a line after the mark
# matches REGEX (bounded, default 5 s).
LOG_MARK=0
mark_log() {
	LOG_MARK=$(wc -l <"$SIDECAR_LOG")
}
newlog() {
	tail -n +"$((LOG_MARK + 1))" "$SIDECAR_LOG"
}
wait_new() {
	local i
	for ((i = 0; i <= ${2:-5} * 20; i++)); do
		newlog | grep -Eq -- "$1" && return 0
		sleep 0.05
	done
	return 1
}

# start_named NAME CONF PORT...: a second daemon with its own log
# $T_TMP/NAME.log (start_sidecar keeps one per script); waits for PORTs and
# "ready"; its PID goes to PID_NAME.
start_named() {
	local name=$1 conf=$2 log=$T_TMP/$1.log pid i p ready
	shift 2
	# shellcheck disable=SC2086 # the wrapper is a word list on purpose
	${SIDECAR_WRAPPER:-} "$SIDECAR" -c "$conf" >>"$log" 2>&1 </dev/null &
	pid=$!
	track_pid "$pid"
	printf -v "PID_${name//[^A-Za-z0-9_]/_}" '%s' "$pid"
	for ((i = 0; i < 200; i++)); do
		if ! t_alive "$pid"; then
			diag "$name: the daemon exited during startup:" "$(tail -n 20 "$log")"
			return 1
		fi
		ready=1
		for p in "$@"; do
			port_listening "$p" || { ready=0; break; }
		done
		[ "$ready" = 1 ] && grep -q ' ready' "$log" && return 0
		sleep 0.05
	done
	diag "$name: not ready after 10 s:" "$(tail -n 20 "$log")"
	return 1
}
