#!/bin/bash
# bench/pg/run.sh — strata against heap in the same run (`make bench`).
#
# Builds and installs stratago (as root), starts a scratch PostgreSQL 15
# cluster with stratago preloaded and the settings of bench/pg/bench.conf
# (fsync on, the same for both access methods), then runs every workload on
# heap and on strata alternately (heap first in odd repetitions, strata first
# in even ones, so drift and cache warm-up do not favour one side), REPS
# times, and hands the raw numbers to bench/pg/report.sh, which prints
# medians and strata/heap ratios and writes bench/results/pg.md and the
# charts. A workload that strata cannot run yet (it raises "... is not
# supported for strata tables yet") is run on heap only and reported as
# n/a, never approximated.
#
# Usage (as root):  bench/pg/run.sh [options]
#   --reps N           repetitions per workload and access method (3)
#   --bloat-seconds N  length of the sustained-update run per access method
#                      (120; the issue's full run is 600)
#   --quick            tiny sizes and durations: checks the harness, not speed
#   --only LIST        comma-separated workloads: copy,insert,pgbench,scan,
#                      vacuum,big,pgbench100,sysbench,updbytes,bloat (all)
#   --no-build         skip `make && make install`
#   --head             build and install from a clean export of the commit
#                      checked out (git archive HEAD), not the work tree, so
#                      the report names exactly what ran
#   --out DIR          where pg.md and the charts go (bench/results)
#   --keep             leave the cluster running afterwards
#   --wal-sink S       stratago.wal_sink for the run (bench.conf's, postgres);
#                      another sink writes its report as pg-<S>-sink.md and
#                      charts pg-<S>-sink-*.svg beside pg.md
# Environment: STRATAGO_BENCH_DIR (/var/tmp/stratago-bench),
#              STRATAGO_BENCH_PORT (5488).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/pg
PGBIN=/usr/lib/postgresql/15/bin
DIR=${STRATAGO_BENCH_DIR:-/var/tmp/stratago-bench}
PORT=${STRATAGO_BENCH_PORT:-5488}
DATA=$DIR/data
REPS=3
BLOAT_SECONDS=120
QUICK=0
ONLY=copy,insert,pgbench,scan,vacuum,big,pgbench100,sysbench,updbytes,bloat
BUILD=1
OUT=$ROOT/bench/results
KEEP=0
WAL_SINK=

while [ $# -gt 0 ]; do
	case "$1" in
		--reps) REPS=$2; shift 2 ;;
		--bloat-seconds) BLOAT_SECONDS=$2; shift 2 ;;
		--quick) QUICK=1; shift ;;
		--only) ONLY=$2; shift 2 ;;
		--no-build) BUILD=0; shift ;;
		--head) BUILD=head; shift ;;
		--out) OUT=$2; shift 2 ;;
		--keep) KEEP=1; shift ;;
		--wal-sink) WAL_SINK=$2; shift 2 ;;
		*) echo "unknown option: $1 (see the header of $0)" >&2; exit 2 ;;
	esac
done

if [ "$(id -u)" != 0 ]; then
	echo "run as root: it installs the extension, starts the cluster as the postgres user and reads the server processes' /proc/<pid>/io" >&2
	exit 1
fi

# Sizes and durations. The defaults keep a full run near 15 minutes on a
# 2-core machine; --quick shrinks everything to check the harness.
COPY_ROWS=1000000	# COPY workload: rows of about 80 bytes
BIG_ROWS=10000000	# the large table: the same rows, ten times as many
SCALE=10		# pgbench scale (1M pgbench_accounts rows)
SCALE_BIG=100		# the larger pgbench scale, -S only (10M rows)
INS_SECONDS=12		# each single-row INSERT run
TPCB_SECONDS=15		# each TPC-B run
SEL_SECONDS=10		# each pgbench -S run
SCAN_RUNS=5		# aggregate scans per access method, after one warm-up each
SB_SECONDS=10		# each sysbench run (4 tables x SB_ROWS rows, 8 threads)
SB_ROWS=100000
UPD_ROWS=		# rows of the updated table: 100000 with a primary key,
			# 10000 if strata cannot build indexes (updates then scan)
UPD_COUNT=2000		# updates per bytes-written measurement
BLOAT_CLIENTS=2
SAMPLE_SECONDS=5	# size samples during the bloat run
if [ "$QUICK" = 1 ]; then
	COPY_ROWS=50000; BIG_ROWS=200000; SCALE=1; SCALE_BIG=2; INS_SECONDS=3; TPCB_SECONDS=3; SEL_SECONDS=3
	SCAN_RUNS=2; UPD_ROWS=5000; UPD_COUNT=300; SAMPLE_SECONDS=2; SB_SECONDS=3; SB_ROWS=5000
	[ "$BLOAT_SECONDS" = 120 ] && BLOAT_SECONDS=10
fi

