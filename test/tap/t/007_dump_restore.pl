# 007_dump_restore.pl — strata tables travel and keep their identity:
#  - pg_dump / pg_restore (custom format) and a plain-format dump through
#    psql recreate every table USING strata, with the same rows, indexes
#    and constraints, into a new database;
#  - rewritten tables (VACUUM FULL, SET TABLESPACE, column type change)
#    survive a restart with their rows, and the old trees are removed;
#  - after VACUUM removed the rows with the highest row ids, a restart
#    never hands those TIDs out again (SSTables record a high-water mark).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use StrataTest;

my $node = strata_node('dump');
my $tmp = PostgreSQL::Test::Utils::tempdir;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
CREATE EXTENSION stratago;
CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric CHECK (balance >= 0)) USING strata;
CREATE INDEX accounts_owner ON accounts (owner);
CREATE TABLE events (id bigserial PRIMARY KEY, account int REFERENCES accounts, payload jsonb, at timestamptz DEFAULT '2026-01-01') USING strata;
SET default_table_access_method = strata;
CREATE TABLE by_default (k text UNIQUE, v bytea);
RESET default_table_access_method;
CREATE TABLE plain_heap (x int) USING heap;
INSERT INTO accounts SELECT g, 'owner' || (g % 37), g * 10 FROM generate_series(1, 3000) g;
UPDATE accounts SET balance = balance + 1 WHERE id % 4 = 0;
UPDATE accounts SET owner = owner || 'x' WHERE id % 9 = 0;
DELETE FROM accounts WHERE id % 13 = 0;
INSERT INTO events (account, payload) SELECT id, jsonb_build_object('n', id, 's', repeat('e', id % 300)) FROM accounts WHERE id % 3 = 0;
INSERT INTO by_default SELECT 'k' || g, decode(md5(g::text), 'hex') FROM generate_series(1, 500) g;
INSERT INTO plain_heap SELECT generate_series(1, 10);
SELECT stratago.compact('accounts');
});

my %queries = (
	accounts => 'SELECT md5(string_agg(format(\'%s|%s|%s\', id, owner, balance), \',\' ORDER BY id)) FROM accounts',
	events => 'SELECT md5(string_agg(format(\'%s|%s|%s|%s\', id, account, payload, at), \',\' ORDER BY id)) FROM events',
	by_default => 'SELECT md5(string_agg(k || encode(v, \'hex\'), \',\' ORDER BY k)) FROM by_default',
	plain_heap => 'SELECT sum(x) FROM plain_heap');
my $am_query = q{SELECT string_agg(c.relname || '=' || a.amname, ',' ORDER BY c.relname)
	FROM pg_class c JOIN pg_am a ON a.oid = c.relam
	WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace};
my %expect = map { $_ => $node->safe_psql('src', $queries{$_}) } keys %queries;
my $expect_am = $node->safe_psql('src', $am_query);
is($expect_am, 'accounts=strata,by_default=strata,events=strata,plain_heap=heap',
	'source tables use the expected access methods');

sub check_copy
{
	my ($db, $how) = @_;
	is($node->safe_psql($db, $am_query), $expect_am, "$how: tables recreated USING strata");
	for my $t (sort keys %queries)
	{
		is($node->safe_psql($db, $queries{$t}), $expect{$t}, "$how: $t has the same rows");
	}
	is($node->safe_psql($db, q{
		SET enable_seqscan = off; SET enable_bitmapscan = off;
		SELECT count(*), sum(balance) FROM accounts WHERE owner = 'owner5'}),
		$node->safe_psql('src', q{SELECT count(*), sum(balance) FROM accounts WHERE owner = 'owner5'}),
		"$how: index scans agree");
	my ($ret, $out, $err) = $node->psql($db, "INSERT INTO accounts VALUES (1, 'dup', 0)");
	like($err, qr/duplicate key value violates unique constraint "accounts_pkey"/,
		"$how: the primary key is enforced");
	($ret, $out, $err) = $node->psql($db, "INSERT INTO events (account) VALUES (13)");
	like($err, qr/violates foreign key constraint/, "$how: the foreign key is enforced");
	$node->safe_psql($db, "INSERT INTO accounts VALUES (100000, 'new', 1); UPDATE accounts SET balance = 0 WHERE id = 1");
	is($node->safe_psql($db, "SELECT balance FROM accounts WHERE id IN (1, 100000) ORDER BY id"),
		"0\n1", "$how: the copy takes writes");
}

