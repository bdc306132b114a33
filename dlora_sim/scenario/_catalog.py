"""The scenario's only door into the cost model: catalog names, module counts, job specs.

Kept in one small file so that the scenario models read as configuration, and so that the
cost model stays the one source of truth for names and shapes (a scenario never keeps a
catalog of its own).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from dlora_sim import cost
from dlora_sim.kr import profile_churn
from dlora_sim.errors import InputError

if TYPE_CHECKING:
    from dlora_sim.scenario.job import JobConfig

_KINDS = ("model", "device", "link", "gpu")


def check_name(kind: str, name: str) -> str:
    """Return ``name`` if the catalog of ``kind`` has it, else ValueError listing the allowed."""
    if kind == "strategy":
        if name not in cost.STRATEGIES:
            raise ValueError(f"unknown strategy {name!r}; allowed: {', '.join(cost.STRATEGIES)}")
        return name
    if kind not in _KINDS:
        raise ValueError(f"unknown catalog {kind!r}")
    try:
        getattr(cost, f"get_{kind}")(name)
    except InputError as error:
        raise ValueError(str(error)) from None
    return name


def is_model_file(name: str) -> bool:
    """``job.model`` names a Hugging Face config.json (a path ending in .json), not a catalog entry."""
    return str(name).endswith(".json")


def model_shape(name: str) -> Any:
    """The cost model's shape of ``job.model``: a catalog entry, or a config.json (validated
    already, so its path is absolute)."""
    if is_model_file(name):
        from pathlib import Path

        from dlora_sim.scenario._files import load_model_config_cached

        return load_model_config_cached(Path(name))
    return cost.get_model(name)


def model_width(name: str) -> int:
    """``d_model`` of the model: the most a LoRA rank or an adapter bottleneck can use."""
    return int(model_shape(name).d_model)


def device_table(name: str) -> dict[str, Any]:
    """A catalog device as the inline table a scenario would otherwise spell out."""
    check_name("device", name)
    device = cost.get_device(name)
    return {
        "name": name,
        "flops_per_s": float(device.flops_per_s),
        "memory_bytes": int(device.memory_bytes),
        "joules_per_flop": float(device.joules_per_flop),
    }


def is_catalog_link(name: Any) -> bool:
    """Whether ``name`` is a link of the catalogue (an inline table naming one starts from it)."""
    return isinstance(name, str) and name in cost.LINKS


def link_table(name: str) -> dict[str, Any]:
    """A catalog link as an inline table (jitter and loss from the catalog when it has them)."""
    check_name("link", name)
    link = cost.get_link(name)
    table: dict[str, Any] = {
        "name": name,
        "up_bps": float(link.up_bps),
        "down_bps": float(link.down_bps),
        "rtt_s": float(link.rtt_s),
    }
    for optional in ("jitter_s", "loss_rate", "data_usd_per_gb"):
        if hasattr(link, optional):
            table[optional] = float(getattr(link, optional))
    return table


def gpu(name: str, usd_per_hour: float | None, memory_gib: float | None = None) -> Any:
    """The catalog GPU, with its price and memory replaced where the scenario overrides them."""
    entry = cost.get_gpu(name)
    if usd_per_hour is not None:
        entry = dataclasses.replace(entry, usd_per_hour=usd_per_hour)
    if memory_gib is not None:
        entry = dataclasses.replace(entry, memory_bytes=memory_gib * 1024**3)
    return entry


def peft_spec(job: JobConfig) -> Any:
    return cost.PeftSpec(
        method=job.peft, rank=job.rank, targets=tuple(job.targets), adapter_size=job.adapter_size
    )


def module_count(job: JobConfig) -> int:
    """PEFT modules of the job's model and PEFT set-up, from the cost model's module table."""
    return _module_count(job.model, job.peft, job.rank, tuple(job.targets), job.adapter_size)


@lru_cache(maxsize=256)
def _module_count(model: str, peft: str, rank: int, targets: tuple[str, ...], adapter_size: int) -> int:
    spec = cost.PeftSpec(method=peft, rank=rank, targets=targets, adapter_size=adapter_size)
    try:
        table = cost.module_table(model_shape(model), spec)
    except InputError as error:
        raise ValueError(str(error)) from None
    return len(table)


def default_targets(method: Any) -> tuple[str, ...]:
    """The cost model's default targets of a PEFT method (empty for an unknown method)."""
    try:
        return tuple(cost.PeftSpec(method=method).targets or ())
    except (InputError, TypeError):
        return ()  # the method field itself reports the problem


# JobConfig fields that JobSpec takes under the same name and meaning
_SHARED_JOB_FIELDS = (
    "batch", "seq_len", "budget", "dtype_bytes", "killed_policy", "head_placement", "exchange", "share_inputs",
    "split_blocks", "split_lora", "fed_round_steps", "upload_noise", "upload_rotation",
    "kr_interval_steps", "kr_warmup_rounds", "probe_batch", "loss_tokens_per_sample", "head_out_dim",
)


def job_spec(job: JobConfig, **overrides: Any) -> Any:
    """The cost model's ``JobSpec`` for this job: steps resolved from the profile if needed, and
    KR's churn measured in the profile (:func:`dlora_sim.kr.profile_churn`), so that the cost
    model and the simulator price the same KR schedule."""
    shared = {name: getattr(job, name) for name in _SHARED_JOB_FIELDS}
    profile = job.load_profile()
    churn = profile_churn([list(row) for row in profile.traces.active], profile.setup.budget)
    fields = {"kr_churn": churn, **overrides}
    return cost.JobSpec(model=model_shape(job.model), peft=peft_spec(job), steps=job.total_steps, **shared, **fields)
