#!/bin/bash
# hostile-clients.sh: measures what the daemon costs under hostile clients,
# on loopback, with the tools the test suite builds (t/hostile, t/tlsclient,
# t/recbackend). Run from a built tree:  bench/hostile-clients.sh [WHAT...]
#   records  CPU of the daemon per MiB of SIP sent in 4-byte TLS records (the
#            smallest average it accepts: 1-byte records are cut),
#            and in 16 KiB records (the ratio is the "cost per byte" bound)
#   stalled  100 clients x 10 MiB into a legacy server that does not read:
#            the daemon's peak VmRSS; then the server reads, and every
#            connection's bytes are compared (byte-exact)
#   crowd    500 connections that never send a ClientHello + 500 sending a
#            never-ending header at 1 byte/s each: a good client's round
#            trips (p50, p90, max)
# Environment: SIDECAR (default sidecar/sip-sidecar), BASE_PORT (default 27000).
# Prints one "result: ..." line per measurement.
# SPDX-License-Identifier: MIT
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
SIDECAR=${SIDECAR:-$top/sidecar/sip-sidecar}
T=$top/t
C=$T/certs
[ -f "$C/.done" ] || sh "$T/mkcerts.sh" "$C" >/dev/null
BASE=${BASE_PORT:-27000}
tmp=$(mktemp -d /tmp/hostile-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
ulimit -n "$(ulimit -H -n)" 2>/dev/null

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
wait_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
# daemon PORT BACKEND-PORT [EXTRA-LINES]: starts the daemon; sets DPID
daemon() {
	cat >"$tmp/d.conf" <<EOF
[global]
allow-root = yes
log-level = warn
workers = 1
handshake-timeout = 120s
[listen b]
bind = 127.0.0.1:$1
backend = 127.0.0.1:$2
cert = $C/server.crt
key = $C/server.key
${PER_IP_LINE-max-connections-per-ip = unlimited}
${3:-}
EOF
	"$SIDECAR" -c "$tmp/d.conf" >>"$tmp/d.log" 2>&1 &
	DPID=$!
	pids+=("$DPID")
	wait_port "$1" || { echo "daemon did not start"; tail "$tmp/d.log"; exit 1; }
}
stop_daemon() {
	kill "$DPID"
	wait "$DPID" 2>/dev/null
}
backend() { # answering, records nothing; sets BPORT
	rm -f "$tmp/bport"
	"$T/recbackend" -l 127.0.0.1:0 -a -P "$tmp/bport" >/dev/null 2>&1 &
	pids+=("$!")
	for ((i = 0; i < 100; i++)); do [ -s "$tmp/bport" ] && break; sleep 0.05; done
	BPORT=$(cat "$tmp/bport")
}

records() {
	backend
	daemon $((BASE + 1)) "$BPORT"
	# SIP responses (relayed, never answered): 1 MiB of them
	: >"$tmp/msgs"
	i=0
	while [ "$(stat -c %s "$tmp/msgs")" -lt 1048576 ]; do
		for j in $(seq 1 50); do
			i=$((i + 1))
			printf 'SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-%s\r\nFrom: <sip:a@x.test>;tag=1\r\nTo: <sip:b@x.test>;tag=2\r\nCall-ID: %s@x.test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' "$i" "$i"
		done >>"$tmp/msgs"
	done
	for k in 1 2 3 4; do cat "$tmp/msgs"; done >"$tmp/bulk"
	small=$(stat -c %s "$tmp/msgs")
	big=$(stat -c %s "$tmp/bulk")
	t0=$(ticks "$DPID")
	"$T/hostile" -c "127.0.0.1:$((BASE + 1))" --records "$tmp/msgs" --record-size 4 --hold 1000 >/dev/null
	t1=$(ticks "$DPID")
	"$T/hostile" -c "127.0.0.1:$((BASE + 1))" --records "$tmp/bulk" --record-size 512 --hold 1000 >/dev/null
	t1b=$(ticks "$DPID")
	for k in 1 2 3 4 5 6 7 8 9 10; do
		"$T/hostile" -c "127.0.0.1:$((BASE + 1))" --records "$tmp/bulk" --record-size 16384 >/dev/null
	done
	sleep 1
	t2=$(ticks "$DPID")
	stop_daemon
	awk -v a=$((t1 - t0)) -v m=$((t1b - t1)) -v b=$((t2 - t1b)) -v s="$small" -v g="$big" 'BEGIN {
		one = a / (s / 1048576); mid = m / (g / 1048576); bulk = b / (10 * g / 1048576);
		printf "result: records: daemon CPU (clock ticks) per MiB of SIP: 4-byte records %.0f (%d ticks for %d bytes), 512-byte records %.1f, 16 KiB records %.1f (%d ticks for 10 x %d bytes); 4-byte/16 KiB ratio %.0f, 4-byte/512-byte ratio %.0f\n", one, a, s, mid, bulk, b, g, (bulk > 0 ? one / bulk : 0), (mid > 0 ? one / mid : 0) }'
}

