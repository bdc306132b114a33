"""Links shaped for real: two network namespaces joined by a veth pair, ``tbf`` and ``netem``.

The edge runs in one namespace, the cloud in the other, and the only way between them is a veth
pair (a virtual cable). On each end's way out, ``tbf`` limits the rate (the edge's end: the
uplink, the cloud's end: the downlink) and ``netem`` delays every packet by half the round trip
(with jitter and loss when asked). Both namespaces are made by :class:`ShapedLink` and deleted
when it closes (deleting a namespace deletes its end of the veth); their names start with
``dlora-live-`` and hold the process id, so no other namespace is ever touched.

Some kernels have ``tbf`` but no ``netem`` (this project's development VM is one). There the rate
is still shaped by the kernel, and the delay is emulated by the two processes themselves: each
holds every message it receives for the one-way delay (``delay_s``) — the propagation delay of a
link that carries one message at a time, which is how DLoRA uses it; jitter and loss then cannot
be had, and :func:`plan` says so. Without root or without iproute2 nothing is shaped at all.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache

from dlora_sim import cost
from dlora_sim.errors import InputError

EDGE_IP, CLOUD_IP = "10.213.0.1", "10.213.0.2"
EDGE_DEVICE, CLOUD_DEVICE = "dl-edge", "dl-cloud"
PREFIX = "dlora-live-"
_counter = itertools.count()


@dataclass(frozen=True)
class LinkShape:
    """A link to emulate: rates each way (None: unshaped), round-trip delay, jitter, loss."""

    name: str
    up_bps: float | None = None
    down_bps: float | None = None
    rtt_s: float = 0.0
    jitter_s: float = 0.0
    loss: float = 0.0

    @property
    def shaped(self) -> bool:
        return self.up_bps is not None or self.rtt_s > 0 or self.jitter_s > 0 or self.loss > 0

    @staticmethod
    def from_catalog(name: str) -> LinkShape:
        """A link of the cost model's catalog (rates and RTT as the simulator reads them)."""
        link = cost.get_link(name)
        return LinkShape(name, link.up_bps, link.down_bps, link.rtt_s)


LOOPBACK = LinkShape("loopback")
#: the link shapes the fidelity table runs: a LAN-like Wi-Fi, 5G and LTE, from the cost catalog
SHAPES = ("wifi", "5g", "lte")


def shape_named(name: str) -> LinkShape:
    """``loopback`` or a catalog link name; InputError listing both otherwise."""
    if name == "loopback":
        return LOOPBACK
    if name not in cost.LINKS:
        raise InputError(f"link: unknown link {name!r}; allowed: loopback, {', '.join(cost.LINKS)}")
    return LinkShape.from_catalog(name)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=False)


def cannot_shape() -> str | None:
    """Why namespaces cannot be made here (not root, iproute2 missing), or None when they can."""
    if os.geteuid() != 0:
        return "not root: network namespaces need root"
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        return f"iproute2 is missing ({', '.join(missing)} not found)"
    return None


@lru_cache(maxsize=1)
def netem_available() -> bool:
    """Whether this kernel has the ``netem`` qdisc (tried once, in a namespace of our own)."""
    if cannot_shape() is not None:
        return False
    name = f"{PREFIX}{os.getpid()}-probe"
    if _run("ip", "netns", "add", name).returncode:
        return False
    try:
        _run("ip", "-n", name, "link", "add", "probe0", "type", "dummy")
        return _run("tc", "-n", name, "qdisc", "add", "dev", "probe0", "root", "netem", "delay", "1ms").returncode == 0
    finally:
        _run("ip", "netns", "del", name)


def plan(shape: LinkShape) -> tuple[bool, str]:
    """(namespaces will be used, one line saying how ``shape`` will be had on this machine)."""
    if not shape.shaped:
        return False, "unshaped loopback (127.0.0.1)"
    reason = cannot_shape()
    if reason is not None:
        return False, f"unshaped loopback: {reason}, so {shape.name} cannot be shaped"
    if netem_available():
        return True, f"{shape.name}: namespaces + veth, tbf rate, netem delay {1000 * shape.rtt_s / 2:g} ms each way"
    if shape.jitter_s or shape.loss:
        raise InputError(f"link {shape.name}: jitter and loss need the netem qdisc, which this kernel lacks")
    return True, (f"{shape.name}: namespaces + veth, tbf rate; this kernel has no netem, so each process holds "
                  f"what it receives for {1000 * shape.rtt_s / 2:g} ms (the one-way delay)")


