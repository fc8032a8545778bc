#!/bin/bash
# 40-sip-framing.sh: the SIP framer on the TLS -> backend path, end to end
# (tlsclient / gnutls-cli -> the daemon -> t/recbackend), with
# max-message-size = 4k to keep the inputs small.
# Covers: every malformed or oversized case of the SIP issue (too large,
# header block that never ends, bad / negative / conflicting / too large /
# missing Content-Length, a start line that is not SIP, a NUL byte). For each:
# a good message sent before it on the same connection is delivered whole and
# answered, the peer gets a valid SIP error response with the request's
# Via/From/To/Call-ID/CSeq (none when the start line is not SIP), the log has
# the reason word, nothing of the bad message reaches the backend, the
# connection is closed and the daemon serves the next client.
# Also: the exact size limit, CRLF keep-alives (ping answered by the daemon,
# never forwarded; a lone CRLF tolerated), a message split over many small
# TLS records, pipelining, and sip-framing = off as the control case.
# The "send, wait for the answer, send again" steps use gnutls-cli reading a
# FIFO (tlsclient sends its input in one go).
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2154 # BACKEND_PORT_<NAME> are set by start_backend

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

require_sidecar
for b in "$RECBACKEND" "$TLSCLIENT"; do
	[ -x "$b" ] || bail_out "not built: $b"
done
require_cmd gnutls-cli mkfifo
certs_dir >/dev/null || skip_all "no test certificates (t/mkcerts.sh)"
C=$CERTS
MAX=4096

plan 91

# ---------------------------------------------------------------- helpers

# SIP messages. The test requests all look alike; CALLID tells them apart.
# head_of FILE METHOD CALLID CSEQ: start line and the five headers an error
# response must copy, nothing else (no Content-Length, no empty line).
head_of() {
	printf '%s sip:svc@example.test SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5099;branch=z9hG4bK-%s\r\nFrom: "Tester" <sip:tester@example.test>;tag=from-%s\r\nTo: <sip:svc@example.test>\r\nCall-ID: %s\r\nCSeq: %s %s\r\nMax-Forwards: 70\r\n' \
		"$2" "$3" "$3" "$3" "$4" "$2" >"$1"
}
# good_msg FILE CALLID [CSEQ [BODY]]: a complete OPTIONS request.
good_msg() {
	local body=${4-}
	head_of "$1" OPTIONS "$2" "${3:-1}"
	if [ -n "$body" ]; then
		printf 'Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s' "${#body}" "$body" >>"$1"
	else
		printf 'Content-Length: 0\r\n\r\n' >>"$1"
	fi
}
# error_resp CODE PHRASE CALLID CSEQ METHOD: the response the daemon must
# send (the To tag it adds is written as TAG, see norm_tag).
error_resp() {
	printf 'SIP/2.0 %s %s\r\nVia: SIP/2.0/TLS 127.0.0.1:5099;branch=z9hG4bK-%s\r\nFrom: "Tester" <sip:tester@example.test>;tag=from-%s\r\nTo: <sip:svc@example.test>;tag=TAG\r\nCall-ID: %s\r\nCSeq: %s %s\r\nContent-Length: 0\r\n\r\n' \
		"$1" "$2" "$3" "$3" "$3" "$4" "$5"
}
# norm_tag: the To tag added by the daemon (hex) becomes TAG.
norm_tag() {
	sed -E 's/^(To: [^\r]*);tag=[0-9a-f]{1,16}(\r?)$/\1;tag=TAG\2/'
}
# after_first FILE: the bytes of FILE after its first SIP message (through
# the first empty line): line by line, so only for text.
after_first() {
	local line seen=0
	while IFS= read -r line || [ -n "$line" ]; do
		if [ "$seen" = 1 ]; then
			printf '%s\n' "$line"
		elif [ "$line" = $'\r' ]; then
			seen=1
		fi
	done <"$1"
}

# accepts DIR: connections the backend recording into DIR has accepted.
accepts() {
	log_count "$1/events.log" '^accept '
}
# backend_closed DIR N: wait (5 s) until the backend saw its connection N
# close, so that its recording is complete; false if it did not.
backend_closed() {
	wait_for_log "$1/events.log" "^close $2 " 5
}
# conn_file DIR N: the backend's recording of connection N (may be absent).
conn_file() {
	echo "$1/conn-$2.bin"
}
size_of() {
	stat -c %s -- "$1" 2>/dev/null || echo 0
}


