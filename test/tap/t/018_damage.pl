# 018_damage.pl — damage to one strata table, and a full disk, stay local.
#
#  (a) CURRENT deleted, garbled or emptied, or the MANIFEST truncated or
#      zeroed, while the server is down: the server starts, the table is
#      refused with XX001 and a hint, other tables work, not one file of
#      the damaged table is deleted or rewritten, and its changes still
#      only in the log are kept. Putting the file back and restarting
#      brings every committed row back, and its index is intact (amcheck
#      with heapallindexed). Before: a missing CURRENT emptied the table
#      and deleted its SSTables; a damaged MANIFEST stopped the cluster.
#  (b) A corrupt SSTable block under compaction and under VACUUM: the
#      caller gets XX001, the maintenance worker stays up (same pid),
#      records the failure in table_stats and the log, and the other
#      tables flush, compact and vacuum; dropping the bad table ends it.
#      Before: the worker crash-looped, compact() never returned, and
#      every table's flush and VACUUM failed, also after the DROP.
#  (c) $PGDATA/stratago on a small filesystem (STRATAGO_SMALL_FS, a tmpfs
#      test/run_all.sh mounts as root): once memtable memory is used up
#      and flushes fail with ENOSPC, writers get 53100 (disk_full) naming
#      the file within seconds instead of waiting for ever; when space
#      returns, writes go on by themselves and nothing committed is lost.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use File::Path ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use StrataTest;

my $node = strata_node('damage', 'autovacuum = off',
	'stratago.memtable_memory = 16MB', 'stratago.memtable_size = 1MB');
my $pgdata = $node->data_dir;
$node->safe_psql('postgres', q{
	CREATE EXTENSION amcheck;
	CREATE TABLE bad (id int PRIMARY KEY, v text) USING strata;
	CREATE TABLE good (id int PRIMARY KEY, v text) USING strata;
	INSERT INTO bad SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
	INSERT INTO good SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
	SELECT stratago.flush('bad');
	SELECT stratago.flush('good');
});

sub contents
{
	my ($table) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*), sum(id), md5(string_agg(v, ',' ORDER BY id)) FROM $table");
}

sub tree_dir
{
	my ($table) = @_;
	my ($db, $relnode) = split /\|/, $node->safe_psql('postgres',
		"SELECT d.oid, pg_relation_filenode('$table') FROM pg_database d WHERE datname = 'postgres'");
	my @dirs = glob("$pgdata/stratago/$db/*_${relnode}_*");
	is(scalar(@dirs), 1, "one tree directory for $table");
	return $dirs[0];
}

# name => size and a checksum of every file in a directory
sub listing
{
	my ($dir) = @_;
	opendir(my $h, $dir) or die "opendir $dir: $!";
	my @names = sort grep { !/^\.\.?$/ } readdir($h);
	closedir($h);
	return join(',', map { my $p = "$dir/$_"; "$_:" . (-s $p) . ':' . slurp_md5($p) } @names);
}

sub slurp_md5
{
	require Digest::MD5;
	return Digest::MD5::md5_hex(slurp_file($_[0]));
}

sub write_file
{
	my ($path, $data) = @_;
	open(my $f, '>:raw', $path) or die "open $path: $!";
	print $f $data;
	close($f);
}

my $good_expected = contents('good');

# --- (a) damaged CURRENT or MANIFEST, found at startup ---
my @damages = (
	[ 'CURRENT deleted', sub { unlink("$_[0]/CURRENT") or die $!; } ],
	[ 'CURRENT garbled', sub { write_file("$_[0]/CURRENT", "MANIFEST-zz\n"); } ],
	[ 'CURRENT emptied', sub { write_file("$_[0]/CURRENT", ''); } ],
	[ 'MANIFEST truncated', sub { write_file(manifest_of($_[0]), ''); } ],
	[ 'MANIFEST zeroed', sub { write_file(manifest_of($_[0]), "\0" x (-s manifest_of($_[0]))); } ],
);

sub manifest_of
{
	my ($dir) = @_;
	my @m = glob("$dir/MANIFEST-*");
	is(scalar(@m), 1, 'one MANIFEST');
	return $m[0];
}

