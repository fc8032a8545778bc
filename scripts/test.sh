#!/bin/sh
# The test command: install what is missing, build, run the whole TAP suite
# (make check). Prints the test log of anything that failed, and ends with
# "N passed, M failed". Re-runs itself through sudo when not root.
set -u
if [ "$(id -u)" != 0 ]; then
	exec sudo sh "$0" "$@"
fi
cd "$(dirname "$0")/.."
sh scripts/deps.sh --full || { echo "dependency install failed"; exit 1; }
sh scripts/build.sh || { echo "build failed"; exit 1; }
# The libFuzzer targets of the framer and of the topology translation
# (clang only): t/43-fuzz.sh runs them for a bounded time (FUZZ_SECONDS)
# when they are there.
if command -v clang-14 >/dev/null 2>&1; then
	clang-14 -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -Isidecar \
		-o t/fuzz-sipframe t/fuzz-sipframe.c sidecar/sipframe.c ||
		{ echo "fuzzer build failed"; exit 1; }
	clang-14 -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -Isidecar \
		-o t/fuzz-siptopo t/fuzz-siptopo.c sidecar/siptopo.c sidecar/sipframe.c -lnettle ||
		{ echo "fuzzer build failed"; exit 1; }
fi
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
[ $rc -eq 0 ] && [ "$fail" -eq 0 ]
