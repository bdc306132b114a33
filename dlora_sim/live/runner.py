"""Start a live run's two processes (over a shaped link or loopback), wait, collect what they wrote.

:class:`LiveProcesses` is the harness: it writes the job, makes the shaped link when asked (and
possible), starts the cloud (which binds only the one address it is given and writes the port it
got), starts the edge against it, and always stops both and deletes the namespaces. The fault
tests drive it by hand (kill the edge, start it again); :func:`run_live` is the plain run.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlora_sim.live.job import LiveJob
from dlora_sim.live.shaping import CLOUD_DEVICE, CLOUD_IP, LOOPBACK, LinkShape, ShapedLink, plan

EDGE_DIR, CLOUD_DIR = "edge", "cloud"
NAMESPACE_PORT = 5555


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _free_port() -> int:
    """A port that is free on 127.0.0.1 now (the cloud binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveRunError(RuntimeError):
    """A process of the run failed or did not finish in time (its log's last line says why)."""


@dataclass
class LiveRun:
    """What a finished run left: both processes' records, the edge's final weights, how it was linked."""

    job: LiveJob
    shape: LinkShape
    link_note: str
    shaped: bool
    edge: dict[str, Any]
    cloud: dict[str, Any]
    weights: dict[str, np.ndarray]
    journal: list[dict[str, Any]]
    wall_s: float


def _tail(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(empty log)"


class LiveProcesses:
    """The two processes of one live run in ``workdir``; use as a context manager.

    Args:
        job: the job both processes train.
        workdir: where the job, the logs and both processes' outputs go (``edge/``, ``cloud/``).
        shape: the link to emulate (``LOOPBACK``: none).
        timeout_s, retries: the cloud's wait for an answer, and how often it asks again.
        idle_timeout_s: the edge's wait for the next request before it counts the cloud as lost.
        pings: the cloud's calibration round trips (small count, large count, large bytes).
        limit: the most bytes of one message.
    """

    def __init__(self, job: LiveJob, workdir: Path, shape: LinkShape = LOOPBACK, timeout_s: float = 10.0,
                 retries: int = 3, idle_timeout_s: float = 30.0, pings: tuple[int, int, int] = (0, 0, 0),
                 limit: int | None = None) -> None:
        self.job, self.workdir, self.shape = job, Path(workdir), shape
        self.timeout_s, self.retries, self.idle_timeout_s, self.pings, self.limit = (
            timeout_s, retries, idle_timeout_s, pings, limit)
        self.shaped, self.note = plan(shape)
        self.link: ShapedLink | None = None
        self.cloud: subprocess.Popen | None = None
        self.edge: subprocess.Popen | None = None
        self.endpoint = ""
        self.edge_starts = self.cloud_starts = 0

    def __enter__(self) -> LiveProcesses:
        # a SIGTERM must still stop both processes and delete the namespaces: make it an exit
        self._sigterm = None
        if threading.current_thread() is threading.main_thread():
            self._sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "job.json").write_text(self.job.to_json(), encoding="utf-8")
        if self.shaped:
            self.link = ShapedLink(self.shape).__enter__()
        try:
            self._start_cloud()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in (self.edge, self.cloud):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        if self.link is not None:
            self.link.close()
        if self._sigterm is not None:
            signal.signal(signal.SIGTERM, self._sigterm)

    def _prefix(self, side: str) -> list[str]:
        return self.link.exec_prefix(side) if self.link is not None else []

    def _common(self) -> list[str]:
        delay = self.link.delay_s if self.link is not None else 0.0
        return (["--delay-ms", f"{1000 * delay:g}"] if delay else []) + (["--limit", str(self.limit)] if self.limit else [])

    def _start_cloud(self) -> None:
        # The port is chosen here, so that the edge can start at once, loading its model while the
        # cloud loads the blocks (in a namespace of our own every port is free).
        if not self.endpoint:
            self.endpoint = f"tcp://{CLOUD_IP}:{NAMESPACE_PORT}" if self.link is not None else f"tcp://127.0.0.1:{_free_port()}"
        self.cloud_starts += 1
        command = [*self._prefix("cloud"), sys.executable, "-m", "dlora_sim.live.cloud", "--job", str(self.workdir / "job.json"),
                   "--bind", self.endpoint, "--workdir", str(self.workdir / CLOUD_DIR), "--timeout", f"{self.timeout_s:g}",
                   "--retries", str(self.retries), "--pings", *map(str, self.pings), *self._common(),
                   *(["--interface", CLOUD_DEVICE] if self.link is not None else [])]
        with open(self.workdir / f"cloud-{self.cloud_starts}.log", "w", encoding="utf-8") as log:
            self.cloud = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def restart_cloud(self) -> subprocess.Popen:
        """Kill the cloud process (as a crash would) and start a fresh one on the same address."""
        self.cloud.kill()
        self.cloud.wait()
        self._start_cloud()
        return self.cloud

    def start_edge(self) -> subprocess.Popen:
        """Start (or restart: same workdir, so it resumes from its checkpoint) the edge process."""
        self.edge_starts += 1
        command = [*self._prefix("edge"), sys.executable, "-m", "dlora_sim.live.edge", "--job", str(self.workdir / "job.json"),
                   "--connect", self.endpoint, "--workdir", str(self.workdir / EDGE_DIR),
                   "--idle-timeout", f"{self.idle_timeout_s:g}", *self._common()]
        with open(self.workdir / f"edge-{self.edge_starts}.log", "w", encoding="utf-8") as log:
            self.edge = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        return self.edge

    def wait(self, timeout_s: float) -> LiveRun:
        """Wait for both processes to finish and read what they wrote.

        Raises:
            LiveRunError: a process failed or ran past ``timeout_s``.
        """
        start = time.monotonic()
        for name, proc in (("edge", self.edge), ("cloud", self.cloud)):
            try:
                code = proc.wait(timeout=max(1.0, timeout_s - (time.monotonic() - start)))
            except subprocess.TimeoutExpired:
                raise LiveRunError(f"the {name} did not finish within {timeout_s:g} s") from None
            if code:
                log = f"edge-{self.edge_starts}.log" if name == "edge" else f"cloud-{self.cloud_starts}.log"
                raise LiveRunError(f"the {name} exited with status {code}: {_tail(self.workdir / log)}")
        return self.collect(time.monotonic() - start)

    def collect(self, wall_s: float) -> LiveRun:
        edge_dir, cloud_dir = self.workdir / EDGE_DIR, self.workdir / CLOUD_DIR
        with np.load(edge_dir / "edge-weights.npz") as data:
            weights = {k: data[k] for k in data.files}
        journal = [json.loads(line) for line in (edge_dir / "journal.jsonl").read_text(encoding="utf-8").splitlines()]
        return LiveRun(self.job, self.shape, self.note, self.shaped,
                       json.loads((edge_dir / "edge.json").read_text(encoding="utf-8")),
                       json.loads((cloud_dir / "cloud.json").read_text(encoding="utf-8")),
                       weights, journal, wall_s)


def run_live(job: LiveJob, workdir: Path, shape: LinkShape = LOOPBACK, timeout_s: float = 600.0,
             pings: tuple[int, int, int] = (0, 0, 0), **options: Any) -> LiveRun:
    """Run ``job`` live, edge and cloud as two processes, and return what they left."""
    with LiveProcesses(job, workdir, shape, pings=pings, **options) as processes:
        processes.start_edge()
        return processes.wait(timeout_s)
