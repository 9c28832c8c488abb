"""NBD wire protocol: constants and encoders (doc/proto.md in NetworkBlockDevice/nbd).

Everything is big-endian. Only the fixed newstyle handshake is spoken; the
extended-headers and resize extensions are not negotiated.
"""
import errno as _errno
import struct

# -- handshake ------------------------------------------------------------------
NBDMAGIC = 0x4E42444D41474943            # "NBDMAGIC"
IHAVEOPT = 0x49484156454F5054            # "IHAVEOPT"
REPLY_MAGIC_OPT = 0x0003E889045565A9      # option reply magic

FLAG_FIXED_NEWSTYLE = 1 << 0             # handshake flags (server)
FLAG_NO_ZEROES = 1 << 1
FLAG_C_FIXED_NEWSTYLE = 1 << 0           # client flags
FLAG_C_NO_ZEROES = 1 << 1
KNOWN_CLIENT_FLAGS = FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES

OPT_EXPORT_NAME = 1
OPT_ABORT = 2
OPT_LIST = 3
OPT_PEEK_EXPORT = 4
OPT_STARTTLS = 5
OPT_INFO = 6
OPT_GO = 7
OPT_STRUCTURED_REPLY = 8
OPT_LIST_META_CONTEXT = 9
OPT_SET_META_CONTEXT = 10
OPT_EXTENDED_HEADERS = 11

REP_ACK = 1
REP_SERVER = 2
REP_INFO = 3
REP_META_CONTEXT = 4
REP_ERR = 1 << 31
REP_ERR_UNSUP = REP_ERR + 1
REP_ERR_POLICY = REP_ERR + 2
REP_ERR_INVALID = REP_ERR + 3
REP_ERR_PLATFORM = REP_ERR + 4
REP_ERR_TLS_REQD = REP_ERR + 5
REP_ERR_UNKNOWN = REP_ERR + 6
REP_ERR_SHUTDOWN = REP_ERR + 7
REP_ERR_BLOCK_SIZE_REQD = REP_ERR + 8
REP_ERR_TOO_BIG = REP_ERR + 9

INFO_EXPORT = 0
INFO_NAME = 1
INFO_DESCRIPTION = 2
INFO_BLOCK_SIZE = 3

# -- transmission flags (16 bits, sent with the export size) ------------------------
TF_HAS_FLAGS = 1 << 0
TF_READ_ONLY = 1 << 1
TF_SEND_FLUSH = 1 << 2
TF_SEND_FUA = 1 << 3
TF_ROTATIONAL = 1 << 4
TF_SEND_TRIM = 1 << 5
TF_SEND_WRITE_ZEROES = 1 << 6
TF_SEND_DF = 1 << 7
TF_CAN_MULTI_CONN = 1 << 8
TF_SEND_RESIZE = 1 << 9
TF_SEND_CACHE = 1 << 10
TF_SEND_FAST_ZERO = 1 << 11

# -- requests and replies -------------------------------------------------------------
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
STRUCTURED_REPLY_MAGIC = 0x668E33EF

REQUEST = struct.Struct(">IHHQQI")       # magic, flags, type, cookie, offset, length
SIMPLE_REPLY = struct.Struct(">IIQ")     # magic, error, cookie
CHUNK = struct.Struct(">IHHQI")          # magic, flags, type, cookie, length
OPTION = struct.Struct(">QII")           # IHAVEOPT, option, length
OPTION_REPLY = struct.Struct(">QIII")    # magic, option, reply type, length

CMD_READ = 0
CMD_WRITE = 1
CMD_DISC = 2
CMD_FLUSH = 3
CMD_TRIM = 4
CMD_CACHE = 5
CMD_WRITE_ZEROES = 6
CMD_BLOCK_STATUS = 7
CMD_RESIZE = 8
CMD_NAMES = {CMD_READ: "READ", CMD_WRITE: "WRITE", CMD_DISC: "DISC", CMD_FLUSH: "FLUSH",
             CMD_TRIM: "TRIM", CMD_CACHE: "CACHE", CMD_WRITE_ZEROES: "WRITE_ZEROES",
             CMD_BLOCK_STATUS: "BLOCK_STATUS", CMD_RESIZE: "RESIZE"}

CMD_FLAG_FUA = 1 << 0
CMD_FLAG_NO_HOLE = 1 << 1
CMD_FLAG_DF = 1 << 2
CMD_FLAG_REQ_ONE = 1 << 3
CMD_FLAG_FAST_ZERO = 1 << 4
CMD_FLAG_PAYLOAD_LEN = 1 << 5

REPLY_FLAG_DONE = 1 << 0
REPLY_TYPE_NONE = 0
REPLY_TYPE_OFFSET_DATA = 1
REPLY_TYPE_OFFSET_HOLE = 2
REPLY_TYPE_BLOCK_STATUS = 5
REPLY_TYPE_ERROR = (1 << 15) + 1
REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2

STATE_HOLE = 1 << 0                      # base:allocation flags
STATE_ZERO = 1 << 1
META_BASE_ALLOCATION = "base:allocation"
META_ID_BASE_ALLOCATION = 1

