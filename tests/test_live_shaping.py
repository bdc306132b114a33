"""Link shaping with namespaces of our own: made and always deleted, the veth's rate and delay are
what was asked, nothing outside is touched; without root the run says it is unshaped."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("zmq", reason="the live runtime needs the [live] extra (pyzmq)")

from dlora_sim.live import shaping  # noqa: E402
from dlora_sim.live.shaping import CLOUD_IP, LinkShape, ShapedLink, leftover_namespaces, plan  # noqa: E402

WHY_NOT = shaping.cannot_shape()
needs_shaping = pytest.mark.skipif(WHY_NOT is not None, reason=f"link shaping impossible here: {WHY_NOT}")

SHAPE = LinkShape("test", up_bps=8e6, down_bps=16e6, rtt_s=0.04)
PORT = 5600

# the two ends of a ping-pong, over the live tunnel itself (no torch: they start in a blink)
EDGE = textwrap.dedent(f"""
    import sys
    from dlora_sim.live.channel import EdgeChannel, answer
    from dlora_sim.live.wire import Kind
    edge = EdgeChannel("tcp://{CLOUD_IP}:{PORT}", session=7, delay_s=float(sys.argv[1]))
    edge.open(1, 0, [], timeout_s=20)
    edge.serve(lambda m: answer(Kind.DONE) if m.kind == Kind.NEXT else answer(Kind.REPLY, *m.arrays))
""")
CLOUD = textwrap.dedent(f"""
    import json, sys, time
    import numpy as np
    from dlora_sim.live.channel import CloudChannel
    from dlora_sim.live.wire import Kind
    cloud = CloudChannel("tcp://{CLOUD_IP}:{PORT}", timeout_s=20, delay_s=float(sys.argv[1]))
    cloud.welcome(*cloud.wait_hello(20))
    out = {{}}
    for label, size, count in (("small", 0, 5), ("large", 1 << 20, 2)):
        times = []
        for _ in range(count):
            start = time.perf_counter()
            cloud.request(Kind.PING, 0, 0, [np.zeros(size, np.uint8)])
            times.append(time.perf_counter() - start)
        out[label] = min(times)
    cloud.request(Kind.NEXT, 0)
    print(json.dumps(out))
""")


def test_without_root_the_run_is_unshaped_and_says_so(monkeypatch):
    monkeypatch.setattr(shaping.os, "geteuid", lambda: 1000)
    shaped, note = plan(SHAPE)
    assert not shaped and note == "unshaped loopback: not root: network namespaces need root, so test cannot be shaped"
    assert plan(shaping.LOOPBACK) == (False, "unshaped loopback (127.0.0.1)")


def _namespaces() -> list[str]:
    return sorted(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n"))


@needs_shaping
def test_namespaces_are_ours_and_deleted_whatever_happens():
    before = _namespaces()
    with ShapedLink(SHAPE) as link:
        names = {link.edge_ns, link.cloud_ns}
        assert all(n.startswith(f"dlora-live-{shaping.os.getpid()}-") for n in names)
        assert names <= set(" ".join(_namespaces()).split())
        qdiscs = subprocess.run(["tc", "-n", link.edge_ns, "qdisc", "show", "dev", "dl-edge"],
                                capture_output=True, text=True).stdout
        assert "tbf" in qdiscs and "8Mbit" in qdiscs
        assert ("netem" in qdiscs) == shaping.netem_available()
    with pytest.raises(RuntimeError):
        with ShapedLink(SHAPE) as link:
            raise RuntimeError("a run that fails")
    assert leftover_namespaces() == [] and _namespaces() == before


@needs_shaping
def test_the_shaped_link_has_the_rate_and_delay_asked(tmp_path):
    with ShapedLink(SHAPE) as link:
        delay = str(link.delay_s)
        edge = subprocess.Popen([*link.exec_prefix("edge"), sys.executable, "-c", EDGE, delay])
        cloud = subprocess.run([*link.exec_prefix("cloud"), sys.executable, "-c", CLOUD, delay],
                               capture_output=True, text=True, timeout=60)
        edge.wait(timeout=20)
        counters = link.counters()
    assert cloud.returncode == 0, cloud.stderr
    measured = json.loads(cloud.stdout)
    assert SHAPE.rtt_s <= measured["small"] < SHAPE.rtt_s + 0.03
    one_mib = 8 * (1 << 20)
    expected = one_mib / SHAPE.up_bps + one_mib / SHAPE.down_bps + SHAPE.rtt_s
    assert 0.9 * expected < measured["large"] < 1.3 * expected  # TCP/IP headers take a few percent
    assert counters["edge_tx_bytes"] > 2 * (1 << 20)  # both large pings went up through the veth