# --- custom format through pg_restore ---
my $dump = "$tmp/src.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ],
	'pg_dump -Fc');
$node->safe_psql('postgres', 'CREATE DATABASE dst_custom TEMPLATE template0');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('dst_custom'), $dump ],
	'pg_restore into a new database');
check_copy('dst_custom', 'pg_restore');

# --- plain format through psql ---
my $sql = "$tmp/src.sql";
$node->command_ok([ 'pg_dump', '-f', $sql, '-d', $node->connstr('src') ], 'pg_dump plain');
my $text = slurp_file($sql);
like($text, qr/SET default_table_access_method = strata;/,
	'the plain dump names the access method');
$node->safe_psql('postgres', 'CREATE DATABASE dst_plain TEMPLATE template0');
$node->command_ok([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-q', '-f', $sql, '-d', $node->connstr('dst_plain') ],
	'plain dump restored with psql');
check_copy('dst_plain', 'plain dump');

# --- rewritten tables survive a restart ---
my $tsdir = "$tmp/ts";
mkdir $tsdir or die "mkdir $tsdir: $!";
$node->safe_psql('src', qq{
CREATE TABLESPACE strata_ts LOCATION '$tsdir';
VACUUM FULL accounts;
ALTER TABLE by_default SET TABLESPACE strata_ts;
ALTER TABLE events ALTER COLUMN account TYPE bigint;
});
my $srcoid = $node->safe_psql('src', "SELECT oid FROM pg_database WHERE datname = 'src'");
$node->restart;
for my $t ('accounts', 'by_default')
{
	is($node->safe_psql('src', $queries{$t}), $expect{$t}, "$t intact after rewrite and restart");
}
is($node->safe_psql('src', 'SELECT count(*), sum(account) FROM events'),
	$node->safe_psql('dst_custom', 'SELECT count(*), sum(account) FROM events WHERE account IS NOT NULL'),
	'events intact after its column type change and a restart');
# the old trees of rewritten tables go once PostgreSQL removed their files
$node->safe_psql('src', 'CHECKPOINT');
my $want = $node->safe_psql('src', q{
	SELECT count(*) FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'strata'});
my $trees;
for (1 .. 100)
{
	opendir(my $dh, $node->data_dir . "/stratago/$srcoid") or die "opendir: $!";
	$trees = grep { !/^\./ } readdir($dh);
	closedir($dh);
	last if $trees == $want;
	usleep(100_000);
}
is($trees, $want, "one tree per strata relation after the rewrites ($want)");

# --- row ids of removed rows are never handed out again ---
$node->safe_psql('src', q{
CREATE TABLE hw (id int PRIMARY KEY, v text) USING strata;
INSERT INTO hw SELECT g, 'v' || g FROM generate_series(1, 2000) g;
});
my $maxtid = $node->safe_psql('src', 'SELECT max(ctid) FROM hw');
$node->safe_psql('src', 'DELETE FROM hw WHERE id > 1000');
# VACUUM reaps them; the compaction after it (which a plain VACUUM leaves
# to the worker) removes them from the SSTables
$node->safe_psql('src', 'VACUUM hw');
$node->safe_psql('src', "SELECT stratago.compact('hw')");
is($node->safe_psql('src', qq{SELECT max(largest_tid) < '$maxtid'
	FROM stratago.sstables('hw')}), 't',
	'VACUUM and compaction removed the rows with the highest row ids from the SSTables');
$node->safe_psql('src', 'SELECT stratago.flush(\'hw\')');
$node->restart;
$node->safe_psql('src', "INSERT INTO hw VALUES (5000, 'after restart')");
ok($node->safe_psql('src', "SELECT ctid > '$maxtid' FROM hw WHERE id = 5000") eq 't',
	"a new row after the restart gets a TID past every one handed out before ($maxtid)");

$node->stop;
done_testing();
