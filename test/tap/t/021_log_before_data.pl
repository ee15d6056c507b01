# 021_log_before_data.pl — a flush may not claim more of the log than is
# durable (flush.c, "the log before the data").
#
# A memtable can hold the rows of a transaction whose WAL is still in
# PostgreSQL's WAL buffers. Its flush records in the MANIFEST that the WAL
# up to its last record is in SSTables, and recovery skips that much. If a
# crash then loses the buffered WAL, the restarted server writes its next
# records below that mark, and the recovery after a second crash skipped
# them: committed rows lost. TAP 003 found it as the first commits after a
# restart vanishing at the next crash; this is the same thing on purpose:
#  1. a transaction writes rows and stays open, its WAL unflushed (the WAL
#     writer is held with SIGSTOP, so nothing writes WAL in the background);
#  2. stratago.flush() writes its memtable to an SSTable;
#  3. crash, restart (the open transaction is gone), commit new rows;
#  4. crash again before those rows leave the memtable, restart: every
#     row committed in step 3 is there.
# (The engine sink's log is written to its files at once, so a SIGKILL
# cannot lose it; the same rule covers it for power loss.)
# And (b), with either sink: the rows of a transaction open at a crash
# stay invisible, though its xid was handed out after a checkpoint that
# came after the last xid reservation (pgwal.c).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use StrataTest;

my $node = strata_node('log_before_data', 'autovacuum = off', 'wal_writer_delay = 10s');

# --- (b) first, with either sink: an xid whose rows an engine file or the
# engine WAL holds is never handed out again, even across a checkpoint ---
$node->safe_psql('postgres', q{
	CREATE TABLE x (id int, note text) USING strata;
	INSERT INTO x VALUES (0, 'committed');
	CHECKPOINT;
});
my $open = $node->background_psql('postgres', on_error_stop => 0);
$open->query_safe(q{
	BEGIN;
	INSERT INTO x SELECT g, 'uncommitted' FROM generate_series(1, 100) g;
});
my $open_xid = $open->query_safe('SELECT txid_current()');
crash_node($node);
$open->{run}->kill_kill;
restart_after_crash($node, 'xid reuse');
$node->safe_psql('postgres', q{INSERT INTO x VALUES (101, 'committed')});
my $new_xid = $node->safe_psql('postgres', q{SELECT xmin FROM x WHERE id = 101});
note("the open transaction had xid $open_xid; the first after the crash got $new_xid");
is($node->safe_psql('postgres', q{SELECT count(*) FROM x WHERE note = 'uncommitted'}),
	'0', 'rows of a transaction open at the crash never show, though its xid came after a checkpoint');

if (($ENV{STRATAGO_WAL_SINK} || 'postgres') ne 'postgres')
{
	$node->stop;
	done_testing();
	exit 0;
}

$node->safe_psql('postgres', q{
	CREATE TABLE t (id int, note text, pad text) USING strata;
	INSERT INTO t VALUES (0, 'before', '');
	SELECT stratago.flush('t');
	CHECKPOINT;
});

for my $round (1 .. 3)
{
	my $walwriter = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'");
	ok($walwriter =~ /^\d+$/, "round $round: the WAL writer runs");
	kill 'STOP', $walwriter;

	# 1. rows of an open transaction, about 300 kB of WAL in the buffers
	$open = $node->background_psql('postgres', on_error_stop => 0);
	$open->query_safe(q{
		BEGIN;
		INSERT INTO t SELECT -g, 'uncommitted', repeat('u', 1000)
		  FROM generate_series(1, 300) g;
	});
	my ($written, $flushed) = split /\|/, $node->safe_psql('postgres',
		'SELECT pg_current_wal_insert_lsn(), pg_current_wal_flush_lsn()');

	# 2. its memtable goes to an SSTable
	$node->safe_psql('postgres', "SELECT stratago.flush('t')");
	note("round $round: WAL inserted up to $written, flushed up to $flushed before the flush");

	# 3. crash; the open transaction's WAL may be lost; new commits
	crash_node($node);
	$open->{run}->kill_kill;
	last unless restart_after_crash($node, "round $round (first crash)");
	$node->safe_psql('postgres',
		"INSERT INTO t SELECT $round * 1000 + g, 'committed', 'c' FROM generate_series(1, 5) g");

	# 4. crash before those rows leave the memtable
	crash_node($node);
	last unless restart_after_crash($node, "round $round (second crash)");
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM t WHERE note = 'committed' AND id / 1000 = $round"),
		'5', "round $round: the rows committed after the first crash survived the second");
	is($node->safe_psql('postgres', "SELECT count(*) FROM t WHERE note = 'uncommitted'"),
		'0', "round $round: nothing of the open transaction shows");
}
is($node->safe_psql('postgres', "SELECT count(*) FROM t WHERE note = 'before'"),
	'1', 'the first row is still there');

$node->stop;
done_testing();
