/* Per-thread error reporting: every failure keeps its own errno and message. */
#include <stdarg.h>
#include <stdio.h>
#include "internal.h"

static __thread char msg[256];
static __thread int last_err;

static void xerr_v(int err, const char *fmt, va_list ap)
{
	vsnprintf(msg, sizeof(msg), fmt, ap);
	last_err = err;
	errno = err;
}

int xerr(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	xerr_v(err, fmt, ap);
	va_end(ap);
	return -1;
}

void *xerr_null(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	xerr_v(err, fmt, ap);
	va_end(ap);
	return NULL;
}

void xerr_clear(void)
{
	msg[0] = 0;
	last_err = 0;
}

const char *xseg_errmsg(void)
{
	return msg[0] ? msg : "no error";
}

int xseg_errno(void)
{
	return last_err;
}
