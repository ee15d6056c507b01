# 013_backpressure.pl — when flushing falls behind, writers are slowed,
# not failed, and the wait shows in pg_stat_activity:
#  - with the maintenance worker frozen (SIGSTOP) and a small
#    stratago.memtable_size, an INSERT of more rows than
#    stratago.memtable_memory holds fills a table's frozen-memtable list
#    and waits (wait_event_type 'Extension'); once the worker runs again
#    it commits with every row;
#  - the same with a memtable_size larger than all of memtable_memory:
#    the writer waits for the shared arena, and the worker flushes because
#    total memory is high although no memtable reached its size;
#  - many tables: one INSERT writes more tables (partitions) than the
#    arena has chunks to give each a memtable. It commits with every row,
#    and the server comes back with them after a crash. (Freezing a
#    memtable used to make the next one at once: every chunk ended up in
#    an empty memtable no flush frees, and the writer waited for ever.)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use StrataTest;

my $node = strata_node('backpressure',
	'stratago.memtable_memory = 8MB',    # the setting's minimum
	'stratago.memtable_size = 64kB',     # the setting's minimum
	# no checkpoint may flush for its own reasons while the worker is
	# stopped (the checkpoint guard would also wait for it)
	'checkpoint_timeout = 1h', 'max_wal_size = 4GB');
$node->safe_psql('postgres', q{
	CREATE TABLE small_mt (id int, pad text) USING strata;
	CREATE TABLE big_mt (id int, pad text) USING strata;
});

# Rows: 200000 x ~100 bytes, about 20 MB of versions, more than the 8 MB
# of memtable memory the whole cluster has.
my $nrows = 200000;

# Freeze the worker while it sleeps between rounds, so that it holds no
# lock a backend (or this test's queries) could need.
sub freeze_worker
{
	my $pid = worker_pid($node);
	for (1 .. 100)
	{
		kill 'STOP', $pid;
		my $ev = $node->safe_psql('postgres',
			"SELECT wait_event FROM pg_stat_activity WHERE pid = $pid");
		return $pid if $ev eq 'Extension';    # its WaitLatch
		kill 'CONT', $pid;
		usleep(20_000);
	}
	die "the maintenance worker never went to sleep";
}

# Start an INSERT in its own session; returns the harness and output refs.
sub start_insert
{
	my ($table, $app) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d',
			$node->connstr('postgres') . " application_name=$app",
			'-c', "INSERT INTO $table SELECT g, repeat('x', 80) FROM generate_series(1, $nrows) g"
		],
		'>', \$out, '2>', \$err);
	return ($h, \$out, \$err);
}

# Poll until the session shows wait_event_type = 'Extension'; returns its
# wait event (or '' after 60 s).
sub wait_for_extension_wait
{
	my ($app) = @_;
	for (1 .. 600)
	{
		my $r = $node->safe_psql('postgres',
			"SELECT wait_event_type || '/' || wait_event FROM pg_stat_activity "
			  . "WHERE application_name = '$app' AND wait_event_type = 'Extension'");
		return $r if $r ne '';
		usleep(100_000);
	}
	return '';
}

# --- frozen memtables pile up (memtable_size = 64kB) ---
my $wpid = freeze_worker();
my ($h, $out, $err) = start_insert('small_mt', 'bp_small');
is(wait_for_extension_wait('bp_small'), 'Extension/Extension',
	'small memtables: the writer waits, visible as an Extension wait event');
my $st = $node->safe_psql('postgres',
	'SELECT frozen_memtables FROM stratago.table_stats(\'small_mt\')');
is($st, '4', 'it waits with the frozen-memtable list full');
is($node->safe_psql('postgres',
		"SELECT state FROM pg_stat_activity WHERE application_name = 'bp_small'"),
	'active', 'the INSERT is still running, not failed');
kill 'CONT', $wpid;
ok($h->finish, 'the INSERT commits once the worker runs again')
  or diag("psql stderr: $$err");
is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM small_mt'),
	"$nrows|" . ($nrows * ($nrows + 1) / 2), 'every row is there');

# --- the shared arena runs low (memtable_size above memtable_memory) ---
$node->append_conf('postgresql.conf', 'stratago.memtable_size = 1GB');
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('stratago.memtable_size') = '1GB'")
  or die 'reload';
# the worker reads its settings between rounds: let it take this one in
usleep(300_000);
$wpid = freeze_worker();
($h, $out, $err) = start_insert('big_mt', 'bp_big');
is(wait_for_extension_wait('bp_big'), 'Extension/Extension',
	'big memtable: the writer waits for memory, visible as an Extension wait event');
$st = $node->safe_psql('postgres',
	'SELECT frozen_memtables, memtable_bytes > 4 * 1024 * 1024, flushes FROM stratago.table_stats(\'big_mt\')');
is($st, '0|t|0', 'it waits with one big active memtable and nothing flushed');
is($node->safe_psql('postgres',
		"SELECT state FROM pg_stat_activity WHERE application_name = 'bp_big'"),
	'active', 'the INSERT is still running, not failed');
kill 'CONT', $wpid;
ok($h->finish, 'the INSERT commits once the worker runs again')
  or diag("psql stderr: $$err");
is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM big_mt'),
	"$nrows|" . ($nrows * ($nrows + 1) / 2), 'every row is there');
$st = $node->safe_psql('postgres',
	'SELECT flushes > 0 FROM stratago.table_stats(\'big_mt\')');
is($st, 't', 'the worker flushed because total memory was high, not the memtable size');

# --- many tables: more written at once than the arena has chunks ---
# 8 MB is 1024 chunks of 8 kB: 1100 partitions cannot each
# keep a memtable, so the worker must flush the largest to make room.
$node->append_conf('postgresql.conf', 'stratago.memtable_size = 4MB');
$node->reload;
my $nparts = 1100;
my $per_part = 5;
$node->safe_psql('postgres', qq{
	CREATE TABLE many (id int, v text) PARTITION BY HASH (id);
	SELECT format('CREATE TABLE many_%s PARTITION OF many FOR VALUES WITH (MODULUS $nparts, REMAINDER %s) USING strata', g, g)
	  FROM generate_series(0, $nparts - 1) g \\gexec
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM stratago.tables WHERE relname LIKE 'many_%'}),
	$nparts, "$nparts strata partitions");
my $many_rows = $nparts * $per_part;
my ($ret, $stdout, $stderr) = $node->psql('postgres', qq{
	SET statement_timeout = '300s';
	INSERT INTO many SELECT g, md5(g::text) FROM generate_series(1, $many_rows) g;
});
is($ret, 0, 'an INSERT into more tables than the arena has chunks commits')
  or diag($stderr);
my $expect = "$many_rows|" . ($many_rows * ($many_rows + 1) / 2);
is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM many'),
	$expect, 'every row is there');
is($node->safe_psql('postgres',
		'SELECT memtable_used_bytes <= memtable_arena_bytes FROM stratago.cluster_stats'),
	't', 'the arena is not overdrawn');
# rows per partition, to compare after the crash (hashing leaves a few empty)
my $per_partition_sql = q{SELECT string_agg(tableoid::regclass || ':' || n, ',' ORDER BY tableoid)
	FROM (SELECT tableoid, count(*) AS n FROM many GROUP BY tableoid) t};
my $before = $node->safe_psql('postgres', $per_partition_sql);
crash_node($node);
restart_after_crash($node, 'many tables');
is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM many'),
	$expect, 'after a crash every row is there again');
is($node->safe_psql('postgres', $per_partition_sql), $before,
	'in the partition it was in');

$node->stop;
done_testing();
