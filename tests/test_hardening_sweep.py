"""Issue 14, sweeps: stale, damaged and half-finished points are recomputed; one sweep per folder.

Each test starts from a copy of one finished two-point sweep (run once per module), so only the
tests that must recompute points start a cluster.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dlora_sim.cli import main
from dlora_sim.sweep import LOCK, MANIFEST, MARKER, load_spec, run_sweep

from test_sweep_run import tiny_sweep  # tests/ is on sys.path

pytestmark = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason="sweeps run on Dask: pip install 'dlora-sim[scale]'")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A folder with ``in/`` (a tiny two-point sweep) and ``out/`` (its finished sweep folder)."""
    root = tmp_path_factory.mktemp("finished")
    spec_path = tiny_sweep(root / "in", budgets=(2, 3), counts=(2,))
    outcome = run_sweep(load_spec(spec_path), root / "out", n_workers=1, progress=True)
    assert (outcome.n_run, outcome.failures) == (2, [])
    return root


@pytest.fixture
def sweep(finished, tmp_path) -> tuple[Path, Path]:
    """A private copy of the finished sweep: (its spec file, its sweep folder)."""
    shutil.copytree(finished, tmp_path, dirs_exist_ok=True)
    return tmp_path / "in" / "sweep.toml", tmp_path / "out"


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


def _point_dirs(out: Path) -> set[str]:
    return {p.name for p in (out / "points").iterdir()}


def test_editing_the_base_scenario_recomputes_stale_points(sweep, capsys):
    """After the base scenario changes, a rerun runs every point again (new ids) and the table
    lists only the new points; the old folders are left as they were."""
    spec_path, out = sweep
    old_ids = _point_dirs(out)
    base = spec_path.with_name("tiny.toml")
    base.write_text(base.read_text().replace("steps = 20", "steps = 24"))
    code, stdout, stderr = _cli(["sweep", str(spec_path), "-o", str(out), "--workers", "1",
                                 "--no-progress"], capsys)
    assert code == 0, stderr
    assert "(2 run now, 0 already done)" in stdout
    new_ids = {p.point_id for p in load_spec(spec_path).points}
    assert _point_dirs(out) == old_ids | new_ids and not old_ids & new_ids
    rows = pq.read_table(out / "sweep.parquet").to_pylist()
    assert {r["point_id"] for r in rows} == new_ids
    for pid in new_ids:
        scenario = json.loads((out / "points" / pid / "results" / "scenario.json").read_text())
        assert scenario["job"]["steps"] == 24


def test_damaged_marker_and_missing_results_are_recomputed(sweep, capsys):
    """A truncated DONE.json and a DONE.json without its results both count as not done: the
    rerun exits 0, recomputes exactly those two points and leaves intact markers everywhere."""
    spec_path, out = sweep
    truncated, orphaned = (p.point_id for p in load_spec(spec_path).points)
    marker = out / "points" / truncated / MARKER
    marker.write_bytes(marker.read_bytes()[:40])
    shutil.rmtree(out / "points" / orphaned / "results")
    code, stdout, stderr = _cli(["sweep", str(spec_path), "-o", str(out), "--workers", "1",
                                 "--no-progress"], capsys)
    assert code == 0, stderr
    assert "(2 run now, 0 already done)" in stdout and "Traceback" not in stderr
    for pid in (truncated, orphaned):
        assert json.loads((out / "points" / pid / MARKER).read_text())["point_id"] == pid
        assert (out / "points" / pid / "results" / "summary.json").is_file()
    assert len(pq.read_table(out / "sweep.parquet")) == 4  # 2 points x 2 strategies


def test_a_damaged_marker_alone_does_not_break_the_table(sweep):
    """With every point done but one marker unreadable, rebuilding the table skips that point."""
    from dlora_sim.sweep_table import build_table

    spec_path, out = sweep
    spec = load_spec(spec_path)
    (out / "points" / spec.points[0].point_id / MARKER).write_bytes(b"\xff{")
    rows = pq.read_table(build_table(spec, out)).to_pylist()
    assert {r["point_id"] for r in rows} == {spec.points[1].point_id}


def _hold_lock(out: Path) -> subprocess.Popen:
    """Another process that holds the sweep folder's lock, as a running sweep does."""
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import fcntl, os, sys\n"
            f"fd = os.open({str(out / LOCK)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.ftruncate(fd, 0); os.write(fd, str(os.getpid()).encode())\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    return holder


def test_second_sweep_into_a_locked_folder_exits_1_naming_folder_and_holder(sweep, capsys):
    """While another process holds the folder, a sweep exits 1 with one line naming the folder
    and the holder's pid, and writes nothing."""
    spec_path, out = sweep
    manifest = (out / MANIFEST).stat().st_mtime_ns
    holder = _hold_lock(out)
    try:
        code, stdout, stderr = _cli(["sweep", str(spec_path), "-o", str(out), "--no-progress"],
                                    capsys)
    finally:
        holder.communicate("", timeout=10)
    assert code == 1
    (line,) = stderr.strip().splitlines()
    assert str(out) in line and f"pid {holder.pid}" in line and "Traceback" not in stderr + stdout
    assert (out / MANIFEST).stat().st_mtime_ns == manifest


def test_stale_lock_of_a_dead_sweep_is_taken_over(sweep, capsys):
    """A lock file left by a process that died (its pid in it, no lock held) does not block."""
    spec_path, out = sweep
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    (out / LOCK).write_text(dead.stdout)
    code, stdout, stderr = _cli(["sweep", str(spec_path), "-o", str(out), "--no-progress"], capsys)
    assert code == 0, stderr
    assert "(0 run now, 2 already done)" in stdout


