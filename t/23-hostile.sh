#!/bin/bash
# 23-hostile.sh: hostile clients. A flood of messages relayed to the
# backend leaves the only worker serving others promptly (it returns to
# polling after a bounded amount of work); a keep-alive flood that never
# reads its pongs and a pipelined OPTIONS flood into an unreachable backend
# (503s) are stopped at the output bound; a ClientHello
# announcing 16 MiB is refused at 64 KiB ("handshake too large"); a message
# that never completes is cut by message-timeout; max-connections-per-ip
# (explicit, and the default of 100 on a listener without client
# certificates). Timing bounds are generous (the machine may be busy); the
# real numbers go to the TAP log.
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

plan 54

rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}
# rss_bounded GROWTH-KB DESC: growth under 16 MiB; skipped under
# AddressSanitizer, whose quarantine and shadow memory make VmRSS meaningless
rss_bounded() {
	if [ -n "${T_SANITIZER:-}" ] || ldd "$SIDECAR" 2>/dev/null | grep -q libasan; then
		skip 1 "VmRSS under AddressSanitizer says nothing about the daemon's own bound"
		return
	fi
	[ "$1" -lt 16384 ]
	ok $? "$2"
}
# metric REASON: the refusal counter for REASON
metric() {
	local out
	out=$(exec 3<>"/dev/tcp/127.0.0.1/$MET" && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && timeout 5 cat <&3)
	printf '%s\n' "$out" | tr -d '\r' | grep -F "sip_sidecar_refused_total{reason=\"$1\"}" | awk '{print $NF}'
}
# until_ready FILE PID: wait (10 s) for a hostile client to be set up
until_ready() {
	local i
	for ((i = 0; i < 200; i++)); do
		[ -e "$1" ] && return 0
		t_alive "$2" || return 1
		sleep 0.05
	done
	return 1
}
# field NAME FILE: the value of NAME=... in FILE
field() {
	grep -o "$1=[0-9.]*" "$2" | head -n 1 | cut -d= -f2
}

start_backend ans -a || bail_out "cannot start the answering backend"
start_backend reg -a -r || bail_out "cannot start the registrar stand-in"
# an answering backend that records nothing, for the floods
mkdir -p "$T_TMP/fast"
"$RECBACKEND" -l 127.0.0.1:0 -a -P "$T_TMP/fast/port" >"$T_TMP/fast.log" 2>&1 </dev/null &
track_pid "$!"
wait_for_file "$T_TMP/fast/port" 10 || bail_out "cannot start the fast backend"
FASTB=$(cat "$T_TMP/fast/port")
P=$(free_port)     # client TLS listener
PF=$(free_port)    # client TLS listener for the floods
PD=$(free_port)    # its backend is down
PL=$(free_port)    # max-connections-per-ip = 3
PM=$(free_port)    # MTLS: per-address count unlimited by default
PR=$(free_port)    # clients that register (flows)
MET=$(free_port)
FLOWP=$(free_port) # the flow listener (one worker: this port)
DOWN=$(free_port)  # claimed, nobody listens
conf=$T_TMP/hostile.conf
cat >"$conf" <<EOF
[global]
allow-root = yes
workers = 1
handshake-timeout = 8s
message-timeout = 2s
metrics = 127.0.0.1:$MET
flow-bind = 127.0.0.1:$FLOWP
[listen pub]
bind = 127.0.0.1:$P
backend = 127.0.0.1:$BACKEND_PORT_ans
cert = $C/server.crt
key = $C/server.key
[listen fast]
bind = 127.0.0.1:$PF
backend = 127.0.0.1:$FASTB
cert = $C/server.crt
key = $C/server.key
[listen down]
bind = 127.0.0.1:$PD
backend = 127.0.0.1:$DOWN
cert = $C/server.crt
key = $C/server.key
[listen few]
bind = 127.0.0.1:$PL
backend = 127.0.0.1:$BACKEND_PORT_ans
cert = $C/server.crt
key = $C/server.key
max-connections-per-ip = 3
[listen reg]
bind = 127.0.0.1:$PR
backend = 127.0.0.1:$BACKEND_PORT_reg
cert = $C/server.crt
key = $C/server.key
[listen mtls]
bind = 127.0.0.1:$PM
backend = 127.0.0.1:$BACKEND_PORT_ans
cert = $C/server.crt
key = $C/server.key
client-auth = require
ca = $C/ca.crt
EOF
start_sidecar "$conf" "$P" "$PF" "$PD" "$PL" "$PM" "$PR" "$FLOWP" || bail_out "the daemon did not start"
D=$SIDECAR_PID
ok_cmd "a good client is served (warm-up)" "$HOSTILE" -c "127.0.0.1:$P" --rtt 5
rss0=$(rss_kb "$D")
diag "daemon VmRSS after warm-up: $rss0 kB"

