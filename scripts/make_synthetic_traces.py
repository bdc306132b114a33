"""Write the shipped *synthetic* traces in scenarios/traces/ (device capacity and bandwidth).

Synthetic, not measured: drawn with fixed seeds from published summary figures, each an
assumption stated here so a reader can replace it with a real trace.

synthetic-phones.csv (device capacity), 200 phones:

- Mobile bandwidth: log-normal with medians of 30 Mbit/s down and 9 Mbit/s up and a log-space
  spread of 0.9 (Ookla Speedtest Global Index mobile medians, 2023, of the order of 30-40 and
  8-10 Mbit/s; the spread is chosen so that the 10th-90th percentile range covers about 10x).
- Memory: 4, 6, 8 or 12 GB with shares 0.25, 0.30, 0.30, 0.15 (typical RAM tiers of phones sold
  in 2021-2023).
- Compute: the time of one MiniLM-L6 training sample at 128 tokens, log-normal with a spread of
  0.7 around the time a device sustaining 0.5 TFLOP/s (the catalogue's phone-mid) takes for the
  cost model's FLOPs of that sample.

synthetic-lte-down.csv and synthetic-lte-up.csv (bandwidth over time), 8 traces of 10 minutes:

- One sample a second, a common resolution of public throughput logs (the form Pensieve's
  cooked FCC and HSDPA traces take).
- Each trace's own median is drawn log-normally around the same Ookla mobile medians as above
  (30 Mbit/s down, 9 up; log-space spread 0.5 between traces), so the fleet's mean rates vary.
- Within a trace, log-rate is an AR(1) process, lag-1 correlation 0.9 and stationary log-space
  spread 0.6: an assumption (throughput a second apart is strongly correlated), not fitted.
- Outages: each second starts a 0 Mbit/s gap of 2-10 s with probability 0.005 (tunnels, lifts;
  an assumption). Up and down trace k come from the same draws of gaps, so a gap cuts both.

synthetic-backhaul.csv (bandwidth over time), one trace of 24 hours, a row a quarter hour: the
capacity a cell's backhaul leaves to this fleet, 400 Mbit/s less what other traffic takes, which
follows mobile traffic's daily cycle (lowest before dawn, highest in the evening, as operators'
traffic reports show). The utilisation is linear between the anchors of ``BACKHAUL_LOAD``
(0.1 at 04:00, 0.6 from noon to 17:00, 0.8 at 21:00): an assumed shape, not measured. A row's
time is seconds after midnight.

    python scripts/make_synthetic_traces.py     # rewrites the files (deterministic)
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from dlora_sim.cost import JobSpec, PeftSpec, get_device, step_cost

TRACES = Path(__file__).resolve().parents[1] / "scenarios" / "traces"
OUT = TRACES / "synthetic-phones.csv"
SEED = 20231
DEVICES = 200
LTE_SEED, LTE_TRACES, LTE_SECONDS = 20232, 8, 600
BACKHAUL_PEAK_MBIT_S = 400.0
#: (hour, share of the backhaul other traffic takes), linear in between
BACKHAUL_LOAD = ((0, 0.45), (4, 0.1), (8, 0.45), (12, 0.6), (17, 0.6), (21, 0.8), (24, 0.45))


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


def synthetic_lte(direction: str, n: int = LTE_TRACES, seconds: int = LTE_SECONDS, seed: int = LTE_SEED) -> str:
    """8 one-second LTE throughput traces of one direction (docs/traces.md, bandwidth) as CSV."""
    median = {"down": 30.0, "up": 9.0}[direction]
    rng = np.random.default_rng(seed)  # the gaps: the same for both directions
    gaps = np.zeros((n, seconds), dtype=bool)
    for k in range(n):
        t = 0
        while t < seconds:
            if rng.random() < 0.005:
                length = int(rng.integers(2, 11))
                gaps[k, t:t + length] = True
                t += length
            t += 1
    rng = np.random.default_rng([seed, {"down": 0, "up": 1}[direction]])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["trace", "time_s", "mbit_s"])
    rho, spread = 0.9, 0.6
    for k in range(n):
        level = np.log(median) + 0.5 * rng.standard_normal()
        x = spread * rng.standard_normal()
        for t in range(seconds):
            x = rho * x + spread * np.sqrt(1 - rho**2) * rng.standard_normal()
            mbit = 0.0 if gaps[k, t] else float(np.exp(level + x))
            writer.writerow([f"lte-{k}", t, f"{mbit:.4g}"])
    return out.getvalue()


def synthetic_backhaul() -> str:
    """A day of a cell backhaul's spare capacity, a row a quarter hour, as CSV (docs/traces.md)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time_s", "mbit_s"])
    hours, loads = zip(*BACKHAUL_LOAD)
    for q in range(96):
        utilisation = float(np.interp(q / 4, hours, loads))
        writer.writerow([q * 900, f"{BACKHAUL_PEAK_MBIT_S * (1 - utilisation):.4g}"])
    return out.getvalue()


FILES = {
    "synthetic-phones.csv": synthetic_phones,
    "synthetic-lte-down.csv": lambda: synthetic_lte("down"),
    "synthetic-lte-up.csv": lambda: synthetic_lte("up"),
    "synthetic-backhaul.csv": synthetic_backhaul,
}


if __name__ == "__main__":
    for name, make in FILES.items():
        (TRACES / name).write_text(make(), encoding="utf-8")
        print(f"wrote {TRACES / name}")
