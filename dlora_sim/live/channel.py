"""The message tunnel between the two processes: ZeroMQ ROUTER (cloud) and DEALER (edge).

The cloud pulls: it sends a request, the edge answers it, one round trip at a time, exactly as
the cost model's exchanges go. Reliability is the requester's job, idempotence the answerer's:

- every request carries the session, step, attempt and a sequence number; the answer carries
  the same sequence number, which is its acknowledgement;
- the cloud waits ``timeout_s`` for an answer and sends the very same request again, at most
  ``retries`` times, then gives the edge up for lost (:class:`PeerLost`) and waits for it to
  come back with a ``HELLO``;
- the edge answers a repeated sequence number with its cached answer and never runs the request
  twice (a backward pass applied twice would double a gradient), and ignores older ones;
- anything unreadable is refused with one logged line (:class:`~dlora_sim.live.wire.WireError`)
  and the session goes on;
- a ``HELLO`` of a later attempt while the cloud waits means the edge restarted: the wait ends
  with :class:`SessionReset` and the cloud resumes the session where the edge says.

Where the kernel cannot delay packets (no ``netem``), ``delay_s`` holds every received message
for the one-way delay before it is handed over, which is the propagation delay of a link that
carries one message at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import zmq

from dlora_sim.errors import InputError
from dlora_sim.live.wire import MAX_MESSAGE_BYTES, Kind, Message, WireError, decode, encode, frame_bytes

log = logging.getLogger("dlora_sim.live")

#: ZeroMQ's own hard cap on one frame, far above the wire's limit: the wire refuses (and logs)
#: anything above its limit; this only stops a peer from making the receiver hold gigabytes
_HARD_CAP_FACTOR = 4


class PeerLost(RuntimeError):
    """No answer came after every retry (or no peer said hello in time)."""


class SessionReset(RuntimeError):
    """The edge opened its session again (it restarted, or lost the cloud): resume from its hello."""

    def __init__(self, identity: bytes, hello: Message) -> None:
        super().__init__(f"session {hello.session:x} reopened at step {hello.step}, attempt {hello.attempt}")
        self.identity = identity
        self.hello = hello


@dataclass
class Traffic:
    """What one side sent and received, and how long it waited (the rest of its time is work)."""

    messages_sent: int = 0
    messages_received: int = 0
    wire_bytes_sent: int = 0
    wire_bytes_received: int = 0
    payload_bytes_sent: int = 0
    payload_bytes_received: int = 0
    refused: int = 0
    stale: int = 0
    duplicates: int = 0
    retries: int = 0
    wait_s: float = 0.0


def check_address(address: str) -> str:
    """``tcp://HOST:PORT`` (PORT may be ``*`` for the cloud: any free port on HOST), or InputError."""
    if not address.startswith("tcp://") or ":" not in address[6:]:
        raise InputError(f"address: {address!r} is not tcp://HOST:PORT")
    host, port = address[6:].rsplit(":", 1)
    if not host or host == "*":
        raise InputError(f"address: {address!r} names no host; give the one address to use, e.g. tcp://127.0.0.1:*")
    if port != "*" and not (port.isdigit() and 0 < int(port) < 65536):
        raise InputError(f"address: port {port!r} of {address!r} is not 1..65535 or *")
    return address


