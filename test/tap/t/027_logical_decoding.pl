# 027_logical_decoding.pl — logical decoding of strata tables
# (src/pg/logical.h): the same DML on a heap table and on a strata table
# gives the same test_decoding output, table name aside, under every
# replica identity; inserts one by one, by COPY (one record for a batch)
# and by INSERT ... ON CONFLICT; updates that keep and that change the
# TID, and that change the key; deletes; rollbacks and savepoints;
# TRUNCATE; pg_logical_emit_message inside and outside a transaction; a
# prepared transaction decoded with two_phase; a large
# transaction streamed, and one spilled to disk; changes of an origin
# filtered; a temporary table, which decodes to nothing; wal2json's JSON
# for both alike. And what it costs: WAL bytes of the same updates at
# wal_level = replica (no LOGICAL records) and logical.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use StrataTest;

my $node = strata_node('logical', 'wal_level = logical', 'max_replication_slots = 4',
	'max_prepared_transactions = 4', 'logical_decoding_work_mem = 64kB');

# One table per access method and replica identity, the same columns.
my @identities = ('default', 'full', 'nothing', 'index');
for my $am ('heap', 'strata')
{
	for my $ri (@identities)
	{
		my $t = "t_${ri}_$am";
		$node->safe_psql('postgres', qq{
			CREATE TABLE $t (id int PRIMARY KEY, k int NOT NULL, v text, n int) USING $am;
			CREATE UNIQUE INDEX ${t}_k ON $t (k);
			CREATE INDEX ${t}_n ON $t (n);
		});
		$node->safe_psql('postgres',
			$ri eq 'index' ? "ALTER TABLE $t REPLICA IDENTITY USING INDEX ${t}_k"
			: "ALTER TABLE $t REPLICA IDENTITY " . uc($ri));
	}
}
$node->safe_psql('postgres',
	"SELECT pg_create_logical_replication_slot('ld', 'test_decoding')");

# The workload, T standing for the table. Each statement is its own
# transaction unless grouped.
my $copy_rows = join('', map { "$_\t$_\tcopied\t$_\n" } (100 .. 149));
my $script = q{
INSERT INTO T VALUES (1, 10, 'one', 1);
COPY T FROM STDIN;
} . $copy_rows . q{\.
DELETE FROM T WHERE id >= 100;
INSERT INTO T SELECT g, g * 10, repeat('x', g), g FROM generate_series(2, 6) g;
COPY T FROM STDIN;
7	70	seven	7
8	80	eight	8
\.
UPDATE T SET v = 'one again' WHERE id = 1;
UPDATE T SET n = 20 WHERE id = 2;
UPDATE T SET k = 31 WHERE id = 3;
UPDATE T SET id = 40 WHERE id = 4;
DELETE FROM T WHERE id = 5;
BEGIN; INSERT INTO T VALUES (9, 90, 'rolled back', 9); UPDATE T SET v = 'no' WHERE id = 1; ROLLBACK;
BEGIN; INSERT INTO T VALUES (10, 100, 'kept', 10); SAVEPOINT s; INSERT INTO T VALUES (11, 110, 'undone', 11); DELETE FROM T WHERE id = 6; ROLLBACK TO s; UPDATE T SET v = 'after savepoint' WHERE id = 10; COMMIT;
INSERT INTO T VALUES (1, 12, 'conflict', 1) ON CONFLICT DO NOTHING;
INSERT INTO T VALUES (12, 120, 'no conflict', 12) ON CONFLICT DO NOTHING;
INSERT INTO T VALUES (12, 120, 'upserted', 12) ON CONFLICT (id) DO UPDATE SET v = excluded.v;
INSERT INTO T VALUES (13, 130, NULL, NULL);
UPDATE T SET v = NULL, n = NULL WHERE id = 7;
DELETE FROM T WHERE id IN (7, 8);
TRUNCATE T;
INSERT INTO T VALUES (14, 140, 'after truncate', 14);
SELECT pg_logical_emit_message(false, 'note', 'not transactional');
BEGIN; INSERT INTO T VALUES (15, 150, 'beside a message', 15); SELECT pg_logical_emit_message(true, 'note', 'hello'); UPDATE T SET v = 'after the message' WHERE id = 15; COMMIT;
};