my $next_id = 5001;
for my $d (@damages)
{
	my ($what, $damage) = @$d;

	# rows that are only in the log (the last flush was before them)
	$node->safe_psql('postgres',
		"INSERT INTO bad SELECT g, md5(g::text) FROM generate_series($next_id, $next_id + 99) g");
	$next_id += 100;
	my $expected = contents('bad');
	my $dir = tree_dir('bad');
	$node->stop;

	my @saved = map { [ $_, -e $_ ? slurp_file($_) : undef ] } ("$dir/CURRENT", manifest_of($dir));
	$damage->($dir);
	my $before = listing($dir);
	my $log_start = -s $node->logfile;

	$node->start;
	my ($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM bad');
	isnt($ret, 0, "$what: the damaged table is refused");
	like($err, qr/ERROR:  strata table "bad" is damaged/, "$what: XX001 names the table");
	like($err, qr/HINT:  Restore the table's files from a backup/, "$what: with a hint");
	my $log = slurp_file($node->logfile, $log_start);
	like($log, qr/WARNING:  stratago: strata storage of relfilenode \d+\/\d+\/\d+ is damaged/,
		"$what: the log says which tree at startup");
	is(contents('good'), $good_expected, "$what: the other table reads");
	$node->safe_psql('postgres', "INSERT INTO good VALUES (100000 + $next_id, 'x')");
	$node->safe_psql('postgres', "SELECT stratago.flush('good')");
	$good_expected = contents('good');
	is(listing($dir), $before, "$what: no file of the damaged table was deleted or changed");

	$node->stop;
	for my $s (@saved)
	{
		my ($path, $data) = @$s;
		write_file($path, $data) if defined $data;
	}
	$node->start;
	is(contents('bad'), $expected, "$what: restored, every committed row is back (log included)");
	is($node->safe_psql('postgres', q{
		SET enable_seqscan = off; SET enable_bitmapscan = off;
		SELECT count(*) FROM bad WHERE id BETWEEN 1 AND 100000}),
		(split /\|/, $expected)[0], "$what: the index finds them all");
	$node->safe_psql('postgres', q{SELECT bt_index_check('bad_pkey', true)});
	pass("$what: amcheck finds every row in the index");
}


# --- (b) a corrupt SSTable block under compaction and VACUUM ---
$node->safe_psql('postgres', q{
	CREATE TABLE cbad (id int, v text) USING strata;
	INSERT INTO cbad SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 4000) g;
	SELECT stratago.flush('cbad');
	INSERT INTO cbad SELECT g, repeat(md5(g::text), 4) FROM generate_series(4001, 8000) g;
	SELECT stratago.flush('cbad');
});
my $cdir = tree_dir('cbad');
my ($sst) = glob("$cdir/*.sst");
{
	open(my $f, '+<:raw', $sst) or die $!;
	seek($f, int((-s $sst) / 3), 0);
	print $f "\xde\xad\xbe\xef" x 4;
	close($f);
}
my $worker = worker_pid($node);
my $t0 = time;
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT stratago.compact('cbad')},
	timeout => 120);
isnt($ret, 0, 'corrupt block: compact() fails');
like($err, qr/stratago maintenance of this table failed: .*(checksum|corrupt)/,
	'corrupt block: the caller gets the corruption');
cmp_ok(time - $t0, '<', 60, 'corrupt block: compact() returns');
is(worker_pid($node), $worker, 'corrupt block: the maintenance worker stayed up');
is($node->safe_psql('postgres',
	q{SELECT failed_jobs > 0, last_error ~ '(checksum|corrupt)' FROM stratago.table_stats('cbad')}),
	't|t', 'corrupt block: table_stats shows the failure');
like(slurp_file($node->logfile), qr/WARNING:  stratago: maintenance of relfilenode \d+\/\d+\/\d+ failed/,
	'corrupt block: the log says so');
($ret, $out, $err) = $node->psql('postgres', 'VACUUM cbad', timeout => 120);
isnt($ret, 0, 'corrupt block: VACUUM of the bad table fails');
like($err, qr/(checksum|corrupt)/, 'corrupt block: VACUUM says why');
$node->safe_psql('postgres', q{
	INSERT INTO good VALUES (300000, 'after the bad compaction');
	SELECT stratago.flush('good');
	SELECT stratago.compact('good');
	VACUUM good;
});
$good_expected = contents('good');
pass('corrupt block: the other table flushes, compacts and vacuums');
is(worker_pid($node), $worker, 'corrupt block: still the same worker');