class _Endpoint:
    """One ZeroMQ socket with the wire's limits, the emulated delay and the traffic counters."""

    def __init__(self, socket: zmq.Socket, limit: int, delay_s: float) -> None:
        self.socket = socket
        self.limit = limit
        self.delay_s = delay_s
        self.traffic = Traffic()
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.MAXMSGSIZE, _HARD_CAP_FACTOR * limit)
        self._poller = zmq.Poller()
        self._poller.register(socket, zmq.POLLIN)

    def _send(self, message: Message, identity: bytes | None = None) -> None:
        frames = encode(message, self.limit)
        self.socket.send_multipart(([identity] if identity is not None else []) + frames, copy=False)
        t = self.traffic
        t.messages_sent += 1
        t.wire_bytes_sent += frame_bytes(frames)
        t.payload_bytes_sent += message.payload_bytes

    def _receive(self, timeout_s: float) -> tuple[bytes | None, Message] | None:
        """The next readable message within ``timeout_s`` (None on silence); refuses bad ones."""
        deadline = time.perf_counter() + timeout_s
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return None
            start = time.perf_counter()
            ready = self._poller.poll(max(1, int(remaining * 1000)))
            self.traffic.wait_s += time.perf_counter() - start
            if not ready:
                return None
            frames = self.socket.recv_multipart()
            identity = frames.pop(0) if self.socket.type == zmq.ROUTER else None
            try:
                message = decode(frames, self.limit)
            except WireError as error:
                self.traffic.refused += 1
                log.warning("refused a message: %s", error)
                continue
            if self.delay_s:
                start = time.perf_counter()
                time.sleep(self.delay_s)
                self.traffic.wait_s += time.perf_counter() - start
            t = self.traffic
            t.messages_received += 1
            t.wire_bytes_received += frame_bytes(frames)
            t.payload_bytes_received += message.payload_bytes
            return identity, message

    def close(self) -> None:
        self.socket.close(linger=0)


class CloudChannel(_Endpoint):
    """The cloud's side: binds to the one address given and asks its edge, request by request.

    Args:
        address: ``tcp://HOST:PORT``; ``PORT`` ``*`` picks a free port (read :attr:`endpoint`).
        timeout_s: how long to wait for an answer before sending the request again.
        retries: how many times a request is sent again before the edge counts as lost.
        limit: the most bytes one message may have.
        delay_s: emulated one-way delay (0: the link delays, or nothing does).
    """

    def __init__(self, address: str, timeout_s: float = 10.0, retries: int = 3,
                 limit: int = MAX_MESSAGE_BYTES, delay_s: float = 0.0) -> None:
        context = zmq.Context.instance()
        super().__init__(context.socket(zmq.ROUTER), limit, delay_s)
        self.socket.bind(check_address(address))
        self.endpoint: str = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.timeout_s = timeout_s
        self.retries = retries
        self.session = 0
        self.attempt = 0
        self.identity = b""
        self._seq = 0

    def wait_hello(self, timeout_s: float) -> tuple[bytes, Message]:
        """The next HELLO (anything else meanwhile is stale and dropped).

        Raises:
            PeerLost: none within ``timeout_s``.
        """
        deadline = time.perf_counter() + timeout_s
        while (remaining := deadline - time.perf_counter()) > 0:
            got = self._receive(remaining)
            if got is None:
                break
            identity, message = got
            if message.kind == Kind.HELLO:
                return identity, message
            self.traffic.stale += 1
            log.info("dropped a stale %s (no session open)", message.kind.name)
        raise PeerLost(f"no edge said hello within {timeout_s:g} s")

    def welcome(self, identity: bytes, hello: Message) -> None:
        """Adopt the hello's session and attempt and answer it; sequence numbers start again."""
        self.identity, self.session, self.attempt, self._seq = identity, hello.session, hello.attempt, 0
        self._send(Message(Kind.WELCOME, hello.session, hello.step, hello.attempt, hello.seq), identity)

    def request(self, kind: Kind, step: int, exchange: int = 0,
                arrays: Sequence[np.ndarray] = ()) -> Message:
        """Send one request and return its answer (retrying on silence).

        Raises:
            SessionReset: the edge said hello again meanwhile (a later attempt).
            PeerLost: no answer after every retry.
        """
        self._seq += 1
        message = Message(kind, self.session, step, self.attempt, self._seq, exchange, tuple(arrays))
        for attempt in range(self.retries + 1):
            if attempt:
                self.traffic.retries += 1
                log.info("no answer to %s seq %d within %g s: sending it again (%d/%d)", kind.name, self._seq,
                         self.timeout_s, attempt, self.retries)
            self._send(message, self.identity)
            deadline = time.perf_counter() + self.timeout_s
            while (remaining := deadline - time.perf_counter()) > 0:
                got = self._receive(remaining)
                if got is None:
                    break
                identity, answer = got
                if answer.kind == Kind.HELLO and answer.session == self.session and answer.attempt > self.attempt:
                    raise SessionReset(identity, answer)
                if answer.kind == Kind.HELLO and answer.session != self.session:
                    log.warning("refused a hello of session %x: serving session %x", answer.session, self.session)
                    continue
                if (answer.session, answer.attempt, answer.seq) != (self.session, self.attempt, self._seq):
                    self.traffic.stale += 1
                    log.info("dropped a stale %s (seq %d, attempt %d)", answer.kind.name, answer.seq, answer.attempt)
                    continue
                self.identity = identity
                return answer
        raise PeerLost(f"no answer to {kind.name} seq {self._seq} after {self.retries} retries")


