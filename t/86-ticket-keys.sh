#!/bin/bash
# 86-ticket-keys.sh: ticket-key-file, session tickets shared by a farm.
#  - two daemons (hosts A and B of a farm; A with 2 workers) read the same
#    key file: a ticket from A resumes on B and the other way round, over
#    TLS 1.3 and TLS 1.2; without the option each daemon has its own key
#    (today's behaviour): a ticket from one does not resume on the other;
#  - rotation by SIGHUP (a new key appended): the old tickets still resume
#    on the reloaded host (the older key still opens them), new tickets are
#    sealed with the new key; a host not reloaded yet cannot open those (a
#    full handshake, the window of a rotation) until its own SIGHUP;
#  - the oldest key dropped: its tickets make a full handshake, the
#    connection still works;
#  - a bad key file: -t and a reload fail with FILE:LINE, the keys in force
#    stay; a file readable by others: a warning; no key in any log.
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2154 # BACKEND_PORT_<NAME> is set by start_backend

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

require_sidecar
require_cmd base64 head
for b in "$RECBACKEND" "$TLSCLIENT"; do
	[ -x "$b" ] || bail_out "not built: $b"
done
certs_dir >/dev/null || skip_all "no test certificates (t/mkcerts.sh)"
C=$CERTS

plan 48

newkey() { head -c 64 /dev/urandom | base64 -w 0; }
K1=$(newkey)
K2=$(newkey)
K3=$(newkey)
KEYS=$T_TMP/ticket.keys
write_keys() { # KEY... (oldest first)
	{
		echo "# session ticket keys of the farm, oldest first"
		printf '%s\n' "$@"
	} >"$KEYS.new"
	chmod 600 "$KEYS.new"
	mv "$KEYS.new" "$KEYS"
}
write_keys "$K1"

start_backend ans -a || bail_out "cannot start the backend"
pa=$(free_port)
pb=$(free_port)
pc=$(free_port)
pd=$(free_port)

# NAME is not the listener's name: the hosts of a farm share their
# configuration, and a ticket opens only on a listener of the same name and
# client-auth (the keys are bound to it), so every host calls it "farm".
conf() { # NAME PORT WORKERS [KEYFILE]
	cat <<EOF
[global]
allow-root = yes
log-level = debug
status-socket = off
workers = $3
${4:+ticket-key-file = $4}
max-connections = 1000

[listen farm]
bind = 127.0.0.1:$2
backend = 127.0.0.1:$BACKEND_PORT_ans
cert = $C/server.crt
key = $C/server.key
EOF
}
conf a "$pa" 2 "$KEYS" >"$T_TMP/a.conf"
conf b "$pb" 1 "$KEYS" >"$T_TMP/b.conf"
conf c "$pc" 1 >"$T_TMP/c.conf"
conf d "$pd" 1 >"$T_TMP/d.conf"

ok_cmd "-t accepts a key file" "$SIDECAR" -t -c "$T_TMP/a.conf"
unlike 'warning' "$(cat "$T_OUT")" "... mode 600: no warning"

start_named A "$T_TMP/a.conf" "$pa" || bail_out "daemon A did not start"
start_named B "$T_TMP/b.conf" "$pb" || bail_out "daemon B did not start"
start_named C "$T_TMP/c.conf" "$pc" || bail_out "daemon C did not start"
start_named D "$T_TMP/d.conf" "$pd" || bail_out "daemon D did not start"
like 'ticket keys: 1 from .*ticket\.keys, the newest \(line 2\) seals new tickets' "$(cat "$T_TMP/A.log")" \
	"log: ticket keys: 1 from FILE, the newest (line 2) seals"

# resumed PORT SESSFILE [TLSCLIENT-OPTS...]: one OPTIONS through PORT,
# resuming from SESSFILE; prints yes/no (or "failed")
resumed() {
	local port=$1 sess=$2
	shift 2
	if ! "$TLSCLIENT" -c "127.0.0.1:$port" --ca "$C/ca.crt" --sessfile "$sess" --sip 1 --print-info "$@" \
		>"$T_OUT" 2>&1; then
		echo failed
		return
	fi
	grep -o 'resumed=[a-z]*' "$T_OUT" | head -n 1 | cut -d= -f2
}

# ---- sharing: A and B
S=$T_TMP/s1
is no "$(resumed "$pa" "$S")" "a first connection to A: full handshake"
cp "$S" "$T_TMP/s1.k1" # a ticket sealed with K1
is yes "$(resumed "$pb" "$S")" "its ticket resumes on B"
is yes "$(resumed "$pa" "$S")" "B's ticket resumes on A"
ok_cmd "A's 2 workers: 6 connections in a row all resume" "$TLSCLIENT" -c "127.0.0.1:$pa" --ca "$C/ca.crt" \
	--sessfile "$S" --sip 1 --print-info --repeat 6
is 6 "$(grep -c 'resumed=yes' "$T_OUT")" "... 6 resumed"
T12="NORMAL:-VERS-ALL:+VERS-TLS1.2"
is no "$(resumed "$pb" "$T_TMP/s12" --priority "$T12")" "TLS 1.2: full handshake on B"
cp "$T_TMP/s12" "$T_TMP/s12.k1"
is yes "$(resumed "$pa" "$T_TMP/s12" --priority "$T12")" "TLS 1.2: B's ticket resumes on A"

# ---- without the option: each daemon its own key, as before
is no "$(resumed "$pc" "$T_TMP/sc")" "no ticket-key-file: full handshake on C"
is yes "$(resumed "$pc" "$T_TMP/sc")" "... C resumes its own ticket"
is no "$(resumed "$pd" "$T_TMP/sc")" "... but D cannot open it: full handshake"

