# 017_cursor_order.pl — the reproduction of a committed-row loss, end to
# end across a restart: two cursors on one strata table, the first one
# closed first, then a flush. Each scan must give back only its own
# memtable pins; when the first close gave back the second's as well, the
# table's memtable lost its last reference while the tree still named it,
# and the flush wrote an empty memtable in its place: 0 rows, no .sst left,
# also after a restart. Run with both WAL sinks (test/run_all.sh).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use StrataTest;

my $node = strata_node('cursor_order', 'autovacuum = off');

$node->safe_psql('postgres', q{
	CREATE TABLE tk (a int, b int, v text) USING strata;
	INSERT INTO tk SELECT g, (g * 7919) % 10000, md5(g::text) FROM generate_series(0, 9999) g;
});
my $expect = $node->safe_psql('postgres', 'SELECT count(*), sum(a), md5(string_agg(v, \',\' ORDER BY a)) FROM tk');
like($expect, qr/^10000\|49995000\|/, 'the committed rows are there');

my ($ret, $out, $err) = $node->psql('postgres', q{
	BEGIN;
	DECLARE c1 SCROLL CURSOR FOR SELECT * FROM tk;
	DECLARE c2 SCROLL CURSOR FOR SELECT * FROM tk;
	FETCH 30 FROM c1;
	FETCH 30 FROM c2;
	CLOSE c1;
	CLOSE c2;
	END;
});
is($ret, 0, 'two cursors opened and closed out of order');
unlike($err, qr/WARNING|ERROR/, 'no reference was left behind or given back twice');

sub contents
{
	return $node->safe_psql('postgres',
		'SELECT count(*), sum(a), md5(string_agg(v, \',\' ORDER BY a)) FROM tk');
}

is(contents(), $expect, 'all rows before the flush');
$node->safe_psql('postgres', q{SELECT stratago.flush('tk')});
is(contents(), $expect, 'all rows after the flush');
my @sst = glob($node->data_dir . '/stratago/*/*/*.sst');
cmp_ok(scalar(@sst), '>=', 1, 'the flush wrote an SSTable');

$node->restart;
is(contents(), $expect, 'all rows after a clean restart');

# the same once more, then a crash before anything else is flushed
$node->safe_psql('postgres', q{
	INSERT INTO tk SELECT g, 0, md5(g::text) FROM generate_series(10000, 10999) g;
});
$expect = contents();
($ret, $out, $err) = $node->psql('postgres', q{
	BEGIN;
	DECLARE c1 CURSOR FOR SELECT * FROM tk;
	DECLARE c2 CURSOR FOR SELECT * FROM tk;
	DECLARE c3 CURSOR FOR SELECT * FROM tk;
	FETCH 5 FROM c3;
	FETCH 5 FROM c1;
	FETCH 5 FROM c2;
	CLOSE c1;
	CLOSE c3;
	COMMIT;
});
unlike($err, qr/WARNING|ERROR/, 'three cursors, closed in another order and by COMMIT');
$node->safe_psql('postgres', q{SELECT stratago.flush('tk')});
$node->stop('immediate');
$node->start;
is(contents(), $expect, 'all rows after a crash restart');

$node->stop;
done_testing();
