#!/bin/bash
# 29-backend-source.sh: backend-source, connections to one backend address
# and port from several loopback source addresses.
# In a network namespace of its own (unshare -n; needs root) the ephemeral
# port range is narrowed to 4 ports (net.ipv4.ip_local_port_range is per
# namespace), so one source address holds 4 connections to the backend:
#  - without backend-source, 4 relayed connections fill 127.0.0.1 and the 5th
#    gets "backend ... unavailable: Cannot assign requested address" and a
#    503 (nothing reaches the backend), the daemon keeps serving;
#  - backend-source = 127.0.0.1-127.0.0.2 while 127.0.0.1 is full: every
#    connection spills over to 127.0.0.2, 4 more reach the backend;
#  - with both full: "every backend-source address: ..." and a 503;
#  - backend-source = 127.0.0.3-127.0.0.4: round robin, 2 connections each.
# Clients get a listener each per 4 connections: their own side also draws
# from the 4 ports, one per (client, listener) pair.
# SPDX-License-Identifier: MIT

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# Into a network namespace of our own, before lib.sh makes its temp dir.
if [ -z "${T_NETNS:-}" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1 &&
	unshare -n true 2>/dev/null; then
	T_NETNS=1 exec unshare -n bash "$0" "$@"
fi
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

[ "${T_NETNS:-}" = 1 ] || skip_all "needs root and unshare -n (a network namespace of its own)"
require_sidecar
require_cmd ip ss
for b in "$RECBACKEND" "$TLSCLIENT"; do
	[ -x "$b" ] || bail_out "not built: $b"
done
certs_dir >/dev/null || skip_all "no test certificates (t/mkcerts.sh)"
C=$CERTS

plan 20

ip link set lo up || bail_out "ip link set lo up failed"
# fixed ports, all outside the narrowed range: the namespace is ours alone
echo "40000 40003" >/proc/sys/net/ipv4/ip_local_port_range ||
	bail_out "cannot narrow net.ipv4.ip_local_port_range"
is "40000	40003" "$(cat /proc/sys/net/ipv4/ip_local_port_range)" "ephemeral ports: 40000-40003, in this namespace only"

BE=$T_TMP/be
mkdir -p "$BE"
"$RECBACKEND" -l 127.0.0.1:5060 -d "$BE" -p "$BE/pid" -P "$BE/port" -a >"$T_TMP/be.log" 2>&1 </dev/null &
track_pid $!
wait_for_file "$BE/port" 10 || bail_out "the backend did not start"

listener() { # NAME PORT [BACKEND-SOURCE]
	printf '\n[listen %s]\nbind = 127.0.0.1:%s\nbackend = 127.0.0.1:5060\ncert = %s\nkey = %s\n' \
		"$1" "$2" "$C/server.crt" "$C/server.key"
	[ -z "${3:-}" ] || printf 'backend-source = %s\n' "$3"
}
conf=$T_TMP/bs.conf
{
	printf '[global]\nallow-root = yes\nstatus-socket = off\nworkers = 1\nflow-bind = 127.0.0.1:5999\n'
	listener one1 5061
	listener one2 5062
	listener spill1 5063 127.0.0.1-127.0.0.2
	listener spill2 5064 127.0.0.1-127.0.0.2
	listener rr 5065 127.0.0.3-127.0.0.4
	listener fresh 5066 127.0.0.5
} >"$conf"
ok_cmd "-t accepts backend-source" "$SIDECAR" -t -c "$conf"
start_sidecar "$conf" 5061 5062 5063 5064 5065 5066 || bail_out "the daemon did not start"

# hold PORT N: N connections through PORT that stay open (one OPTIONS each,
# after the handshake: the backend connection is made by then)
hold() {
	local i
	for ((i = 0; i < $2; i++)); do
		"$TLSCLIENT" -c "127.0.0.1:$1" --ca "$C/ca.crt" --sip 1 --hold 60000 -q \
			>>"$T_TMP/hold.out" 2>&1 </dev/null &
		track_pid $!
	done
}
# from SRC: established connections to the backend from source address SRC
from() {
	ss -Htn state established "( dport = :5060 )" | awk '{ print $3 }' | grep -c "^$1:"
}
accepts() {
	log_count "$BE/events.log" '^accept '
}

# ---- one source (today's behaviour): 4 connections, then no port left
hold 5061 4
wait_for_log_count "$BE/events.log" '^accept ' 4 20
is 4 "$(accepts)" "4 connections reach the backend"
is 4 "$(from 127.0.0.1)" "... all from 127.0.0.1"
mark_log
ok_status 1 "the 5th connection (another listener, same backend): no 200" \
	"$TLSCLIENT" -c 127.0.0.1:5062 --ca "$C/ca.crt" --sip 1 --read-timeout 5000
like '503 Service Unavailable' "$(cat "$T_OUT")" "... a 503 instead"
wait_new 'listen=one2 peer=127\.0\.0\.1:[0-9]+ backend 127\.0\.0\.1:5060 unavailable: Cannot assign requested address' 5
ok $? "log: backend 127.0.0.1:5060 unavailable: Cannot assign requested address"
is 4 "$(accepts)" "... nothing more reached the backend"

# ---- backend-source = 127.0.0.1-127.0.0.2, with 127.0.0.1 full: spill-over
hold 5063 4
wait_for_log_count "$BE/events.log" '^accept ' 8 20
is 8 "$(accepts)" "backend-source: 4 more connections reach the backend"
is 4 "$(from 127.0.0.2)" "... from 127.0.0.2, the source with free ports"
is 4 "$(from 127.0.0.1)" "... 127.0.0.1 still holds its 4"
mark_log
ok_status 1 "both sources full: no 200" \
	"$TLSCLIENT" -c 127.0.0.1:5064 --ca "$C/ca.crt" --sip 1 --read-timeout 5000
like '503 Service Unavailable' "$(cat "$T_OUT")" "... a 503 instead"
wait_new 'listen=spill2 .*backend 127\.0\.0\.1:5060 unavailable: every backend-source address: Cannot assign requested address' 5
ok $? "log: unavailable: every backend-source address: Cannot assign requested address"
is 8 "$(accepts)" "... nothing more reached the backend"

# ---- round robin over free sources
hold 5065 4
wait_for_log_count "$BE/events.log" '^accept ' 12 20
is 12 "$(accepts)" "round robin: 4 more connections, 12 on 4 ephemeral ports"
is 2 "$(from 127.0.0.3)" "... 2 from 127.0.0.3"
is 2 "$(from 127.0.0.4)" "... 2 from 127.0.0.4"

ok_cmd "the daemon still serves: a source with free ports gets its 200" \
	"$TLSCLIENT" -c 127.0.0.1:5066 --ca "$C/ca.crt" --sip 1
stop_sidecar
is 0 "$SIDECAR_STATUS" "clean exit on SIGTERM"

done_testing
