/*
 * walrecords.h — the identity of stratago's records in PostgreSQL's WAL:
 * the custom resource manager's id and the kinds of record it writes.
 * pgwal.c writes and redoes them (its head comment gives each layout);
 * logical.c writes and decodes the LOGICAL kind.
 *
 * Frozen: every record in every WAL segment, archive and standby carries
 * these numbers, so none may change meaning; new kinds take new codes.
 */
#ifndef STRATA_WALRECORDS_H
#define STRATA_WALRECORDS_H

/*
 * Resource manager id 141: PostgreSQL gives extensions 128..255 and keeps
 * 128 (RM_EXPERIMENTAL_ID) for experiments; 141 is our own pick in that
 * range. Ids are claimed on the PostgreSQL wiki's CustomWALResourceManagers
 * page, which this machine cannot reach: claim it there before a release.
 */
#define STRATA_RMGR_ID			141

/* Record kinds (the high bits of the record's info byte). */
#define XLOG_STRATA_RESERVE_XIDS 0x00
#define XLOG_STRATA_ROWS		0x10
#define XLOG_STRATA_CREATE		0x20
#define XLOG_STRATA_CONFLICT	0x30
#define XLOG_STRATA_OPTIONS		0x40
#define XLOG_STRATA_LOGICAL		0x50

#endif							/* STRATA_WALRECORDS_H */
