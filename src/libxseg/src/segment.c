/* Segments: spec strings, create/join/leave/destroy over POSIX shm, layout. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

#define ALIGN(x, a) (((x) + (a) - 1) & ~((uint64_t)(a) - 1))

static int parse_u(const char *field, const char *what, uint64_t lo, uint64_t hi,
		   uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(field, &end, 10);
	if (!*field || *end || errno || v < lo || v > hi)
		return xerr(EINVAL, "bad segment spec: %s %s must be a number from %llu to %llu",
			    what, *field ? field : "(empty)", (unsigned long long)lo,
			    (unsigned long long)hi);
	*out = v;
	return 0;
}

static int valid_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= XSEG_NAMELEN)
		return 0;
	for (; *name; name++)
		if (*name == '/' || *name <= ' ')
			return 0;
	return 1;
}

/* type:name:dynports:nr_ports:heap_MiB:page_shift:nr_reqs, trailing fields optional */
int xseg_parse_spec(const char *spec, struct xseg_spec *out)
{
	static const char *defaults[] = {"posix", "archipelago", "64", "128", "256", "12",
					 "4096"};
	const char *f[7];
	char buf[256], *save = NULL, *tok;
	uint64_t v[5];
	int n = 0;

	if (!spec || !*spec || strlen(spec) >= sizeof(buf))
		return xerr(EINVAL, "bad segment spec: empty or longer than %zu bytes",
			    sizeof(buf) - 1);
	strcpy(buf, spec);
	for (tok = strtok_r(buf, ":", &save); tok && n < 8; tok = strtok_r(NULL, ":", &save))
		if (n < 7)
			f[n++] = tok;
		else
			n++;
	if (n > 7 || strchr(spec, '\0')[-1] == ':' || strstr(spec, "::"))
		return xerr(EINVAL, "bad segment spec %s: expected "
			    "type:name:dynports:nr_ports:heap_MiB:page_shift:nr_reqs", spec);
	for (int i = n; i < 7; i++)
		f[i] = defaults[i];
	memset(out, 0, sizeof(*out));
	if (strcmp(f[0], "posix"))
		return xerr(EINVAL, "bad segment spec %s: type %s is not supported (only posix)",
			    spec, f[0]);
	if (!valid_name(f[1]))
		return xerr(EINVAL, "bad segment spec %s: name must be 1-%d characters "
			    "without '/' or blanks", spec, XSEG_NAMELEN - 1);
	if (parse_u(f[2], "dynports", 0, XSEG_NOPORT, &v[0]) ||
	    parse_u(f[3], "nr_ports", 1, XSEG_NOPORT, &v[1]) ||
	    parse_u(f[4], "heap_MiB", 1, 1 << 20, &v[2]) ||
	    parse_u(f[5], "page_shift", 9, 24, &v[3]) ||
	    parse_u(f[6], "nr_reqs", 1, 1 << 24, &v[4]))
		return -1;
	if (v[0] > v[1])
		return xerr(EINVAL, "bad segment spec %s: dynports %llu is more than nr_ports %llu",
			    spec, (unsigned long long)v[0], (unsigned long long)v[1]);
	strcpy(out->type, f[0]);
	strcpy(out->name, f[1]);
	out->dynports = v[0];
	out->nr_ports = v[1];
	out->heap_mib = v[2];
	out->page_shift = v[3];
	out->nr_reqs = v[4];
	return 0;
}

int xseg_format_spec(const struct xseg_spec *s, char *buf, size_t len)
{
	return snprintf(buf, len, "%s:%s:%u:%u:%llu:%u:%u", s->type, s->name, s->dynports,
			s->nr_ports, (unsigned long long)s->heap_mib, s->page_shift, s->nr_reqs);
}

static void shm_path(const char *name, char *out)
{
	snprintf(out, XSEG_NAMELEN + 2, "/%s", name);
}

