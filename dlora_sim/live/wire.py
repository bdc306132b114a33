"""The wire format of live DLoRA: numpy buffers behind one small typed header, never pickle.

A message is like a parcel with a printed label: the label (frame 0) is a fixed ``struct`` —
magic, version, message kind, session, step, attempt, sequence number, exchange index — followed
by one short descriptor per array (dtype code and shape); every array then travels as its own
raw frame, exactly ``prod(shape) * itemsize`` bytes. Nothing on the wire is ever executed or
unpickled, so a peer can at worst send a parcel that is refused.

Every way a parcel can be wrong (short or unknown label, a shape that does not match its bytes,
too many arrays, more bytes than the limit) raises one :class:`WireError` whose message is one
line naming the field; the receiver logs that line and goes on serving its session.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"DLRA"
VERSION = 1
#: magic, version, kind, array count, exchange index, session, step, attempt, sequence number
HEADER = struct.Struct("<4sBBBxHQIIQ")
#: one array: dtype code, number of dimensions (its dims follow, one uint32 each)
ARRAY = struct.Struct("<BB")
DIM = struct.Struct("<I")
#: the default limit of one message's bytes (header and every array): a MiniLM-L6 message is well
#: under 2 MiB; a limit keeps one bad peer from making the receiver hold gigabytes
MAX_MESSAGE_BYTES = 64 * 2**20
MAX_ARRAYS = 8
MAX_DIMS = 4

_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),
    2: np.dtype("<f2"),
    3: np.dtype("<f8"),
    4: np.dtype("<i4"),
    5: np.dtype("<i8"),
    6: np.dtype("u1"),
}
_CODES = {dtype: code for code, dtype in _DTYPES.items()}


class WireError(ValueError):
    """A message that cannot be read; the message is one line that names the problem."""


class Kind(enum.IntEnum):
    """What a message is. Requests go cloud -> edge (the cloud pulls); the edge answers each with
    the reply of the same sequence number. ``HELLO`` is the edge's, it opens or resumes a session."""

    HELLO = 1  # edge: open or resume a session at a step (arrays: active mask, offloaded weights)
    WELCOME = 2  # cloud: the session is open
    NEXT = 3  # cloud: what comes next? (the ``start`` exchange; weights exchange: the last gradients)
    BATCH = 4  # edge: a training step's batch (embeddings, lengths[, module weights])
    PROBE = 5  # edge: a KR probe batch, same arrays, no update follows
    KR = 6  # edge: a KR decision (new active mask, weights of the newly killed modules)
    DONE = 7  # edge: the job is finished
    FWD = 8  # cloud: a module group's input; the reply carries the group's output deltas
    HEAD = 9  # cloud: the pooled final hidden states; the reply carries their gradient
    BWD = 10  # cloud: a group's output gradients; the reply carries the summed input gradient
    PING = 11  # cloud: calibration round trip (any payload); the reply echoes its size
    REPLY = 12  # edge: the answer to FWD, HEAD, BWD or PING


@dataclass(frozen=True)
class Message:
    """One decoded message: its label and its arrays (read-only views of the received frames)."""

    kind: Kind
    session: int
    step: int
    attempt: int
    seq: int
    exchange: int = 0
    arrays: tuple[np.ndarray, ...] = field(default=(), repr=False)

    @property
    def payload_bytes(self) -> int:
        """Bytes of the arrays alone (what the cost model counts for a message's data)."""
        return sum(int(a.nbytes) for a in self.arrays)


