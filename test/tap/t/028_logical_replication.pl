# 028_logical_replication.pl — logical replication of strata tables with
# pgoutput (CREATE PUBLICATION / SUBSCRIPTION): strata -> heap,
# heap -> strata and strata -> strata; the initial copy, then a write load
# of inserts, updates that keep and that change the TID, key changes,
# deletes, TRUNCATE, rollbacks and savepoints, a streamed large
# transaction and a two-phase one; a table without a key (REPLICA IDENTITY
# FULL); the publisher crashed mid-load and the
# subscriber restarted; after each step the subscriber's tables equal the
# publisher's. With stratago.wal_sink = engine a new publication of a
# strata table is refused with a hint, and one made before keeps
# replicating.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use StrataTest;

# the engine sink's leg is the test's own, below
delete $ENV{STRATAGO_WAL_SINK};

my @conf = ('wal_level = logical', 'max_replication_slots = 10', 'max_wal_senders = 10',
	'max_prepared_transactions = 10', 'logical_decoding_work_mem = 64kB',
	'max_logical_replication_workers = 6');
my $pub = strata_node('publisher', @conf);
my $sub = strata_node('subscriber', @conf);

# name => [publisher's access method, subscriber's]
my %tables = (s2h => ['strata', 'heap'], h2s => ['heap', 'strata'], s2s => ['strata', 'strata']);
for my $t (sort keys %tables)
{
	my ($pam, $sam) = @{ $tables{$t} };
	my $ddl = "CREATE TABLE $t (id int PRIMARY KEY, k int NOT NULL, v text, n int) USING %s;"
	  . "CREATE INDEX ${t}_n ON $t (n);";
	$pub->safe_psql('postgres', sprintf($ddl, $pam));
	$sub->safe_psql('postgres', sprintf($ddl, $sam));
	$pub->safe_psql('postgres',
		"INSERT INTO $t SELECT g, g, md5(g::text), g % 10 FROM generate_series(1, 2000) g");
}
# A table without a key, REPLICA IDENTITY FULL on both sides: the
# subscriber finds each row to change by a scan comparing whole rows.
for my $node ($pub, $sub)
{
	$node->safe_psql('postgres', q{
		CREATE TABLE nokey (id int, v text) USING strata;
		ALTER TABLE nokey REPLICA IDENTITY FULL;
	});
}
$pub->safe_psql('postgres',
	"INSERT INTO nokey SELECT g % 50, 'v' || g FROM generate_series(1, 200) g");
$pub->safe_psql('postgres', 'CREATE PUBLICATION pub FOR TABLE s2h, h2s, s2s, nokey');
my $connstr = 'host=' . $pub->host . ' port=' . $pub->port . ' dbname=postgres';
$sub->safe_psql('postgres',
	"CREATE SUBSCRIPTION sub CONNECTION '$connstr' PUBLICATION pub WITH (streaming = on, two_phase = on)");

sub synced
{
	$sub->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_subscription_rel WHERE srsubstate NOT IN ('r', 's')")
	  or die 'initial sync did not finish';
	$pub->wait_for_catchup('sub');
}

# Each table's rows, as one digest, on a node.
sub contents
{
	my ($node, $t) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, ',' ORDER BY id)), '-') FROM $t t");
}

sub compare
{
	my ($what) = @_;
	synced();
	for my $t (sort keys %tables)
	{
		my $p = contents($pub, $t);
		is(contents($sub, $t), $p, "$what: $t ($tables{$t}[0] -> $tables{$t}[1]) equal ($p)");
	}
	my $q = "SELECT count(*) || ' ' || md5(string_agg(id || ':' || v, ',' ORDER BY id, v)) FROM nokey";
	my $p = $pub->safe_psql('postgres', $q);
	is($sub->safe_psql('postgres', $q), $p, "$what: nokey (REPLICA IDENTITY FULL) equal ($p)");
}

compare('initial copy');

