# lib-calls.sh: helpers shared by the call tests (t/72, t/73): namespaces,
# bounded waits, driving baresip through its stdin fifo and reading its SIP
# trace, and the per-step expectations. Sourced after t/lib.sh; the
# functions use the sourcing script's variables (T_TMP, CALLS_TIMEOUT, the
# UA and namespace arrays) at call time.
# SPDX-License-Identifier: MIT
# shellcheck shell=bash

calls_cleanup() {
	local u
	t_kill_tracked
	for u in "${UAS[@]}"; do
		ip netns del "${NS[$u]}" 2>/dev/null
	done
}

# lib.sh's t_cleanup reads the exit status from $?: hand it on
calls_exit() {
	local rc=$?
	calls_cleanup
	(exit "$rc")
	t_cleanup
}

# ns_listening NS PORT [udp]: PORT listens inside namespace NS
ns_listening() {
	local hex
	hex=$(printf '%04X' "$2")
	if [ "${3:-tcp}" = udp ]; then
		ip netns exec "$1" cat /proc/net/udp 2>/dev/null |
			awk -v p=":$hex" 'substr($2, length($2) - 4) == p { f = 1 } END { exit !f }'
	else
		ip netns exec "$1" cat /proc/net/tcp 2>/dev/null |
			awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }'
	fi
}

# wait_until T CMD...: until CMD succeeds, bounded by T seconds (0.1 s polls)
wait_until() {
	local i n=$(($1 * 10))
	shift
	for ((i = 0; i <= n; i++)); do
		"$@" && return 0
		[ "$i" -lt "$n" ] && sleep 0.1
	done
	return 1
}

# ua_stop U: SIGTERM (baresip unregisters first), SIGKILL after 5 s
ua_stop() {
	local u=$1 pid=${UA_PID[$1]:-} fd=${UA_FD[$1]:-}
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	wait_pid_exit "$pid" 5 || kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	untrack_pid "$pid"
	UA_PID[$u]=
	[ -n "$fd" ] && exec {fd}>&-
	UA_FD[$u]=
}

# ua_say U LINE: a command line for U's baresip
ua_say() {
	printf '%s\n' "$2" >&"${UA_FD[$1]}"
}

# ua_new U [FROM]: U's output since its mark (or byte offset FROM)
ua_new() {
	tail -c +$((${2:-${UA_MARK[$1]}} + 1)) "${UA_DIR[$1]}/ua.out" 2>/dev/null
}

# ua_says U REGEX: U's output since the mark has a line matching REGEX
ua_says() {
	ua_new "$1" | grep -aEq -- "$2"
}

# has U DIR METHOD START [CALL-ID [CSEQ-NUMBER]]: U's trace since the mark
# has a message in direction DIR (recv, sent) of transaction METHOD whose
# start line begins with START (extended regex: "BYE", "SIP/2.0 2", ...)
has() {
	msgs "$1" | grep -Eq -- "^$2 [^ ]+ [^ ]+ ${6:-[0-9]+} $3 ${5:-[^ ]+} $4"
}

# count U DIR METHOD START [CALL-ID [CSEQ-NUMBER]]: how many
count() {
	msgs "$1" | grep -Ec -- "^$2 [^ ]+ [^ ]+ ${6:-[0-9]+} $3 ${5:-[^ ]+} $4"
}

# final_err U METHOD [CALL-ID]: U received an error (3xx-6xx) for METHOD
final_err() {
	has "$1" recv "$2" 'SIP/2.0 [3-6]' "${3:-}"
}

# last_sent U METHOD: "CALL-ID CSEQ" of the last METHOD request U sent
last_sent() {
	msgs "$1" | awk -v m="$2" '$1 == "sent" && $7 == m { c = $6 " " $4 } END { print c }'
}

# expect T CHECK ABORT: eval CHECK every 0.1 s until it succeeds (0);
# stop early when ABORT (eval'd) or leaks succeeds (2); 1 after T seconds.
expect() {
	local end=$(($(now_ms) + $1 * 1000))
	while :; do
		eval "$2" && return 0
		if leaks || eval "$3"; then
			sleep 0.3
			eval "$2" && return 0
			return 2
		fi
		[ "$(now_ms)" -lt "$end" ] || return 1
		sleep 0.1
	done
}

# reset_calls: hang up whatever is left, until neither UA lists a call
no_calls() {
	local u
	for u in "${UAS[@]}"; do
		ua_says "$u" '--- (No active calls|Active calls \(0\)) ---' || return 1
	done
}

reset_calls() {
	local u i
	for ((i = 0; i < 3; i++)); do
		mark_all
		for u in "${UAS[@]}"; do
			ua_say "$u" "/hangup"
			ua_say "$u" "/listcalls"
		done
		wait_until 3 no_calls && return 0
	done
	diag "reset_calls: calls still listed"
	return 1
}

reg_failed() {
	final_err "$1" REGISTER || ! t_alive "${UA_PID[$1]}"
}

# no_ack B: B sent the 2xx for the INVITE at least 5 times: RFC 3261's
# retransmissions (0.5 s, 1 s, 2 s, 4 s...) mean 7.5 s without an ACK
no_ack() {
	[ "$(count "$1" sent INVITE 'SIP/2.0 2' "$CID" "$CSEQ")" -ge 5 ]
}
