#!/usr/bin/env bash
# Load benchmarks side by side with the reference ceilings, in one run, printed as ratios.
#   benches/load.sh            (PostgreSQL at TANHUI_BENCH_DATABASE_URL, Redis at TANHUI_BENCH_REDIS_URL, pgbench on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
PG=${TANHUI_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
REF_DB="${PG%/*}/bench_ref"
export TANHUI_BENCH_DATABASE_URL=$PG

cargo bench --bench load --no-run -q 2>/dev/null
# A scenario that fails prints why and the others still run; the script then exits non-zero. (`run` runs
# in a pipeline's subshell, so the failure is marked in a file.)
FAILED=$(mktemp -u)
run() {
  local err
  err=$(mktemp)
  if ! cargo bench -q --bench load -- "$@" 2>"$err" | sed -n 's/^RESULT //p'; then
    echo "$* failed:" >&2
    tail -5 "$err" >&2
    touch "$FAILED"
  fi
  rm -f "$err"
}
rate() { sed -n "s|^$1: \([0-9]*\)/s.*|\1|p" "$OUT"; }
pgref() {
  local script=$1
  shift
  pgbench -n -c 32 -j 2 -T 10 "$@" -f "benches/reference/$script" "$REF_DB" 2>/dev/null \
    | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | cut -d. -f1
}

OUT=$(mktemp)
psql -q "$PG" -c 'DROP DATABASE IF EXISTS bench_ref' -c 'CREATE DATABASE bench_ref' >/dev/null
psql -q "$REF_DB" -f benches/reference/setup.sql >/dev/null

echo "pgbench-transfer: $(pgref transfer.sql)/s" | tee -a "$OUT"
echo "pgbench-credit: $(pgref credit.sql)/s" | tee -a "$OUT"
echo "pgbench-credit-hot: $(pgref credit_hot.sql)/s" | tee -a "$OUT"
# What credit.sql's ceiling is made of: the same transactions without waiting for their commits to reach
# the disk, and also without parsing and planning each statement.
echo "pgbench-credit-nosync: $(PGOPTIONS='-c synchronous_commit=off' pgref credit.sql)/s" | tee -a "$OUT"
echo "pgbench-credit-nosync-prepared: $(PGOPTIONS='-c synchronous_commit=off' pgref credit.sql -M prepared)/s" | tee -a "$OUT"
run sqlite-ceiling | tee -a "$OUT"
run http-floor sqlite | tee -a "$OUT"
for backend in sqlite postgres; do
  for scenario in transfers issue-spread issue-hot activities; do
    run "$scenario" "$backend" | tee -a "$OUT"
  done
done
for backend in sqlite postgres; do
  run batch "$backend" | tee -a "$OUT"
  run provider-batch "$backend" | tee -a "$OUT"
  run wallet "$backend" | tee -a "$OUT"
done
run market postgres | tee -a "$OUT"
for scenario in redeem-spread redeem-hot; do
  run "$scenario" postgres | tee -a "$OUT"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo
echo "== ratios"
echo "HTTP transfers on PostgreSQL / pgbench transfer.sql:          $(ratio "$(rate transfers/postgres)" "$(rate pgbench-transfer)")  (target >= 1)"
echo "market orders on PostgreSQL / pgbench transfer.sql:           $(ratio "$(rate market/postgres)" "$(rate pgbench-transfer)")  (target >= 1; p99 at half the peak: see market-at-half-peak, target <= 50 ms)"
echo "issuance concentrated / spread, PostgreSQL:                    $(ratio "$(rate issue-hot/postgres)" "$(rate issue-spread/postgres)")  (target >= 0.9)"
echo "issuance concentrated / spread, SQLite:                        $(ratio "$(rate issue-hot/sqlite)" "$(rate issue-spread/sqlite)")  (target >= 0.9)"
echo "pgbench credit_hot / credit (the naive hot row, for reference): $(ratio "$(rate pgbench-credit-hot)" "$(rate pgbench-credit)")"
echo "activity posts on PostgreSQL / pgbench credit.sql:             $(ratio "$(rate activities/postgres)" "$(rate pgbench-credit)")  (target >= 2)"
echo "pgbench credit.sql without durable commits / with them:        $(ratio "$(rate pgbench-credit-nosync)" "$(rate pgbench-credit)")  (what waiting for the disk costs it)"
echo "  ... and also prepared / durable credit.sql:                  $(ratio "$(rate pgbench-credit-nosync-prepared)" "$(rate pgbench-credit)")"
echo "activity posts on SQLite / one-credit-per-tx SQLite loop:      $(ratio "$(rate activities/sqlite)" "$(rate sqlite-ceiling/1-per-tx)")  (target >= 2)"
echo "redemptions one hot offer / spread over 256, PostgreSQL:      $(ratio "$(rate redeem-hot/postgres)" "$(rate redeem-spread/postgres)")"
echo "activity posts on SQLite / HTTP floor (GET /healthz):       $(ratio "$(rate activities/sqlite)" "$(rate http-floor/sqlite)")  (for reference)"
echo "batch events/s on SQLite:                                      $(rate batch-events/sqlite)  (target >= 20000)"
echo "batch events/s on PostgreSQL:                                  $(rate batch-events/postgres)  (target >= 10000)"
echo "provider batch / app batch events/s, SQLite:                   $(ratio "$(rate provider-batch-events/sqlite)" "$(rate batch-events/sqlite)")  (target ~1)"
echo "provider batch / app batch events/s, PostgreSQL:               $(ratio "$(rate provider-batch-events/postgres)" "$(rate batch-events/postgres)")  (target ~1)"
for backend in sqlite postgres; do
  echo "wallet reads / HTTP floor, $backend (same run):$(printf '%*s' $((18 - ${#backend})) '')$(ratio "$(rate "wallet/$backend")" "$(rate "wallet-floor/$backend")")  (target >= 0.25 SQLite, 0.15 PostgreSQL)"
  echo "wallet of 100,000 transfers / new wallet, $backend:$(printf '%*s' $((14 - ${#backend})) '')$(ratio "$(rate "wallet-deep/$backend")" "$(rate "wallet-new/$backend")")  (target >= 0.9)"
done
rm -f "$OUT"
if [ -e "$FAILED" ]; then
  rm -f "$FAILED"
  exit 1
fi
