/*
 * hold.h — what a backend holds in the name of a statement and must give
 * back even if an error skips the code that would: memtable pins
 * (reference counts in shared memory) and references to local versions
 * (open SSTable readers).
 *
 * Contract:
 *  - strata_hold() returns a handle naming exactly that one hold. Two
 *    scans that pin the same memtable get two handles; each gives back
 *    its own with strata_unhold(), in any order. A hold is never found by
 *    what it holds: that is how two cursors closed out of order once
 *    released each other's pins (doc/DESIGN.md §3.3).
 *  - Each hold is remembered with the resource owner current when it was
 *    taken. When that owner is released on abort, whatever it still holds
 *    is given back through the release function; a leftover at commit is a
 *    bug in our code, reported with a WARNING and given back.
 *  - strata_unhold() of a handle that is not held (given back twice, or
 *    already given back by its owner's release) is an ERROR in every
 *    build: giving a reference count back twice frees memory another scan
 *    still reads.
 *  - Without a resource owner (the maintenance worker, the postmaster,
 *    which exit on error) nothing is remembered and the handle is
 *    STRATA_NO_HOLD, which strata_unhold() accepts.
 *
 * Backend-local state only; no locks.
 */
#ifndef STRATA_HOLD_H
#define STRATA_HOLD_H

#include "postgres.h"

/* Gives back one hold: what it is, in two words the taker chose. */
typedef void (*StrataHoldRelease) (uintptr_t a, uintptr_t b);

/* Names one hold of this backend; never reused while the backend lives. */
typedef uint64 StrataHoldId;

#define STRATA_NO_HOLD ((StrataHoldId) 0)

/* Make room for n more holds, so that strata_hold itself cannot fail. */
extern void strata_hold_reserve(int n);

/*
 * Remember a hold taken just now. REQUIRES: strata_hold_reserve made room
 * (so nothing can fail between taking the reference and remembering it).
 */
extern StrataHoldId strata_hold(StrataHoldRelease release, uintptr_t a, uintptr_t b);

/*
 * The code that took the hold gives it back: forget it (the caller then
 * releases the reference itself). ERROR if id is not held.
 */
extern void strata_unhold(StrataHoldId id);

#endif							/* STRATA_HOLD_H */
