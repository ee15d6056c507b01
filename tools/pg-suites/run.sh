#!/bin/bash
# tools/pg-suites/run.sh — runs PostgreSQL's own regression and isolation
# suites (from Debian's postgresql-15 source package) in temp instances with
# stratago preloaded and `default_table_access_method = strata`, and judges
# every failure against test/pg-suites/allowlist.txt.
#
# Prints one line per test ("ok", "FAILED (allowed: <reason>)",
# "FAILED (unexpected)", "NOT RUN (unexpected)"), the counts of each, server
# crashes found in the server log, and the head of the unexpected diffs (the
# whole of them is saved under the output directory). Exits non-zero when
# anything unexpected failed, a test did not run, a suite hit its time limit
# or the server crashed. See tools/pg-suites/README.md.
#
# Runs as root (installs the extension, fetches the source, then runs the
# suites as the `postgres` user because initdb refuses root) or as an
# ordinary user with the extension already installed and the source present.
set -euo pipefail

usage()
{
	cat <<'EOF'
usage: tools/pg-suites/run.sh [options]
  --heap              keep heap as the default table AM (stratago still
                      preloaded and created in every test database)
  --vanilla           no stratago at all: PostgreSQL's own baseline
  --suite NAME        regress, isolation or all (default all)
  --tests "A B ..."   run only these tests of the suite (needs --suite)
  --src DIR           PostgreSQL 15 source tree to take the suites from
                      (default: newest postgresql-15-* under the cache)
  --cache DIR         where `apt-get source` unpacks (default
                      $PG_SUITES_CACHE or /var/tmp/stratago-pg-src)
  --out DIR           where results go (default build/pg-suites/<mode>)
  --allowlist FILE    default test/pg-suites/allowlist.txt
  --no-install        do not build and install the extension first
  --keep              keep the scratch directory (temp instances, results)
Time limits per suite, in seconds: PG_SUITES_TIMEOUT_REGRESS (default 540),
PG_SUITES_TIMEOUT_ISOLATION (default 300); a test statement running longer
than PG_SUITES_STALL_LIMIT seconds (default 60) is cancelled and reported.
Lines of unexpected diff printed: PG_SUITES_DIFF_HEAD (default 80).
EOF
}

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/tools/pg-suites"
PGBIN=$(pg_config --bindir)
PGXS_DIR=$(dirname "$(pg_config --pgxs)")/../..
RUN_USER=${STRATAGO_TEST_USER:-postgres}
CACHE=${PG_SUITES_CACHE:-/var/tmp/stratago-pg-src}
TIMEOUT_REGRESS=${PG_SUITES_TIMEOUT_REGRESS:-540}
TIMEOUT_ISOLATION=${PG_SUITES_TIMEOUT_ISOLATION:-300}
DIFF_HEAD=${PG_SUITES_DIFF_HEAD:-80}
STALL_LIMIT=${PG_SUITES_STALL_LIMIT:-60}

mode=strata
suites="regress isolation"
only_tests=""
src=""
out=""
allowlist="$ROOT/test/pg-suites/allowlist.txt"
install=1
keep=0
while [ $# -gt 0 ]; do
	case "$1" in
		--heap) mode=heap ;;
		--vanilla) mode=vanilla ;;
		--suite) shift; suites=$1 ;;
		--tests) shift; only_tests=$1 ;;
		--src) shift; src=$1 ;;
		--cache) shift; CACHE=$1 ;;
		--out) shift; out=$1 ;;
		--allowlist) shift; allowlist=$1 ;;
		--no-install) install=0 ;;
		--keep) keep=1 ;;
		-h|--help) usage; exit 0 ;;
		*) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
case "$suites" in
	all) suites="regress isolation" ;;
	regress|isolation|"regress isolation") ;;
	*) echo "--suite must be regress, isolation or all" >&2; exit 2 ;;
esac
if [ -n "$only_tests" ] && [ "$suites" = "regress isolation" ]; then
	echo "--tests needs --suite regress or --suite isolation" >&2
	exit 2
fi
[ -f "$allowlist" ] || { echo "no allowlist at $allowlist" >&2; exit 2; }
out=${out:-$ROOT/build/pg-suites/$mode}
is_root=0
[ "$(id -u)" = 0 ] && is_root=1