AMS=(heap strata)
RAW=$DIR/raw.tsv	# workload, am, rep, value (or NA), note
SERIES=$DIR/bloat.tsv	# am, seconds, bytes
LOG=$DIR/bench.log

want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
say() { printf '%s  %s\n' "$(date +%T)" "$*" | tee -a "$LOG" >&2; }
as_pg() { runuser -u postgres -- "$@"; }
psql_() { as_pg "$PGBIN/psql" -X -q -At -h "$DIR" -p "$PORT" -d bench -v ON_ERROR_STOP=1 "$@"; }
q() { psql_ -c "$1"; }
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-}" >> "$RAW"; }
# A rate: record KEY AM REP TPS, with ERRFILE's start as the note when TPS is
# empty (the run failed), and say it as LABEL.
record_rate() {
	local key=$1 am=$2 r=$3 tps=$4 errfile=$5 label=$6
	record "$key" "$am" "$r" "${tps:-NA}" "$([ -n "$tps" ] || head -c 200 "$errfile")"
	say "$label $am rep $r: $tps tps"
}
# Repetition r runs heap then strata when r is odd, strata then heap when even.
order() { if [ $(($1 % 2)) = 1 ]; then echo heap strata; else echo strata heap; fi; }

# Server-side time of one SQL statement, in ms (psql's \timing).
timed_ms() {
	psql_ -c '\timing on' -c "$1" | awk '/^Time: / {t=$2} END {if (t=="") exit 1; print t}'
}

# Bytes a table takes, indexes and TOAST included: PostgreSQL's own files
# (pg_total_relation_size; for strata an empty main fork plus its indexes)
# plus, for strata, the engine's files (stratago.relation_size, which
# pg_*_size cannot see). table_only_bytes leaves the indexes out.
table_bytes() {
	if [ "$2" = strata ]; then
		q "SELECT stratago.relation_size('$1') + pg_total_relation_size('$1')"
	else
		q "SELECT pg_total_relation_size('$1')"
	fi
}
table_only_bytes() {
	if [ "$2" = strata ]; then
		q "SELECT stratago.relation_size('$1') + pg_table_size('$1')"
	else
		q "SELECT pg_table_size('$1')"
	fi
}

# Bytes the server processes handed to write(2) and friends since it
# started: wchar of /proc/<pid>/io over the postmaster and its live
# children. The postmaster's counters include those of every child it has
# reaped (the kernel adds a reaped child's I/O to its parent's), so the sum
# only grows, even across pgbench's backends exiting. Not write_bytes: on
# kernels whose page cache uses large folios (ext4 on 6.x here) it counts a
# whole folio, up to 2 MB, for every folio a write dirties, so a 200-byte
# WAL append followed by fdatasync reads as 2 MB. wchar also counts bytes
# sent to clients, which the update workloads keep to a few bytes a
# transaction.
server_written_bytes() {
	local pm total=0 pid n
	pm=$(head -1 "$DATA/postmaster.pid")
	for pid in $pm $(ps -o pid= --ppid "$pm"); do
		n=$(awk '/^wchar:/ {print $2}' "/proc/$pid/io" 2>/dev/null || true)
		total=$((total + ${n:-0}))
	done
	echo "$total"
}

# The aggregate scan over a table of the mixed-type rows.
SCAN_SQL="SELECT count(*), sum(qty), avg(price), max(created), count(*) FILTER (WHERE active), max(length(descr)) FROM"

# VACUUM after updating 1% of the rows of table <prefix>_<am> (a column no
# index covers) and deleting 0.1%, REPS times with the access methods
# alternating, other rows each time: its time and the bytes the server
# wrote for it (VACUUM itself, then the checkpoint or flush of what it
# left owed), as metrics <key>_ms and <key>_write_mb.
vacuum_runs() {
	local prefix=$1 key=$2 r am ms w0 w1
	for r in $(seq 1 "$REPS"); do
		for am in $(order "$r"); do
			q "UPDATE ${prefix}_$am SET qty = qty + 1 WHERE id % 100 = $r"
			q "DELETE FROM ${prefix}_$am WHERE id % 1000 = 500 + $r"
			settle "${prefix}_$am" "$am"
			w0=$(server_written_bytes)
			ms=$(timed_ms "VACUUM ${prefix}_$am")
			settle "${prefix}_$am" "$am"
			w1=$(server_written_bytes)
			record "${key}_ms" "$am" "$r" "$ms"
			record "${key}_write_mb" "$am" "$r" "$(awk -v b="$((w1 - w0))" 'BEGIN {printf "%.2f", b/1048576}')"
			say "$key $am rep $r: ${ms} ms, $((w1 - w0)) bytes written"
		done
	done
}

