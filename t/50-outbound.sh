#!/bin/bash
# 50-outbound.sh: [connect] sections, the legacy server's outbound path
# (plaintext on loopback -> MTLS to a peer server).
#
# The test peer is a second sip-sidecar ("peer", log peer.log) with one MTLS
# [listen] per server certificate of the test PKI, each requiring client
# certificates from ca.crt, with identity-header, in front of its own
# recbackend -a. The daemon under test (sidecar.log) has one [connect] per
# case, each pointing at one of those listeners; t/tcpclient plays the
# legacy server. Cases:
#   - good server (server.crt): 200 OK back, with the server's identity;
#     the peer's backend saw OUR identity (peer.example.test, client.crt)
#   - refused: wrong name, unknown CA (our ca = ca2.crt), expired, revoked
#     (crl = ca.crl), server cert without the server key purpose; and a
#     server address where nothing listens ("unreachable"). Each: the log
#     line with the reason word, the legacy connection is closed with
#     nothing sent back, the peer's backend received nothing (so none of the
#     legacy bytes left the host unencrypted), and a good connection works
#     afterwards
#   - bytes written before the handshake finishes are held and delivered
#     (the peer daemon is SIGSTOPped meanwhile, so the order is certain),
#     also when the legacy server half-closes right after them
#   - server = localhost:PORT (a name, resolved off the loop); resumption
#     ("resumed" on the second connection, per [connect])
#   - 1 MiB each way byte-exact (sip-framing = off on both sides,
#     recbackend -e); 1 MiB then half-close: all of it reaches the far end
#   - with a C compiler: a getaddrinfo() shim (LD_PRELOAD, this daemon
#     only, names *.sip-sidecar.test only, read from a file on every call)
#     checks that every address is tried in turn (::1 has no listener,
#     127.0.0.1 has) and that each new connection resolves again
# Not tested: connect-timeout against a blackhole (no such thing on loopback).
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2154 # BACKEND_PORT_<NAME> are set by start_backend

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

require_sidecar
certs_dir >/dev/null || skip_all "no test certificates (certtool missing?)"
for b in "$RECBACKEND" "$TCPCLIENT" "$TLSCLIENT"; do
	[ -x "$b" ] || bail_out "not built: $b"
done
HDR=X-TLS-Peer-Identity

# --------------------------------------------- optional resolver shim
SHIM=
SHIM_HOSTS=$T_TMP/gai-hosts
cat >"$T_TMP/gai-shim.c" <<'EOF'
/* getaddrinfo() for names ending in .sip-sidecar.test: the addresses listed
 * for them in $GAI_SHIM_HOSTS ("NAME ADDRESS" lines), in file order, read
 * on every call. Everything else goes to the real getaddrinfo(). */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		struct addrinfo **res)
{
	static const char suffix[] = ".sip-sidecar.test";
	gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
	const char *path = getenv("GAI_SHIM_HOSTS");
	size_t n = node ? strlen(node) : 0;
	if (!path || n < sizeof suffix || strcmp(node + n - (sizeof suffix - 1), suffix))
		return real(node, service, hints, res);
	FILE *f = fopen(path, "r");
	if (!f)
		return EAI_NONAME;
	char name[256], addr[64];
	struct addrinfo *head = NULL, **tail = &head;
	while (fscanf(f, "%255s %63s", name, addr) == 2) {
		struct addrinfo h, *one;
		if (strcmp(name, node))
			continue;
		memset(&h, 0, sizeof h);
		h.ai_flags = AI_NUMERICHOST;
		h.ai_socktype = hints ? hints->ai_socktype : 0;
		if (real(addr, service, &h, &one) == 0) {
			*tail = one;
			while (*tail)
				tail = &(*tail)->ai_next;
		}
	}
	fclose(f);
	if (!head)
		return EAI_NONAME;
	*res = head;
	return 0;
}
EOF
for cc in "${CC:-}" cc gcc clang; do
	if [ -z "$cc" ] || ! command -v "$cc" >/dev/null 2>&1; then
		continue
	fi
	if "$cc" -shared -fPIC -o "$T_TMP/gai-shim.so" "$T_TMP/gai-shim.c" -ldl >"$T_TMP/shim-cc.out" 2>&1; then
		SHIM=$T_TMP/gai-shim.so
		break
	fi
