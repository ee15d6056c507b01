# 012_unlogged_temp.pl — unlogged and temporary strata tables keep heap's
# semantics over restarts, crashes, backups and standbys:
#  - an unlogged table keeps its rows (and its index agrees) over a clean
#    restart, even rows that were only in memtables at the shutdown;
#  - after a crash it is empty, table and index together, and writable;
#  - rows a clean stop failed to write out (the UNFLUSHED marker is still
#    there) make the table refuse reads with an error until TRUNCATE,
#    never show it without them;
#  - a base backup and a standby have it empty; after promotion it is
#    writable; its rows never reach PostgreSQL's WAL;
#  - temporary tables: other sessions are refused as on heap; their trees
#    are gone after the session ends and after a crash.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use File::Find;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use StrataTest;

my $node = strata_node('unlogged', 'stratago.memtable_size = 256kB',
	'max_wal_senders = 4', 'hot_standby = on');
my $pgdata = $node->data_dir;

$node->safe_psql('postgres', q{
	CREATE UNLOGGED TABLE ul (id int PRIMARY KEY, v text) USING strata;
	CREATE TABLE lg (id int PRIMARY KEY, v text) USING strata;
	INSERT INTO ul SELECT g, repeat('u', 50) || g FROM generate_series(1, 20000) g;
	INSERT INTO lg SELECT g, 'l' || g FROM generate_series(1, 100) g;
});

# What a sequential scan and an index scan see of ul.
sub ul_state
{
	my ($n) = @_;
	$n //= $node;
	return $n->safe_psql('postgres', q{
		SET enable_indexscan = off; SET enable_bitmapscan = off;
		SELECT count(*), coalesce(sum(id), 0) FROM ul;
		SET enable_seqscan = off; SET enable_indexscan = on;
		SELECT count(*) FROM ul WHERE id BETWEEN 1 AND 1000000;
		SELECT v FROM ul WHERE id = 7;
	});
}

sub unflushed_markers
{
	my @found;
	find(sub { push @found, $File::Find::name if $_ eq 'UNFLUSHED' },
		"$pgdata/stratago");
	return scalar @found;
}

# The rows are in memtables (256kB each) and partly in SSTables.
is(ul_state(), "20000|200010000\n20000\n" . ('u' x 50) . "7",
	'unlogged table holds its rows');
ok(unflushed_markers() >= 1, 'an unlogged tree with rows in memory has its marker');

# Unlogged rows never go to PostgreSQL's WAL: 20000 rows of ~60 bytes
# would be over 1 MB of it.
my $lsn0 = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
$node->safe_psql('postgres',
	q{INSERT INTO ul SELECT g, repeat('w', 100) FROM generate_series(100001, 120000) g;
	  DELETE FROM ul WHERE id > 100000});
my $wal = $node->safe_psql('postgres',
	"SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$lsn0')");
cmp_ok($wal, '<', 200_000, "20000 unlogged inserts and deletes wrote $wal bytes of WAL");

$node->restart;
is(ul_state(), "20000|200010000\n20000\n" . ('u' x 50) . "7",
	'a clean restart keeps every row of the unlogged table');
is(unflushed_markers(), 0, 'the shutdown wrote out the memtables and removed the markers');

# A crash empties it: table and index together, then it is writable.
$node->safe_psql('postgres', q{UPDATE ul SET v = 'changed' WHERE id <= 10});
crash_node($node);
$node->start;
is(ul_state(), "0|0\n0", 'after a crash the unlogged table is empty');
is($node->safe_psql('postgres', 'SELECT count(*) FROM lg'), '100',
	'the logged table kept its rows');
$node->safe_psql('postgres',
	q{INSERT INTO ul SELECT g, 'n' || g FROM generate_series(1, 10) g});
is(ul_state(), "10|55\n10\nn7", 'and is writable again, its index too');

# Rows a clean stop did not write out: simulate the worker failing to
# flush by putting the marker back while the server is stopped.
my $ul_rfn = $node->safe_psql('postgres',
	q{SELECT relfilenode FROM pg_class WHERE relname = 'ul'});
$node->stop;
my ($ul_dir) = grep { m{/\d+_${ul_rfn}_[0-9a-f]+$} } glob("$pgdata/stratago/*/*");
ok(defined $ul_dir, 'found the unlogged tree directory');
open(my $fh, '>', "$ul_dir/UNFLUSHED") or die "marker: $!";
close($fh);
$node->start;
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM ul');
isnt($ret, 0, 'a table that lost rows at the stop is refused');
like($err, qr/unlogged table "ul" lost rows when the server last stopped/,
	'with an error naming it');