static void layout(struct xhdr *h, const struct xseg_spec *s)
{
	uint64_t page = 1ull << s->page_shift, off;

	h->nr_ports = s->nr_ports;
	h->dynports = s->dynports;
	h->nr_reqs = s->nr_reqs;
	h->page_shift = s->page_shift;
	h->heap_pages = (s->heap_mib << 20) >> s->page_shift;
	off = ALIGN(sizeof(struct xhdr), 64);
	h->ports_off = off;
	off = ALIGN(off + (uint64_t)s->nr_ports * sizeof(struct xport), 64);
	h->reqs_off = off;
	off = ALIGN(off + (uint64_t)s->nr_reqs * sizeof(struct xseg_request), 64);
	h->bitmap_off = off;
	off += ALIGN((h->heap_pages + 63) / 64 * 8, 64);
	h->heap_off = ALIGN(off, page);
	h->size = h->heap_off + (h->heap_pages << s->page_shift);
	/* one request may take half the heap: room is left for everyone else */
	h->max_data = (h->heap_pages << s->page_shift) / 2;
}

static struct xseg *attach(int fd, size_t size, const char *name)
{
	struct xseg *seg = calloc(1, sizeof(*seg));
	void *base;

	if (!seg)
		return xerr_null(ENOMEM, "out of memory for a segment handle");
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		int e = errno;

		free(seg);
		return xerr_null(e, "cannot map segment %s (%zu bytes): %s", name, size,
				 strerror(e));
	}
	seg->base = base;
	seg->size = size;
	seg->hdr = base;
	seg->ports = XPTR(seg, seg->hdr->ports_off);
	seg->reqs = XPTR(seg, seg->hdr->reqs_off);
	snprintf(seg->name, sizeof(seg->name), "%s", name);
	return seg;
}

static void init_contents(struct xseg *seg)
{
	struct xhdr *h = seg->hdr;

	xq_init(&h->pool, XW_POOL, XSEG_NOPORT);
	xlock_init(&h->recovery_lock);
	heap_init(seg);
	for (uint32_t i = 0; i < h->nr_ports; i++) {
		struct xport *p = &seg->ports[i];

		memset(p, 0, sizeof(*p));
		xq_init(&p->freeq, XW_FREEQ, i);
		xq_init(&p->reqq, XW_REQQ, i);
		xq_init(&p->replyq, XW_REPLYQ, i);
		p->dynamic = i >= h->nr_ports - h->dynports;
		p->signal_port = i;
	}
	for (uint32_t i = 0; i < h->nr_reqs; i++) {
		struct xseg_request *r = &seg->reqs[i];

		memset(r, 0, sizeof(*r));
		r->idx = i;
		r->alloc_port = XSEG_NOPORT;
		xq_push_locked(seg, &h->pool, r);
	}
}

struct xseg *xseg_create(const char *specstr)
{
	struct xseg_spec spec;
	struct xhdr h0 = {0};
	char path[XSEG_NAMELEN + 2];
	struct xseg *seg;
	int fd;

	if (xseg_parse_spec(specstr, &spec))
		return NULL;
	layout(&h0, &spec);
	shm_path(spec.name, path);
	fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL, 0660);
	if (fd < 0) {
		int e = errno;

		return xerr_null(e, "cannot create segment %s: %s", spec.name,
				 e == EEXIST ? "it already exists" : strerror(e));
	}
	if (ftruncate(fd, h0.size) < 0) {
		int e = errno;

		close(fd);
		shm_unlink(path);
		return xerr_null(e, "cannot size segment %s to %llu bytes: %s", spec.name,
				 (unsigned long long)h0.size, strerror(e));
	}
	seg = attach(fd, h0.size, spec.name);
	close(fd);
	if (!seg) {
		shm_unlink(path);
		return NULL;
	}
	*seg->hdr = h0;
	seg->ports = XPTR(seg, h0.ports_off);
	seg->reqs = XPTR(seg, h0.reqs_off);
	seg->hdr->spec = spec;
	snprintf(seg->hdr->name, XSEG_NAMELEN, "%s", spec.name);
	seg->hdr->hdr_size = sizeof(struct xhdr);
	seg->hdr->port_size = sizeof(struct xport);
	seg->hdr->req_size = sizeof(struct xseg_request);
	seg->hdr->creator_pid = getpid();
	init_contents(seg);
	seg->hdr->version = XSEG_VERSION;
	seg->hdr->magic = XSEG_MAGIC;
	atomic_store(&seg->hdr->ready, 1);   /* last: joiners wait for this */
	return seg;
}

