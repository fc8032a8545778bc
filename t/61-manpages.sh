#!/bin/sh
# The man pages render with man(1) without a single warning, and document
# every option, signal, configuration key and log reason word. TAP; run by
# make check (T_SRC).

T_SRC=${T_SRC:-$(cd "$(dirname "$0")" && pwd)}
MANDIR=${MANDIR:-$T_SRC/../man}

n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
diag() { printf '%s\n' "$@" | sed 's/^/# /'; }

if ! command -v man >/dev/null 2>&1; then
	echo "1..0 # SKIP man not installed"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/t61.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# render FILE: ok when man prints the page and nothing on stderr.
for page in sip-sidecar.8 sip-sidecar.conf.5; do
	f=$MANDIR/$page
	if [ ! -f "$f" ]; then
		not_ok "$page exists"
		continue
	fi
	LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$f" \
		>"$tmp/$page.txt" 2>"$tmp/$page.err"
	rc=$?
	if [ $rc -eq 0 ] && [ ! -s "$tmp/$page.err" ] && [ -s "$tmp/$page.txt" ]; then
		ok "$page renders without warnings"
	else
		not_ok "$page renders without warnings (exit $rc)"
		diag "$(cat "$tmp/$page.err")"
	fi
done

# documents PAGE WORD...: every WORD appears in the rendered PAGE (hyphens
# and line breaks as rendered are normalised first).
documents() {
	page=$1; shift
	what=$1; shift
	[ -s "$tmp/$page.txt" ] || { not_ok "$page documents $what (not rendered)"; return; }
	# plain text, one line, single spaces, ASCII hyphens
	LC_ALL=C.UTF-8 sed 's/.\x08//g; s/\xe2\x80\x90/-/g; s/\xe2\x88\x92/-/g' "$tmp/$page.txt" |
		tr '\n' ' ' | tr -s ' ' >"$tmp/$page.flat"
	missing=
	for w in "$@"; do
		grep -qF -- "$w" "$tmp/$page.flat" || missing="$missing [$w]"
	done
	if [ -z "$missing" ]; then
		ok "$page documents $what"
	else
		not_ok "$page documents $what"
		diag "missing:$missing"
	fi
}

documents sip-sidecar.8 "every option" "-c file" "-t " "-V " "-h " "status" "--json"
documents sip-sidecar.8 "journal fields" SIP_SIDECAR_SECTION SIP_SIDECAR_PEER SIP_SIDECAR_IDENTITY \
	SIP_SIDECAR_REASON
documents sip-sidecar.8 "every signal" SIGHUP SIGTERM SIGINT
documents sip-sidecar.8 "every log reason word" \
	"identity=" "anonymous" "resumed" \
	"expired" "not yet valid" "unknown ca" "revoked" "name mismatch" \
	"not allowed" "no certificate" "bad key usage" "handshake timeout" \
	"too many connections" "message too large" "malformed message" \
	"stale crl" "chain too long" "weak key" "weak signature" "malformed name" \
	"admitted with a warning" "reload ok" "reload failed:"
documents sip-sidecar.8 "systemd notifications" \
	READY=1 RELOADING=1 MONOTONIC_USEC= STOPPING=1 STATUS= WATCHDOG=1
documents sip-sidecar.8 "the PROXY v2 TLVs" \
	PP2_TYPE_SSL PP2_SUBTYPE_SSL_VERSION PP2_SUBTYPE_SSL_CN
documents sip-sidecar.8 "exit statuses and files" \
	"EXIT STATUS" FILES sip-sidecar.conf
documents sip-sidecar.conf.5 "every [global] key" \
	"user =" "group =" "log-level =" "max-connections =" "handshake-timeout =" \
	"idle-timeout =" "shutdown-timeout =" "max-message-size =" "metrics =" \
	"workers =" "pid-file =" "metrics-peers =" "status-socket =" "ticket-key-file ="
documents sip-sidecar.conf.5 "every [listen] key" \
	"[listen NAME]" "bind =" "backend =" "cert =" "key =" "client-auth =" \
	"ca =" "crl =" "allow-peer =" "trust =" "identity-header =" \
	"proxy-protocol =" "tls-priority =" "sip-framing =" "crl-stale =" \
	"verify-depth =" "ocsp-response =" "backend-source ="
documents sip-sidecar.conf.5 "every [connect] and [trust] key" \
	"[connect NAME]" "server =" "server-name =" "connect-timeout =" \
	"[trust NAME]" "peer ="

echo "1..$n"
[ $fails -eq 0 ]
