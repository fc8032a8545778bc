#!/bin/bash
# 41-identity-proxy.sh: what the legacy server learns about the TLS peer.
# 1. identity-header on MTLS listeners: every message (requests and responses,
#    pipelined) carries exactly one "X-TLS-Peer-Identity: <verified identity>"
#    right before the empty line; every header of that name the peer sent is
#    removed, whatever its case, with whitespace before the colon, with folded
#    continuation lines; look-alikes (longer names, the name inside a value or
#    the body) are untouched. An anonymous client (client-auth = optional)
#    gets no such header (and its own is removed too).
# 2. proxy-protocol = v2: the header on the backend connection decoded byte by
#    byte (signature, version/command, family, length, addresses, ports,
#    PP2_TYPE_SSL with client bits, verify result, version and CN sub-TLVs),
#    followed by the SIP message unchanged; IPv4 (MTLS client) and IPv6
#    (anonymous client).
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
require_cmd od
certs_dir >/dev/null || skip_all "no test certificates (t/mkcerts.sh)"
C=$CERTS
HDR=X-TLS-Peer-Identity
ID=peer.example.test # the identity of $C/client.crt (see t/mkcerts.sh)

have_ipv6=0
grep -qi '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null && have_ipv6=1

plan 53

# ---------------------------------------------------------------- helpers

accepts() {
	log_count "$1/events.log" '^accept '
}
backend_closed() {
	wait_for_log "$1/events.log" "^close $2 " 5
}
# client CERT PORT [tlsclient options]: connect with client certificate CERT
# (- for none) to 127.0.0.1:PORT ([::1] if PORT starts with "6:").
client() {
	local cert=$1 port=$2 host=127.0.0.1
	shift 2
	case $port in 6:*) host='[::1]' port=${port#6:} ;; esac
	if [ "$cert" = - ]; then
		"$TLSCLIENT" -c "$host:$port" --ca "$C/ca.crt" --verify-name sip.example.test "$@"
	else
		"$TLSCLIENT" -c "$host:$port" --ca "$C/ca.crt" --verify-name sip.example.test \
			--cert "$C/$cert.crt" --key "$C/$cert.key" "$@"
	fi
}

# ------------------------------------------------------------------ setup
start_backend ans -a || bail_out "cannot start the answering backend"
start_backend rec -x || bail_out "cannot start the recording backend"
ANS=$T_TMP/ans
REC=$T_TMP/rec
PM=$(free_port)
PO=$(free_port)
PP=$(free_port)
P6=$(free_port)
conf=$T_TMP/sidecar.conf
cat >"$conf" <<EOF
[global]
allow-root = yes
log-level = info
[listen mtls]
bind = 127.0.0.1:$PM
backend = 127.0.0.1:$BACKEND_PORT_ans
topology = off             # byte-exact relay checks; translation: t/44-topology.sh
cert = $C/server.crt
key = $C/server.key
client-auth = require
ca = $C/ca.crt
allow-peer = $ID
identity-header = $HDR
[listen opt]
bind = 127.0.0.1:$PO
backend = 127.0.0.1:$BACKEND_PORT_ans
topology = off             # byte-exact relay checks; translation: t/44-topology.sh
cert = $C/server.crt
key = $C/server.key
client-auth = optional
ca = $C/ca.crt
identity-header = $HDR
[listen pp4]
bind = 127.0.0.1:$PP
backend = 127.0.0.1:$BACKEND_PORT_rec
topology = off             # byte-exact relay checks; translation: t/44-topology.sh
cert = $C/server.crt
key = $C/server.key
client-auth = require
ca = $C/ca.crt
allow-peer = $ID
proxy-protocol = v2
EOF
ports=("$PM" "$PO" "$PP")
if [ "$have_ipv6" = 1 ]; then
	cat >>"$conf" <<EOF
[listen pp6]
bind = [::1]:$P6
backend = 127.0.0.1:$BACKEND_PORT_rec
topology = off             # byte-exact relay checks; translation: t/44-topology.sh
cert = $C/server.crt
key = $C/server.key
client-auth = optional
ca = $C/ca.crt
proxy-protocol = v2
EOF
	ports+=("$P6")
