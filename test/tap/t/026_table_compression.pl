# 026_table_compression.pl — a table's own bottom-level codec
# (stratago.set_compression, stratago.compression; src/pg/compression.c):
#  (a) set to zstd, the next compaction writes zstd, every row reads back;
#      a choice rolled back never reaches the files; back to default: lz4;
#  (b) commands that give the table a new tree keep the choice: TRUNCATE,
#      VACUUM FULL, CLUSTER, ALTER TABLE rewrite, SET TABLESPACE;
#  (c) stratago.compression gives new tables (CREATE TABLE, CREATE TABLE
#      AS, a temporary table) the codec, recorded like set_compression's;
#  (d) refused for a table one does not own, a heap table, an unknown
#      codec; a dropped table's row goes with it;
#  (e) a crash right after the choice: the files still get it; an
#      unlogged table, emptied by the crash as on heap, keeps its choice;
#  (f) pg_dump and restore carry the choice to the restored tables;
#  (g) a streaming standby gets the choice by WAL, and after promotion
#      compacts with it.
# The codec is observed where it matters, in the SSTables compaction
# writes (stratago.sstables).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use StrataTest;

# streaming for (g): the helper's node has none by default
my $node = strata_node('tabcomp', 'autovacuum = off', 'max_wal_senders = 10');
$node->set_replication_conf;
$node->reload;

# Compact table $t (database $db) and return the codecs of its files.
sub codecs_after_compact
{
	my ($n, $t, $db) = @_;
	$db //= 'postgres';
	$n->safe_psql($db, "SELECT stratago.compact('$t')");
	return $n->safe_psql($db, "SELECT string_agg(DISTINCT codec, ',') FROM stratago.sstables('$t')");
}

sub fill
{
	my ($n, $t, $db) = @_;
	$db //= 'postgres';
	$n->safe_psql($db, qq{
		INSERT INTO $t SELECT g, 'widget ' || (g % 500) || ' ' || md5((g % 1000)::text)
		  FROM generate_series(1, 20000) g});
}

sub contents
{
	my ($n, $t, $db) = @_;
	return $n->safe_psql($db // 'postgres',
		"SELECT count(*), sum(id), md5(string_agg(v::text, ',' ORDER BY id)) FROM $t");
}

# --- (a)
$node->safe_psql('postgres', 'CREATE TABLE z (id int PRIMARY KEY, v text) USING strata');
fill($node, 'z');
my $expect = contents($node, 'z');
is(codecs_after_compact($node, 'z'), 'lz4', '(a) by default the bottom level is lz4');
$node->safe_psql('postgres', "SELECT stratago.set_compression('z', 'zstd')");
is($node->safe_psql('postgres', q{SELECT relation || ':' || codec FROM stratago.compression}),
	'z:zstd', '(a) the choice is a row of stratago.compression');
is(codecs_after_compact($node, 'z'), 'zstd', '(a) set to zstd: compaction writes zstd');
is(contents($node, 'z'), $expect, '(a) every row reads back');
$node->safe_psql('postgres', "BEGIN; SELECT stratago.set_compression('z', 'lz4'); ROLLBACK");
is(codecs_after_compact($node, 'z'), 'zstd', '(a) a choice rolled back never reaches the files');
$node->safe_psql('postgres', "SELECT stratago.set_compression('z', 'default')");
is($node->safe_psql('postgres', 'SELECT count(*) FROM stratago.compression'), '0',
	'(a) default removes the row');
is(codecs_after_compact($node, 'z'), 'lz4', '(a) back to default: lz4 again');
$node->safe_psql('postgres', "SELECT stratago.set_compression('z', 'zstd')");

