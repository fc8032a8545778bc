#!/bin/sh
# The generated systemd unit: the directives the daemon relies on are there,
# "systemd-analyze verify" is clean, and "systemd-analyze security" rates
# its exposure 2.0 or lower. TAP; run by make check (T_BUILD, T_SRC, SIDECAR).

T_BUILD=${T_BUILD:-$(pwd)/t}
T_SRC=${T_SRC:-$(cd "$(dirname "$0")" && pwd)}
UNIT=${UNIT:-$T_BUILD/../systemd/sip-sidecar.service}
MAX_EXPOSURE=2.0

n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { # check DESCRIPTION COMMAND...
	d=$1; shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}
diag() { printf '%s\n' "$@" | sed 's/^/# /'; }

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "1..0 # SKIP systemd-analyze not installed"
	exit 0
fi
if [ ! -f "$UNIT" ]; then
	echo "1..1"
	not_ok "unit generated at $UNIT (run make first)"
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/t60.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# --- the unit's content -----------------------------------------------
has() { grep -Eq "^$1\$" "$UNIT"; }
hasnt() { ! grep -Eq "^$1" "$UNIT"; }

check "no unsubstituted @placeholder@" hasnt '.*@[a-z_]+@'
check "Type=notify" has 'Type=notify'
check "NotifyAccess=main" has 'NotifyAccess=main'
check "ExecStartPre checks the configuration with -t" \
	has 'ExecStartPre=/[^ ]*/sip-sidecar -t -c /[^ ]*/sip-sidecar/sip-sidecar\.conf'
check "ExecStart runs the daemon with -c" \
	has 'ExecStart=/[^ ]*/sip-sidecar -c /[^ ]*/sip-sidecar/sip-sidecar\.conf'
check "ExecReload sends SIGHUP to the main process" \
	has 'ExecReload=/bin/kill -HUP \$MAINPID'
check "Restart=on-failure" has 'Restart=on-failure'
check "WatchdogSec= set" has 'WatchdogSec=[1-9][0-9]*s?'
check "runs as the sip-sidecar system user" \
	sh -c "grep -q '^User=sip-sidecar\$' '$UNIT' && grep -q '^Group=sip-sidecar\$' '$UNIT'"
check "not a dynamic user (key file ownership)" hasnt 'DynamicUser=(yes|true|on|1)'
check "binds privileged ports without root" \
	sh -c "grep -q '^AmbientCapabilities=CAP_NET_BIND_SERVICE\$' '$UNIT' && grep -q '^CapabilityBoundingSet=CAP_NET_BIND_SERVICE\$' '$UNIT'"
check "LimitNOFILE large enough for max-connections" \
	sh -c "v=\$(sed -n 's/^LimitNOFILE=//p' '$UNIT'); [ \"\$v\" = infinity ] || [ \"\${v:-0}\" -ge 40000 ]"
check "no LoadCredential= (keys are re-read on SIGHUP)" hasnt 'LoadCredential'
check "reaches the network: no PrivateNetwork=yes" hasnt 'PrivateNetwork=(yes|true|on|1)'
check "reaches peers: no IPAddressDeny=" hasnt 'IPAddressDeny='
check "keeps TCP sockets: AF_INET and AF_INET6 allowed" \
	sh -c "grep '^RestrictAddressFamilies=' '$UNIT' | grep -qw AF_INET && grep '^RestrictAddressFamilies=' '$UNIT' | grep -qw AF_INET6"
check "PrivateUsers= unset (it would void CAP_NET_BIND_SERVICE on the host network)" \
	hasnt 'PrivateUsers=(yes|true|on|1)'

# --- systemd-analyze verify -------------------------------------------
# verify insists that ExecStart= binaries exist and that Documentation= man
# pages open. Point the commands at the binary just built (or, when it is
# not built, at /bin/true, so everything else is still checked), and the
# man pages at the sources.
bin=$SIDECAR
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
	diag "daemon binary not built; verifying with /bin/true as its stand-in"
	bin=/bin/true
fi
mkdir -p "$tmp/unit" "$tmp/man/man5" "$tmp/man/man8"
sed -e "s|^\(ExecStartPre=\)/[^ ]*/sip-sidecar |\1$bin |" \
    -e "s|^\(ExecStart=\)/[^ ]*/sip-sidecar |\1$bin |" \
    "$UNIT" > "$tmp/unit/sip-sidecar.service"
mandir=$T_SRC/../man
manopt=--man=no
if command -v man >/dev/null 2>&1 && [ -f "$mandir/sip-sidecar.8" ] && [ -f "$mandir/sip-sidecar.conf.5" ]; then
	cp "$mandir/sip-sidecar.8" "$tmp/man/man8/" &&
	cp "$mandir/sip-sidecar.conf.5" "$tmp/man/man5/" &&
	manopt=--man=yes
fi
out=$(cd "$tmp/unit" && MANPATH="$tmp/man" MANPAGER=cat PAGER=cat \
	systemd-analyze verify $manopt ./sip-sidecar.service 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ -z "$out" ]; then
	ok "systemd-analyze verify is clean ($manopt)"
else
	not_ok "systemd-analyze verify is clean ($manopt): exit $rc"
	diag "$out"
fi
# the optional socket unit, next to the service it activates
cp "$T_SRC/../systemd/sip-sidecar.socket" "$tmp/unit/"
out=$(cd "$tmp/unit" && MANPATH="$tmp/man" MANPAGER=cat PAGER=cat \
	systemd-analyze verify $manopt ./sip-sidecar.socket 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ -z "$out" ]; then
	ok "systemd-analyze verify is clean for the socket unit"
else
	not_ok "systemd-analyze verify is clean for the socket unit: exit $rc"
	diag "$out"
fi

# --- systemd-analyze security ------------------------------------------
out=$(systemd-analyze security --offline=true --no-pager "$UNIT" 2>&1)
rc=$?
exposure=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: *\([0-9][0-9.]*\).*/\1/p' | tail -n 1)
if [ -z "$exposure" ] && printf '%s\n' "$out" | grep -qi 'unrecognized option\|unknown option'; then
	ok "security exposure # SKIP systemd-analyze has no --offline (systemd < 250)"
elif [ -z "$exposure" ]; then
	not_ok "systemd-analyze security rated the unit (exit $rc)"
	diag "$out"
elif awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e + 0 <= m + 0) }'; then
	ok "security exposure $exposure <= $MAX_EXPOSURE"
else
	not_ok "security exposure $exposure <= $MAX_EXPOSURE"
	diag "$(printf '%s\n' "$out" | grep -v '✓')"
fi

echo "1..$n"
[ $fails -eq 0 ]