fi
start_sidecar "$conf" "${ports[@]}" || bail_out "the daemon did not start"

# ------------------------------------------------------- the test messages
# Each message comes as what the peer sends (.in) and what the legacy server
# must get behind an identity-header listener for peer $ID (.want).
crlf() { printf '%s\r\n' "$@"; }
VIA='Via: SIP/2.0/TLS 127.0.0.1:5099;branch=z9hG4bK-'
FROM='From: <sip:tester@example.test>;tag=ft'
TO='To: <sip:svc@example.test>'

# A: a request; the spoofed header in canonical case; look-alikes kept
{
	crlf "OPTIONS sip:svc@example.test SIP/2.0" "${VIA}a" "$HDR: evil.example.test" "$FROM" "$TO" \
		"Call-ID: id-a" "CSeq: 1 OPTIONS" "$HDR-Extra: kept" "Subject: $HDR: kept too" \
		"Content-Length: 0" ""
} >"$T_TMP/a.in"
{
	crlf "OPTIONS sip:svc@example.test SIP/2.0" "${VIA}a" "$FROM" "$TO" \
		"Call-ID: id-a" "CSeq: 1 OPTIONS" "$HDR-Extra: kept" "Subject: $HDR: kept too" \
		"Content-Length: 0" "$HDR: $ID" ""
} >"$T_TMP/a.want"
# A, as an anonymous client's backend must get it: spoof removed, none added
{
	crlf "OPTIONS sip:svc@example.test SIP/2.0" "${VIA}a" "$FROM" "$TO" \
		"Call-ID: id-a" "CSeq: 1 OPTIONS" "$HDR-Extra: kept" "Subject: $HDR: kept too" \
		"Content-Length: 0" ""
} >"$T_TMP/a.anon"

# B: a response from the peer; lower case + spaces before the colon, upper
# case + tab before the colon
{
	crlf "SIP/2.0 180 Ringing" "${VIA}b" "x-tls-peer-identity  : evil1" "$FROM" "$TO;tag=tt" \
		"Call-ID: id-b" "CSeq: 5 INVITE" "X-TLS-PEER-IDENTITY$(printf '\t'):$(printf '\t')evil2" \
		"Content-Length: 0" ""
} >"$T_TMP/b.in"
{
	crlf "SIP/2.0 180 Ringing" "${VIA}b" "$FROM" "$TO;tag=tt" "Call-ID: id-b" "CSeq: 5 INVITE" \
		"Content-Length: 0" "$HDR: $ID" ""
} >"$T_TMP/b.want"

# C: a request with a body; a folded spoofed header (two continuation lines)
# and a body line that looks like the header
body=$(crlf "$HDR: in the body, not a header" "v=0")
body=$body$'\r\n'
{
	crlf "INVITE sip:svc@example.test SIP/2.0" "${VIA}c" "$FROM" "$TO" "Call-ID: id-c" \
		"X-Tls-Peer-Identity: evil3," "   folded.evil.example.test," "$(printf '\t')and-more" \
		"CSeq: 2 INVITE" "Contact: <sip:tester@127.0.0.1:5099;transport=tls>" \
		"Content-Type: text/plain" "Content-Length: ${#body}" ""
	printf '%s' "$body"
} >"$T_TMP/c.in"
{
	crlf "INVITE sip:svc@example.test SIP/2.0" "${VIA}c" "$FROM" "$TO" "Call-ID: id-c" \
		"CSeq: 2 INVITE" "Contact: <sip:tester@127.0.0.1:5099;transport=tls>" \
		"Content-Type: text/plain" "Content-Length: ${#body}" "$HDR: $ID" ""
	printf '%s' "$body"
} >"$T_TMP/c.want"
cat "$T_TMP/a.in" "$T_TMP/b.in" "$T_TMP/c.in" >"$T_TMP/abc.in"
cat "$T_TMP/a.want" "$T_TMP/b.want" "$T_TMP/c.want" >"$T_TMP/abc.want"

# ---------------------------------------------------- identity-header: MTLS
mark_log
n=$(($(accepts "$ANS") + 1))
ok_cmd "MTLS peer: request, response, request pipelined in one write" \
	client client "$PM" --send "$T_TMP/abc.in" --out "$T_TMP/abc.out" --read-timeout 1000