# Bytes (tables alone) of the strata tables that query REGCLASSES selects
# in database DB once each has its own codec zstd and is compacted; they
# go back to the default codec afterwards, for the workloads that follow.
zstd_bytes() {
	local db=$1 rels=$2
	as_pg "$PGBIN/psql" -X -q -At -h "$DIR" -p "$PORT" -d "$db" \
		-c "SELECT stratago.set_compression(r, 'zstd') FROM ($rels) x(r)" \
		-c "SELECT stratago.compact(r) FROM ($rels) x(r)" \
		-c "SELECT sum(stratago.relation_size(r) + pg_table_size(r)) FROM ($rels) x(r)" \
		-c "SELECT stratago.set_compression(r, 'default') FROM ($rels) x(r)" \
		-c "SELECT stratago.compact(r) FROM ($rels) x(r)" | grep -E '^[0-9]+$' | tail -1
}

# CREATE TABLE for the mixed-type row (about 80 bytes of data a row).
ROW_COLS="id bigint, qty int, price numeric(10,2), created timestamptz, active boolean, sku text, descr text"
ROW_GEN="SELECT g, (g * 37) % 1000, ((g::bigint * 7919) % 100000) / 100.0,
	timestamptz '2024-01-01' + g * interval '1 second', g % 3 = 0,
	'SKU-' || lpad(((g::bigint * 7919) % 1000000)::text, 7, '0'),
	(ARRAY['red','green','blue','black','white'])[g % 5 + 1] || ' widget, batch ' || (g / 1000) || ', ' || substr(md5(g::text), 1, 8)"
make_table() { q "DROP TABLE IF EXISTS $1; CREATE TABLE $1 ($ROW_COLS) USING $2"; }
# The updated table: UPD_ROWS rows, keyed by id when strata has indexes.
make_upd() {
	make_table upd "$1"
	q "INSERT INTO upd $ROW_GEN FROM generate_series(1, $UPD_ROWS) g"
	[ "$UPD_KEY" = 1 ] && q "ALTER TABLE upd ADD PRIMARY KEY (id)"
	settle upd "$1"
}

# strata writes its memtables to SSTables and heap its dirty pages to the
# data files, so that sizes and bytes written include what is still owed.
settle() {
	if [ "$2" = strata ]; then q "SELECT stratago.flush('$1')" >/dev/null; fi
	q "CHECKPOINT"
}

# Runs a pgbench command as postgres with the given default table AM;
# prints its stdout, leaves stderr in $DIR/pgbench.err.
pgbench_() {
	local am=$1; shift
	as_pg env PGOPTIONS="-c default_table_access_method=$am ${EXTRA_PGOPTIONS:-}" \
		"$PGBIN/pgbench" -h "$DIR" -p "$PORT" "$@" 2>"$DIR/pgbench.err"
}
tps_of() { awk '/^tps = / {print $3; exit}'; }
unsupported() { grep -o '[^:]*is not supported for strata tables yet' "$DIR/pgbench.err" | head -1 | sed 's/^ *//'; }

