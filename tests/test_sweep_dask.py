"""A sweep on a real Dask scheduler and worker (separate processes on loopback) equals the local one."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlora_sim.sweep import load_spec, run_sweep

pytest.importorskip("distributed")

from test_sweep_run import numbers, tiny_sweep  # noqa: E402  (tests/ is on sys.path)

DASK = Path(sys.executable).with_name("dask")


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """Terminate a process we started, killing it if it does not exit in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def dask_cluster(tmp_path):
    """`dask scheduler` and one `dask worker` as separate processes; yields the address."""
    if not DASK.exists():
        pytest.skip(f"the dask command is not installed next to {sys.executable}")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    scheduler = subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=open(logs / "scheduler.log", "w"))
    worker_cwd = tmp_path / "worker-cwd"  # not the client's folder: relative paths must not leak
    worker_cwd.mkdir()
    worker = subprocess.Popen(
        [str(DASK), "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
         "--local-directory", str(tmp_path / "worker-space")],
        cwd=worker_cwd, stdout=subprocess.DEVNULL, stderr=open(logs / "worker.log", "w"))
    try:
        from distributed import Client

        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout="5s") as client:
                    client.wait_for_workers(1, timeout=60)
                break
            except OSError:
                if time.monotonic() > deadline or scheduler.poll() is not None:
                    raise
                time.sleep(0.5)
        yield address
    finally:
        stop(worker)
        stop(scheduler)


def test_sweep_on_external_scheduler_matches_local(tmp_path, dask_cluster, monkeypatch):
    """Every number of the sweep table is the same on the external cluster as on a LocalCluster.

    The output folder is given relative to the client's working directory, which the worker
    does not share: the points must still land in the client's folder.
    """
    spec = load_spec(tiny_sweep(tmp_path / "in", budgets=(2, 3), counts=(2,)))
    monkeypatch.chdir(tmp_path)
    remote = run_sweep(spec, Path("remote"), scheduler=dask_cluster, progress=False)
    local = run_sweep(spec, tmp_path / "local", n_workers=1, progress=False)
    assert remote.failures == [] and local.failures == []
    assert remote.n_run == local.n_run == 2
    remote_rows, local_rows = numbers(remote.table_path), numbers(local.table_path)
    assert len(remote_rows) == 4
    assert remote_rows == local_rows


def test_unreachable_scheduler_is_one_line(tmp_path):
    """A scheduler address nobody listens on gives an InputError naming --scheduler, and writes nothing."""
    from dlora_sim.errors import InputError

    spec = load_spec(tiny_sweep(tmp_path / "in", budgets=(2,), counts=(2,)))
    with pytest.raises(InputError, match="--scheduler tcp://127.0.0.1:.*cannot connect"):
        run_sweep(spec, tmp_path / "out", scheduler=f"tcp://127.0.0.1:{free_port()}", progress=False,
                  connect_timeout_s=2)
    assert not (tmp_path / "out").exists()
