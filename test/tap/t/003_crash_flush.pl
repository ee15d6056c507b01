# 003_crash_flush.pl — crashes while the maintenance worker is flushing:
# with stratago.memtable_size = 64kB and wide rows, memtables freeze and
# flush to SSTables every few transactions (and compaction runs) under a
# 4-client write load. Each round waits until a new SSTable file appears
# in the engine's directory — the worker is then writing it or about to
# record it in the MANIFEST — and SIGKILLs the worker (first), the
# postmaster and every other server process at that moment. After each
# restart, every acknowledged commit must be there exactly once, with its
# values, and nothing rolled back (StrataTest.pm's ledger check).
#
# What this cannot catch (doc/DESIGN.md §7, T8): SIGKILL keeps the operating
# system's page cache, so an SSTable or MANIFEST written but never fsynced
# survives here. The engine's fault-injection crash test
# (test/engine/test_crash.c) drops unsynced writes for that.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use StrataTest;

my $rounds = $ENV{STRATA_CRASH_ROUNDS} // 10;
my $nclients = 4;
my $pad = 600;
my $t0 = time;

my $node = strata_node('crash_flush', 'stratago.memtable_size = 64kB',
	'stratago.maintenance_naptime = 10');
create_load_tables($node);
my $model = new_model($nclients);
my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $mid_flush = 0;

for my $round (1 .. $rounds)
{
	my $ledgers = run_load_round(
		node => $node, model => $model, dir => $dir, round => $round,
		seconds => 30, pad => $pad,
		during => sub {
			my $worker = worker_pid($node);
			# let the load build up, then kill as a new SSTable appears
			usleep(int((0.5 + rand(1)) * 1_000_000));
			my %seen = map { $_ => 1 } engine_files($node, qr/\.sst$/);
			# (generous: a slow machine flushes later, not never)
			my $deadline = time + 15;
			my $caught = 0;
			while (time < $deadline)
			{
				if (grep { !$seen{$_} } engine_files($node, qr/\.sst$/))
				{
					$caught = 1;
					last;
				}
				usleep(500);
			}
			crash_node($node, defined $worker ? ($worker) : ());
			$mid_flush += $caught;
			note("round $round: " . ($caught ? 'killed as a new SSTable appeared'
				  : 'no new SSTable within 15 s, killed anyway'));
		});
	if (!restart_after_crash($node, "round $round"))
	{
		# nothing more to learn from a server that will not start
		done_testing();
		exit 1;
	}
	verify_against_ledger(node => $node, model => $model, ledgers => $ledgers,
		label => "round $round", pad => $pad);
}
cmp_ok($mid_flush, '>=', $rounds / 2,
	"most rounds killed the server as an SSTable was being written ($mid_flush of $rounds)");

# the data really went through SSTables (and the engine says so)
my ($flushes, $ssts) = split /\|/, $node->safe_psql('postgres',
	"SELECT flushes, sstables FROM stratago.table_stats('kv')");
cmp_ok($ssts, '>', 0, "kv has SSTables after the crashes ($ssts)");
$node->safe_psql('postgres', "SELECT stratago.flush('kv')");
my $ledgers = run_load_round(node => $node, model => $model, dir => $dir,
	round => 'final', seconds => 2, pad => $pad);
verify_against_ledger(node => $node, model => $model, ledgers => $ledgers,
	label => 'after a final load without crash', pad => $pad);

my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal (?!9)|PANIC|TRAP:/,
	'no server process crashed on its own and nothing PANICked');
note(sprintf('%d rounds in %.1f s', $rounds, time - $t0));

$node->stop;
done_testing();
