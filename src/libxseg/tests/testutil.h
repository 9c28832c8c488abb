/* Tiny test harness: CHECK macros and a pid-named segment destroyed at exit. */
#ifndef XSEG_TESTUTIL_H
#define XSEG_TESTUTIL_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include "xseg.h"

static char tu_name[64];
static pid_t tu_owner;

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "%s:%d: CHECK(%s) failed (errno %d: %s)\n", __FILE__, __LINE__, \
		#cond, errno, xseg_errmsg()); exit(1); } } while (0)
#define CHECK_ERR(expr, err) do { errno = 0; CHECK((expr) && errno == (err)); \
	if (getenv("XSEG_TEST_VERBOSE")) fprintf(stderr, "  ok: %s\n", xseg_errmsg()); \
	} while (0)

static void tu_cleanup(void)
{
	if (tu_name[0] && getpid() == tu_owner)
		xseg_destroy(tu_name);
}

/* A fresh segment named after the test and the pid: never collides. */
static struct xseg *tu_segment(const char *tag, const char *rest)
{
	char spec[256];
	struct xseg *seg;

	snprintf(tu_name, sizeof(tu_name), "xsegtest-%s-%d", tag, getpid());
	tu_owner = getpid();
	snprintf(spec, sizeof(spec), "posix:%s:%s", tu_name, rest);
	atexit(tu_cleanup);
	seg = xseg_create(spec);
	CHECK(seg);
	return seg;
}
#endif
