#!/bin/sh
# The whole TAP suite again on a build with AddressSanitizer and
# UndefinedBehaviorSanitizer (./configure --enable-sanitizers), in its own
# tree, build-asan/ (a copy of the tracked and unignored files: the source
# tree itself may be configured in place, which rules out a VPATH build
# from it). Also builds the libFuzzer targets there when clang-14 is
# installed (--enable-fuzzing), so t/43-fuzz.sh fuzzes each of them.
#
#   scripts/test-sanitizers.sh [MAKE-CHECK-ARGS...]   e.g. TESTS='t/20-tls-relay.sh'
#
# Prints the failing tests' logs and ends with "sanitizers: N passed, M
# failed, K skipped". Exit status 0 when everything passed.
# SPDX-License-Identifier: MIT
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
dir=$top/build-asan
jobs=$(nproc 2>/dev/null || echo 2)
conf="--enable-sanitizers"
if command -v clang-14 >/dev/null 2>&1; then
	conf="$conf --enable-fuzzing CC=clang-14"
fi

mkdir -p "$dir" || exit 1
git rev-parse --git-dir >/dev/null 2>&1 || { echo "sanitizers: needs a git checkout (copies its files)"; exit 1; }
# refresh the copy: files changed since the last run only (cp -u), so make
# rebuilds only what changed
git ls-files -co --exclude-standard -z | grep -zv '^build-asan/' |
	xargs -0 cp --parents -u -t "$dir" || { echo "sanitizers: cannot copy the tree"; exit 1; }
cd "$dir" || exit 1
if [ ! -x configure ] || [ configure.ac -nt configure ]; then
	./autogen.sh >autogen.log 2>&1 || { cat autogen.log; echo "sanitizers: autogen failed"; exit 1; }
fi
if [ ! -f config.status ] || [ configure -nt config.status ]; then
	# shellcheck disable=SC2086
	./configure -q $conf >configure.log 2>&1 ||
		{ tail -n 30 configure.log; echo "sanitizers: configure failed"; exit 1; }
fi
make -s -j"$jobs" >build.log 2>&1 || { tail -n 40 build.log; echo "sanitizers: build failed"; exit 1; }
rm -f t/43-fuzz.log # its fuzzing lines are printed below: none from an older run
make -s -j"$jobs" check "$@" >test-output.log 2>&1
rc=$?
grep -E '^(PASS|FAIL|XFAIL|XPASS|SKIP|ERROR):' test-output.log | grep -v '^PASS' || true
if [ $rc -ne 0 ]; then
	for f in $(grep -l -E '^(FAIL|ERROR)' t/*.trs 2>/dev/null); do
		echo "==== build-asan/${f%.trs}.log"
		tail -n 80 "${f%.trs}.log"
	done
fi
# the fuzzers' executions and coverage, one line per target (t/43-fuzz.sh)
grep -E '^# fuzz-[a-z0-9]+: ' t/43-fuzz.log 2>/dev/null | sed 's/^# /fuzzing: /'
pass=$(grep -c '^PASS:' test-output.log)
fail=$(grep -c -E '^(FAIL|ERROR|XPASS):' test-output.log)
skip=$(grep -c '^SKIP:' test-output.log)
echo "sanitizers: $pass passed, $fail failed, $skip skipped"
[ $rc -eq 0 ] && [ "$fail" -eq 0 ]