class EdgeChannel(_Endpoint):
    """The edge's side: connects to the cloud, opens its session and answers requests.

    Args:
        address: the cloud's ``tcp://HOST:PORT``.
        session: this job's session id (kept across restarts, in the edge's checkpoint).
        idle_timeout_s: silence after which the cloud counts as lost (the edge then says hello
            again, as a new attempt).
        hello_interval_s: how often an unanswered hello is sent again.
    """

    def __init__(self, address: str, session: int, idle_timeout_s: float = 30.0, hello_interval_s: float = 0.5,
                 limit: int = MAX_MESSAGE_BYTES, delay_s: float = 0.0) -> None:
        context = zmq.Context.instance()
        super().__init__(context.socket(zmq.DEALER), limit, delay_s)
        self.socket.setsockopt(zmq.RECONNECT_IVL, 100)
        self.socket.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        self.socket.connect(check_address(address))
        self.session = session
        self.attempt = 0
        self.idle_timeout_s = idle_timeout_s
        self.hello_interval_s = hello_interval_s
        self._last_seq = 0
        self._last_answer: Message | None = None

    def open(self, attempt: int, step: int, arrays: Sequence[np.ndarray], timeout_s: float) -> None:
        """Say hello (attempt ``attempt``, resuming at ``step``) until the cloud welcomes us.

        Raises:
            PeerLost: no welcome within ``timeout_s``.
        """
        self.attempt = attempt
        hello = Message(Kind.HELLO, self.session, step, attempt, 0, 0, tuple(arrays))
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            self._send(hello)
            got = self._receive(min(self.hello_interval_s, max(0.0, deadline - time.perf_counter())))
            if got is not None:
                _, answer = got
                if answer.kind == Kind.WELCOME and (answer.session, answer.attempt) == (self.session, attempt):
                    self._last_seq, self._last_answer = 0, None
                    return
                self.traffic.stale += 1
        raise PeerLost(f"the cloud did not welcome session {self.session:x} within {timeout_s:g} s")

    def serve(self, handler: Callable[[Message], Message], after: Callable[[], None] | None = None) -> None:
        """Answer requests until an answer is ``DONE``; each request runs once, whatever repeats.

        ``after`` runs once an answer is on its way (work that need not delay it, e.g. a checkpoint).

        Raises:
            PeerLost: the cloud was silent for ``idle_timeout_s``.
        """
        while True:
            got = self._receive(self.idle_timeout_s)
            if got is None:
                raise PeerLost(f"the cloud was silent for {self.idle_timeout_s:g} s")
            _, request = got
            if request.kind == Kind.WELCOME:
                continue  # an answer to a repeated hello
            if (request.session, request.attempt) != (self.session, self.attempt) or request.seq < self._last_seq:
                self.traffic.stale += 1
                log.info("dropped a stale %s (seq %d, attempt %d)", request.kind.name, request.seq, request.attempt)
                continue
            if request.seq == self._last_seq and self._last_answer is not None:
                self.traffic.duplicates += 1
                self._send(self._last_answer)  # answered before: the same answer, nothing runs again
                continue
            answer = handler(request)
            answer = Message(answer.kind, self.session, request.step, self.attempt, request.seq, request.exchange,
                             answer.arrays)
            self._send(answer)
            self._last_seq, self._last_answer = request.seq, answer
            if after is not None:
                after()
            if answer.kind == Kind.DONE:
                return


def answer(kind: Kind, *arrays: np.ndarray) -> Message:
    """An answer's kind and arrays; :meth:`EdgeChannel.serve` fills in its label."""
    return Message(kind, 0, 0, 0, 0, 0, tuple(arrays))