like(slurp_file($node->logfile),
	qr/lost rows that were not written out/, 'and a WARNING at startup');
$node->restart;
($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM ul');
isnt($ret, 0, 'still refused after another clean restart');
$node->safe_psql('postgres', 'TRUNCATE ul');
$node->safe_psql('postgres',
	q{INSERT INTO ul SELECT g, 'p' || g FROM generate_series(1, 50) g});
is(ul_state(), "50|1275\n50\np7", 'TRUNCATE makes it usable again');

# A base backup and a standby: the unlogged table exists, empty.
$node->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('unlogged_standby');
$standby->init_from_backup($node, 'bk', has_streaming => 1);
$standby->start;
$node->safe_psql('postgres',
	q{INSERT INTO ul VALUES (1000, 'after backup'); INSERT INTO lg VALUES (1000, 'x')});
$node->wait_for_catchup($standby, 'replay', $node->lsn('insert'));
# (only PostgreSQL's WAL carries strata rows to standbys: the engine sink
# serves single servers)
is($standby->safe_psql('postgres', 'SELECT count(*) FROM lg'), '101',
	'the standby has the logged rows')
  unless ($ENV{STRATAGO_WAL_SINK} // 'postgres') eq 'engine';
($ret, $out, $err) = $standby->psql('postgres', 'SELECT count(*) FROM ul');
like($err, qr/cannot access temporary or unlogged relations during recovery/,
	'the standby refuses the unlogged table as for heap');
$standby->promote;
is(ul_state($standby), "0|0\n0", 'after promotion the unlogged table is empty');
$standby->safe_psql('postgres', q{INSERT INTO ul VALUES (7, 'promoted')});
is(ul_state($standby), "1|7\n1\npromoted", 'and writable');
$standby->stop;

# Temporary tables: private to their session, gone with it.
my $in = '';
my $outp = '';
my $h = IPC::Run::start(
	[ 'psql', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres') ],
	'<', \$in, '>', \$outp, '2>', \$outp);
$in .= q{CREATE TEMP TABLE tt (id int PRIMARY KEY, v text) USING strata;
INSERT INTO tt SELECT g, 't' || g FROM generate_series(1, 1000) g;
SELECT 'schema=' || nspname FROM pg_class c JOIN pg_namespace n ON n.oid = relnamespace WHERE relname = 'tt';
SELECT stratago.flush('tt');
SELECT 'count=' || count(*) FROM tt;
};
$h->pump until $outp =~ /count=1000/ || $outp =~ /ERROR/;
like($outp, qr/count=1000/, 'a temporary strata table works in its session');
my ($schema) = $outp =~ /schema=(\S+)/;
($ret, $out, $err) = $node->psql('postgres', "SELECT count(*) FROM $schema.tt");
like($err, qr/cannot access temporary tables of other sessions/,
	'another session is refused');
my @temp_trees = grep { m{/t\d+_} } glob("$pgdata/stratago/*/*");
is(scalar @temp_trees, 1, 'the temporary table has one tree, marked temporary');
$in .= "\\q\n";
$h->finish;
$node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM pg_class WHERE relname = 'tt'})
  or die 'temp table not dropped';
my $gone = 0;
for (1 .. 100)
{
	$gone = !grep { m{/t\d+_} } glob("$pgdata/stratago/*/*");
	last if $gone;
	usleep(100_000);
}
ok($gone, 'its tree is removed once the session ended');

# A session that is killed leaves its temporary tree: a restart removes it.
$in = '';
$outp = '';
$h = IPC::Run::start(
	[ 'psql', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres') ],
	'<', \$in, '>', \$outp, '2>', \$outp);
$in .= q{CREATE TEMP TABLE tk (id int) USING strata;
INSERT INTO tk SELECT generate_series(1, 100);
SELECT 'ready';
};
$h->pump until $outp =~ /ready/;
crash_node($node);
$h->finish;
$node->start;
is(scalar(grep { m{/t\d+_} } glob("$pgdata/stratago/*/*")), 0,
	'after a crash no temporary tree is left');
is($node->safe_psql('postgres', 'SELECT count(*) FROM lg'), '101',
	'and the logged table is intact');

$node->stop;
done_testing();