step() { printf '\n===== %s =====\n' "$*"; }

# ---------------------------------------------------------------------------
# The PostgreSQL source: `apt-get source postgresql-15`, kept in the cache
# (outside the git tree) so later runs need no network.
# ---------------------------------------------------------------------------
fetch_source()
{
	local sources=/etc/apt/sources.list.d/debian.sources v
	if [ $is_root = 0 ]; then
		echo "no PostgreSQL source under $CACHE: run once as root, or pass --src" >&2
		exit 2
	fi
	if ! apt-cache showsrc postgresql-15 2>/dev/null | grep -q '^Version:'; then
		if [ -f "$sources" ] && grep -q '^Types: deb$' "$sources"; then
			echo "enabling deb-src in $sources"
			sed -i 's/^Types: deb$/Types: deb deb-src/' "$sources"
		fi
		apt-get update -q >/dev/null
	fi
	command -v dpkg-source >/dev/null || apt-get install -y -q dpkg-dev >/dev/null
	mkdir -p "$CACHE"
	# Newest first; the security archive may list a version whose files it
	# does not serve, so fall back to the next one.
	for v in $(apt-cache showsrc postgresql-15 | awk '/^Version:/ { print $2 }' | sort -Vr); do
		if (cd "$CACHE" && apt-get source -q "postgresql-15=$v" >/dev/null 2>&1); then
			echo "fetched postgresql-15 $v source into $CACHE"
			return 0
		fi
		echo "apt-get source postgresql-15=$v failed; trying an older version"
	done
	echo "could not fetch the postgresql-15 source package" >&2
	exit 2
}

if [ -z "$src" ]; then
	src=$(ls -d "$CACHE"/postgresql-15-15.*/ 2>/dev/null | sort -V | tail -1 || true)
	if [ -z "$src" ]; then
		step "fetch the postgresql-15 source package"
		fetch_source
		src=$(ls -d "$CACHE"/postgresql-15-15.*/ | sort -V | tail -1)
	fi
fi
src=${src%/}
[ -f "$src/src/test/regress/parallel_schedule" ] ||
	{ echo "$src is not a PostgreSQL source tree" >&2; exit 2; }
src_version=$(basename "$src" | sed 's/^postgresql-15-//')
server_version=$("$PGBIN/postgres" --version | awk '{ print $3 }')

# psql must be the source's version: since 15.19 psql skips the in-line data
# of a COPY ... FROM STDIN that fails before the copy starts, and the older
# test scripts have no `\.` after such a COPY, so a newer psql swallows the
# SQL that follows it. When the installed psql differs, take the matching
# postgresql-client-15 from the archive (cached) and run the suites with a
# bindir where psql is that one and every other program the installed one.
psql_version=$("$PGBIN/psql" --version | awk '{ print $3 }')
client_bin=""
if [ "$psql_version" != "$src_version" ]; then
	deb_version=$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' "$src/debian/changelog" 2>/dev/null || true)
	client_dir="$CACHE/client-$deb_version"
	if [ ! -x "$client_dir/usr/lib/postgresql/15/bin/psql" ] && [ -n "$deb_version" ] &&
			[ $is_root = 1 ]; then
		mkdir -p "$client_dir"
		if (cd "$client_dir" && apt-get download -q "postgresql-client-15=$deb_version" >/dev/null 2>&1); then
			dpkg-deb -x "$client_dir"/postgresql-client-15_*.deb "$client_dir"
		fi
	fi
	if [ -x "$client_dir/usr/lib/postgresql/15/bin/psql" ]; then
		client_bin="$client_dir/usr/lib/postgresql/15/bin"
	else
		echo "WARNING: psql is $psql_version but the suites are $src_version and" \
			"postgresql-client-15=$deb_version could not be fetched: expect" \
			"differences after failing COPY ... FROM STDIN" >&2
	fi
fi