stalled() {
	# a legacy server that accepts, reads nothing for 20 s, then reads all
	cat >"$tmp/stall.py" <<'EOF'
import hashlib, selectors, socket, sys, time
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0)); ls.listen(1024)
open(sys.argv[1], "w").write(str(ls.getsockname()[1]))
stall_until = time.time() + float(sys.argv[2])
conns = []
ls.setblocking(False)
while time.time() < stall_until:
    try:
        c, _ = ls.accept(); conns.append(c)
    except BlockingIOError:
        time.sleep(0.01)
sel = selectors.DefaultSelector()
state = {}
def add(c):
    c.setblocking(False); sel.register(c, selectors.EVENT_READ); state[c] = [hashlib.md5(), 0]
for c in conns:
    add(c)
sel.register(ls, selectors.EVENT_READ)
quiet = time.time()
while time.time() - quiet < 10:
    for key, _ in sel.select(1):
        if key.fileobj is ls:
            add(ls.accept()[0]); quiet = time.time(); continue
        c = key.fileobj; d = c.recv(1 << 20)
        if d:
            state[c][0].update(d); state[c][1] += len(d); quiet = time.time()
        else:
            sel.unregister(c); print(state[c][1], state[c][0].hexdigest()); del state[c]; c.close()
for c, (h, n) in state.items():
    print(n, h.hexdigest())
EOF
	python3 "$tmp/stall.py" "$tmp/sport" 25 >"$tmp/stall.out" 2>&1 &
	spid=$!
	pids+=("$spid")
	for ((i = 0; i < 100; i++)); do [ -s "$tmp/sport" ] && break; sleep 0.05; done
	daemon $((BASE + 2)) "$(cat "$tmp/sport")" "sip-framing = off"
	head -c $((10 * 1024 * 1024)) /dev/urandom >"$tmp/10m"
	want=$(md5sum <"$tmp/10m" | cut -d' ' -f1)
	r0=$(rss "$DPID")
	cl=()
	for i in $(seq 1 100); do
		"$T/tlsclient" -c "127.0.0.1:$((BASE + 2))" -q --send "$tmp/10m" --half-close --read-timeout 60000 \
			--handshake-timeout 60000 \
			--max-time 120000 >/dev/null 2>&1 &
		cl+=("$!")
	done
	peak=$r0
	while kill -0 "$spid" 2>/dev/null; do
		r=$(rss "$DPID")
		[ "$r" -gt "$peak" ] && peak=$r
		sleep 0.2
	done
	for p in "${cl[@]}"; do kill "$p" 2>/dev/null; done
	wait "${cl[@]}" 2>/dev/null
	good=$(grep -c "^$((10 * 1024 * 1024)) $want\$" "$tmp/stall.out")
	[ -n "${KEEP_OUT:-}" ] && cp "$tmp/stall.out" "$KEEP_OUT"
	stop_daemon
	echo "result: stalled: 100 x 10 MiB into a legacy server that read nothing for 25 s: daemon VmRSS $r0 kB -> peak $peak kB; $good of 100 connections delivered byte-exact once it read"
}

crowd() {
	backend
	daemon $((BASE + 3)) "$BPORT"
	r0=$(rss "$DPID")
	"$T/hostile" -c "127.0.0.1:$((BASE + 3))" --slow 40 --idle --conns 500 --ready "$tmp/idle.ready" >"$tmp/idle.out" 2>&1 &
	pids+=("$!")
	"$T/hostile" -c "127.0.0.1:$((BASE + 3))" --slow 40 --conns 500 --interval 1000 --ready "$tmp/slow.ready" >"$tmp/slow.out" 2>&1 &
	pids+=("$!")
	for ((i = 0; i < 600; i++)); do [ -e "$tmp/idle.ready" ] && [ -e "$tmp/slow.ready" ] && break; sleep 0.05; done
	sleep 2
	out=$("$T/hostile" -c "127.0.0.1:$((BASE + 3))" --rtt 200)
	r1=$(rss "$DPID")
	n=$(find "/proc/$DPID/fd" -mindepth 1 | wc -l)
	stop_daemon
	echo "result: crowd: 500 silent + 500 slow senders ($n daemon descriptors, VmRSS $r0 -> $r1 kB): good client $out"
}

for what in "${@:-records stalled crowd}"; do
	for w in $what; do "$w"; done
done