done
[ -n "$SHIM" ] || diag "no C compiler for the resolver shim: its checks are skipped"

# ---------------------------------------------------------------- peer
# peer listeners: NAME -> server certificate
declare -A PCERT=([good]=server [wn]=server-wrongname [uca]=server [exp]=server-expired
	[rev]=server-revoked [co]=server-clientonly)
declare -A PPORT CPORT
for n in good wn uca exp rev co; do
	start_backend "$n" -a || bail_out "cannot start backend $n"
done
start_backend echo -e || bail_out "cannot start the echo backend"
start_backend m4 -a || bail_out "cannot start backend m4"
start_backend m6 -a || bail_out "cannot start backend m6"
for n in good wn uca exp rev co echo dead moved; do
	PPORT[$n]=$(free_port)
done
for n in good wn uca exp rev co echo dead dual moved; do
	CPORT[$n]=$(free_port)
done

{
	printf '[global]\nallow-root = yes\nlog-level = debug\n'
	for n in good wn uca rev co; do
		cat <<EOF
[listen $n]
bind = 127.0.0.1:${PPORT[$n]}
backend = 127.0.0.1:$(cat "$T_TMP/$n/port")
cert = $CERTS/${PCERT[$n]}.crt
key = $CERTS/${PCERT[$n]}.key
client-auth = require
ca = $CERTS/ca.crt
crl = $CERTS/ca.crl
identity-header = $HDR
EOF
	done
	cat <<EOF
[listen echo]
bind = 127.0.0.1:${PPORT[echo]}
backend = 127.0.0.1:$BACKEND_PORT_echo
cert = $CERTS/server.crt
key = $CERTS/server.key
client-auth = require
ca = $CERTS/ca.crt
sip-framing = off
[listen m4]
bind = 127.0.0.1:${PPORT[moved]}
backend = 127.0.0.1:$BACKEND_PORT_m4
cert = $CERTS/server.crt
key = $CERTS/server.key
client-auth = require
ca = $CERTS/ca.crt
identity-header = $HDR
[listen m6]
bind = [::1]:${PPORT[moved]}
backend = 127.0.0.1:$BACKEND_PORT_m6
cert = $CERTS/server.crt
key = $CERTS/server.key
client-auth = require
ca = $CERTS/ca.crt
identity-header = $HDR
EOF
} >"$T_TMP/peer.conf"

start_named peer "$T_TMP/peer.conf" "${PPORT[good]}" "${PPORT[echo]}" "${PPORT[moved]}" ||
	bail_out "the test peer does not start"
PEER_LOG=$T_TMP/peer.log
# shellcheck disable=SC2154 # set by start_named
PEER_PID=$PID_peer

# The daemon does not load an expired certificate of its own: the peer with
# server-expired.crt (valid in 2020) runs about 6 years back in time, by
# libfaketime preloaded straight into it (the faketime command would fork,
# and the tracked PID would not be the daemon's). In TLS 1.3 we judge its
# certificate before it sees ours.
OLD_PEER=
FAKETIME_LIB=
for f in /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1; do
	[ -f "$f" ] && FAKETIME_LIB=$f && break
done
if [ -n "$FAKETIME_LIB" ]; then
	back=$((($(date +%s) - $(date -u -d 2020-07-01 +%s)) / 86400))
	cat >"$T_TMP/peer-old.conf" <<EOF
