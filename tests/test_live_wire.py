"""The live wire and tunnel: typed frames round-trip, every malformation is one refused line, the
tunnel survives it, retries are answered from the cache (nothing runs twice), stale answers drop."""

from __future__ import annotations

import logging
import struct
import threading
import time

import numpy as np
import pytest

zmq = pytest.importorskip("zmq", reason="the live runtime needs the [live] extra (pyzmq)")

from dlora_sim.errors import InputError  # noqa: E402
from dlora_sim.live.channel import CloudChannel, EdgeChannel, PeerLost, answer, check_address  # noqa: E402
from dlora_sim.live.wire import HEADER, MAGIC, Kind, Message, WireError, decode, encode  # noqa: E402


def _message(*arrays: np.ndarray) -> Message:
    return Message(Kind.FWD, session=2**62 + 5, step=7, attempt=3, seq=11, exchange=4, arrays=arrays)


def test_round_trip_keeps_label_dtypes_and_shapes():
    arrays = (np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.arange(3, dtype=np.int32), np.zeros(0, np.uint8),
              np.ones((1, 1, 1, 2), np.float16))
    back = decode([bytes(f) for f in encode(_message(*arrays))])
    assert (back.kind, back.session, back.step, back.attempt, back.seq, back.exchange) == (Kind.FWD, 2**62 + 5, 7, 3, 11, 4)
    for a, b in zip(arrays, back.arrays):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    assert back.payload_bytes == sum(a.nbytes for a in arrays)


def _frames() -> list[bytes]:
    return [bytes(f) for f in encode(_message(np.ones((2, 3), np.float32)))]


def _with_header(frames: list[bytes], **fields) -> list[bytes]:
    names = ("magic", "version", "kind", "n_arrays", "exchange", "session", "step", "attempt", "seq")
    values = dict(zip(names, HEADER.unpack_from(frames[0])))
    values.update(fields)
    return [HEADER.pack(*(values[n] for n in names)) + frames[0][HEADER.size:], *frames[1:]]


@pytest.mark.parametrize("frames, field", [
    ([], "frames"),
    ([b"DLRA"], "header"),
    (lambda f: _with_header(f, magic=b"XXXX"), "magic"),
    (lambda f: _with_header(f, version=9), "version"),
    (lambda f: _with_header(f, kind=200), "kind"),
    (lambda f: _with_header(f, n_arrays=2), "arrays"),
    (lambda f: _with_header(f, n_arrays=99), "arrays"),
    (lambda f: [f[0], f[1][:-4]], "arrays[0]"),
    (lambda f: [f[0] + b"\x00", f[1]], "header"),
    (lambda f: [f[0][:-4], f[1]], "arrays[0]"),
    (lambda f: [f[0][:HEADER.size] + struct.pack("<BB", 77, 2) + f[0][HEADER.size + 2:], f[1]], "arrays[0]"),
    (lambda f: [f[0][:HEADER.size] + struct.pack("<BB", 1, 9) + f[0][HEADER.size + 2:], f[1]], "arrays[0]"),
])
def test_every_malformation_is_one_line_naming_its_field(frames, field):
    frames = frames(_frames()) if callable(frames) else frames
    with pytest.raises(WireError) as error:
        decode(frames)
    assert str(error.value).startswith(field + ":") and "\n" not in str(error.value)


def test_oversized_and_uncarried_messages_are_refused_both_ways():
    big = _message(np.ones(1000, np.float32))
    with pytest.raises(WireError, match="^size: .* above the limit of 1000 bytes"):
        encode(big, limit=1000)
    with pytest.raises(WireError, match="^size:"):
        decode([bytes(f) for f in encode(big)], limit=1000)
    with pytest.raises(WireError, match=r"^arrays\[0\]: dtype complex64 is not carried"):
        encode(_message(np.ones(2, np.complex64)))
    with pytest.raises(WireError, match=r"^arrays\[0\]: 5 dimensions"):
        encode(_message(np.ones((1,) * 5, np.float32)))
    with pytest.raises(WireError, match="^header: a field is out of range"):
        encode(Message(Kind.NEXT, -1, 0, 0, 0))


@pytest.mark.parametrize("address", ["127.0.0.1:5", "tcp://*:5", "tcp://:5", "tcp://127.0.0.1:x", "tcp://127.0.0.1:0"])
def test_an_address_without_one_host_and_port_is_refused(address):
    with pytest.raises(InputError, match="^address:"):
        check_address(address)


