#!/bin/sh
# The demo: installs what is missing, builds sip-sidecar, makes a throw-away
# PKI, starts a stand-in legacy SIP server on plaintext TCP and the sidecar
# in front of it, then sends an OPTIONS request over TLS (and one over MTLS)
# and shows the 200 OK that comes back through the sidecar. Stops everything
# it started. Re-runs itself through sudo when not root.
set -eu
if [ "$(id -u)" != 0 ]; then
	exec sudo sh "$0" "$@"
fi
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh scripts/deps.sh
echo "== building"
sh scripts/build.sh
make -s t/recbackend t/tlsclient >/dev/null

dir=$(mktemp -d /tmp/sip-sidecar-demo.XXXXXX)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
		kill -9 "$p" 2>/dev/null || true
	done
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

echo "== throw-away PKI in $dir/certs"
sh t/mkcerts.sh "$dir/certs" >/dev/null

# ports from the high range, so nothing on the machine is disturbed
base=$(( 20000 + $$ % 20000 ))
backend=$base tls=$((base + 1)) mtls=$((base + 2))
mkdir -p "$dir/legacy"
t/recbackend -l "127.0.0.1:$backend" -d "$dir/legacy" -a -p "$dir/legacy.pid" &
pids="$pids $!"

cat > "$dir/sip-sidecar.conf" <<CONF
[global]
allow-root = yes            # demo only: a real deployment sets user/group
log-level = info
max-connections = 1000

[listen clients]            # TLS from SIP clients
bind = 127.0.0.1:$tls
backend = 127.0.0.1:$backend
cert = $dir/certs/server.crt
key = $dir/certs/server.key
identity-header = X-TLS-Peer-Identity   # clients are anonymous: any such header is removed

[listen peers]              # MTLS from peer SIP servers
bind = 127.0.0.1:$mtls
backend = 127.0.0.1:$backend
cert = $dir/certs/server.crt
key = $dir/certs/server.key
client-auth = require
ca = $dir/certs/ca.crt
crl = $dir/certs/ca.crl
allow-peer = peer.example.test
identity-header = X-TLS-Peer-Identity
CONF
echo "== configuration check"
sidecar/sip-sidecar -t -c "$dir/sip-sidecar.conf"
sidecar/sip-sidecar -c "$dir/sip-sidecar.conf" 2> "$dir/sidecar.log" &
pids="$pids $!"
i=0
until grep -q "ready" "$dir/sidecar.log" 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 100 ] || { cat "$dir/sidecar.log"; echo "sidecar did not start"; exit 1; }
	sleep 0.05
done

req() {
	printf 'OPTIONS sip:legacy@sip.example.test SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bK-demo-%s\r\nMax-Forwards: 70\r\nFrom: <sip:demo@example.test>;tag=%s\r\nTo: <sip:legacy@sip.example.test>\r\nCall-ID: demo-%s@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nX-TLS-Peer-Identity: spoofed.example.test\r\nContent-Length: 0\r\n\r\n' "$1" "$1" "$1"
}
echo
echo "== a TLS client (verifying the sidecar's certificate) sends OPTIONS to 127.0.0.1:$tls"
req tls | t/tlsclient -c "127.0.0.1:$tls" --ca "$dir/certs/ca.crt" --verify-name sip.example.test \
	--send - --read-timeout 700 --print-info > "$dir/tls.out"
cat "$dir/tls.out"
grep -q '^SIP/2.0 200 OK' "$dir/tls.out" || { echo "FAILED: no 200 OK"; exit 1; }
echo
echo "== a peer server with a client certificate (MTLS) sends OPTIONS to 127.0.0.1:$mtls"
req mtls | t/tlsclient -c "127.0.0.1:$mtls" --ca "$dir/certs/ca.crt" --verify-name sip.example.test \
	--cert "$dir/certs/client.crt" --key "$dir/certs/client.key" --send - --read-timeout 700 > "$dir/mtls.out"
cat "$dir/mtls.out"
grep -q '^SIP/2.0 200 OK' "$dir/mtls.out" || { echo "FAILED: no 200 OK"; exit 1; }
echo
echo "== what the legacy server received over plaintext TCP (the spoofed header is gone;"
echo "   the top Via says TCP, ;rport;sc-tls added: see \"Calls through the legacy server\")"
cat "$dir"/legacy/conn-*.bin | tr -d '\r'
echo
echo "== a peer with a revoked certificate is refused; the legacy server gets nothing"
req revoked | t/tlsclient -c "127.0.0.1:$mtls" --ca "$dir/certs/ca.crt" --cert "$dir/certs/client-revoked.crt" \
	--key "$dir/certs/client-revoked.key" --send - --read-timeout 500 > /dev/null 2>&1 || true
sleep 0.2
echo
echo "== the sidecar's log"
cat "$dir/sidecar.log"
echo
echo "demo ok: stopping"