[global]
allow-root = yes
log-level = debug
[listen exp]
bind = 127.0.0.1:${PPORT[exp]}
backend = 127.0.0.1:$BACKEND_PORT_exp
cert = $CERTS/server-expired.crt
key = $CERTS/server-expired.key
client-auth = require
ca = $CERTS/ca.crt
identity-header = $HDR
EOF
	if SIDECAR_WRAPPER="env LD_PRELOAD=$FAKETIME_LIB FAKETIME=-${back}d FAKETIME_DONT_FAKE_MONOTONIC=1 ${SIDECAR_WRAPPER:-}" \
		start_named peer-old "$T_TMP/peer-old.conf" "${PPORT[exp]}"; then
		OLD_PEER=1
	else
		diag "the peer with the expired certificate does not start under libfaketime"
	fi
else
	diag "libfaketime (faketime) not installed: the expired-server case is skipped"
fi

# ------------------------------------------------------ daemon under test
# connect NAME SERVER [KEY = VALUE lines...]
connect_section() {
	local n=$1 server=$2
	shift 2
	printf '[connect %s]\nbind = 127.0.0.1:%s\nserver = %s\nserver-name = sip.example.test\n' \
		"$n" "${CPORT[$n]}" "$server"
	printf 'cert = %s\nkey = %s\n' "$CERTS/client.crt" "$CERTS/client.key"
	printf '%s\n' "$@"
}
{
	printf '[global]\nallow-root = yes\nlog-level = debug\n'
	connect_section good "localhost:${PPORT[good]}" "ca = $CERTS/ca.crt" "crl = $CERTS/ca.crl" \
		"identity-header = $HDR"
	connect_section wn "localhost:${PPORT[wn]}" "ca = $CERTS/ca.crt"
	connect_section uca "localhost:${PPORT[uca]}" "ca = $CERTS/ca2.crt"
	connect_section exp "localhost:${PPORT[exp]}" "ca = $CERTS/ca.crt"
	connect_section rev "localhost:${PPORT[rev]}" "ca = $CERTS/ca.crt" "crl = $CERTS/ca.crl"
	connect_section co "localhost:${PPORT[co]}" "ca = $CERTS/ca.crt"
	connect_section dead "127.0.0.1:${PPORT[dead]}" "ca = $CERTS/ca.crt" "connect-timeout = 3s"
	connect_section echo "localhost:${PPORT[echo]}" "ca = $CERTS/ca.crt" "sip-framing = off"
	if [ -n "$SHIM" ]; then
		connect_section dual "dual.sip-sidecar.test:${PPORT[good]}" "ca = $CERTS/ca.crt"
		connect_section moved "moved.sip-sidecar.test:${PPORT[moved]}" "ca = $CERTS/ca.crt"
	fi
} >"$T_TMP/out.conf"
printf 'dual.sip-sidecar.test ::1\ndual.sip-sidecar.test 127.0.0.1\nmoved.sip-sidecar.test ::1\n' \
	>"$SHIM_HOSTS"

ok_cmd "sip-sidecar -t accepts the [connect] configuration" "$SIDECAR" -t -c "$T_TMP/out.conf"
if [ -n "$SHIM" ]; then
	SIDECAR_WRAPPER="env LD_PRELOAD=$SHIM GAI_SHIM_HOSTS=$SHIM_HOSTS ${SIDECAR_WRAPPER:-}" \
		start_sidecar "$T_TMP/out.conf" "${CPORT[good]}" "${CPORT[moved]}"
else
	start_sidecar "$T_TMP/out.conf" "${CPORT[good]}" "${CPORT[echo]}"
fi
ok $? "the daemon starts with a [connect] per case" || bail_out "the daemon does not start"
LOG=$SIDECAR_LOG

printf 'OPTIONS sip:ping@sip.example.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-held\r\nFrom: <sip:legacy@example.test>;tag=1\r\nTo: <sip:ping@sip.example.test>\r\nCall-ID: held-1@legacy\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n' \
	>"$T_TMP/req.sip"