def encode(message: Message, limit: int = MAX_MESSAGE_BYTES) -> list[bytes | memoryview]:
    """The frames of ``message``: the label, then one raw buffer per array (no copy when contiguous).

    Raises:
        WireError: an array of a dtype the wire does not carry, too many arrays or dimensions, a
            field out of range, or more bytes than ``limit``.
    """
    if len(message.arrays) > MAX_ARRAYS:
        raise WireError(f"arrays: {len(message.arrays)} arrays, at most {MAX_ARRAYS}")
    label = bytearray(_pack_header(message))
    frames: list[bytes | memoryview] = []
    for i, array in enumerate(message.arrays):
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == "=" else array.dtype
        if dtype not in _CODES:
            raise WireError(f"arrays[{i}]: dtype {array.dtype} is not carried; allowed: "
                            f"{', '.join(str(d) for d in _DTYPES.values())}")
        if array.ndim > MAX_DIMS:
            raise WireError(f"arrays[{i}]: {array.ndim} dimensions, at most {MAX_DIMS}")
        label += ARRAY.pack(_CODES[dtype], array.ndim)
        for dim in array.shape:
            label += DIM.pack(dim)
        frames.append(memoryview(np.ascontiguousarray(array)).cast("B"))
    total = len(label) + sum(len(f) for f in frames)
    if total > limit:
        raise WireError(f"size: {total} bytes, above the limit of {limit} bytes")
    return [bytes(label), *frames]


def _pack_header(m: Message) -> bytes:
    try:
        return HEADER.pack(MAGIC, VERSION, int(m.kind), len(m.arrays), m.exchange, m.session, m.step, m.attempt, m.seq)
    except struct.error as error:
        raise WireError(f"header: a field is out of range ({error})") from None


def decode(frames: Sequence[bytes | memoryview], limit: int = MAX_MESSAGE_BYTES) -> Message:
    """Read one message from its frames.

    Raises:
        WireError: anything malformed or oversized; the message names the field.
    """
    if not frames:
        raise WireError("frames: an empty message")
    total = sum(len(f) for f in frames)
    if total > limit:
        raise WireError(f"size: {total} bytes, above the limit of {limit} bytes")
    label = memoryview(frames[0]).cast("B")
    if len(label) < HEADER.size:
        raise WireError(f"header: {len(label)} bytes, a header has {HEADER.size}")
    magic, version, kind, n_arrays, exchange, session, step, attempt, seq = HEADER.unpack_from(label)
    if magic != MAGIC:
        raise WireError(f"magic: {bytes(magic)!r} is not {MAGIC!r}")
    if version != VERSION:
        raise WireError(f"version: {version}, this side speaks {VERSION}")
    try:
        kind = Kind(kind)
    except ValueError:
        raise WireError(f"kind: unknown message kind {kind}") from None
    if n_arrays > MAX_ARRAYS:
        raise WireError(f"arrays: {n_arrays} arrays, at most {MAX_ARRAYS}")
    if len(frames) != 1 + n_arrays:
        raise WireError(f"arrays: the header announces {n_arrays} arrays, {len(frames) - 1} frames came")
    arrays = []
    offset = HEADER.size
    for i in range(n_arrays):
        if offset + ARRAY.size > len(label):
            raise WireError(f"arrays[{i}]: the header ends inside its descriptor")
        code, ndim = ARRAY.unpack_from(label, offset)
        offset += ARRAY.size
        if code not in _DTYPES:
            raise WireError(f"arrays[{i}]: unknown dtype code {code}")
        if ndim > MAX_DIMS:
            raise WireError(f"arrays[{i}]: {ndim} dimensions, at most {MAX_DIMS}")
        if offset + ndim * DIM.size > len(label):
            raise WireError(f"arrays[{i}]: the header ends inside its shape")
        shape = tuple(DIM.unpack_from(label, offset + k * DIM.size)[0] for k in range(ndim))
        offset += ndim * DIM.size
        dtype = _DTYPES[code]
        expected = math.prod(shape) * dtype.itemsize
        buffer = frames[1 + i]
        if len(buffer) != expected:
            raise WireError(f"arrays[{i}]: shape {shape} of {dtype} needs {expected} bytes, {len(buffer)} came")
        arrays.append(np.frombuffer(buffer, dtype=dtype).reshape(shape))
    if offset != len(label):
        raise WireError(f"header: {len(label) - offset} bytes after the last array descriptor")
    return Message(kind, session, step, attempt, seq, exchange, tuple(arrays))


def frame_bytes(frames: Sequence[bytes | memoryview]) -> int:
    """Bytes of a message on the wire before ZeroMQ's own framing (label + arrays)."""
    return sum(len(f) for f in frames)
