#!/bin/sh
# fuzz-run: runs a libFuzzer target for a bounded time on a scratch copy of
# its seed corpus and reports the outcome as TAP (1..1, ok / not ok).
#
#   t/fuzz-run.sh PATH/TO/fuzz-NAME [SEED_DIR...]
#
# SEED_DIR defaults to data/fuzz-NAME next to this script; several are
# merged. FUZZ_SECONDS (default 60) bounds the run. The last status line
# (executions, cov: edges, ft: features, corpus size) is printed as
# "# fuzz-NAME: ..." for the report. The seed directories are never written;
# crashing inputs are left in the scratch directory, which is named in the
# output and kept on failure.
# SPDX-License-Identifier: MIT

set -u

fuzzer=${1:-}
if [ -z "$fuzzer" ] || [ ! -x "$fuzzer" ]; then
	echo "1..0 # SKIP no fuzzer binary given or not executable: '${fuzzer}'"
	exit 0
fi
name=$(basename "$fuzzer")
here=$(cd "$(dirname "$0")" && pwd)
shift
[ $# -gt 0 ] || set -- "$here/data/$name"
secs=${FUZZ_SECONDS:-60}

echo "1..1"
for seeds in "$@"; do
	if [ ! -d "$seeds" ]; then
		echo "not ok 1 - $name: seed corpus $seeds missing"
		exit 1
	fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX") || {
	echo "not ok 1 - $name: cannot make a scratch directory"
	exit 1
}
mkdir "$work/corpus" "$work/artifacts"
for seeds in "$@"; do
	cp "$seeds"/* "$work/corpus/" 2>/dev/null
done

"$fuzzer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1
rc=$?

last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$work/log" | tail -n 1)
echo "# $name: ${last:-no status line}"
sed 's/^/# /' "$work/log" | grep -E '^# (#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY|.*check failed)' | head -n 20
if [ "$rc" -eq 0 ] && [ -z "$(ls -A "$work/artifacts")" ]; then
	echo "ok 1 - $name: no failure in ${secs}s"
	rm -rf "$work"
	exit 0
fi
tail -n 40 "$work/log" | sed 's/^/# /'
echo "not ok 1 - $name: failed (exit $rc); inputs and log kept in $work"
exit 1
