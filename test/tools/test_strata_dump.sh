#!/bin/bash
# test_strata_dump.sh — strata-dump prints each file kind readably, reports
# damage with the file and offset, and exits 1 on damage (0 when sound);
# refuses a running server's files unless --force, and never writes.
# Usage: test_strata_dump.sh BUILD_DIR
set -u
DUMP="$1/tools/strata-dump"
CORPUS="$(dirname "$0")/../fuzz/corpus"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0

check() {	# check NAME EXPECTED_RC REGEX COMMAND...
	local name=$1 want_rc=$2 regex=$3
	shift 3
	local out rc
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" = "$want_rc" ] && grep -qE -- "$regex" <<<"$out"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL $name (rc $rc, wanted $want_rc and /$regex/)"
		echo "$out" | head -20
	fi
}

check "sstable properties" 0 "entries +58 \(10 deletions\)" "$DUMP" "$CORPUS/sstable/lz4.sst"
check "sstable entries" 0 "all block checksums verified" "$DUMP" "$CORPUS/sstable/zstd.sst"
check "sstable codec per block (zstd)" 0 "^  blocks by codec( none [0-9]+)? zstd [0-9]+$" "$DUMP" "$CORPUS/sstable/zstd.sst"
check "sstable codec per block (none)" 0 "^  blocks by codec none [0-9]+$" "$DUMP" "$CORPUS/sstable/none-nofilter.sst"
check "sstable limit" 0 "^3 entries shown" "$DUMP" --limit 3 "$CORPUS/sstable/lz4.sst"
check "sstable values" 0 "PUT +\"" "$DUMP" --values "$CORPUS/sstable/none-nofilter.sst"

cp "$CORPUS/sstable/lz4.sst" "$TMP/bad.sst"
printf '\xff' | dd of="$TMP/bad.sst" bs=1 seek=100 conv=notrunc 2>/dev/null
check "sstable damage" 1 "DAMAGED: .*bad.sst.*offset" "$DUMP" "$TMP/bad.sst"
cp "$CORPUS/wal/small.wal" "$TMP/notatable.sst"
check "not an sstable" 1 "notatable.sst" "$DUMP" "$TMP/notatable.sst"

cp "$CORPUS/wal/small.wal" "$TMP/0000000000000000.wal"
check "wal segment" 0 "batch of [0-9]+ from seq" "$DUMP" "$TMP/0000000000000000.wal"
check "wal torn tail" 0 "torn tail at offset [0-9]+" "$DUMP" "$CORPUS/wal/torn.wal"
check "wal directory" 0 "records in 1 segments" "$DUMP" "$TMP"

# A MANIFEST is recognised by its name, so the seeds are copied to one.
mkdir "$TMP/m"
cp "$CORPUS/manifest/edits" "$TMP/m/MANIFEST-000001"
check "manifest edit" 0 "^edit at offset 32: log_number=100 next_file=3 last_sequence=10$" \
	"$DUMP" "$TMP/m/MANIFEST-000001"
check "manifest added file" 0 "^  \+ +L2 +#5 +1040 bytes +11 entries +seq 40\.\.50 +\"k00040\" \.\. \"k00050\"$" \
	"$DUMP" "$TMP/m/MANIFEST-000001"
check "manifest version" 0 "^version after 5 edits: next_file=6 last_sequence=50 log_number=500$" \
	"$DUMP" "$TMP/m/MANIFEST-000001"
cp "$CORPUS/manifest/torn" "$TMP/m/MANIFEST-000002"
check "manifest torn tail" 0 "version after 4 edits: .*\(torn last record dropped\)" \
	"$DUMP" "$TMP/m/MANIFEST-000002"
# A flipped byte inside the third record (offset 88..144) with valid records
# after it is corruption, not a torn tail.
cp "$CORPUS/manifest/edits" "$TMP/m/MANIFEST-000003"
printf '\xff' | dd of="$TMP/m/MANIFEST-000003" bs=1 seek=100 conv=notrunc 2>/dev/null
check "manifest damage" 1 "DAMAGED: .*MANIFEST-000003.*at offset 88" "$DUMP" "$TMP/m/MANIFEST-000003"

# A damaged length field in the second record (offset 32) is corruption too,
# not a torn tail: zeroed (bytes 36-37), or large enough to run past the end
# of the file while fitting its block (0x1000). The reader used to drop the
# four records after it as a "torn last record" and exit 0.
cp "$CORPUS/manifest/edits" "$TMP/m/MANIFEST-000004"
printf '\x00\x00' | dd of="$TMP/m/MANIFEST-000004" bs=1 seek=36 conv=notrunc 2>/dev/null
check "manifest zeroed length" 1 "DAMAGED: .*MANIFEST-000004.*at offset 32 .*valid data follows at offset 88" \
	"$DUMP" "$TMP/m/MANIFEST-000004"
cp "$CORPUS/manifest/edits" "$TMP/m/MANIFEST-000005"
printf '\x00\x10' | dd of="$TMP/m/MANIFEST-000005" bs=1 seek=36 conv=notrunc 2>/dev/null
check "manifest length past end" 1 "DAMAGED: .*MANIFEST-000005.*at offset 32 \(fragment cut short by the end of the file\)" \
	"$DUMP" "$TMP/m/MANIFEST-000005"

# Files inside a running server's data directory are refused unless
# --force: the nearest postmaster.pid above the path names a live process
# (this shell stands in for the server). A stale one (a dead pid) does not
# refuse. Nothing is ever written: the files and the directory listing are
# the same after every run.
mkdir -p "$TMP/pgdata/stratago/5/1663_16384_00000000000000aa"
TREE="$TMP/pgdata/stratago/5/1663_16384_00000000000000aa"
cp "$CORPUS/sstable/lz4.sst" "$TREE/000007.sst"
cp "$CORPUS/manifest/edits" "$TREE/MANIFEST-000001"
echo "$$" > "$TMP/pgdata/postmaster.pid"
before=$(cd "$TMP/pgdata" && find . -type f ! -name postmaster.pid -exec md5sum {} + | sort)
check "running server refused" 2 "running server \(pid $$\).*" "$DUMP" "$TREE/000007.sst"
check "running server refused (manifest)" 2 "pass --force" "$DUMP" "$TREE/MANIFEST-000001"
check "running server, --force" 0 "all block checksums verified" "$DUMP" --force "$TREE/000007.sst"
sh -c 'exit 0' & dead=$!
wait "$dead"
echo "$dead" > "$TMP/pgdata/postmaster.pid"
check "stale postmaster.pid" 0 "all block checksums verified" "$DUMP" "$TREE/000007.sst"
check "stale postmaster.pid (manifest)" 0 "^version after 5 edits" "$DUMP" "$TREE/MANIFEST-000001"
after=$(cd "$TMP/pgdata" && find . -type f ! -name postmaster.pid -exec md5sum {} + | sort)
if [ "$before" = "$after" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL strata-dump changed or created files"; fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
