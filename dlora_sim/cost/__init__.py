"""The analytical cost model of DLoRA cloud-edge fine-tuning (numpy only).

One source of truth for what a training step costs: model shapes and their FLOPs
(:mod:`.models`), PEFT module tables (:mod:`.peft`), device/link/GPU catalogs
(:mod:`.hardware`), the job (:mod:`.job`), the strategies — each one's step as round trips, its
memory and what the cloud sees (:mod:`.strategies`) — the cloud's GPU memory (:mod:`.memory`),
whole-job accounting (:mod:`.totals`) and the vectorised grid evaluator (:mod:`.model`).
Counting convention everywhere: 1 multiply-accumulate = 2 FLOPs; elementwise ops not counted
(except IA3's scaling and the optimizer, which are nothing but elementwise).
"""

from dlora_sim.cost.hardware import (
    DEVICES,
    GPUS,
    LINKS,
    RADIO_FIELDS,
    CloudGPU,
    EdgeDevice,
    Link,
    data_usd,
    gpu_usd,
    radio_energy_j,
    radio_watts,
    get_device,
    get_gpu,
    get_link,
)
from dlora_sim.cost.job import EXCHANGES, HEAD_PLACEMENTS, KILLED_POLICIES, SPLIT_LORA_SIDES, JobSpec
from dlora_sim.cost.memory import (
    MEMORY_FULL_POLICIES,
    cloud_session_bytes,
    cloud_weight_bytes,
    edge_weight_bytes,
    recompute_cloud_flops,
    sessions_per_gpu,
)
from dlora_sim.cost.model import CostModel, CostTable, grid
from dlora_sim.cost.models import (
    MODELS,
    ModelShape,
    base_backward_flops_per_token,
    base_forward_flops_per_token,
    get_model,
    head_flops_per_loss_token,
)
from dlora_sim.cost.peft import PEFT_METHODS, ModuleTable, PeftSpec, allowed_targets, module_table
from dlora_sim.cost.strategies import (
    BASELINE,
    DLORA_STRATEGIES,
    EXPOSURES,
    STRATEGIES,
    Exchange,
    StepCost,
    Strategy,
    check_strategy,
    get_strategy,
    kr_round_exchanges,
    kr_schedule,
    offloaded_module_bytes,
    probe_exchanges,
    step_cost,
    step_exchanges,
)
from dlora_sim.cost.totals import job_totals, priced, setup_bytes_down, sync_rounds

__all__ = [
    "BASELINE", "DEVICES", "DLORA_STRATEGIES", "EXCHANGES", "EXPOSURES", "GPUS", "HEAD_PLACEMENTS",
    "KILLED_POLICIES", "LINKS", "MEMORY_FULL_POLICIES", "RADIO_FIELDS", "MODELS", "PEFT_METHODS", "SPLIT_LORA_SIDES", "STRATEGIES",
    "CloudGPU", "CostModel", "CostTable", "EdgeDevice", "Exchange", "JobSpec", "Link",
    "ModelShape", "ModuleTable", "PeftSpec", "StepCost", "Strategy",
    "allowed_targets", "base_backward_flops_per_token", "base_forward_flops_per_token", "check_strategy",
    "cloud_session_bytes", "cloud_weight_bytes", "data_usd", "edge_weight_bytes", "get_device", "get_gpu", "get_link",
    "get_model", "get_strategy", "gpu_usd", "grid", "head_flops_per_loss_token", "job_totals", "kr_round_exchanges",
    "kr_schedule", "module_table", "offloaded_module_bytes", "priced", "probe_exchanges", "radio_energy_j", "radio_watts", "recompute_cloud_flops",
    "sessions_per_gpu", "setup_bytes_down", "step_cost", "step_exchanges", "sync_rounds",
]
