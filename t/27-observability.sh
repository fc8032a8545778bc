#!/bin/bash
# Observability: live counters per section and per verified peer (with the
# metrics-peers bound), answers the sidecar writes by code, backend
# failures, `sip-sidecar status` (text, terminal colours, --json, exit
# status), and local clients that never send or never read not holding up
# the loop.
. "${T_SRC:-$(dirname "$0")}/lib.sh"
require_sidecar
require_cmd certtool
certs_dir
plan 39

# a server certificate 10 days from expiry, for the status warning colour
umask 077
cat >"$T_TMP/soon.tmpl" <<EOF
cn = "soon.example.test"
dns_name = "soon.example.test"
serial = 901
expiration_days = 10
tls_www_server
signing_key
encryption_key
EOF
certtool --generate-privkey --key-type ecdsa --outfile "$T_TMP/soon.key" >/dev/null 2>&1 &&
	certtool --generate-certificate --load-privkey "$T_TMP/soon.key" --load-ca-certificate "$CERTS/ca.crt" \
		--load-ca-privkey "$CERTS/ca.key" --template "$T_TMP/soon.tmpl" --outfile "$T_TMP/soon.crt" \
		>/dev/null 2>&1 || bail_out "cannot make a certificate"

start_backend be -a
tls=$(free_port) mtls=$(free_port) down=$(free_port) nobody=$(free_port) met=$(free_port)
sock=$T_TMP/status.sock
cat >"$T_TMP/o.conf" <<EOF
[global]
allow-root = yes
log-level = debug
workers = 1
metrics = 127.0.0.1:$met
metrics-peers = 2
status-socket = $sock
[listen tls]
bind = 127.0.0.1:$tls
backend = 127.0.0.1:$BACKEND_PORT
cert = $T_TMP/soon.crt
key = $T_TMP/soon.key
sip-framing = on
[listen mtls]
bind = 127.0.0.1:$mtls
backend = 127.0.0.1:$BACKEND_PORT
cert = $CERTS/server.crt
key = $CERTS/server.key
client-auth = require
ca = $CERTS/ca.crt
sip-framing = on
[listen down]
bind = 127.0.0.1:$down
backend = 127.0.0.1:$nobody
cert = $CERTS/server.crt
key = $CERTS/server.key
sip-framing = on
EOF
start_sidecar "$T_TMP/o.conf" "$tls" "$mtls" "$down" "$met" || bail_out "sidecar did not start"
wait_for_file "$sock" 10

scrape() {
	exec 3<>"/dev/tcp/127.0.0.1/$met" || return 1
	printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
	timeout 10 cat <&3 | tr -d '\r'
	exec 3<&-
}
# val PAGE SERIES: the value of one series (exact name and labels)
val() { printf '%s\n' "$1" | grep -F -- "$2 " | awk '{print $NF}'; }
# wait_val SERIES WANT: until the page shows it (bounded)
wait_val() {
	local i
	for ((i = 0; i < 200; i++)); do
		[ "$(val "$(scrape)" "$1")" = "$2" ] && return 0
		sleep 0.05
	done
	return 1
}
req() {
	printf 'OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK%s\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' "$1" "$1"
}
req o1 >"$T_TMP/req"

# three verified peers hold a connection open each; metrics-peers = 2
pids=""
for c in client client-dns client-cn; do
	"$TLSCLIENT" -c "127.0.0.1:$mtls" --ca "$CERTS/ca.crt" --cert "$CERTS/$c.crt" --key "$CERTS/$c.key" \
		--send "$T_TMP/req" --read-timeout 60000 --max-time 90000 >"$T_TMP/$c.out" 2>/dev/null &
	track_pid $!
	pids="$pids $!"
	# one at a time: the first two identities get the labels
	wait_val 'sip_sidecar_section_messages_total{kind="listen",section="mtls",direction="out"}' \
		"$(($(echo "$pids" | wc -w)))" || diag "$c: no answer counted"
done
page=$(scrape)
is 3 "$(val "$page" 'sip_sidecar_section_connections{kind="listen",section="mtls"}')" \
	"section: three open connections on mtls"
is 0 "$(val "$page" 'sip_sidecar_section_connections{kind="listen",section="tls"}')" "section: none on tls"
is 3 "$(val "$page" 'sip_sidecar_section_handshakes_total{kind="listen",section="mtls",type="full"}')" \
	"section: three full handshakes"
