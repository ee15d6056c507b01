# 029_create_database.pl — CREATE DATABASE ... TEMPLATE and ALTER DATABASE
# ... SET TABLESPACE of databases holding strata tables (src/pg/dbcopy.c,
# doc/DESIGN.md §5.2).
#  (a) a template with strata tables (rows in SSTables and in memtables,
#      updated, deleted, a rolled-back write), an index, an unlogged one, one
#      in another tablespace and one with its own codec is copied with
#      STRATEGY WAL_LOG and FILE_COPY: each copy reads as the template did
#      (every strata table checked against a heap table given the same
#      writes), under new tree ids, its index and codec working;
#  (b) writes to the template and to each copy afterwards show only where
#      they were made;
#  (c) a streaming standby that replayed it all answers as the primary;
#      a crash of the primary loses nothing (the unlogged tables come back
#      empty, as heap's), and the standby keeps up with the first writes
#      after it (xid reservations once stopped it: doc/DESIGN.md §3.1);
#  (d) ALTER DATABASE ... SET TABLESPACE moves a copy there and back, with
#      writes, a crash and the standby in between;
#  (e) a copy that fails half way (too many strata tables) leaves neither
#      PostgreSQL's files nor trees behind; DROP DATABASE of a copy frees
#      its trees.
# With STRATAGO_WAL_SINK=engine (test/run_all.sh) the standby's parts are
# left out: the engine WAL does not reach standbys.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use StrataTest;