@pytest.mark.parametrize("occupant", ["file", "folder"])
def test_output_that_is_not_a_sweep_folder_is_refused(sweep, capsys, occupant):
    """-o naming a file, or a folder holding anything but a sweep, is one line; nothing written."""
    spec_path, out = sweep
    target = out.parent / "elsewhere"
    if occupant == "file":
        target.write_text("mine")
    else:
        target.mkdir()
        (target / "notes.txt").write_text("mine")
    code, stdout, stderr = _cli(["sweep", str(spec_path), "-o", str(target), "--no-progress"],
                                capsys)
    assert code == 1
    (line,) = stderr.strip().splitlines()
    assert str(target) in line and "-o" in line and "Traceback" not in stderr + stdout
    assert not (target / MANIFEST).exists() if target.is_dir() else target.read_text() == "mine"


# ----------------------------------------------------------------------------- Dask options

NOT_PEM = "not a certificate\n"


@pytest.mark.parametrize(("options", "names"), [
    (["--scheduler", "ucx://10.0.0.5:8786"], "unsupported scheme 'ucx'"),
    (["--scheduler", "inproc://x"], "unsupported scheme 'inproc'"),
    (["--scheduler", "tcp://10.0.0.5:99999"], "port must be a number 1..65535 (got '99999')"),
    (["--scheduler", "tcp://10.0.0.5:http"], "port must be a number 1..65535 (got 'http')"),
    (["--scheduler", "tcp://10.0.0.5"], "expected tcp://HOST:PORT"),
    (["--scheduler", "10.0.0.5:8786"], "expected tls://HOST:PORT or tcp://HOST:PORT"),
    (["--scheduler", "tls://10.0.0.5:8786"], "tls:// needs --tls-ca-file and --tls-cert"),
    (["--scheduler", "tls://10.0.0.5:8786", "--tls-ca-file", "{missing}", "--tls-cert", "{pem}"],
     "--tls-ca-file {missing}: cannot read: No such file or directory"),
    (["--scheduler", "tls://10.0.0.5:8786", "--tls-ca-file", "{pem}", "--tls-cert", "{pem}"],
     "--tls-ca-file {pem}: not a PEM CA certificate"),
    (["--scheduler", "tcp://10.0.0.5:8786", "--tls-cert", "{pem}"],
     "--tls-cert: only used with a tls:// scheduler, not with --scheduler tcp://10.0.0.5:8786"),
    (["--tls-ca-file", "{pem}"], "--tls-ca-file: only used with a tls:// scheduler, not with the local"),
])
def test_bad_scheduler_options_are_one_line_at_once(sweep, tmp_path, capsys, options, names):
    """Unsupported schemes, bad ports and missing or wrong certificate files exit 1 with one line
    naming the option, without trying to connect (well under Dask's connect timeout), and write
    nothing."""
    import time

    spec_path, _ = sweep
    pem = tmp_path / "not-a-cert.pem"
    pem.write_text(NOT_PEM)
    paths = {"missing": str(tmp_path / "absent.pem"), "pem": str(pem)}
    out = tmp_path / "new-out"
    started = time.monotonic()
    code, stdout, stderr = _cli(["sweep", str(spec_path), "-o", str(out), "--no-progress",
                                 *(o.format(**paths) for o in options)], capsys)
    assert time.monotonic() - started < 5
    assert code == 1
    (line,) = stderr.strip().splitlines()
    assert names.format(**paths) in line and "Traceback" not in stderr + stdout
    assert not out.exists()


def test_certificate_without_its_key_names_the_option(tmp_path):
    """A CA file that loads but a certificate file that is not PEM: one line naming --tls-cert."""
    from dlora_sim.errors import InputError
    from dlora_sim.sweep import TLSFiles, tls_security

    from test_sweep_dask import self_signed

    good = self_signed(tmp_path / "certs")
    junk = tmp_path / "junk.pem"
    junk.write_text(NOT_PEM)
    with pytest.raises(InputError, match=rf"^--tls-cert {junk}: not a PEM certificate"):
        tls_security("tls://127.0.0.1:8786", TLSFiles(good.ca_file, junk))
    with pytest.raises(InputError, match=rf"^--tls-cert {good.cert}: not a PEM certificate"):
        tls_security("tls://127.0.0.1:8786", TLSFiles(good.ca_file, good.cert))  # key elsewhere
    security = tls_security("tls://127.0.0.1:8786", good)
    assert security.require_encryption and security.tls_client_key == str(good.key)


def test_local_cluster_listens_on_loopback_only():
    """Scheduler, dashboard, workers and nannies of the local cluster bind 127.0.0.1 only."""
    psutil = pytest.importorskip("psutil")
    from dlora_sim.sweep import _close_client, _open_client

    def listening() -> set:
        processes = [psutil.Process(), *psutil.Process().children(recursive=True)]
        return {conn.laddr for proc in processes for conn in proc.net_connections("inet")
                if conn.status == psutil.CONN_LISTEN}

    before = listening()  # whatever earlier tests left in this process is not the cluster's
    client = _open_client(None, None, n_workers=1, connect_timeout_s=10)
    try:
        opened = listening() - before
        assert client.cluster.scheduler.http_server.address == "127.0.0.1"
        assert len(opened) >= 4  # scheduler, its HTTP server, the worker and its nanny
        assert {addr.ip for addr in opened} == {"127.0.0.1"}
    finally:
        _close_client(client, own_cluster=True)