stop_cluster() {
	if [ -f "$DATA/postmaster.pid" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$DATA" stop -m fast >/dev/null || true
	fi
}

# ---------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------
SRC=$ROOT
if [ "$BUILD" = head ]; then
	SRC=$(mktemp -d /tmp/stratago-bench-src.XXXXXX)
	git -C "$ROOT" archive HEAD | tar -x -C "$SRC"
fi
if [ "$BUILD" != 0 ]; then
	make -C "$SRC" -s -j2
	make -C "$SRC" -s install >/dev/null
fi
SO=$("$PGBIN/pg_config" --pkglibdir)/stratago.so
SO_SUM=$(md5sum < "$SO" | cut -c1-12)
command -v gnuplot >/dev/null || echo "gnuplot not found: no charts (apt-get install gnuplot-nox)" >&2
[ -x "$PGBIN/pgbench" ] || { echo "pgbench not found (postgresql-contrib-15 / postgresql-client-15)" >&2; exit 1; }

stop_cluster
rm -rf "$DIR"
mkdir -p "$DIR"
chown postgres "$DIR"
: > "$RAW"; : > "$SERIES"; : > "$LOG"
chown postgres "$RAW" "$SERIES" "$LOG"
as_pg "$PGBIN/initdb" -D "$DATA" -A trust -N >/dev/null
{
	cat "$HERE/bench.conf"
	[ -n "$WAL_SINK" ] && echo "stratago.wal_sink = $WAL_SINK"
	echo "port = $PORT"
	echo "unix_socket_directories = '$DIR'"
	echo "listen_addresses = ''"
} >> "$DATA/postgresql.conf"
as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w start >/dev/null
[ "$KEEP" = 1 ] || trap stop_cluster EXIT
as_pg "$PGBIN/createdb" -h "$DIR" -p "$PORT" bench
q "CREATE EXTENSION stratago"
# Can strata build indexes in this build? The update workloads key their
# table by id if so (both AMs alike), and scan a smaller table if not.
if q "CREATE TABLE probe_idx (a int PRIMARY KEY) USING strata" 2>/dev/null; then UPD_KEY=1; else UPD_KEY=0; fi
q "DROP TABLE IF EXISTS probe_idx"
if [ -z "$UPD_ROWS" ]; then
	if [ "$UPD_KEY" = 1 ]; then UPD_ROWS=100000; else UPD_ROWS=10000; fi
fi
START=$(date +%s)
say "cluster up in $DIR (port $PORT); reps=$REPS bloat=${BLOAT_SECONDS}s quick=$QUICK"
{
	if [ "$BUILD" = head ]; then
		echo "commit	$(git -C "$ROOT" rev-parse --short HEAD) (clean export)"
	else
		echo "commit	$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- src sql 2>/dev/null || echo ' + uncommitted changes in src/ or sql/')"
	fi
	echo "library	stratago.so md5 $SO_SUM$([ "$(md5sum < "$SO" | cut -c1-12)" = "$SO_SUM" ] || echo ' (REPLACED by another install while the server started: results may not match the commit)')"
	echo "date	$(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "cpu	$(nproc) x $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "memory	$(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo)"
	echo "kernel	$(uname -r)"
	echo "server	$(q 'SELECT version()')"
	echo "load_start	$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "params	reps=$REPS copy_rows=$COPY_ROWS big_rows=$BIG_ROWS scale=$SCALE scale_big=$SCALE_BIG ins_seconds=$INS_SECONDS tpcb_seconds=$TPCB_SECONDS sel_seconds=$SEL_SECONDS scan_runs=$SCAN_RUNS upd_rows=$UPD_ROWS upd_key=$UPD_KEY upd_count=$UPD_COUNT bloat_seconds=$BLOAT_SECONDS bloat_clients=$BLOAT_CLIENTS"
} > "$DIR/env.tsv"

# ---------------------------------------------------------------------------
# COPY of COPY_ROWS mixed-type rows into a fresh table, then its size.
# The last repetition's tables stay for the scan workload.
# ---------------------------------------------------------------------------
if want copy || want scan; then
	say "generating $COPY_ROWS rows to $DIR/rows.csv"
	q "COPY ($ROW_GEN FROM generate_series(1, $COPY_ROWS) g) TO '$DIR/rows.csv' (FORMAT csv)"
	record row_bytes - 0 "$(($(stat -c %s "$DIR/rows.csv") / COPY_ROWS))" "CSV bytes a row"
	for r in $(seq 1 "$REPS"); do
		for am in $(order "$r"); do
			make_table "copy_$am" "$am"
			q "CHECKPOINT"
			ms=$(timed_ms "COPY copy_$am FROM '$DIR/rows.csv' (FORMAT csv)")
			settle "copy_$am" "$am"
			bytes=$(table_bytes "copy_$am" "$am")
			record copy_s "$am" "$r" "$(awk -v m="$ms" 'BEGIN {printf "%.3f", m/1000}')"
			record copy_size_mb "$am" "$r" "$(awk -v b="$bytes" 'BEGIN {printf "%.2f", b/1048576}')"
			say "copy $am rep $r: ${ms} ms, $bytes bytes"
			# once compacted: the size the table keeps (heap has nothing to do)
			ms=0
			[ "$am" = strata ] && ms=$(timed_ms "SELECT stratago.compact('copy_$am')")
			bytes=$(table_only_bytes "copy_$am" "$am")
			record compact_s "$am" "$r" "$(awk -v m="$ms" 'BEGIN {printf "%.3f", m/1000}')"
			record copy_compact_size_mb "$am" "$r" "$(awk -v b="$bytes" 'BEGIN {printf "%.2f", b/1048576}')"
		done
	done
	# The last repetition's strata table with its own codec zstd
	# (stratago.set_compression): size, compaction time and the aggregate
	# scan against heap's, then back to the default for the workloads below.
	record copy_zstd_size_mb heap 1 "$(awk -v b="$(table_only_bytes copy_heap heap)" 'BEGIN {printf "%.2f", b/1048576}')"
	q "SELECT stratago.set_compression('copy_strata', 'zstd')" >/dev/null
	ms=$(timed_ms "SELECT stratago.compact('copy_strata')")
	record copy_zstd_compact_s strata 1 "$(awk -v m="$ms" 'BEGIN {printf "%.3f", m/1000}')"
	record copy_zstd_compact_s heap 1 0
	record copy_zstd_size_mb strata 1 "$(awk -v b="$(table_only_bytes copy_strata strata)" 'BEGIN {printf "%.2f", b/1048576}')"
	for am in "${AMS[@]}"; do timed_ms "$SCAN_SQL copy_$am" >/dev/null; done
	for r in $(seq 1 "$REPS"); do
		for am in $(order "$r"); do
			record zstd_scan_ms "$am" "$r" "$(timed_ms "$SCAN_SQL copy_$am")"
		done
	done
	q "SELECT stratago.set_compression('copy_strata', 'default')" >/dev/null
	q "SELECT stratago.compact('copy_strata')" >/dev/null
	say "copy: zstd measured"
fi

# ---------------------------------------------------------------------------
# Whole-table aggregate over the COPY table (warm: one discarded run first).
# ---------------------------------------------------------------------------
if want scan; then
	for am in "${AMS[@]}"; do timed_ms "$SCAN_SQL copy_$am" >/dev/null; done
	for r in $(seq 1 "$SCAN_RUNS"); do
		for am in $(order "$r"); do
			ms=$(timed_ms "$SCAN_SQL copy_$am")
			record scan_ms "$am" "$r" "$ms"
			record scan_ns_row "$am" "$r" "$(awk -v m="$ms" -v n="$COPY_ROWS" 'BEGIN {printf "%.1f", m * 1e6 / n}')"
			ms=$(timed_ms "SET max_parallel_workers_per_gather = 0; $SCAN_SQL copy_$am")
			record scan_serial_ms "$am" "$r" "$ms"
		done
	done
	say "scan: done"
fi

# ---------------------------------------------------------------------------
# VACUUM after updating 1% of the COPY table's rows (a column no index
# covers) and deleting 0.1%, with a primary key: time, and bytes the server
# wrote for it (VACUUM itself, then the checkpoint or flush of what it left
# owed). Each repetition touches other rows.
# ---------------------------------------------------------------------------
if want vacuum && want copy; then
	for am in "${AMS[@]}"; do q "ALTER TABLE copy_$am ADD PRIMARY KEY (id)"; done
	vacuum_runs copy vacuum
fi
q "DROP TABLE IF EXISTS copy_heap, copy_strata"

# ---------------------------------------------------------------------------
# How costs grow with the table: BIG_ROWS of the same rows with a primary
# key (strata's compacted, as a table at rest is), then the aggregate scan
# and the VACUUM of 1% updated and 0.1% deleted, as above; per-row scan
# time and strata's SSTable count beside them.
# ---------------------------------------------------------------------------
if want big; then
	for am in "${AMS[@]}"; do
		make_table "big_$am" "$am"
		q "INSERT INTO big_$am $ROW_GEN FROM generate_series(1, $BIG_ROWS) g"
		q "ALTER TABLE big_$am ADD PRIMARY KEY (id)"
		[ "$am" = strata ] && q "SELECT stratago.compact('big_$am')" >/dev/null
		settle "big_$am" "$am"
		q "VACUUM ANALYZE big_$am"
		say "big: big_$am loaded, $(table_bytes "big_$am" "$am") bytes"
	done
	record big_sstables heap 1 0
	record big_sstables strata 1 "$(q "SELECT count(*) FROM stratago.sstables('big_strata')")"
	for am in "${AMS[@]}"; do timed_ms "$SCAN_SQL big_$am" >/dev/null; done
	for r in $(seq 1 "$REPS"); do
		for am in $(order "$r"); do
			ms=$(timed_ms "$SCAN_SQL big_$am")
			record big_scan_ms "$am" "$r" "$ms"
			record big_scan_ns_row "$am" "$r" "$(awk -v m="$ms" -v n="$BIG_ROWS" 'BEGIN {printf "%.1f", m * 1e6 / n}')"
		done
	done
	vacuum_runs big big_vacuum
	q "DROP TABLE IF EXISTS big_heap, big_strata"
fi

# ---------------------------------------------------------------------------
# Single-row INSERTs, 1 and 8 clients (pgbench custom script), fresh table.
# ---------------------------------------------------------------------------
if want insert; then
	for clients in 1 8; do
		for r in $(seq 1 "$REPS"); do
			for am in $(order "$r"); do
				make_table ins "$am"
				q "CHECKPOINT"
				tps=$(pgbench_ "$am" -n -c "$clients" -j $((clients < 2 ? 1 : 2)) -T "$INS_SECONDS" -f "$HERE/insert.sql" bench | tps_of)
				record_rate "ins${clients}_tps" "$am" "$r" "$tps" "$DIR/pgbench.err" "insert c=$clients"
			done
		done
	done
	q "DROP TABLE IF EXISTS ins"
fi

# ---------------------------------------------------------------------------
# pgbench: `pgbench -i -s SCALE` into a database of its own per AM, with the
# AM as default_table_access_method; pgbench_accounts' size (table alone,
# without its key index) after the load. If strata cannot build pgbench's
# keys (no index support in this build), -i stops at its "p" step with a
# not-supported error: the size is still measured, TPC-B and -S run on
# heap only and strata reads n/a.
# ---------------------------------------------------------------------------
if want pgbench; then
	declare -A PGB_OK PGB_WHY
	for am in $(order 1); do
		q "DROP DATABASE IF EXISTS pgb_$am"
		as_pg "$PGBIN/createdb" -h "$DIR" -p "$PORT" "pgb_$am"
		as_pg "$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -d "pgb_$am" -c "CREATE EXTENSION stratago"
		t0=$(date +%s.%N)
		if pgbench_ "$am" -i -q -s "$SCALE" "pgb_$am" >/dev/null; then
			PGB_OK[$am]=1
			record init_s "$am" 1 "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.3f", b - a}')"
		else
			PGB_OK[$am]=0
			PGB_WHY[$am]=$(unsupported)
			[ -n "${PGB_WHY[$am]}" ] || { cat "$DIR/pgbench.err" >&2; echo "pgbench -i failed on $am for another reason than a not-supported feature" >&2; exit 1; }
			record init_s "$am" 0 NA "n/a until indexes land (pgbench -i: ${PGB_WHY[$am]})"
			say "pgbench -i on $am: ${PGB_WHY[$am]}"
		fi
		[ "$am" = strata ] && as_pg "$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -d "pgb_$am" -c "SELECT stratago.flush('pgbench_accounts')" >/dev/null
		bytes=$(as_pg "$PGBIN/psql" -X -q -At -h "$DIR" -p "$PORT" -d "pgb_$am" -c "CHECKPOINT" \
			-c "SELECT $([ "$am" = strata ] && echo "stratago.relation_size('pgbench_accounts') +") pg_table_size('pgbench_accounts')")
		record accounts_size_mb "$am" 1 "$(awk -v b="$bytes" 'BEGIN {printf "%.2f", b/1048576}')"
		say "pgbench -i $am: pgbench_accounts $bytes bytes"
		bytes=$(as_pg "$PGBIN/psql" -X -q -At -h "$DIR" -p "$PORT" -d "pgb_$am" \
			-c "$([ "$am" = strata ] && echo "SELECT stratago.compact('pgbench_accounts');") CHECKPOINT" \
			-c "SELECT $([ "$am" = strata ] && echo "stratago.relation_size('pgbench_accounts') +") pg_table_size('pgbench_accounts')" | tail -1)
		record accounts_compact_size_mb "$am" 1 "$(awk -v b="$bytes" 'BEGIN {printf "%.2f", b/1048576}')"
		[ "$am" = strata ] && bytes=$(zstd_bytes "pgb_$am" "SELECT 'pgbench_accounts'::regclass")
		record accounts_zstd_size_mb "$am" 1 "$(awk -v b="$bytes" 'BEGIN {printf "%.2f", b/1048576}')"
	done
	for kind in tpcb selS selC range bitmap; do
		for r in $(seq 1 "$REPS"); do
			for am in $(order "$r"); do
				if [ "${PGB_OK[$am]}" != 1 ]; then
					[ "$r" = 1 ] && record "${kind}_tps" "$am" 0 NA "n/a until indexes land (pgbench -i: ${PGB_WHY[$am]})"
					continue
				fi
				if [ "$kind" = tpcb ]; then
					as_pg "$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -d "pgb_$am" -c CHECKPOINT
					tps=$(pgbench_ "$am" -n -c 8 -j 2 -T "$TPCB_SECONDS" "pgb_$am" | tps_of)
				elif [ "$kind" = selS ]; then
					tps=$(pgbench_ "$am" -n -S -c 8 -j 2 -T "$SEL_SECONDS" "pgb_$am" | tps_of)
				elif [ "$kind" = selC ]; then
					# a new connection per query: what a backend's first query costs
					tps=$(pgbench_ "$am" -n -S -C -c 1 -T "$SEL_SECONDS" "pgb_$am" | tps_of)
				else
					# 10,000 rows by key, one client: the plan forced alike on both
					if [ "$kind" = range ]; then
						plan="-c enable_seqscan=off -c enable_bitmapscan=off"
					else
						plan="-c enable_seqscan=off -c enable_indexscan=off"
					fi
					tps=$(EXTRA_PGOPTIONS="$plan" pgbench_ "$am" -n -c 1 -T "$SEL_SECONDS" \
						-D rows=$((SCALE * 100000)) -f "$HERE/range.sql" "pgb_$am" | tps_of)
				fi
				record_rate "${kind}_tps" "$am" "$r" "$tps" "$DIR/pgbench.err" "$kind"
			done
		done
	done
	for am in "${AMS[@]}"; do q "DROP DATABASE IF EXISTS pgb_$am"; done
