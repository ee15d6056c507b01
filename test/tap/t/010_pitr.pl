# 010_pitr.pl — base backups and point-in-time recovery of strata tables
# with stratago.wal_sink = postgres.
#
# A write load runs (each transaction writes the same change to strata
# table t and heap table h) with memtables small enough that the worker
# flushes and compacts all the time, while pg_basebackup (fast checkpoint)
# copies the cluster. After the load, a named restore point; then more
# writes. The backup, restored from the WAL archive to the restore point,
# must hold exactly what heap holds there: the strata rows committed by
# then, no more, no less. A streaming standby made from a backup taken under
# the same load must match the primary.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use StrataTest;

my $node = PostgreSQL::Test::Cluster->new('pitr_primary');
$node->init(allows_streaming => 1, has_archiving => 1);
$node->append_conf('postgresql.conf', join("\n",
	"shared_preload_libraries = 'stratago'",
	"stratago.wal_sink = postgres",
	"stratago.memtable_size = 64kB",
	"stratago.maintenance_naptime = 20",
	"fsync = on", ''));
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION stratago;
	CREATE TABLE t (id int PRIMARY KEY, n int, v text) USING strata;
	CREATE TABLE h (id int PRIMARY KEY, n int, v text);
	INSERT INTO t SELECT g, 0, repeat('x', 50) FROM generate_series(1, 2000) g;
	INSERT INTO h SELECT g, 0, repeat('x', 50) FROM generate_series(1, 2000) g;
});

# A load of small transactions, each changing t and h alike, committed one
# by one (a DO block may COMMIT when run outside a transaction block).
sub start_load
{
	my ($from, $count) = @_;
	my $sql = qq{
		DO \$\$
		BEGIN
			FOR i IN $from .. $from + $count - 1 LOOP
				INSERT INTO t VALUES (100000 + i, i, 'load' || i);
				INSERT INTO h VALUES (100000 + i, i, 'load' || i);
				UPDATE t SET n = n + 1, v = v || i WHERE id = 1 + i % 2000;
				UPDATE h SET n = n + 1, v = v || i WHERE id = 1 + i % 2000;
				DELETE FROM t WHERE id = 1 + (i * 7) % 2000 AND n > 3;
				DELETE FROM h WHERE id = 1 + (i * 7) % 2000 AND n > 3;
				COMMIT;
			END LOOP;
		END
		\$\$;
	};
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(['psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
			'-c', $sql], '>', \$out, '2>', \$err);
	return [$h, \$err];
}

sub finish_load
{
	my ($load, $label) = @_;
	$load->[0]->finish;
	is(${ $load->[1] }, '', "$label: the load ran without errors");
}

# ---- a backup during the load, then PITR to a restore point
my $load = start_load(1, 3000);
sleep 1;
$node->backup('under_load');
finish_load($load, 'first load');
my $compactions = $node->safe_psql('postgres', "SELECT compactions FROM stratago.table_stats('t')");
ok($compactions > 0, "compaction ran during the load ($compactions compactions)");
$node->safe_psql('postgres', "SELECT pg_create_restore_point('rp')");
my $at_rp = $node->safe_psql('postgres', 'SELECT count(*), sum(n) FROM h');
# changes after the restore point must not appear in the restored copy
$node->safe_psql('postgres', q{
	INSERT INTO t SELECT g, 1, 'after' FROM generate_series(900000, 900500) g;
	INSERT INTO h SELECT g, 1, 'after' FROM generate_series(900000, 900500) g;
	DELETE FROM t WHERE id < 100;
	DELETE FROM h WHERE id < 100;
});
$node->safe_psql('postgres', 'SELECT pg_switch_wal()');
$node->safe_psql('postgres', 'CHECKPOINT');

my $restored = PostgreSQL::Test::Cluster->new('pitr_restored');
$restored->init_from_backup($node, 'under_load', has_restoring => 1);
$restored->append_conf('postgresql.conf', join("\n",
	"recovery_target_name = 'rp'",
	"recovery_target_action = 'promote'", ''));
$restored->start;
$restored->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'the restored cluster did not finish recovery';
is($restored->safe_psql('postgres', 'SELECT count(*), sum(n) FROM h'), $at_rp,
	'heap is at the restore point');
same_contents($restored, $restored, 'restored to the restore point');
is($restored->safe_psql('postgres', "SELECT count(*) FROM t WHERE v = 'after'"), '0',
	'no strata row from after the restore point');
# the restored cluster is a normal primary: it writes and survives a crash
$restored->safe_psql('postgres', q{
	INSERT INTO t VALUES (990000, 0, 'restored');
	INSERT INTO h VALUES (990000, 0, 'restored');
});
crash_node($restored);
$restored->start;
same_contents($restored, $restored, 'restored cluster after a crash');
$restored->stop;

# ---- a standby from a backup under load
$load = start_load(5001, 2000);
sleep 1;
$node->backup('for_standby');
my $standby = PostgreSQL::Test::Cluster->new('pitr_standby');
$standby->init_from_backup($node, 'for_standby', has_streaming => 1);
$standby->start;
finish_load($load, 'second load');
$node->wait_for_catchup($standby);
is($standby->safe_psql('postgres', q{SELECT string_agg(id || ':' || n || ':' || v, ',' ORDER BY id) FROM t}),
	$node->safe_psql('postgres', q{SELECT string_agg(id || ':' || n || ':' || v, ',' ORDER BY id) FROM t}),
	'a standby made under load matches the primary');
same_contents($standby, $standby, 'standby made under load');

done_testing();

# Strata table t on $node holds exactly what heap table h holds.
sub same_contents
{
	my ($n, undef, $label) = @_;
	my $q = q{SELECT md5(coalesce(string_agg(id || ':' || n || ':' || v, ',' ORDER BY id), '')) FROM };
	is($n->safe_psql('postgres', $q . 't'), $n->safe_psql('postgres', $q . 'h'),
		"$label: strata rows match heap's");
}