$node->safe_psql('postgres', 'DROP TABLE cbad; CHECKPOINT;');
$node->poll_query_until('postgres', q{SELECT 1}, '1');
my $log_mark = -s $node->logfile;
sleep(3);
$node->safe_psql('postgres', q{SELECT stratago.flush('good')});
unlike(slurp_file($node->logfile, $log_mark), qr/maintenance of relfilenode .* failed/,
	'corrupt block: after the DROP no job of it fails any more');
ok(!-d $cdir, 'corrupt block: the dropped tree is removed');
is(worker_pid($node), $worker, 'corrupt block: the worker never restarted');

# --- (c) a full disk under $PGDATA/stratago ---
my $stopped = 0;
SKIP:
{
	my $small = $ENV{STRATAGO_SMALL_FS};
	skip 'STRATAGO_SMALL_FS not set: test/run_all.sh mounts a small tmpfs as root for this', 1
	  unless $small && -d $small && -w $small;

	$node->stop;
	my $moved = "$small/stratago-" . $$;
	system('mv', "$pgdata/stratago", $moved) == 0 or die "mv: $?";
	symlink($moved, "$pgdata/stratago") or die "symlink: $!";
	$node->start;
	$node->safe_psql('postgres', 'CREATE TABLE full_t (id int, v text) USING strata');

	# leave about 2 MB free on the small filesystem
	my $avail = `df --output=avail -B1 '$small' | tail -1`;
	chomp $avail;
	my $filler = "$small/filler";
	open(my $f, '>:raw', $filler) or die $!;
	my $chunk = "\0" x (1 << 20);
	for (my $left = $avail - 2 * (1 << 20); $left > 0; $left -= length($chunk))
	{
		last unless print $f $chunk;
	}
	close($f);

	my $committed = 0;
	my $batch = 0;
	my ($got, $elapsed);
	while ($batch < 200)
	{
		my $lo = $batch * 1000 + 1;
		my $t = time;
		($ret, $out, $err) = $node->psql('postgres',
			"SET statement_timeout = '90s'; INSERT INTO full_t SELECT g, repeat('x', 1000) FROM generate_series($lo, $lo + 999) g",
			timeout => 120);
		$elapsed = time - $t;
		if ($ret != 0) { $got = $err; last; }
		$committed += 1000;
		$batch++;
	}
	ok(defined $got, "full disk: a writer got an error (after $committed rows)");
	like($got // '', qr/ERROR:  (could not make room for strata changes: )?strata storage is out of disk space: .*"[^"]+".*No space left on device/,
		'full disk: the error is disk_full and names the file');
	unlike($got // '', qr/statement timeout/, 'full disk: not a timeout');
	cmp_ok($elapsed, '<', 60, 'full disk: the writer was told within a bounded time');
	($ret, $out, $err) = $node->psql('postgres', q{
		DO $$BEGIN INSERT INTO full_t SELECT g, repeat('x', 1000) FROM generate_series(1, 20000) g;
		EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'sqlstate %', SQLSTATE; END$$},
		timeout => 120);
	like($err, qr/NOTICE:  sqlstate 53100/, 'full disk: the SQLSTATE is disk_full (53100)');

	unlink($filler) or die $!;
	$node->poll_query_until('postgres', q{
		SELECT last_error IS NULL FROM stratago.table_stats('full_t')}, 't')
	  or die 'flushes did not resume';
	$node->safe_psql('postgres',
		"INSERT INTO full_t SELECT g, repeat('y', 1000) FROM generate_series(1000001, 1002000) g");
	$committed += 2000;
	is($node->safe_psql('postgres', 'SELECT count(*) FROM full_t'), $committed,
		'full disk: space back, writes resume and every committed row is there');
	$node->restart;
	is($node->safe_psql('postgres', 'SELECT count(*) FROM full_t'), $committed,
		'full disk: and after a restart');
	is(contents('good'), $good_expected, 'full disk: the other table too');
	# the small filesystem is shared with the run under the other WAL sink
	$node->stop;
	$stopped = 1;
	File::Path::rmtree($moved);
}

$node->stop unless $stopped;
done_testing();
