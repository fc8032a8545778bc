#!/bin/bash
# 43-fuzz.sh: runs each libFuzzer target for a bounded time, FUZZ_SECONDS
# (default 20), through t/fuzz-run.sh on a copy of its seed corpus: the SIP
# framer (t/fuzz-sipframe) and the topology translation (t/fuzz-siptopo),
# both on t/data/fuzz-sipframe (same input format; it holds the known SIP
# parser attack shapes), the configuration parser (t/fuzz-config, on
# t/data/fuzz-config and t/data/configs), the identity rules of the
# certificate check (t/fuzz-verify) and the PROXY v2 header builder
# (t/fuzz-proxyv2), on t/data/fuzz-NAME. Each test's comments give the
# target's executions and coverage (libFuzzer's cov: and ft:).
# A target that the build does not have is skipped (./configure
# --enable-fuzzing builds them; scripts/test-sanitizers.sh does, in CI).
# SPDX-License-Identifier: MIT

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

targets="fuzz-sipframe fuzz-siptopo fuzz-config fuzz-verify fuzz-proxyv2"
built=0
for t in $targets; do
	[ -x "$T_BUILD/$t" ] && built=1
done
[ "$built" = 1 ] || skip_all "no fuzzer built (./configure --enable-fuzzing)"
[ -f "$T_SRC/fuzz-run.sh" ] || bail_out "missing $T_SRC/fuzz-run.sh"
secs=${FUZZ_SECONDS:-20}

# fuzz NAME WHAT SEED_DIR...: runs $T_BUILD/NAME for $secs seconds (one test).
# fuzz-run.sh prints its own TAP (1..1, ok/not ok 1): keep its comments,
# judge by its exit status and its verdict line. Its scratch directory goes
# under $T_TMP, kept (with crashing inputs) when the test fails.
fuzz() {
	local name=$1 what=$2 fuzzer=$T_BUILD/$1 rc verdict
	shift 2
	if [ ! -x "$fuzzer" ]; then
		skip 1 "$name not built"
		return
	fi
	FUZZ_SECONDS=$secs TMPDIR=$T_TMP sh "$T_SRC/fuzz-run.sh" "$fuzzer" "$@" \
		>"$T_TMP/$name.tap" 2>&1
	rc=$?
	grep '^#' "$T_TMP/$name.tap"
	verdict=$(grep -E '^(not )?ok 1' "$T_TMP/$name.tap")
	[ "$rc" = 0 ] && [[ $verdict == "ok 1"* ]]
	ok $? "$name: ${secs}s of fuzzing $what without a failure"
	[ "$rc" = 0 ] || diag "fuzz-run.sh $name: exit status $rc: $verdict"
}

plan 5
fuzz fuzz-sipframe "the framer" "$T_SRC/data/fuzz-sipframe"
fuzz fuzz-siptopo "the topology translation" "$T_SRC/data/fuzz-sipframe"
fuzz fuzz-config "the configuration parser" "$T_SRC/data/fuzz-config" "$T_SRC/data/configs"
fuzz fuzz-verify "the certificate identity rules" "$T_SRC/data/fuzz-verify"
fuzz fuzz-proxyv2 "the PROXY v2 header builder" "$T_SRC/data/fuzz-proxyv2"

done_testing