like "peer=127\.0\.0\.1:[0-9]+ accepted TLS[^ ]* [^ ]+ identity=$ID" "$(newlog)" \
	"... accepted with identity=$ID"
is "id-a id-c" "$(grep -a '^Call-ID:' "$T_TMP/abc.out" | tr -d '\r' | cut -d' ' -f2 | xargs)" \
	"... both requests answered, the response not"
backend_closed "$ANS" "$n"
got=$ANS/conn-$n.bin
files_equal "$T_TMP/abc.want" "$got" \
	"... the backend gets each message with the spoofed headers removed and $HDR: $ID inserted last"
is 3 "$(grep -ac "^$HDR: $ID"$'\r$' "$got")" "... exactly one $HDR per message (3)"
# every header named like it, any case, any whitespace before the colon
is 4 "$(grep -aicE "^${HDR}[[:space:]]*:" "$got")" \
	"... no other line named $HDR except the body line (4 = 3 + 1)"
is 3 "$(awk -v h="$HDR: $ID"$'\r' 'prev == h && $0 == "\r" { n++ } { prev = $0 } END { print n + 0 }' "$got")" \
	"... each one right before the empty line"
grep -aq 'evil' "$got"
ok $((!$?)) "... nothing of the spoofed values reaches the backend"
is 2 "$(grep -ac "^$HDR-Extra: kept"$'\r$\|'"^Subject: $HDR: kept too"$'\r$' "$got")" \
	"... look-alike headers are untouched"

# the same spoofing one message at a time (each message in its own write)
n=$(($(accepts "$ANS") + 1))
ok_cmd "MTLS peer: the request with the folded spoofed header alone" \
	client client "$PM" --send "$T_TMP/c.in" --out "$T_TMP/c.out" --read-timeout 700
backend_closed "$ANS" "$n"
files_equal "$T_TMP/c.want" "$ANS/conn-$n.bin" "... spoofed header and its continuation lines removed, $HDR: $ID inserted"

# ------------------------------------------ identity-header: optional client
mark_log
n=$(($(accepts "$ANS") + 1))
ok_cmd "client-auth = optional, anonymous client sends a spoofed header" \
	client - "$PO" --send "$T_TMP/a.in" --out "$T_TMP/anon.out" --read-timeout 700
like "peer=127\.0\.0\.1:[0-9]+ accepted TLS[^ ]* [^ ]+ anonymous" "$(newlog)" "... accepted as anonymous"
like 'Call-ID: id-a' "$(cat "$T_TMP/anon.out")" "... answered"
backend_closed "$ANS" "$n"
files_equal "$T_TMP/a.anon" "$ANS/conn-$n.bin" "... the backend gets no $HDR at all (the spoofed one removed)"

n=$(($(accepts "$ANS") + 1))
ok_cmd "client-auth = optional, client with a certificate" \
	client client "$PO" --send "$T_TMP/a.in" --out "$T_TMP/opt.out" --read-timeout 700
backend_closed "$ANS" "$n"
files_equal "$T_TMP/a.want" "$ANS/conn-$n.bin" "... the backend gets $HDR: $ID"

