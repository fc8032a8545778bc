#!/bin/bash
# Several workers: each has its own event loop and SO_REUSEPORT sockets;
# connections are served whichever worker the kernel picks, a reload reaches
# every worker, max-connections counts across all of them, SIGTERM stops
# them all.
. "${T_SRC:-$(dirname "$0")}/lib.sh"
require_sidecar
certs_dir
plan 11

start_backend be -a
port=$(free_port) met=$(free_port)
conf=$T_TMP/w.conf
write_conf() { # CERT MAXCONN
	cat > "$conf" <<EOF2
[global]
allow-root = yes
workers = 3
max-connections = $2
metrics = 127.0.0.1:$met
[listen pub]
bind = 127.0.0.1:$port
backend = 127.0.0.1:$BACKEND_PORT
cert = $CERTS/$1.crt
key = $CERTS/$1.key
EOF2
}
write_conf server 100
start_sidecar "$conf" "$port" || bail_out "sidecar did not start"
like "3 workers" "$(cat "$SIDECAR_LOG")" "log names the workers"
threads=$(ls "/proc/$SIDECAR_PID/task" | wc -l)
ok "$([ "$threads" -ge 4 ]; echo $?)" "at least 4 threads (main + 3 workers): $threads"
is 1 "$(log_count "$SIDECAR_LOG" "listening on 127.0.0.1:$port")" "one 'listening' line for the listener"

printf 'OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bKw\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: w1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' > "$T_TMP/req"
serials() { # N: the certificate serial each of N new connections was shown
	local i
	for ((i = 0; i < $1; i++)); do
		"$TLSCLIENT" -c "127.0.0.1:$port" --ca "$CERTS/ca.crt" --send "$T_TMP/req" --read-timeout 300 \
			--print-info 2>&1 >/dev/null | sed -n 's/.*cert-serial=\([0-9a-f]*\).*/\1/p'
	done
}
s1=$(serials 24 | sort | uniq -c)
want1=$("$TLSCLIENT" --show-serial "$CERTS/server.crt" | sed 's/^cert-serial=//')
is "24 $want1" "$(echo $s1)" "24 connections, all served with server.crt"
is 24 "$(log_count "$SIDECAR_LOG" 'closed: ')" "24 closed lines"
metric() { exec 3<>"/dev/tcp/127.0.0.1/$met"; printf 'GET / HTTP/1.0\r\n\r\n' >&3; timeout 5 cat <&3 | tr -d '\r' | grep "^$1 " | awk '{print $NF}'; exec 3<&-; }
is 24 "$(metric sip_sidecar_handshakes_total)" "metrics sum the workers' handshakes"

# a reload reaches every worker
write_conf server2 100
reload_sidecar
is 0 "$?" "reload ok"
want2=$("$TLSCLIENT" --show-serial "$CERTS/server2.crt" | sed 's/^cert-serial=//')
s2=$(serials 24 | sort | uniq -c)
is "24 $want2" "$(echo $s2)" "after the reload, every worker presents server2.crt"

# max-connections counts across workers
write_conf server2 2
reload_sidecar
"$TLSCLIENT" -c "127.0.0.1:$port" --ca "$CERTS/ca.crt" --hold 3000 --send "$T_TMP/req" --read-timeout 3500 >/dev/null 2>&1 &
h1=$!
"$TLSCLIENT" -c "127.0.0.1:$port" --ca "$CERTS/ca.crt" --hold 3000 --send "$T_TMP/req" --read-timeout 3500 >/dev/null 2>&1 &
h2=$!
track_pid "$h1"; track_pid "$h2"
wait_for_log_count "$SIDECAR_LOG" 'accepted TLS' 50 5
before=$(log_count "$SIDECAR_LOG" 'too many connections')
for i in 1 2 3 4; do
	"$TLSCLIENT" -c "127.0.0.1:$port" --ca "$CERTS/ca.crt" --send "$T_TMP/req" --read-timeout 300 >/dev/null 2>&1
done
wait_for_log "$SIDECAR_LOG" 'too many connections' 3
after=$(log_count "$SIDECAR_LOG" 'too many connections')
ok "$([ "$after" -gt "$before" ]; echo $?)" "a third connection is refused whichever worker takes it"
wait "$h1" "$h2" 2>/dev/null
untrack_pid "$h1"; untrack_pid "$h2"

stop_sidecar
is 0 "$SIDECAR_STATUS" "exit 0 on SIGTERM"
like "stopped" "$(tail -n 3 "$SIDECAR_LOG")" "log: stopped"