# ---------------------------------------------------------------------------
# The extension, the scratch directory and the test C modules.
# ---------------------------------------------------------------------------
if [ "$mode" != vanilla ]; then
	if [ $install = 1 ] && [ $is_root = 1 ]; then
		step "build and install stratago"
		make -s -C "$ROOT" -j2
		make -s -C "$ROOT" install
	fi
	[ -f "$(pg_config --pkglibdir)/stratago.so" ] ||
		{ echo "stratago is not installed (make && sudo make install)" >&2; exit 2; }
fi

WORK=$(mktemp -d /tmp/stratago-pg-suites.XXXXXX)
cleanup()
{
	local d
	# A suite killed by its time limit may leave its temp server running.
	for d in "$WORK"/*/tmp_check/data; do
		[ -f "$d/postmaster.pid" ] && as_user "pg_ctl -D '$d' -m immediate stop" >/dev/null 2>&1 || true
	done
	if [ $keep = 1 ]; then
		echo "scratch directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

as_user()
{
	if [ $is_root = 1 ]; then
		runuser -u "$RUN_USER" -- env PATH="$PGBIN:$PATH" LANG=C LC_ALL=C bash -c "cd '$WORK' && $*"
	else
		env PATH="$PGBIN:$PATH" LANG=C LC_ALL=C bash -c "cd '$WORK' && $*"
	fi
}

step "prepare ($mode; suites from PostgreSQL $src_version source, server $server_version)"
[ "$mode" != vanilla ] &&
	echo "stratago: built from $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')"
mkdir -p "$WORK/regress" "$WORK/isolation" "$WORK/lib"
run_bin=$PGBIN
if [ -n "$client_bin" ]; then
	run_bin="$WORK/bin"
	mkdir -p "$run_bin"
	ln -s "$PGBIN"/* "$run_bin/"
	ln -sf "$client_bin/psql" "$run_bin/psql"
	echo "psql: $("$run_bin/psql" --version) (matching the suites); server programs from $PGBIN"
fi
cp -r "$src/src/test/regress/sql" "$src/src/test/regress/expected" \
	"$src/src/test/regress/data" "$src/src/test/regress/parallel_schedule" \
	"$src/src/test/regress/resultmap" "$WORK/regress/"
cp -r "$src/src/test/isolation/specs" "$src/src/test/isolation/expected" \
	"$src/src/test/isolation/isolation_schedule" "$WORK/isolation/"

# regress.so (the suite's own C functions) and contrib/spi's refint and
# autoinc (used by the triggers test), built against the installed server.
cp "$src/src/test/regress/regress.c" "$src/contrib/spi/refint.c" \
	"$src/contrib/spi/autoinc.c" "$WORK/lib/"
cat >"$WORK/lib/Makefile" <<'EOF'
MODULES = regress refint autoinc
PG_CONFIG = pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
with_llvm = no
EOF
make -s -C "$WORK/lib" >"$WORK/lib/build.log" 2>&1 ||
	{ cat "$WORK/lib/build.log"; echo "could not build regress.so" >&2; exit 2; }

# The temp instances' extra settings: the project's test settings (which
# preload stratago) plus, in strata mode, the default table AM.
{
	echo "# written by tools/pg-suites/run.sh ($mode)"
	if [ "$mode" != vanilla ]; then
		cat "$ROOT/test/stratago.conf"
	fi
	if [ "$mode" = strata ]; then
		echo "default_table_access_method = strata"
	fi
} >"$WORK/temp.conf"
[ $is_root = 1 ] && chown -R "$RUN_USER" "$WORK"

# ---------------------------------------------------------------------------
# Run one suite and judge it.
# ---------------------------------------------------------------------------
tot_ok=0 tot_allowed=0 tot_unexp=0 tot_notrun=0 tot_crash=0
problems=()
rm -rf "$out"
mkdir -p "$out"
cp "$WORK/temp.conf" "$out/temp.conf"

# One stuck statement would otherwise eat the whole suite's time limit: every
# 5 s, cancel any test statement running longer than STALL_LIMIT seconds
# (nothing in either suite takes over a few seconds on heap) and terminate
# its backend if it is still there twice as long; print each one.
stall_guard()
{
	local dir=$1 pidfile="$1/tmp_check/data/postmaster.pid" port sock
	while sleep 5; do
		# the file goes when the suite's server stops: a read that loses
		# that race must not write into the list of stuck statements
		[ -f "$pidfile" ] || continue
		port=$(sed -n 4p "$pidfile" 2>/dev/null) || continue
		sock=$(sed -n 5p "$pidfile" 2>/dev/null) || continue
		[ -n "$port" ] && [ -n "$sock" ] || continue
		as_user "psql -X -A -t -q -h '$sock' -p '$port' -d postgres -c \"
			SELECT CASE WHEN now() - query_start > interval '$((2 * STALL_LIMIT)) s'
					THEN 'terminate ' || pg_terminate_backend(pid)::text
					ELSE 'cancel ' || pg_cancel_backend(pid)::text END
				|| ' pid ' || pid || ' in ' || datname || ' after '
				|| date_trunc('second', now() - query_start) || ' (wait '
				|| coalesce(wait_event_type || '/' || wait_event, 'none') || '): '
				|| regexp_replace(left(query, 300), '\\s+', ' ', 'g')
			FROM pg_stat_activity
			WHERE backend_type = 'client backend' AND state = 'active'
				AND pid <> pg_backend_pid()
				AND now() - query_start > interval '$STALL_LIMIT s'\"" 2>/dev/null || true
	done
}

run_suite()
{
	local suite=$1 limit driver schedule dir="$WORK/$1" rc=0 started
	case "$suite" in
		regress)
			limit=$TIMEOUT_REGRESS
			driver="$PGXS_DIR/src/test/regress/pg_regress"
			schedule=parallel_schedule
			;;
		isolation)
			limit=$TIMEOUT_ISOLATION
			driver="$PGXS_DIR/src/test/isolation/pg_isolation_regress"
			schedule=isolation_schedule
			;;
	esac
	local opts="--bindir='$run_bin' --temp-instance='$dir/tmp_check' \
		--temp-config='$WORK/temp.conf' --inputdir='$dir' --outputdir='$dir' \
		--dlpath='$WORK/lib' --max-concurrent-tests=20 --no-locale --encoding=UTF8"
	[ "$mode" != vanilla ] && opts="$opts --load-extension=stratago"
	if [ -n "$only_tests" ]; then
		echo "$only_tests" | tr ' ' '\n' >"$dir/wanted.txt"
		opts="$opts $only_tests"
	else
		awk '$1 == "test:" { for (i = 2; i <= NF; i++) print $i }' \
			"$dir/$schedule" >"$dir/wanted.txt"
		opts="$opts --schedule='$dir/$schedule'"
	fi

	step "$suite ($(wc -l <"$dir/wanted.txt") tests, time limit ${limit}s)"
	started=$(date +%s)
	stall_guard "$dir" >"$out/$suite.stalls.txt" 2>&1 &
	local guard=$!
	as_user "timeout --kill-after=20 $limit '$driver' $opts" \
		>"$out/$suite.out" 2>&1 || rc=$?
	kill "$guard" 2>/dev/null || true
	wait "$guard" 2>/dev/null || true
	echo "pg_regress exited with status $rc after $(( $(date +%s) - started ))s"
	if [ -s "$out/$suite.stalls.txt" ]; then
		echo "!!! $suite: statements stuck longer than ${STALL_LIMIT}s were cancelled:"
		sed 's/^/    /' "$out/$suite.stalls.txt" | cut -c1-200
		problems+=("$suite: $(grep -c '^cancel' "$out/$suite.stalls.txt" || true) stuck statement(s) cancelled")
	fi
	if [ $rc = 124 ] || [ $rc = 137 ]; then
		problems+=("$suite: time limit of ${limit}s reached")
		[ -f "$dir/tmp_check/data/postmaster.pid" ] &&
			as_user "pg_ctl -D '$dir/tmp_check/data' -m immediate stop" >/dev/null 2>&1 || true
	fi

	# pg_regress writes the temp server's log under the output directory.
	local log="$dir/log/postmaster.log" diffs="$dir/regression.diffs"
	[ -f "$log" ] && cp "$log" "$out/$suite.postmaster.log"
	[ -f "$diffs" ] && cp "$diffs" "$out/$suite.regression.diffs"
	[ -f "$diffs" ] || diffs=/dev/null
	if ! grep -q ' \.\.\. ' "$out/$suite.out"; then
		problems+=("$suite: pg_regress ran no test (status $rc)")
		tail -20 "$out/$suite.out"
		for f in "$dir"/log/initdb.log "$log"; do
			[ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }
		done
	fi

	awk -f "$HERE/report.awk" -v suite="$suite" \
		-v unexpected="$out/$suite.unexpected.diffs" \
		-v allowed="$out/$suite.allowed.diffs" \
		-v stale="$out/$suite.stale-allowlist.txt" \
		-v counts="$out/$suite.counts" \
		"$allowlist" "$dir/wanted.txt" "$out/$suite.out" "$diffs" |
		tee "$out/$suite.results.txt"
	local n_ok n_allowed n_unexp n_notrun n_crash
	read -r n_ok n_allowed n_unexp n_notrun <"$out/$suite.counts"

	# A backend killed by a signal is a crash whatever the test expected.
	n_crash=0
	if [ ! -f "$log" ]; then
		problems+=("$suite: no server log at $log, crashes not checked")
	else
		n_crash=$(grep -cE 'was terminated by (signal|exception)' "$log" || true)
		grep -E -A1 'was terminated by (signal|exception)|PANIC:|postmaster\[[0-9]+\] FATAL:' "$log" \
			>"$out/$suite.crashes.txt" || true
		# After a crash the postmaster reinitializes; if that fails it exits
		# and every later test fails with a lost connection.
		if grep -qE 'postmaster\[[0-9]+\] (FATAL|PANIC):' "$log"; then
			echo
			echo "!!! $suite: THE SERVER DID NOT COME BACK:"
			grep -E 'postmaster\[[0-9]+\] (FATAL|PANIC):' "$log" | head -5 | sed 's/^/    /'
			problems+=("$suite: the server exited (postmaster FATAL/PANIC, see $suite.postmaster.log)")
		fi
	fi
	if [ "$n_crash" -gt 0 ]; then
		echo
		echo "!!! $suite: SERVER CRASHED $n_crash time(s) (from $suite.postmaster.log):"
		head -20 "$out/$suite.crashes.txt" | sed 's/^/    /'
		problems+=("$suite: server crashed $n_crash time(s)")
	fi
	if [ -s "$out/$suite.stale-allowlist.txt" ]; then
		echo "allowlist entries whose test passed in this run:"
		sed 's/^/    /' "$out/$suite.stale-allowlist.txt"
	fi
	printf '%s: %d passed, %d failed (allowed), %d failed (unexpected), %d not run, %d server crashes\n' \
		"$suite" "$n_ok" "$n_allowed" "$n_unexp" "$n_notrun" "$n_crash" |
		tee "$out/$suite.summary.txt"
	if [ -s "$out/$suite.unexpected.diffs" ]; then
		echo "--- head of $out/$suite.unexpected.diffs ($(wc -l <"$out/$suite.unexpected.diffs") lines):"
		head -n "$DIFF_HEAD" "$out/$suite.unexpected.diffs"
		echo "--- (end of head)"
	fi
	tot_ok=$((tot_ok + n_ok))
	tot_allowed=$((tot_allowed + n_allowed))
	tot_unexp=$((tot_unexp + n_unexp))
	tot_notrun=$((tot_notrun + n_notrun))
	tot_crash=$((tot_crash + n_crash))
}

for s in $suites; do
	run_suite "$s"
done

step "summary ($mode; PostgreSQL $src_version suites, server $server_version)"
{
	printf '%d passed, %d failed (allowed), %d failed (unexpected), %d not run, %d server crashes\n' \
		"$tot_ok" "$tot_allowed" "$tot_unexp" "$tot_notrun" "$tot_crash"
	for p in ${problems[@]+"${problems[@]}"}; do
		echo "problem: $p"
	done
	echo "results, diffs and server logs: $out"
} | tee "$out/summary.txt"
if [ "$tot_unexp" -gt 0 ] || [ "$tot_notrun" -gt 0 ] || [ "$tot_crash" -gt 0 ] ||
		[ ${#problems[@]} -gt 0 ]; then
	exit 1
fi
exit 0
