#!/bin/bash
# bench/pg/report.sh — turns the raw numbers of one bench/pg/run.sh run into
# the report: prints medians and strata/heap ratios, writes OUTDIR/pg.md (a
# Markdown table against the targets, the settings, every raw value) and
# the charts OUTDIR/pg-ratios.svg and OUTDIR/pg-bloat.svg (gnuplot).
#
# Usage: bench/pg/report.sh RUNDIR [OUTDIR]
#   RUNDIR holds raw.tsv (workload, am, rep, value|NA, note), bloat.tsv
#   (am, seconds, bytes), env.tsv and bench.conf, as run.sh leaves them.
# Everything below the line "<!-- notes -->" in an existing pg.md is kept:
# it holds hand-written analysis (profiles) of the committed run.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
RUN=${1:?usage: report.sh RUNDIR [OUTDIR]}
OUT=${2:-$HERE/../results}
mkdir -p "$OUT"
NAME=${STRATAGO_REPORT_NAME:-pg}	# file names: $NAME.md, $NAME-ratios.svg, $NAME-bloat.svg
MD=$OUT/$NAME.md

# The workloads, in report order:
# key | label | unit | better (lower/higher) | target kind | target value |
# target text | short label for the chart (empty: not charted)
# Target kinds: ratio_le / ratio_ge compare the strata/heap ratio of medians;
# strata_le compares strata's own median; "-" means no target (context).
METRICS='copy_s|COPY of the mixed-type rows|s|lower|ratio_le|1.0|<= heap|COPY time
copy_size_mb|table size after the COPY|MB|lower|-|||size after COPY
copy_compact_size_mb|the COPY table once compacted (strata: stratago.compact; heap: as loaded)|MB|lower|ratio_le|0.6|<= 0.6x heap|COPY table compacted
compact_s|stratago.compact() of the COPY table (strata only; heap: 0)|s|lower|-|||
copy_zstd_size_mb|the COPY table with its own codec zstd (stratago.set_compression), compacted|MB|lower|ratio_le|0.6|<= 0.6x heap|COPY table, zstd
copy_zstd_compact_s|stratago.compact() rewriting it as zstd (strata only; heap: 0)|s|lower|-|||
zstd_scan_ms|the aggregate scan over it (heap: the same table as above)|ms|lower|ratio_le|1.0|<= heap|aggregate scan, zstd table
accounts_size_mb|pgbench_accounts size after pgbench -i (table, no index)|MB|lower|ratio_le|0.5|<= 0.5x heap|pgbench_accounts size
accounts_compact_size_mb|pgbench_accounts once compacted (table, no index)|MB|lower|ratio_le|0.10|<= 0.10x heap|pgbench_accounts compacted
accounts_zstd_size_mb|pgbench_accounts with its own codec zstd, compacted|MB|lower|ratio_le|0.10|<= 0.10x heap|pgbench_accounts, zstd
sb_size_mb|sysbench tables once compacted, 4 x 100k rows (tables, no indexes)|MB|lower|ratio_le|0.6|<= 0.6x heap|sysbench tables compacted
sb_zstd_size_mb|the sysbench tables with their own codec zstd, compacted|MB|lower|ratio_le|0.6|<= 0.6x heap|sysbench tables, zstd
init_s|pgbench -i, all steps (load, vacuum, keys)|s|lower|-|||pgbench -i time
ins1_tps|single-row INSERT, 1 client|tps|higher|-|||INSERT tps, 1 client
ins8_tps|single-row INSERT, 8 clients|tps|higher|-|||INSERT tps, 8 clients
tpcb_tps|pgbench TPC-B, 8 clients|tps|higher|ratio_ge|1.0|>= heap|TPC-B tps
selS_tps|pgbench -S point lookups, 8 clients|tps|higher|ratio_ge|1.0|>= heap|pgbench -S tps
selS100_tps|pgbench -S point lookups at the larger scale (compacted), 8 clients|tps|higher|ratio_ge|1.0|>= heap|pgbench -S tps, larger scale
selS100_sstables|SSTables of pgbench_accounts at the larger scale (strata; heap: 0)|files|lower|-|||
selC_tps|pgbench -S with a new connection per query (the first query of a new backend), 1 client|tps|higher|-|||pgbench -S -C tps
range_tps|10,000 rows by key as an index scan, 1 client|tps|higher|ratio_ge|1.0|>= heap|index range scan tps
bitmap_tps|10,000 rows by key as a bitmap heap scan, 1 client|tps|higher|ratio_ge|1.0|>= heap|bitmap scan tps
scan_ms|whole-table aggregate over the COPY table|ms|lower|ratio_le|1.0|<= heap|aggregate scan time
scan_serial_ms|the same aggregate without parallel workers|ms|lower|ratio_le|1.0|<= heap|aggregate scan, serial
scan_ns_row|its time per row (default parallelism)|ns|lower|-|||
vacuum_ms|VACUUM of the COPY table, 1% updated, 0.1% deleted|ms|lower|ratio_le|1.5|<= 1.5x heap|VACUUM time
vacuum_write_mb|bytes written by that VACUUM and what it left owed|MB|lower|ratio_le|2.0|<= 2x heap|VACUUM bytes written
big_scan_ms|whole-table aggregate over the large table (the same rows, compacted; its size in the header)|ms|lower|ratio_le|1.0|<= heap|aggregate scan, large table
big_scan_ns_row|its time per row|ns|lower|-|||
big_sstables|SSTables of the large table (strata; heap: 0)|files|lower|-|||
big_vacuum_ms|VACUUM of the large table, 1% updated, 0.1% deleted|ms|lower|ratio_le|1.5|<= 1.5x heap|VACUUM time, large table
big_vacuum_write_mb|bytes written by that VACUUM and what it left owed|MB|lower|ratio_le|2.0|<= 2x heap|VACUUM bytes, large table
sb_point_select_tps|sysbench oltp_point_select, 4 x 100k rows, 8 threads|tps|higher|ratio_ge|1.0|>= heap|sysbench point_select
sb_read_only_tps|sysbench oltp_read_only, 4 x 100k rows, 8 threads|tps|higher|ratio_ge|1.0|>= heap|sysbench read_only
sb_write_only_tps|sysbench oltp_write_only, 4 x 100k rows, 8 threads|tps|higher|ratio_ge|1.0|>= heap|sysbench write_only
sb_read_write_tps|sysbench oltp_read_write, 4 x 100k rows, 8 threads|tps|higher|ratio_ge|1.0|>= heap|sysbench read_write
upd1_bytes_kb|bytes written per 1,000 updates, 1 row a transaction|kB|lower|ratio_le|0.3|<= 0.3x heap|bytes/update, 1 row/xact
upd1_pgwal_kb|of which PostgreSQL WAL generated|kB|lower|-|||
upd1_enginewal_kb|of which strata WAL records (engine WAL, or inside PostgreSQL WAL with wal_sink = postgres)|kB|lower|-|||
upd1_sstable_kb|of which SSTables flushed and compacted (strata)|kB|lower|-|||
upd100_bytes_kb|bytes written per 1,000 updates, 100 random rows a transaction|kB|lower|ratio_le|0.3|<= 0.3x heap|bytes/update, 100 rows/xact
upd100_pgwal_kb|of which PostgreSQL WAL generated|kB|lower|-|||
upd100_enginewal_kb|of which strata WAL records (engine WAL, or inside PostgreSQL WAL with wal_sink = postgres)|kB|lower|-|||
upd100_sstable_kb|of which SSTables flushed and compacted (strata)|kB|lower|-|||
bloat_growth|table size at the end / at the start of sustained updates|x|lower|strata_le|1.1|strata flat (<= 1.1x) while heap grows|growth under updates
bloat_end_mb|table size at the end of sustained updates|MB|lower|-|||size after updates
bloat_peak_mb|largest table size sampled during sustained updates|MB|lower|-|||peak size under updates
bloat_tps|update rate during the sustained-update run|tps|higher|-|||update tps (sustained)'