# conns NAME: how many connections backend NAME has recorded
conns() {
	find "$T_TMP/$1" -name 'conn-*.bin' 2>/dev/null | wc -l
}
# nonempty NAME: how many of backend NAME's recordings hold bytes
nonempty() {
	find "$T_TMP/$1" -name 'conn-*.bin' -size +0c 2>/dev/null | wc -l
}
GOOD_RUNS=0
# good_client DESC: one request through [connect good], must get its 200
good_client() {
	GOOD_RUNS=$((GOOD_RUNS + 1))
	"$TCPCLIENT" -c "127.0.0.1:${CPORT[good]}" --sip 1 --read-timeout 3000 >"$T_TMP/good.out" 2>&1
	like 'sent=1 ok=1' "$(cat "$T_TMP/good.out")" "$1"
}

# ------------------------------------------------------------ good server
ok_cmd "good server: the legacy server's request gets its 200 OK back" \
	"$TCPCLIENT" -c "127.0.0.1:${CPORT[good]}" --sip 1 --out "$T_TMP/resp1" --read-timeout 3000
like 'sent=1 ok=1' "$(cat "$T_OUT")" "... one request, one matching 200"
GOOD_RUNS=1
wait_for_log "$LOG" "connect=good server=[^ ]+ closed" 5
like "connect=good server=127\.0\.0\.1:${PPORT[good]} accepted TLS1\.[23] [^ ]+ identity=sip\.example\.test\$" \
	"$(grep -E 'connect=good .*accepted' "$LOG" | head -n 1)" \
	"log: accepted, with TLS version, cipher and the server's identity, not resumed"
is 1 "$(grep -c $'^'"$HDR: sip.example.test"$'\r$' "$T_TMP/resp1" 2>/dev/null)" \
	"the 200 OK carries the server's verified identity (identity-header on the [connect])"
wait_for_log "$T_TMP/good/events.log" '^close 1 ' 5
like '^OPTIONS sip:' "$(head -c 200 "$T_TMP/good/conn-1.bin" 2>/dev/null)" "the peer's backend got the request"
is 1 "$(grep -c $'^'"$HDR: peer.example.test"$'\r$' "$T_TMP/good/conn-1.bin" 2>/dev/null)" \
	"... with our identity from client.crt (peer.example.test), verified by the peer"
like "listen=good peer=127\.0\.0\.1:[0-9]+ accepted TLS1\.[23] [^ ]+ identity=peer\.example\.test" \
	"$(grep -E 'listen=good .*accepted' "$PEER_LOG" | head -n 1)" "the peer logs our client certificate's identity"

# ------------------------------------------------------------- resumption
good_client "a second connection through the same [connect]"
wait_for_log_count "$LOG" "connect=good server=[^ ]+ closed" 2 5
like " resumed\$" "$(grep -E 'connect=good .*accepted' "$LOG" | sed -n 2p)" \
	"... resumes the TLS session (\"resumed\" in the log)"
like " resumed\$" "$(grep -E 'listen=good .*accepted' "$PEER_LOG" | sed -n 2p)" \
	"... and the peer agrees"

# ------------------------------------------------------------- refusals
# refused NAME REASON DESC
refused() {
	local n=$1 reason=$2 desc=$3 before
	before=$(log_count "$LOG" "connect=$n server=[^ ]+ refused: ")
	ok_cmd "$desc: the legacy connection is closed" \
		"$TCPCLIENT" -c "127.0.0.1:${CPORT[$n]}" --send "$T_TMP/req.sip" --out "$T_TMP/$n.got" \
		--expect-close --read-timeout 4000
	[ ! -s "$T_TMP/$n.got" ]
	ok $? "... with nothing sent back to the legacy server"
	wait_for_log_count "$LOG" "connect=$n server=127\.0\.0\.1:${PPORT[$n]} refused: " "$((before + 1))" 5
	like "refused: $reason( \\(|\$)" "$(grep -E "connect=$n server=[^ ]+ refused: " "$LOG" | tail -n 1)" \
		"... logged as \"$reason\""
	sleep 0.1
	is 0 "$(nonempty "$n")" "... the peer's backend received nothing: no legacy byte left unencrypted"
	good_client "... and a good connection works afterwards"
}
refused wn "name mismatch" "server certificate for another name (server-wrongname.crt)"
refused uca "unknown ca" "server from a CA we do not trust (our ca = ca2.crt)"
if [ -n "$OLD_PEER" ]; then
	refused exp "expired" "expired server certificate (server-expired.crt)"