# A stepwise TLS client: gnutls-cli reads a FIFO that the test writes into,
# so one connection can send, wait for an answer, and send again. gnutls-cli
# only exits when the server closes (or is killed): the FIFO stays open.
STEP_PID=
STEP_FD=
STEP_OUT=
step_open() { # step_open NAME PORT
	local fifo=$T_TMP/$1.fifo
	STEP_OUT=$T_TMP/$1.out
	rm -f "$fifo"
	mkfifo "$fifo" || return 1
	gnutls-cli --insecure --logfile="$T_TMP/$1.cli.txt" -p "$2" 127.0.0.1 \
		<"$fifo" >"$STEP_OUT" 2>"$T_TMP/$1.cli.err" &
	STEP_PID=$!
	track_pid "$STEP_PID"
	exec {STEP_FD}>"$fifo"
}
step_send() { # step_send FILE
	cat -- "$1" >&"$STEP_FD"
}
step_close() {
	[ -n "$STEP_FD" ] && exec {STEP_FD}>&-
	STEP_FD=
	if [ -n "$STEP_PID" ]; then
		wait_pid_exit "$STEP_PID" 3 || kill "$STEP_PID" 2>/dev/null
		wait "$STEP_PID" 2>/dev/null
		untrack_pid "$STEP_PID"
	fi
	STEP_PID=
}

# next_client DESC: the daemon still relays a plain OPTIONS and its 200.
next_client() {
	ok_cmd "$1" "$TLSCLIENT" -c "127.0.0.1:$P" --sip 1 --read-timeout 3000
}

# ------------------------------------------------------------------ setup
start_backend ans -a || bail_out "cannot start the answering backend"
start_backend raw -x || bail_out "cannot start the recording backend"
ANS=$T_TMP/ans
RAW=$T_TMP/raw
P=$(free_port)
PRAW=$(free_port)
conf=$T_TMP/sidecar.conf
cat >"$conf" <<EOF
[global]
allow-root = yes
log-level = info
max-message-size = 4k
[listen sip]
bind = 127.0.0.1:$P
backend = 127.0.0.1:$BACKEND_PORT_ans
topology = off             # byte-exact relay checks; translation: t/44-topology.sh
cert = $C/server.crt
key = $C/server.key
[listen raw]
bind = 127.0.0.1:$PRAW
backend = 127.0.0.1:$BACKEND_PORT_raw
topology = off             # byte-exact relay checks; translation: t/44-topology.sh
cert = $C/server.crt
key = $C/server.key
sip-framing = off
EOF
start_sidecar "$conf" "$P" "$PRAW" || bail_out "the daemon did not start"

# --------------------------------------------------- malformed / oversized
#
# bad_case NAME CODE PHRASE REASON DETAIL_RE FILE [METHOD CSEQ]
#   sends a good OPTIONS, waits for its 200, then FILE (a bad request with
#   Call-ID bad-NAME, made by head_of unless CODE is -) on the same
#   connection. CODE - means: no response expected (not a SIP request).
#   6 test points.
bad_case() {
	local name=$1 code=$2 phrase=$3 reason=$4 detail=$5 file=$6 method=${7:-OPTIONS} cseq=${8:-2}
	local n got want
	n=$(($(accepts "$ANS") + 1))
	good_msg "$T_TMP/good-$name.msg" "good-$name" 1
	mark_log
	step_open "$name" "$P" || bail_out "cannot start gnutls-cli"
	step_send "$T_TMP/good-$name.msg"
	wait_for_log "$STEP_OUT" "^Call-ID: good-$name" 5
	ok $? "$name: a good request before it on the connection is answered"
	step_send "$file"
	wait_pid_exit "$STEP_PID" 5
	ok $? "$name: the daemon closes the connection after it"
	step_close
	if [ "$code" = - ]; then
		got=$(after_first "$STEP_OUT")
		is "" "$got" "$name: no response (not a SIP request)"
	else
		want=$(error_resp "$code" "$phrase" "bad-$name" "$cseq" "$method" | tr -d '\r')
		got=$(after_first "$STEP_OUT" | norm_tag | tr -d '\r')
		# compare without CR for a readable diff, then check the CRs
		if [ "$want" = "$got" ] && [ "$(after_first "$STEP_OUT" | grep -vc $'\r$')" = 0 ]; then
			pass "$name: $code $phrase with the request's Via/From/To/Call-ID/CSeq, Content-Length: 0"
		else
			fail "$name: $code $phrase with the request's Via/From/To/Call-ID/CSeq, Content-Length: 0"
			diag "got:" "$(after_first "$STEP_OUT" | cat -A)" "expected:" "$want"
		fi
	fi
	wait_new "peer=127\.0\.0\.1:[0-9]+ refused: $reason \(.*$detail.*\)" 5
	ok $? "$name: log says 'refused: $reason'"
	if backend_closed "$ANS" "$n"; then
		files_equal "$T_TMP/good-$name.msg" "$(conn_file "$ANS" "$n")" \
			"$name: the backend got the good request whole and nothing of the bad one"
	else
		fail "$name: the backend connection was closed"
	fi
	next_client "$name: the daemon serves the next client"
}

