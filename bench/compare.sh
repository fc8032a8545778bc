#!/bin/bash
# compare.sh: one run of the shared perf harness with hitch, haproxy and
# sip-sidecar interleaved, printed as the table of ratios the project
# tracks (sidecar / best anchor; below 1.00 is better). Not run by CI: it
# needs a quiet machine, hitch and haproxy (apt-get install hitch haproxy)
# and a built harness.
#
# usage: bench/compare.sh [--perf DIR] [--runs N] [--dur S] [--tests LIST] [--certs LIST]
#                         [--results FILE]  (re-print an earlier run's results.txt)
#   --perf DIR   the harness (default: ../shared/perf next to the repository)
# Extra environment for the sidecar (bench/sidecar-bench.sh): SIP_FRAMING,
# TOPOLOGY, METRICS (an address: metrics on, scraped every SCRAPE_EVERY s).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
perf=${PERF:-$here/../../shared/perf}
runs=3 dur=4 tests=hs,hsres,msg1,msg50,idle certs=ecdsa,rsa results=
while [ $# -gt 0 ]; do
	case "$1" in
	--perf) perf=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--dur) dur=$2; shift 2 ;;
	--tests) tests=$2; shift 2 ;;
	--certs) certs=$2; shift 2 ;;
	--results) results=$2; shift 2 ;;
	*) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
if [ -z "$results" ]; then
	[ -x "$perf/bench.sh" ] || { echo "compare.sh: no harness at $perf (--perf DIR)" >&2; exit 2; }
	out=$perf/build/results/compare-$(date +%Y%m%d-%H%M%S)
	echo "# $perf/bench.sh --runs $runs --dur $dur --tests $tests --certs $certs --out $out hitch haproxy custom -- $here/sidecar-bench.sh" >&2
	"$perf/bench.sh" --runs "$runs" --dur "$dur" --tests "$tests" --certs "$certs" --out "$out" \
		hitch haproxy custom -- "$here/sidecar-bench.sh" >&2
	results=$out/results.txt
fi
[ -s "$results" ] || { echo "compare.sh: no results in $results" >&2; exit 1; }

# The medians of one field per (cert, test, target), then the table.
awk -v want_certs="$certs" '
function field(name,   i, kv) {
	for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == name) return kv[2] }
	return ""
}
function median(key,   n, a, i, j, t) {
	n = split(vals[key], a, " ")
	if (n == 0 || vals[key] == "") return ""
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(key, v) { if (v != "" && v + 0 >= 0) vals[key] = vals[key] (vals[key] == "" ? "" : " ") v }
$0 ~ /status=ok/ {
	c = field("cert"); t = field("test"); g = field("target")
	if (t == "hs" || t == "hsres" || t == "msg50") add(c SUBSEP t SUBSEP g, field("proxy_us_per_op"))
	else if (t == "msg1") add(c SUBSEP t SUBSEP g, field("p50_us"))
	else if (t == "idle") add(c SUBSEP t SUBSEP g, field("per_conn_kb"))
}
function row(label, c, t, unit,   s, h, x, best, who, d) {
	s = median(c SUBSEP t SUBSEP "custom"); h = median(c SUBSEP t SUBSEP "hitch"); x = median(c SUBSEP t SUBSEP "haproxy")
	if (s == "") return
	d = (t == "msg1") ? median(c SUBSEP t SUBSEP "direct") : ""
	if (d != "") { s -= d; if (h != "") h -= d; if (x != "") x -= d }
	best = h; who = "hitch"
	if (best == "" || (x != "" && x + 0 < best + 0)) { best = x; who = "haproxy" }
	if (best == "") printf "| %s | %.1f %s | - | - |\n", label, s, unit
	else printf "| %s | %.1f %s | %.1f %s (%s) | **%.2fx** |\n", label, s, unit, best, unit, who, s / best
}
END {
	print "| metric (medians; proxy on its own CPU, 1 worker) | sip-sidecar | best anchor | ratio |"
	print "|---|---|---|---|"
	n = split(want_certs, cs, ",")
	for (i = 1; i <= n; i++) {
		c = cs[i]
		row("CPU per full handshake, " toupper(c), c, "hs", "us")
		row("CPU per resumed handshake, " toupper(c), c, "hsres", "us")
		row("CPU per message, C=50 (msg50), " toupper(c), c, "msg50", "us")
		row("added p50 latency vs plain TCP, C=1 (msg1), " toupper(c), c, "msg1", "us")
		row("RSS per idle TLS connection, " toupper(c), c, "idle", "KiB")
	}
}' "$results"
echo
echo "results: $results"