fi

# pgbench -S at the larger scale: how point lookups hold up as the table
# grows (ten times the rows, more SSTables, indexes beyond the CPU caches).
# The strata table is compacted first, as the large aggregate's is.
if want pgbench100; then
	for am in $(order 1); do
		q "DROP DATABASE IF EXISTS pgb100_$am"
		as_pg "$PGBIN/createdb" -h "$DIR" -p "$PORT" "pgb100_$am"
		as_pg "$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -d "pgb100_$am" -c "CREATE EXTENSION stratago"
		pgbench_ "$am" -i -q -s "$SCALE_BIG" "pgb100_$am" >/dev/null
		[ "$am" = strata ] && as_pg "$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -d "pgb100_$am" \
			-c "SELECT stratago.compact('pgbench_accounts')" >/dev/null
		as_pg "$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -d "pgb100_$am" -c "VACUUM ANALYZE" -c CHECKPOINT
		say "pgbench -i -s $SCALE_BIG $am done"
	done
	record selS100_sstables heap 1 0
	record selS100_sstables strata 1 "$(as_pg "$PGBIN/psql" -X -q -At -h "$DIR" -p "$PORT" -d pgb100_strata \
		-c "SELECT count(*) FROM stratago.sstables('pgbench_accounts')")"
	for r in $(seq 1 "$REPS"); do
		for am in $(order "$r"); do
			tps=$(pgbench_ "$am" -n -S -c 8 -j 2 -T "$SEL_SECONDS" "pgb100_$am" | tps_of)
			record_rate selS100_tps "$am" "$r" "$tps" "$DIR/pgbench.err" "selS100"
		done
	done
	for am in "${AMS[@]}"; do q "DROP DATABASE IF EXISTS pgb100_$am"; done
