# 020_progress.pl — VACUUM of a strata table reports in
# pg_stat_progress_vacuum as heap's does (am_vacuum.c's banner maps its
# steps onto heap's phases), so a DBA's usual progress queries work:
#  (a) an aggressive VACUUM waiting for its compaction (the maintenance
#      worker held with SIGSTOP) shows as 'vacuuming heap', with the
#      table's TID blocks as heap_blks_total;
#  (b) a VACUUM removing dead rows' index entries shows as 'vacuuming
#      indexes' while a cursor's index-only scan keeps a pin on the leaf
#      page it needs (btree's cleanup lock waits for it), with the dead
#      rows it collected;
#  (c) once each has finished its row is gone, and the rows are as heap's
#      would be.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use StrataTest;

my $node = strata_node('progress', 'autovacuum = off');
$node->safe_psql('postgres', q{
	CREATE TABLE p (id int PRIMARY KEY, v text) USING strata;
	INSERT INTO p SELECT g, repeat('x', 50) FROM generate_series(1, 20000) g;
	SELECT stratago.flush('p');
});
# the table's TID blocks: what relpages and heap_blks_total count
my $blocks = $node->safe_psql('postgres',
	q{SELECT max((ctid::text::point)[0])::int + 1 FROM p});

# Poll pg_stat_progress_vacuum for the table until $phase shows (or time
# runs out); returns the row as "phase|heap_blks_total|num_dead_tuples".
sub wait_for_phase
{
	my ($phase) = @_;
	my $deadline = time + 60;
	my $row = '';
	while (time < $deadline)
	{
		$row = $node->safe_psql('postgres', q{
			SELECT phase, heap_blks_total, num_dead_tuples
			FROM pg_stat_progress_vacuum WHERE relid = 'p'::regclass});
		return $row if $row =~ /^\Q$phase\E\|/;
		usleep(50_000);
	}
	return $row;
}

# --- (a) an aggressive VACUUM waiting for its compaction ---
my $worker = worker_pid($node);
ok(defined $worker, 'the maintenance worker runs');
kill 'STOP', $worker;
my $vac = $node->background_psql('postgres', on_error_stop => 0);
$vac->query_until(qr/started/, q{
	\echo started
	VACUUM (FREEZE) p;
	\echo done
});
my ($phase, $total) = split /\|/, wait_for_phase('vacuuming heap');
is($phase, 'vacuuming heap', 'VACUUM (FREEZE) waiting for its compaction shows as vacuuming heap');
is($total, $blocks, "heap_blks_total is the table's TID blocks ($blocks)");
kill 'CONT', $worker;
$vac->query_until(qr/done/, '');
$vac->quit;
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM pg_stat_progress_vacuum WHERE relid = 'p'::regclass}),
	'0', 'the progress row is gone once VACUUM has finished');

# --- (b) removing dead rows from the index ---
$node->safe_psql('postgres', 'DELETE FROM p WHERE id % 10 = 0');
my $cursor = $node->background_psql('postgres', on_error_stop => 0);
$cursor->query_safe(q{
	SET enable_seqscan = off;
	SET enable_bitmapscan = off;
	BEGIN;
	DECLARE c CURSOR FOR SELECT id FROM p WHERE id > 0 ORDER BY id;
	FETCH 1 FROM c;
});
like($cursor->query_safe('EXPLAIN (COSTS OFF) SELECT id FROM p WHERE id > 0 ORDER BY id'),
	qr/Index Only Scan/, 'the cursor reads the index only (its leaf page stays pinned)');
$vac = $node->background_psql('postgres', on_error_stop => 0);
$vac->query_until(qr/started/, q{
	\echo started
	VACUUM p;
	\echo done
});
my ($phase2, $total2, $dead) = split /\|/, wait_for_phase('vacuuming indexes');
is($phase2, 'vacuuming indexes', 'VACUUM removing index entries shows as vacuuming indexes');
is($dead, '2000', 'num_dead_tuples counts the deleted rows it collected');
$cursor->query_safe('COMMIT');
$cursor->quit;
$vac->query_until(qr/done/, '');
$vac->quit;
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM pg_stat_progress_vacuum WHERE relid = 'p'::regclass}),
	'0', 'no progress row after the second VACUUM');
is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM p'),
	'18000|180000000', 'the rows left are the ones not deleted');

$node->stop;
done_testing();
