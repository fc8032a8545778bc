#!/bin/bash
# 72-calls-baresip-kamailio: real calls through the sidecar. Two baresip user
# agents, alice and bob, each in a network namespace of its own with nothing
# but loopback, register and call each other through the sidecar's TLS
# listener; the legacy server is Kamailio with Debian's unmodified stock
# configuration (/etc/kamailio/kamailio.cfg, copied), on plaintext TCP:
#
#   [ns alice] baresip -TLS-> 127.0.0.1:LPORT (socat) -unix socket-+
#                                                                   +-> sip-sidecar
#   [ns bob]   baresip -TLS-> 127.0.0.1:LPORT (socat) -unix socket-+    127.0.0.1:LPORT
#                                                                         | TCP
#                                                           Kamailio 127.0.0.1:KPORT
#
# A namespace reaches nothing but the sidecar's listener, through the socat
# tunnel on its own 127.0.0.1:LPORT. On its 127.0.0.1:KPORT (the legacy
# server's port) a trap listener records whatever arrives: a UA that follows
# an untranslated Record-Route or Contact naming the legacy server's
# plaintext loopback address lands there, and the test fails. Each UA also
# runs a tiny DNS responder (data/calls/dns.pl: sip.example.test is
# 127.0.0.1), since baresip 1.0 resolves host names through DNS only.
#
# Each UA runs with its SIP trace on (-s): every request it sends must go to
# the sidecar (127.0.0.1:LPORT), and the trace shows what it received.
#
# Sub-runs, each with a fresh Kamailio, sidecar and pair of UAs:
#   nat    stock config with -A WITH_NAT (nathelper + rtpproxy; no rtpproxy
#          runs: the stock script ignores rtpproxy_manage()'s failure, and
#          the module only logs that the proxy is disabled, so signaling is
#          untouched. The sidecar's loopback addresses count as NAT for the
#          stock test nat_uac_test("19"): the Via port differs from the
#          source port.)
#   plain  stock config, no defines
#   norr   stock config with its record_route() lines commented out (sed;
#          an empty statement ";" stays, Kamailio refuses an empty block).
#          In-dialog requests then carry no Route: the UA sends them to the
#          Request-URI, the peer's flow as the sidecar advertised it
#          (sip:bob-...@sip.example.test:LPORT;transport=tls;sc-flow=...),
#          i.e. to the sidecar, which hands them to Kamailio; the stock
#          route[WITHINDLG] cannot loose_route() them, drops the ACK and
#          answers 404 Not here. These points pass only if the sidecar
#          delivers such requests to the flow itself.
#   topos  stock config (no defines) with the topos module loaded
#          (topology hiding, a B2BUA-like stand-in). Changed by sed: three
#          lines added, loadmodule db_text.so and topos.so and topos's
#          db_url (a db_text directory in $T_TMP holding Debian's
#          topos_d, topos_t and version table files, their string columns
#          made nullable), and MESSAGE added to the methods the stock
#          script record-routes (topos needs that, see below). Kamailio
#          then strips Via and Record-Route history and puts its own
#          Contact, sip:[ab]tpsh-...@127.0.0.1:KPORT;transport=tcp, into
#          both legs of the dialog: in-dialog requests go to that Contact,
#          which the sidecar must advertise as itself, not hand out as is.
#   idle   stock WITH_NAT, the sidecar with idle-timeout = 3s: a UA that
#          registered (regint=60) must still be called after its connection
#          was quiet for longer than idle-timeout
# Steps of nat, plain, norr and topos: both register; alice calls bob (auto
# answer): INVITE reaches bob, 200 OK reaches alice, ACK reaches bob;
# alice's re-INVITE (hold) gets 200 OK; bob's BYE ends the call; bob calls
# alice, alice's BYE ends it; a ringing call (bob answers manually) is
# CANCELled; a MESSAGE alice -> bob arrives; nothing leaked.
#
# Only the stock configuration's own knobs are used: listen, alias, module
# path, runtime directory and pid file as command line options (-l,
# --alias, -L, -Y, -P), defines with -A. Without WITH_MYSQL the stock config
# keeps usrloc in memory (db_mode 0) and without WITH_AUTH it does not
# authenticate (it only refuses to relay for foreign domains, hence the
# alias sip.example.test). The norr and topos copies are the exceptions,
# edited with sed as described above.
#
# baresip 1.0 (libre 1.1) loads sip_cafile but does not verify the server's
# certificate (its TLS client never sets a verify mode or host name, and
# sends no SNI): the certificate the UAs are offered is verified here with
# t/tlsclient through the same tunnel instead.
#
# Needs root (ip netns), baresip (baresip-core), kamailio, socat, perl.
# CALLS_TIMEOUT (s, default 20) bounds each wait for an expected event;
# waits stop early on a sure failure (a leaked request, an error response,
# a 2xx retransmitted for lack of an ACK).
#
# SPDX-License-Identifier: MIT
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"
# shellcheck source=t/data/calls/lib-calls.sh
. "$T_SRC/data/calls/lib-calls.sh"
# shellcheck source=t/data/interop/interop.sh
. "$T_SRC/data/interop/interop.sh"

