"""Write the shipped *synthetic* device-capacity trace, scenarios/traces/synthetic-phones.csv.

Synthetic, not measured: 200 phones drawn with a fixed seed from published summary figures,
each an assumption stated here so a reader can replace it with a real trace.

- Mobile bandwidth: log-normal with medians of 30 Mbit/s down and 9 Mbit/s up and a log-space
  spread of 0.9 (Ookla Speedtest Global Index mobile medians, 2023, of the order of 30-40 and
  8-10 Mbit/s; the spread is chosen so that the 10th-90th percentile range covers about 10x).
- Memory: 4, 6, 8 or 12 GB with shares 0.25, 0.30, 0.30, 0.15 (typical RAM tiers of phones sold
  in 2021-2023).
- Compute: the time of one MiniLM-L6 training sample at 128 tokens, log-normal with a spread of
  0.7 around the time a device sustaining 0.5 TFLOP/s (the catalogue's phone-mid) takes for the
  cost model's FLOPs of that sample.

    python scripts/make_synthetic_traces.py     # rewrites the file (deterministic)
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from dlora_sim.cost import JobSpec, PeftSpec, get_device, step_cost

OUT = Path(__file__).resolve().parents[1] / "scenarios" / "traces" / "synthetic-phones.csv"
SEED = 20231
DEVICES = 200


def synthetic_phones(n: int = DEVICES, seed: int = SEED) -> str:
    """The trace as CSV text (docs/traces.md, device capacity)."""
    rng = np.random.default_rng(seed)
    down = 30.0 * np.exp(0.9 * rng.standard_normal(n))
    up = 9.0 * np.exp(0.9 * rng.standard_normal(n))
    memory = rng.choice([4, 6, 8, 12], size=n, p=[0.25, 0.30, 0.30, 0.15])
    sample_flops = step_cost(JobSpec(model="minilm-l6", peft=PeftSpec("lora"), batch=1, seq_len=128, budget=1),
                             "edge-only").edge_flops
    sample_s = sample_flops / get_device("phone-mid").flops_per_s * np.exp(0.7 * rng.standard_normal(n))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["device", "sample_s", "ref_model", "ref_seq_len", "memory_gb", "up_mbps", "down_mbps"])
    for i in range(n):
        writer.writerow([f"synthetic-{i:03d}", f"{sample_s[i]:.6g}", "minilm-l6", 128, int(memory[i]),
                         f"{up[i]:.4g}", f"{down[i]:.4g}"])
    return out.getvalue()


if __name__ == "__main__":
    OUT.write_text(synthetic_phones(), encoding="utf-8")
    print(f"wrote {OUT}")
