# 014_engine_wal.pl — the engine WAL sink (stratago.wal_sink = engine) at
# the PostgreSQL level, through stratago.wal_stats():
#  - group commit: 8 pgbench clients committing small transactions on a
#    strata table share fsyncs (syncs < commits), while one client alone
#    syncs once per commit;
#  - stratago.sync = off: commits issue no fsync at all, and the rows are
#    there;
#  - recycling: after writing more than 3 segments, flushing every table
#    lets the worker delete the segments every tree has flushed past, and
#    a crash restart afterwards loses nothing.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use StrataTest;

# (strata_node puts STRATAGO_WAL_SINK first: the last setting wins)
my $node = strata_node('engine_wal', 'stratago.wal_sink = engine',
	'stratago.memtable_size = 32MB', 'max_wal_size = 4GB');
my $waldir = $node->data_dir . '/stratago/wal';

sub wal_stats
{
	my ($c, $s, $r) = split /\|/,
	  $node->safe_psql('postgres', 'SELECT commits, syncs, segments_removed FROM stratago.wal_stats()');
	return { commits => $c, syncs => $s, removed => $r };
}

sub segments
{
	opendir(my $d, $waldir) or die "opendir $waldir: $!";
	my @s = grep { /^[0-9A-F]{16}\.wal$/ } readdir($d);
	closedir($d);
	return scalar(@s);
}

$node->safe_psql('postgres', q{
	CREATE TABLE gc (client int, n int, pad text) USING strata;
	CREATE TABLE big (id int, pad text) USING strata;
});

# --- group commit ---
my $script = $node->basedir . '/gc.sql';
PostgreSQL::Test::Utils::append_to_file($script,
	"INSERT INTO gc VALUES (:client_id, :scale, repeat('g', 100));\n");

sub run_pgbench
{
	my ($clients, $xacts) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[
			'pgbench', '-n', '-c', $clients, '-j', 2, '-t', $xacts,
			'-f', $script, '-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$out, '2>', \$err) or die "pgbench failed: $err";
	$out =~ /number of transactions actually processed: (\d+)/
	  or die "no transaction count in pgbench output: $out";
	return $1;
}

my $before = wal_stats();
is(run_pgbench(1, 200), 200, 'one client: 200 transactions');
my $after = wal_stats();
is($after->{commits} - $before->{commits}, 200, 'one client: 200 commits counted');
is($after->{syncs} - $before->{syncs}, 200, 'one client: one fsync per commit');

$before = $after;
my $n = run_pgbench(8, 250);
is($n, 2000, '8 clients: 2000 transactions');
$after = wal_stats();
my $commits = $after->{commits} - $before->{commits};
my $syncs = $after->{syncs} - $before->{syncs};
is($commits, 2000, '8 clients: 2000 commits counted');
cmp_ok($syncs, '<', $commits, "8 clients share fsyncs: $syncs syncs for $commits commits");
is($node->safe_psql('postgres', 'SELECT count(*) FROM gc'), '2200', 'every row committed is there');

# --- stratago.sync = off ---
my $sql = "SET stratago.sync = off;\n";
$sql .= "INSERT INTO gc VALUES (-1, $_, 'unsynced');\n" for 1 .. 50;
$before = wal_stats();
$node->safe_psql('postgres', $sql);
$after = wal_stats();
is($after->{commits} - $before->{commits}, 50, 'sync = off: 50 commits counted');
is($after->{syncs} - $before->{syncs}, 0, 'sync = off: no fsync for them');
is($node->safe_psql('postgres', "SELECT count(*), sum(n) FROM gc WHERE pad = 'unsynced'"),
	'50|1275', 'sync = off: the rows read back');

# --- segments every tree has flushed past are deleted ---
# gc's memtable (far below memtable_size) holds records from the first
# segment: no segment may go while it is unflushed, however much the
# other table flushes. Then more than three 64 MB segments of rows (the
# log is not compressed).
$node->safe_psql('postgres',
	"INSERT INTO big SELECT g, repeat(md5(g::text), 64) FROM generate_series(1, 120000) g");
my $nseg = segments();
cmp_ok($nseg, '>', 3, "the engine WAL holds $nseg segments");
$node->safe_psql('postgres', "SELECT stratago.flush('big')");
usleep(500_000);    # ten rounds of the worker (naptime 50ms)
is(segments(), $nseg, 'flushing one table keeps segments another table still needs');
is(wal_stats()->{removed}, 0, 'no segment was removed so far');
$node->safe_psql('postgres', q{
	SELECT stratago.flush(c.oid) FROM pg_class c JOIN pg_am a ON a.oid = c.relam
	 WHERE a.amname = 'strata';
});
my $ok = 0;
for (1 .. 300)
{
	if (segments() == 1) { $ok = 1; last; }
	usleep(100_000);
}
ok($ok, 'after flushing every table only the current segment is left');
is(wal_stats()->{removed}, $nseg - 1, 'wal_stats counts the removed segments');

crash_node($node);
restart_after_crash($node, 'after recycling');
is($node->safe_psql('postgres', 'SELECT count(*), sum(length(pad)) FROM big'),
	'120000|' . (120000 * 2048), 'after a crash every row is still there');
is($node->safe_psql('postgres', 'SELECT count(*) FROM gc'), '2250', 'and so are the small ones');

$node->stop;
done_testing();
