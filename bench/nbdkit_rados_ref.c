/* nbdkit_rados_ref.c -- a CEILING REFERENCE for bench/bench_rados.py, not a product.
 *
 * An nbdkit plugin (C, thread model PARALLEL) that serves one export straight from
 * librados: the export is striped over 4 MiB RADOS objects named
 * "<prefix>.<object index as 16 hex digits>" in one pool. pread = rados_read per
 * object piece (zeros for a missing object or a short read), pwrite = rados_write
 * per piece, flush = nothing to do (a librados write returns once the OSDs have it).
 * No maps, no leases, no snapshots, no Python: about the least an NBD server over
 * RADOS can do per request. bench_rados.py runs it as "nbdkit-rados-ref" next to
 * nbdd, through the same fio nbd engine, to learn what the NBD hop alone costs
 * against fio's in-process rbd engine on this machine.
 *
 * Build (bench_rados.py does this in a temp dir):
 *   cc -O2 -fPIC -shared -o nbdkit_rados_ref.so nbdkit_rados_ref.c -lrados
 * Run:
 *   nbdkit -f -U SOCK ./nbdkit_rados_ref.so conf=CEPH.CONF pool=POOL \
 *          prefix=NAME size=BYTES [id=admin]
 */
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rados/librados.h>

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#define OBJ_SHIFT 22                           /* 4 MiB objects */
#define OBJ_SIZE (UINT64_C(1) << OBJ_SHIFT)

static const char *conf_path, *pool_name, *prefix, *client_id = "admin";
static int64_t export_size = -1;
static rados_t cluster;
static rados_ioctx_t ioctx;
static int connected;

static int
ref_config (const char *key, const char *value)
{
  if (strcmp (key, "conf") == 0)
    conf_path = value;
  else if (strcmp (key, "pool") == 0)
    pool_name = value;
  else if (strcmp (key, "prefix") == 0)
    prefix = value;
  else if (strcmp (key, "id") == 0)
    client_id = value;
  else if (strcmp (key, "size") == 0) {
    export_size = nbdkit_parse_size (value);
    if (export_size < 0)
      return -1;
  }
  else {
    nbdkit_error ("unknown parameter '%s'", key);
    return -1;
  }
  return 0;
}

static int
ref_config_complete (void)
{
  if (!conf_path || !pool_name || !prefix || export_size < 0) {
    nbdkit_error ("conf=, pool=, prefix= and size= are required");
    return -1;
  }
  return 0;
}

/* librados starts threads: connect after nbdkit's fork (if any), not before. */
static int
ref_after_fork (void)
{
  int r = rados_create (&cluster, client_id);
  if (r < 0) {
    nbdkit_error ("rados_create: %s", strerror (-r));
    return -1;
  }
  r = rados_conf_read_file (cluster, conf_path);
  if (r < 0) {
    nbdkit_error ("rados_conf_read_file %s: %s", conf_path, strerror (-r));
    return -1;
  }
  r = rados_connect (cluster);
  if (r < 0) {
    nbdkit_error ("rados_connect: %s", strerror (-r));
    return -1;
  }
  connected = 1;
  r = rados_ioctx_create (cluster, pool_name, &ioctx);
  if (r < 0) {
    nbdkit_error ("rados_ioctx_create %s: %s", pool_name, strerror (-r));
    return -1;
  }
  return 0;
}

static void
ref_unload (void)
{
  if (ioctx)
    rados_ioctx_destroy (ioctx);
  if (connected)
    rados_shutdown (cluster);
}

static void *
ref_open (int readonly)
{
  return &ioctx;                               /* no per-connection state */
}

static int64_t
ref_get_size (void *handle)
{
  return export_size;
}

static int
ref_can_multi_conn (void *handle)
{
  return 1;                                    /* no client-side cache */
}

static void
obj_name (char *out, size_t len, uint64_t index)
{
  snprintf (out, len, "%s.%016" PRIx64, prefix, index);
}

/* One piece of a request: `n` bytes at `in_obj` of object `name`. 0 or -errno. */
typedef int (*piece_fn) (const char *name, char *p, uint32_t n, uint64_t in_obj);

static int
read_piece (const char *name, char *p, uint32_t n, uint64_t in_obj)
{
  int r = rados_read (ioctx, name, p, n, in_obj);
  if (r == -ENOENT)
    r = 0;
  if (r < 0)
    return r;
  if ((uint32_t) r < n)
    memset (p + r, 0, n - r);                  /* a hole past the object's end */
  return 0;
}

static int
write_piece (const char *name, char *p, uint32_t n, uint64_t in_obj)
{
  int r = rados_write (ioctx, name, p, n, in_obj);
  return r < 0 ? r : 0;
}

/* Split [offset, offset+count) at object boundaries and run `fn` on each piece. */
static int
each_piece (const char *what, piece_fn fn, char *p, uint32_t count, uint64_t offset)
{
  char name[256];

  while (count > 0) {
    uint64_t index = offset >> OBJ_SHIFT, in_obj = offset & (OBJ_SIZE - 1);
    uint32_t n = count;
    if (in_obj + n > OBJ_SIZE)
      n = OBJ_SIZE - in_obj;
    obj_name (name, sizeof name, index);
    int r = fn (name, p, n, in_obj);
    if (r < 0) {
      nbdkit_error ("%s %s: %s", what, name, strerror (-r));
      errno = -r;
      return -1;
    }
    p += n;
    offset += n;
    count -= n;
  }
  return 0;
}

static int
ref_pread (void *handle, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  return each_piece ("rados_read", read_piece, buf, count, offset);
}

static int
ref_pwrite (void *handle, const void *buf, uint32_t count, uint64_t offset,
            uint32_t flags)
{
  /* (rados_write takes a const buffer; the cast only shares each_piece) */
  return each_piece ("rados_write", write_piece, (char *) buf, count, offset);
}

/* Every rados_write above returned after the OSDs committed it: nothing to flush.
 * Advertising flush (and FUA, same reason) keeps clients that want them happy. */
static int
ref_flush (void *handle, uint32_t flags)
{
  return 0;
}

static int
ref_can_fua (void *handle)
{
  return NBDKIT_FUA_NATIVE;
}

static struct nbdkit_plugin plugin = {
  .name              = "rados-ref",
  .version           = "1",
  .longname          = "Archipelago bench: ideal NBD server over librados (reference)",
  .config            = ref_config,
  .config_complete   = ref_config_complete,
  .config_help       = "conf=CEPH.CONF pool=POOL prefix=NAME size=BYTES [id=CLIENT]",
  .after_fork        = ref_after_fork,
  .unload            = ref_unload,
  .open              = ref_open,
  .get_size          = ref_get_size,
  .can_multi_conn    = ref_can_multi_conn,
  .can_fua           = ref_can_fua,
  .pread             = ref_pread,
  .pwrite            = ref_pwrite,
  .flush             = ref_flush,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
