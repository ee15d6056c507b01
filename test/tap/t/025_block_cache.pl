# 025_block_cache.pl — the shared block cache (src/pg/blockcache.h) under
# pressure: a cache of 1MB (three slots a partition) in front of a table
# of some 450 blocks, so nearly every insert evicts, read by four pgbench
# clients at once whose every lookup checks the row it got; then lookups
# racing updates, flushes and compactions (files replaced under the cached
# blocks), each client checking that a row read twice never goes back to
# an older version; scans use the cache only for small tables, range
# reads by index whatever the table's size. Then the
# same reads with the cache turned off
# (stratago.block_cache_size = 0): no cache traffic, the same answers.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use StrataTest;

my $node = strata_node('blockcache', "stratago.block_cache_size = '1MB'");
is($node->safe_psql('postgres', 'SHOW stratago.block_cache_size'), '1MB', 'a 1MB cache');

# Rows in two files and the memtable: every tenth row updated after the
# first flush (its newest version in a second file), every hundredth
# after the second (in the memtable).
$node->safe_psql('postgres', q{
	CREATE TABLE t (id int PRIMARY KEY, pad text) USING strata;
	INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
	SELECT stratago.flush('t');
	UPDATE t SET pad = pad || 'u' WHERE id % 10 = 0;
	SELECT stratago.flush('t');
	UPDATE t SET pad = pad || 'v' WHERE id % 100 = 0;
});

# What row id should hold, as SQL over id.
my $expected = q{md5(id::text) || CASE WHEN id % 10 = 0 THEN 'u' ELSE '' END
	|| CASE WHEN id % 100 = 0 THEN 'v' ELSE '' END};

# Each transaction fetches one random row by index and divides by zero
# unless it is there and right: a wrong answer fails the client.
my $script = $node->basedir . '/lookups.sql';
PostgreSQL::Test::Utils::append_to_file($script,
	"\\set id random(1, 20000)\n"
	  . "SELECT 1 / (count(*) FILTER (WHERE pad = $expected))::int FROM t WHERE id = :id;\n");

