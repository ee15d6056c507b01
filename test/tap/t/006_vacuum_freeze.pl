# 006_vacuum_freeze.pl — VACUUM freezes strata tables and advances
# relfrozenxid (doc/DESIGN.md §7, C7), so xid wraparound protection works:
#  - VACUUM FREEZE moves relfrozenxid forward, but never past the xid of a
#    transaction still running that wrote to the table;
#  - after burning more xids than autovacuum_freeze_max_age (and more than
#    one pg_xact segment), autovacuum's anti-wraparound runs advance
#    relfrozenxid of the strata table and datfrozenxid of every database,
#    the commit log's first segment is truncated away, and the table's
#    rows (written before the burn, some updated and deleted) all read
#    back by sequential and index scans: nothing consults the truncated
#    commit log for them;
#  - the cluster keeps accepting writes, also after a restart.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use StrataTest;

my $node = strata_node('freeze',
	'autovacuum = on',
	'autovacuum_naptime = 1s',
	'autovacuum_freeze_max_age = 100000',
	'autovacuum_multixact_freeze_max_age = 100000',
	'vacuum_freeze_min_age = 0',
	'vacuum_freeze_table_age = 0',
	'log_autovacuum_min_duration = 0');

$node->safe_psql('postgres', q{
CREATE TABLE f (id int PRIMARY KEY, v text) USING strata;
INSERT INTO f SELECT g, 'v' || g FROM generate_series(1, 5000) g;
UPDATE f SET v = v || '-u' WHERE id % 7 = 0;
DELETE FROM f WHERE id % 11 = 0;
CREATE PROCEDURE burn(n int) AS $$
BEGIN
	FOR i IN 1 .. n LOOP
		PERFORM txid_current();
		COMMIT;
	END LOOP;
END $$ LANGUAGE plpgsql;
});
my $expect = $node->safe_psql('postgres',
	"SELECT count(*), sum(id), sum(length(v)) FROM f");

sub relfrozen
{
	return $node->safe_psql('postgres',
		"SELECT relfrozenxid::text::bigint FROM pg_class WHERE relname = 'f'");
}

# --- VACUUM FREEZE, with a writer still running ---
my $before = relfrozen();
my $h = $node->background_psql('postgres');
$h->query_safe('BEGIN');
my $open_xid = $h->query_safe(
	"INSERT INTO f VALUES (100001, 'open') RETURNING txid_current()");
$node->safe_psql('postgres', 'CALL burn(1000)');
$node->safe_psql('postgres', 'VACUUM (FREEZE) f');
my $during = relfrozen();
ok($during > $before, "VACUUM FREEZE advanced relfrozenxid ($before -> $during)");
ok($during <= $open_xid,
	"relfrozenxid ($during) stays at or below a running writer's xid ($open_xid)");
$h->query_safe('COMMIT');
$h->quit;
# (an autovacuum ANALYZE may still hold a snapshot taken while it ran)
my $after;
for (1 .. 100)
{
	$node->safe_psql('postgres', 'VACUUM (FREEZE) f');
	$after = relfrozen();
	last if $after > $open_xid;
	usleep(100_000);
}
ok($after > $open_xid,
	"once that writer committed, VACUUM FREEZE moves past it ($after > $open_xid)");
$node->safe_psql('postgres', "DELETE FROM f WHERE id = 100001");

# --- burn past autovacuum_freeze_max_age and one pg_xact segment ---
# pg_xact/0000 holds xids below 1048576; it can go once every database's
# datfrozenxid is past that, which autovacuum brings about once the
# next xid is more than autovacuum_freeze_max_age beyond it.
my $xact0 = $node->data_dir . '/pg_xact/0000';
ok(-f $xact0, 'pg_xact/0000 exists before the burn');
$node->safe_psql('postgres',
	'SET synchronous_commit = off; CALL burn(1250000)');
my $next = $node->safe_psql('postgres', 'SELECT txid_current()');
cmp_ok($next, '>', 1_250_000, "burned xids (next xid $next)");

# autovacuum's anti-wraparound vacuums must catch up everywhere
ok($node->poll_query_until('postgres', q{
	SELECT age(relfrozenxid) < 100000 FROM pg_class WHERE relname = 'f'}),
	'autovacuum advanced the strata table\'s relfrozenxid');
ok($node->poll_query_until('postgres', q{
	SELECT min(datfrozenxid::text::bigint) > 1048576 FROM pg_database}),
	'datfrozenxid of every database moved past the first pg_xact segment');
# vac_truncate_clog runs when a database's datfrozenxid moves
for (1 .. 300)
{
	last unless -f $xact0;
	$node->safe_psql('postgres', 'SELECT txid_current()');
	$node->safe_psql('postgres', 'VACUUM (FREEZE)');
	sleep 1;
}
ok(!-f $xact0, 'the commit log segment of the pre-burn xids was truncated');

# --- rows still there, through every path ---
is($node->safe_psql('postgres', "SELECT count(*), sum(id), sum(length(v)) FROM f"),
	$expect, 'sequential scan: every row intact after the burn');
is($node->safe_psql('postgres', q{
	SET enable_seqscan = off; SET enable_bitmapscan = off;
	SELECT count(*), sum(id), sum(length(v)) FROM f WHERE id > 0}),
	$expect, 'index scan: every row intact after the burn');
is($node->safe_psql('postgres', "SELECT v FROM f WHERE id = 14"), 'v14-u',
	'an updated row reads its new value');
is($node->safe_psql('postgres', "SELECT count(*) FROM f WHERE id = 22"), '0',
	'a deleted row stays deleted');

# --- still accepting writes, also after a restart ---
$node->safe_psql('postgres', "INSERT INTO f VALUES (200000, 'after'); UPDATE f SET v = 'w' WHERE id = 1");
is($node->safe_psql('postgres', "SELECT v FROM f WHERE id IN (1, 200000) ORDER BY id"),
	"w\nafter", 'the cluster accepts writes after the burn');
$node->restart;
is($node->safe_psql('postgres', "SELECT count(*) FROM f"),
	(split(/\|/, $expect))[0] + 1, 'rows intact after a restart');
$node->safe_psql('postgres', "INSERT INTO f VALUES (200001, 'restart')");
is($node->safe_psql('postgres', "SELECT v FROM f WHERE id = 200001"), 'restart',
	'writes work after the restart');

$node->stop;
done_testing();
