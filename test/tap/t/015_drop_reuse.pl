# 015_drop_reuse.pl — a dropped table's tree goes, and never comes back
# under a new table:
#  - kill -9 right after a committed DROP TABLE, before the maintenance
#    worker's sweep (the worker is frozen): after the restart the tree
#    directory is removed, and the other tables lose nothing;
#  - a reused relfilenode never sees stale data: in binary-upgrade mode
#    (postgres -b) a strata table with rows (in SSTables and in memtables)
#    is dropped, and a new one is created with the same relfilenode
#    (binary_upgrade_set_next_heap_relfilenode) while the old tree is still
#    on disk: the new table is empty, also after kill -9 and the replay of
#    a log that holds the old table's rows;
#  - a relfilenode given a new tree while the worker flushes the old one
#    (TRUNCATE in the creating transaction, reused temporary tables): the
#    new tree waits for the job, nothing fails, the rows are right.
# Run with both WAL sinks (test/run_all.sh).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use StrataTest;

# The checkpoint guard would make CHECKPOINT wait for the frozen worker.
my $node = strata_node('drop_reuse', 'stratago.checkpoint_guard = off');
my $data = $node->data_dir;
my $dboid = $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'");

# Tree directories of a relfilenode.
sub trees_of
{
	my ($relnode) = @_;
	opendir(my $d, "$data/stratago/$dboid") or return ();
	my @t = grep { /^\d+_${relnode}_[0-9a-f]+$/ } readdir($d);
	closedir($d);
	@t = sort @t;
	return @t;
}

# Freeze the worker while it sleeps between rounds (it then holds no lock).
sub freeze_worker
{
	my $pid = worker_pid($node);
	for (1 .. 100)
	{
		kill 'STOP', $pid;
		return $pid
		  if $node->safe_psql('postgres',
			"SELECT wait_event FROM pg_stat_activity WHERE pid = $pid") eq 'Extension';
		kill 'CONT', $pid;
		usleep(20_000);
	}
	die "the maintenance worker never went to sleep";
}

sub wait_for
{
	my ($cond) = @_;
	for (1 .. 600)
	{
		return 1 if $cond->();
		usleep(100_000);
	}
	return 0;
}

# Rows in SSTables and in memtables of a table.
sub load
{
	my ($t, $from, $to) = @_;
	my $mid = int(($from + $to) / 2);
	$node->safe_psql('postgres', qq{
		INSERT INTO $t SELECT g, 'old' FROM generate_series($from, $mid) g;
		SELECT stratago.flush('$t');
		INSERT INTO $t SELECT g, 'old' FROM generate_series($mid + 1, $to) g;
	});
}

# --- kill -9 after a committed DROP TABLE, before the sweep ---
$node->safe_psql('postgres', q{
	CREATE TABLE keep (x int, v text) USING strata;
	CREATE TABLE doomed (x int, v text) USING strata;
});
load('keep', 1, 20000);
load('doomed', 1, 20000);
my $doomed = $node->safe_psql('postgres',
	"SELECT relfilenode FROM pg_class WHERE relname = 'doomed'");
is(scalar(trees_of($doomed)), 1, 'the table to drop has its tree');

my $wpid = freeze_worker();
$node->safe_psql('postgres', 'DROP TABLE doomed');
is(scalar(trees_of($doomed)), 1, 'right after DROP TABLE the tree is still there');
crash_node($node, $wpid);
restart_after_crash($node, 'crash after DROP TABLE');
ok(wait_for(sub { trees_of($doomed) == 0 }),
	'after the restart the dropped tree is removed');
is($node->safe_psql('postgres', 'SELECT count(*), sum(x) FROM keep'),
	'20000|200010000', 'the other table lost nothing');
$node->safe_psql('postgres', "SELECT stratago.compact('keep')");
is($node->safe_psql('postgres', 'SELECT count(*), sum(x) FROM keep'),
	'20000|200010000', 'and compacts as before');

# --- a reused relfilenode (binary-upgrade mode) ---
# an int column only: no TOAST table, whose oid binary-upgrade mode would
# also want to be told
$node->safe_psql('postgres', q{
	CREATE TABLE old_t (x int) USING strata;
	INSERT INTO old_t SELECT generate_series(1, 10000);
	SELECT stratago.flush('old_t');
	INSERT INTO old_t SELECT generate_series(10001, 15000);
});
# (in binary-upgrade mode, each new relation's numbers must be given)
$node->stop;
PostgreSQL::Test::Utils::system_or_bail('pg_ctl', '-w', '-D', $data,
	'-l', $node->logfile, '-o', '-b', 'start');
$node->_update_pid(1);
$node->safe_psql('postgres', 'INSERT INTO old_t SELECT generate_series(15001, 20000)');
is($node->safe_psql('postgres', 'SELECT count(*) FROM old_t'), '20000',
	'the old table has rows in SSTables and memtables');
# binary-upgrade mode wants all of a new table's numbers: reuse them all
my ($oid, $relnode, $type, $arraytype) = split /\|/, $node->safe_psql('postgres',
	"SELECT c.oid, c.relfilenode, c.reltype, t.typarray FROM pg_class c "
	  . "JOIN pg_type t ON t.oid = c.reltype WHERE c.relname = 'old_t'");
