"""GPU memory: sessions keep their activations on a GPU through a step, and HBM bounds them."""

from __future__ import annotations

import pytest
from _sim_scenarios import small

from dlora_sim.cost import cloud_session_bytes, cloud_weight_bytes, JobSpec, sessions_per_gpu, get_gpu
from dlora_sim.errors import InputError
from dlora_sim.sim import simulate

# MiniLM blocks take 21 MB and a session 11.8 MB: 0.05 GiB holds the weights and two sessions
TIGHT = {"fleet.groups.0.count": 6, "cloud.count": 1, "cloud.memory_gib": 0.05, "job.steps": 12,
         "run.strategies": ["dlora-all"]}


def test_llama_7b_session_needs_about_three_gb():
    """b·T = 1024 on LLaMA-7B: ~3 GB of kept activations a session; 23 fit beside the blocks on an A100."""
    job = JobSpec()
    assert cloud_session_bytes(job, "dlora-kr") == pytest.approx(3.05e9, rel=0.01)
    assert cloud_weight_bytes(job, "dlora-kr") == pytest.approx(12.95e9, rel=0.01)
    assert sessions_per_gpu(job, "dlora-kr", get_gpu("a100")) == 23
    assert cloud_session_bytes(job, "edge-only") == 0


def test_sessions_that_do_not_fit_queue_for_memory():
    """queue: at most two sessions hold memory at once, the others wait, and the wait is reported."""
    block = simulate(small({**TIGHT, "cloud.memory_full": "queue"})).strategy("dlora-all")
    memory = block["cloud_memory"]
    assert memory["session_slots"] == 2 and memory["peak_sessions"] == 2
    assert memory["memory_wait_s"] > 0 and memory["recomputed_steps"] == 0
    assert memory["peak_bytes_per_gpu"] <= 0.05 * 2**30
    assert block["finished_devices"] == 6


def test_sessions_that_do_not_fit_recompute_instead():
    """recompute: no session waits for memory; the steps that found it full cost the cloud a
    second forward pass, so cloud FLOPs exceed those of a pool with room for everyone."""
    roomy = simulate(small({**TIGHT, "cloud.memory_gib": 80.0})).strategy("dlora-all")
    tight = simulate(small({**TIGHT, "cloud.memory_full": "recompute"})).strategy("dlora-all")
    assert tight["cloud_memory"]["memory_wait_s"] == 0 and tight["cloud_memory"]["recomputed_steps"] > 0
    assert tight["cloud_flops"] > roomy["cloud_flops"]
    assert roomy["cloud_memory"]["memory_wait_s"] == 0 and roomy["cloud_memory"]["recomputed_steps"] == 0


def test_a_gpu_too_small_for_one_session_is_refused():
    """Not one session fits beside the weights: one line naming cloud.memory_gib, before simulating."""
    with pytest.raises(InputError, match="cloud.memory_gib"):
        simulate(small({**TIGHT, "cloud.memory_gib": 0.02}))


def test_the_dashboard_shows_cloud_memory(tmp_path):
    """A run whose sessions queued for memory: its dashboard has the memory panel with the peak."""
    from dlora_sim.report.dashboard import build_dashboard
    from dlora_sim.sim.results import write_results

    write_results(simulate(small({**TIGHT, "cloud.memory_full": "queue"})), tmp_path / "run")
    page = build_dashboard(tmp_path / "run", tmp_path / "run.html").read_text(encoding="utf-8")
    assert "Cloud GPU memory" in page and "Waiting for memory" in page and "Peak GPU memory" in page