is 3 "$(val "$page" 'sip_sidecar_section_messages_total{kind="listen",section="mtls",direction="in"}')" \
	"section: three messages in, live"
b=$(val "$page" 'sip_sidecar_section_bytes_total{kind="listen",section="mtls",direction="out"}')
[ "${b:-0}" -gt 0 ]
ok $? "section: bytes out, live ($b)"
is 1 "$(val "$page" 'sip_sidecar_peer_connections{peer="peer.example.test"}')" "peer: peer.example.test open"
is 1 "$(val "$page" 'sip_sidecar_peer_connections{peer="other.example.test"}')" "peer: other.example.test open"
is 1 "$(val "$page" 'sip_sidecar_peer_connections{peer="other"}')" "peer: the third past the bound is \"other\""
is "" "$(printf '%s\n' "$page" | grep -F 'cn.example.test')" "... and has no label of its own"
is 1 "$(val "$page" 'sip_sidecar_peer_messages_total{peer="peer.example.test",direction="in"}')" \
	"peer: its message in"
is 1 "$(val "$page" 'sip_sidecar_peer_messages_total{peer="peer.example.test",direction="out"}')" \
	"peer: its answer out"
since=$(val "$page" 'sip_sidecar_peer_connected_since_seconds{peer="peer.example.test"}')
now=$(date +%s)
[ -n "$since" ] && [ "$since" -le "$now" ] && [ "$since" -gt $((now - 600)) ]
ok $? "peer: connected since ($since)"

# refusals by section and reason; an anonymous client gets no peer label
"$TLSCLIENT" -c "127.0.0.1:$mtls" --ca "$CERTS/ca.crt" --cert "$CERTS/client-expired.crt" \
	--key "$CERTS/client-expired.key" --send "$T_TMP/req" --read-timeout 2000 >/dev/null 2>&1
"$TLSCLIENT" -c "127.0.0.1:$tls" --ca "$CERTS/ca.crt" --sni soon.example.test --send "$T_TMP/req" \
	--read-timeout 5000 >"$T_TMP/anon.out" 2>/dev/null
like '^SIP/2.0 200' "$(head -1 "$T_TMP/anon.out")" "an anonymous client is served"
page=$(scrape)
is 1 "$(val "$page" 'sip_sidecar_section_refused_total{kind="listen",section="mtls",reason="expired"}')" \
	"section: the expired client refused on mtls"
is 0 "$(val "$page" 'sip_sidecar_section_refused_total{kind="listen",section="tls",reason="expired"}')" \
	"... not on tls"
is 3 "$(printf '%s\n' "$page" | grep -c '^sip_sidecar_peer_connections{')" \
	"the anonymous client added no peer series"

# answers the sidecar writes itself: 400 (malformed), 503 (backend down)
printf 'OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bKbad\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: bad\r\nCSeq: 1 OPTIONS\r\nContent-Length: 12x\r\n\r\n' >"$T_TMP/bad"
"$TLSCLIENT" -c "127.0.0.1:$tls" --ca "$CERTS/ca.crt" --sni soon.example.test --send "$T_TMP/bad" \
	--read-timeout 5000 >"$T_TMP/bad.out" 2>/dev/null
like '^SIP/2.0 400' "$(head -1 "$T_TMP/bad.out")" "a malformed request gets 400"
"$TLSCLIENT" -c "127.0.0.1:$down" --ca "$CERTS/ca.crt" --send "$T_TMP/req" \
	--read-timeout 5000 >"$T_TMP/down.out" 2>/dev/null
like '^SIP/2.0 503' "$(head -1 "$T_TMP/down.out")" "with the backend down: 503"
wait_val 'sip_sidecar_answers_total{code="503"}' 1
page=$(scrape)
is 1 "$(val "$page" 'sip_sidecar_section_answers_total{kind="listen",section="tls",code="400"}')" \
	"section: the 400 counted on tls"
is 1 "$(val "$page" 'sip_sidecar_section_answers_total{kind="listen",section="down",code="503"}')" \
	"section: the 503 counted on down"
is 1 "$(val "$page" 'sip_sidecar_section_backend_failures_total{kind="listen",section="down"}')" \
	"section: one backend failure on down"
is 1 "$(val "$page" 'sip_sidecar_section_refused_total{kind="listen",section="tls",reason="malformed message"}')" \
	"section: the malformed message refused on tls"
