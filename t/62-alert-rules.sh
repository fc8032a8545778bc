#!/bin/bash
# The shipped Prometheus alerting rules (config/sip-sidecar.rules.yml) are
# valid (promtool check rules) and fire as intended on synthetic series
# (promtool test rules t/data/rules-test.yml). Needs no daemon.
. "${T_SRC:-$(dirname "$0")}/lib.sh"
require_cmd promtool
plan 2

RULES=$T_SRC/../config/sip-sidecar.rules.yml
UNIT=$T_SRC/data/rules-test.yml

# ok_cmd shows the command's output when it fails
ok_cmd "promtool check rules config/sip-sidecar.rules.yml" promtool check rules "$RULES"
ok_cmd "promtool test rules t/data/rules-test.yml" promtool test rules "$UNIT"

done_testing
