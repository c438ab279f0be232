"""NBD protocol values and wire layouts the lab's data plane speaks (a declarative table).

Source: the NBD protocol document, doc/proto.md of github.com/NetworkBlockDevice/nbd
("Values", "Structured reply chunk message", "Metadata querying"). Names are the spec's
without the NBD_ prefix.
"""
import struct

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
STRUCTURED_REPLY_MAGIC = 0x668E33EF

# handshake flags (server) and client flags
FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES = 1, 2

# options
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_INFO, OPT_GO = 1, 2, 3, 6, 7
OPT_STRUCTURED_REPLY, OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT = 8, 9, 10

# option reply types
REP_ACK, REP_INFO, REP_META_CONTEXT = 1, 3, 4
_ERR = 2**31
REP_ERR_UNSUP, REP_ERR_POLICY, REP_ERR_INVALID, REP_ERR_UNKNOWN, REP_ERR_TOO_BIG = (
    _ERR + 1, _ERR + 2, _ERR + 3, _ERR + 6, _ERR + 9)
INFO_EXPORT, INFO_BLOCK_SIZE = 0, 3

# transmission flags
TFLAG_HAS_FLAGS = 1 << 0
TFLAG_SEND_FLUSH = 1 << 2
TFLAG_SEND_TRIM = 1 << 5
TFLAG_SEND_WRITE_ZEROES = 1 << 6
TFLAG_CAN_MULTI_CONN = 1 << 8
TFLAG_SEND_FAST_ZERO = 1 << 11
TRANSMISSION_FLAGS = (TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH | TFLAG_SEND_TRIM
                      | TFLAG_SEND_WRITE_ZEROES | TFLAG_CAN_MULTI_CONN | TFLAG_SEND_FAST_ZERO)

# commands and command flags
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM = 0, 1, 2, 3, 4
CMD_WRITE_ZEROES, CMD_BLOCK_STATUS = 6, 7
CMD_FLAG_FUA, CMD_FLAG_NO_HOLE, CMD_FLAG_DF, CMD_FLAG_REQ_ONE, CMD_FLAG_FAST_ZERO = (
    1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4)

# structured replies
REPLY_FLAG_DONE = 1
REPLY_TYPE_NONE, REPLY_TYPE_OFFSET_DATA, REPLY_TYPE_OFFSET_HOLE = 0, 1, 2
REPLY_TYPE_BLOCK_STATUS = 5
REPLY_TYPE_ERROR = 2**15 + 1

# metadata contexts: the one this server offers, and its flags
META_BASE_ALLOCATION = "base:allocation"
STATE_HOLE, STATE_ZERO = 1, 2

# error values (the spec fixes them to these errno numbers)
EPERM, EIO, EINVAL, ENOSPC, EOVERFLOW, ENOTSUP = 1, 5, 22, 28, 75, 95

HANDSHAKE = struct.Struct(">QQH")
OPTION = struct.Struct(">QII")
OPTION_REPLY = struct.Struct(">QII I")
REQUEST = struct.Struct(">IHHQQI")
SIMPLE_REPLY = struct.Struct(">IIQ")
CHUNK = struct.Struct(">IHHQI")            # magic, flags, type, cookie, payload length
CHUNK_OFFSET = struct.Struct(">IHHQIQ")    # ... + the offset of OFFSET_DATA
CHUNK_HOLE = struct.Struct(">IHHQIQI")     # ... + offset, hole size of OFFSET_HOLE
CHUNK_ERROR = struct.Struct(">IHHQIIH")    # ... + error, message length of ERROR
INFO_EXPORT_REPLY = struct.Struct(">HQH")

MAX_OPTION = 64 * 1024
MAX_STRING = 4096                   # the spec's limit on names and queries
MAX_REQUEST = 32 * 1024 * 1024      # per READ/WRITE, announced as the maximum block size
MIN_BLOCK, PREFERRED_BLOCK = 1, 4096
MAX_EXTENTS = 16384                 # block-status descriptors per reply (spec: SHOULD <= 2^20)
META_CONTEXT_ID = 1                 # the id base:allocation gets when selected
