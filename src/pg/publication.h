/*
 * publication.h — which publications may cover a strata table
 * (publication.c): any, with stratago.wal_sink = postgres, whose changes
 * logical decoding reads (logical.h); none with the engine sink.
 *
 * Contract: both functions raise ERRCODE_FEATURE_NOT_SUPPORTED with the
 * same message, naming the table and the publication, when the engine
 * sink is configured, and do nothing otherwise; neither calls any other
 * stratago module.
 */
#ifndef STRATA_PUBLICATION_H
#define STRATA_PUBLICATION_H

#include "postgres.h"

#include "utils/relcache.h"

/* ERROR if strata table relname may not be part of publication pubname. */
extern void strata_check_publishable(const char *relname, const char *pubname);

/* The same for rel, a new strata table, and every publication that would include it. */
extern void strata_check_not_published(Relation rel);

#endif							/* STRATA_PUBLICATION_H */
