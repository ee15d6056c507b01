# 005_lifecycle.pl — the engine's files follow PostgreSQL's relation
# lifecycle, and a crash in the middle of a compaction loses nothing:
#  - DROP DATABASE removes the trees of its strata tables (after the
#    checkpoint that lets PostgreSQL remove the database's own files);
#  - a transactional TRUNCATE leaves only the new tree once committed;
#  - kill -9 while stratago.compact() rewrites a table: after restart
#    every row is there, the engine has no stray files the MANIFEST does
#    not name, and the table can be compacted again;
#  - create/drop churn far beyond stratago.max_tables succeeds: dropped
#    tables' registry entries are reclaimed (checkpoint, then a sweep)
#    when the registry is full, and a real excess gets a clear error.
# (kill -9 keeps the page cache: see StrataTest.pm on what this can't catch.)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use StrataTest;

my $node = strata_node('lifecycle', 'stratago.memtable_size = 256kB');
my $data = $node->data_dir;

sub tree_dirs
{
	my ($dboid) = @_;
	my $dir = "$data/stratago/$dboid";
	return () unless -d $dir;
	opendir(my $dh, $dir) or die "opendir $dir: $!";
	my @d = grep { !/^\./ } readdir($dh);
	closedir($dh);
	return @d;
}

sub wait_for
{
	my ($cond, $what) = @_;
	for (1 .. 300)
	{
		return 1 if $cond->();
		usleep(100_000);
	}
	return 0;
}

# --- DROP DATABASE ---
$node->safe_psql('postgres', 'CREATE DATABASE doomed');
$node->safe_psql('doomed', q{
	CREATE EXTENSION stratago;
	CREATE TABLE t1 (x int) USING strata;
	CREATE TABLE t2 (x int) USING strata;
	INSERT INTO t1 SELECT generate_series(1, 20000);
	INSERT INTO t2 SELECT generate_series(1, 100);
	SELECT stratago.flush('t1');
});
my $dboid = $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = 'doomed'");
is(scalar(tree_dirs($dboid)), 2, 'the database has two trees');
$node->safe_psql('postgres', 'DROP DATABASE doomed');
$node->safe_psql('postgres', 'CHECKPOINT');
ok(wait_for(sub { scalar(tree_dirs($dboid)) == 0 }), 'DROP DATABASE removed its trees');

# --- transactional TRUNCATE ---
$node->safe_psql('postgres', q{
	CREATE EXTENSION IF NOT EXISTS stratago;
	CREATE TABLE tr (x int) USING strata;
	INSERT INTO tr SELECT generate_series(1, 5000);
});
my $pgoid = $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = 'postgres'");
$node->safe_psql('postgres', 'BEGIN; TRUNCATE tr; INSERT INTO tr VALUES (1); COMMIT;');
$node->safe_psql('postgres', 'CHECKPOINT');
my $relnode = $node->safe_psql('postgres', "SELECT relfilenode FROM pg_class WHERE relname = 'tr'");
ok(wait_for(sub { my @d = tree_dirs($pgoid); @d == 1 && $d[0] =~ /_${relnode}_/ }),
	'after a committed TRUNCATE only the new tree is left');
is($node->safe_psql('postgres', 'SELECT count(*) FROM tr'), '1', 'truncated table holds the new row');

# --- kill -9 during compaction ---
# Load, let the worker settle everything into level 1, then update rows
# spread over the whole table and flush: one level-0 file that overlaps
# every level-1 file, so stratago.compact() must rewrite the whole table
# (long enough to be caught in the middle).
$node->safe_psql('postgres', q{
	CREATE TABLE big (id int PRIMARY KEY, v text) USING strata;
	INSERT INTO big SELECT g, repeat(md5(g::text), 12) FROM generate_series(1, 150000) g;
	SELECT stratago.flush('big');
	SELECT stratago.compact('big');
	UPDATE big SET v = 'u' || id WHERE id % 500 = 0;
	SELECT stratago.flush('big');
});
my $expect = $node->safe_psql('postgres', 'SELECT count(*), sum(id), sum(length(v)) FROM big');
is($node->safe_psql('postgres',
		"SELECT count(*) FILTER (WHERE level = 0) > 0 AND count(*) FILTER (WHERE level > 0) > 0 FROM stratago.sstables('big')"),
	't', 'level-0 changes over level-1 data before compacting');

