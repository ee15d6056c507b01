# 024_vacuum_skip.pl — VACUUM reads only the row ids that may hold a row
# dead to every snapshot (read.c, strata_tree_suspect_ranges): SSTables
# and memtable entries holding nothing but row data whose writers
# committed are skipped, as heap skips all-visible pages, and every kind
# of dead row is still found. VACUUM VERBOSE reports the blocks it read.
#  (a) a table loaded by one transaction and flushed: nothing is read;
#  (d) two writers in one flushed file: the file is read (its writers'
#      outcome was not known when it was written), nothing removed;
#  (b) deletes in a narrow range, flushed: only their blocks are read, and
#      they are removed (index entries too);
#  (c) a rolled-back insert, flushed: its rows are removed (by then the
#      worker may have compacted level 0, whose output holds stubs);
#  (e) deletes still in the memtable are found;
#  (f) after a full compaction nothing is read again, and the table
#      answers as before throughout.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use StrataTest;

my $node = strata_node('vacskip', 'autovacuum = off');
$node->safe_psql('postgres', q{
	CREATE TABLE t (id int PRIMARY KEY, v text) USING strata;
	INSERT INTO t SELECT g, repeat('x', 40) FROM generate_series(1, 30000) g;
	SELECT stratago.flush('t');
});

# VACUUM (VERBOSE) t: (blocks scanned, blocks in all, rows removed)
sub vacuum_t
{
	my ($out, $err) = ('', '');
	$node->psql('postgres', 'VACUUM (VERBOSE) t', stdout => \$out, stderr => \$err);
	my ($scanned, $total) = $err =~ /blocks: (\d+) scanned of (\d+)/;
	my ($removed) = $err =~ /rows: (\d+) removed/;
	die "no VACUUM VERBOSE report in: $err" unless defined $scanned && defined $removed;
	return ($scanned, $total, $removed);
}

# The table answers the same by its index and by a sequential scan.
sub check_answers
{
	my ($want, $name) = @_;
	my $seq = $node->safe_psql('postgres', q{
		SET enable_indexscan = off; SET enable_bitmapscan = off;
		SELECT count(*) || ':' || coalesce(sum(id), 0) FROM t});
	my $idx = $node->safe_psql('postgres', q{
		SET enable_seqscan = off;
		SELECT count(*) || ':' || coalesce(sum(id), 0) FROM t WHERE id > 0});
	is($seq, $want, "$name: sequential scan");
	is($idx, $want, "$name: index scan");
}

my ($scanned, $total, $removed);

# (a)
($scanned, $total, $removed) = vacuum_t();
is($scanned, 0, '(a) a loaded and flushed table: no block read');
ok($total >= 100, "(a) of $total blocks");
is($removed, 0, '(a) nothing removed');
check_answers('30000:450015000', '(a)');

# (d)
$node->safe_psql('postgres', q{
	INSERT INTO t SELECT g, 'a' FROM generate_series(50001, 50100) g;
	INSERT INTO t SELECT g, 'b' FROM generate_series(50101, 50200) g;
	SELECT stratago.flush('t');
});
($scanned, $total, $removed) = vacuum_t();
ok($scanned >= 1, "(d) a file of two writers is read ($scanned of $total)");
is($removed, 0, '(d) nothing removed');
check_answers('30200:460035100', '(d)');

# (b)
$node->safe_psql('postgres', q{
	DELETE FROM t WHERE id BETWEEN 15001 AND 15020;
	SELECT stratago.flush('t');
});
($scanned, $total, $removed) = vacuum_t();
is($removed, 20, '(b) the deleted rows are removed');
ok($scanned >= 1 && $scanned <= 3, "(b) only their blocks are read ($scanned of $total)");
check_answers('30180:459734890', '(b)');

# (c)
$node->safe_psql('postgres', q{
	BEGIN;
	INSERT INTO t SELECT g, 'rolled back' FROM generate_series(40001, 40500) g;
	ROLLBACK;
	SELECT stratago.flush('t');
});
($scanned, $total, $removed) = vacuum_t();
is($removed, 500, '(c) a rolled-back insert is removed');
ok($scanned >= 1 && $scanned <= $total, "(c) its blocks are read ($scanned of $total)");
check_answers('30180:459734890', '(c)');

# (e)
$node->safe_psql('postgres', q{DELETE FROM t WHERE id IN (3, 5, 7, 50150, 50199)});
($scanned, $total, $removed) = vacuum_t();
is($removed, 5, '(e) deletes in the memtable are removed');
check_answers('30175:459634526', '(e)');

# (f)
$node->safe_psql('postgres', q{SELECT stratago.flush('t'); SELECT stratago.compact('t')});
($scanned, $total, $removed) = vacuum_t();
is($scanned, 0, '(f) after a full compaction: no block read');
is($removed, 0, '(f) nothing removed');
check_answers('30175:459634526', '(f)');

$node->stop;
done_testing();
