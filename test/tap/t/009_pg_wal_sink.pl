# 009_pg_wal_sink.pl — stratago.wal_sink = postgres: strata records in
# PostgreSQL's WAL (src/pg/pgwal.c).
#  (a) a crash right after a checkpoint, with memtables holding rows logged
#      before the checkpoint's redo point (stratago.checkpoint_guard off,
#      as when the guard is missed): the postmaster replays them from the
#      WAL the "stratago" slot kept, redo replays the rest, nothing is
#      lost; the engine WAL is not written at all;
#  (a') with the guard on, a checkpoint does not complete while a memtable
#      holds rows from before its redo point: it waits for the worker's
#      flush;
#  (b) retention follows flushes: after stratago.flush() the slot and
#      pg_replay_from move past the flushed records; after a checkpoint
#      the worker flushes what the checkpoint would otherwise leave behind;
#  (c) the records are readable through the resource manager's desc
#      (pg_walinspect);
#  (d) a streaming hot standby applies strata records to its own trees,
#      answers queries like the primary at the same replay point, flushes
#      with its own worker, survives its own crash, and after promotion
#      keeps everything and accepts writes; a VACUUM on the primary that
#      removes index entries of rows a standby snapshot may still see
#      cancels that standby transaction (a recovery conflict), as heap's
#      pruning does.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use StrataTest;

# ---- (a) crash after a checkpoint with unflushed memtables
my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', join("\n",
	"shared_preload_libraries = 'stratago'",
	"stratago.wal_sink = postgres",
	"fsync = on",
	"restart_after_crash = on",
	"stratago.maintenance_naptime = 50",
	"log_checkpoints = on", ''));
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION stratago');
$node->safe_psql('postgres', q{
	CREATE TABLE t (id int PRIMARY KEY, v text) USING strata;
	CREATE TABLE h (id int PRIMARY KEY, v text);
	INSERT INTO t SELECT g, 'a' || g FROM generate_series(1, 3000) g;
	INSERT INTO h SELECT g, 'a' || g FROM generate_series(1, 3000) g;
});
my $engine_wal = engine_wal_bytes($node);
# The worker flushes memtables holding records from before a checkpoint's
# redo point before the checkpoint may complete. Without that guard, and
# with the worker frozen, the crash comes first: the case the slot and the
# startup replay are for.
$node->append_conf('postgresql.conf', "stratago.checkpoint_guard = off\n");
$node->reload;
my $worker = worker_pid($node);
kill 'STOP', $worker;
$node->safe_psql('postgres', 'CHECKPOINT');
$node->safe_psql('postgres', q{
	UPDATE t SET v = v || 'u' WHERE id % 3 = 0;
	UPDATE h SET v = v || 'u' WHERE id % 3 = 0;
	DELETE FROM t WHERE id % 7 = 0;
	DELETE FROM h WHERE id % 7 = 0;
	INSERT INTO t SELECT g, 'b' || g FROM generate_series(3001, 4000) g;
	INSERT INTO h SELECT g, 'b' || g FROM generate_series(3001, 4000) g;
});
# nothing was flushed: the pre-checkpoint rows exist only in memtables and WAL
is($node->safe_psql('postgres', "SELECT count(*) FROM stratago.sstables('t')"), '0',
	'no SSTable yet: the rows are in memtables only');
my $slot_lsn = $node->safe_psql('postgres',
	"SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'stratago'");
isnt($slot_lsn, '', 'the stratago slot exists');
my $redo = $node->safe_psql('postgres', 'SELECT redo_lsn FROM pg_control_checkpoint()');
ok($node->safe_psql('postgres', "SELECT '$slot_lsn'::pg_lsn < '$redo'::pg_lsn") eq 't',
	"the slot keeps WAL from before the checkpoint's redo point ($slot_lsn < $redo)");
is(engine_wal_bytes($node), $engine_wal, 'the engine WAL is not written');

my $log_pos = -s $node->logfile;
crash_node($node, $worker);
restart_after_crash($node, 'crash after checkpoint');
like(substr(slurp_file($node->logfile), $log_pos),
	qr/stratago: replayed [1-9][0-9]* strata records of PostgreSQL's WAL from/,
	'the postmaster replayed strata records from before the redo point');
same_contents($node, $node, 'after the crash');

