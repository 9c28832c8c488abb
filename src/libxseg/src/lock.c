/* Robust process-shared mutexes: a process killed while holding one does not
 * wedge the segment; the next locker is told so and repairs what it guards. */
#include "internal.h"

int xlock_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int r;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	r = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return r;
}

int xlock(pthread_mutex_t *m)
{
	int r = pthread_mutex_lock(m);

	if (r == EOWNERDEAD) {
		/* The caller repairs the guarded state before anyone else sees it. */
		pthread_mutex_consistent(m);
		return 1;
	}
	return 0;
}

void xunlock(pthread_mutex_t *m)
{
	pthread_mutex_unlock(m);
}