class _Pair:
    """A cloud channel and an edge channel on loopback, the edge answering in a thread."""

    def __init__(self, limit: int = 1 << 20, timeout_s: float = 2.0) -> None:
        self.cloud = CloudChannel("tcp://127.0.0.1:*", timeout_s=timeout_s, retries=2, limit=limit)
        self.edge = EdgeChannel(self.cloud.endpoint, session=42, idle_timeout_s=5.0, limit=limit)
        self.calls: list[int] = []
        self.thread = threading.Thread(target=self._edge, daemon=True)
        self.thread.start()
        identity, hello = self.cloud.wait_hello(5.0)
        self.cloud.welcome(identity, hello)

    def _edge(self) -> None:
        self.edge.open(attempt=1, step=0, arrays=[], timeout_s=5.0)

        def handler(request: Message) -> Message:
            self.calls.append(request.seq)
            if request.kind == Kind.NEXT and request.step == 99:
                return answer(Kind.DONE)
            return answer(Kind.REPLY, *request.arrays)

        self.edge.serve(handler)

    def close(self) -> None:
        self.cloud.request(Kind.NEXT, 99)
        self.thread.join(5.0)
        self.cloud.close()
        self.edge.close()


def test_a_request_is_answered_and_counted():
    pair = _Pair()
    try:
        payload = np.arange(10, dtype=np.float32)
        reply = pair.cloud.request(Kind.PING, 0, 0, [payload])
        assert reply.kind == Kind.REPLY and np.array_equal(reply.arrays[0], payload) and reply.seq == 1
        assert pair.cloud.traffic.payload_bytes_sent == payload.nbytes
    finally:
        pair.close()


def test_garbage_to_either_side_is_one_logged_line_and_the_session_goes_on(caplog):
    pair = _Pair(limit=4096)
    try:
        with caplog.at_level(logging.WARNING, logger="dlora_sim.live"):
            # to the edge: a frame that is no message, then one above the limit
            pair.cloud.socket.send_multipart([pair.cloud.identity, b"not a message"])
            pair.cloud.socket.send_multipart([pair.cloud.identity, *encode(_message(np.ones(2000, np.float32)))])
            # to the cloud, from a stranger on the same port
            stranger = zmq.Context.instance().socket(zmq.DEALER)
            stranger.connect(pair.cloud.endpoint)
            stranger.send_multipart([b"DLRA" + b"\x00" * 40])
            # the stranger connects asynchronously: keep the session talking until its frame has
            # been read (and refused), at most a few seconds
            deadline = time.monotonic() + 10.0
            reply = pair.cloud.request(Kind.PING, 0, 0, [np.ones(4, np.float32)])
            while pair.cloud.traffic.refused < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
                reply = pair.cloud.request(Kind.PING, 0, 0, [np.ones(4, np.float32)])
            stranger.close(linger=0)
        assert reply.kind == Kind.REPLY
        refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused a message")]
        assert len(refused) == 3 and all("\n" not in line for line in refused)
        assert any("size:" in line for line in refused) and any("version:" in line for line in refused)
        assert pair.edge.traffic.refused == 2 and pair.cloud.traffic.refused == 1
    finally:
        pair.close()


def test_a_repeated_request_is_answered_from_the_cache_and_runs_once():
    pair = _Pair()
    try:
        pair.cloud.request(Kind.PING, 0)
        seq = pair.cloud._seq
        repeat = Message(Kind.PING, pair.cloud.session, 0, pair.cloud.attempt, seq)
        pair.cloud._send(repeat, pair.cloud.identity)  # what a retry after a lost answer sends
        reply = pair.cloud.request(Kind.PING, 0)  # the repeat's answer arrives first: stale, dropped
        assert reply.seq == seq + 1
        assert pair.calls == [seq, seq + 1]  # the handler ran once per sequence number
        assert pair.edge.traffic.duplicates == 1 and pair.cloud.traffic.stale == 1
    finally:
        pair.close()


def test_silence_is_retried_then_the_edge_is_lost():
    cloud = CloudChannel("tcp://127.0.0.1:*", timeout_s=0.2, retries=2)
    try:
        cloud.identity = b"nobody"
        with pytest.raises(PeerLost, match="after 2 retries"):
            cloud.request(Kind.NEXT, 0)
        assert cloud.traffic.retries == 2 and cloud.traffic.messages_sent == 3
        with pytest.raises(PeerLost, match="no edge said hello"):
            cloud.wait_hello(0.2)
    finally:
        cloud.close()


def test_the_cloud_binds_only_the_address_given():
    cloud = CloudChannel("tcp://127.0.0.1:*")
    try:
        assert cloud.endpoint.startswith("tcp://127.0.0.1:")
    finally:
        cloud.close()
    assert MAGIC == b"DLRA"
