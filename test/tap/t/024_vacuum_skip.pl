# 024_vacuum_skip.pl — VACUUM skips rows whose every version is frozen row
# data (read.c, strata_tree_suspect_ranges), as heap skips all-visible
# pages, reads what changed since, and still finds every kind of dead
# row. VACUUM VERBOSE reports the blocks it read.
#  (a) a table loaded and flushed, never compacted: read whole (like a
#      heap table's first VACUUM), its rows counted;
#  (b) compacted (frozen): nothing read;
#  (c) deletes in a narrow range, flushed: only their blocks read, the rows
#      removed (index entries too);
#  (d) rows added at the end (two writers): the flushed file's range read,
#      not the table;
#  (e) a rolled-back insert: its rows removed;
#  (f) deletes still in the memtable: found;
#  (g) compacted again: nothing read; DISABLE_PAGE_SKIPPING reads every
#      block, as on heap; the table answers the same by index and by
#      sequential scan throughout;
#  (h) COPY FREEZE writes frozen rows, which VACUUM skips at once; rolled
#      back with its TRUNCATE it leaves nothing;
#  (i) changes spread thinly over a table (1% updated, 0.1% deleted): only
#      the rows a flushed file lists as suspects are read, not its whole
#      row id range; deleted rows compacted into dead stubs of a frozen
#      file: only the stubs it lists; a file with more suspects than it can
#      list: its whole range, and every dead row still found;
#  (j) more changed rows than a file lists, spread thinly: the file's
#      entries are read for its suspects, not its range.
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

# VACUUM (VERBOSE[, options]) t: (blocks scanned, blocks in all, rows
# removed, rows remaining as reported)
sub vacuum_t
{
	my ($options, $table) = @_;
	my ($out, $err) = ('', '');
	$options = defined $options ? ", $options" : '';
	$table //= 't';
	$node->psql('postgres', "VACUUM (VERBOSE$options) $table", stdout => \$out, stderr => \$err);
	my ($scanned, $total) = $err =~ /blocks: (\d+) scanned of (\d+)/;
	my ($removed, $remain) = $err =~ /rows: (\d+) removed, (\d+) remain/;
	die "no VACUUM VERBOSE report in: $err" unless defined $scanned && defined $removed;
	return ($scanned, $total, $removed, $remain);
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

my ($scanned, $total, $removed, $remain);
my $ret;

# (a)
($scanned, $total, $removed, $remain) = vacuum_t();
ok($total >= 100, "(a) $total blocks");
is($scanned, $total, '(a) a table never compacted is read whole');
is($remain, 30000, '(a) and its rows counted');
check_answers('30000:450015000', '(a)');

# (b)
$node->safe_psql('postgres', q{SELECT stratago.compact('t')});
($scanned, $total, $removed, $remain) = vacuum_t();
is($scanned, 0, '(b) compacted and frozen: no block read');
is($remain, 30000, '(b) the row count stays');

# (c)
$node->safe_psql('postgres', q{
	DELETE FROM t WHERE id BETWEEN 15001 AND 15020;
	SELECT stratago.flush('t');
});
($scanned, $total, $removed) = vacuum_t();
is($removed, 20, '(c) the deleted rows are removed');
ok($scanned >= 1 && $scanned <= 3, "(c) only their blocks are read ($scanned of $total)");
check_answers('29980:449714790', '(c)');

# (d)
$node->safe_psql('postgres', q{
	INSERT INTO t SELECT g, 'a' FROM generate_series(50001, 50100) g;
	INSERT INTO t SELECT g, 'b' FROM generate_series(50101, 50200) g;
	SELECT stratago.flush('t');
});
($scanned, $total, $removed, $remain) = vacuum_t();
# the flushed file holds the new rows and the tombstones of the rows (c)
# reaped: its key range is what is read, not the frozen bulk before it
ok($scanned >= 1 && $scanned < $total * 0.6, "(d) the changed file's range is read ($scanned of $total)");
is($removed, 0, '(d) nothing removed');
check_answers('30180:459734890', '(d)');

# (e)
$node->safe_psql('postgres', q{
	BEGIN;
	INSERT INTO t SELECT g, 'rolled back' FROM generate_series(40001, 40500) g;
	ROLLBACK;
	SELECT stratago.flush('t');
});
($scanned, $total, $removed) = vacuum_t();
is($removed, 500, '(e) a rolled-back insert is removed');
check_answers('30180:459734890', '(e)');

# (f)
$node->safe_psql('postgres', q{DELETE FROM t WHERE id IN (3, 5, 7, 50150, 50199)});
($scanned, $total, $removed) = vacuum_t();
is($removed, 5, '(f) deletes in the memtable are removed');
check_answers('30175:459634526', '(f)');

# (g)
$node->safe_psql('postgres', q{SELECT stratago.flush('t'); SELECT stratago.compact('t')});
($scanned, $total, $removed, $remain) = vacuum_t();
is($scanned, 0, '(g) compacted again: no block read');
is($removed, 0, '(g) nothing removed');
($scanned, $total, $removed, $remain) = vacuum_t('DISABLE_PAGE_SKIPPING');
is($scanned, $total, '(g) DISABLE_PAGE_SKIPPING reads every block');
is($remain, 30175, '(g) and counts every row');
check_answers('30175:459634526', '(g)');

# (h) COPY FREEZE into a table truncated in the same transaction writes
# its rows frozen, as heap's are: a VACUUM right after reads nothing and
# keeps the count; a COPY FREEZE rolled back with its TRUNCATE leaves the
# old rows, and none of the copied ones.
my $csv = $node->basedir . '/fz.csv';
$node->safe_psql('postgres', qq{
	CREATE TABLE fz (id int PRIMARY KEY, v text) USING strata;
	INSERT INTO fz SELECT g, 'old' FROM generate_series(1, 100) g;
	COPY (SELECT g, 'copied' FROM generate_series(1, 20000) g) TO '$csv';
	BEGIN;
	TRUNCATE fz;
	COPY fz FROM '$csv' (FREEZE);
	ROLLBACK;
});
is($node->safe_psql('postgres', q{SELECT count(*) || ':' || count(*) FILTER (WHERE v = 'old') FROM fz}),
	'100:100', '(h) a COPY FREEZE rolled back with its TRUNCATE leaves the old rows only');
$node->safe_psql('postgres', qq{
	BEGIN;
	TRUNCATE fz;
	COPY fz FROM '$csv' (FREEZE);
	COMMIT;
	SELECT stratago.flush('fz');
});
my ($out, $err) = ('', '');
$node->psql('postgres', 'VACUUM (VERBOSE) fz', stdout => \$out, stderr => \$err);
like($err, qr/blocks: 0 scanned of [1-9]\d*/, '(h) rows COPY FREEZE wrote are not read by VACUUM');
is($node->safe_psql('postgres', q{
	SET enable_seqscan = off;
	SELECT count(*) || ':' || sum(id) FROM fz WHERE id > 0}),
	'20000:200010000', '(h) and they answer by index');
($ret, $out, $err) = $node->psql('postgres', qq{
	BEGIN;
	TRUNCATE fz;
	SAVEPOINT s;
	COPY fz FROM '$csv' (FREEZE);
});
like($err, qr/cannot perform COPY FREEZE because the table was not created or truncated in the current subtransaction/,
	'(h) COPY FREEZE after a savepoint is refused, as on heap');

# (i)
$node->safe_psql('postgres', q{
	CREATE TABLE w (id int PRIMARY KEY, v int) USING strata;
	INSERT INTO w SELECT g, 0 FROM generate_series(1, 60000) g;
	SELECT stratago.compact('w');
	UPDATE w SET v = 1 WHERE id % 100 = 7;
	DELETE FROM w WHERE id % 1000 = 500;
	SELECT stratago.flush('w');
});
my $w_answer = sub {
	$node->safe_psql('postgres', q{
		SELECT count(*) || ':' || sum(id) || ':' || sum(v) FROM w})
};
my $w_by_index = sub {
	$node->safe_psql('postgres', q{
		SET enable_seqscan = off; SET enable_bitmapscan = off;
		SELECT count(*) || ':' || sum(id) || ':' || sum(v) FROM w WHERE id > 0})
};
($scanned, $total, $removed, $remain) = vacuum_t(undef, 'w');
is($removed, 60, '(i) thin changes: the deleted rows are removed');
ok($scanned <= 6 && $scanned < $total / 10,
	"(i) thin changes: only the rows the flushed file lists are read ($scanned of $total)");
ok(abs($remain - 59940) <= 600, "(i) the row count is estimated closely ($remain)");
is($w_answer->(), '59940:1798230000:600', '(i) the table answers the same afterwards');
is($w_by_index->(), '59940:1798230000:600', '(i) and by index');

$node->safe_psql('postgres', q{
	DELETE FROM w WHERE id % 1000 = 600;
	SELECT stratago.flush('w');
	SELECT stratago.compact('w');
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM stratago.sstables('w')}), '1',
	'(i) compacted into one file, the deleted rows as its dead stubs');