# ---- (a') the guard holds a checkpoint back until the flush
$node->append_conf('postgresql.conf', "stratago.checkpoint_guard = on\n");
$node->reload;
$node->safe_psql('postgres', q{
	INSERT INTO t VALUES (200000, 'guard');
	INSERT INTO h VALUES (200000, 'guard');
});
$worker = worker_pid($node);
my $ssts = $node->safe_psql('postgres', "SELECT count(*) FROM stratago.sstables('t')");
my $redo0 = $node->safe_psql('postgres', 'SELECT redo_lsn FROM pg_control_checkpoint()');
sleep 1;	# the worker re-arms with the new setting
kill 'STOP', $worker;
my ($ck_out, $ck_err) = ('', '');
my $ck = IPC::Run::start(['psql', '-X', '-d', $node->connstr('postgres'), '-c', 'CHECKPOINT'],
	'>', \$ck_out, '2>', \$ck_err);
sleep 3;
ok($ck->pumpable, 'a checkpoint waits while the worker has not flushed older memtables');
is($node->safe_psql('postgres', 'SELECT redo_lsn FROM pg_control_checkpoint()'), $redo0,
	'pg_control still names the previous checkpoint');
kill 'CONT', $worker;
$ck->finish;
is($ck_err, '', 'the checkpoint completes once the worker runs');
ok($node->safe_psql('postgres', "SELECT count(*) FROM stratago.sstables('t')") > $ssts,
	'the worker flushed t before the checkpoint completed');

# ---- (b) retention follows flushes
settle($node);
pass('after a flush the slot advances past the flushed records');
$node->safe_psql('postgres', "INSERT INTO t VALUES (100001, 'checkpoint')");
$node->safe_psql('postgres', "INSERT INTO h VALUES (100001, 'checkpoint')");
my $files = $node->safe_psql('postgres', "SELECT count(*) FROM stratago.sstables('t')");
$node->safe_psql('postgres', 'CHECKPOINT');
$node->poll_query_until('postgres', "SELECT count(*) > $files FROM stratago.sstables('t')")
  or die 'no flush after the checkpoint';
pass('a checkpoint makes the worker flush memtables holding older records');

# ---- (c) the resource manager describes its records
$node->safe_psql('postgres', 'CREATE EXTENSION pg_walinspect');
my $start = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
$node->safe_psql('postgres', "INSERT INTO t VALUES (100000, 'walinspect')");
$node->safe_psql('postgres', "INSERT INTO h VALUES (100000, 'walinspect')");
my $end = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
like($node->safe_psql('postgres', qq{
	SELECT record_type || ': ' || description FROM pg_get_wal_records_info('$start', '$end')
	WHERE resource_manager = 'stratago'}),
	qr/^ROWS: rel \d+\/\d+\/\d+ tree [0-9a-f]{16}; 1 versions from seq \d+$/m,
	'pg_walinspect shows the ROWS record readably');

# ---- (d) a streaming hot standby
# (a base backup's engine files need no WAL from before the backup only if
# no memtable held any at its start: see src/pg/README.md)
settle($node);
$node->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b1', has_streaming => 1);
$standby->append_conf('postgresql.conf',
	"stratago.memtable_size = 64kB\nmax_standby_streaming_delay = 0\n");
$standby->start;
$node->safe_psql('postgres', q{
	CREATE TABLE t2 (id int PRIMARY KEY, v text) USING strata;
	INSERT INTO t2 SELECT g, repeat('x', 100) || g FROM generate_series(1, 5000) g;
	UPDATE t SET v = v || 's' WHERE id % 5 = 0;
	UPDATE h SET v = v || 's' WHERE id % 5 = 0;
	TRUNCATE t2;
	INSERT INTO t2 SELECT g, repeat('y', 100) || g FROM generate_series(1, 4000) g;
	DELETE FROM t WHERE id % 11 = 0;
	DELETE FROM h WHERE id % 11 = 0;
});
$node->wait_for_catchup($standby);
same_contents($node, $standby, 'standby at the same replay point');
is($standby->safe_psql('postgres', 'SELECT count(*), min(v) FROM t2'),
	$node->safe_psql('postgres', 'SELECT count(*), min(v) FROM t2'),
	'standby: a table created and truncated after the backup');

# recovery conflict: a standby snapshot that still sees rows VACUUM removes
my ($rc_in, $rc_out, $rc_err) = ('', '', '');
my $rc = IPC::Run::start(['psql', '-X', '-d', $standby->connstr('postgres')],
	'<', \$rc_in, '>', \$rc_out, '2>', \$rc_err);
