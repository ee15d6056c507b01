# 001_foundation.pl — the server-level promises of the foundation:
#  - without shared_preload_libraries, CREATE EXTENSION fails with a hint;
#  - with it, $PGDATA/stratago exists and the maintenance worker runs;
#  - strata tables survive a clean restart;
#  - the worker exits cleanly at shutdown (no crash report in the log);
#  - after a crash (kill -9 of the worker) the postmaster restarts it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# --- not preloaded: a clear error naming the setting ---
my $plain = PostgreSQL::Test::Cluster->new('not_preloaded');
$plain->init;
$plain->start;
my ($ret, $stdout, $stderr) =
  $plain->psql('postgres', 'CREATE EXTENSION stratago');
isnt($ret, 0, 'CREATE EXTENSION fails when not preloaded');
like($stderr, qr/stratago must be loaded via shared_preload_libraries/,
	'error says how it must be loaded');
like($stderr, qr/HINT:.*shared_preload_libraries/, 'hint names the setting');
$plain->stop;

# --- preloaded ---
my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'stratago'\n");
$node->append_conf('postgresql.conf', "stratago.maintenance_naptime = 100\n");
# The cluster helper turns crash restarts off; this test needs them.
$node->append_conf('postgresql.conf', "restart_after_crash = on\n");

# The cluster helper also writes wal_level = minimal, which leaves no
# replication slot for the default WAL sink: a clear refusal to start.
ok(!$node->start(fail_ok => 1), 'wal_level = minimal: the server does not start');
like(slurp_file($node->logfile),
	qr/FATAL:  stratago.wal_sink = postgres requires wal_level "replica" or higher.*\n.*\n.*HINT:.*stratago.wal_sink to "engine"/,
	'the error names the settings to change');
$node->append_conf('postgresql.conf', "wal_level = replica\n");
$node->start;

ok(-d $node->data_dir . '/stratago', 'engine folder created in the data directory');

sub worker_count
{
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'stratago maintenance'");
}

sub worker_pid
{
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'stratago maintenance'");
}

ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'stratago maintenance'"),
	'maintenance worker running');

$node->safe_psql('postgres', 'CREATE EXTENSION stratago');
$node->safe_psql('postgres', 'CREATE TABLE kept (id int) USING strata');

# --- clean restart ---
$node->restart;
is($node->safe_psql('postgres',
		"SELECT a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.relname = 'kept'"),
	'strata', 'strata table still there after restart');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'stratago maintenance'"),
	'maintenance worker running after restart');
my $log = slurp_file($node->logfile);
unlike($log, qr/stratago maintenance.*exited with exit code [1-9]/,
	'worker exited cleanly at shutdown');
unlike($log, qr/stratago maintenance.*terminated by signal/,
	'worker was not killed at shutdown');

# --- crash: kill -9 the worker; the postmaster reinitialises and restarts it ---
my $pid = worker_pid();
ok($pid > 0, 'worker pid known');
kill 'KILL', $pid;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'stratago maintenance' AND pid <> $pid"),
	'maintenance worker restarted after a crash');
like(slurp_file($node->logfile),
	qr/all server processes terminated; reinitializing/,
	'the kill caused a crash-restart cycle');
ok(-d $node->data_dir . '/stratago', 'engine folder still there after crash restart');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 'kept'"),
	'1', 'catalog intact after crash restart');

$node->stop;
done_testing();
