# StrataTest.pm — helpers shared by the stratago TAP tests:
#
#   strata_node        a cluster with stratago preloaded, fsync ON (the
#                      cluster helper writes fsync = off) and crash restarts
#   crash_node         SIGKILL every server process at once (postmaster
#                      first frozen with SIGSTOP so it forks nothing more)
#   run_load_round     several forked clients writing strata tables through
#                      psql, each keeping a ledger of acknowledged commits,
#                      until the server dies or a deadline passes
#   verify_against_ledger
#                      after a restart: every acknowledged commit is there
#                      with its values, nothing rolled back or never
#                      attempted is visible, strata and heap agree
#
# The data model. Client c owns the rows of table kv with client = c, so
# clients never conflict and the expected contents follow from the ledgers
# alone. Every transaction n of client c writes the value "c<c>t<n>" into
# the rows it inserts or updates, and logs (c, n) into txlog (strata) and
# txlog_h (heap) in the same transaction. Before sending a transaction the
# client appends "A <n> <kind> <ops>" to its ledger; only after psql
# reported COMMIT it appends "C <n>"; a failure appends "E <n> <message>"
# and ends the client. A transaction that was in flight at the crash may or
# may not have committed: txlog says which, and the check accepts either
# but demands that its effects are all there or all absent.
#
# Limitation (doc/DESIGN.md §7, T8): SIGKILL keeps the operating system's page cache,
# so a missing fsync cannot be caught here; the engine's fault-injection
# crash test (test/engine/test_crash.c) drops unsynced writes for that.
package StrataTest;

use strict;
use warnings;
use Exporter 'import';
use Cwd ();
use IPC::Run;
use POSIX ();
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(strata_node crash_node restart_after_crash server_pids worker_pid
  create_load_tables new_model run_load_round verify_against_ledger
  engine_files wait_for_acked);

# A started node with stratago; extra lines go to postgresql.conf, and a
# hash reference first among them to the cluster's init() (say
# { allows_streaming => 1 }). The
# environment variable STRATAGO_WAL_SINK (engine or postgres) overrides the
# default WAL sink, so that every crash test runs against both
# (test/run_all.sh).
sub strata_node
{
	my ($name, @extra) = @_;
	my %init = ref($extra[0]) eq 'HASH' ? %{ shift @extra } : ();
	unshift @extra, "stratago.wal_sink = $ENV{STRATAGO_WAL_SINK}"
	  if $ENV{STRATAGO_WAL_SINK};
	# the postgres sink (the default) keeps memtables' WAL with a
	# replication slot, which wal_level = minimal (the cluster helper's
	# default) does not allow
	unshift @extra, "wal_level = replica";
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%init);
	$node->append_conf('postgresql.conf', join("\n",
		"shared_preload_libraries = 'stratago'",
		# the helper writes fsync = off; durability tests need it on
		"fsync = on",
		"synchronous_commit = on",
		# the helper turns crash restarts off
		"restart_after_crash = on",
		"stratago.maintenance_naptime = 50",
		"max_connections = 40",
		@extra, ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION stratago');
	is($node->safe_psql('postgres', 'SHOW fsync'), 'on', "$name: fsync is on");
	return $node;
}

# Child pids of a process, from /proc (no fork: this runs while the
# postmaster is frozen and every millisecond counts).
sub _children
{
	my ($ppid) = @_;
	my @kids;
	opendir(my $d, '/proc') or die "cannot read /proc: $!";
	for my $p (grep { /^\d+$/ } readdir($d))
	{
		open(my $f, '<', "/proc/$p/stat") or next;
		my $stat = <$f>;
		close($f);
		next unless defined $stat;
		# pid (comm) state ppid ...: comm may hold spaces, so cut after ')'
		push @kids, $p if $stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $ppid;
	}
	closedir($d);
	return @kids;
}

sub _alive
{
	my ($pid) = @_;
	open(my $f, '<', "/proc/$pid/stat") or return 0;
	my $stat = <$f>;
	close($f);
	return 0 unless defined $stat;
	return $stat !~ /\)\s+Z\s/;    # a zombie is dead
}