sub run_lookups
{
	my ($clients, $xacts) = @_;
	my ($out, $err) = ('', '');
	local $ENV{PGOPTIONS} = '-c enable_seqscan=off -c enable_bitmapscan=off';
	my $ok = IPC::Run::run(
		[
			'pgbench', '-n', '-c', $clients, '-j', 2, '-t', $xacts,
			'-f', $script, '-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$out, '2>', \$err);
	my ($done) = $out =~ /number of transactions actually processed: (\d+)/;
	diag($err) unless $ok;
	return $ok ? $done : -1;
}

# One backend reading 3000 random rows twice: (right answers, hits, misses).
sub read_twice
{
	my $out = $node->safe_psql('postgres', qq{
		SET enable_seqscan = off;
		SET enable_bitmapscan = off;
		SET enable_hashjoin = off;
		SET enable_mergejoin = off;
		SELECT count(*) FILTER (WHERE r.pad = $expected)
		  FROM (SELECT (g * 7919) % 20000 + 1 AS id FROM generate_series(1, 3000) g
				UNION ALL
				SELECT (g * 7919) % 20000 + 1 FROM generate_series(1, 3000) g) q,
			   LATERAL (SELECT pad FROM t WHERE t.id = q.id) r;
		SELECT block_cache_hits || ' ' || block_cache_misses FROM stratago.read_stats();
	});
	my ($right, $stats) = split /\n/, $out;
	my ($hits, $misses) = split / /, $stats;
	return ($right, $hits, $misses);
}

is(run_lookups(4, 3000), 12000, 'four clients, 12000 checked lookups through an evicting cache');
my ($right, $hits, $misses) = read_twice();
is($right, 6000, 'every row right when read twice');
cmp_ok($hits, '>', 100, 'the second pass finds blocks in the cache');
cmp_ok($misses, '>', 192, 'more blocks than slots: evicted ones are read again');

$node->safe_psql('postgres', q{
	UPDATE t SET pad = pad WHERE id % 7 = 0;
	SELECT stratago.compact('t');
});
is(run_lookups(4, 1000), 4000, 'after a compaction, lookups in the new files are right');

# Scans go through the cache only for a table a quarter of it or smaller
# (strata_block_cache_fits_scan): a second scan of a small table, in
# another backend, is answered from the cache; a table of some 450 blocks
# (more than the cache) is read around it, with no lookup at all.
# (rows, hits, misses) of one scan in a fresh backend:
sub scan_stats
{
	my ($table) = @_;
	my $out = $node->safe_psql('postgres', qq{
		SELECT count(*), sum(length(pad)) FROM $table;
		SELECT block_cache_hits || ' ' || block_cache_misses FROM stratago.read_stats();
	});
	my ($rows, $stats) = split /\n/, $out;
	return ($rows, split / /, $stats);
}
$node->safe_psql('postgres', q{
	CREATE TABLE small (id int, pad text) USING strata;
	INSERT INTO small SELECT g, md5(g::text) FROM generate_series(1, 1000) g;
	SELECT stratago.flush('small');
	CREATE TABLE big (id int, pad text) USING strata;
	INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
	SELECT stratago.flush('big');
});
my ($rows, $h1, $m1) = scan_stats('small');
is($rows, '1000|32000', 'small table: the scan is right');
my ($rows2, $h2, $m2) = scan_stats('small');
is($rows2, $rows, 'small table: the scan from the cache is right');
cmp_ok($m1, '>', 5, 'small table: the first scan read its blocks');
cmp_ok($h2, '>=', $m1 / 2, 'small table: a second scan finds them in the cache');
($rows, $h1, $m1) = scan_stats('big');
is($rows, '20000|640000', 'big table: the scan is right');
is($h1 + $m1, 0, 'big table: the scan reads around the cache');

# A range read by index goes through the cache however big the table: the
# row fetcher's view reads the few blocks near its index entries, again
# and again across statements, as lookups do. 2000 rows of t are some 40
# blocks; a view reading as a scan reads would have looked up only the
# block of its first seek.
my $range = $node->safe_psql('postgres', q{
	SET enable_seqscan = off;
	SET enable_bitmapscan = off;
	SELECT count(*) || ' ' || count(*) FILTER (WHERE pad = } . $expected . q{)
	  FROM t WHERE id BETWEEN 5001 AND 7000;
	SELECT block_cache_hits + block_cache_misses FROM stratago.read_stats();
});
my ($range_rows, $range_blocks) = split /\n/, $range;
is($range_rows, '2000 2000', 'a range read by index is right');
cmp_ok($range_blocks, '>', 20,
	'a range read by index reads its blocks through the cache, though the table is bigger than a quarter of it');

# Lookups racing writes: rows 1..200 get new versions all the time (n
# counts them, pad follows n), a client flushes and compacts the table
# over and over, and four readers each read a row, then read it again in
# a later transaction: the second read must be as new or newer, and
# consistent (pad = md5(id || n)). Any failure fails its client.
$node->safe_psql('postgres', q{
	CREATE TABLE h (id int PRIMARY KEY, n int, pad text) USING strata;
	INSERT INTO h SELECT g, 0, md5(g::text || '0') FROM generate_series(1, 200) g;
	INSERT INTO h SELECT g, 0, md5(g::text || '0') FROM generate_series(201, 20000) g;
	SELECT stratago.flush('h');
});
my %scripts = (
	writer => "\\set id random(1, 200)\n"
	  . "UPDATE h SET n = n + 1, pad = md5(id::text || (n + 1)::text) WHERE id = :id;\n",
	maintainer => "SELECT stratago.flush('h');\n\\sleep 100 ms\n"
	  . "SELECT stratago.compact('h');\n\\sleep 100 ms\n",
	reader => "\\set id random(1, 400)\n"
	  . "SELECT n FROM h WHERE id = :id \\gset\n"
	  . "SELECT 1 / (count(*) FILTER (WHERE n >= :n AND pad = md5(id::text || n::text)))::int "
	  . "FROM h WHERE id = :id;\n");
my %harness;
for my $role (sort keys %scripts)
{
	my $file = $node->basedir . "/$role.sql";
	PostgreSQL::Test::Utils::append_to_file($file, $scripts{$role});
	my $clients = $role eq 'reader' ? 4 : $role eq 'writer' ? 2 : 1;
	local $ENV{PGOPTIONS} = '-c enable_seqscan=off -c enable_bitmapscan=off';
	$harness{$role}{out} = '';
	$harness{$role}{err} = '';
	$harness{$role}{h} = IPC::Run::start(
		[
			'pgbench', '-n', '-c', $clients, '-j', 1, '-T', 8, '-f', $file,
			'-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$harness{$role}{out}, '2>', \$harness{$role}{err});
}
for my $role (sort keys %scripts)
{
	my $ok = $harness{$role}{h}->finish;
	diag($harness{$role}{err}) unless $ok;
	ok($ok, "racing writes: the $role clients all finished without a failed check");
	my ($done) = $harness{$role}{out} =~ /number of transactions actually processed: (\d+)/;
	cmp_ok($done // 0, '>', ($role eq 'maintainer' ? 3 : 100), "racing writes: the $role clients did work");
}
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM h WHERE pad <> md5(id::text || n::text)}), '0',
	'racing writes: every row consistent at the end');
cmp_ok($node->safe_psql('postgres', 'SELECT sum(n) FROM h'), '>', 100,
	'racing writes: the writers wrote');

$node->append_conf('postgresql.conf', 'stratago.block_cache_size = 0');
$node->restart;
($right, $hits, $misses) = read_twice();
is($right, 6000, 'no cache: every row right');
is($hits + $misses, 0, 'no cache: no cache traffic');
is(run_lookups(2, 1000), 2000, 'no cache: checked lookups');

$node->stop;
done_testing();
