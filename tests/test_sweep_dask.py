"""A sweep on a real Dask scheduler and worker (separate processes on loopback) equals the local one."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dlora_sim.errors import InputError
from dlora_sim.sweep import TLSFiles, load_spec, run_sweep, tls_security

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


@contextmanager
def external_cluster(tmp_path: Path, scheme: str = "tcp", tls: TLSFiles | None = None) -> Iterator[str]:
    """`dask scheduler` and one `dask worker` as separate processes, every port on loopback (as
    docs/sweeps.md starts them, but on 127.0.0.1); yields the scheduler's address.

    With ``tls``, both use those certificate files (one identity for the whole test cluster).
    """
    if not DASK.exists():
        pytest.skip(f"the dask command is not installed next to {sys.executable}")
    port = free_port()
    address = f"{scheme}://127.0.0.1:{port}"
    tls_args = [] if tls is None else [
        "--tls-ca-file", str(tls.ca_file), "--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    scheduler = subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--protocol", scheme,
         "--dashboard-address", "127.0.0.1:0", *tls_args],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=open(logs / "scheduler.log", "w"))
    worker_cwd = tmp_path / "worker-cwd"  # not the client's folder: relative paths must not leak
    worker_cwd.mkdir()
    worker = subprocess.Popen(
        [str(DASK), "worker", address, "--nthreads", "1", "--nworkers", "1", "--host", "127.0.0.1",
         "--dashboard-address", "127.0.0.1:0",  # --no-dashboard would still serve HTTP on 0.0.0.0
         "--local-directory", str(tmp_path / "worker-space"), *tls_args],
        cwd=worker_cwd, stdout=subprocess.DEVNULL, stderr=open(logs / "worker.log", "w"))
    try:
        from distributed import Client

        security = None if tls is None else tls_security(address, tls)
        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout="5s", security=security) as client:
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


@pytest.fixture
def dask_cluster(tmp_path):
    """A plain tcp:// external cluster on loopback; yields its address."""
    with external_cluster(tmp_path) as address:
        yield address


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
    spec = load_spec(tiny_sweep(tmp_path / "in", budgets=(2,), counts=(2,)))
    with pytest.raises(InputError, match="--scheduler tcp://127.0.0.1:.*cannot connect"):
        run_sweep(spec, tmp_path / "out", scheduler=f"tcp://127.0.0.1:{free_port()}", progress=False,
                  connect_timeout_s=2)
    assert not (tmp_path / "out").exists()


def self_signed(folder: Path) -> TLSFiles:
    """A throw-away CA and one certificate it signed for 127.0.0.1 (openssl, a second or less)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make test certificates")
    folder.mkdir(parents=True, exist_ok=True)
    ca, cert, key = folder / "ca.pem", folder / "node.pem", folder / "node.key"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for command in (
        ["req", "-x509", *ec, "-keyout", folder / "ca.key", "-out", ca, "-days", "1", "-subj", "/CN=test-ca"],
        ["req", *ec, "-keyout", key, "-out", folder / "node.csr", "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", folder / "node.csr", "-CA", ca, "-CAkey", folder / "ca.key",
         "-CAcreateserial", "-out", cert, "-days", "1"],
    ):
        subprocess.run([openssl, *map(str, command)], check=True, capture_output=True, timeout=30)
    return TLSFiles(ca, cert, key)


def test_sweep_over_tls_runs_and_plain_or_foreign_clients_are_refused(tmp_path):
    """On a tls:// cluster the sweep runs with the client's certificate files; a tcp:// client
    and one whose certificate another CA signed get one line each, and write nothing."""
    tls = self_signed(tmp_path / "certs")
    spec = load_spec(tiny_sweep(tmp_path / "in", budgets=(2,), counts=(2,)))
    with external_cluster(tmp_path, "tls", tls) as address:
        outcome = run_sweep(spec, tmp_path / "out", scheduler=address, tls=tls, progress=False)
        assert (outcome.n_run, outcome.failures) == (1, [])
        stranger = self_signed(tmp_path / "stranger")
        for scheduler, files in ((address.replace("tls://", "tcp://"), TLSFiles()),
                                 (address, stranger)):
            with pytest.raises(InputError) as caught:
                run_sweep(spec, tmp_path / "refused", scheduler=scheduler, tls=files,
                          progress=False, connect_timeout_s=2)
            assert str(caught.value).startswith(f"--scheduler {scheduler}: cannot connect: ")
            assert "\n" not in str(caught.value)
        assert not (tmp_path / "refused").exists()