sub _postmaster_pid
{
	my ($node) = @_;
	open(my $f, '<', $node->data_dir . '/postmaster.pid') or return undef;
	my $pid = <$f>;
	close($f);
	chomp $pid if defined $pid;
	return $pid;
}

# The postmaster and its children (pids the test started, via pg_ctl).
sub server_pids
{
	my ($node) = @_;
	my $pm = _postmaster_pid($node);
	return () unless defined $pm;
	return ($pm, _children($pm));
}

# The maintenance worker's pid, or undef.
sub worker_pid
{
	my ($node) = @_;
	my $pid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'stratago maintenance'");
	return $pid eq '' ? undef : $pid;
}

# Crash: every server process dies at the same moment, as on power loss
# (minus the page cache). @first (e.g. the maintenance worker) are frozen
# together with the postmaster, before anything else happens.
#
# SIGSTOP is delivered asynchronously: the postmaster may still fork a
# backend between kill() returning and its actually stopping. Such a child,
# missed by a listing taken too early, outlived the "crash", stayed attached
# to the old shared memory, and the restart then failed with "pre-existing
# shared memory block is still in use" (a red CI run's "round 9: the server
# starts again after the crash"). And children killed one after another
# after the postmaster could notice its death in between and run on for a
# moment (their "terminating connection due to unexpected postmaster exit"
# in the log), which a power loss never allows. So: the postmaster is
# stopped first and the listing waits until it is; then every process
# whose working directory is the node's data directory (each server
# process has it) is stopped too, and only once all of them are stopped
# are they killed, together.
sub crash_node
{
	my ($node, @first) = @_;
	my $pm = _postmaster_pid($node);
	die "no postmaster.pid" unless defined $pm;
	kill 'STOP', $pm, @first;
	my $deadline = time + 60;
	my %all = ($pm => 1);
	while (1)
	{
		$all{$_} = 1 for (_children($pm), _in_dir($node->data_dir));
		my @running = grep { _alive($_) && !_stopped($_) } keys %all;
		last unless @running;
		die "server processes would not stop: @running" if time > $deadline;
		kill 'STOP', @running;
		usleep(1_000);
	}
	kill 'KILL', keys %all;
	# the node object must forget the postmaster before it is started again
	$node->kill9;
	while (1)
	{
		my @left = grep { _alive($_) } (keys %all, _in_dir($node->data_dir));
		last unless @left;
		die "server processes survived SIGKILL: @left" if time > $deadline;
		$all{$_} = 1 for @left;
		kill 'KILL', @left;
		usleep(10_000);
	}
	# zombies must be reaped too: pg_ctl start checks the old pid
	while (grep { -e "/proc/$_" } keys %all)
	{
		last if time > $deadline;
		usleep(10_000);
	}
	return scalar(keys %all);
}

# Is the process stopped (by a signal)?
sub _stopped
{
	my ($pid) = @_;
	open(my $f, '<', "/proc/$pid/stat") or return 0;
	my $stat = <$f>;
	close($f);
	return defined $stat && $stat =~ /\)\s+[Tt]\s/;
}

# Live processes whose working directory is $dir: a server's processes all
# run in its data directory.
sub _in_dir
{
	my ($dir) = @_;
	my $want = Cwd::realpath($dir);
	my @pids;
	opendir(my $d, '/proc') or die "cannot read /proc: $!";
	for my $p (grep { /^\d+$/ } readdir($d))
	{
		next if $p == $$;
		my $cwd = readlink("/proc/$p/cwd");
		push @pids, $p if defined $cwd && $cwd eq $want && _alive($p);
	}
	closedir($d);
	return @pids;
}

# Start the node after crash_node; a check, not a bail-out, so that the
# test reports which round failed. Returns false if it would not start.
# (This caught a postmaster segfault in work in progress: WAL replay that
# filled a memtable flushed it and called ConditionVariableBroadcast() in
# the postmaster, which has no PGPROC; repro: memtable_size = 64kB, INSERT
# 1000 rows of 500 bytes, kill -9 the postmaster, start.)
sub restart_after_crash
{
	my ($node, $label) = @_;
	my $ok = $node->start(fail_ok => 1);
	ok($ok, "$label: the server starts again after the crash");
	return $ok;
}

