# 023_sharding.pl — strata tables sharded across PostgreSQL servers with
# what ships with PostgreSQL (doc/OPERATIONS.md, "Sharding across
# servers"): a table hash-partitioned by grp on a coordinator whose partitions
# are postgres_fdw foreign tables, each a strata table on its own server.
#  - INSERT, UPDATE, DELETE and SELECT through the parent match a model
#    of the rows, and each shard holds exactly its partition's rows;
#  - an aggregate grouped by the partition key is pushed down to the
#    shards (partitionwise aggregate; PostgreSQL 15's postgres_fdw does
#    not push partial aggregates, so a plain count(*) is finished on the
#    coordinator);
#  - a crash of one shard: queries through the parent fail while it is
#    down, and after its restart every committed row is there;
#  - a hot standby of a shard answers the same reads as its primary.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use StrataTest;

my @shards = (strata_node('shard0', 'max_wal_senders = 4'), strata_node('shard1'));
my $coord = strata_node('coordinator');

for my $i (0 .. 1)
{
	$shards[$i]->safe_psql('postgres', qq{
		CREATE TABLE items_p$i (id int PRIMARY KEY, grp int NOT NULL, v text) USING strata;
	});
}
my $servers = '';
for my $i (0 .. 1)
{
	my $port = $shards[$i]->port;
	my $host = $shards[$i]->host;
	$servers .= qq{
		CREATE SERVER shard$i FOREIGN DATA WRAPPER postgres_fdw
			OPTIONS (host '$host', port '$port', dbname 'postgres');
		CREATE USER MAPPING FOR CURRENT_USER SERVER shard$i;
		CREATE FOREIGN TABLE items_p$i PARTITION OF items
			FOR VALUES WITH (MODULUS 2, REMAINDER $i)
			SERVER shard$i OPTIONS (table_name 'items_p$i');
	};
}
$coord->safe_psql('postgres', qq{
	CREATE EXTENSION postgres_fdw;
	CREATE TABLE items (id int NOT NULL, grp int NOT NULL, v text) PARTITION BY HASH (grp);
	$servers
});

# The model: the same statements on a local heap table of the coordinator.
sub both
{
	my ($sql) = @_;
	(my $model = $sql) =~ s/\bitems\b/model/g;
	$coord->safe_psql('postgres', "BEGIN; $sql; $model; COMMIT;");
}
$coord->safe_psql('postgres', 'CREATE TABLE model (id int, grp int, v text)');
both(q{INSERT INTO items SELECT g, g % 10, 'v' || g FROM generate_series(1, 10000) g});
both(q{UPDATE items SET v = v || '-u' WHERE id % 7 = 0});
both(q{DELETE FROM items WHERE id % 13 = 0});
my $sum_sql = 'SELECT count(*), sum(id), sum(grp), md5(string_agg(v, \',\' ORDER BY id))';
is($coord->safe_psql('postgres', "$sum_sql FROM items"),
	$coord->safe_psql('postgres', "$sum_sql FROM model"),
	'reads through the parent match the model after INSERT, UPDATE, DELETE');
for my $i (0 .. 1)
{
	is($shards[$i]->safe_psql('postgres', "SELECT count(*) FROM items_p$i"),
		$coord->safe_psql('postgres', qq{
			SELECT count(*) FROM model
			 WHERE satisfies_hash_partition('items'::regclass, 2, $i, grp)}),
		"shard $i holds exactly its partition's rows");
	is($shards[$i]->safe_psql('postgres', q{
		SELECT amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam
		 WHERE relname = 'items_p} . $i . q{'}), 'strata', "shard $i stores them in strata");
}

# an aggregate grouped by the partition key runs on the shards
$coord->safe_psql('postgres', 'ANALYZE items');
my $agg = 'SELECT grp, count(*), sum(id), max(v) FROM %s GROUP BY grp ORDER BY grp';
my $plan = $coord->safe_psql('postgres',
	"SET enable_partitionwise_aggregate = on; EXPLAIN (VERBOSE, COSTS OFF) " . sprintf($agg, 'items'));
like($plan, qr/Relations: Aggregate on \(public\.items_p0 items/,
	'the aggregate is pushed down to shard 0');
like($plan, qr/Relations: Aggregate on \(public\.items_p1 items/,
	'and to shard 1');
is($coord->safe_psql('postgres',
		"SET enable_partitionwise_aggregate = on; " . sprintf($agg, 'items')),
	$coord->safe_psql('postgres', sprintf($agg, 'model')),
	'the pushed-down aggregate gives the model\'s answer');

# a crash of shard 1 while the coordinator writes to both
both(q{INSERT INTO items SELECT g, 7, 'late' || g FROM generate_series(30001, 31000) g});
crash_node($shards[1]);
my ($ret, $out, $err) = $coord->psql('postgres', 'SELECT count(*) FROM items');
isnt($ret, 0, 'with a shard down, a query through the parent fails');
restart_after_crash($shards[1], 'shard 1');
is($coord->safe_psql('postgres', "$sum_sql FROM items"),
	$coord->safe_psql('postgres', "$sum_sql FROM model"),
	'after the crashed shard restarts, every committed row is there');
both(q{UPDATE items SET v = v || '-after' WHERE grp = 7});
is($coord->safe_psql('postgres', "$sum_sql FROM items"),
	$coord->safe_psql('postgres', "$sum_sql FROM model"),
	'and writes through the parent go on');

# a hot standby of shard 0 (the base backup after its memtables are
# flushed: see src/pg/README.md on base backups)
my $p0 = $shards[0];
$p0->safe_psql('postgres', q{SELECT stratago.flush('items_p0'); CHECKPOINT});
$p0->backup('b0');
my $standby = PostgreSQL::Test::Cluster->new('shard0_standby');
$standby->init_from_backup($p0, 'b0', has_streaming => 1);
$standby->start;
both(q{INSERT INTO items SELECT g, g % 10, 'standby' || g FROM generate_series(40001, 40500) g});
both(q{DELETE FROM items WHERE id > 40000 AND id % 2 = 0});
$p0->wait_for_catchup($standby);
my $shard_sum = 'SELECT count(*), sum(id), md5(string_agg(v, \',\' ORDER BY id)) FROM items_p0';
is($standby->safe_psql('postgres', $shard_sum), $p0->safe_psql('postgres', $shard_sum),
	'the standby of shard 0 answers the same reads as its primary');
cmp_ok($standby->safe_psql('postgres', 'SELECT count(*) FROM items_p0 WHERE id > 40000'), '>', 0,
	'including rows written through the coordinator after the backup');
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'from recovery');

$standby->stop;
$coord->stop;
$_->stop for @shards;
done_testing();