# -- errors on the wire ----------------------------------------------------------------
EPERM = 1
EIO = 5
ENOMEM = 12
EINVAL = 22
ENOSPC = 28
EOVERFLOW = 75
ENOTSUP = 95
ESHUTDOWN = 108

_ERRNO_TO_WIRE = {
    _errno.EPERM: EPERM, _errno.EROFS: EPERM, _errno.EACCES: EPERM,
    _errno.EIO: EIO, _errno.ENOMEM: ENOMEM, _errno.EINVAL: EINVAL,
    _errno.ENOSPC: ENOSPC, _errno.EDQUOT: ENOSPC, _errno.EFBIG: ENOSPC,
    _errno.EOVERFLOW: EOVERFLOW, _errno.ENOTSUP: ENOTSUP, _errno.EOPNOTSUPP: ENOTSUP,
    _errno.ESHUTDOWN: ESHUTDOWN, _errno.ERANGE: EINVAL,
}


def wire_errno(err):
    """The NBD error value for a host errno (anything unknown becomes EIO)."""
    return _ERRNO_TO_WIRE.get(err, EIO)


# -- limits --------------------------------------------------------------------------
MAX_STRING = 4096                        # export names, queries, messages
MAX_OPTION_DATA = 64 * 1024              # longer option payloads are refused
MIN_BLOCK = 1
PREFERRED_BLOCK = 4096
MAX_BLOCK = 32 * 1024 * 1024             # largest READ/WRITE payload we accept


# -- encoders (server side) ------------------------------------------------------------

def greeting():
    return struct.pack(">QQH", NBDMAGIC, IHAVEOPT, FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)


def option_reply(option, reply_type, data=b""):
    return OPTION_REPLY.pack(REPLY_MAGIC_OPT, option, reply_type, len(data)) + data


def info_export(size, flags):
    return struct.pack(">HQH", INFO_EXPORT, size, flags)


def info_block_size(minimum, preferred, maximum):
    return struct.pack(">HIII", INFO_BLOCK_SIZE, minimum, preferred, maximum)


def info_name(name):
    return struct.pack(">H", INFO_NAME) + name.encode()


def info_description(text):
    return struct.pack(">H", INFO_DESCRIPTION) + text.encode()


def rep_server(name, description=""):
    raw = name.encode()
    return struct.pack(">I", len(raw)) + raw + description.encode()


def rep_meta_context(ctx_id, name):
    return struct.pack(">I", ctx_id) + name.encode()


def export_name_reply(size, flags, no_zeroes):
    return struct.pack(">QH", size, flags) + (b"" if no_zeroes else bytes(124))


def simple_reply(cookie, error=0):
    return SIMPLE_REPLY.pack(SIMPLE_REPLY_MAGIC, error, cookie)


def chunk(cookie, ctype, length, flags=REPLY_FLAG_DONE):
    return CHUNK.pack(STRUCTURED_REPLY_MAGIC, flags, ctype, cookie, length)


def chunk_none(cookie):
    return chunk(cookie, REPLY_TYPE_NONE, 0)


def chunk_data_header(cookie, offset, length, flags=REPLY_FLAG_DONE):
    """Header of an OFFSET_DATA chunk carrying `length` bytes (data follows)."""
    return chunk(cookie, REPLY_TYPE_OFFSET_DATA, length + 8, flags) + struct.pack(">Q", offset)


def chunk_hole(cookie, offset, length, flags=REPLY_FLAG_DONE):
    return chunk(cookie, REPLY_TYPE_OFFSET_HOLE, 12, flags) + struct.pack(">QI", offset, length)


def chunk_error(cookie, error, message=""):
    msg = message.encode()[:MAX_STRING]
    return (chunk(cookie, REPLY_TYPE_ERROR, 6 + len(msg))
            + struct.pack(">IH", error, len(msg)) + msg)


def chunk_block_status(cookie, ctx_id, extents):
    """extents: [(length, flags), ...], at least one."""
    body = struct.pack(">I", ctx_id) + b"".join(struct.pack(">II", n, f) for n, f in extents)
    return chunk(cookie, REPLY_TYPE_BLOCK_STATUS, len(body)) + body


# -- encoders (client side: our own client, the tests and the kernel connector) ---------

def option(opt, data=b""):
    return OPTION.pack(IHAVEOPT, opt, len(data)) + data


def request(cmd, offset=0, length=0, cookie=0, flags=0):
    return REQUEST.pack(REQUEST_MAGIC, flags, cmd, cookie, offset, length)


def go_data(name, infos=(INFO_BLOCK_SIZE,)):
    raw = name.encode()
    return (struct.pack(">I", len(raw)) + raw + struct.pack(">H", len(infos))
            + b"".join(struct.pack(">H", i) for i in infos))


def meta_context_data(name, queries):
    raw = name.encode()
    out = struct.pack(">I", len(raw)) + raw + struct.pack(">I", len(queries))
    for q in queries:
        out += struct.pack(">I", len(q.encode())) + q.encode()
    return out
