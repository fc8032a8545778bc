#!/bin/bash
# 43-fuzz.sh: runs the libFuzzer target of the SIP framer (t/fuzz-sipframe)
# for a bounded time, FUZZ_SECONDS (default 30), through t/fuzz-run.sh on a
# copy of its seed corpus t/data/fuzz-sipframe. Skipped unless the build has
# the target (./configure --enable-fuzzing CC=clang).
# SPDX-License-Identifier: MIT

# automake runs tests with $(SHELL), often dash: continue in bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=t/lib.sh
. "${T_SRC:-$(dirname "$0")}/lib.sh"

fuzzer=$T_BUILD/fuzz-sipframe
[ -x "$fuzzer" ] || skip_all "fuzz-sipframe not built (./configure --enable-fuzzing CC=clang)"
[ -f "$T_SRC/fuzz-run.sh" ] || bail_out "missing $T_SRC/fuzz-run.sh"
secs=${FUZZ_SECONDS:-30}

plan 1
# fuzz-run.sh prints its own TAP (1..1, ok/not ok 1): keep its comments,
# judge by its exit status and its verdict line. Its scratch directory goes
# under $T_TMP, kept (with crashing inputs) when the test fails.
FUZZ_SECONDS=$secs TMPDIR=$T_TMP sh "$T_SRC/fuzz-run.sh" "$fuzzer" "$T_SRC/data/fuzz-sipframe" \
	>"$T_TMP/fuzz.tap" 2>&1
rc=$?
grep '^#' "$T_TMP/fuzz.tap"
verdict=$(grep -E '^(not )?ok 1' "$T_TMP/fuzz.tap")
[ "$rc" = 0 ] && [[ $verdict == "ok 1"* ]]
ok $? "fuzz-sipframe: ${secs}s of fuzzing the framer without a failure"
[ "$rc" = 0 ] || diag "fuzz-run.sh: exit status $rc: $verdict"

done_testing