CALLS_DATA=$T_SRC/data/calls
STOCK_CFG=${KAMAILIO_STOCK_CFG:-/etc/kamailio/kamailio.cfg}
DOMAIN=sip.example.test
T_EV=${CALLS_TIMEOUT:-20}
IDLE=3
UAS=(alice bob)

require_sidecar
[ "$(id -u)" = 0 ] || skip_all "needs root (network namespaces for the user agents)"
require_cmd baresip kamailio socat ip perl stdbuf
[ -x "$TLSCLIENT" ] || skip_all "not built: $TLSCLIENT"
[ -r "$STOCK_CFG" ] || skip_all "no stock Kamailio configuration $STOCK_CFG"
KAM_MPATH=$(kamailio_mpath) || skip_all "no Kamailio module directory with sl.so"
for m in jsonrpcs kex corex tm tmx sl rr pv maxfwd usrloc registrar textops textopsx siputils \
	xlog sanity ctl cfg_rpc acc counters nathelper rtpproxy; do
	[ -f "$KAM_MPATH/$m.so" ] || skip_all "Kamailio module $m.so (stock configuration) not installed"
done
BS_MODS=
for d in /usr/lib/baresip/modules /usr/lib/*/baresip/modules /usr/local/lib/baresip/modules; do
	[ -f "$d/g711.so" ] && BS_MODS=$d && break
done
[ -n "$BS_MODS" ] || skip_all "baresip module directory (with g711.so) not found"
# topos: its own modules, not part of the stock configuration
TOPOS_MISSING=
for m in db_text topos; do
	[ -f "$KAM_MPATH/$m.so" ] || TOPOS_MISSING+=" $m.so"
done
TOPOS_TABLES=${KAMAILIO_DBTEXT_DIR:-/usr/share/kamailio/dbtext/kamailio}
for f in topos_d topos_t version; do
	[ -r "$TOPOS_TABLES/$f" ] || TOPOS_MISSING+=" $TOPOS_TABLES/$f"
done
for m in stdio menu account contact g711 aubridge; do
	[ -f "$BS_MODS/$m.so" ] || skip_all "baresip module $m.so not installed"
done
certs_dir >/dev/null || skip_all "no test certificates"

# ------------------------------------------------------------ namespaces

NS_PREFIX=sc72-$$
declare -A NS
for u in "${UAS[@]}"; do
	NS[$u]=$NS_PREFIX-$u
done

trap calls_exit EXIT

for u in "${UAS[@]}"; do
	if ! ip netns add "${NS[$u]}" 2>"$T_TMP/netns.err"; then
		skip_all "ip netns add does not work here: $(head -n 1 "$T_TMP/netns.err")"
	fi
	if ! ip -n "${NS[$u]}" link set lo up 2>>"$T_TMP/netns.err" ||
		! ip netns exec "${NS[$u]}" true 2>>"$T_TMP/netns.err"; then
		skip_all "ip netns exec does not work here: $(head -n 1 "$T_TMP/netns.err")"
	fi
done

KPORT=$(free_port) && LPORT=$(free_port) || bail_out "no free ports"

plan 53

# Per namespace, all kept for the whole script: the DNS responder, the
# tunnel to the sidecar's listener and the trap on the legacy server's port.
for u in "${UAS[@]}"; do
	ns=${NS[$u]}
	sock=$T_TMP/sidecar-$LPORT-$u.sock
	: >"$T_TMP/trap-$u.bin"
	ip netns exec "$ns" perl "$CALLS_DATA/dns.pl" 127.0.0.1:53 "$DOMAIN=127.0.0.1" \
		>"$T_TMP/dns-$u.out" 2>&1 </dev/null &
	track_pid $!
	socat "UNIX-LISTEN:$sock,fork" "TCP:127.0.0.1:$LPORT" >"$T_TMP/tunnel-$u.out" 2>&1 </dev/null &
	track_pid $!
	wait_for_file "$sock" 10 || bail_out "socat: no unix socket $sock"
	ip netns exec "$ns" socat "TCP-LISTEN:$LPORT,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$sock" \
		>"$T_TMP/tunnel-ns-$u.out" 2>&1 </dev/null &
	track_pid $!
	ip netns exec "$ns" socat -u "TCP-LISTEN:$KPORT,bind=127.0.0.1,fork,reuseaddr" \
		"OPEN:$T_TMP/trap-$u.bin,creat,append" >"$T_TMP/trap-ns-$u.out" 2>&1 </dev/null &
	track_pid $!
	wait_until 10 ns_listening "$ns" "$LPORT" && wait_until 10 ns_listening "$ns" "$KPORT" &&
		wait_until 10 ns_listening "$ns" 53 udp ||
		bail_out "namespace $ns: tunnel, trap or DNS responder not listening"
done

# ------------------------------------------------------------- Kamailio

KAM_PID=
# kamailio_start NAME CFG [KAMAILIO-OPTS...]: the stock configuration CFG
# listening on tcp:127.0.0.1:KPORT; log $T_TMP/kamailio-NAME.log
kamailio_start() {
	local name=$1 cfg=$2 run=$T_TMP/kamailio-$1.run i
	shift 2
	mkdir -p "$run" || return 1
	wait_until 10 eval '! port_listening "$KPORT"' || {
		diag "kamailio $name: port $KPORT still in use"
		return 1
	}
	# -DD: no daemon, our child, stops its workers on SIGTERM; -E: log to
	# stderr; -Y/-P: a private runtime dir and pid file (ctl and jsonrpcs
	# put their sockets in the runtime dir)
	kamailio -f "$cfg" -L "$KAM_MPATH" -DD -E -l "tcp:127.0.0.1:$KPORT" --alias="$DOMAIN" \
		-Y "$run" -P "$run/kamailio.pid" -m 32 -M 8 "$@" \
		>"$T_TMP/kamailio-$name.log" 2>&1 </dev/null &
	KAM_PID=$!
	track_pid "$KAM_PID"
	for ((i = 0; i < 300; i++)); do
		port_listening "$KPORT" && return 0
		if ! t_alive "$KAM_PID"; then
			diag "kamailio $name exited:" "$(tail -n 15 "$T_TMP/kamailio-$name.log")"
			return 1
		fi
		sleep 0.05
	done
	diag "kamailio $name: port $KPORT not listening after 15 s"
	return 1
}

kamailio_stop() {
	[ -n "$KAM_PID" ] || return 0
	kill -TERM "$KAM_PID" 2>/dev/null
	wait_pid_exit "$KAM_PID" 10 || kill -KILL "$KAM_PID" 2>/dev/null
	wait "$KAM_PID" 2>/dev/null
	untrack_pid "$KAM_PID"
	KAM_PID=
}

cp "$STOCK_CFG" "$T_TMP/kamailio-stock.cfg"
# norr: the stock configuration without record-routing. Both of its
# record_route() calls (initial INVITE/SUBSCRIBE, in-dialog NOTIFY) sit
# alone on their lines, each the only statement of its block: Kamailio
# refuses an empty block, hence the empty statement ";" left in its place.
sed 's/^\([[:space:]]*\)record_route();/\1; # record_route(); 72-calls: disabled/' \
	"$STOCK_CFG" >"$T_TMP/kamailio-norr.cfg"
grep -q '72-calls: disabled' "$T_TMP/kamailio-norr.cfg" ||
	diag "norr: no 'record_route();' line in $STOCK_CFG: the norr run record-routes"

# topos: the stock configuration plus topology hiding. topos keeps its
# dialog and branch records in a database: db_text, a directory of table
# files (Debian's, with the version table, which db_text checks). Every
# string column made nullable: topos 5.6 inserts NULL for the columns it
# has no value for (x_context without a "context" parameter, a_srcaddr
# and others in branch records), which db_text refuses for a column
# declared without "null" -- and then topos stores nothing, logs
# "failed to store", and silently passes every message through unhidden.
mkdir -p "$T_TMP/topos-db" &&
	cp "$TOPOS_TABLES/version" "$T_TMP/topos-db/" 2>/dev/null &&
	for f in topos_d topos_t; do
		sed '1s/(string)/(string,null)/g' "$TOPOS_TABLES/$f" >"$T_TMP/topos-db/$f" || break
	done
# topos needs record_route() for every initial request it is to handle
# (its README: "It also works for SIP MESSAGE ... record_route() must be
# used for them as well"); the stock script record-routes INVITE and
# SUBSCRIBE only. Without it topos stores nothing for a MESSAGE (warning
# "no local address - do record routing for all initial requests") but
# still strips the caller's Via from it: the callee's 200 OK then leaves
# Kamailio without any Via (error "tps_prepare_msg(): mandatory headers
# missing - via1: (nil)"), and the caller cannot match it.
sed -e '/^loadmodule "counters.so"/a\
loadmodule "db_text.so" # 72-calls: topos\
loadmodule "topos.so" # 72-calls: topos\
modparam("topos", "db_url", "text://'"$T_TMP/topos-db"'") # 72-calls: topos' \
	-e 's/^\([[:space:]]*if (is_method("INVITE|SUBSCRIBE\)")) {$/\1|MESSAGE")) { # 72-calls: topos/' \
	"$STOCK_CFG" >"$T_TMP/kamailio-topos.cfg"
grep -q '^loadmodule "topos.so"' "$T_TMP/kamailio-topos.cfg" ||
	TOPOS_MISSING+=" (no 'loadmodule \"counters.so\"' line in $STOCK_CFG to add topos after)"
grep -q 'SUBSCRIBE|MESSAGE")) { # 72-calls: topos' "$T_TMP/kamailio-topos.cfg" ||
	diag "topos: no 'if (is_method(\"INVITE|SUBSCRIBE\")) {' line in $STOCK_CFG: MESSAGE not record-routed"

# ------------------------------------------------------------- sidecar

# sidecar_start VAR [GLOBAL-LINE...]
sidecar_start() {
	local var=$1 conf=$T_TMP/sidecar-$1.conf l
	shift
	{
		printf '[global]\nallow-root = yes\nlog-level = debug\nhandshake-timeout = 5s\n'
		for l in "$@"; do
			printf '%s\n' "$l"
		done
		cat <<EOF

[listen calls]
bind = 127.0.0.1:$LPORT
backend = 127.0.0.1:$KPORT
cert = $CERTS/server.crt
key = $CERTS/server.key
client-auth = none
advertise = $DOMAIN:$LPORT
EOF
	} >"$conf"
	start_sidecar "$conf" "$LPORT"
}

# ------------------------------------------------------------ the UAs

declare -A UA_DIR UA_PID UA_FD UA_MARK TRAP_MARK UA_VMARK TRAP_VMARK

# ua_start VAR U SIPPORT: baresip for U in its namespace (config dir
# $T_TMP/VAR-U, output ua.out), commands through the fifo ctl on its stdin
# (stdio.so, menu.so: "/dial URI", "/hangup", ...); auto answer.
ua_start() {
	local var=$1 u=$2 port=$3 dir=$T_TMP/$1-$2 peer fd
	[ "$u" = alice ] && peer=bob || peer=alice
	mkdir -p "$dir" || return 1
	cat >"$dir/config" <<EOC
poll_method		epoll
sip_listen		127.0.0.1:$port
# loaded, but baresip 1.0 does not verify the server (see the top)
sip_cafile		$CERTS/ca.crt
# the namespace has no default route: without this baresip finds no address
net_interface		127.0.0.1
dns_server		127.0.0.1:53
call_local_timeout	120
call_max_calls		4
audio_player		aubridge,$u
audio_source		aubridge,$u
audio_alert		aubridge,$u-alert
module_path		$BS_MODS
module			stdio.so
module			g711.so
module			aubridge.so
module_tmp		account.so
module_app		contact.so
module_app		menu.so
EOC
	printf '<sip:%s@%s;transport=tls>;outbound="sip:%s:%s;transport=tls";regint=60;answermode=auto\n' \
		"$u" "$DOMAIN" "$DOMAIN" "$LPORT" >"$dir/accounts"
	# the current contact is whom "/message" goes to
	printf '"%s" <sip:%s@%s>\n' "$peer" "$peer" "$DOMAIN" >"$dir/contacts"
	printf 'sip:%s@%s\n' "$peer" "$DOMAIN" >"$dir/current_contact"
	rm -f "$dir/ctl"
	mkfifo "$dir/ctl" || return 1
	# held open read-write by this shell: baresip never sees EOF on stdin
	# (at EOF it spins)
	exec {fd}<>"$dir/ctl"
	UA_FD[$u]=$fd
	UA_DIR[$u]=$dir
	: >"$dir/ua.out"
	UA_MARK[$u]=0
	UA_VMARK[$u]=0
	TRAP_VMARK[$u]=$(stat -c %s "$T_TMP/trap-$u.bin")
	TRAP_MARK[$u]=${TRAP_VMARK[$u]}
	# stdbuf: libre prints with stdio, block-buffered into a file.
	# baresip 1.0 sometimes dies of SIGSEGV when stopped with calls still
	# pending: no core file (and its directory as the working directory),
	# and disowned, so that bash does not print that into the TAP stream.
	(
		cd "$dir" && ulimit -c 0 &&
			exec ip netns exec "${NS[$u]}" stdbuf -oL baresip -f "$dir" -s <"$dir/ctl" >"$dir/ua.out" 2>&1
	) &
	UA_PID[$u]=$!
	track_pid "${UA_PID[$u]}"
	disown "${UA_PID[$u]}"
}

# msgs U [FROM]: one line per SIP message in U's trace (baresip -s) since
# the mark:
#   DIR SRC DST CSEQ-NUMBER CSEQ-METHOD CALL-ID START-LINE
# DIR is recv for what came from the sidecar (SRC 127.0.0.1:LPORT), sent
# otherwise. For a request U sent, DST is where it went (the connection's
# peer); for a response libre prints its Via address instead.
msgs() {
	ua_new "$1" "${2:-}" | tr -d '\033\r' | awk -v lport="$LPORT" '
		substr($0, length($0) - 6) == "[36;1m#" { inb = 1; hdr = ""; first = ""; cs = "- -"; cid = "-"; next }
		!inb { next }
		hdr == "" { hdr = $0; next }
		first == "" { first = $0; next }
		tolower($1) == "cseq:" { cs = $2 " " $3; next }
		tolower($1) == "call-id:" || $1 == "i:" { cid = $2; next }
		index($0, "[;m") == 1 {
			split(hdr, a, " ")
			print ((a[2] ~ (":" lport "$")) ? "recv" : "sent"), a[2], a[4], cs, cid, first
			inb = 0
		}'
}

mark_all() {
	local u
	for u in "${UAS[@]}"; do
		UA_MARK[$u]=$(stat -c %s "${UA_DIR[$u]}/ua.out")
		TRAP_MARK[$u]=$(stat -c %s "$T_TMP/trap-$u.bin")
	done
	mark_log
}

# leaks [sub-run]: true (and LEAKS set) if, since the mark (or since the
# sub-run began), a trap received bytes or a UA sent a request to anything
# but the sidecar's listener
LEAKS=
leaks() {
	local u s from tfrom out=
	for u in "${UAS[@]}"; do
		if [ "${1:-}" = sub-run ]; then
			from=${UA_VMARK[$u]} tfrom=${TRAP_VMARK[$u]}
		else
			from=${UA_MARK[$u]} tfrom=${TRAP_MARK[$u]}
		fi
		s=$(stat -c %s "$T_TMP/trap-$u.bin")
		if [ "$s" -gt "$tfrom" ]; then
			out+="$u's namespace: $((s - tfrom)) bytes on the trap 127.0.0.1:$KPORT, starting with: "
			out+="$(tail -c +$((tfrom + 1)) "$T_TMP/trap-$u.bin" | head -n 1 | tr -d '\r')"$'\n'
		fi
		out+=$(msgs "$u" "$from" | awk -v u="$u" -v d="127.0.0.1:$LPORT" \
			'$1 == "sent" && $7 !~ /^SIP\// && $3 != d {
				print u " sent " $7 " (" $4 " " $5 ") to " $3 ", not to the sidecar " d }')
		out=${out%$'\n'}${out:+$'\n'}
	done
	LEAKS=${out%$'\n'}
	[ -n "$LEAKS" ]
}

# now_ms: wall clock in milliseconds
now_ms() {
	if [ -n "${EPOCHREALTIME:-}" ]; then
		local t=${EPOCHREALTIME/[.,]/}
		echo $((t / 1000))
	else
		echo $(($(date +%s) * 1000))
	fi
}

# show_step: diagnostics after a failed step: leaks, both traces since
# the mark, the sidecar's log since the mark
show_step() {
	local u
	leaks && diag "leaked:" "$LEAKS"
	for u in "${UAS[@]}"; do
		diag "$u's SIP messages since the step began (dir src dst cseq method call-id start-line):" \
			"$(msgs "$u" | cut -c 1-240 | tail -n 12)"
		diag "$u's baresip:" "$(ua_new "$u" | tr -d '\033\r' | grep -aE \
			'^(call|ua|reg): |: (Call |Incoming call|session closed|Answering)|terminated' | tail -n 5)"
	done
	diag "sidecar:" "$(newlog | cut -c 1-240 | tail -n 8)"
	if [ -n "$VAR_NOTE" ]; then
		diag "$VAR_NOTE"
		VAR_NOTE= # once per sub-run
	fi
}

# step DESC T CHECK [ABORT]: one test point: pass when CHECK succeeds in T s
step() {
	local r
	expect "$2" "$3" "${4:-false}"
	r=$?
	if [ "$r" = 0 ]; then
		pass "$1"
		return 0
	fi
	fail "$1"
	if [ "$r" = 2 ]; then
		diag "  stopped early: a sure failure"
	else
		diag "  not within $2 s"
	fi
	show_step
	return 1
}

# uas_start VAR: both UAs; 2 points "VAR: U registers"
uas_start() {
	local var=$1 u ok=0
	ua_start "$var" alice 5060
	ua_start "$var" bob 5070
	mark_log
	for u in "${UAS[@]}"; do
		step "$var: $u registers through the sidecar (REGISTER over TLS, 200 OK)" "$T_EV" \
			"has $u recv REGISTER 'SIP/2.0 200'" "reg_failed $u" && ok=$((ok + 1))
	done
	[ "$ok" = 2 ]
}

uas_stop() {
	local u
	for u in "${UAS[@]}"; do
		[ -n "${UA_PID[$u]:-}" ] && kill -TERM "${UA_PID[$u]}" 2>/dev/null
	done
	for u in "${UAS[@]}"; do
		ua_stop "$u"
	done
}

# ----------------------------------------------------------- the steps

# dial A B: A calls B; sets CID and CSEQ of A's INVITE (empty if none went)
CID=
CSEQ=
dial() {
	local caller=$1 s
	mark_all
	ua_say "$caller" "/dial sip:$2@$DOMAIN"
	wait_until 10 eval '[ -n "$(last_sent "$caller" INVITE)" ]'
	s=$(last_sent "$caller" INVITE)
	CID=${s% *}
	CSEQ=${s#* }
	[ -n "$s" ] || {
		CID=none
		CSEQ=0
	}
}

# call A B VAR: A calls B (auto answer); 3 points: INVITE at B, 200 OK at A
# (call established there), ACK at B (established there too).
# Sets UP_A, UP_B (1: the call is established at that end).
UP_A=0
UP_B=0
call() {
	local a=$1 b=$2 var=$3
	UP_A=0 UP_B=0
	dial "$a" "$b"
	step "$var: $a calls $b: the INVITE reaches $b" "$T_EV" \
		"has $b recv INVITE INVITE $CID" "final_err $a INVITE $CID"
	step "$var: $a calls $b: $b's 200 OK reaches $a (call established at $a)" "$T_EV" \
		"has $a recv INVITE 'SIP/2.0 200' $CID && ua_says $a 'Call established'" \
		"final_err $a INVITE $CID" && UP_A=1
	step "$var: $a calls $b: $a's ACK reaches $b (call established at $b)" "$T_EV" \
		"has $b recv ACK ACK $CID && ua_says $b 'Call established'" \
		"no_ack $b || final_err $a INVITE $CID" && UP_B=1
}

# call_both A B VAR: A calls B; 1 point: INVITE, 200 OK and ACK went
# through (established at both ends). Sets UP_A, UP_B.
call_both() {
	local a=$1 b=$2 var=$3
	UP_A=0 UP_B=0
	dial "$a" "$b"
	step "$var: $a calls $b: established at both ends (INVITE, 200 OK, ACK)" "$T_EV" \
		"ua_says $a 'Call established' && ua_says $b 'Call established'" \
		"final_err $a INVITE $CID || no_ack $b"
	ua_says "$a" 'Call established' && UP_A=1
	ua_says "$b" 'Call established' && UP_B=1
}

# hold A B VAR: A puts the call on hold (re-INVITE); 1 point
hold() {
	local a=$1 b=$2 var=$3 c
	mark_all
	ua_say "$a" "/hold"
	wait_until 10 eval '[ -n "$(last_sent "$a" INVITE)" ]'
	c=$(last_sent "$a" INVITE)
	c=${c#* }
	step "$var: $a's re-INVITE (hold) reaches $b and gets 200 OK" "$T_EV" \
		"has $b recv INVITE INVITE $CID ${c:-0} && has $a recv INVITE 'SIP/2.0 200' $CID ${c:-0}" \
		"final_err $a INVITE $CID"
}

# bye A B VAR UP DESC: A hangs up; 1 point: BYE reaches B (its call
# closes: libre reports a BYE as "session closed: Connection reset by
# peer"), 200 OK back.
# Not tried when the call never got established at A (UP 0): a UAS may not
# send BYE before the ACK, libre waits for the 2xx retransmissions to end
# (32 s).
bye() {
	local a=$1 b=$2 var=$3
	if [ "$4" != 1 ]; then
		fail "$var: $5"
		diag "  not tried: the call was never established at $a (no ACK)"
		return 1
	fi
	mark_all
	ua_say "$a" "/hangup"
	step "$var: $5" "$T_EV" \
		"has $b recv BYE BYE $CID && ua_says $b 'session closed' && has $a recv BYE 'SIP/2.0 2' $CID" \
		"final_err $a BYE $CID"
}

# cancel A B VAR: B rings (manual answer), A gives up: CANCEL; 1 point
cancel() {
	local a=$1 b=$2 var=$3 desc="$3: a ringing call $1 -> $2 is cancelled: CANCEL reaches $2, 487 reaches $1"
	mark_all
	ua_say "$b" "/answermode manual"
	wait_until 5 ua_says "$b" "Answer mode changed to: manual" ||
		diag "$b: no 'Answer mode changed to: manual'"
	dial "$a" "$b"
	if expect "$T_EV" "ua_says $b 'Incoming call from' && has $a recv INVITE 'SIP/2.0 18' $CID" \
		"final_err $a INVITE $CID"; then
		ua_say "$a" "/hangup"
		step "$desc" "$T_EV" \
			"has $b recv CANCEL CANCEL $CID && has $a recv INVITE 'SIP/2.0 487' $CID" \
			"has $a recv INVITE 'SIP/2.0 2' $CID"
	else
		fail "$desc"
		diag "  $b never rang (no INVITE there, or no 180 Ringing back at $a)"
		show_step
	fi
	ua_say "$b" "/answermode auto"
}

# message A B VAR: MESSAGE A -> B; 1 point. The 2xx must be A's: libre
# traces every response it receives, and reports one that matches none of
# its transactions (e.g. one that lost its Via) as "unhandeled response";
# it then waits for its transaction's timeout (32 s).
message() {
	local a=$1 b=$2 var=$3 text=hello-$3-$$
	mark_all
	ua_say "$a" "/message $text"
	step "$var: MESSAGE $a -> $b is delivered (shown by $b, 200 OK back)" "$T_EV" \
		"ua_says $b ': \"$text\"' && has $a recv MESSAGE 'SIP/2.0 2' && sleep 0.3 &&
			! ua_says $a 'unhandeled response'" \
		"final_err $a MESSAGE || ua_says $a 'unhandeled response'"
}

no_leaks() {
	local desc="$1: nothing leaked: the traps stayed empty, every request went to the sidecar"
	if leaks sub-run; then
		fail "$desc"
		diag "$LEAKS"
		return 1
	fi
	pass "$desc"
}

# ------------------------------------------------------- the sub-runs

NPOINTS=12
VAR_NOTE=
# variant VAR CFG [KAMAILIO-OPTS...]: the 12 points of one sub-run
variant() {
	local var=$1 cfg=$2 k
	shift 2
	diag "---- $var: Kamailio $(basename "$cfg") $*"
	if ! kamailio_start "$var" "$cfg" "$@"; then
		for ((k = 0; k < NPOINTS; k++)); do fail "$var: (Kamailio did not start)"; done
		return
	fi
	if ! sidecar_start "$var"; then
		for ((k = 0; k < NPOINTS; k++)); do fail "$var: (the sidecar did not start)"; done
		kamailio_stop
		return
	fi
	if uas_start "$var"; then
		call alice bob "$var"
		if [ "$UP_A" = 1 ]; then
			hold alice bob "$var"
			bye bob alice "$var" "$UP_B" "bob's BYE reaches alice and ends the call there, 200 OK back"
		else
			skip 2 "$var: no call"
		fi
		reset_calls
		call_both bob alice "$var"
		if [ "$UP_A" = 1 ]; then
			bye alice bob "$var" "$UP_B" "alice's BYE reaches bob and ends the call there, 200 OK back"
		else
			skip 1 "$var: no call"
		fi
		reset_calls
		cancel alice bob "$var"
		reset_calls
		message alice bob "$var"
	else
		skip $((NPOINTS - 3)) "$var: a UA did not register"
	fi
	no_leaks "$var"
	uas_stop
	stop_sidecar
	kamailio_stop
}

# idle: the sidecar's idle-timeout is short, the registration (regint=60,
# expires 60) long: after the connections were quiet for longer than
# idle-timeout, bob must still be reachable. 4 points.
idle_run() {
	local var=idle k quiet=$((IDLE + 2)) end closed=
	diag "---- $var: Kamailio kamailio-stock.cfg -A WITH_NAT, sidecar idle-timeout = ${IDLE}s"
	if ! kamailio_start "$var" "$T_TMP/kamailio-stock.cfg" -A WITH_NAT; then
		for ((k = 0; k < 4; k++)); do fail "$var: (Kamailio did not start)"; done
		return
	fi
	if ! sidecar_start "$var" "idle-timeout = ${IDLE}s"; then
		for ((k = 0; k < 4; k++)); do fail "$var: (the sidecar did not start)"; done
		kamailio_stop
		return
	fi
	ua_start "$var" alice 5060
	ua_start "$var" bob 5070
	mark_log
	if step "$var: alice and bob register (regint=60)" "$T_EV" \
		"has alice recv REGISTER 'SIP/2.0 200' && has bob recv REGISTER 'SIP/2.0 200'" \
		"reg_failed alice || reg_failed bob"; then
		mark_all
		# The condition under test is the quiet time itself: a bounded
		# wait of idle-timeout + 2 s, stopped early if the sidecar closes
		# a connection for idleness.
		end=$(($(now_ms) + quiet * 1000))
		while [ "$(now_ms)" -lt "$end" ]; do
			closed=$(newlog | grep 'closed: idle')
			[ -n "$closed" ] && break
			sleep 0.2
		done
		if [ -n "$closed" ]; then
			fail "$var: the sidecar keeps the registered connections open past idle-timeout = ${IDLE}s"
			diag "$closed"
		else
			pass "$var: the sidecar keeps the registered connections open past idle-timeout = ${IDLE}s (${quiet}s quiet)"
		fi
		call_both alice bob "$var"
	else
		skip 2 "$var: no registration"
	fi
	no_leaks "$var"
	uas_stop
	stop_sidecar
	kamailio_stop
}

# ------------------------------------------------------------------ run

# The certificate the UAs are offered, verified where they run (baresip 1.0
# does not verify it): through alice's tunnel, chain to the test CA and the
# name sip.example.test.
if sidecar_start cert; then
	ok_cmd "the sidecar's certificate, seen from alice's namespace, verifies (test CA, $DOMAIN)" \
		ip netns exec "${NS[alice]}" "$TLSCLIENT" -c "127.0.0.1:$LPORT" --ca "$CERTS/ca.crt" \
		--sni "$DOMAIN" --verify-name "$DOMAIN" --read-timeout 300 --print-info </dev/null
	stop_sidecar
else
	fail "the sidecar's certificate, seen from alice's namespace, verifies (the sidecar did not start)"
fi

variant nat "$T_TMP/kamailio-stock.cfg" -A WITH_NAT
variant plain "$T_TMP/kamailio-stock.cfg"
VAR_NOTE="norr: without record-routing, in-dialog requests carry no Route header but
  name the peer's flow (sip:...@$DOMAIN:$LPORT;sc-flow=...) as Request-URI; the
  sidecar hands them to Kamailio, whose stock route[WITHINDLG] cannot
  loose_route() them: it drops an ACK without a transaction and answers
  other requests 404 Not here."
variant norr "$T_TMP/kamailio-norr.cfg"
VAR_NOTE=
if [ -z "$TOPOS_MISSING" ]; then
	variant topos "$T_TMP/kamailio-topos.cfg"
else
	skip "$NPOINTS" "topos: not installed:$TOPOS_MISSING"
fi
idle_run

done_testing