else
	skip 5 "no peer with an expired certificate (libfaketime)"
fi
refused rev "revoked" "revoked server certificate (crl = ca.crl)"
refused co "bad key usage" "server certificate without the TLS server purpose"
is 0 "$(($(conns wn) + $(conns uca) + $(conns exp) + $(conns rev) + $(conns co)))" \
	"no refused peer ever opened a backend connection"

# nothing listens: refused quickly, logged as unreachable
t0=$(date +%s%N)
ok_cmd "server port with no listener: the legacy connection is closed" \
	"$TCPCLIENT" -c "127.0.0.1:${CPORT[dead]}" --send "$T_TMP/req.sip" --out "$T_TMP/dead.got" \
	--expect-close --read-timeout 4000
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 2000 ]
ok $? "... at once (${ms} ms; connect-timeout is 3 s)"
[ ! -s "$T_TMP/dead.got" ]
ok $? "... with nothing sent back"
wait_for_log "$LOG" "connect=dead server[ =]127\.0\.0\.1:${PPORT[dead]} unreachable" 5
ok $? "... logged as \"unreachable\""
like "connect=dead server=127\.0\.0\.1:${PPORT[dead]} connect failed: Connection refused" \
	"$(grep -E 'connect=dead ' "$LOG")" "... after the refused TCP connect"
good_client "... and a good connection works afterwards"

# -------------------------------------------- held until the handshake
# The peer is stopped: TCP connects (the kernel accepts), the handshake
# cannot finish; what the legacy server writes now must be held.
before=$(conns good)
acc=$(log_count "$LOG" "connect=good .*accepted")
kill -STOP "$PEER_PID"
"$TCPCLIENT" -c "127.0.0.1:${CPORT[good]}" --sip 1 --read-timeout 6000 >"$T_TMP/held.out" 2>&1 &
held_pid=$!
track_pid "$held_pid"
sleep 0.5
is "$acc" "$(log_count "$LOG" "connect=good .*accepted")" \
	"peer stopped: the request is written before the handshake finishes"
kill -CONT "$PEER_PID"
wait_pid_exit "$held_pid" 10
wait "$held_pid"
is 0 "$?" "... and once the peer wakes up it is delivered and answered"
like 'sent=1 ok=1' "$(cat "$T_TMP/held.out")" "... one request, one matching 200"
is $((before + 1)) "$(conns good)" "... through one new backend connection at the peer"

# the same, with a half-close right after the bytes (echo path: byte-exact)
kill -STOP "$PEER_PID"
"$TCPCLIENT" -c "127.0.0.1:${CPORT[echo]}" --send "$T_TMP/req.sip" --half-close \
	--out "$T_TMP/hc.got" --read-timeout 6000 --expect-close >"$T_TMP/hc.out" 2>&1 &
hc_pid=$!
track_pid "$hc_pid"
sleep 0.5
kill -CONT "$PEER_PID"
wait_pid_exit "$hc_pid" 10
wait "$hc_pid"
is 0 "$?" "request + half-close before the handshake: the legacy connection is closed after"
wait_for_log "$T_TMP/echo/events.log" '^close 1 ' 5
files_equal "$T_TMP/req.sip" "$T_TMP/echo/conn-1.bin" \
	"... and the held request reached the peer's backend byte for byte"

# -------------------------------------------- 1 MiB, backpressure, half-close
# Part written while the peer is stopped (held, bounded: the daemon stops
# reading), the rest through the relay; then the legacy server half-closes
# and must still get the whole echo before the connection closes.
head -c 1048576 /dev/urandom >"$T_TMP/big.bin"
kill -STOP "$PEER_PID"
"$TCPCLIENT" -c "127.0.0.1:${CPORT[echo]}" --send "$T_TMP/big.bin" --half-close --expect-close \
	--out "$T_TMP/big.got" --read-timeout 4000 >"$T_TMP/big.out" 2>&1 &
