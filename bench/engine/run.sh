#!/bin/bash
# run.sh — runs the engine microbenchmark (engine_bench), the same program
# over LevelDB (leveldb_bench) and RocksDB's db_bench with matching
# settings, in turn, RUNS times each; prints a side-by-side table of
# medians (ops/s, MB/s, ratios ours/LevelDB and ours/RocksDB) and writes it
# as Markdown to bench/results/engine.md.
#
# Usage (from anywhere):  bench/engine/run.sh
# Environment: RUNS (3), NUM (1000000), OUT (bench/results/engine.md),
#              DB_BENCH (db_bench), TMPDIR (where the DBs go; /tmp).
#
# Everything below the line "<!-- history -->" in an existing OUT is kept:
# it holds the hand-written profiling notes and before/after numbers.
set -euo pipefail

cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
NUM=${NUM:-1000000}
OUT=${OUT:-bench/results/engine.md}
DB_BENCH=${DB_BENCH:-db_bench}
BENCHES=fillseq,fillrandom,readrandom,readseq,seekrandom,overwrite

make -s engine-bench >/dev/null
WORK=$(mktemp -d "${TMPDIR:-/tmp}/engine-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Shared by both tools (same flag names and meaning on both sides).
COMMON="--benchmarks=$BENCHES --num=$NUM --key_size=16 --value_size=100 --compression_type=lz4 --bloom_bits=10 --sync=0 --seed=1"
# LSM shape, chosen equal on both sides: 16 MiB memtables, at most one
# immutable memtable waiting for its flush (RocksDB counts the active one:
# max_write_buffer_number=2), 8 MiB compaction outputs, L1 = 64 MiB, x10 per
# level, compaction from 4 L0 files, 4 KiB blocks.
OURS_CMD="build/bench/engine_bench $COMMON --write_buffer_size=16777216 --max_immutables=1 --target_file_size=8388608 --max_bytes_for_level_base=67108864 --level0_trigger=4 --block_size=4096 --db=$WORK/ours"
# LevelDB takes what its C API lets a caller set: memtable, file and block
# size, bloom filter, the same 8 MiB block cache; it compresses with snappy.
LEVEL_CMD="build/bench/leveldb_bench $COMMON --write_buffer_size=16777216 --target_file_size=8388608 --block_size=4096 --db=$WORK/level"
ROCKS_CMD="$DB_BENCH $COMMON --disable_wal=0 --write_buffer_size=16777216 --max_write_buffer_number=2 --target_file_size_base=8388608 --max_bytes_for_level_base=67108864 --max_bytes_for_level_multiplier=10 --level0_file_num_compaction_trigger=4 --block_size=4096 --cache_size=8388608 --threads=1 --db=$WORK/rocks"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
RESULTS="$WORK/results.txt"
: >"$RESULTS"

# Append "side run bench ops_per_sec mb_per_s found" for every result line.
parse()
{
	awk -v side="$1" -v run="$2" '
		$1 ~ /^(fillseq|fillrandom|readrandom|readseq|seekrandom|overwrite)$/ && $2 == ":" {
			ops = "-"; mbs = "-"; found = "-";
			for (i = 3; i <= NF; i++)
			{
				if ($i == "ops/sec") ops = $(i - 1);
				if ($i == "MB/s") mbs = $(i - 1);
				if ($i == "of" && $(i - 1) ~ /^\(/) { found = substr($(i - 1), 2); }
			}
			print side, run, $1, ops, mbs, found;
		}' >>"$RESULTS"
}

# One run of one side: SIDE DBDIR COMMAND...; its output is parsed.
run_side()
{
	local side=$1 db=$2
	shift 2
	echo "== run $run/$RUNS: $side" >&2
	rm -rf "$WORK/$db"
	"$@" >"$WORK/$side.$run" 2>"$WORK/$side.$run.err" ||
		{ cat "$WORK/$side.$run" "$WORK/$side.$run.err" >&2; exit 1; }
	parse "$side" "$run" <"$WORK/$side.$run"
	rm -rf "$WORK/$db"
}

for run in $(seq 1 "$RUNS"); do
	run_side ours ours $OURS_CMD
	run_side leveldb level $LEVEL_CMD
	run_side rocksdb rocks $ROCKS_CMD
done

# Medians per side and benchmark: "bench ours_ops ours_mbs rocks_ops rocks_mbs ours_found rocks_found"
median()
{
	sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
col()
{
	awk -v s="$1" -v b="$2" -v c="$3" '$1 == s && $3 == b { print $c }' "$RESULTS" | median
}

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
ROCKS_VERSION=$($DB_BENCH --version 2>&1 | head -1)
CC_VERSION=$(cc --version | head -1)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

TABLE="$WORK/table.md"
{
	echo "| workload | ours ops/s | LevelDB ops/s | RocksDB ops/s | ours / LevelDB | ours / RocksDB | ours MB/s | LevelDB MB/s | RocksDB MB/s | found (ours / LevelDB / RocksDB) |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	for b in ${BENCHES//,/ }; do
		oo=$(col ours "$b" 4); lo=$(col leveldb "$b" 4); ro=$(col rocksdb "$b" 4)
		om=$(col ours "$b" 5); lm=$(col leveldb "$b" 5); rm_=$(col rocksdb "$b" 5)
		of="-"
		if [ "$b" = readrandom ] || [ "$b" = seekrandom ]; then
			of="$(col ours "$b" 6) / $(col leveldb "$b" 6) / $(col rocksdb "$b" 6) of $NUM"
		fi
		awk -v b="$b" -v oo="$oo" -v lo="$lo" -v ro="$ro" -v om="$om" -v lm="$lm" -v rm="$rm_" -v f="$of" 'BEGIN {
			printf "| %s | %d | %d | %d | %.2f | %.2f | %.1f | %.1f | %.1f | %s |\n",
				b, oo, lo, ro, (lo > 0 ? oo / lo : 0), (ro > 0 ? oo / ro : 0), om, lm, rm, f }'
	done
} >"$TABLE"

RAW="$WORK/raw.md"
{
	echo "| side | run | workload | ops/s | MB/s | found |"
	echo "|---|---:|---|---:|---:|---:|"
	awk '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' "$RESULTS"
} >"$RAW"

HISTORY=""
if [ -f "$OUT" ] && grep -q '^<!-- history -->' "$OUT"; then
	HISTORY=$(sed -n '/^<!-- history -->/,$p' "$OUT")
fi

mkdir -p "$(dirname "$OUT")"
{
	echo "# Engine microbenchmark: stratago engine vs LevelDB and RocksDB"
	echo
	echo "Generated by \`bench/engine/run.sh\` (see bench/engine/README.md for what"
	echo "each side does and why the settings match). Medians of $RUNS runs per side,"
	echo "the three taking turns; a ratio > 1 means ours is faster."
	echo
	echo "* date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "* machine: $(nproc) CPUs, $CPU, $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
	echo "* ours: commit $COMMIT, $CC_VERSION, -O2"
	echo "* LevelDB: Debian libleveldb $(dpkg-query -W -f '${Version}' libleveldb1d 2>/dev/null || echo '?'), driven by build/bench/leveldb_bench (engine_bench.c built over LevelDB's C API; snappy compression)"
	echo "* RocksDB: $ROCKS_VERSION (Debian rocksdb-tools; its build has assertions enabled)"
	echo "* load average (1/5/15 min) before: $LOAD_START, after: $LOAD_END (other jobs share the machine)"
	echo
	cat "$TABLE"
	echo
	echo "Commands (the DB directories are fresh temporary directories):"
	echo
	echo '```'
	echo "$OURS_CMD"
	echo "$LEVEL_CMD"
	echo "$ROCKS_CMD"
	echo '```'
	echo
	echo "<details><summary>every run</summary>"
	echo
	cat "$RAW"
	echo
	echo "</details>"
	echo
	if [ -n "$HISTORY" ]; then
		echo "$HISTORY"
	fi
} >"$OUT"

echo
cat "$TABLE"
echo
echo "written to $OUT"
