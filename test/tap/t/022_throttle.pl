# 022_throttle.pl — stratago.maintenance_write_rate paces the maintenance
# worker's SSTable writes (throttle.c):
#  - with the rate set (by reload) to 512 kB/s, stratago.compact() of a table
#    takes at least the bytes its flush and compaction wrote divided by
#    the rate, less the burst the rate allows (0.1 s);
#  - meanwhile a foreground INSERT into another strata table commits while
#    the throttled compaction is still running: the pacing holds back the
#    worker's writes, not the backends';
#  - the rows are all there afterwards, and back at 0 (no limit) compact()
#    works as before.
# Only a lower bound on time is asserted: a slower machine only makes the
# throttled compaction longer.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use StrataTest;

my $node = strata_node('throttle', 'autovacuum = off');
my $rate = 512 * 1024;    # bytes per second

# About 3 MB of SSTables: hex digits compress to little more than half.
$node->safe_psql('postgres', q{
	CREATE TABLE t (id int, v text) USING strata;
	INSERT INTO t SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 60000) g;
	CREATE TABLE fg (id int) USING strata;
});

$node->append_conf('postgresql.conf', 'stratago.maintenance_write_rate = 512kB');
$node->reload;
$node->poll_query_until('postgres',
	"SELECT current_setting('stratago.maintenance_write_rate') = '512kB'")
  or die 'reload';
# the worker reads its settings between rounds: let it take this one in
usleep(1_500_000);

my $written_sql = q{SELECT flush_bytes + compaction_bytes FROM stratago.table_stats('t')};
my $before = $node->safe_psql('postgres', $written_sql);

my ($out, $err) = ('', '');
my $t0 = time;
my $compact = IPC::Run::start(
	[ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
	  '-c', "SELECT stratago.compact('t')" ],
	'>', \$out, '2>', \$err);

# the job shows in stratago.maintenance_progress while it runs
my $progress = '';
for (1 .. 400)
{
	$progress = $node->safe_psql('postgres', q{
		SELECT job, level, written_bytes > 0, input_bytes > 0 FROM stratago.maintenance_progress
		 WHERE relid = 't'::regclass AND job = 'manual compaction'});
	last if $progress =~ /\|t\|t$/;
	usleep(50_000);
}
like($progress, qr/^manual compaction\|\d+\|t\|t$/,
	'stratago.maintenance_progress shows the manual compaction, its input and what it has written');

# a foreground write while the worker is paced
my $fg_t0 = time;
$node->safe_psql('postgres', 'INSERT INTO fg SELECT generate_series(1, 1000)');
my $fg_elapsed = time - $fg_t0;
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_stat_activity
	 WHERE query LIKE '%stratago.compact%' AND state = 'active' AND pid <> pg_backend_pid()}),
	'1', 'the throttled compaction is still running after the foreground INSERT')
  or diag("INSERT took $fg_elapsed s");
is($node->safe_psql('postgres', 'SELECT count(*) FROM fg'), '1000',
	'the foreground INSERT committed');

ok($compact->finish, 'the throttled compact() completes') or diag($err);
my $elapsed = time - $t0;
my $written = $node->safe_psql('postgres', $written_sql) - $before;
my $expected = $written / $rate - 0.1;
cmp_ok($written, '>', 1_000_000, "the flush and compaction wrote $written bytes");
cmp_ok($elapsed, '>=', $expected,
	sprintf('compact() took %.2f s, at least the %.2f s that %d bytes take at 512 kB/s',
		$elapsed, $expected, $written));
is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM t'),
	'60000|1800030000', 'every row is there after the throttled compaction');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM stratago.maintenance_progress WHERE relid = 't'::regclass}),
	'0', 'once it is done, the job no longer shows');

# no limit again
$node->append_conf('postgresql.conf', 'stratago.maintenance_write_rate = 0');
$node->reload;
$node->poll_query_until('postgres',
	"SELECT current_setting('stratago.maintenance_write_rate') = '0'")
  or die 'reload';
$node->safe_psql('postgres', q{UPDATE t SET v = v || 'x' WHERE id % 2 = 0});
$node->safe_psql('postgres', q{SELECT stratago.compact('t')});
is($node->safe_psql('postgres', q{SELECT count(*), count(*) FILTER (WHERE v LIKE '%x') FROM t}),
	'60000|30000', 'compact() without a limit works as before');

$node->stop;
done_testing();