env_get() { awk -F'\t' -v k="$1" '$1==k {print $2}' "$RUN/env.tsv"; }
params=$(env_get params)
param() { echo "$params" | tr ' ' '\n' | awk -F= -v k="$1" '$1==k {print $2}'; }

# The peak of each access method's size samples joins the raw numbers.
RAWX=$(mktemp)
trap 'rm -f "$RAWX"' EXIT
cat "$RUN/raw.tsv" > "$RAWX"
awk -F'\t' '{if (!($1 in m) || $3 + 0 > m[$1]) m[$1] = $3 + 0}
	END {for (a in m) printf "bloat_peak_mb\t%s\t1\t%.2f\t\n", a, m[a] / 1048576}' "$RUN/bloat.tsv" | sort >> "$RAWX"

# One line per metric with data: key, label, unit, heap median, strata
# median, ratio, target text, verdict, note (why n/a).
SUMMARY=$(echo "$METRICS" | awk -F'|' -v raw="$RAWX" '
function median(list,   n, a, i, j, t) {
	n = split(list, a, " ")
	if (n == 0) return "NA"
	for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function fmt(v) {
	if (v == "NA") return "n/a"
	if (v + 0 >= 100) return sprintf("%.0f", v)
	if (v + 0 >= 10) return sprintf("%.1f", v)
	return sprintf("%.2f", v)
}
BEGIN {
	FS = "\t"
	while ((getline line < raw) > 0) {
		split(line, f, "\t")
		k = f[1] SUBSEP f[2]
		if (f[4] == "NA") { na[k] = 1; if (f[5] != "") note[f[1]] = f[5]; continue }
		vals[k] = vals[k] " " f[4]
	}
	FS = "|"
}
{
	key = $1; hk = key SUBSEP "heap"; sk = key SUBSEP "strata"
	if (!(hk in vals) && !(sk in vals) && !(hk in na) && !(sk in na)) next
	h = (hk in vals) ? median(vals[hk]) : "NA"
	s = (sk in vals) ? median(vals[sk]) : "NA"
	ratio = (h != "NA" && s != "NA" && h + 0 != 0) ? sprintf("%.2f", s / h) : "NA"
	verdict = "-"
	if ($5 == "ratio_le" || $5 == "ratio_ge") {
		if (ratio == "NA") verdict = "n/a"
		else if ($5 == "ratio_le") verdict = (ratio + 0 <= $6 + 0) ? "met" : "not met"
		else verdict = (ratio + 0 >= $6 + 0) ? "met" : "not met"
	} else if ($5 == "strata_le") {
		if (s == "NA") verdict = "n/a"
		else verdict = (s + 0 <= $6 + 0 && (h == "NA" || h + 0 > $6 + 0)) ? "met" : \
			(s + 0 <= $6 + 0 ? "strata flat, heap flat too" : "not met")
	}
	# advantage: >1 means strata does better, whichever way the metric points
	adv = (ratio == "NA" || ratio + 0 == 0) ? "NA" : ($4 == "lower" ? 1 / ratio : ratio)
	printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", key, $2, $3, fmt(h), fmt(s), \
		(ratio == "NA" ? "n/a" : ratio), ($7 == "" ? "-" : $7), verdict, note[key], adv, $4, $8
}')

# Console summary.
echo
printf '%-58s %10s %10s %8s  %s\n' "workload" "heap" "strata" "s/h" "target"
echo "$SUMMARY" | awk -F'\t' '{printf "%-58s %10s %10s %8s  %s %s\n", $2 " (" $3 ")", $4, $5, $6, $7, ($8 == "-" ? "" : "[" $8 "]")}'

# Charts.
have_gnuplot=0
if command -v gnuplot >/dev/null; then
	have_gnuplot=1
	echo "$SUMMARY" | awk -F'\t' '$10 != "NA" && $12 != "" {printf "\"%s\"\t%s\n", $12, $10}' > "$RUN/ratios.dat"
	awk -F'\t' '{print > ("'"$RUN"'/bloat_" $1 ".dat")}' "$RUN/bloat.tsv"
	[ -s "$RUN/bloat_heap.dat" ] || echo "0 0 0" > "$RUN/bloat_heap.dat"
	[ -s "$RUN/bloat_strata.dat" ] || echo "0 0 0" > "$RUN/bloat_strata.dat"
	have_bloat=0
	out_bloat=
	if [ -s "$RUN/bloat.tsv" ]; then have_bloat=1; out_bloat=$OUT/$NAME-bloat.svg; fi
	gnuplot -e "ratios='$RUN/ratios.dat'; heap='$RUN/bloat_heap.dat'; strata='$RUN/bloat_strata.dat'; \
		out_ratios='$OUT/$NAME-ratios.svg'; out_bloat='$out_bloat'" "$HERE/plot.gp"
fi

# Markdown.
notes=""
if [ -f "$MD" ] && grep -q '^<!-- notes -->' "$MD"; then
	notes=$(sed -n '/^<!-- notes -->/,$p' "$MD")
fi
{
	cat <<EOF
# strata against heap: PostgreSQL benchmarks

Generated by \`make bench\` (\`bench/pg/run.sh\`, see \`bench/pg/README.md\`);
the tables above the notes are rewritten by every run. One scratch cluster,
the same settings for both access methods (below), fsync and
synchronous_commit on. Each workload ran on heap and on strata alternately,
$(param reps) times each; the numbers are medians and the ratio is strata's
median over heap's. Targets are goals to report against, not assertions.

| run | |
|---|---|
| commit | $(env_get commit) |
| date | $(env_get date) |
| machine | $(env_get cpu), $(env_get memory), Linux $(env_get kernel) |
| server | $(env_get server | sed 's/, compiled by.*//') |
| load average at start / end | $(env_get load_start) / $(env_get load_end) |
| duration | $(env_get duration) |
| sizes | COPY $(param copy_rows) rows ($(awk -F'\t' '$1=="row_bytes" {print $4}' "$RUN/raw.tsv") CSV bytes a row); pgbench scale $(param scale) (and $(param scale_big) for -S); updated table $(param upd_rows) rows; large table $(param big_rows) rows |
| durations | INSERT runs $(param ins_seconds) s, TPC-B $(param tpcb_seconds) s, -S $(param sel_seconds) s, sustained updates $(param bloat_seconds) s (both access methods at once) |

## Results

| workload | unit | heap | strata | strata/heap | target | |
|---|---|---:|---:|---:|---|---|
EOF
	echo "$SUMMARY" | awk -F'\t' '{
		s = $5; if (s == "n/a" && $9 != "") s = "n/a"
		printf "| %s | %s | %s | %s | %s | %s | %s |\n", $2, $3, $4, s, $6, $7, ($8 == "-" ? "" : $8) }'
	echo
	echo "$SUMMARY" | awk -F'\t' '$9 != "" {printf "- %s on strata: %s.\n", $2, $9}'
	if [ "$have_gnuplot" = 1 ]; then
		cat <<EOF

![strata relative to heap]($NAME-ratios.svg)

EOF
		if [ "$have_bloat" = 1 ]; then
			cat <<EOF

![table size under sustained updates]($NAME-bloat.svg)
EOF
		fi
	fi
	cat <<EOF

## What each workload does

- **COPY**: \`COPY ... FROM\` a server-side CSV file of mixed-type rows
  (bigint, int, numeric, timestamptz, boolean, two short texts) into a
  fresh table, timed by the server; the size is then taken after strata's
  memtables are flushed to SSTables (\`stratago.flush\`) and a CHECKPOINT.
- **Table sizes**: heap = \`pg_total_relation_size()\`; strata = that (its
  PostgreSQL files: an empty main fork, indexes, TOAST) plus
  \`stratago.relation_size()\`, the engine's bytes, which the \`pg_*_size\`
  functions cannot see. pgbench_accounts is measured without its key index
  (\`pg_table_size\` instead of \`pg_total_relation_size\`), after a flush
  and CHECKPOINT.
- **Single-row INSERTs**: \`bench/pg/insert.sql\` with pgbench, one INSERT a
  transaction, into a fresh table without index.
- **TPC-B and -S**: \`pgbench -i -s $(param scale)\` into a database of its
  own per access method, with the access method as
  \`default_table_access_method\` (so pgbench_history too), then the
  built-in scripts with 8 clients (2 pgbench threads). If strata cannot
  build the keys, -i stops with the not-supported error, the runs happen on
  heap only and strata reads n/a.
- **-S at the larger scale**: \`pgbench -i -s $(param scale_big)\` the same way,
  the strata table compacted (\`stratago.compact\`), \`VACUUM ANALYZE\` and a
  CHECKPOINT on both, then \`pgbench -S\` with 8 clients as above.
- **Aggregate scan**: count/sum/avg/max/filter over the COPY table, warm
  (one discarded run first), default parallelism and then serial
  (\`max_parallel_workers_per_gather = 0\`).
- **Large table**: $(param big_rows) of the same rows inserted with a primary
  key (strata's compacted, then VACUUM ANALYZE on both); the aggregate scan
  (default parallelism) and the VACUUM workload on it, to show how costs
  grow with the table.
- **Bytes written per 1,000 updates**: $(param upd_count) row updates of a
  $(param upd_rows)-row table $([ "$(param upd_key)" = 1 ] && echo "keyed by a primary key on id (the
  updates change only non-key columns)" || echo "without index (strata could not build one: rows are
  found by a sequential scan on both)"), 1 client, either one row a
  transaction (\`bench/pg/update.sql\`) or 100 random rows a transaction
  (\`bench/pg/update100.sql\`), from a checkpointed start to a settled end
  (strata flushed, CHECKPOINT, 2 s for the maintenance worker). Bytes are
  what the server processes passed to \`write(2)\`: \`wchar\` of
  \`/proc/<pid>/io\` summed over the postmaster (which accumulates its reaped
  children) and its live children. Not \`write_bytes\`: on this kernel the
  page cache counts a whole large folio (up to 2 MB) per dirtied folio, so
  one small WAL append plus fdatasync reads as 2 MB. Caveat: a device writes
  whole 4 kB blocks, so an fsync'd append smaller than 4 kB (strata's engine
  WAL record of a one-row commit) costs the disk more than \`wchar\` shows;
  PostgreSQL always writes whole 8 kB WAL pages, so heap's numbers carry no
  such gap. kB = 1000 bytes. PostgreSQL WAL is the LSN distance; engine WAL
  and SSTable bytes come from \`stratago.table_stats()\`.
- **Sustained updates**: the same table and single-row update script with $(param bloat_clients)
  clients for $(param bloat_seconds) s on each access method, both at the same
  time (a table each) so that other load on the machine hits both alike;
  autovacuum on;
  the size (indexes included) is sampled every few seconds.

## Settings (\`bench/pg/bench.conf\`)

\`\`\`
$(grep -v '^#' "$RUN/bench.conf")
\`\`\`

## Raw values

| workload | access method | values (in run order) |
|---|---|---|
EOF
	awk -F'\t' '$1 != "row_bytes" {k = $1 "\t" $2; if (!(k in v)) order[++n] = k; v[k] = v[k] (v[k] == "" ? "" : ", ") $4}
		END {for (i = 1; i <= n; i++) {split(order[i], p, "\t"); printf "| %s | %s | %s |\n", p[1], p[2], v[order[i]]}}' "$RAWX"
	# The engine on its own, from its latest run (make engine-bench).
	if [ -f "$OUT/engine.md" ]; then
		echo
		echo "## The engine against RocksDB's db_bench"
		echo
		echo "From \`engine.md\` (\`make engine-bench\`, its own run; ratio > 1: the engine is faster):"
		echo
		grep -E '^\* (date|ours|RocksDB):' "$OUT/engine.md"
		echo
		# its first table: the medians
		awk '/^\|/ {print; seen = 1; next} seen {exit}' "$OUT/engine.md"
	fi
	if [ -n "$notes" ]; then
		echo
		echo "$notes"
	fi
} > "$MD"
echo
echo "wrote $MD$([ "$have_gnuplot" = 1 ] && echo " and $OUT/$NAME-ratios.svg")$([ "${have_bloat:-0}" = 1 ] && echo ", $OUT/$NAME-bloat.svg")"