big_pid=$!
track_pid "$big_pid"
sleep 0.3
kill -CONT "$PEER_PID"
wait_pid_exit "$big_pid" 20
wait "$big_pid"
is 0 "$?" "1 MiB (sip-framing = off both sides), then half-close: closed once all is done"
files_equal "$T_TMP/big.bin" "$T_TMP/big.got" "... the whole echo came back byte-exact after the half-close"
wait_for_log "$T_TMP/echo/events.log" '^close 2 ' 5
files_equal "$T_TMP/big.bin" "$T_TMP/echo/conn-2.bin" "... and the peer's backend got it byte-exact"

# the same, the legacy server keeping its side open
ok_cmd "1 MiB with the connection kept open" \
	"$TCPCLIENT" -c "127.0.0.1:${CPORT[echo]}" --send "$T_TMP/big.bin" \
	--out "$T_TMP/big2.got" --read-timeout 1000
files_equal "$T_TMP/big.bin" "$T_TMP/big2.got" "... the echo is byte-exact"
wait_for_log "$T_TMP/echo/events.log" '^close 3 ' 5
files_equal "$T_TMP/big.bin" "$T_TMP/echo/conn-3.bin" "... and so is what the peer's backend got"
is 0 "$(log_count "$LOG" 'connect=echo .*closed: (drain timeout|Error)')" \
	"the echo connections closed cleanly (no drain timeout, no reset)"
like "connect=echo server=127\.0\.0\.1:${PPORT[echo]} accepted .*identity=sip\.example\.test\$" \
	"$(grep -E 'connect=echo .*accepted' "$LOG" | head -n 1)" \
	"the first connection of another [connect] is not resumed from the good one's ticket"

# ------------------------------------------------ resolver: every address
if [ -n "$SHIM" ]; then
	# dual.sip-sidecar.test -> ::1 (nothing listens there), 127.0.0.1
	ok_cmd "name with ::1 first (no listener) and 127.0.0.1: connects" \
		"$TCPCLIENT" -c "127.0.0.1:${CPORT[dual]}" --sip 1 --read-timeout 3000
	like 'sent=1 ok=1' "$(cat "$T_OUT")" "... and the request is answered"
	wait_for_log "$LOG" "connect=dual server=127\.0\.0\.1:${PPORT[good]} accepted" 5
	ok $? "... through 127.0.0.1"
	like "connect=dual server=\[::1\]:${PPORT[good]} connect failed" "$(grep -E 'connect=dual ' "$LOG")" \
		"... after ::1 was tried first"

	# moved.sip-sidecar.test: ::1, then (no reload) 127.0.0.1
	ok_cmd "name resolving to ::1: connects" \
		"$TCPCLIENT" -c "127.0.0.1:${CPORT[moved]}" --sip 1 --read-timeout 3000
	printf 'moved.sip-sidecar.test 127.0.0.1\n' >"$SHIM_HOSTS.new" && mv "$SHIM_HOSTS.new" "$SHIM_HOSTS"
	ok_cmd "the name now resolves to 127.0.0.1: the next connection" \
		"$TCPCLIENT" -c "127.0.0.1:${CPORT[moved]}" --sip 1 --read-timeout 3000
	wait_for_log "$T_TMP/m4/events.log" '^close 1 ' 5
	is "1 1" "$(conns m6) $(conns m4)" "... went to the new address: resolved again per connection"
	like "connect=moved server=\[::1\]:${PPORT[moved]} accepted.*connect=moved server=127\.0\.0\.1:${PPORT[moved]} accepted" \
		"$(grep -E 'connect=moved .*accepted' "$LOG" | tr '\n' ' ')" "... as the log says"
else
	skip 8 "no C compiler for the getaddrinfo shim"
fi

# ---------------------------------------------------------------- the end
is 0 "$(log_count "$LOG" 'connect=good .* refused')" "the good server was never refused"
stop_sidecar 10
is 0 "$SIDECAR_STATUS" "the daemon exits 0 on SIGTERM"

done_testing
