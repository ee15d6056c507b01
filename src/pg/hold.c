/*
 * hold.c — the backend's list of holds (hold.h): memtable pins and local
 * version references a statement took, each with the resource owner that
 * was current, given back by their takers or, on abort, by the owner's
 * release.
 *
 * The list is short (a few entries per open scan) and searched from the
 * end, where the newest holds are.
 */
#include "postgres.h"

#include "utils/memutils.h"
#include "utils/resowner.h"

#include "pg/hold.h"

typedef struct Hold
{
	StrataHoldId id;
	StrataHoldRelease release;
	uintptr_t	a;
	uintptr_t	b;
	ResourceOwner owner;
} Hold;

static Hold *holds = NULL;
static int	nholds = 0;
static int	capholds = 0;
static StrataHoldId next_hold_id = 1;

/*
 * Resource release callback: give back what the owner being released
 * still holds. ResourceOwnerRelease makes each owner of the tree current
 * in turn, so comparing with CurrentResourceOwner visits exactly the
 * released owner's holds.
 */
static void
release_holds(ResourceReleasePhase phase, bool isCommit, bool isTopLevel, void *arg)
{
	if (phase != RESOURCE_RELEASE_BEFORE_LOCKS)
		return;
	for (int i = nholds - 1; i >= 0; i--)
	{
		Hold		h = holds[i];

		if (h.owner != CurrentResourceOwner)
			continue;
		/* forget it first: if the release fails, it is not tried again */
		holds[i] = holds[--nholds];
		if (isCommit)
			elog(WARNING, "stratago: a scan left a memtable or SSTable reference behind");
		h.release(h.a, h.b);
	}
}

void
strata_hold_reserve(int n)
{
	if (holds == NULL)
	{
		capholds = Max(16, n);
		holds = MemoryContextAlloc(TopMemoryContext, sizeof(Hold) * capholds);
		RegisterResourceReleaseCallback(release_holds, NULL);
	}
	while (nholds + n > capholds)
	{
		capholds *= 2;
		holds = repalloc(holds, sizeof(Hold) * capholds);
	}
}

StrataHoldId
strata_hold(StrataHoldRelease release, uintptr_t a, uintptr_t b)
{
	Hold	   *h;

	if (CurrentResourceOwner == NULL)
		return STRATA_NO_HOLD;	/* the worker and the postmaster exit on error */
	Assert(nholds < capholds);
	h = &holds[nholds++];
	h->id = next_hold_id++;
	h->release = release;
	h->a = a;
	h->b = b;
	h->owner = CurrentResourceOwner;
	return h->id;
}

void
strata_unhold(StrataHoldId id)
{
	if (id == STRATA_NO_HOLD)
		return;
	for (int i = nholds - 1; i >= 0; i--)
		if (holds[i].id == id)
		{
			holds[i] = holds[--nholds];
			return;
		}
	elog(ERROR, "stratago: hold " UINT64_FORMAT " given back but not held", id);
}