# SSTables, MANIFESTs and WAL segments of the node's engine.
sub engine_files
{
	my ($node, $re) = @_;
	my @out;
	my $top = $node->data_dir . '/stratago';
	my @dirs = ($top);
	while (my $d = shift @dirs)
	{
		opendir(my $h, $d) or next;
		for my $e (readdir($h))
		{
			next if $e eq '.' || $e eq '..';
			my $p = "$d/$e";
			if (-d $p) { push @dirs, $p; next; }
			push @out, $p if !defined $re || $e =~ $re;
		}
		closedir($h);
	}
	return sort @out;
}

sub create_load_tables
{
	my ($node) = @_;
	$node->safe_psql('postgres', q{
		CREATE TABLE kv (client int, k int, v text, pad text) USING strata;
		CREATE TABLE txlog (client int, txno int) USING strata;
		CREATE TABLE txlog_h (client int, txno int) USING heap;
	});
}

# The expected state: per client its live keys (key => writing txno), the
# next key and the next transaction number.
sub new_model
{
	my ($nclients) = @_;
	my %m;
	for my $c (1 .. $nclients)
	{
		$m{$c} = { keys => {}, next_key => 1, next_tx => 1 };
	}
	return \%m;
}

sub _val { my ($c, $t) = @_; return "c${c}t${t}"; }
sub _padlen { my ($k, $pad) = @_; return $pad + ($k * 37) % $pad; }

# One client (a forked child): transactions until a failure or deadline.
sub _client
{
	my ($node, $c, $st, $ledger, $deadline, $pad) = @_;
	my %keys = %{ $st->{keys} };
	my $next_key = $st->{next_key};
	my $tx = $st->{next_tx};
	srand($$ ^ int(time * 1000));
	open(my $lf, '>>', $ledger) or die "ledger $ledger: $!";
	$lf->autoflush(1);
	my @psql = ('psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
		'-h', $node->host, '-p', $node->port, '-d', 'postgres', '-f', '-');

	while (time < $deadline)
	{
		my (@ops, $sql);
		my $v = _val($c, $tx);
		my $kind = rand() < 0.1 ? 'R' : 'C';
		$sql = "BEGIN;\n";
		if (rand() < 0.3)
		{
			# COPY (multi_insert)
			my $n = 5 + int(rand(20));
			$sql .= "COPY kv FROM STDIN;\n";
			for (1 .. $n)
			{
				my $k = $next_key++;
				$sql .= "$c\t$k\t$v\t" . ('p' x _padlen($k, $pad)) . "\n";
				push @ops, "I$k";
			}
			$sql .= "\\.\n";
		}
		else
		{
			for (1 .. 1 + int(rand(4)))
			{
				my $k = $next_key++;
				$sql .= "INSERT INTO kv VALUES ($c, $k, '$v', repeat('p', "
				  . _padlen($k, $pad) . "));\n";
				push @ops, "I$k";
			}
		}
		my @live = sort { $a <=> $b } keys %keys;
		my %touched;
		for (1 .. int(rand(3)))
		{
			last unless @live;
			my $k = $live[ int(rand(@live)) ];
			next if $touched{$k}++;
			$sql .= "UPDATE kv SET v = '$v' WHERE client = $c AND k = $k;\n";
			push @ops, "U$k";
		}
		if (@live && rand() < 0.5)
		{
			# a change undone by ROLLBACK TO SAVEPOINT must never show
			my $k = $live[ int(rand(@live)) ];
			my @d = map { $live[ int(rand(@live)) ] } 1 .. 3;
			$sql .= "SAVEPOINT s;\nUPDATE kv SET v = 'junk$v' WHERE client = $c AND k = $k;\n"
			  . "DELETE FROM kv WHERE client = $c AND k IN (" . join(', ', @d) . ");\n"
			  . "ROLLBACK TO s;\n";
		}
		my $ndel = scalar(@live) > 40 ? 3 : int(rand(2));
		for (1 .. $ndel)
		{
			last unless @live;
			my $k = $live[ int(rand(@live)) ];
			next if $touched{$k}++;
			$sql .= "DELETE FROM kv WHERE client = $c AND k = $k;\n";
			push @ops, "D$k";
		}
		$sql .= "INSERT INTO txlog VALUES ($c, $tx);\n";
		$sql .= "INSERT INTO txlog_h VALUES ($c, $tx);\n";
		$sql .= $kind eq 'C' ? "COMMIT;\n" : "ROLLBACK;\n";

		print $lf "A $tx $kind @ops\n";
		my ($out, $err) = ('', '');
		my $ok = eval {
			IPC::Run::run(\@psql, '<', \$sql, '>', \$out, '2>', \$err,
				IPC::Run::timeout(120));
		};
		if (!$ok)
		{
			$err = $@ if $@;
			$err =~ s/\s+/ /g;
			print $lf "E $tx $err\n";
			last;
		}
		print $lf "C $tx\n";
		if ($kind eq 'C')
		{
			for my $op (@ops)
			{
				my ($o, $k) = ($op =~ /^(.)(\d+)$/);
				if ($o eq 'D') { delete $keys{$k}; }
				else { $keys{$k} = $tx; }
			}
		}
		$tx++;
	}
	close($lf);
}

