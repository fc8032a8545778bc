#!/bin/sh
# The test command: install what is missing, build, run the whole TAP suite
# (make check), then the whole suite again on a build with ASan and UBSan
# (scripts/test-sanitizers.sh, in build-asan/, which also runs every
# libFuzzer target for FUZZ_SECONDS, default 10). Prints the test log of
# anything that failed, and ends with "N passed, M failed" (the plain
# build) and "sanitizers: N passed, M failed". Re-runs itself through sudo
# when not root. SANITIZERS=no skips the second run.
set -u
if [ "$(id -u)" != 0 ]; then
	exec sudo sh "$0" "$@"
fi
cd "$(dirname "$0")/.."
sh scripts/deps.sh --full || { echo "dependency install failed"; exit 1; }
sh scripts/build.sh || { echo "build failed"; exit 1; }
make -s -j"$(nproc 2>/dev/null || echo 2)" check "$@" > test-output.log 2>&1
rc=$?
grep -E '^(PASS|FAIL|XFAIL|XPASS|SKIP|ERROR):' test-output.log | grep -v '^PASS' || true
if [ $rc -ne 0 ]; then
	for f in $(grep -l -E '^(FAIL|ERROR)' t/*.trs 2>/dev/null); do
		echo "==== ${f%.trs}.log"
		tail -n 60 "${f%.trs}.log"
	done
fi
pass=$(grep -c '^PASS:' test-output.log)
fail=$(grep -c -E '^(FAIL|ERROR|XPASS):' test-output.log)
skip=$(grep -c '^SKIP:' test-output.log)
echo "$pass passed, $fail failed, $skip skipped"
ok=0
[ $rc -eq 0 ] && [ "$fail" -eq 0 ] || ok=1
if [ "${SANITIZERS:-yes}" != no ]; then
	FUZZ_SECONDS=${FUZZ_SECONDS:-10} sh scripts/test-sanitizers.sh "$@" || ok=1
fi
exit $ok