# The write load, T standing for each table.
my $load = q{
INSERT INTO T VALUES (3001, 3001, 'new', 1);
INSERT INTO T SELECT g, g, 'batch', g % 10 FROM generate_series(3002, 3100) g;
UPDATE T SET v = 'same tid' WHERE id % 7 = 0;
UPDATE T SET n = n + 100 WHERE id % 11 = 0;
UPDATE T SET id = id + 10000 WHERE id BETWEEN 100 AND 120;
UPDATE T SET k = -k WHERE id BETWEEN 200 AND 210;
DELETE FROM T WHERE id % 13 = 0;
BEGIN; INSERT INTO T VALUES (4000, 4000, 'rolled back', 1); DELETE FROM T WHERE id = 1; ROLLBACK;
BEGIN; UPDATE T SET v = 'kept' WHERE id = 2; SAVEPOINT a; UPDATE T SET v = 'undone' WHERE id = 3; DELETE FROM T WHERE id = 4; ROLLBACK TO a; INSERT INTO T VALUES (4001, 4001, 'after savepoint', 1); COMMIT;
BEGIN; INSERT INTO T SELECT g, g, repeat('large', 30), 5 FROM generate_series(5000, 8000) g; UPDATE T SET v = 'large update' WHERE id BETWEEN 5000 AND 6000; DELETE FROM T WHERE id > 7500; COMMIT;
BEGIN; INSERT INTO T VALUES (9000, 9000, 'prepared', 1); UPDATE T SET v = 'prepared update' WHERE id = 5; PREPARE TRANSACTION 'p_T'; COMMIT PREPARED 'p_T';
};
sub run_load
{
	for my $t (sort keys %tables)
	{
		(my $sql = $load) =~ s/\bT\b/$t/g;
		$sql =~ s/'p_T'/'p_$t'/g;
		$pub->safe_psql('postgres', $sql);
	}
}
run_load();
$pub->safe_psql('postgres', q{
	UPDATE nokey SET v = v || '+' WHERE id % 3 = 0;
	DELETE FROM nokey WHERE id % 7 = 0;
	UPDATE nokey SET id = id + 1000 WHERE id = 1;
});
compare('write load');

$pub->safe_psql('postgres', 'TRUNCATE s2s');
$pub->safe_psql('postgres',
	"INSERT INTO s2s SELECT g, g, 'after truncate', 1 FROM generate_series(1, 500) g");
compare('truncate');

# The publisher crashes in the middle of a load (pgbench, one client per
# table), then takes up again.
my $script = $pub->basedir . '/churn.sql';
PostgreSQL::Test::Utils::append_to_file($script, q{
\set id random(1, 3000)
\set t random(1, 3)
BEGIN;
UPDATE s2h SET n = n + 1, v = md5(random()::text) WHERE id = :id;
UPDATE h2s SET n = n + 1 WHERE id = :id;
UPDATE s2s SET v = md5(random()::text) WHERE id = :id;
INSERT INTO s2s VALUES (20000 + :id * 3 + :t, :id, 'churn', :t) ON CONFLICT (id) DO UPDATE SET n = s2s.n + 1;
DELETE FROM s2h WHERE id = :id + 1;
END;
});
my ($out, $err) = ('', '');
my $churn = IPC::Run::start(
	[
		'pgbench', '-n', '-c', 3, '-j', 1, '-T', 30, '-f', $script,
		'-h', $pub->host, '-p', $pub->port, 'postgres'
	],
	'>', \$out, '2>', \$err);
sleep 3;
$pub->stop('immediate');
$churn->finish;
$pub->start;
$pub->safe_psql('postgres', q{
	UPDATE s2h SET v = 'after crash' WHERE id % 17 = 0;
	DELETE FROM s2s WHERE id % 19 = 0;
	INSERT INTO h2s VALUES (30000, 30000, 'after crash', 1);
});
compare('publisher crash mid-load');

$sub->restart;
$pub->safe_psql('postgres', q{
	UPDATE s2h SET n = -n WHERE id % 23 = 0;
	UPDATE h2s SET v = 'after restart' WHERE id % 29 = 0;
	INSERT INTO s2s SELECT g, g, 'after restart', 1 FROM generate_series(40000, 40100) g;
});
compare('subscriber restart');

# The engine sink: no new publication of a strata table, a hint to use
# the postgres sink; the publication made before keeps replicating.
$pub->append_conf('postgresql.conf', 'stratago.wal_sink = engine');
$pub->restart;
my ($rc, $stdout, $stderr) = $pub->psql('postgres', 'CREATE PUBLICATION pub2 FOR TABLE s2s');
isnt($rc, 0, 'engine sink: a new publication of a strata table is refused');
like($stderr, qr/strata table "s2s" cannot be part of publication "pub2"/, 'engine sink: the refusal names table and publication');
like($stderr, qr/HINT:  Set stratago.wal_sink = postgres/, 'engine sink: the hint names the postgres sink');
($rc, $stdout, $stderr) = $pub->psql('postgres', 'CREATE PUBLICATION pub2 FOR TABLE h2s');
is($rc, 0, 'engine sink: a publication of heap tables only is made');
$pub->safe_psql('postgres', q{
	UPDATE s2s SET v = 'engine sink' WHERE id % 31 = 0;
	INSERT INTO s2h VALUES (50000, 50000, 'engine sink', 1);
});
compare('engine sink, the earlier publication');

$sub->stop;
$pub->stop;
done_testing();
