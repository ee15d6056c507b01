# Makefile — builds the stratago extension with PGXS, and the standalone
# engine (library, unit tests, fuzz targets, tools, benchmark) with plain cc.
#
#   make                  the extension (stratago.so) for `make install`
#   make engine           build/libstrata_engine.a, tools and unit tests
#   make engine-check     run the engine unit tests (no server needed)
#   make engine-asan      the same under AddressSanitizer + UBSan (assert-enabled)
#   make fuzz             build the libFuzzer targets (clang-14)
#   make fuzz-check       bounded fuzz runs over the seed corpus
#   make installcheck-all every suite against temp instances (see test/run_all.sh)

MODULE_big = stratago
EXTENSION = stratago
DATA = sql/stratago--0.1.sql
PGFILEDESC = "stratago - LSM-tree table access method"

ENGINE_SRCS := $(sort $(wildcard src/engine/*/*.c))
GLUE_SRCS := $(sort $(wildcard src/pg/*.c))
OBJS = $(GLUE_SRCS:.c=.o) $(ENGINE_SRCS:.c=.o)

# pg_regress and isolation suites run in temp instances with the library
# preloaded (PGXS refuses `make check`; initdb refuses root: see test/run_all.sh).
REGRESS = extension dml functions indexes constraints vacuum rewrites publication persistence cic \
	cursors \
	scans fetches
REGRESS_OPTS = --temp-instance=tmp_check --temp-config=test/stratago.conf
ISOLATION = truncate-concurrent strata-update-rc strata-update-rr \
	strata-delete-conflict strata-row-locks strata-savepoint-conflict strata-old-row-version \
	strata-lock-strengths strata-insert-conflict strata-ssi strata-broken-chain \
	strata-vacuum-snapshot \
	strata-lock-queue strata-partition-move strata-merge-recheck strata-keyshare-chain \
	strata-lock-recheck strata-upsert-trigger strata-cic strata-upsert-rr \
	strata-cursors-flush strata-fetcher strata-compression-resync
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=output_iso \
	--temp-instance=tmp_check_iso --temp-config=test/stratago.conf

SHLIB_LINK = -llz4 -lzstd -lpthread

# strata-dump, the read-only inspector of the engine's files, is built with
# the standalone engine below and installed next to PostgreSQL's programs
# (pg_config --bindir), where a DBA facing a damaged table finds it.
SCRIPTS_built = build/tools/strata-dump

PG_CPPFLAGS = -I$(CURDIR)/src

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# No LLVM bitcode: JIT inlining of our C gains nothing and doubles build time.
with_llvm = no

# -Wextra on top of PGXS's warnings; the -Wno- flags silence patterns that
# PostgreSQL's own headers and callback signatures produce under -Wextra.
override CFLAGS += -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-sign-compare -Wno-missing-field-initializers -Wno-cast-function-type

# The engine is C11 and declares variables where they are first used.
src/engine/%.o: override CFLAGS += -std=gnu11 -Wno-declaration-after-statement

# PGXS tracks no header dependencies: rebuild on any header change, or
# objects compiled against an older struct layout get linked together.
$(GLUE_SRCS:.c=.o): $(wildcard src/pg/*.h) $(wildcard src/engine/*/*.h)
$(ENGINE_SRCS:.c=.o): $(wildcard src/engine/*/*.h)

# ---------------------------------------------------------------------------
# Standalone engine build (no PostgreSQL headers involved)
# ---------------------------------------------------------------------------
BUILD ?= build
ECC ?= cc
ECFLAGS ?= -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wmissing-prototypes -Isrc -pthread
ELIBS = -llz4 -lzstd -lpthread

ENGINE_OBJS := $(patsubst src/engine/%.c,$(BUILD)/engine/%.o,$(ENGINE_SRCS))
ENGINE_LIB := $(BUILD)/libstrata_engine.a
ENGINE_TESTS := $(patsubst test/engine/%.c,$(BUILD)/test/%,$(sort $(wildcard test/engine/test_*.c)))
TEST_SUPPORT := $(filter-out test/engine/test_%.c,$(wildcard test/engine/*.c))
TOOLS := $(patsubst tools/%.c,$(BUILD)/tools/%,$(sort $(wildcard tools/*.c)))

$(BUILD)/engine/%.o: src/engine/%.c $(wildcard src/engine/*/*.h)
	@mkdir -p $(dir $@)
	$(ECC) $(ECFLAGS) -c $< -o $@

$(ENGINE_LIB): $(ENGINE_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/test/%: test/engine/%.c $(TEST_SUPPORT) $(wildcard test/engine/*.h) $(ENGINE_LIB)
	@mkdir -p $(dir $@)
	$(ECC) $(ECFLAGS) -Itest/engine $< $(TEST_SUPPORT) $(ENGINE_LIB) -lcmocka $(ELIBS) -o $@

$(BUILD)/tools/%: tools/%.c $(ENGINE_LIB)
	@mkdir -p $(dir $@)
	$(ECC) $(ECFLAGS) $< $(ENGINE_LIB) $(ELIBS) -o $@

.PHONY: engine engine-check engine-asan fuzz fuzz-check installcheck-all
engine: $(ENGINE_LIB) $(ENGINE_TESTS) $(TOOLS)

engine-check: engine
	@set -e; for t in $(ENGINE_TESTS); do echo "== $$t"; $$t; done
	@echo "== strata-dump"; test/tools/test_strata_dump.sh $(BUILD)

engine-asan:
	$(MAKE) engine-check BUILD=build-asan ECC=clang-14 \
		ECFLAGS="-std=gnu11 -O1 -g -Wall -Wextra -Werror -Isrc -pthread -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -DSG_DEBUG"

FUZZ_TARGETS := $(patsubst test/fuzz/%.c,$(BUILD)/fuzz/%,$(sort $(wildcard test/fuzz/fuzz_*.c)))
$(BUILD)/fuzz/%: test/fuzz/%.c $(ENGINE_SRCS) $(wildcard src/engine/*/*.h)
	@mkdir -p $(dir $@)
	clang-14 -std=gnu11 -O1 -g -Isrc -pthread -fsanitize=fuzzer,address,undefined $< $(ENGINE_SRCS) $(ELIBS) -o $@

fuzz: $(FUZZ_TARGETS)

# Each target runs over its seed corpus plus a bounded number of new inputs.
# The output goes to a log rather than through a pipe: /bin/sh has no
# pipefail, so `target | tail` would report tail's status and a crash would
# pass. On failure the log's tail (the sanitizer report) is printed and the
# crashing input is kept under $(BUILD)/fuzz/ (-artifact_prefix).
fuzz-check: fuzz
	@set -e; for f in $(FUZZ_TARGETS); do n=$$(basename $$f); \
		echo "== $$n"; mkdir -p $(BUILD)/fuzz/corpus-$$n; log=$(BUILD)/fuzz/$$n.log; \
		if $$f -runs=20000 -max_len=65536 -artifact_prefix=$(BUILD)/fuzz/$$n- \
			$(BUILD)/fuzz/corpus-$$n test/fuzz/corpus/$${n#fuzz_} >$$log 2>&1; \
		then tail -2 $$log; \
		else rc=$$?; tail -40 $$log; echo "FAIL $$n (exit $$rc; full output in $$log)"; exit 1; fi; \
	done

installcheck-all:
	test/run_all.sh

# PostgreSQL's own regression and isolation suites with strata as the default
# table AM, judged against test/pg-suites/allowlist.txt (tools/pg-suites/
# README.md). Separate from installcheck-all. PG_SUITES_OPTS=--heap or
# --vanilla runs the baselines.
PG_SUITES_OPTS ?=
.PHONY: pg-suites
pg-suites:
	tools/pg-suites/run.sh $(PG_SUITES_OPTS)

# Engine microbenchmark against RocksDB's db_bench (bench/engine/run.sh).
.PHONY: engine-bench
engine-bench: $(BUILD)/bench/engine_bench $(BUILD)/bench/leveldb_bench
$(BUILD)/bench/engine_bench: bench/engine/engine_bench.c $(ENGINE_LIB)
	@mkdir -p $(dir $@)
	$(ECC) $(ECFLAGS) -O2 $< $(ENGINE_LIB) $(ELIBS) -o $@
# the same program over LevelDB (Debian's libleveldb-dev), the second anchor
$(BUILD)/bench/leveldb_bench: bench/engine/engine_bench.c
	@mkdir -p $(dir $@)
	$(ECC) $(ECFLAGS) -O2 -DBENCH_LEVELDB $< -lleveldb -o $@

# strata against heap in one scratch PostgreSQL cluster (bench/pg/README.md):
# every workload on both access methods, alternately, medians and ratios in
# bench/results/pg.md. As root. BENCH_OPTS passes options to bench/pg/run.sh,
# e.g. BENCH_OPTS="--bloat-seconds 600" for the 10-minute bloat run.
BENCH_OPTS ?=
.PHONY: bench
bench:
	bench/pg/run.sh $(BENCH_OPTS)

clean: clean-engine
clean-engine:
	rm -rf $(BUILD) build-asan