# 1. one byte above max-message-size (the size is only known from
#    Content-Length: refused at that header, before the body)
f=$T_TMP/toolarge.msg
head_of "$f" OPTIONS bad-toolarge 2
printf 'Content-Type: text/plain\r\n' >>"$f"
# Content-Length line + empty line: "Content-Length: NNNN\r\n\r\n" = 24 bytes
blen=$((MAX + 1 - $(size_of "$f") - 24))
printf 'Content-Length: %d\r\n\r\n' "$blen" >>"$f"
head -c "$blen" /dev/zero | tr '\0' 'x' >>"$f"
is $((MAX + 1)) "$(size_of "$f")" "(the oversized message is max-message-size + 1 bytes)"
bad_case toolarge 513 "Message Too Large" "message too large" "" "$f"

# 2. a header block that never ends (many header lines, no empty line)
f=$T_TMP/endless.msg
head_of "$f" OPTIONS bad-endless 2
for ((i = 0; i < 100; i++)); do
	printf 'X-Pad-%03d: 0123456789012345678901234567890123456789\r\n' "$i" >>"$f"
done
bad_case endless 513 "Message Too Large" "message too large" "" "$f"

# 3. ... or one header line that never ends
f=$T_TMP/longline.msg
head_of "$f" OPTIONS bad-longline 2
printf 'X-Long: ' >>"$f"
head -c $((MAX + 100)) /dev/zero | tr '\0' 'y' >>"$f"
bad_case longline 513 "Message Too Large" "message too large" "" "$f"

# 4.-6. Content-Length negative, non-numeric, duplicated with other values
f=$T_TMP/clneg.msg
head_of "$f" OPTIONS bad-clneg 2
printf 'Content-Length: -1\r\n\r\n' >>"$f"
bad_case clneg 400 "Bad Request" "malformed message" "Content-Length" "$f"

f=$T_TMP/clalpha.msg
head_of "$f" OPTIONS bad-clalpha 2
printf 'Content-Length: 1O\r\n\r\n0' >>"$f"
bad_case clalpha 400 "Bad Request" "malformed message" "Content-Length" "$f"

f=$T_TMP/cldup.msg
head_of "$f" INVITE bad-cldup 7
printf 'Content-Length: 4\r\nl: 0\r\n\r\nbody' >>"$f"
bad_case cldup 400 "Bad Request" "malformed message" "Content-Length" "$f" INVITE 7

# 7. Content-Length above the limit
f=$T_TMP/clhuge.msg
head_of "$f" OPTIONS bad-clhuge 2
printf 'Content-Length: 99999999999999999999999\r\n\r\nbody' >>"$f"
bad_case clhuge 513 "Message Too Large" "message too large" "Content-Length" "$f"

# 8. no Content-Length (mandatory on a stream)
f=$T_TMP/clmissing.msg
head_of "$f" OPTIONS bad-clmissing 2
printf '\r\n' >>"$f"
bad_case clmissing 400 "Bad Request" "malformed message" "Content-Length" "$f"

# 9. a NUL byte in a header
f=$T_TMP/nul.msg
head_of "$f" OPTIONS bad-nul 2
printf 'Subject: a\0b\r\nContent-Length: 0\r\n\r\n' >>"$f"
bad_case nul 400 "Bad Request" "malformed message" "NUL" "$f"

# 10. a start line that is not SIP: no Via to answer to, so no response
f=$T_TMP/http.msg
printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nVia: SIP/2.0/TLS x;branch=z9hG4bK-http\r\nContent-Length: 0\r\n\r\n' >"$f"
bad_case http - "" "malformed message" "start line" "$f"

