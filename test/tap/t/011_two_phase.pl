# 011_two_phase.pl — PREPARE TRANSACTION, COMMIT PREPARED and ROLLBACK
# PREPARED on strata tables:
#  - a prepared transaction's inserts, updates and deletes stay invisible
#    until COMMIT PREPARED, and vanish with ROLLBACK PREPARED;
#  - its row locks (FOR UPDATE, FOR KEY SHARE) and its changes keep other
#    writers out, across a clean restart, a compaction (the rows' versions
#    then live in SSTables) and a crash (SIGKILL of every server process)
#    between PREPARE and COMMIT PREPARED;
#  - after COMMIT PREPARED / ROLLBACK PREPARED the rows are writable again.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use StrataTest;

my $node = strata_node('two_phase', 'max_prepared_transactions = 10');

$node->safe_psql('postgres', q{
	CREATE TABLE tp (id int PRIMARY KEY, v text) USING strata;
	CREATE TABLE tc (id int, pid int REFERENCES tp (id)) USING strata;
	INSERT INTO tp SELECT g, 'v' || g FROM generate_series(1, 20) g;
});

sub rows
{
	return $node->safe_psql('postgres',
		q{SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM tp});
}

# Can another session change row $id within a short lock_timeout?
sub writable
{
	my ($id, $sql) = @_;
	$sql //= "UPDATE tp SET v = v WHERE id = $id";
	my ($ret, $out, $err) = $node->psql('postgres',
		"SET lock_timeout = '300ms'; BEGIN; $sql; ROLLBACK;");
	return 1 if $ret == 0;
	like($err, qr/canceling statement due to lock timeout/,
		"row $id: blocked by a lock, not another error");
	return 0;
}

# Prepared transactions: changes to commit, changes to roll back, locks.
sub prepare_all
{
	my ($suffix) = @_;
	$node->safe_psql('postgres', qq{
		BEGIN;
		INSERT INTO tp VALUES (100, 'new');
		UPDATE tp SET v = 'changed' WHERE id = 2;
		DELETE FROM tp WHERE id = 3;
		PREPARE TRANSACTION 'commit_$suffix';
		BEGIN;
		INSERT INTO tp VALUES (200, 'never');
		UPDATE tp SET v = 'never' WHERE id = 4;
		DELETE FROM tp WHERE id = 5;
		PREPARE TRANSACTION 'rollback_$suffix';
		BEGIN;
		SELECT id FROM tp WHERE id = 6 FOR UPDATE;
		SELECT id FROM tp WHERE id = 7 FOR KEY SHARE;
		PREPARE TRANSACTION 'lock_$suffix';
	});
}

sub check_prepared_state
{
	my ($label) = @_;
	is($node->safe_psql('postgres',
			q{SELECT string_agg(gid, ',' ORDER BY gid) FROM pg_prepared_xacts}),
		'commit_x,lock_x,rollback_x', "$label: three prepared transactions");
	is(rows(), join(',', map { "$_=v$_" } 1 .. 20),
		"$label: prepared changes are invisible");
	ok(!writable(2), "$label: row updated by a prepared transaction is locked");
	ok(!writable(5, 'DELETE FROM tp WHERE id = 5'),
		"$label: row deleted by a prepared transaction is locked");
	ok(!writable(6), "$label: FOR UPDATE of a prepared transaction holds");
	ok(writable(7), "$label: FOR KEY SHARE lets an update that keeps the key through");
	ok(!writable(7, 'DELETE FROM tp WHERE id = 7'),
		"$label: FOR KEY SHARE of a prepared transaction blocks a delete");
	ok(writable(8), "$label: other rows are writable");
	my ($ret, $out, $err) = $node->psql('postgres',
		"SET lock_timeout = '300ms'; INSERT INTO tp VALUES (100, 'dup')");
	like($err, qr/lock timeout/,
		"$label: a duplicate of a prepared insert waits for it");
}

sub finish_and_check
{
	my ($label) = @_;
	$node->safe_psql('postgres', q{
		COMMIT PREPARED 'commit_x';
		ROLLBACK PREPARED 'rollback_x';
	});
	my %want = map { $_ => "v$_" } 1 .. 20;
	$want{2} = 'changed';
	delete $want{3};
	$want{100} = 'new';
	is(rows(), join(',', map { "$_=$want{$_}" } sort { $a <=> $b } keys %want),
		"$label: committed changes visible, rolled-back ones absent");
	ok(!writable(6), "$label: lock still held before its transaction ends");
	$node->safe_psql('postgres', q{COMMIT PREPARED 'lock_x'});
	ok(writable(6), "$label: FOR UPDATE released by COMMIT PREPARED");
	ok(writable(7, 'DELETE FROM tp WHERE id = 7'),
		"$label: FOR KEY SHARE released by COMMIT PREPARED");
	ok(writable(4) && writable(5, 'DELETE FROM tp WHERE id = 5'),
		"$label: rows of the rolled-back transaction are writable");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0',
		"$label: no prepared transaction left");
	# back to the starting rows for the next round
	$node->safe_psql('postgres', q{
		DELETE FROM tp WHERE id = 100;
		UPDATE tp SET v = 'v2' WHERE id = 2;
		INSERT INTO tp VALUES (3, 'v3');
	});
}

# --- 1: while running, and across a clean restart ---
prepare_all('x');
check_prepared_state('running');
$node->restart;
check_prepared_state('after a clean restart');
finish_and_check('restart');

# --- 2: versions compacted into SSTables, then a crash ---
prepare_all('x');
$node->safe_psql('postgres', q{SELECT stratago.compact('tp')});
is($node->safe_psql('postgres', q{
		SELECT count(*) > 0 AND sum(entries) >= 20 FROM stratago.sstables('tp')}), 't',
	'compaction wrote the rows, prepared versions included, to SSTables');
check_prepared_state('after compaction');
crash_node($node);
restart_after_crash($node, 'prepared, compacted, crashed') or BAIL_OUT('no restart');
check_prepared_state('after compaction and a crash');
finish_and_check('compaction and crash');

# --- 3: versions only in the engine WAL (memtable), then a crash ---
prepare_all('x');
crash_node($node);
restart_after_crash($node, 'prepared, crashed') or BAIL_OUT('no restart');
check_prepared_state('after a crash');
finish_and_check('crash');

# A foreign-key check against a row a prepared transaction updated
# (keeping the key) does not wait; one against a row it deleted does.
$node->safe_psql('postgres', q{
	BEGIN;
	UPDATE tp SET v = 'fk' WHERE id = 9;
	DELETE FROM tp WHERE id = 10;
	PREPARE TRANSACTION 'fk_x';
});
ok(writable(0, 'INSERT INTO tc VALUES (1, 9)'),
	'FK check passes an update of a prepared transaction that kept the key');
ok(!writable(0, 'INSERT INTO tc VALUES (2, 10)'),
	'FK check waits for a delete of a prepared transaction');
$node->safe_psql('postgres', q{ROLLBACK PREPARED 'fk_x'});

$node->stop;
done_testing();