# ===================== a flood relayed to the backend (fairness of the loop)
rm -f "$T_TMP/r1"
"$HOSTILE" -c "127.0.0.1:$PF" --responses 8 --ready "$T_TMP/r1" >"$T_TMP/flood1.out" 2>&1 &
F=$!
track_pid "$F"
until_ready "$T_TMP/r1" "$F"
ok $? "a client pipelines SIP responses as fast as it can (relayed, answered by no one)"
sleep 0.5 # let the flood get going (not a wait for a result)
ok_cmd "meanwhile a good client's 40 round trips through the one worker all succeed" \
	"$HOSTILE" -c "127.0.0.1:$PF" --rtt 40 --timeout 3000
p50=$(field p50 "$T_OUT")
diag "round trips during the flood: $(cat "$T_OUT")"
awk -v p="${p50:-99999}" 'BEGIN { exit !(p < 250) }'
ok $? "... p50 ${p50:-?} ms (bound 250 ms; the goal is 50 ms on an idle machine)"
wait_pid_exit "$F" 20
wait "$F"
untrack_pid "$F"
sent=$(field sent "$T_TMP/flood1.out")
diag "the flood: $(cat "$T_TMP/flood1.out")"
[ "${sent:-0}" -gt 1000000 ]
ok $? "... the flooder itself was served too (${sent:-0} bytes relayed)"

# ================================ a keep-alive flood that never reads
rm -f "$T_TMP/r2"
"$HOSTILE" -c "127.0.0.1:$P" --crlf 6 --ready "$T_TMP/r2" >"$T_TMP/flood2.out" 2>&1 &
F=$!
track_pid "$F"
until_ready "$T_TMP/r2" "$F"
ok $? "a client floods CRLF keep-alives and never reads the pongs"
sleep 0.5
ok_cmd "meanwhile a good client's 40 round trips all succeed" "$HOSTILE" -c "127.0.0.1:$P" --rtt 40 --timeout 5000
p50=$(field p50 "$T_OUT")
diag "round trips during the flood: $(cat "$T_OUT")"
awk -v p="${p50:-99999}" 'BEGIN { exit !(p < 250) }'
ok $? "... p50 ${p50:-?} ms (bound 250 ms)"
rssmax=0
while t_alive "$F"; do
	r=$(rss_kb "$D")
	[ -n "$r" ] && [ "$r" -gt "$rssmax" ] && rssmax=$r
	sleep 0.1
done
wait "$F"
untrack_pid "$F"
sent=$(field sent "$T_TMP/flood2.out")
diag "the flood: $(cat "$T_TMP/flood2.out"); daemon VmRSS $rss0 -> max $rssmax kB"
[ "${sent:-0}" -lt $((32 * 1024 * 1024)) ]
ok $? "the daemon stopped reading from it: ${sent:-?} bytes taken in 6 s (bound 32 MiB)"
rss_bounded $((rssmax - rss0)) "... and its VmRSS grew by $((rssmax - rss0)) kB (bound 16 MiB)"