# A good and a bad request in ONE write: the good one is still delivered
# whole (and its answer is not lost), the bad one not at all.
n=$(($(accepts "$ANS") + 1))
good_msg "$T_TMP/g1.msg" good-onewrite 1 "hello"
cat "$T_TMP/g1.msg" "$T_TMP/nul.msg" >"$T_TMP/onewrite.msg"
"$TLSCLIENT" -c "127.0.0.1:$P" --send "$T_TMP/onewrite.msg" --out "$T_TMP/onewrite.out" \
	--read-timeout 3000 --expect-close >"$T_OUT" 2>&1
is 0 "$?" "good + bad request in one write: the daemon closes the connection"
backend_closed "$ANS" "$n"
files_equal "$T_TMP/g1.msg" "$(conn_file "$ANS" "$n")" \
	"... the backend got the good request whole and nothing of the bad one"
is "200 good-onewrite 400 bad-nul" \
	"$(awk '/^SIP\/2\.0 /{s=$2} /^Call-ID:/{print s, $2}' "$T_TMP/onewrite.out" | tr -d '\r' | sort | xargs)" \
	"... the peer gets the 200 for the good request and the 400 for the bad one"

# --------------------------------------------------------------- the limit
# exactly max-message-size: accepted whole
n=$(($(accepts "$ANS") + 1))
f=$T_TMP/exact.msg
head_of "$f" OPTIONS exact 1
printf 'Content-Type: text/plain\r\n' >>"$f"
blen=$((MAX - $(size_of "$f") - 24))
printf 'Content-Length: %d\r\n\r\n' "$blen" >>"$f"
head -c "$blen" /dev/zero | tr '\0' 'z' >>"$f"
is "$MAX" "$(size_of "$f")" "(this message is exactly max-message-size bytes)"
ok_cmd "a message of exactly max-message-size is answered" "$TLSCLIENT" -c "127.0.0.1:$P" \
	--send "$f" --out "$T_TMP/exact.out" --read-timeout 1000
like $'^SIP/2.0 200 OK\r\n.*Call-ID: exact' "$(cat "$T_TMP/exact.out")" "... with a 200"
backend_closed "$ANS" "$n"
files_equal "$f" "$(conn_file "$ANS" "$n")" "... and delivered byte for byte"

# -------------------------------------------------------------- keep-alives
mark_log
n=$(($(accepts "$ANS") + 1))
printf '\r\n\r\n' >"$T_TMP/ping"
ok_cmd "a CRLFCRLF ping alone" "$TLSCLIENT" -c "127.0.0.1:$P" --send "$T_TMP/ping" \
	--out "$T_TMP/ping.out" --read-timeout 700
printf '\r\n' >"$T_TMP/pong"
files_equal "$T_TMP/pong" "$T_TMP/ping.out" "... is answered with CRLF by the daemon"
wait_for_log "$ANS/events.log" "^close $n 0\$" 5
ok $? "... and not forwarded: the backend received 0 bytes"
[ ! -s "$(conn_file "$ANS" "$n")" ]
ok $? "... (no bytes in the backend's recording)"

n=$(($(accepts "$ANS") + 1))
good_msg "$T_TMP/k1.msg" keep-1 1
good_msg "$T_TMP/k2.msg" keep-2 2 "two"
good_msg "$T_TMP/k3.msg" keep-3 3
cat "$T_TMP/ping" "$T_TMP/k1.msg" "$T_TMP/pong" "$T_TMP/k2.msg" "$T_TMP/ping" "$T_TMP/k3.msg" \
	>"$T_TMP/keep.in"
cat "$T_TMP/k1.msg" "$T_TMP/k2.msg" "$T_TMP/k3.msg" >"$T_TMP/keep.want"
ok_cmd "ping, request, lone CRLF, request, ping, request in one write" "$TLSCLIENT" \
	-c "127.0.0.1:$P" --send "$T_TMP/keep.in" --out "$T_TMP/keep.out" --read-timeout 1000
is "keep-1 keep-2 keep-3" "$(grep -a '^Call-ID:' "$T_TMP/keep.out" | tr -d '\r' | cut -d' ' -f2 | xargs)" \
	"... all three requests are answered, in order"
is 3 "$(grep -ac '^SIP/2.0 200 OK' "$T_TMP/keep.out")" "... with 200s"
# the daemon answers both pings while it reads them, before any answer
# from the backend can come back
is "0d 0a 0d 0a 53" "$(head -c 5 "$T_TMP/keep.out" | od -An -tx1 | xargs)" \
	"... each of the two pings is answered with CRLF by the daemon itself"
