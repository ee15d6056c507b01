# 008_space_bounded.pl — an update-heavy load keeps a strata table's size
# bounded with no manual action: background compaction retires old row
# versions, and autovacuum (triggered by the dead rows the table reports)
# removes the index entries and dead stubs that updates of an indexed
# column leave behind. pgbench runs for STRATA_SPACE_SECONDS (default 40;
# the issue's 10-minute run is the same test with 600).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use StrataTest;

my $seconds = $ENV{STRATA_SPACE_SECONDS} // 40;
my $node = strata_node('space',
	'autovacuum = on',
	'autovacuum_naptime = 1s',
	'autovacuum_vacuum_scale_factor = 0.05',
	'stratago.memtable_size = 1MB');
my $rows = 20000;

$node->safe_psql('postgres', qq{
CREATE TABLE acct (id int PRIMARY KEY, k int, bal int, filler text) USING strata;
CREATE INDEX acct_k ON acct (k);
INSERT INTO acct SELECT g, g, 0, repeat('f', 80) FROM generate_series(1, $rows) g;
VACUUM acct;
});
my $base = $node->safe_psql('postgres', "SELECT stratago.relation_size('acct')");
my $base_idx = $node->safe_psql('postgres', "SELECT pg_relation_size('acct_k')");
note "after loading: table $base bytes, index acct_k $base_idx bytes";

# four updates keep the TID, one changes the indexed column (a new TID)
my $script = PostgreSQL::Test::Utils::tempdir . '/update.sql';
open(my $fh, '>', $script) or die "open $script: $!";
print $fh <<"EOF";
\\set id random(1, $rows)
\\set r random(1, 5)
UPDATE acct SET bal = bal + 1 WHERE id = :id AND :r <> 5;
UPDATE acct SET k = k + $rows WHERE id = :id AND :r = 5;
EOF
close($fh);
$node->command_ok(
	[ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', $seconds, '-f', $script,
	  $node->connstr('postgres') ],
	"pgbench updates for $seconds s");

my $updates = $node->safe_psql('postgres', 'SELECT sum(bal) FROM acct');
cmp_ok($updates, '>', 1000, "the load updated rows ($updates same-TID updates)");
is($node->safe_psql('postgres', 'SELECT count(*), count(DISTINCT id) FROM acct'),
	"$rows|$rows", 'every row is still there once');

# let autovacuum and compaction catch up, without any manual action
my $ok = $node->poll_query_until('postgres', qq{
	SELECT stratago.relation_size('acct') < $base * 3
	   AND (SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'acct') < $rows / 10});
my $size = $node->safe_psql('postgres', "SELECT stratago.relation_size('acct')");
my $idx = $node->safe_psql('postgres', "SELECT pg_relation_size('acct_k')");
ok($ok, "table size stays bounded: $size bytes after the run, $base after loading");
cmp_ok($node->safe_psql('postgres',
		"SELECT autovacuum_count FROM pg_stat_user_tables WHERE relname = 'acct'"),
	'>', 0, 'autovacuum vacuumed the table');
cmp_ok($idx, '<', $base_idx * 4, "index acct_k stays bounded: $idx bytes, $base_idx after loading");
is($node->safe_psql('postgres', q{
	SET enable_seqscan = off; SET enable_bitmapscan = off;
	SELECT count(*) FROM acct WHERE k > 0}), $rows, 'the index finds every row');

$node->stop;
done_testing();