# Start nclients clients for at most $seconds; call $during->() (which may
# crash the server) while they run; wait for them; return the ledger paths.
sub run_load_round
{
	my (%a) = @_;
	my ($node, $model, $dir, $round) = @a{qw(node model dir round)};
	my $pad = $a{pad} // 100;
	my $deadline = time + $a{seconds};
	my %pids;
	my %ledgers;
	for my $c (sort keys %$model)
	{
		my $ledger = "$dir/ledger_r${round}_c$c";
		unlink $ledger;
		$ledgers{$c} = $ledger;
		my $pid = fork();
		die "fork: $!" unless defined $pid;
		if ($pid == 0)
		{
			# (a psql that lost the server before reading its whole script
			# makes IPC::Run die with "Broken pipe": also a lost server)
			# the child must not run the parent's END blocks (node teardown)
			eval { _client($node, $c, $model->{$c}, $ledger, $deadline, $pad); };
			POSIX::_exit(0);
		}
		$pids{$pid} = $c;
	}
	$a{during}->() if $a{during};
	waitpid($_, 0) for keys %pids;
	return \%ledgers;
}

# Wait (at most $timeout seconds) until the clients of a running round have
# had $n commits acknowledged in all (rollbacks do not count); returns how many they had. A crash
# test waits for this before it kills the server, so that what it proves
# does not shrink on a slow machine (where a fixed delay saw few commits).
sub wait_for_acked
{
	my ($dir, $round, $n, $timeout) = @_;
	my $deadline = time + $timeout;
	my $acked = 0;
	while (1)
	{
		$acked = 0;
		for my $ledger (glob("$dir/ledger_r${round}_c*"))
		{
			my ($att, $ack) = _read_ledger($ledger);
			$acked += grep { $att->{$_} && $att->{$_}{kind} eq 'C' } keys %$ack;
		}
		return $acked if $acked >= $n || time >= $deadline;
		usleep(50_000);
	}
}

sub _read_ledger
{
	my ($path) = @_;
	my (%att, %acked, %err);
	open(my $f, '<', $path) or return ({}, {}, {});
	while (my $l = <$f>)
	{
		chomp $l;
		if ($l =~ /^A (\d+) ([CR])\s*(.*)$/)
		{
			$att{$1} = { kind => $2, ops => [ split ' ', $3 ] };
		}
		elsif ($l =~ /^C (\d+)$/) { $acked{$1} = 1; }
		elsif ($l =~ /^E (\d+) (.*)$/) { $err{$1} = $2; }
	}
	close($f);
	return (\%att, \%acked, \%err);
}

