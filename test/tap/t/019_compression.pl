# 019_compression.pl — the codec of a table's SSTables: flushes write lz4,
# compaction into the bottom level writes stratago.bottom_compression
# (zstd by default), and the choice is real on disk:
#  (a) after stratago.compact() every file is zstd, strata-dump counts
#      zstd blocks, and the table is smaller than the same rows under lz4;
#  (b) with the setting lz4 (after a restart), the next compaction rewrites
#      the files as lz4, and every row reads back the same;
#  (c) a zstd table survives a crash of the whole server under writes,
#      and its index agrees with it (amcheck, every row).
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

# --- (a) compacted with the default: zstd ---
$node->safe_psql('postgres', "SELECT stratago.compact('z')");
is(codecs(), 'zstd', 'compact(): every file of the bottom level is zstd');
is(contents(), $expect, 'compact(): every row reads back');
my $zstd_size = $node->safe_psql('postgres', "SELECT stratago.relation_size('z')");

my @sst = glob($node->data_dir . '/stratago/*/*/*.sst');
ok(@sst > 0, 'the table has SSTables');
my $out = `'$dump' --force --limit 0 '$sst[0]' 2>&1`;
like($out, qr/^  codec +zstd$/m, 'strata-dump: the file was built with zstd');
like($out, qr/^  blocks by codec( none \d+)? zstd \d+$/m, 'strata-dump: its blocks are zstd');

# --- (b) the setting lz4: the next compaction rewrites as lz4 ---
$node->safe_psql('postgres', 'ALTER SYSTEM SET stratago.bottom_compression = lz4');
$node->restart;
$node->safe_psql('postgres', q{
	UPDATE z SET k = k + 1 WHERE id % 100 = 0;
	SELECT stratago.compact('z');
});
$expect = contents();
is(codecs(), 'lz4', 'bottom_compression = lz4: compact() rewrites the files as lz4');
my $lz4_size = $node->safe_psql('postgres', "SELECT stratago.relation_size('z')");
cmp_ok($zstd_size, '<', $lz4_size,
	"the same rows take fewer bytes under zstd ($zstd_size) than under lz4 ($lz4_size)");

$node->safe_psql('postgres', 'ALTER SYSTEM RESET stratago.bottom_compression');
$node->restart;
$node->safe_psql('postgres', "SELECT stratago.compact('z')");
is(codecs(), 'zstd', 'back to the default: zstd again');
is(contents(), $expect, 'every row reads back after both rewrites');

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

$node->stop;
done_testing();