# --- (b)
my $tsdir = $node->basedir . '/ts1';
mkdir $tsdir or die "mkdir $tsdir: $!";
$node->safe_psql('postgres', "CREATE TABLESPACE ts1 LOCATION '$tsdir'");
my @rewrites = (
	['TRUNCATE', "TRUNCATE z"],
	['VACUUM FULL', "VACUUM FULL z"],
	['CLUSTER', "CLUSTER z USING z_pkey"],
	['ALTER TABLE rewrite', "ALTER TABLE z ALTER COLUMN v TYPE varchar(200)"],
	['SET TABLESPACE', "ALTER TABLE z SET TABLESPACE ts1"],
	['SET TABLESPACE back', "ALTER TABLE z SET TABLESPACE pg_default"]);
for my $r (@rewrites)
{
	my ($name, $sql) = @$r;
	my $before = $node->safe_psql('postgres', "SELECT pg_relation_filenode('z')");
	$node->safe_psql('postgres', $sql);
	isnt($node->safe_psql('postgres', "SELECT pg_relation_filenode('z')"), $before,
		"(b) $name gives the table a new tree");
	fill($node, 'z') if $name eq 'TRUNCATE';
	is(codecs_after_compact($node, 'z'), 'zstd', "(b) $name keeps the choice");
}
is(contents($node, 'z'), $expect, '(b) every row reads back after the rewrites');

# --- (c)
$node->safe_psql('postgres', q{
	SET stratago.compression = zstd;
	CREATE TABLE n1 (id int, v text) USING strata;
	CREATE TABLE n2 USING strata AS SELECT g AS id, 'as ' || g AS v FROM generate_series(1, 5000) g;
	CREATE TABLE n3 (id int, v text);
});
is($node->safe_psql('postgres',
	"SELECT string_agg(relation || ':' || codec, ',' ORDER BY relation::text) FROM stratago.compression"),
	'n1:zstd,n2:zstd,z:zstd', '(c) stratago.compression records new strata tables, not heap ones');
fill($node, 'n1');
is(codecs_after_compact($node, 'n1'), 'zstd', '(c) CREATE TABLE under stratago.compression: zstd');
is(codecs_after_compact($node, 'n2'), 'zstd', '(c) CREATE TABLE AS under stratago.compression: zstd');
is($node->safe_psql('postgres', q{
	SET stratago.compression = zstd;
	CREATE TEMP TABLE tt (id int, v text) USING strata;
	INSERT INTO tt SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
	SELECT stratago.compact('tt');
	SELECT string_agg(DISTINCT codec, ',') FROM stratago.sstables('tt')}),
	"\nzstd", '(c) a temporary table gets it too (in its tree alone)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM stratago.compression WHERE relation::text LIKE '%tt'}),
	'0', '(c) a temporary table has no row to dump');

# --- (d)
$node->safe_psql('postgres', 'CREATE ROLE intruder LOGIN; GRANT USAGE ON SCHEMA stratago TO intruder');
my ($ret, $out, $err) = $node->psql('postgres', "SELECT stratago.set_compression('z', 'lz4')",
	extra_params => ['-U', 'intruder']);
like($err, qr/must be owner of table z/, '(d) only the owner may choose');
($ret, $out, $err) = $node->psql('postgres', "SELECT stratago.set_compression('n3', 'zstd')");
like($err, qr/"n3" is not a strata table/, '(d) a heap table is refused');
($ret, $out, $err) = $node->psql('postgres', "SELECT stratago.set_compression('z', 'brotli')");
like($err, qr/unrecognized compression "brotli"/, '(d) an unknown codec is refused');
($ret, $out, $err) = $node->psql('postgres', "INSERT INTO stratago.compression VALUES ('z', 'lz4')",
	extra_params => ['-U', 'intruder']);