if command -v promtool >/dev/null 2>&1; then
	printf '%s\n' "$page" | sed '1,/^$/d' >"$T_TMP/page.prom"
	ok_cmd "promtool check metrics (sections, peers)" sh -c "promtool check metrics <'$T_TMP/page.prom'"
else
	skip 1 "promtool (prometheus) not installed"
fi

# sip-sidecar status
"$SIDECAR" status -c "$T_TMP/o.conf" >"$T_TMP/st.txt" 2>"$T_TMP/st.err"
is 0 $? "status: exit 0"
out=$(cat "$T_TMP/st.txt")
like "listen +mtls +127\.0\.0\.1:$mtls +3 " "$out" "status: the mtls listener with 3 open"
like 'peer\.example\.test +1 +20[0-9-]+ [0-9:]+Z' "$out" "status: a connected peer with since-when"
like 'expired +1' "$out" "status: refusals of the last hour by reason"
like "certificate +$T_TMP/soon.crt +[0-9-]+ +(9|10)\b" "$out" "status: the certificate 10 days from expiry"
unlike $'\033' "$out" "status: no colour when stdout is not a terminal"
if command -v script >/dev/null 2>&1; then
	script -qec "$SIDECAR status -c $T_TMP/o.conf" /dev/null </dev/null >"$T_TMP/st.tty" 2>&1
	like $'\033\\[33mcertificate +'"$T_TMP/soon.crt" "$(cat "$T_TMP/st.tty")" \
		"status on a terminal: the near expiry in warning colour"
else
	skip 1 "script (bsdutils) not installed"
fi
json=$("$SIDECAR" status -c "$T_TMP/o.conf" --json)
like '"peers":\[\{"identity":"peer\.example\.test","open":1,"since":[0-9]+' "$json" "status --json: peers"
like '"refused":\{[^}]*"expired":1' "$json" "status --json: refusals"

# local clients that never send or never read hold up nothing
if command -v perl >/dev/null 2>&1; then
	perl -MSocket -e '
		socket(my $s, PF_INET, SOCK_STREAM, 0) or die;
		setsockopt($s, SOL_SOCKET, SO_RCVBUF, 1);
		connect($s, pack_sockaddr_in($ARGV[0], inet_aton("127.0.0.1"))) or die;
		syswrite($s, "GET /metrics HTTP/1.0\r\n\r\n");
		my @idle;
		for (1 .. 40) {
			socket(my $t, PF_INET, SOCK_STREAM, 0) or die;
			connect($t, pack_sockaddr_in($ARGV[0], inet_aton("127.0.0.1"))) or last;
			push @idle, $t;
		}
		sleep 30;' "$met" &
	SLOW=$!
	track_pid "$SLOW"
	wait_for_log "$SIDECAR_LOG" 'local client: no request after' 30
	ok $? "silent metrics clients are cut after their timeout"
	req o2 >"$T_TMP/req2"
	"$TLSCLIENT" -c "127.0.0.1:$tls" --ca "$CERTS/ca.crt" --sni soon.example.test --send "$T_TMP/req2" \
		--read-timeout 5000 >"$T_TMP/during.out" 2>/dev/null
	like '^SIP/2.0 200' "$(head -1 "$T_TMP/during.out")" "traffic flows meanwhile"
	page=$(scrape)
	like 'sip_sidecar_build_info' "$page" "and a fresh scrape gets the whole page"
	kill "$SLOW" 2>/dev/null
	wait_pid_exit "$SLOW" 10
	untrack_pid "$SLOW"
else
	skip 3 "perl not installed"
fi

for p in $pids; do kill "$p" 2>/dev/null; done
wait_val 'sip_sidecar_peer_connections{peer="peer.example.test"}' 0
ok $? "peer: back to 0 open when it leaves"
stop_sidecar
is 0 "$SIDECAR_STATUS" "clean stop"
[ ! -e "$sock" ]
ok $? "the status socket is removed at stop"
"$SIDECAR" status -c "$T_TMP/o.conf" >/dev/null 2>"$T_TMP/st.err"
rc=$?
[ "$rc" -ne 0 ] && grep -q 'cannot reach the daemon' "$T_TMP/st.err"
ok $? "status: non-zero ($rc) with a reason when the daemon is not running"
done_testing