# Run the script on table t and return what test_decoding makes of it, the
# table's name replaced by T.
sub decoded
{
	my ($t, $slot, $sql, @options) = @_;
	$sql =~ s/\bT\b/$t/g;
	$node->safe_psql('postgres', $sql);
	# test_decoding's usual options, unless another plugin's are given
	@options = ('include-xids', '0', 'skip-empty-xacts', '1', @options)
	  unless $slot eq 'ldjson';
	my $opts = join('', map { ", '$_'" } @options);
	my $out = $node->safe_psql('postgres',
		"SELECT data FROM pg_logical_slot_get_changes('$slot', NULL, NULL$opts)");
	$out =~ s/\b$t\b/T/g;
	return $out;
}

for my $ri (@identities)
{
	my $heap = decoded("t_${ri}_heap", 'ld', $script);
	my $strata = decoded("t_${ri}_strata", 'ld', $script);
	like($heap, qr/INSERT: id\[integer\]:14/, "replica identity $ri: heap's changes decoded");
	like($heap, qr/INSERT: id\[integer\]:15 .*\nmessage: transactional: 1 prefix: note, sz: 5 content:hello\n.*UPDATE: /,
		"replica identity $ri: the transactional message decoded in place");
	is($strata, $heap, "replica identity $ri: strata decodes as heap does");
}