($scanned, $total, $removed, $remain) = vacuum_t(undef, 'w');
is($removed, 60, '(i) stubs of a frozen file are removed');
ok($scanned <= 6 && $scanned < $total / 10,
	"(i) only the stubs the file lists are read ($scanned of $total)");
is($w_answer->(), '59880:1796424000:600', '(i) the table answers the same after the stubs');

$node->safe_psql('postgres', q{
	UPDATE w SET v = 2 WHERE id % 3 = 0;
	DELETE FROM w WHERE id % 1000 = 700;
	SELECT stratago.flush('w');
});
($scanned, $total, $removed, $remain) = vacuum_t(undef, 'w');
is($removed, 60, '(i) a file with too many suspects to list: every dead row still found');
is($scanned, $total, '(i) and its whole range is read, its entries being most row ids');
is($w_answer->(), $w_by_index->(), '(i) sequential and index answers agree');

# (j) more changed rows than a file lists, spread thinly over a large
# table: the flushed file is sparse, so its entries are read for the
# suspects rather than its whole range
$node->safe_psql('postgres', q{
	CREATE TABLE big (id int PRIMARY KEY, v int) USING strata;
	INSERT INTO big SELECT g, 0 FROM generate_series(1, 600000) g;
	SELECT stratago.compact('big');
	VACUUM big;
	UPDATE big SET v = 1 WHERE id % 35 = 3;
	DELETE FROM big WHERE id % 7000 = 6999;
	SELECT stratago.flush('big');
});
($scanned, $total, $removed, $remain) = vacuum_t(undef, 'big');
is($removed, 85, '(j) a sparse file without a list: the deleted rows are removed');
ok($scanned < $total / 10, "(j) its entries are read, not its range ($scanned of $total)");
ok(abs($remain - 599915) <= 6000, "(j) the row count is estimated closely ($remain)");

$node->stop;
done_testing();