fi

# ---------------------------------------------------------------------------
# sysbench's OLTP workloads (Debian `sysbench`, pgsql driver): 4 tables of
# SB_ROWS rows in a database per access method (the AM as
# default_table_access_method while sysbench prepares them), 8 threads,
# SB_SECONDS a run, the access methods taking turns.
# ---------------------------------------------------------------------------
sysbench_() {
	local am=$1; shift
	as_pg env PGOPTIONS="-c default_table_access_method=$am" sysbench --db-driver=pgsql \
		--pgsql-host="$DIR" --pgsql-port="$PORT" --pgsql-user=postgres --pgsql-db="sb_$am" \
		--tables=4 --table-size="$SB_ROWS" "$@" 2>"$DIR/sysbench.err"
}
if want sysbench; then
	if ! command -v sysbench >/dev/null; then
		say "sysbench not installed (apt-get install sysbench): skipped"
	else
		for am in "${AMS[@]}"; do
			q "DROP DATABASE IF EXISTS sb_$am"
			as_pg "$PGBIN/createdb" -h "$DIR" -p "$PORT" "sb_$am"
			as_pg "$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -d "sb_$am" -c "CREATE EXTENSION stratago"
			sysbench_ "$am" --threads=2 oltp_read_write prepare >/dev/null
			[ "$am" = strata ] && as_pg "$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -d "sb_$am" \
				-c "SELECT stratago.compact(c.oid) FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'strata'" >/dev/null
			as_pg "$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -d "sb_$am" -c "VACUUM ANALYZE" -c CHECKPOINT
			bytes=$(as_pg "$PGBIN/psql" -X -q -At -h "$DIR" -p "$PORT" -d "sb_$am" \
				-c "SELECT sum($([ "$am" = strata ] && echo "stratago.relation_size(c.oid) +") pg_table_size(c.oid)) FROM pg_class c WHERE c.relname LIKE 'sbtest%' AND c.relkind = 'r'")
			record sb_size_mb "$am" 1 "$(awk -v b="$bytes" 'BEGIN {printf "%.2f", b/1048576}')"
			[ "$am" = strata ] && bytes=$(zstd_bytes "sb_$am" \
				"SELECT c.oid::regclass FROM pg_class c WHERE c.relname LIKE 'sbtest%' AND c.relkind = 'r'")
			record sb_zstd_size_mb "$am" 1 "$(awk -v b="$bytes" 'BEGIN {printf "%.2f", b/1048576}')"
		done
		for test in oltp_point_select oltp_read_only oltp_write_only oltp_read_write; do
			for r in $(seq 1 "$REPS"); do
				for am in $(order "$r"); do
					tps=$(sysbench_ "$am" --threads=8 --time="$SB_SECONDS" --report-interval=0 "$test" run |
						awk '/transactions:/ {gsub(/[(]/, "", $3); print $3; exit}')
					record_rate "sb_${test#oltp_}_tps" "$am" "$r" "$tps" "$DIR/sysbench.err" "sysbench $test"
				done
			done
		done
		for am in "${AMS[@]}"; do q "DROP DATABASE IF EXISTS sb_$am"; done
	fi
