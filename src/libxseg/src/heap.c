/* Data buffers: a page bitmap over the heap, first fit from a moving hint.
 *
 * A request owns at most one buffer (buf_off/buf_cap), written under the heap
 * lock together with the bitmap.  The request table is therefore the truth: a
 * process killed inside the lock is repaired by rebuilding the bitmap from it. */
#include <string.h>
#include "internal.h"

static uint64_t *bitmap(struct xseg *seg)
{
	return XPTR(seg, seg->hdr->bitmap_off);
}

static void mark(uint64_t *bm, uint64_t first, uint64_t n, int used)
{
	for (uint64_t p = first; p < first + n; p++) {
		if (used)
			bm[p >> 6] |= 1ull << (p & 63);
		else
			bm[p >> 6] &= ~(1ull << (p & 63));
	}
}

static void heap_rebuild(struct xseg *seg)
{
	struct xhdr *h = seg->hdr;
	uint64_t *bm = bitmap(seg);

	memset(bm, 0, ((h->heap_pages + 63) / 64) * 8);
	h->heap_used = 0;
	for (uint32_t i = 0; i < h->nr_reqs; i++) {
		struct xseg_request *r = &seg->reqs[i];

		if (!r->buf_cap)
			continue;
		mark(bm, (r->buf_off - h->heap_off) >> h->page_shift,
		     r->buf_cap >> h->page_shift, 1);
		h->heap_used += r->buf_cap >> h->page_shift;
	}
}

static void heap_lock(struct xseg *seg)
{
	if (xlock(&seg->hdr->heap_lock))
		heap_rebuild(seg);
}

void heap_init(struct xseg *seg)
{
	xlock_init(&seg->hdr->heap_lock);
	memset(bitmap(seg), 0, ((seg->hdr->heap_pages + 63) / 64) * 8);
}

/* First run of n clear bits in [from, end); returns end if none. */
static uint64_t find_run(const uint64_t *bm, uint64_t from, uint64_t end, uint64_t n)
{
	uint64_t p = from, run = 0;

	while (p < end) {
		if ((p & 63) == 0 && bm[p >> 6] == ~0ull) {
			p += 64;          /* a full word: skip it whole */
			run = 0;
			continue;
		}
		if (bm[p >> 6] & (1ull << (p & 63))) {
			run = 0;
		} else if (++run == n) {
			return p + 1 - n;
		}
		p++;
	}
	return end;
}

static int heap_take(struct xseg *seg, struct xseg_request *req, uint64_t pages)
{
	struct xhdr *h = seg->hdr;
	uint64_t *bm = bitmap(seg);
	uint64_t at = find_run(bm, h->heap_hint, h->heap_pages, pages);

	if (at == h->heap_pages)
		at = find_run(bm, 0, h->heap_pages, pages);
	if (at == h->heap_pages)
		return -1;
	mark(bm, at, pages, 1);
	h->heap_hint = at + pages;
	h->heap_used += pages;
	req->buf_cap = 0;    /* cap last: a half-written pair reads as "none" */
	req->buf_off = h->heap_off + (at << h->page_shift);
	req->buf_cap = pages << h->page_shift;
	return 0;
}

static void heap_give(struct xseg *seg, struct xseg_request *req)
{
	struct xhdr *h = seg->hdr;
	uint64_t pages = req->buf_cap >> h->page_shift;

	if (!pages)
		return;
	req->buf_cap = 0;
	mark(bitmap(seg), (req->buf_off - h->heap_off) >> h->page_shift, pages, 0);
	h->heap_used -= pages;
	if (h->heap_used == 0)
		h->heap_hint = 0;   /* an empty heap starts over: no needless split */
}

/* Give `req` a buffer of at least len bytes (keeping one that is big enough). */
int heap_alloc(struct xseg *seg, struct xseg_request *req, uint64_t len)
{
	struct xhdr *h = seg->hdr;
	uint64_t pages = (len + (1ull << h->page_shift) - 1) >> h->page_shift;
	int r;

	if (len > h->max_data)
		return xerr(EMSGSIZE, "request data of %llu bytes is over the segment's "
			    "limit of %llu bytes", (unsigned long long)len,
			    (unsigned long long)h->max_data);
	if (req->buf_cap >= len && req->buf_cap <= (pages << h->page_shift) * 4 + 65536)
		return 0;   /* reuse: big enough and not hoarding a huge buffer */
	heap_lock(seg);
	heap_give(seg, req);
	r = pages ? heap_take(seg, req, pages) : 0;
	xunlock(&h->heap_lock);
	if (r < 0) {
		/* short: take back the buffers idle requests keep in free queues */
		for (uint32_t i = 0; i < h->nr_ports; i++)
			xq_drop_buffers(seg, &seg->ports[i].freeq);
		heap_lock(seg);
		r = heap_take(seg, req, pages);
		xunlock(&h->heap_lock);
	}
	if (r < 0)
		return xerr(ENOBUFS, "segment heap has no free run of %llu bytes now "
			    "(%llu of %llu pages used); retry when requests are put back",
			    (unsigned long long)len, (unsigned long long)h->heap_used,
			    (unsigned long long)h->heap_pages);
	return 0;
}

void heap_free(struct xseg *seg, struct xseg_request *req)
{
	if (!req->buf_cap)
		return;
	heap_lock(seg);
	heap_give(seg, req);
	xunlock(&seg->hdr->heap_lock);
}

uint64_t heap_free_bytes(struct xseg *seg)
{
	return (seg->hdr->heap_pages - seg->hdr->heap_used) << seg->hdr->page_shift;
}
