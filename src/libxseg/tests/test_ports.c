/* Ports and segments: binding, dynamic ports, specs, versions, bad input. */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "testutil.h"
#include "internal.h"

static void test_specs(void)
{
	struct xseg_spec s;
	char buf[128];
	const char *bad[] = {"", "tcp:x", "posix:a/b", "posix:x:9:4", "posix:x:1:2:0",
			     "posix:x:1:2:3:4", "posix:x:1:2:3:12:0", "posix:x:1:2:3:12:5:6",
			     "posix::1", "posix:x:1:2:", "posix:x:-1:2", "posix:x:1z"};

	CHECK(xseg_parse_spec("posix:abc", &s) == 0);
	CHECK(s.dynports == 64 && s.nr_ports == 128 && s.heap_mib == 256 && s.nr_reqs == 4096);
	xseg_format_spec(&s, buf, sizeof(buf));
	CHECK(strcmp(buf, "posix:abc:64:128:256:12:4096") == 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_ERR(xseg_parse_spec(bad[i], &s) < 0, EINVAL);
}

static void test_bind(struct xseg *seg)
{
	struct xseg_port_info pi;
	int d1, d2;
	pid_t pid;

	CHECK(xseg_bind(seg, 0, "peer0", 0) == 0);
	CHECK_ERR(xseg_bind(seg, 0, "again", 0) < 0, EADDRINUSE);
	CHECK_ERR(xseg_bind(seg, 99, "x", 0) < 0, EINVAL);
	d1 = xseg_bind(seg, XSEG_ANYPORT, "dyn", 0);
	d2 = xseg_bind(seg, XSEG_ANYPORT, "dyn", 0);
	CHECK(d1 == 6 && d2 == 7);   /* the top two of 8 are dynamic */
	CHECK_ERR(xseg_bind(seg, XSEG_ANYPORT, "dyn", 0) < 0, EADDRNOTAVAIL);
	CHECK(xseg_port_info(seg, 0, &pi) == 0 && pi.bound == 1 && pi.owner_alive &&
	      strcmp(pi.owner, "peer0") == 0 && pi.owner_pid == getpid());
	/* another process cannot take it, nor unbind it */
	pid = fork();
	if (pid == 0)
		_exit(xseg_bind(seg, 0, "thief", 0) < 0 && errno == EADDRINUSE &&
		      xseg_unbind(seg, 0) < 0 && errno == EPERM ? 0 : 1);
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(xseg_unbind(seg, 0) == 0 && xseg_unbind(seg, d1) == 0 && xseg_unbind(seg, d2) == 0);
	CHECK_ERR(xseg_unbind(seg, 0) < 0, EPERM);
	CHECK(xseg_bind(seg, 0, "peer0", 0) == 0);   /* re-bind after unbind */
	CHECK(xseg_unbind(seg, 0) == 0);
}

static void test_unbound(struct xseg *seg)
{
	struct xseg_request *r;

	CHECK_ERR(!xseg_get_request(seg, 1, 0), EBADF);
	CHECK(xseg_bind(seg, 1, "c", 0) == 1);
	r = xseg_get_request(seg, 1, 0);
	CHECK(r);
	CHECK_ERR(xseg_submit(seg, 1, 2, r) < 0, ECONNREFUSED);   /* nobody on 2 */
	CHECK_ERR(xseg_submit(seg, 1, 1000, r) < 0, EINVAL);
	CHECK_ERR(xseg_set_target(r, "x", XSEG_MAX_TARGETLEN + 1) < 0, ENAMETOOLONG);
	CHECK(r->path_len == 0 && r->where == XW_HELD);           /* untouched */
	CHECK(xseg_put_request(seg, 1, r) == 0);
	CHECK(xseg_unbind(seg, 1) == 0);
}

static void test_join(const char *name)
{
	struct xseg *a, *b;
	struct xseg_info in;
	int fd;
	struct xhdr *h;
	char other[96], vname[72];

	CHECK_ERR(!xseg_join("xsegtest-does-not-exist"), ENOENT);
	CHECK_ERR(!xseg_join("bad/name"), EINVAL);
	a = xseg_join(name);
	CHECK(a && xseg_info(a, &in) == 0 && in.nr_ports == 8);
	snprintf(other, sizeof(other), "posix:%s", name);
	CHECK_ERR(!xseg_create(other), EEXIST);
	/* a segment of another version is refused, and left alone */
	snprintf(vname, sizeof(vname), "%s-v", name);
	snprintf(other, sizeof(other), "posix:%s:1:2:1", vname);
	b = xseg_create(other);
	CHECK(b);
	h = xseg_base(b);
	h->version = (XSEG_VERSION_MAJOR + 1) << 16;
	CHECK_ERR(!xseg_join(vname), EPROTO);
	CHECK(h->version == (XSEG_VERSION_MAJOR + 1) << 16);
	xseg_leave(b);
	CHECK(xseg_destroy(vname) == 0);
	CHECK_ERR(xseg_destroy(vname) < 0, ENOENT);
	/* not a segment at all */
	snprintf(other, sizeof(other), "/%s-junk", name);
	fd = shm_open(other, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0 && write(fd, "junkjunkjunkjunk", 16) == 16);
	close(fd);
	CHECK_ERR(!xseg_join(other + 1), EPROTO);
	shm_unlink(other);
	xseg_leave(a);
}

int main(void)
{
	struct xseg *seg = tu_segment("ports", "2:8:4:12:64");

	test_specs();
	test_bind(seg);
	test_unbound(seg);
	test_join(tu_name);
	xseg_leave(seg);
	return 0;
}