fi

# ---------------------------------------------------------------------------
# Bytes written per 1,000 row updates, two ways: one row a transaction
# (update.sql, UPD_COUNT transactions) and 100 random rows a transaction
# (update100.sql, UPD_COUNT/100 transactions), each from a checkpointed start
# to a settled end (strata flushed to SSTables, CHECKPOINT, a few seconds for
# the maintenance worker's compactions). Bytes = wchar of the server
# processes (see server_written_bytes), so PostgreSQL WAL, heap pages,
# engine WAL and SSTables all count.
# ---------------------------------------------------------------------------
measure_updates() {
	local am=$1 key=$2 script=$3 txs=$4 rows_per_tx=$5 w0 w1 l0 wal e0=0 e1=0 n
	make_upd "$am"
	sleep 2
	w0=$(server_written_bytes)
	l0=$(q "SELECT pg_current_wal_lsn()")
	[ "$am" = strata ] && e0=$(q "SELECT wal_bytes || ' ' || flush_bytes + compaction_bytes FROM stratago.table_stats('upd')")
	pgbench_ "$am" -n -c 1 -t "$txs" -D rows="$UPD_ROWS" -f "$HERE/$script" bench >/dev/null
	[ "$am" = strata ] && e1=$(q "SELECT stratago.flush('upd'); SELECT wal_bytes || ' ' || flush_bytes + compaction_bytes FROM stratago.table_stats('upd')" | tail -1)
	q "CHECKPOINT"
	sleep 2
	w1=$(server_written_bytes)
	wal=$(q "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$l0')")
	n=$((txs * rows_per_tx))
	per_k() { awk -v a="$1" -v b="$2" -v n="$n" 'BEGIN {printf "%.1f", (b - a) / n}'; }
	record "${key}_bytes_kb" "$am" "$r" "$(per_k "$w0" "$w1")"
	record "${key}_pgwal_kb" "$am" "$r" "$(per_k 0 "$wal")"
	if [ "$am" = strata ]; then
		read -r ew0 es0 <<< "$e0"; read -r ew1 es1 <<< "$e1"
		record "${key}_enginewal_kb" "$am" "$r" "$(per_k "$ew0" "$ew1")"
		record "${key}_sstable_kb" "$am" "$r" "$(per_k "$es0" "$es1")"
	fi
	say "$key $am rep $r: $((w1 - w0)) bytes written for $n row updates (PostgreSQL WAL $wal)"
}
if want updbytes; then
	for r in $(seq 1 "$REPS"); do
		for am in $(order "$r"); do
			measure_updates "$am" upd1 update.sql "$UPD_COUNT" 1
			measure_updates "$am" upd100 update100.sql $((UPD_COUNT / 100)) 100
		done
	done
	q "DROP TABLE IF EXISTS upd"
