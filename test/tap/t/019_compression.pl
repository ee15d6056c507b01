# 019_compression.pl — the codec of a table's SSTables: flushes write lz4,
# compaction into the bottom level writes stratago.bottom_compression
# (lz4 by default, zstd when set), and the choice is real on disk:
#  (a) by default, compact() leaves lz4 files, frozen rows at the bottom
#      stored with sequence 0;
#  (b) with the setting zstd (after a restart), compact() rewrites the
#      files at rest as zstd, strata-dump counts zstd blocks, the table is
#      smaller than under lz4, and every row reads back the same;
#  (c) a zstd table survives a crash of the whole server under writes,
#      and its index agrees with it (amcheck, every row);
#  (d) back to the default, compact() rewrites them as lz4.
# Run with both WAL sinks (test/run_all.sh).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use StrataTest;

my $node = strata_node('compression', 'autovacuum = off');
my $dump = `pg_config --bindir`;
chomp $dump;
$dump = "$dump/strata-dump";

$node->safe_psql('postgres', q{
	CREATE EXTENSION amcheck;
	CREATE TABLE z (id int PRIMARY KEY, k int, v text) USING strata;
	INSERT INTO z SELECT g, g % 97, 'widget ' || (g % 500) || ' ' || md5((g % 1000)::text)
	  FROM generate_series(1, 30000) g;
	SELECT stratago.flush('z');
});

sub contents
{
	return $node->safe_psql('postgres',
		"SELECT count(*), sum(id), md5(string_agg(v, ',' ORDER BY id)) FROM z");
}

sub codecs
{
	return $node->safe_psql('postgres',
		"SELECT string_agg(DISTINCT codec, ',') FROM stratago.sstables('z')");
}

my $expect = contents();
is(codecs(), 'lz4', 'a flush writes lz4');

# --- (a) compacted with the default: lz4 ---
$node->safe_psql('postgres', "SELECT stratago.compact('z')");
is(codecs(), 'lz4', 'compact() with the default: lz4');
is(contents(), $expect, 'compact(): every row reads back');
# rows every snapshot sees, alone at the bottom, keep no sequence number
# (the engine's zero_seq): their keys then compress
is($node->safe_psql('postgres', "SELECT max(largest_seq) FROM stratago.sstables('z')"), '0',
	'compacted frozen rows at the bottom are stored with sequence 0');
my $lz4_size = $node->safe_psql('postgres', "SELECT stratago.relation_size('z')");

# --- (b) the setting zstd: compact() rewrites the files at rest ---
$node->safe_psql('postgres', 'ALTER SYSTEM SET stratago.bottom_compression = zstd');
$node->restart;
$node->safe_psql('postgres', "SELECT stratago.compact('z')");
is(codecs(), 'zstd', 'bottom_compression = zstd: compact() rewrites every file as zstd');
is(contents(), $expect, 'every row reads back from zstd');
my $zstd_size = $node->safe_psql('postgres', "SELECT stratago.relation_size('z')");
cmp_ok($zstd_size, '<', $lz4_size,
	"the same rows take fewer bytes under zstd ($zstd_size) than under lz4 ($lz4_size)");

$node->stop;
my @sst = glob($node->data_dir . '/stratago/*/*/*.sst');
ok(@sst > 0, 'the table has SSTables');
my $out = `'$dump' --limit 0 '$sst[0]' 2>&1`;
like($out, qr/^  codec +zstd$/m, 'strata-dump: the file was built with zstd');
like($out, qr/^  blocks by codec( none \d+)? zstd \d+$/m, 'strata-dump: its blocks are zstd');
$node->start;

# --- (c) a zstd table under a crash ---
$node->safe_psql('postgres', q{
	INSERT INTO z SELECT g, 0, 'after ' || g FROM generate_series(30001, 35000) g;
	SELECT stratago.flush('z');
	UPDATE z SET v = v || '!' WHERE id % 7 = 0;
	DELETE FROM z WHERE id % 11 = 0;
});
$expect = contents();
crash_node($node);
restart_after_crash($node, 'zstd table');
is(contents(), $expect, 'after the crash: every committed row, as committed');
$node->safe_psql('postgres', "SELECT stratago.compact('z')");
is(codecs(), 'zstd', 'after the crash: compacted to zstd again');
is(contents(), $expect, 'and still every row');
$node->safe_psql('postgres', q{SELECT bt_index_check('z_pkey', true)});
pass('amcheck: the index and the zstd table agree, row for row');

# --- (d) back to the default ---
$node->safe_psql('postgres', 'ALTER SYSTEM RESET stratago.bottom_compression');
$node->restart;
$node->safe_psql('postgres', "SELECT stratago.compact('z')");
is(codecs(), 'lz4', 'back to the default: compact() rewrites them as lz4');
is(contents(), $expect, 'every row reads back after both rewrites');

$node->stop;
done_testing();
