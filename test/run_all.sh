#!/bin/bash
# test/run_all.sh — the whole test suite, the README's second command.
#
# Builds and installs the extension (as root), runs the engine unit tests
# (plain and under ASan/UBSan), the bounded fuzz runs, then — as the
# unprivileged `postgres` user, because initdb refuses root — pg_regress and
# the isolation specs in temp instances with stratago preloaded, and the TAP
# tests, and last PostgreSQL's own suites with strata as the default table
# AM (make pg-suites). Exits non-zero on any failure and prints the diffs of
# what failed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=$(pg_config --bindir)
PGXS_DIR=$(cd "$(dirname "$(pg_config --pgxs)")/../.." && pwd)
RUN_USER=${STRATAGO_TEST_USER:-postgres}
failed=()

step() { printf '\n===== %s =====\n' "$*"; }

cd "$ROOT"
step "build and install"
make -s -j2
if [ "$(id -u)" = 0 ]; then make -s install; fi

step "glue layering (calls only go down: src/pg/README.md)"
python3 tools/glue-deps.py src/pg || failed+=("glue layering")

step "engine unit tests"
make -s engine-check || failed+=("engine unit tests")

step "engine unit tests under AddressSanitizer + UBSan"
make -s engine-asan || failed+=("engine unit tests (asan)")

if ls test/fuzz/fuzz_*.c >/dev/null 2>&1; then
	step "fuzz targets (bounded runs over the seed corpus)"
	make -s fuzz-check || failed+=("fuzz")
fi

# The PostgreSQL suites run as an unprivileged user in a scratch copy of the
# tree that the user owns.
SCRATCH=$(mktemp -d /tmp/stratago-test.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
cp -a "$ROOT/." "$SCRATCH/"
rm -rf "$SCRATCH/build" "$SCRATCH/build-asan"
as_user() {
	if [ "$(id -u)" = 0 ]; then
		chown -R "$RUN_USER" "$SCRATCH"
		runuser -u "$RUN_USER" -- env PATH="$PGBIN:$PATH" bash -c "cd '$SCRATCH' && $*"
	else
		env PATH="$PGBIN:$PATH" bash -c "cd '$SCRATCH' && $*"
	fi
}

step "pg_regress and isolation specs (temp instances)"
if ! as_user "make -s installcheck"; then
	failed+=("pg_regress/isolation")
	cat "$SCRATCH"/regression.diffs "$SCRATCH"/output_iso/regression.diffs 2>/dev/null || true
fi

# What failed, in a few lines each, repeated under the summary: a CI log is
# often read from its tail only, and the diffs above may be out of sight.
failure_details=()

run_tap() {
	local label=$1 env=$2 out
	shift 2
	out=$(mktemp /tmp/stratago-prove.XXXXXX)
	rm -rf "$SCRATCH/test/tap/tmp_check"
	if ! as_user "$env PG_REGRESS='$PGXS_DIR/src/test/regress/pg_regress' TESTDIR='$SCRATCH/test/tap' \
			prove -I '$PGXS_DIR/src/test/perl' -I test/tap $*" 2>&1 | tee "$out"; then
		failed+=("$label")
		failure_details+=("$label: $(grep -E 'Failed test|not ok|Dubious|Bailout|died|Wstat|at t/|at test/' "$out" | head -16 || true)")
		for f in "$SCRATCH"/test/tap/tmp_check/log/regress_log_*; do
			[ -f "$f" ] && { echo "--- $f"; tail -50 "$f"; }
		done
		# the server log of each failed test file: why a node would not
		# start, or what it said as a check failed
		local t
		for t in $(grep -oE 't/[0-9]+_[a-z_]+\.pl \(Wstat' "$out" | sed -E 's|t/([0-9]+_[a-z_]+)\.pl.*|\1|' | sort -u || true); do
			for f in "$SCRATCH"/test/tap/tmp_check/log/"${t}"_*.log; do
				[ -f "$f" ] || continue
				failure_details+=("--- last lines of $(basename "$f"):
$(grep -vE '^\S+ \S+ UTC \[[0-9]+\] LOG:  (checkpoint|statement|connection)' "$f" | tail -25)")
			done
		done
	fi
	rm -f "$out"
}

# TAP 018 fills a small filesystem under $PGDATA/stratago: a tmpfs mounted
# here as root (a test running as the unprivileged user cannot mount one;
# without it that part is skipped and says so).
SMALL_FS=""
if [ "$(id -u)" = 0 ]; then
	SMALL_FS=$(mktemp -d /tmp/stratago-smallfs.XXXXXX)
	if mount -t tmpfs -o size=32m tmpfs "$SMALL_FS" 2>/dev/null; then
		chown "$RUN_USER" "$SMALL_FS"
		trap 'umount "$SMALL_FS" 2>/dev/null; rmdir "$SMALL_FS"; rm -rf "$SCRATCH"' EXIT
	else
		echo "could not mount a tmpfs: TAP 018 skips its full-disk part"
		rmdir "$SMALL_FS"
		SMALL_FS=""
	fi
fi

step "TAP tests"
run_tap "TAP" "STRATAGO_SMALL_FS='$SMALL_FS'" test/tap/t/*.pl

# The crash and lifecycle tests again with the other WAL sink: every
# durability test passes with both (004 damages the engine WAL itself and
# sets the engine sink on its own); and logical decoding, whose records
# both sinks write (028 sets its sinks itself); and copies of whole
# databases.
step "TAP crash tests with stratago.wal_sink = engine"
run_tap "TAP (wal_sink = engine)" "STRATAGO_WAL_SINK=engine STRATAGO_SMALL_FS='$SMALL_FS'" \
	test/tap/t/002_crash_writes.pl test/tap/t/003_crash_flush.pl test/tap/t/005_lifecycle.pl \
	test/tap/t/012_unlogged_temp.pl test/tap/t/013_backpressure.pl test/tap/t/015_drop_reuse.pl test/tap/t/017_cursor_order.pl \
	test/tap/t/018_damage.pl test/tap/t/019_compression.pl test/tap/t/021_log_before_data.pl \
	test/tap/t/027_logical_decoding.pl test/tap/t/029_create_database.pl

# PostgreSQL's own regression and isolation suites with strata as the
# default table AM: any difference the allowlist does not explain, any test
# not run and any server crash fails the run (tools/pg-suites/README.md).
# A change that breaks PostgreSQL's own tests must never land green.
step "PostgreSQL's regression and isolation suites (make pg-suites)"
make -s pg-suites || failed+=("PostgreSQL's suites (make pg-suites)")

step "summary"
if [ ${#failed[@]} -gt 0 ]; then
	printf 'FAILED: %s\n' "${failed[@]}"
	if [ ${#failure_details[@]} -gt 0 ]; then
		printf '%s\n' "${failure_details[@]}"
	fi
	exit 1
fi
echo "all suites passed"