# Check the restarted node against the ledgers of a round and advance the
# model. $crashed: failures are expected to be lost connections.
sub verify_against_ledger
{
	my (%a) = @_;
	my ($node, $model, $ledgers, $label) = @a{qw(node model ledgers label)};
	my %present;
	for my $l (split /\n/, $node->safe_psql('postgres', 'SELECT client, txno FROM txlog'))
	{
		my ($c, $t) = split /\|/, $l;
		$present{$c}{$t} = 1;
	}
	my $heap = $node->safe_psql('postgres',
		'SELECT client, txno FROM txlog_h ORDER BY 1, 2');
	my $strata = $node->safe_psql('postgres',
		'SELECT client, txno FROM txlog ORDER BY 1, 2');
	is($strata, $heap, "$label: strata txlog matches heap txlog (atomic commit across AMs)");

	my (@missing, @phantom, @bad_err);
	my ($nacked, $ninflight_committed, $nrolledback) = (0, 0, 0);
	for my $c (sort keys %$model)
	{
		my ($att, $acked, $err) = _read_ledger($ledgers->{$c});
		my $m = $model->{$c};
		for my $t (sort { $a <=> $b } keys %$att)
		{
			my $is_present = $present{$c}{$t};
			my $kind = $att->{$t}{kind};
			if ($kind eq 'R')
			{
				$nrolledback++ if $acked->{$t};
				push @phantom, "c$c t$t (rolled back)" if $is_present;
				next;
			}
			if ($acked->{$t})
			{
				$nacked++;
				push @missing, "c$c t$t" unless $is_present;
			}
			elsif ($is_present)
			{
				$ninflight_committed++;
			}
			next unless $is_present;
			for my $op (@{ $att->{$t}{ops} })
			{
				my ($o, $k) = ($op =~ /^(.)(\d+)$/);
				if ($o eq 'D') { delete $m->{keys}{$k}; }
				else { $m->{keys}{$k} = $t; }
			}
		}
		for my $t (keys %{ $present{$c} })
		{
			push @phantom, "c$c t$t (never attempted)"
			  if $t >= $m->{next_tx} && !$att->{$t};
		}
		for my $t (keys %$err)
		{
			push @bad_err, "c$c t$t: $err->{$t}"
			  unless $err->{$t} =~ /server closed the connection|connection to server|terminating connection|could not connect|the database system is (shutting down|in recovery mode|starting up)|could not receive data|no connection to the server|Connection refused|Broken pipe/i;
		}
		my @ts = keys %$att;
		if (@ts)
		{
			my $max = (sort { $b <=> $a } @ts)[0];
			$m->{next_tx} = $max + 1;
			for my $t (@ts)
			{
				for my $op (@{ $att->{$t}{ops} })
				{
					my ($k) = ($op =~ /(\d+)$/);
					$m->{next_key} = $k + 1 if $k >= $m->{next_key};
				}
			}
		}
	}
	is(join(', ', @missing), '', "$label: every acknowledged commit ($nacked) is in txlog");
	is(join(', ', @phantom), '', "$label: no rolled-back or unattempted transaction is visible");
	is(join('; ', @bad_err), '', "$label: clients failed only by losing the server");

	my @want;
	for my $c (sort { $a <=> $b } keys %$model)
	{
		for my $k (sort { $a <=> $b } keys %{ $model->{$c}{keys} })
		{
			my $t = $model->{$c}{keys}{$k};
			push @want, join('|', $c, $k, _val($c, $t), _padlen($k, $a{pad} // 100));
		}
	}
	my $got = $node->safe_psql('postgres',
		'SELECT client, k, v, length(pad) FROM kv ORDER BY client, k');
	my $want = join("\n", @want);
	if ($got eq $want)
	{
		pass("$label: kv holds exactly the committed rows (" . scalar(@want) . ")");
	}
	else
	{
		# print a short diff, not two whole tables
		my %g = map { $_ => 1 } split /\n/, $got;
		my %w = map { $_ => 1 } @want;
		my @extra = grep { !$w{$_} } sort keys %g;
		my @lost = grep { !$g{$_} } @want;
		fail("$label: kv holds exactly the committed rows");
		diag("unexpected rows: @extra[0 .. ($#extra < 9 ? $#extra : 9)]") if @extra;
		diag("missing rows: @lost[0 .. ($#lost < 9 ? $#lost : 9)]") if @lost;
		# where the unexpected ones live and who wrote them, for the post-mortem
		for my $row (@extra[0 .. ($#extra < 4 ? $#extra : 4)])
		{
			my ($c, $k) = split /\|/, $row;
			diag("  unexpected $c|$k: "
				  . $node->safe_psql('postgres',
					"SELECT ctid, xmin, xmax FROM kv WHERE client = $c AND k = $k"));
		}
	}
	note("$label: $nacked acknowledged commits, $ninflight_committed in-flight commits found, "
		  . "$nrolledback acknowledged rollbacks");
	return $nacked;
}

1;