static int check_header(const struct xhdr *h, const char *name, size_t st_size)
{
	if (h->magic != XSEG_MAGIC)
		return xerr(EPROTO, "%s is not an xseg segment (bad magic)", name);
	if (h->version != XSEG_VERSION)
		return xerr(EPROTO, "segment %s has version %u.%u; this library speaks %u.%u",
			    name, h->version >> 16, h->version & 0xffff, XSEG_VERSION_MAJOR,
			    XSEG_VERSION_MINOR);
	if (h->hdr_size != sizeof(struct xhdr) || h->port_size != sizeof(struct xport) ||
	    h->req_size != sizeof(struct xseg_request))
		return xerr(EPROTO, "segment %s was built with a different layout "
			    "(another build of libxseg %u.%u?)", name, XSEG_VERSION_MAJOR,
			    XSEG_VERSION_MINOR);
	if (h->size > st_size)
		return xerr(EPROTO, "segment %s is truncated (%zu of %llu bytes)", name,
			    st_size, (unsigned long long)h->size);
	return 0;
}

struct xseg *xseg_join(const char *name)
{
	char path[XSEG_NAMELEN + 2];
	struct stat st;
	struct xhdr h;
	struct xseg *seg;
	int fd;

	if (!name || !valid_name(name))
		return xerr_null(EINVAL, "bad segment name %s", name ? name : "(null)");
	shm_path(name, path);
	fd = shm_open(path, O_RDWR, 0);
	if (fd < 0) {
		int e = errno;

		return xerr_null(e, "cannot join segment %s: %s", name,
				 e == ENOENT ? "it does not exist" : strerror(e));
	}
	if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(h) ||
	    pread(fd, &h, sizeof(h), 0) != sizeof(h)) {
		close(fd);
		return xerr_null(EPROTO, "segment %s is too short to be an xseg segment", name);
	}
	if (h.magic == 0) {
		close(fd);
		return xerr_null(EAGAIN, "segment %s is empty or still being created", name);
	}
	if (check_header(&h, name, st.st_size)) {
		close(fd);
		return NULL;
	}
	seg = attach(fd, h.size, name);
	close(fd);
	return seg;
}

void xseg_leave(struct xseg *seg)
{
	if (!seg)
		return;
	munmap(seg->base, seg->size);
	free(seg);
}

int xseg_destroy(const char *name)
{
	char path[XSEG_NAMELEN + 2];

	if (!name || !valid_name(name))
		return xerr(EINVAL, "bad segment name %s", name ? name : "(null)");
	shm_path(name, path);
	if (shm_unlink(path) < 0)
		return xerr(errno, "cannot destroy segment %s: %s", name,
			    errno == ENOENT ? "it does not exist" : strerror(errno));
	return 0;
}

void *xseg_base(struct xseg *seg)
{
	return seg->base;
}

int xseg_info(struct xseg *seg, struct xseg_info *info)
{
	struct xhdr *h = seg->hdr;

	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "%s", h->name);
	info->version = h->version;
	info->size = h->size;
	info->nr_ports = h->nr_ports;
	info->dynports = h->dynports;
	info->nr_reqs = h->nr_reqs;
	info->page_shift = h->page_shift;
	info->heap_size = h->heap_pages << h->page_shift;
	info->heap_free = heap_free_bytes(seg);
	info->max_data = h->max_data;
	info->pool_free = xq_count(&h->pool);
	info->creator_pid = h->creator_pid;
	return 0;
}