$rc_in .= "BEGIN ISOLATION LEVEL REPEATABLE READ;\nSELECT 'before', count(*) FROM t;\n";
$rc->pump until $rc_out =~ /before/;
$node->safe_psql('postgres', q{
	DELETE FROM t WHERE id % 17 = 0;
	DELETE FROM h WHERE id % 17 = 0;
	VACUUM t;
});
$node->wait_for_catchup($standby);
$rc_in .= "SELECT 'after', count(*) FROM t;\n\\q\n";
$rc->finish;
like($rc_err, qr/conflict with recovery/,
	'VACUUM on the primary cancels a standby transaction that may see the removed rows');
unlike($rc_out, qr/after/, 'the cancelled transaction read nothing more');

$standby->poll_query_until('postgres', "SELECT count(*) > 0 FROM stratago.sstables('t2')")
  or die 'the standby never flushed t2';
pass("the standby's own worker flushes its memtables");

# the standby crashes, restarts from its restartpoint and catches up
$node->safe_psql('postgres', q{
	INSERT INTO t SELECT g, 'c' || g FROM generate_series(5001, 6000) g;
	INSERT INTO h SELECT g, 'c' || g FROM generate_series(5001, 6000) g;
});
$node->wait_for_catchup($standby);
$standby->safe_psql('postgres', 'CHECKPOINT');
crash_node($standby);
$standby->start;
$node->wait_for_catchup($standby);
same_contents($node, $standby, 'standby after its own crash');

# promotion: nothing lost, writes go on
$node->stop;
$standby->promote;
$standby->safe_psql('postgres', q{
	INSERT INTO t SELECT g, 'p' || g FROM generate_series(7001, 7500) g;
	INSERT INTO h SELECT g, 'p' || g FROM generate_series(7001, 7500) g;
	UPDATE t SET v = v || 'p' WHERE id % 13 = 0;
	UPDATE h SET v = v || 'p' WHERE id % 13 = 0;
});
same_contents($standby, $standby, 'promoted standby after writes');
crash_node($standby);
$standby->start;
same_contents($standby, $standby, 'promoted standby after a crash');

done_testing();

# Flush t and wait until the slot has moved past everything logged so far
# (it moves a segment at a time, or past a new checkpoint's redo point).
sub settle
{
	my ($n) = @_;
	$n->safe_psql('postgres', "SELECT stratago.flush('t')");
	my $lsn = $n->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
	$n->safe_psql('postgres', 'CHECKPOINT');
	$n->poll_query_until('postgres',
		"SELECT restart_lsn >= '$lsn'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'stratago'")
	  or die 'the stratago slot did not advance';
}

# The engine WAL's size on disk.
sub engine_wal_bytes
{
	my ($n) = @_;
	my $total = 0;
	my $dir = $n->data_dir . '/stratago/wal';
	opendir(my $d, $dir) or return 0;
	for my $f (readdir $d)
	{
		next unless $f =~ /\.wal$/;
		$total += -s "$dir/$f";
	}
	closedir $d;
	return $total;
}

# Strata table t on $b holds exactly what heap table h holds on $a.
sub same_contents
{
	my ($from, $to, $label) = @_;
	my %want = map { split /=/, $_, 2 } split /\n/,
	  $from->safe_psql('postgres', q{SELECT id || '=' || v FROM h});
	my %got = map { split /=/, $_, 2 } split /\n/,
	  $to->safe_psql('postgres', q{SELECT id || '=' || v FROM t});
	my @diff = grep { ($want{$_} // '-') ne ($got{$_} // '-') } (keys %want, keys %got);
	my %seen;
	@diff = sort { $a <=> $b } grep { !$seen{$_}++ } @diff;
	ok(@diff == 0, "$label: strata rows match heap's")
	  or diag(scalar(@diff) . ' rows differ, e.g. '
		  . join(', ', map { "$_: heap " . ($want{$_} // '-') . ' strata ' . ($got{$_} // '-') }
			  @diff[0 .. ($#diff < 4 ? $#diff : 4)]));
	is($to->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id = 3'),
		$to->safe_psql('postgres', 'SELECT count(*) FROM h WHERE id = 3'),
		"$label: index lookup agrees");
}