# ---- rotation: K2 appended; A reloads first
write_keys "$K1" "$K2"
SIDECAR_PID=$PID_A SIDECAR_LOG=$T_TMP/A.log reload_sidecar
ok $? "A: reload ok with K2 appended"
like 'ticket keys: 2 from .*the newest \(line 3\) seals' "$(tail -n 5 "$T_TMP/A.log")" \
	"log: ticket keys: 2, the newest (line 3) seals"
cp "$T_TMP/s1.k1" "$S"
is yes "$(resumed "$pa" "$S")" "A after the rotation: a ticket sealed with K1 still resumes"
cp "$T_TMP/s12.k1" "$T_TMP/s12"
is yes "$(resumed "$pa" "$T_TMP/s12" --priority "$T12")" "... over TLS 1.2 too"
like 'ticket sealed with the older key of line 2' "$(cat "$T_TMP/A.log")" \
	"log (debug): ticket sealed with the older key of line 2"
cp "$T_TMP/s1.k1" "$S"
is yes "$(resumed "$pb" "$S")" "B (not reloaded yet) resumes it as well"
N=$T_TMP/new
is no "$(resumed "$pa" "$N")" "a new client on A: full handshake, its ticket sealed with K2"
cp "$N" "$T_TMP/new.k2"
is no "$(resumed "$pb" "$N")" "B without K2 yet cannot open it: a full handshake (the rotation window)"
SIDECAR_PID=$PID_B SIDECAR_LOG=$T_TMP/B.log reload_sidecar
ok $? "B: reload ok with K2"
cp "$T_TMP/new.k2" "$N"
is yes "$(resumed "$pb" "$N")" "B now resumes the ticket A sealed with K2"
cp "$T_TMP/s1.k1" "$S"
is yes "$(resumed "$pb" "$S")" "... and still the K1 ticket"

# ---- K1 dropped
write_keys "$K2" "$K3"
SIDECAR_PID=$PID_A SIDECAR_LOG=$T_TMP/A.log reload_sidecar
ok $? "A: reload ok with K1 dropped and K3 appended"
cp "$T_TMP/s1.k1" "$S"
is no "$(resumed "$pa" "$S")" "a K1 ticket: full handshake (the connection works)"
cp "$T_TMP/new.k2" "$N"
is yes "$(resumed "$pa" "$N")" "a K2 ticket still resumes"

# ---- bad files: -t, reload, start
write_keys "$K2" "$K3"
printf 'not-a-key\n' >>"$KEYS"
ok_status 1 "-t: a line that is not a key" "$SIDECAR" -t -c "$T_TMP/a.conf"
like "ticket\\.keys:4: not a base64 ticket key \\(one key of 64 bytes per line\\)" "$(cat "$T_OUT")" \
	"... FILE:LINE: not a base64 ticket key"
SIDECAR_PID=$PID_A SIDECAR_LOG=$T_TMP/A.log reload_sidecar
is 1 "$?" "A: the reload fails"
like 'reload failed: .*ticket\.keys:4: not a base64 ticket key' "$(tail -n 3 "$T_TMP/A.log")" \
	"log: reload failed: FILE:LINE: not a base64 ticket key"
cp "$T_TMP/new.k2" "$N"
is yes "$(resumed "$pa" "$N")" "the keys in force stay: a K2 ticket still resumes on A"
write_keys "$K2" "$(head -c 48 /dev/urandom | base64 -w 0)"
ok_status 1 "-t: a key of 48 bytes" "$SIDECAR" -t -c "$T_TMP/a.conf"
like "ticket\\.keys:3: a ticket key is 64 bytes, this one 48" "$(cat "$T_OUT")" "... FILE:LINE: 64 bytes, this one 48"
rm -f "$KEYS"
ok_status 1 "-t: the file missing" "$SIDECAR" -t -c "$T_TMP/a.conf"
like "a\\.conf:6: cannot read ticket-key-file .*ticket\\.keys: No such file or directory" "$(cat "$T_OUT")" \
	"... CONFIG:LINE: cannot read ticket-key-file"
echo "# empty" >"$KEYS"
ok_status 1 "-t: no key in the file" "$SIDECAR" -t -c "$T_TMP/a.conf"
like "a\\.conf:6: ticket-key-file .* has no key" "$(cat "$T_OUT")" "... CONFIG:LINE: has no key"
pe=$(free_port)
conf e "$pe" 1 "$KEYS" >"$T_TMP/e.conf"
ok_status 1 "start with no key in the file: refused" timeout 20 "$SIDECAR" -c "$T_TMP/e.conf"
like "e\\.conf:6: ticket-key-file .* has no key" "$(cat "$T_OUT")" "... CONFIG:LINE: has no key"
write_keys "$K2" "$K3"
chmod 644 "$KEYS"
ok_cmd "-t: a file readable by others still loads" "$SIDECAR" -t -c "$T_TMP/a.conf"
like "warning: .*a\\.conf:6: ticket-key-file .*ticket\\.keys is readable by group or others \\(mode 644\\): chmod 600 it" \
	"$(cat "$T_OUT")" "... with a warning"
SIDECAR_PID=$PID_A SIDECAR_LOG=$T_TMP/A.log reload_sidecar
ok $? "A: reload ok with the good file back"

# ---- no key material in any log
leaked=0
for k in "$K1" "$K2" "$K3"; do
	grep -qF -- "${k:0:24}" "$T_TMP"/*.log && leaked=1
done
is 0 "$leaked" "no key (nor its first 24 base64 characters) in any log"

for n in A B C D; do
	pid_var=PID_$n
	kill -TERM "${!pid_var}"
	wait_pid_exit "${!pid_var}" 10
	ok $? "daemon $n stops"
done

done_testing
