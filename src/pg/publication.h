/*
 * publication.h — the refusal of publications that would cover a strata
 * table, until strata changes can be decoded logically (publication.c).
 *
 * Contract: both functions raise ERRCODE_FEATURE_NOT_SUPPORTED with the
 * same message, naming the table and the publication; neither calls any
 * other stratago module.
 */
#ifndef STRATA_PUBLICATION_H
#define STRATA_PUBLICATION_H

#include "postgres.h"

#include "utils/relcache.h"

/* ERROR: strata table relname cannot be part of publication pubname. */
extern void strata_publication_refuse(const char *relname, const char *pubname) pg_attribute_noreturn();

/* ERROR if an existing publication would include rel, a new strata table. */
extern void strata_check_not_published(Relation rel);

#endif							/* STRATA_PUBLICATION_H */
