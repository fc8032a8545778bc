#!/bin/sh
# Regenerate the autotools build (configure, Makefile.in, build-aux/).
set -e
cd "$(dirname "$0")"
autoreconf -fi