fi

# ---------------------------------------------------------------------------
# Sustained updates for BLOAT_SECONDS, heap and strata at the same time (a
# table each, BLOAT_CLIENTS clients each), so that a busy neighbour on the
# machine hits both alike and the 10-minute run takes 10 minutes. Sizes are
# sampled every SAMPLE_SECONDS; autovacuum is on.
# ---------------------------------------------------------------------------
if want bloat; then
	declare -A PGB
	for am in "${AMS[@]}"; do
		make_upd "$am"
		q "ALTER TABLE upd RENAME TO upd_$am"
		[ "$UPD_KEY" = 1 ] && q "ALTER INDEX upd_pkey RENAME TO upd_${am}_pkey"
		sed "s/\bupd\b/upd_$am/" "$HERE/update.sql" > "$DIR/update_$am.sql"
		chown postgres "$DIR/update_$am.sql"
	done
	for am in "${AMS[@]}"; do
		pgbench_ "$am" -n -c "$BLOAT_CLIENTS" -j "$BLOAT_CLIENTS" -T "$BLOAT_SECONDS" -D rows="$UPD_ROWS" \
			-f "$DIR/update_$am.sql" bench > "$DIR/bloat_$am.out" &
		PGB[$am]=$!
	done
	t=0
	while :; do
		running=0
		for am in "${AMS[@]}"; do
			printf '%s\t%s\t%s\n' "$am" "$t" "$(table_bytes "upd_$am" "$am")" >> "$SERIES"
			kill -0 "${PGB[$am]}" 2>/dev/null && running=1
		done
		[ "$running" = 1 ] || break
		sleep "$SAMPLE_SECONDS"
		t=$((t + SAMPLE_SECONDS))
	done
	for am in "${AMS[@]}"; do
		wait "${PGB[$am]}" || true
		record bloat_tps "$am" 1 "$(tps_of < "$DIR/bloat_$am.out")"
		first=$(awk -v a="$am" '$1==a {print $3; exit}' "$SERIES")
		last=$(awk -v a="$am" '$1==a {v=$3} END {print v}' "$SERIES")
		record bloat_growth "$am" 1 "$(awk -v a="$first" -v b="$last" 'BEGIN {printf "%.2f", b/a}')"
		record bloat_end_mb "$am" 1 "$(awk -v b="$last" 'BEGIN {printf "%.2f", b/1048576}')"
		say "bloat $am: $first -> $last bytes"
		q "DROP TABLE upd_$am"
	done
fi

echo "load_end	$(cut -d' ' -f1-3 /proc/loadavg)" >> "$DIR/env.tsv"
echo "duration	$(( $(date +%s) - START )) s" >> "$DIR/env.tsv"
cp "$HERE/bench.conf" "$DIR/bench.conf"
[ -n "$WAL_SINK" ] && echo "stratago.wal_sink = $WAL_SINK" >> "$DIR/bench.conf"
if [ -n "$WAL_SINK" ] && [ "$WAL_SINK" != postgres ]; then
	STRATAGO_REPORT_NAME=pg-$WAL_SINK-sink "$HERE/report.sh" "$DIR" "$OUT"
else
	"$HERE/report.sh" "$DIR" "$OUT"
fi
