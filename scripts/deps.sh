#!/bin/sh
# Installs what building and testing sip-sidecar needs on Debian 12, with
# apt-get only. Re-runs itself through sudo when not root.
#   deps.sh          build + test dependencies (compiler, autotools, GnuTLS, libev, ...)
#   deps.sh --full   also the real SIP software and tools the interop tests use
set -eu
if [ "$(id -u)" != 0 ]; then
	exec sudo sh "$0" "$@"
fi
PKGS="build-essential autoconf automake libtool pkg-config libgnutls28-dev libev-dev libsystemd-dev libssl-dev gnutls-bin"
if [ "${1:-}" = --full ]; then
	PKGS="$PKGS sip-tester kamailio kamailio-tls-modules stunnel4 sipsak baresip-core socat openssl perl bsdutils prometheus clang-14 libclang-rt-14-dev man-db groff-base systemd procps iproute2 faketime valgrind testssl.sh debhelper devscripts lintian dpkg-dev"
fi
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	# no service of an installed package may start here (kamailio, stunnel, ...)
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
