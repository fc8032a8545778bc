#!/bin/bash
# 45-fuzz-corpus.sh: every fuzz target's invariants on every seed of its
# corpus, once, in every build: t/replay-NAME is t/fuzz-NAME.c compiled
# with -DFUZZ_STANDALONE (no libFuzzer; any compiler), run on the files of
# its seed directories. A check that fails aborts the replay (the failed
# check is printed). The corpora hold the known SIP parser attack shapes
# (t/data/fuzz-sipframe: Kamailio CVE-2018-14767 and CVE-2018-16657,
# Asterisk AST-2016-009, haproxy CVE-2023-25725, Content-Length above
# 2^32) and crafted certificates (t/data/fuzz-verify: a NUL byte inside a
# SAN, sips: URIs, wildcards, 200 SANs, two CNs).
# SPDX-License-Identifier: MIT

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

# replay NAME WHAT SEED_DIR...: one test
replay() {
	local name=$1 what=$2 bin=$T_BUILD/replay-$1 files=() d n
	shift 2
	if [ ! -x "$bin" ]; then
		fail "replay-$name not built (make check builds it)"
		return
	fi
	for d in "$@"; do
		files+=("$d"/*)
	done
	n=${#files[@]}
	"$bin" "${files[@]}" >"$T_TMP/$name.out" 2>&1
	T_STATUS=$?
	[ "$T_STATUS" = 0 ] && grep -q "^ran $n inputs$" "$T_TMP/$name.out"
	ok $? "$what: the invariants hold on all $n seeds of its corpus"
	[ "$T_STATUS" = 0 ] || diag "$(tail -n 20 "$T_TMP/$name.out")"
}

plan 5
replay sipframe "the SIP framer" "$T_SRC/data/fuzz-sipframe"
replay siptopo "the topology translation" "$T_SRC/data/fuzz-sipframe"
replay config "the configuration parser" "$T_SRC/data/fuzz-config" "$T_SRC/data/configs"
replay verify "the certificate identity rules" "$T_SRC/data/fuzz-verify"
replay proxyv2 "the PROXY v2 header builder" "$T_SRC/data/fuzz-proxyv2"

done_testing
