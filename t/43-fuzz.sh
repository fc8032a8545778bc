#!/bin/bash
# 43-fuzz.sh: runs the libFuzzer targets of the SIP framer (t/fuzz-sipframe)
# and of the topology translation (t/fuzz-siptopo), each for a bounded time,
# FUZZ_SECONDS (default 30), through t/fuzz-run.sh on a copy of the seed
# corpus t/data/fuzz-sipframe (both targets read the same input format).
# A target that the build does not have is skipped (./configure
# --enable-fuzzing CC=clang, or scripts/test.sh with clang-14, builds them).
# SPDX-License-Identifier: MIT

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

[ -x "$T_BUILD/fuzz-sipframe" ] || [ -x "$T_BUILD/fuzz-siptopo" ] ||
	skip_all "no fuzzer built (./configure --enable-fuzzing CC=clang)"
[ -f "$T_SRC/fuzz-run.sh" ] || bail_out "missing $T_SRC/fuzz-run.sh"
secs=${FUZZ_SECONDS:-30}

# fuzz NAME WHAT: runs $T_BUILD/NAME for $secs seconds (one test).
# fuzz-run.sh prints its own TAP (1..1, ok/not ok 1): keep its comments,
# judge by its exit status and its verdict line. Its scratch directory goes
# under $T_TMP, kept (with crashing inputs) when the test fails.
fuzz() {
	local name=$1 what=$2 fuzzer=$T_BUILD/$1 rc verdict
	if [ ! -x "$fuzzer" ]; then
		skip 1 "$name not built"
		return
	fi
	FUZZ_SECONDS=$secs TMPDIR=$T_TMP sh "$T_SRC/fuzz-run.sh" "$fuzzer" "$T_SRC/data/fuzz-sipframe" \
		>"$T_TMP/$name.tap" 2>&1
	rc=$?
	grep '^#' "$T_TMP/$name.tap"
	verdict=$(grep -E '^(not )?ok 1' "$T_TMP/$name.tap")
	[ "$rc" = 0 ] && [[ $verdict == "ok 1"* ]]
	ok $? "$name: ${secs}s of fuzzing $what without a failure"
	[ "$rc" = 0 ] || diag "fuzz-run.sh $name: exit status $rc: $verdict"
}

plan 2
fuzz fuzz-sipframe "the framer"
fuzz fuzz-siptopo "the topology translation"

done_testing