# ------------------------------------------------------------ PROXY v2
# pp_decode FILE: decodes the PROXY v2 header at the start of FILE into
# PP_* variables (hex strings, lower case, space separated); returns 1 if
# FILE is too short for what its header announces.
PP_BYTES=()
pp_hex() { # pp_hex OFFSET COUNT: the bytes as "xx xx ..."
	local i out=
	for ((i = $1; i < $1 + $2; i++)); do
		out+="${out:+ }${PP_BYTES[$i]:-??}"
	done
	echo "$out"
}
pp_num() { # pp_num OFFSET COUNT: big-endian number
	local i v=0
	for ((i = $1; i < $1 + $2; i++)); do
		v=$((v * 256 + 16#${PP_BYTES[$i]:-0}))
	done
	echo "$v"
}
pp_str() { # pp_str OFFSET COUNT: the bytes as text
	local i out=
	for ((i = $1; i < $1 + $2; i++)); do
		# shellcheck disable=SC2059 # the format is the byte itself
		out+=$(printf "\\x${PP_BYTES[$i]}")
	done
	echo "$out"
}
# pp_tlvs OFFSET END PREFIX: lists TLVs in [OFFSET, END) as
# "TYPE:VALUE-OFFSET:LENGTH" words; "bad" if one overruns END.
pp_tlvs() {
	local off=$1 end=$2 t l out=
	while ((off < end)); do
		if ((off + 3 > end)); then
			echo "$out bad"
			return
		fi
		t=${PP_BYTES[$off]}
		l=$(pp_num $((off + 1)) 2)
		if ((off + 3 + l > end)); then
			echo "$out bad"
			return
		fi
		out+="${out:+ }$t:$((off + 3)):$l"
		off=$((off + 3 + l))
	done
	echo "$out"
}
# tlv_find LIST TYPE: "OFFSET LENGTH" of the first TLV of TYPE in LIST.
tlv_find() {
	local w
	for w in $1; do
		case $w in "$2":*) w=${w#*:}; echo "${w%%:*} ${w#*:}"; return 0 ;; esac
	done
	return 1
}

# check_proxy NAME FILE MSG FAMILY SRC-HEX SRC-PORT DST-HEX DST-PORT CLIENT-BITS VERIFY CN
#   CLIENT-BITS: the PP2_TYPE_SSL client byte (hex); VERIFY 0 or "nonzero";
#   CN "-" means: no CN sub-TLV allowed. 14 test points.
# haproxy's proxy-protocol.txt: client bits PP2_CLIENT_SSL 0x01,
# PP2_CLIENT_CERT_CONN 0x02 (certificate on this connection),
# PP2_CLIENT_CERT_SESS 0x04 (on this TLS session, maybe an earlier
# connection); verify is "zero if the client presented a certificate and it
# was successfully verified, and non-zero otherwise".
check_proxy() {
	local name=$1 file=$2 msg=$3 fam=$4 src=$5 sport=$6 dst=$7 dport=$8 bits=$9 verify=${10} cn=${11}
	local alen len hlen tlvs ssl off l subs v
	read -ra PP_BYTES <<<"$(od -An -tx1 -v "$file" | tr '\n' ' ')"
	is "0d 0a 0d 0a 00 0d 0a 51 55 49 54 0a" "$(pp_hex 0 12)" "$name: starts with the PROXY v2 signature"
	is "21" "$(pp_hex 12 1)" "$name: version 2, command PROXY (0x21)"
	is "$fam" "$(pp_hex 13 1)" "$name: family/protocol $fam"
	len=$(pp_num 14 2)
	hlen=$((16 + len))
	if [ "$fam" = 11 ]; then alen=12; else alen=36; fi
	ok $((!(${#PP_BYTES[@]} >= hlen && len >= alen))) \
		"$name: length field ($len) covers the addresses and fits the data (${#PP_BYTES[@]} bytes)"
	is "$src" "$(pp_hex 16 $((alen / 2 - 2)))" "$name: source address"
	is "$dst" "$(pp_hex $((16 + alen / 2 - 2)) $((alen / 2 - 2)))" "$name: destination address"
	is "$sport" "$(pp_num $((16 + alen - 4)) 2)" "$name: source port = the client's port (from the log)"
	is "$dport" "$(pp_num $((16 + alen - 2)) 2)" "$name: destination port = the listener's"
	tlvs=$(pp_tlvs $((16 + alen)) "$hlen")
	ssl=$(tlv_find "$tlvs" 20)
	[[ -n $ssl && $tlvs != *bad* ]]
	ok $? "$name: TLVs fill the length exactly, one is PP2_TYPE_SSL (0x20) [$tlvs]"
	off=${ssl% *}
	l=${ssl#* }
	is "$bits" "$(pp_hex "${off:-0}" 1)" "$name: PP2_TYPE_SSL client bits 0x$bits"
	v=$(pp_num $((${off:-0} + 1)) 4)
	if [ "$verify" = 0 ]; then
		is 0 "$v" "$name: verify result 0 (certificate verified)"
	else
		isnt 0 "$v" "$name: verify result non-zero (no certificate verified)"
	fi
	subs=$(pp_tlvs $((${off:-0} + 5)) $((${off:-0} + ${l:-0})))
	v=$(tlv_find "$subs" 21) && v=$(pp_str "${v% *}" "${v#* }")
	is "TLSv1.3" "$v" "$name: sub-TLV PP2_SUBTYPE_SSL_VERSION (0x21) = TLSv1.3"
	if [ "$cn" = - ]; then
		tlv_find "$subs" 22 >/dev/null
		ok $((!$?)) "$name: no PP2_SUBTYPE_SSL_CN (0x22) for an anonymous client [$subs]"
	else
		v=$(tlv_find "$subs" 22) && v=$(pp_str "${v% *}" "${v#* }")
		is "$cn" "$v" "$name: sub-TLV PP2_SUBTYPE_SSL_CN (0x22) = the verified identity"
	fi
	tail -c +"$((hlen + 1))" "$file" >"$T_TMP/$name.after"
	files_equal "$msg" "$T_TMP/$name.after" "$name: the SIP message follows the header unchanged"
}

# peer_port LISTENER: the client port of the last connection LISTENER accepted.
peer_port() {
	newlog | grep -E "listen=$1 peer=.* accepted" | tail -n 1 | sed -E 's/.* peer=[^ ]*:([0-9]+) accepted.*/\1/'
}

mark_log
n=$(($(accepts "$REC") + 1))
ok_cmd "proxy-protocol = v2, IPv4, MTLS client" \
	client client "$PP" --send "$T_TMP/a.in" --out "$T_TMP/pp4.out" --read-timeout 500
sport=$(peer_port pp4)
backend_closed "$REC" "$n"
check_proxy pp4 "$REC/conn-$n.bin" "$T_TMP/a.in" 11 "7f 00 00 01" "$sport" "7f 00 00 01" "$PP" 07 0 "$ID"

# a resumed session: the certificate was presented on an earlier connection
rm -f "$T_TMP/sess"
client client "$PP" --sessfile "$T_TMP/sess" --send "$T_TMP/a.in" --read-timeout 300 >/dev/null 2>&1
mark_log
n=$(($(accepts "$REC") + 1))
ok_cmd "proxy-protocol = v2, IPv4, MTLS client resuming its session" \
	client client "$PP" --sessfile "$T_TMP/sess" --print-info --send "$T_TMP/a.in" --read-timeout 500
like 'resumed=yes' "$(cat "$T_OUT")" "... the session is resumed"
backend_closed "$REC" "$n"
read -ra PP_BYTES <<<"$(od -An -tx1 -v "$REC/conn-$n.bin" | tr '\n' ' ')"
tlvs=$(pp_tlvs 28 $((16 + $(pp_num 14 2))))
ssl=$(tlv_find "$tlvs" 20)
is 05 "$(pp_hex "${ssl% *}" 1)" "... client bits 0x05: SSL and CERT_SESS, not CERT_CONN"
subs=$(pp_tlvs $((${ssl% *} + 5)) $((${ssl% *} + ${ssl#* })))
v=$(tlv_find "$subs" 22) && v=$(pp_str "${v% *}" "${v#* }")
is "$ID" "$v" "... CN is still the verified identity"

if [ "$have_ipv6" = 1 ]; then
	mark_log
	n=$(($(accepts "$REC") + 1))
	ok_cmd "proxy-protocol = v2, IPv6, anonymous client" \
		client - "6:$P6" --send "$T_TMP/a.in" --out "$T_TMP/pp6.out" --read-timeout 500
	sport=$(peer_port pp6)
	backend_closed "$REC" "$n"
	check_proxy pp6 "$REC/conn-$n.bin" "$T_TMP/a.in" 21 \
		"00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01" "$sport" \
		"00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01" "$P6" 01 nonzero -
else
	skip 15 "no IPv6 loopback"
fi

# ------------------------------------------------------------------ the end
ok_cmd "the daemon is still running" kill -0 "$SIDECAR_PID"
stop_sidecar 10
is 0 "$SIDECAR_STATUS" "SIGTERM: exit status 0"

done_testing