my @old_tree = trees_of($relnode);
is(scalar(@old_tree), 1, 'the old table has its tree');

$wpid = freeze_worker();
# The checkpoint removes the main fork PostgreSQL keeps (truncated) after
# a drop so that its number is not reused before then; the frozen worker
# cannot sweep the old tree meanwhile.
$node->safe_psql('postgres', 'DROP TABLE old_t; CHECKPOINT');
ok(!-e "$data/base/$dboid/$relnode",
	'the old main fork is gone');
is_deeply([ trees_of($relnode) ], \@old_tree, 'the old tree is still on disk');

# (this PostgreSQL build also wants per-attribute versions, when it has them)
my $attver =
  $node->safe_psql('postgres',
	"SELECT to_regproc('binary_upgrade_set_next_attribute_versions') IS NOT NULL") eq 't'
  ? 'SELECT binary_upgrade_set_next_attribute_versions(ARRAY[pg_current_wal_insert_lsn()]);'
  : '';
$node->safe_psql('postgres', qq{
	$attver
	SELECT binary_upgrade_set_next_pg_type_oid($type);
	SELECT binary_upgrade_set_next_array_pg_type_oid($arraytype);
	SELECT binary_upgrade_set_next_heap_pg_class_oid($oid);
	SELECT binary_upgrade_set_next_heap_relfilenode($relnode);
	CREATE TABLE new_t (x int) USING strata;
});
is($node->safe_psql('postgres', "SELECT relfilenode FROM pg_class WHERE relname = 'new_t'"),
	$relnode, 'the new table has the old relfilenode');
is($node->safe_psql('postgres', 'SELECT count(*) FROM new_t'), '0',
	'the new table is empty');
my @new_tree = trees_of($relnode);
ok(@new_tree == 1 && $new_tree[0] ne $old_tree[0],
	'only the new tree is on disk under that relfilenode');
$node->safe_psql('postgres', 'INSERT INTO new_t VALUES (-1), (-2), (-3)');
is($node->safe_psql('postgres', 'SELECT count(*), sum(x) FROM new_t'), '3|-6',
	'the new table holds only its own rows');

# The log still holds the old table's rows (the worker flushed nothing
# since): replay must not bring them into the new tree.
crash_node($node, $wpid);
restart_after_crash($node, 'crash after reusing a relfilenode');
is($node->safe_psql('postgres', 'SELECT count(*), sum(x) FROM new_t'), '3|-6',
	'after the crash the new table holds only its own rows');
is_deeply([ trees_of($relnode) ], \@new_tree, 'and only the new tree is on disk');
$node->safe_psql('postgres', "SELECT stratago.compact('new_t')");
is($node->safe_psql('postgres', 'SELECT count(*), sum(x) FROM new_t'), '3|-6',
	'also once flushed and compacted');
is($node->safe_psql('postgres', 'SELECT count(*), sum(x) FROM keep'),
	'20000|200010000', 'the other table lost nothing');

# --- a new tree of a relfilenode while the worker is busy with the old one ---
# TRUNCATE of a table created in the same transaction gives the same
# relfilenode a new tree, as a reused temporary table's number does. With
# small memtables the worker is often flushing the old tree right then: the
# new tree must wait for that job, not remove the directory under it or
# take over its registry entry mid-flush (which failed the flush, failed the
# TRUNCATE, and could leave the worker's flush working on the new tree).
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET stratago.memtable_size = '256kB';
	SELECT pg_reload_conf();
});
my $log_start = -s $node->logfile;
my $rounds_ok = 0;
for my $round (1 .. 40)
{
	my ($rc, $out, $err) = $node->psql('postgres', qq{
		BEGIN;
		CREATE TABLE busy_t (a int, b text) USING strata;
		INSERT INTO busy_t SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g;
		TRUNCATE busy_t;
		INSERT INTO busy_t SELECT g, repeat('y', 100) FROM generate_series(1, 5000) g;
		COMMIT;
		SELECT count(*), sum(a) FROM busy_t;
		CREATE TEMP TABLE busy_tmp (a int, b text) USING strata;
		INSERT INTO busy_tmp SELECT g, repeat('z', 100) FROM generate_series(1, 10000) g;
		DROP TABLE busy_tmp;
		CREATE TEMP TABLE busy_tmp (a int) USING strata;
		INSERT INTO busy_tmp VALUES ($round);
		SELECT count(*), sum(a) FROM busy_tmp;
		DROP TABLE busy_t;
	});
	if ($rc == 0 && $err eq '' && $out eq "5000|12502500\n1|$round")
	{
		$rounds_ok++;
	}
	else
	{
		diag("round $round: rc $rc, out '$out', err '$err'");
		last;
	}
}
is($rounds_ok, 40, 'TRUNCATE in the creating transaction and reused temporary tables, 40 rounds: right rows, no error');
my $busy_log = substr(slurp_file($node->logfile), $log_start);
unlike($busy_log, qr/maintenance of relfilenode .* failed|could not remove|was not retired/,
	'the worker never lost a directory under a job, nor a backend one under its feet');
$node->safe_psql('postgres', q{
	ALTER SYSTEM RESET stratago.memtable_size;
	SELECT pg_reload_conf();
});

$node->stop;
done_testing();
