#!/usr/bin/env bash
# One build against another in one sitting: each scenario runs under the same load generator against the
# other build's `tanhui` binary and against this tree's, in turn, for several rounds, and prints the
# throughput of both and their ratio (this / other).
#
#   benches/against.sh <other tanhui binary> "<scenario> <backend>" ...
#   ROUNDS=3 benches/against.sh ../before/target/release/tanhui "activities sqlite" "transfers postgres"
#
# Build the other binary in a checkout of the commit to compare with (`git worktree add`, `cargo build
# --release --bin tanhui`) and give its path inside that checkout: it starts from there, with that build's
# own `config/` defaults. The order alternates between rounds, so that a machine getting busier or quieter
# during the sitting does not favour one build.
set -euo pipefail
cd "$(dirname "$0")/.."
OTHER=$(realpath "${1:?give the tanhui binary of the other build}")
shift
ROUNDS=${ROUNDS:-3}
export TANHUI_BENCH_DATABASE_URL=${TANHUI_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
# Built once: the sitting must not rebuild the bench (or fail to) when the tree changes during it.
LOAD=$(cargo bench --bench load --no-run --message-format=json 2>/dev/null | grep '"kind":\["bench"\]' |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -x "$LOAD" ] || { echo "the load bench did not build" >&2; exit 1; }

# The rate of `<scenario>/<backend>` (the scenario's first figure) in a run against `$1` (empty: this build).
measure() {
  local binary=$1 scenario=$2 backend=$3 out
  out=$(TANHUI_BENCH_SERVICE_BIN=$binary "$LOAD" "$scenario" "$backend" 2>/dev/null)
  echo "$out" | sed -n "s|^RESULT $scenario/$backend: \([0-9]*\)/s.*|\1|p"
  echo "$out" | sed -n "s|^RESULT $scenario/$backend: ||p" >&2
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

for round in $(seq 1 "$ROUNDS"); do
  for pair in "$@"; do
    read -r scenario backend <<<"$pair"
    if ((round % 2)); then
      other=$(measure "$OTHER" "$scenario" "$backend")
      this=$(measure "" "$scenario" "$backend")
    else
      this=$(measure "" "$scenario" "$backend")
      other=$(measure "$OTHER" "$scenario" "$backend")
    fi
    echo "round $round $scenario/$backend: other ${other:-?}/s, this ${this:-?}/s, this/other $(ratio "${this:-0}" "${other:-0}")"
  done
done
