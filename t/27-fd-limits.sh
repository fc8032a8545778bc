#!/bin/bash
# 27-fd-limits.sh: descriptors. At start the daemon raises its soft
# RLIMIT_NOFILE to the hard limit and clamps a max-connections the limit
# cannot hold (logged, and reported by -t); when accept() runs out of
# descriptors (EMFILE) the listener pauses (one log line per pause, no busy
# loop) and accepts again once descriptors are free.
# SPDX-License-Identifier: MIT

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

require_sidecar
HOSTILE=$T_BUILD/hostile
for b in "$RECBACKEND" "$TLSCLIENT" "$HOSTILE"; do
	[ -x "$b" ] || bail_out "not built: $b"
done
certs_dir >/dev/null || skip_all "no test certificates (t/mkcerts.sh)"
C=$CERTS
require_cmd prlimit

plan 18

# cpu_ticks PID: user + system time of PID in clock ticks
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null
}

start_backend ans -a || bail_out "cannot start the answering backend"
P=$(free_port)
FLOWP=$(free_port)
conf=$T_TMP/fd.conf
cat >"$conf" <<EOF
[global]
allow-root = yes
workers = 1
handshake-timeout = 10s
flow-bind = 127.0.0.1:$FLOWP
[listen pub]
bind = 127.0.0.1:$P
backend = 127.0.0.1:$BACKEND_PORT_ans
cert = $C/server.crt
key = $C/server.key
EOF
# the default max-connections = 20000 needs 2 x 20000 + 64 + (1 listener
# + 4) x 1 worker = 40069 descriptors
ok_cmd "-t with a hard limit of 300 open files: the configuration is usable" \
	bash -c "ulimit -n 300 && exec \"\$0\" -t -c \"\$1\"" "$SIDECAR" "$conf"
like 'warning: .*max-connections = 20000 needs 40069 open files, the limit is 300: clamped to max-connections = 115' \
	"$(cat "$T_OUT")" "... and says max-connections is clamped to what 300 descriptors hold"

cat >"$T_TMP/limit.sh" <<'EOF'
#!/bin/bash
ulimit -S -n 100 && ulimit -H -n 300 && exec "$@"
EOF
chmod +x "$T_TMP/limit.sh"
SIDECAR_WRAPPER=$T_TMP/limit.sh start_sidecar "$conf" "$P" || bail_out "the daemon did not start"
D=$SIDECAR_PID
like 'open files limit raised from 100 to 300' "$(cat "$SIDECAR_LOG")" \
	"started with a soft limit of 100 and a hard one of 300: log says the soft limit was raised"
soft=$(awk '/^Max open files/ { print $4 }' "/proc/$D/limits")
is 300 "$soft" "... the daemon's soft limit is 300"
like 'max-connections = 20000 needs 40069 open files, the limit is 300: clamped to max-connections = 115' \
	"$(cat "$SIDECAR_LOG")" "log: max-connections clamped to 115"
ok_cmd "a client is served" "$TLSCLIENT" -c "127.0.0.1:$P" --ca "$C/ca.crt" --sip 1

# ------------------------------------------------------------------ EMFILE
nfd=$(find "/proc/$D/fd" -mindepth 1 | wc -l)
lim=$((nfd + 8))
ok_cmd "the limit drops under the running daemon to $lim ($nfd descriptors in use)" \
	prlimit --pid "$D" --nofile="$lim:$lim"
mark_log
rm -f "$T_TMP/ready"
"$HOSTILE" -c "127.0.0.1:$P" --slow 3 --idle --conns 30 --ready "$T_TMP/ready" >"$T_TMP/idle.out" 2>&1 &
H=$!
track_pid "$H"
wait_for_file "$T_TMP/ready" 10
ok $? "30 silent connections: the daemon runs out of descriptors"
t0=$(cpu_ticks "$D")
wait_pid_exit "$H" 15
wait "$H"
untrack_pid "$H"
t1=$(cpu_ticks "$D")
hz=$(getconf CLK_TCK)
wait_new 'listen=pub accept paused for 0\.5s: reached process FD limit \(Too many open files\)' 5
ok $? "log: listen=pub accept paused for 0.5s: reached process FD limit"
n=$(newlog | grep -c 'accept paused')
diag "$n pause lines; daemon CPU $((t1 - t0)) ticks (of $hz a second) in the 3 s the descriptors ran out"
[ "$n" -ge 1 ] && [ "$n" -le 12 ]
ok $? "... one line per pause: $n in about 3 s (no flood of lines)"
[ $((t1 - t0)) -lt $((hz * 3 / 10)) ]
ok $? "... no busy loop: $((t1 - t0)) ticks of CPU in those 3 s (bound: 0.3 s)"
unlike 'accept: Too many open files' "$(newlog)" "... no log line per failed accept"

# the flow listener (where the legacy server connects) pauses the same way
mark_log
rm -f "$T_TMP/ready"
"$HOSTILE" -c "127.0.0.1:$FLOWP" --slow 3 --idle --conns 30 --ready "$T_TMP/ready" >"$T_TMP/idle2.out" 2>&1 &
H=$!
track_pid "$H"
wait_for_file "$T_TMP/ready" 10
t0=$(cpu_ticks "$D")
wait_pid_exit "$H" 15
wait "$H"
untrack_pid "$H"
t1=$(cpu_ticks "$D")
wait_new 'flow accept paused for 0\.5s: reached process FD limit \(Too many open files\)' 5
ok $? "30 connections to the flow listener: log: flow accept paused for 0.5s: reached process FD limit"
n=$(newlog | grep -c 'accept paused')
diag "$n pause lines; daemon CPU $((t1 - t0)) ticks in those 3 s"
[ "$n" -ge 1 ] && [ "$n" -le 12 ] && [ $((t1 - t0)) -lt $((hz * 3 / 10)) ]
ok $? "... one line per pause ($n) and no busy loop ($((t1 - t0)) ticks of CPU in 3 s)"

# descriptors free again: accepting resumes
ok_cmd "once the silent connections are gone, a client is served again" "$TLSCLIENT" -c "127.0.0.1:$P" \
	--ca "$C/ca.crt" --sip 2
like 'sent=2 ok=2' "$(cat "$T_OUT")" "... answered"
t_alive "$D"
ok $? "the daemon is still running"
stop_sidecar 10
is 0 "$SIDECAR_STATUS" "the daemon stops (status 0)"

done_testing
