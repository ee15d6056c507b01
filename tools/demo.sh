#!/bin/bash
# tools/demo.sh — the README's first command: install dependencies, build
# and install stratago, start a PostgreSQL 15 with stratago preloaded (as
# the postgres user, in /var/tmp/stratago-demo, port 5499) and run a small
# demo workload on a strata table. The server is left running.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEMO=${STRATAGO_DEMO_DIR:-/var/tmp/stratago-demo}
PORT=${STRATAGO_DEMO_PORT:-5499}
PGBIN=/usr/lib/postgresql/15/bin

if [ "$(id -u)" != 0 ]; then
	echo "run as root (it installs packages and the extension)" >&2
	exit 1
fi
"$ROOT/tools/install-deps.sh"
make -C "$ROOT" -s -j2
make -C "$ROOT" -s install

as_pg() { runuser -u postgres -- "$@"; }
if [ -f "$DEMO/data/postmaster.pid" ]; then
	as_pg "$PGBIN/pg_ctl" -D "$DEMO/data" stop -m fast >/dev/null || true
fi
rm -rf "$DEMO"
mkdir -p "$DEMO"
chown postgres "$DEMO"
as_pg "$PGBIN/initdb" -D "$DEMO/data" -A trust >/dev/null
cat >> "$DEMO/data/postgresql.conf" <<CONF
shared_preload_libraries = 'stratago'
port = $PORT
unix_socket_directories = '$DEMO'
CONF
as_pg "$PGBIN/pg_ctl" -D "$DEMO/data" -l "$DEMO/server.log" -w start >/dev/null

as_pg psql -X -h "$DEMO" -p "$PORT" -d postgres -v ON_ERROR_STOP=1 -f "$ROOT/tools/demo.sql"

cat <<MSG

stratago demo server running (data: $DEMO/data, log: $DEMO/server.log).
Connect:  runuser -u postgres -- psql -h $DEMO -p $PORT postgres
Stop:     runuser -u postgres -- $PGBIN/pg_ctl -D $DEMO/data stop
MSG