like($err, qr/permission denied/, '(d) the table itself is not writable by others');
# an ordinary role that owns its table sets the codec (the configuration
# table is written and read with its owner's rights)
$node->safe_psql('postgres', q{
	CREATE ROLE owner2 LOGIN;
	GRANT USAGE ON SCHEMA stratago TO owner2;
	GRANT CREATE ON SCHEMA public TO owner2;
});
($ret, $out, $err) = $node->psql('postgres', q{
	CREATE TABLE o2 (id int, v text) USING strata;
	SELECT stratago.set_compression('o2', 'zstd');
	TRUNCATE o2;
	ALTER TABLE o2 ALTER COLUMN v TYPE varchar(200);
	INSERT INTO o2 SELECT g, md5(g::text) FROM generate_series(1, 5000) g;},
	extra_params => ['-U', 'owner2']);
is($err, '', '(d) a table\'s owner without privileges on the extension\'s table sets the codec');
is(codecs_after_compact($node, 'o2'), 'zstd', '(d) and it reaches the files, across TRUNCATE and a rewrite');
$node->safe_psql('postgres', 'DROP TABLE o2');
$node->safe_psql('postgres', 'DROP TABLE n1');
is($node->safe_psql('postgres',
	"SELECT string_agg(relation::text, ',' ORDER BY relation::text) FROM stratago.compression"),
	'n2,z', '(d) a dropped table loses its row');

# --- (e)
$node->safe_psql('postgres', q{
	CREATE TABLE c (id int PRIMARY KEY, v text) USING strata;
	SELECT stratago.set_compression('c', 'zstd');
	CREATE UNLOGGED TABLE u (id int PRIMARY KEY, v text) USING strata;
	SELECT stratago.set_compression('u', 'zstd');
});
fill($node, 'c');
fill($node, 'u');
my $c_expect = contents($node, 'c');
crash_node($node);
restart_after_crash($node, '(e)');
is(codecs_after_compact($node, 'c'), 'zstd', '(e) after a crash the files still get the choice');
is(contents($node, 'c'), $c_expect, '(e) and every row is back');
is($node->safe_psql('postgres', 'SELECT count(*) FROM u'), '0', '(e) the unlogged table was emptied');
fill($node, 'u');
is(codecs_after_compact($node, 'u'), 'zstd', '(e) and kept its choice');

# --- (f)
my $dumpfile = $node->basedir . '/dump.sql';
$node->command_ok(['pg_dump', '-d', $node->connstr('postgres'), '-f', $dumpfile], '(f) pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('restored'),
	'-f', $dumpfile], '(f) restore');
is($node->safe_psql('restored',
	"SELECT string_agg(relation || ':' || codec, ',' ORDER BY relation::text) FROM stratago.compression"),
	'c:zstd,n2:zstd,u:zstd,z:zstd', '(f) the choices are restored');
is(codecs_after_compact($node, 'z', 'restored'), 'zstd', '(f) and reach the restored tables');
is(contents($node, 'z', 'restored'), $expect, '(f) with every row');

# --- (g)
# (a base backup needs a mapping for a tablespace inside the data's parent)
$node->safe_psql('postgres', 'DROP DATABASE restored');
$node->safe_psql('postgres', 'DROP TABLESPACE ts1');
$node->safe_psql('postgres', q{CREATE TABLE s (id int PRIMARY KEY, v text) USING strata});
$node->safe_psql('postgres', 'SELECT stratago.flush(oid) FROM pg_class WHERE relam = (SELECT oid FROM pg_am WHERE amname = $$strata$$)');
$node->safe_psql('postgres', 'CHECKPOINT');
$node->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('tabcomp_standby');
$standby->init_from_backup($node, 'b1', has_streaming => 1);
$standby->start;
$node->safe_psql('postgres', "SELECT stratago.set_compression('s', 'zstd')");
fill($node, 's');
$node->wait_for_catchup($standby);
is(contents($standby, 's'), contents($node, 's'), '(g) the standby has the rows');
$standby->promote;
is(codecs_after_compact($standby, 's'), 'zstd', '(g) promoted, the standby compacts with the choice');
is(codecs_after_compact($standby, 'z'), 'zstd', '(g) also for a choice made before the backup');

$standby->stop;
$node->stop;
done_testing();