# ============ pipelined OPTIONS, never read, the backend down (503 answers)
mark_log
rm -f "$T_TMP/r3"
"$HOSTILE" -c "127.0.0.1:$PD" --options 5 --ready "$T_TMP/r3" >"$T_TMP/flood3.out" 2>&1 &
F=$!
track_pid "$F"
until_ready "$T_TMP/r3" "$F"
ok $? "a client pipelines OPTIONS into a listener whose backend is down, never reading the 503s"
rssmax=0
while t_alive "$F"; do
	r=$(rss_kb "$D")
	[ -n "$r" ] && [ "$r" -gt "$rssmax" ] && rssmax=$r
	sleep 0.1
done
wait "$F"
untrack_pid "$F"
sent=$(field sent "$T_TMP/flood3.out")
diag "the flood: $(cat "$T_TMP/flood3.out"); daemon VmRSS $rss0 -> max $rssmax kB"
[ "${sent:-0}" -lt $((32 * 1024 * 1024)) ]
ok $? "the daemon stopped reading while its 503s were not read: ${sent:-?} bytes taken (bound 32 MiB)"
rss_bounded $((rssmax - rss0)) "... VmRSS grew by $((rssmax - rss0)) kB (bound 16 MiB)"
wait_new 'listen=down peer=127\.0\.0\.1:[0-9]+ backend .* unavailable' 5
ok $? "log: the backend is unavailable"
ok_cmd "a good client is still served" "$HOSTILE" -c "127.0.0.1:$P" --rtt 5

# ====== the legacy server's side: requests without a flow token (430s)
rm -f "$T_TMP/r4"
"$HOSTILE" -c "127.0.0.1:$FLOWP" --plain --options 4 --ready "$T_TMP/r4" >"$T_TMP/flood4.out" 2>&1 &
F=$!
track_pid "$F"
until_ready "$T_TMP/r4" "$F"
ok $? "a connection to the flow listener pipelines requests it cannot route, never reading the 430s"
rssmax=0
while t_alive "$F"; do
	r=$(rss_kb "$D")
	[ -n "$r" ] && [ "$r" -gt "$rssmax" ] && rssmax=$r
	sleep 0.1
done
wait "$F"
untrack_pid "$F"
sent=$(field sent "$T_TMP/flood4.out")
diag "the flood: $(cat "$T_TMP/flood4.out"); daemon VmRSS $rss0 -> max $rssmax kB"
[ "${sent:-0}" -lt $((32 * 1024 * 1024)) ]
ok $? "the daemon stopped reading while its 430s were not read: ${sent:-?} bytes taken (bound 32 MiB)"
rss_bounded $((rssmax - rss0)) "... VmRSS grew by $((rssmax - rss0)) kB (bound 16 MiB)"

# ==== requests for a registered client that never reads, through its flow
crlf() { printf '%s\r\n' "$@"; }
crlf "REGISTER sip:sip.example.test SIP/2.0" "Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK-reg" \
	"Max-Forwards: 70" "From: <sip:alice@sip.example.test>;tag=a1" "To: <sip:alice@sip.example.test>" \
	"Call-ID: reg-alice" "CSeq: 1 REGISTER" "Contact: <sip:alice@192.0.2.10:5061;transport=tls;ob>;expires=300" \
	"Content-Length: 0" "" >"$T_TMP/reg.in"