# a standby replays PostgreSQL's WAL only: its part needs the postgres sink
my $engine_sink = ($ENV{STRATAGO_WAL_SINK} // '') eq 'engine';

my $node = strata_node('primary', { allows_streaming => 1 }, 'allow_in_place_tablespaces = on');

my $standby;
unless ($engine_sink)
{
	# before anything else: the standby builds everything by replay
	$node->backup('base');
	$standby = PostgreSQL::Test::Cluster->new('standby');
	$standby->init_from_backup($node, 'base', has_streaming => 1);
	$standby->append_conf('postgresql.conf', "allow_in_place_tablespaces = on\n");
	$standby->start;
}

$node->safe_psql('postgres', q{
	CREATE TABLESPACE ts1 LOCATION '';
	CREATE TABLESPACE ts2 LOCATION '';
	CREATE DATABASE tpl;
});
$node->safe_psql('tpl', q{
	CREATE EXTENSION stratago;
	CREATE TABLE t (id int PRIMARY KEY, v text, n int) USING strata;
	CREATE INDEX t_n ON t (n);
	CREATE TABLE h (id int PRIMARY KEY, v text, n int) USING heap;
	CREATE TABLE elsewhere (id int, v text) USING strata TABLESPACE ts1;
	CREATE UNLOGGED TABLE u (id int) USING strata;
	CREATE TABLE z (id int, v text) USING strata;
	SELECT stratago.set_compression('z', 'zstd');
});
# the same writes to t (strata) and h (heap)
sub both
{
	my ($db, $sql) = @_;
	my $sql_h = $sql =~ s/\bt\b/h/gr;
	$node->safe_psql($db, "BEGIN; $sql; $sql_h; COMMIT;");
}
both('tpl', "INSERT INTO t SELECT g, md5(g::text), g % 100 FROM generate_series(1, 20000) g");
both('tpl', "UPDATE t SET v = v || 'u', n = n + 1 WHERE id % 5 = 0");
both('tpl', "DELETE FROM t WHERE id % 9 = 0");
$node->safe_psql('tpl', q{
	INSERT INTO elsewhere SELECT g, 'e' || g FROM generate_series(1, 3000) g;
	INSERT INTO u SELECT generate_series(1, 500);
	INSERT INTO z SELECT g, repeat('z', 50) || g FROM generate_series(1, 5000) g;
	SELECT stratago.flush('t');
	SELECT stratago.flush('elsewhere');
});
# rows only in memtables, and a rolled-back write and savepoint
both('tpl', "UPDATE t SET v = 'mem' || id WHERE id % 7 = 0");
$node->safe_psql('tpl', q{
	BEGIN; INSERT INTO t VALUES (-1, 'rolled back', 0); ROLLBACK;
	BEGIN; INSERT INTO t VALUES (-2, 'kept', 0); INSERT INTO h VALUES (-2, 'kept', 0);
	SAVEPOINT s; UPDATE t SET v = 'undone' WHERE id = 1; ROLLBACK TO s; COMMIT;
});

sub digest
{
	my ($n, $db, $table) = @_;
	return $n->safe_psql($db,
		"SELECT count(*) || ':' || md5(string_agg(id || '=' || coalesce(v, ''), ',' ORDER BY id)) FROM $table");
}

# strata table t reads as heap table h, by a scan and by its index
sub check_db
{
	my ($n, $db, $label) = @_;
	is(digest($n, $db, 't'), digest($n, $db, 'h'), "$label: $db: t equals its heap twin");
	is($n->safe_psql($db, q{
		SET enable_seqscan = off; SET enable_bitmapscan = off;
		SELECT string_agg(id::text, ',' ORDER BY id) FROM t WHERE n = 42}),
		$n->safe_psql($db, "SELECT string_agg(id::text, ',' ORDER BY id) FROM h WHERE n = 42"),
		"$label: $db: an index scan finds the same rows");
}

my %expect;    # db => table => digest
$expect{tpl}{$_} = digest($node, 'tpl', $_) for qw(t elsewhere z);
like($expect{tpl}{t}, qr/^1[0-9]{4}:/, 'the template holds its rows');

# ---- (a) copies with both strategies
$node->safe_psql('postgres', 'CREATE DATABASE c_wal TEMPLATE tpl STRATEGY wal_log');
$node->safe_psql('postgres', 'CREATE DATABASE c_fc TEMPLATE tpl STRATEGY file_copy');
my %oid;
$oid{$_} = $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = '$_'")
  for qw(tpl c_wal c_fc);

sub tree_dirs
{
	my ($n, $db) = @_;
	my $dir = $n->data_dir . "/stratago/$oid{$db}";
	opendir(my $h, $dir) or return ();
	my @d = sort grep { /^\d+_\d+_[0-9a-f]+$/ } readdir($h);
	closedir($h);
	return @d;
}

for my $db (qw(c_wal c_fc))
{
	check_db($node, $db, 'copy');
	is(digest($node, $db, $_), $expect{tpl}{$_}, "copy: $db: $_ reads as in the template")
	  for qw(t elsewhere z);
	is($node->safe_psql($db, 'SELECT count(*) FROM u'), '500', "copy: $db: the unlogged table's rows are copied");
	is($node->safe_psql($db, "SELECT count(*) FROM t WHERE id = -1"), '0',
		"copy: $db: the rolled-back row stays invisible");
	my @src = map { s/_[0-9a-f]+$//r } tree_dirs($node, 'tpl');
	my @dst = map { s/_[0-9a-f]+$//r } tree_dirs($node, $db);
	is("@dst", "@src", "copy: $db: a tree for each strata relation of the template");
	my %src_ids = map { (/_([0-9a-f]+)$/)[0] => 1 } tree_dirs($node, 'tpl');
	ok(!(grep { $src_ids{ (/_([0-9a-f]+)$/)[0] } } tree_dirs($node, $db)),
		"copy: $db: under new tree ids");
	like($node->safe_psql($db, "SELECT pg_relation_filepath('elsewhere')"), qr{^pg_tblspc/},
		"copy: $db: the table in another tablespace stays there");
	$node->safe_psql($db, "SELECT stratago.compact('z')");
	is($node->safe_psql($db,
		"SELECT codec FROM stratago.sstables('z') ORDER BY level DESC LIMIT 1"), 'zstd',
		"copy: $db: the table keeps its own codec");
}

# ---- (b) writes after the copy stay where they were made
for my $db (qw(tpl c_wal c_fc))
{
	both($db, "UPDATE t SET v = '$db' || id WHERE id % 11 = 0");
	both($db, "INSERT INTO t SELECT g, '$db', 1 FROM generate_series(30001, 30100) g");
	both($db, "DELETE FROM t WHERE id BETWEEN 100 AND 200");
	$node->safe_psql($db, "INSERT INTO elsewhere VALUES (-1, '$db')");
}
for my $db (qw(tpl c_wal c_fc))
{
	check_db($node, $db, 'after writes');
	is($node->safe_psql($db, "SELECT v FROM t WHERE id = 11"), "${db}11",
		"after writes: $db sees its own update only");
	is($node->safe_psql($db, "SELECT string_agg(v, ',') FROM elsewhere WHERE id = -1"), $db,
		"after writes: $db sees its own insert only");
	$expect{$db}{$_} = digest($node, $db, $_) for qw(t elsewhere z);
}
isnt($expect{c_wal}{t}, $expect{c_fc}{t}, 'the copies differ once written');

# ---- (c) the standby, then a crash of the primary
sub check_standby
{
	my ($label) = @_;
	return if $engine_sink;
	$node->wait_for_catchup($standby, 'replay');
	for my $db (sort keys %expect)
	{
		is(digest($standby, $db, $_), $expect{$db}{$_}, "$label: standby: $db.$_ as on the primary")
		  for qw(t elsewhere z);
		check_db($standby, $db, "$label: standby");
	}
}
check_standby('copies');

crash_node($node);
restart_after_crash($node, 'copies');
for my $db (sort keys %expect)
{
	is(digest($node, $db, $_), $expect{$db}{$_}, "after a crash: $db.$_ is intact") for qw(t elsewhere z);
	check_db($node, $db, 'after a crash');
	is($node->safe_psql($db, 'SELECT count(*) FROM u'), '0',
		"after a crash: $db: the unlogged table is empty, as heap's would be");
}
# the first write after a primary's crash: the standby keeps up (xid
# reservations once made it stop, doc/DESIGN.md §3.1)
for my $db (sort keys %expect)
{
	both($db, "UPDATE t SET v = 'after crash' WHERE id = 13");
	$expect{$db}{t} = digest($node, $db, 't');
}
check_standby('after a crash');

# ---- (d) ALTER DATABASE ... SET TABLESPACE, there and back
for my $spc (qw(ts2 pg_default))
{
	$node->safe_psql('postgres', "ALTER DATABASE c_fc SET TABLESPACE $spc");
	my $path = $node->safe_psql('c_fc', "SELECT pg_relation_filepath('t')");
	if ($spc eq 'ts2') { like($path, qr{^pg_tblspc/}, "moved to $spc: t's files are there") }
	else { like($path, qr{^base/}, "moved to $spc: t's files are there") }
	is(digest($node, 'c_fc', $_), $expect{c_fc}{$_}, "moved to $spc: $_ is intact")
	  for qw(t elsewhere z);
	check_db($node, 'c_fc', "moved to $spc");
	both('c_fc', "UPDATE t SET v = '$spc' WHERE id = 12");
	$expect{c_fc}{t} = digest($node, 'c_fc', 't');
	check_standby("moved to $spc");
	crash_node($node);
	restart_after_crash($node, "moved to $spc");
	is(digest($node, 'c_fc', $_), $expect{c_fc}{$_}, "moved to $spc, after a crash: $_ is intact")
	  for qw(t elsewhere z);
	check_db($node, 'c_fc', "moved to $spc, after a crash");
}
# the trees of the old tablespace went with its files: one tree per
# relation is left
$node->safe_psql('postgres', 'CHECKPOINT');
my $deadline = time + 60;
sleep 0.2 while (scalar(tree_dirs($node, 'c_fc')) != scalar(tree_dirs($node, 'tpl')) && time < $deadline);
is(join(' ', map { s/_[0-9a-f]+$//r } tree_dirs($node, 'c_fc')),
	join(' ', map { s/_[0-9a-f]+$//r } tree_dirs($node, 'tpl')),
	'after the moves: one tree per relation, the old ones removed');

# ---- (e) DROP DATABASE frees the copy's trees; a failed copy leaves nothing
$node->safe_psql('postgres', 'DROP DATABASE c_wal');
delete $expect{c_wal};
$node->safe_psql('postgres', 'CHECKPOINT');
$deadline = time + 60;
sleep 0.2 while (tree_dirs($node, 'c_wal') && time < $deadline);
is(scalar(tree_dirs($node, 'c_wal')), 0, 'DROP DATABASE: the copy\'s trees are removed');

# a registry with room for two more trees: the copy fails on the third
sub all_trees
{
	my @all;
	for my $d (glob($node->data_dir . '/stratago/*'))
	{
		next unless -d $d && $d =~ m{/\d+$};
		opendir(my $h, $d) or next;
		push @all, map { "$d/$_" } grep { /^\d+_\d+_[0-9a-f]+$/ } readdir($h);
		closedir($h);
	}
	@all = sort @all;
	return @all;
}
# (stratago.max_tables is at least 16: fill the registry up to 14 trees)
$node->safe_psql('c_fc', "CREATE TABLE fill_$_ (i int) USING strata") for (scalar(all_trees()) + 1 .. 14);
my @before = all_trees();
is(scalar(@before), 14, 'fourteen trees before the failing copy');
my @base_before = sort glob($node->data_dir . '/base/*');
$node->append_conf('postgresql.conf', 'stratago.max_tables = ' . (scalar(@before) + 2) . "\n");
$node->restart;
my ($ret, $out, $err) = $node->psql('postgres', 'CREATE DATABASE c_fail TEMPLATE tpl');
isnt($ret, 0, 'a copy beyond stratago.max_tables fails');
like($err, qr/too many strata tables/, 'with the registry\'s error');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_database WHERE datname = 'c_fail'"), '0',
	'the failed database does not exist');
is(join(',', sort glob($node->data_dir . '/base/*')), join(',', @base_before),
	'the failed copy left no PostgreSQL files');
$deadline = time + 60;
sleep 0.2 while (join(',', all_trees()) ne join(',', @before) && time < $deadline);
is(join(',', all_trees()), join(',', @before), 'the trees the failed copy made are swept');
is(digest($node, 'tpl', 't'), $expect{tpl}{t}, 'the template is untouched');
check_standby('after a failed copy');
unless ($engine_sink)
{
	my @standby_base = grep { /^\d+$/ } map { s{.*/}{}r } sort glob($standby->data_dir . '/base/*');
	is(join(',', @standby_base), join(',', grep { /^\d+$/ } map { s{.*/}{}r } @base_before),
		'the standby removed the failed copy\'s files too');
}

$standby->stop unless $engine_sink;
$node->stop;
done_testing();
