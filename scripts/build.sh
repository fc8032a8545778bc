#!/bin/sh
# Builds sip-sidecar in the source tree (autogen + configure + make) unless
# it is already built and up to date.
set -eu
cd "$(dirname "$0")/.."
[ -x configure ] || ./autogen.sh >/dev/null
[ -f Makefile ] || ./configure -q
make -s -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