def _tbf(rate_bps: float) -> list[str]:
    """tbf arguments for ``rate_bps``: a burst of two packets or 1 ms of the rate, room for a second.

    Why so small a burst: DLoRA's messages come one at a time with pauses between them, and every
    pause refills the bucket; a burst of B bytes lets each message start B bytes ahead of the rate.
    """
    burst = max(2 * 1514, int(rate_bps / 8 / 1000))
    limit = max(1 << 20, int(rate_bps / 8))
    return ["tbf", "rate", f"{int(rate_bps)}bit", "burst", str(burst), "limit", str(limit)]


class ShapedLink:
    """Two fresh namespaces joined by a shaped veth pair; a context manager that always cleans up.

    Attributes:
        edge_ns, cloud_ns: the namespaces' names.
        delay_s: the one-way delay the processes must emulate (0 when netem does it).
    """

    def __init__(self, shape: LinkShape) -> None:
        self.shape = shape
        tag = f"{os.getpid()}-{next(_counter)}"
        self.edge_ns, self.cloud_ns = f"{PREFIX}{tag}-edge", f"{PREFIX}{tag}-cloud"
        self.delay_s = 0.0 if netem_available() else shape.rtt_s / 2

    def __enter__(self) -> ShapedLink:
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self, *args: str) -> None:
        done = _run(*args)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip() or done.returncode}")

    def _setup(self) -> None:
        s = self.shape
        for ns in (self.edge_ns, self.cloud_ns):
            self._check("ip", "netns", "add", ns)
            # a tunnel that pauses between messages keeps its congestion window (the simulator's
            # link is a steady pipe): no slow start after idle, in our namespaces only
            self._check("ip", "netns", "exec", ns, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/tcp_slow_start_after_idle")
        self._check("ip", "link", "add", EDGE_DEVICE, "netns", self.edge_ns, "type", "veth",
                    "peer", "name", CLOUD_DEVICE, "netns", self.cloud_ns)
        for ns, dev, ip, rate in ((self.edge_ns, EDGE_DEVICE, EDGE_IP, s.up_bps), (self.cloud_ns, CLOUD_DEVICE, CLOUD_IP, s.down_bps)):
            self._check("ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", dev)
            self._check("ip", "-n", ns, "link", "set", dev, "up")
            self._check("ip", "-n", ns, "link", "set", "lo", "up")
            netem = []
            if self.delay_s == 0 and (s.rtt_s or s.jitter_s or s.loss):
                netem = ["netem", "delay", f"{1e6 * s.rtt_s / 2:.0f}us"]
                netem += [f"{1e6 * s.jitter_s / 2:.0f}us"] if s.jitter_s else []
                netem += ["loss", f"{100 * s.loss:g}%"] if s.loss else []
                self._check("tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "handle", "1:", *netem, "limit", "100000")
            if rate is not None:
                where = ["parent", "1:", "handle", "2:"] if netem else ["root", "handle", "1:"]
                self._check("tc", "-n", ns, "qdisc", "add", "dev", dev, *where, *_tbf(rate))

    def exec_prefix(self, side: str) -> list[str]:
        """The command prefix that runs a process on ``side`` (``edge`` or ``cloud``)."""
        return ["ip", "netns", "exec", self.edge_ns if side == "edge" else self.cloud_ns]

    def counters(self) -> dict[str, int]:
        """Bytes and packets each end of the veth sent (Ethernet, IP and TCP headers included)."""
        out = {}
        for side, ns, dev in (("edge", self.edge_ns, EDGE_DEVICE), ("cloud", self.cloud_ns, CLOUD_DEVICE)):
            done = _run("ip", "netns", "exec", ns, "cat", f"/sys/class/net/{dev}/statistics/tx_bytes",
                        f"/sys/class/net/{dev}/statistics/tx_packets")
            if done.returncode == 0 and len(done.stdout.split()) == 2:
                out[f"{side}_tx_bytes"], out[f"{side}_tx_packets"] = (int(x) for x in done.stdout.split())
        return out

    def close(self) -> None:
        for ns in (self.edge_ns, self.cloud_ns):
            _run("ip", "netns", "del", ns)


def leftover_namespaces() -> list[str]:
    """Namespaces of this process that still exist (a test holds this to be empty)."""
    done = _run("ip", "netns", "list")
    mine = f"{PREFIX}{os.getpid()}-"
    return [line.split()[0] for line in done.stdout.splitlines() if line.startswith(mine)]