"$HOSTILE" -c "127.0.0.1:$PR" --records "$T_TMP/reg.in" --record-size 16384 --hold 30000 >"$T_TMP/alice.out" 2>&1 &
ALICE=$!
track_pid "$ALICE"
flow=
for ((i = 0; i < 200 && ${#flow} == 0; i++)); do
	flow=$(cat "$T_TMP"/reg/conn-*.bin 2>/dev/null | tr -d '\r' |
		sed -n 's/^Contact: .*<\(sip:alice@127.0.0.1:[0-9]*;[^>]*\)>.*/\1/p' | head -n 1)
	[ -n "$flow" ] || sleep 0.05
done
[ -n "$flow" ]
ok $? "a client registers (and never reads): its flow is $flow"
pad=$(head -c 900 /dev/zero | tr '\0' x)
crlf "OPTIONS $flow SIP/2.0" "Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-fl" "Max-Forwards: 69" \
	"From: <sip:bob@sip.example.test>;tag=b1" "To: <sip:alice@sip.example.test>" "Call-ID: fl-1" \
	"CSeq: 1 OPTIONS" "Content-Type: text/plain" "Content-Length: 900" "" >"$T_TMP/fl.in"
printf '%s' "$pad" >>"$T_TMP/fl.in"
mark_log
rm -f "$T_TMP/r5"
"$HOSTILE" -c "127.0.0.1:$FLOWP" --plain --options 4 --file "$T_TMP/fl.in" --ready "$T_TMP/r5" \
	>"$T_TMP/flood5.out" 2>&1 &
F=$!
track_pid "$F"
until_ready "$T_TMP/r5" "$F"
ok $? "the legacy server floods requests into that flow"
rssmax=0
while t_alive "$F"; do
	r=$(rss_kb "$D")
	[ -n "$r" ] && [ "$r" -gt "$rssmax" ] && rssmax=$r
	sleep 0.1
done
wait "$F"
untrack_pid "$F"
diag "the flood: $(cat "$T_TMP/flood5.out"); daemon VmRSS $rss0 -> max $rssmax kB"
rss_bounded $((rssmax - rss0)) "what waits for the client stays bounded: VmRSS grew by $((rssmax - rss0)) kB (bound 16 MiB)"
wait_new 'flow legacy=127\.0\.0\.1:[0-9]+ flow failed: the client does not read \(OPTIONS' 5
ok $? "log: flow failed: the client does not read (430 to the legacy server)"
kill "$ALICE" 2>/dev/null
wait_pid_exit "$ALICE" 10
untrack_pid "$ALICE"

# ==================================== a ClientHello announcing 16 MiB
mark_log
before=$(log_count "$T_TMP/ans/events.log" '^accept ')
ok_cmd "a ClientHello announcing 16 MiB, sent whole: the daemon closes before it is all sent" \
	"$HOSTILE" -c "127.0.0.1:$P" --big-hello 16777216 --timeout 8000
diag "$(cat "$T_OUT")"
like 'closed-after=' "$(cat "$T_OUT")" "... closed (not stalled or still open)"
wait_new 'listen=pub peer=127\.0\.0\.1:[0-9]+ refused: handshake too large \(more than 65536 bytes' 5
ok $? "log: refused: handshake too large"
is "$before" "$(log_count "$T_TMP/ans/events.log" '^accept ')" "... the backend got no connection"
is 1 "$(metric 'handshake too large')" "metrics: counted under handshake too large"
ok_cmd "a good client is still served" "$HOSTILE" -c "127.0.0.1:$P" --rtt 5

# ============================================================ message-timeout
mark_log
ok_cmd "a header that never ends, one byte each 200 ms" "$HOSTILE" -c "127.0.0.1:$P" --slow 10 --interval 200
diag "$(cat "$T_OUT")"
like 'open=0 closed=1' "$(cat "$T_OUT")" "... the daemon closed the connection"
ms=$(field first-close-ms "$T_OUT")
awk -v t="${ms:-0}" 'BEGIN { exit !(t >= 1500 && t < 8000) }'
ok $? "... after about message-timeout = 2s (${ms:-?} ms), although it was never idle"
wait_new 'listen=pub peer=127\.0\.0\.1:[0-9]+ refused: message timeout \([0-9]+ bytes of a message still incomplete' 5
ok $? "log: refused: message timeout"
wait_new 'listen=pub .* closed: message timeout;' 5
ok $? "log: closed: message timeout"
is 1 "$(metric 'message timeout')" "metrics: counted under message timeout"
grep -l 'X-Slow' "$T_TMP"/ans/conn-*.bin >/dev/null 2>&1
ok $((!$?)) "... nothing of the message reached the backend"
ok_cmd "a connection silent for longer than message-timeout between whole messages stays" \
	"$TLSCLIENT" -c "127.0.0.1:$P" --ca "$C/ca.crt" --hold 3000 --sip 2
like 'sent=2 ok=2' "$(cat "$T_OUT")" "... both answered"

# ======================================== tiny TLS records (cost per byte)
for ((i = 0; i < 100; i++)); do
	printf 'SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-t%s\r\nFrom: <sip:a@x.test>;tag=1\r\nTo: <sip:b@x.test>;tag=2\r\nCall-ID: t%s@x.test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' "$i" "$i"
done >"$T_TMP/tiny.bin"
mark_log
"$HOSTILE" -c "127.0.0.1:$P" --records "$T_TMP/tiny.bin" --record-size 1 --hold 1000 >"$T_TMP/tiny.out" 2>&1
diag "$(cat "$T_TMP/tiny.out")"
wait_new 'listen=pub peer=127\.0\.0\.1:[0-9]+ refused: records too small \(5[0-9]{3} records for 5[0-9]{3} bytes\)' 5
ok $? "$(wc -c <"$T_TMP/tiny.bin") bytes of SIP in 1-byte TLS records: cut after 4096 + bytes/4 records, about 5500 (log: refused: records too small)"
is 1 "$(metric 'records too small')" "metrics: counted under records too small"
for ((i = 0; i < 10000; i++)); do printf '\r\n\r\n'; done >"$T_TMP/pings.bin"
mark_log
ok_cmd "10000 CRLFCRLF keep-alives, each its own TLS record (4 bytes): not cut" \
	"$HOSTILE" -c "127.0.0.1:$P" --records "$T_TMP/pings.bin" --record-size 4 --hold 500
sleep 0.2
unlike 'records too small' "$(newlog)" "... no records too small refusal"

# ===================================================== max-connections-per-ip
mark_log
ok_cmd "five silent connections from one address to a listener with max-connections-per-ip = 3" \
	"$HOSTILE" -c "127.0.0.1:$PL" --slow 2 --idle --conns 5
diag "$(cat "$T_OUT")"
like 'open=3 closed=2' "$(cat "$T_OUT")" "... three kept, two closed at once"
wait_new 'listen=few peer=127\.0\.0\.1:[0-9]+ refused: too many connections from address \(3 open' 5
ok $? "log: refused: too many connections from address (3 open)"
is 2 "$(metric 'too many connections from address')" "metrics: counted under too many connections from address"
ok_cmd "once they are gone, the address is served again" "$TLSCLIENT" -c "127.0.0.1:$PL" --ca "$C/ca.crt" --sip 1
like 'sent=1 ok=1' "$(cat "$T_OUT")" "... answered"

mark_log
ok_cmd "the default on a listener without client certificates: 101 connections from one address" \
	"$HOSTILE" -c "127.0.0.1:$P" --slow 2 --idle --conns 101
like 'open=100 closed=1' "$(cat "$T_OUT")" "... 100 kept, the 101st closed"
wait_new 'listen=pub peer=127\.0\.0\.1:[0-9]+ refused: too many connections from address \(100 open' 5
ok $? "log: refused: too many connections from address (100 open)"
ok_cmd "an MTLS listener (client-auth = require) counts no address: 101 connections" \
	"$HOSTILE" -c "127.0.0.1:$PM" --slow 2 --idle --conns 101
like 'open=101 closed=0' "$(cat "$T_OUT")" "... all kept"

t_alive "$D"
ok $? "the daemon is still running"
stop_sidecar 10
is 0 "$SIDECAR_STATUS" "the daemon stops (status 0)"

done_testing