backend_closed "$ANS" "$n"
files_equal "$T_TMP/keep.want" "$(conn_file "$ANS" "$n")" \
	"... the backend gets the three requests, no ping, no stray CRLF"
newlog | grep -q 'refused'
ok $((!$?)) "... keep-alives are not refused"

# ------------------------------------------------- split over small records
n=$(($(accepts "$ANS") + 1))
f=$T_TMP/split.msg
good_msg "$f" split-1 1 "a body that crosses several small TLS records, to be delivered whole"
size=$(size_of "$f")
step_open split "$P" || bail_out "cannot start gnutls-cli"
for ((off = 0; off < size - 9; off += 9)); do
	tail -c +"$((off + 1))" "$f" | head -c 9 >"$T_TMP/piece"
	step_send "$T_TMP/piece"
	sleep 0.01
done
sleep 0.3
[ ! -s "$(conn_file "$ANS" "$n")" ]
ok $? "a request sent 9 bytes at a time: nothing reaches the backend before it is complete"
tail -c +"$((off + 1))" "$f" >"$T_TMP/piece"
step_send "$T_TMP/piece"
wait_for_log "$STEP_OUT" '^Call-ID: split-1' 5
ok $? "... once complete it is answered"
step_close
backend_closed "$ANS" "$n"
files_equal "$f" "$(conn_file "$ANS" "$n")" "... and delivered whole, byte for byte"

# ----------------------------------------------------------- pipelining
n=$(($(accepts "$ANS") + 1))
: >"$T_TMP/pipe.in"
for i in 1 2 3 4 5 6; do
	if [ $((i % 2)) = 0 ]; then
		good_msg "$T_TMP/p$i.msg" "pipe-$i" "$i" "body of request $i"
	else
		good_msg "$T_TMP/p$i.msg" "pipe-$i" "$i"
	fi
	cat "$T_TMP/p$i.msg" >>"$T_TMP/pipe.in"
done
# one with a compact Content-Length and a body containing a blank line
printf 'MESSAGE sip:svc@example.test SIP/2.0\r\nv: SIP/2.0/TLS 127.0.0.1:5099;branch=z9hG4bK-pipe-7\r\nf: <sip:t@example.test>;tag=7\r\nt: <sip:svc@example.test>\r\ni: pipe-7\r\nCSeq: 7 MESSAGE\r\nl: 12\r\n\r\nab\r\n\r\ncd\r\n\r\n' \
	>>"$T_TMP/pipe.in"
ok_cmd "seven pipelined requests in one write" "$TLSCLIENT" -c "127.0.0.1:$P" \
	--send "$T_TMP/pipe.in" --out "$T_TMP/pipe.out" --read-timeout 1000
is "pipe-1 pipe-2 pipe-3 pipe-4 pipe-5 pipe-6 pipe-7" \
	"$(grep -aiE '^(Call-ID|i):' "$T_TMP/pipe.out" | tr -d '\r' | cut -d' ' -f2 | xargs)" \
	"... all answered in order"
backend_closed "$ANS" "$n"
files_equal "$T_TMP/pipe.in" "$(conn_file "$ANS" "$n")" "... delivered in order, byte for byte"

# ------------------------------------------------ sip-framing = off: control
# What the framer refuses passes untouched when framing is off.
mark_log
n=$(($(accepts "$RAW") + 1))
cat "$T_TMP/ping" "$T_TMP/http.msg" "$T_TMP/nul.msg" "$T_TMP/clneg.msg" "$T_TMP/toolarge.msg" \
	"$T_TMP/endless.msg" >"$T_TMP/raw.in"
ok_cmd "sip-framing = off: a ping and malformed messages are sent" "$TLSCLIENT" \
	-c "127.0.0.1:$PRAW" --send "$T_TMP/raw.in" --out "$T_TMP/raw.out" --read-timeout 700
[ ! -s "$T_TMP/raw.out" ]
ok $? "... the daemon answers nothing (no CRLF, no 400/513)"
backend_closed "$RAW" "$n"
files_equal "$T_TMP/raw.in" "$(conn_file "$RAW" "$n")" "... the backend gets every byte untouched"
newlog | grep -q 'refused'
ok $((!$?)) "... nothing is refused"

# ------------------------------------------------------------------ the end
next_client "the daemon still serves clients at the end"
ok_cmd "the daemon is still running" kill -0 "$SIDECAR_PID"
stop_sidecar 10
is 0 "$SIDECAR_STATUS" "SIGTERM: exit status 0"

done_testing
