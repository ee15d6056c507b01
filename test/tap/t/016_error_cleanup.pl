# 016_error_cleanup.pl — a statement that fails in the middle of reading a
# strata table gives back what it held in shared memory:
#  - a sequential scan ended by an error, by a statement timeout, and a
#    cursor's scan in a subtransaction rolled back, each hold memtable
#    pins (reference counts in the shared arena) when they stop; after the
#    table's memtable is flushed, the arena holds only the new, empty
#    memtable again (before the fix every such error kept a flushed
#    memtable's chunks forever, and enough of them stop every writer);
#  - a cursor of the outer transaction keeps reading after a rolled-back
#    subtransaction, and commits without a leaked-reference WARNING;
#  - a long-lived session whose scan of SSTables failed does not keep
#    those files open once compaction replaced them (its local version
#    was released at the abort, not leaked with its file descriptors).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use StrataTest;

my $node = strata_node('error_cleanup', 'autovacuum = off');

sub arena_used
{
	return $node->safe_psql('postgres',
		'SELECT arena_used_bytes FROM stratago.memory_stats()');
}

$node->safe_psql('postgres', q{
	CREATE TABLE lk (a int, b text) USING strata;
	INSERT INTO lk SELECT g, repeat('x', 200) FROM generate_series(1, 3000) g;
	CREATE FUNCTION slow(int) RETURNS int LANGUAGE sql AS 'SELECT $1 FROM pg_sleep(0.01)';
});
my $held = arena_used();
cmp_ok($held, '>', 65536 * 4, "the table's memtable holds $held bytes");

my ($ret, $out, $err) = $node->psql('postgres', 'SELECT 1 / (a - 1500) FROM lk');
like($err, qr/division by zero/, 'a scan ended by an error');
($ret, $out, $err) = $node->psql('postgres',
	q{SET statement_timeout = '200ms'; SELECT slow(a) FROM lk});
like($err, qr/canceling statement due to statement timeout/,
	'a scan ended by a statement timeout');
($ret, $out, $err) = $node->psql('postgres', q{
	BEGIN;
	DECLARE c CURSOR FOR SELECT a FROM lk;
	FETCH 2 FROM c;
	SAVEPOINT s;
	SELECT 1 / (a - 1500) FROM lk;
	ROLLBACK TO SAVEPOINT s;
	FETCH 1 FROM c;
	COMMIT;
}, on_error_stop => 0);
like($out, qr/^1\n2\n3$/m, 'the outer cursor reads on after the rolled-back subtransaction');

$node->safe_psql('postgres', q{SELECT stratago.flush('lk')});
is(arena_used(), 0,
	'after the flush the arena holds nothing (no pin was left behind, and a flushed table keeps no empty memtable)');
unlike(slurp_file($node->logfile), qr/memtable pin leaked/, 'no leaked-pin WARNING');
is($node->safe_psql('postgres', 'SELECT count(*), sum(a) FROM lk'), '3000|4501500',
	'the rows are all there');

# A long-lived session: a scan over SSTables fails, then compaction
# replaces those files; once the session reads again, it must not hold
# any deleted SSTable open.
$node->safe_psql('postgres', q{SELECT stratago.flush('lk')});
my ($in, $outp) = ('', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-A', '-t', '-d', $node->connstr('postgres') ],
	'<', \$in, '>', \$outp, '2>', \$outp);
$in .= "SELECT 'pid=' || pg_backend_pid();\nSELECT 1 / (a - 1500) FROM lk;\nSELECT 'failed';\n";
$h->pump until $outp =~ /failed/;
my ($pid) = $outp =~ /pid=(\d+)/;
like($outp, qr/division by zero/, 'the long-lived session failed a scan over SSTables');
$node->safe_psql('postgres', q{SELECT stratago.compact('lk')});
$in .= "SELECT 'count=' || count(*) FROM lk;\n";
$h->pump until $outp =~ /count=\d+/;
my @deleted = grep { /\.sst \(deleted\)$/ } map { readlink($_) // '' } glob("/proc/$pid/fd/*");
is(scalar(@deleted), 0, 'the session holds no deleted SSTable open')
  or diag(join("\n", @deleted));
$in .= "\\q\n";
$h->finish;

$node->stop;
done_testing();
