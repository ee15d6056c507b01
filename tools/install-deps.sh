#!/bin/bash
# tools/install-deps.sh — install everything stratago needs to build, test
# and benchmark on Debian bookworm (run as root). Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
	build-essential make ca-certificates python3 \
	postgresql-15 postgresql-server-dev-15 postgresql-contrib-15 \
	postgresql-15-wal2json \
	liblz4-dev libzstd-dev libxxhash-dev \
	libcmocka-dev libipc-run-perl \
	clang-14 libclang-rt-14-dev llvm-14 \
	rocksdb-tools libleveldb-dev sysbench >/dev/null
