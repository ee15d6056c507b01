# 004_wal_damage.pl — damaged engine WAL at startup (doc/DESIGN.md §7, C4):
#  (d) a torn tail in the newest segment — its last bytes cut off, or
#      garbage appended after the last record — is cut back to the last
#      good record with a LOG line from stratago naming the file, and every
#      commit made before is still there (the torn record belongs to a
#      transaction that never committed, as a real torn write would);
#  (e) a flipped byte in an older record, with valid records after it, is
#      corruption: the server refuses to start, the log names the file and
#      the offset, and the WAL is left as it was (not cut, not skipped), so
#      repairing the byte lets the server start with everything there.
# fsync is on. The damage is applied with the server stopped in immediate
# mode, i.e. as a crash leaves the files (kill -9 keeps the page cache: a
# missing fsync cannot show up here, see test/engine/test_crash.c).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use Fcntl qw(SEEK_SET SEEK_END);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use StrataTest;

# damage to the engine WAL: only the engine sink writes it
my $node = strata_node('wal_damage', 'stratago.wal_sink = engine');
my $waldir = $node->data_dir . '/stratago/wal';

sub newest_segment
{
	opendir(my $d, $waldir) or die "$waldir: $!";
	my @segs = sort grep { /^[0-9A-F]{16}\.wal$/ } readdir($d);
	closedir($d);
	die "no engine WAL segment in $waldir" unless @segs;
	return "$waldir/$segs[-1]";
}

sub log_since
{
	my ($pos) = @_;
	return substr(slurp_file($node->logfile), $pos);
}

my $expected_q = 'SELECT count(*), sum(id), string_agg(DISTINCT v, \',\' ORDER BY v) FROM t';
$node->safe_psql('postgres', 'CREATE TABLE t (id int, v text) USING strata');
for my $i (1 .. 5)
{
	$node->safe_psql('postgres',
		"INSERT INTO t SELECT g, 'committed$i' FROM generate_series(${i}00, ${i}99) g");
}
$node->safe_psql('postgres', "UPDATE t SET v = 'updated' WHERE id % 10 = 0");
$node->safe_psql('postgres', "DELETE FROM t WHERE id % 10 = 1");
my $expected = $node->safe_psql('postgres', $expected_q);

# --- (d1) the tail record, of a transaction that never committed, is cut ---
my $size0 = -s newest_segment();
my ($in, $out, $err) = ('', '', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-h', $node->host, '-p', $node->port, '-d', 'postgres' ],
	'<', \$in, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
$in .= "BEGIN;\nINSERT INTO t SELECT g, 'uncommitted' FROM generate_series(1000, 1049) g;\n";
$h->pump until $out =~ /INSERT 0 50/;
my $seg = newest_segment();
my $size = -s $seg;
$node->stop('immediate');
$h->kill_kill;
cmp_ok($size, '>', $size0, 'the uncommitted insert reached the engine WAL');
truncate($seg, $size - 5) or die "truncate $seg: $!";
my $logpos = -s $node->logfile;
$node->start;
my $log = log_since($logpos);
my $segname = $seg =~ s{.*/}{}r;
like($log, qr/LOG:  stratago: WAL segment "[^"]*\Q$segname\E": torn tail at offset \d+ .*truncated to offset \d+/,
	'cut tail: LOG line names the segment and the new end');
is($node->safe_psql('postgres', $expected_q), $expected,
	'cut tail: every committed row is there, nothing of the torn transaction');
cmp_ok(-s $seg, '<', $size - 5, 'cut tail: the segment was truncated to its last good record');

# the log goes on from the repaired end
$node->safe_psql('postgres',
	"INSERT INTO t SELECT g, 'after_repair' FROM generate_series(2000, 2099) g");
$expected = $node->safe_psql('postgres', $expected_q);

# --- (d2) garbage after the last record ---
$node->stop('immediate');
$seg = newest_segment();
$size = -s $seg;
open(my $f, '>>', $seg) or die "$seg: $!";
binmode $f;
print $f pack('C*', map { (0xA5 + 31 * $_) & 0xFF } 1 .. 100);
close($f);
$logpos = -s $node->logfile;
$node->start;
$log = log_since($logpos);
like($log, qr/LOG:  stratago: WAL segment "[^"]*": torn tail at offset $size .*dropping 100 bytes/,
	'garbage tail: LOG line names the offset where the garbage starts');
is(-s $seg, $size, 'garbage tail: the segment is back to its old size');
is($node->safe_psql('postgres', $expected_q), $expected,
	'garbage tail: every committed row is there');

# --- (e) a flipped byte in an older record: refuse to start ---
$node->safe_psql('postgres',
	"INSERT INTO t SELECT g, 'last' FROM generate_series(3000, 3099) g");
$expected = $node->safe_psql('postgres', $expected_q);
$node->stop('immediate');
$seg = newest_segment();
$size = -s $seg;
# 31 bytes of segment header, then records: offset 100 lies inside the
# payload of an early record, with many valid records after it
my $off = 100;
open($f, '+<', $seg) or die "$seg: $!";
binmode $f;
sysseek($f, $off, SEEK_SET);
sysread($f, my $byte, 1);
sysseek($f, $off, SEEK_SET);
syswrite($f, chr(ord($byte) ^ 0x40), 1);
close($f);
$logpos = -s $node->logfile;
ok(!$node->start(fail_ok => 1), 'flipped byte: the server refuses to start');
$log = log_since($logpos);
my $name = $seg =~ s{.*/}{}r;
like($log, qr/FATAL:  strata engine WAL is corrupted: log "[^"]*\Q$name\E": corrupt fragment at offset \d+/,
	'flipped byte: FATAL message names the file and the offset');
like($log, qr/HINT:  Corruption in the middle of the engine WAL is never skipped/,
	'flipped byte: the hint says it is not skipped');
unlike($log, qr/torn tail/, 'flipped byte: not mistaken for a torn tail');
is(-s $seg, $size, 'flipped byte: the WAL was not truncated');

# repairing the byte brings everything back: nothing was thrown away
open($f, '+<', $seg) or die "$seg: $!";
binmode $f;
sysseek($f, $off, SEEK_SET);
syswrite($f, $byte, 1);
close($f);
$node->start;
is($node->safe_psql('postgres', $expected_q), $expected,
	'after the repair: every committed row is there');

$node->stop;
done_testing();