# A third-party output plugin, wal2json (Debian's postgresql-15-wal2json,
# which tools/install-deps.sh installs): the same JSON for both.
# (servers from 15.20 on name the plugins replication users may load)
if ($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_settings WHERE name = 'output_plugin_libraries'") eq '1')
{
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET output_plugin_libraries = pgoutput, test_decoding, wal2json");
	$node->reload;
	$node->poll_query_until('postgres',
		"SELECT current_setting('output_plugin_libraries') LIKE '%wal2json%'")
	  or die 'output_plugin_libraries not reloaded';
}
$node->safe_psql('postgres',
	"SELECT pg_create_logical_replication_slot('ldjson', 'wal2json')");
$node->safe_psql('postgres', "SELECT pg_replication_slot_advance('ldjson', pg_current_wal_lsn())");
for my $ri ('default', 'full')
{
	my $json = q{INSERT INTO T VALUES (30, 300, 'json', 3); UPDATE T SET v = 'json 2' WHERE id = 30;
UPDATE T SET id = 31 WHERE id = 30; DELETE FROM T WHERE id = 31;};
	my $heap = decoded("t_${ri}_heap", 'ldjson', $json, 'format-version', '2');
	my $strata = decoded("t_${ri}_strata", 'ldjson', $json, 'format-version', '2');
	$heap =~ s/"xid":\d+/"xid":X/g;
	$strata =~ s/"xid":\d+/"xid":X/g;
	like($heap, qr/"action":"D"/, "wal2json, replica identity $ri: heap's delete decoded");
	is($strata, $heap, "wal2json, replica identity $ri: strata's JSON is heap's");
}
$node->safe_psql('postgres', "SELECT pg_drop_replication_slot('ldjson')");
$node->safe_psql('postgres', "SELECT pg_replication_slot_advance('ld', pg_current_wal_lsn())");

# What the outputs say, beyond their being equal: the key change carries
# the old key under DEFAULT, the whole old row under FULL.
my $default = decoded('t_default_strata', 'ld',
	"INSERT INTO T VALUES (20, 200, 'a', 1); UPDATE T SET id = 21 WHERE id = 20; DELETE FROM T WHERE id = 21;");
like($default, qr/UPDATE: old-key: id\[integer\]:20 new-tuple: id\[integer\]:21/,
	'DEFAULT: a key change carries the old key');
like($default, qr/DELETE: id\[integer\]:21\n/, 'DEFAULT: a delete carries the key');
my $full = decoded('t_full_strata', 'ld',
	"INSERT INTO T VALUES (20, 200, 'a', 1); UPDATE T SET v = 'b' WHERE id = 20;");
like($full, qr/UPDATE: old-key: id\[integer\]:20 k\[integer\]:200 v\[text\]:'a' n\[integer\]:1 new-tuple/,
	'FULL: an update carries the whole old row');

# A large transaction streamed (logical_decoding_work_mem = 64kB), and a
# prepared one decoded at PREPARE: the same as heap's.
$node->safe_psql('postgres',
	"SELECT pg_create_logical_replication_slot('ld2pc', 'test_decoding', false, true)");
my $big = q{BEGIN; INSERT INTO T SELECT g, g, repeat('big', 20), g FROM generate_series(1000, 3000) g;
UPDATE T SET n = n + 1 WHERE id BETWEEN 1000 AND 1500; DELETE FROM T WHERE id > 2500; COMMIT;};
for my $ri ('default')
{
	my $heap = decoded("t_${ri}_heap", 'ld', $big, 'stream-changes', '1');
	my $strata = decoded("t_${ri}_strata", 'ld', $big, 'stream-changes', '1');
	like($heap, qr/opening a streamed block/, 'the large transaction was streamed for heap');
	is($strata, $heap, 'a streamed large transaction decodes as heap\'s');
	# the same, not streamed: spilled to disk past logical_decoding_work_mem
	(my $again = $big) =~ s/BETWEEN 1000 AND 1500/BETWEEN 1500 AND 2000/;
	$again =~ s/generate_series\(1000, 3000\)/generate_series(10000, 12000)/;
	$heap = decoded("t_${ri}_heap", 'ld', $again);
	$strata = decoded("t_${ri}_strata", 'ld', $again);
	unlike($heap, qr/streamed/, 'the spilled transaction was not streamed');
	is($strata, $heap, 'a large transaction spilled to disk decodes as heap\'s');
	$node->safe_psql('postgres', 'SELECT pg_replication_slot_advance(\'ld2pc\', pg_current_wal_lsn())');
	my $prep = q{BEGIN; INSERT INTO T VALUES (5000, 5000, 'prepared', 1); UPDATE T SET v = 'p' WHERE id = 1000;
PREPARE TRANSACTION 'T';};
	$heap = decoded("t_${ri}_heap", 'ld2pc', $prep);
	$strata = decoded("t_${ri}_strata", 'ld2pc', $prep);
	like($heap, qr/PREPARE TRANSACTION/, 'the prepared transaction is decoded at PREPARE for heap');
	is($strata, $heap, 'a prepared transaction decodes as heap\'s');
	$heap = decoded("t_${ri}_heap", 'ld2pc', "COMMIT PREPARED 'T'");
	$strata = decoded("t_${ri}_strata", 'ld2pc', "COMMIT PREPARED 'T'");
	is($strata, $heap, 'its COMMIT PREPARED decodes as heap\'s');
	$node->safe_psql('postgres', 'SELECT pg_replication_slot_advance(\'ld\', pg_current_wal_lsn())');
}

# Changes made under a replication origin are left out when the plugin
# asks (only-local), as heap's are.
$node->safe_psql('postgres', "SELECT pg_replication_origin_create('elsewhere')");
my $origin = q{SELECT pg_replication_origin_session_setup('elsewhere');
INSERT INTO T VALUES (6000, 6000, 'from elsewhere', 1);
SELECT pg_replication_origin_session_reset();
INSERT INTO T VALUES (6001, 6001, 'local', 1);};
my $local = decoded('t_default_strata', 'ld', $origin, 'only-local', '1');
unlike($local, qr/6000/, 'only-local: the change of another origin is filtered out');
like($local, qr/6001/, 'only-local: the local change is decoded');

# Nothing of the rolled-back work, and the slot reads no LOGICAL record of
# a temporary table (not logically logged).
$node->safe_psql('postgres', q{
	CREATE TEMP TABLE tmp (id int) USING strata;
});
my $tmp = decoded('t_default_strata', 'ld',
	'BEGIN; CREATE TEMP TABLE tmp2 (id int) USING strata; INSERT INTO tmp2 VALUES (1); COMMIT;');
is($tmp, '', 'a temporary strata table decodes to nothing');

# The cost in WAL: the same 1000 single-row updates at logical and at
# replica (LOGICAL records written only at logical).
sub update_wal_bytes
{
	my $start = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
	$node->safe_psql('postgres',
		"DO \$\$ BEGIN FOR i IN 1..1000 LOOP UPDATE t_default_strata SET n = n + 1 WHERE id = 1000 + i % 100; END LOOP; END \$\$");
	return $node->safe_psql('postgres', "SELECT pg_current_wal_lsn() - '$start'");
}
my $at_logical = update_wal_bytes();
$node->safe_psql('postgres', "SELECT pg_drop_replication_slot('ld'), pg_drop_replication_slot('ld2pc')");
$node->append_conf('postgresql.conf', 'wal_level = replica');
$node->restart;
my $at_replica = update_wal_bytes();
cmp_ok($at_logical, '>', $at_replica, 'LOGICAL records are written at wal_level = logical only');
diag("WAL bytes of 1000 updates of one int column: $at_replica at replica, $at_logical at logical");

$node->stop;
done_testing();