# start the compaction in the background, kill everything once it is writing
my $h = $node->background_psql('postgres', on_error_stop => 0);
$h->query_until(qr/started/, q{\echo started
SELECT stratago.compact('big');
});
# the compaction's output is written as *.sst.tmp and renamed when done:
# crash the moment one exists, so the crash lands mid-compaction
my $tree_glob = "$data/stratago/$pgoid/*";
my $seen_tmp = 0;
for (1 .. 60_000)
{
	if (my @tmp = glob("$tree_glob/*.sst.tmp"))
	{
		$seen_tmp = 1;
		last;
	}
	usleep(500);
}
ok($seen_tmp, 'the crash comes while a compaction output is being written');
crash_node($node, worker_pid($node));
eval { $h->quit; };
ok(restart_after_crash($node, 'compaction crash'), 'server restarts');
is($node->safe_psql('postgres', 'SELECT count(*), sum(id), sum(length(v)) FROM big'),
	$expect, 'every row intact after a crash during compaction');
is($node->safe_psql('postgres', 'SELECT count(*) FROM big WHERE id = 4242'), '1',
	'index lookups work after the crash');
my @left = glob("$tree_glob/*.tmp");
is(scalar(@left), 0, 'recovery removed the interrupted output');
my $named = $node->safe_psql('postgres',
	"SELECT count(*) FROM stratago.sstables('big')");
my $relnode_big = $node->safe_psql('postgres', "SELECT relfilenode FROM pg_class WHERE relname = 'big'");
my @ssts = glob("$data/stratago/$pgoid/*_${relnode_big}_*/*.sst");
is(scalar(@ssts), $named, 'no SSTable on disk that the MANIFEST does not name');
$node->safe_psql('postgres', "SELECT stratago.compact('big')");
is($node->safe_psql('postgres', 'SELECT count(*), sum(id), sum(length(v)) FROM big'),
	$expect, 'and after compacting again');
is($node->safe_psql('postgres', "SELECT count(*) FROM stratago.sstables('big') WHERE level = 0"),
	'0', 'level 0 empty after a completed compaction');

$node->stop;

# Create/drop churn with room for 20 trees: 200 tables come and go.
my $churn = strata_node('churn', 'stratago.max_tables = 20', 'log_checkpoints = on');
my $script = join('', map {
	"CREATE TABLE churn_$_ (a int) USING strata; INSERT INTO churn_$_ VALUES ($_);\n"
	  . "DROP TABLE churn_$_;\n"
} 1 .. 200);
$churn->safe_psql('postgres', $script);
is($churn->safe_psql('postgres',
	q{CREATE TABLE kept (a int) USING strata; INSERT INTO kept VALUES (1);
	  SELECT count(*) FROM kept}), '1',
	'200 tables created and dropped with stratago.max_tables = 20');
like(slurp_file($churn->logfile), qr/checkpoint starting: immediate force wait/,
	'a full registry had the dropped trees reclaimed');
# 20 live tables fill it: the next one is refused, clearly
my ($ret, $out, $err) = $churn->psql('postgres', join('',
	map { "CREATE TABLE live_$_ (a int) USING strata;\n" } 1 .. 20));
isnt($ret, 0, 'more live tables than stratago.max_tables are refused');
like($err, qr/too many strata tables.*\n.*stratago\.max_tables is 20/s,
	'with an error naming the limit');
is($churn->safe_psql('postgres', 'SELECT count(*) FROM kept'), '1',
	'the tables already there are untouched');
$churn->stop;
done_testing();
