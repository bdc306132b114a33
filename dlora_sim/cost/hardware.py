"""Catalogs of edge devices, access links and cloud GPUs.

Every number is an order-of-magnitude planning figure with its source in a comment. Edge
``flops_per_s`` is *sustained* training throughput (vendor peak FP16 times a utilisation we
assume, stated per entry), not the marketing peak; energy per FLOP is board power divided by
that throughput. Scenarios can override any entry inline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dlora_sim.errors import InputError

GIB = 1024**3
MBIT = 1e6


@dataclass(frozen=True)
class EdgeDevice:
    """A user's device. ``joules_per_flop`` covers compute only (radio energy is not modelled)."""

    name: str
    flops_per_s: float
    memory_bytes: int
    joules_per_flop: float
    source: str = ""


@dataclass(frozen=True)
class Link:
    """An access link between the device and the cloud (bits per second, round-trip time).

    The radio's power while the link is in use follows the linear model of Huang et al.
    (MobiSys 2012): ``P = up_w_per_mbps * up_Mbps + down_w_per_mbps * down_Mbps + active_w``, so a
    transfer costs ``up_w_per_mbps`` joules per Mbit sent (``down_w_per_mbps`` per Mbit received)
    plus ``active_w`` for every second the link is busy or waiting on a round trip.

    ``data_usd_per_gb`` is what the user pays their carrier per GB (10^9 bytes) moved either way:
    on a metered cellular plan the job's traffic is a bill of its own, often larger than the
    cloud's; a flat-rate home line costs nothing extra per byte (0).
    """

    name: str
    up_bps: float
    down_bps: float
    rtt_s: float
    source: str = ""
    up_w_per_mbps: float = 0.0
    down_w_per_mbps: float = 0.0
    active_w: float = 0.0
    data_usd_per_gb: float = 0.0


def radio_energy_j(bytes_up: Any, bytes_down: Any, link_s: Any, up_w_per_mbps: Any, down_w_per_mbps: Any,
                   active_w: Any) -> Any:
    """The radio's energy for a transfer (:class:`Link`'s linear model of Huang et al. 2012).

    Joules per Mbit sent and received plus the active power over the time the link was in use
    (transfers and round-trip waits). The one place this model is written: the cost model, the
    simulator's device table and the planner's estimate call it, on numbers or numpy arrays.
    """
    return up_w_per_mbps * 8e-6 * bytes_up + down_w_per_mbps * 8e-6 * bytes_down + active_w * link_s


#: the :class:`Link` fields of its radio power model, in :func:`radio_energy_j`'s order
RADIO_FIELDS = ("up_w_per_mbps", "down_w_per_mbps", "active_w")


def radio_watts(link: Any) -> tuple[float, float, float]:
    """A link's radio power model (``up_w_per_mbps``, ``down_w_per_mbps``, ``active_w``).

    A :class:`Link` states its own. A scenario's link states none (its table has bandwidth, RTT
    and data price only), so it takes the model of the catalogue link of the same name, and an
    inline link, which has no radio to look up, draws none (0 W). The one place this rule is
    written: the simulator's fleet, the planner's estimate and ``dlora-sim cost`` all call it, so
    the same link never costs different joules in two of them.
    """
    if all(hasattr(link, name) for name in RADIO_FIELDS):
        source = link
    else:
        source = LINKS.get(getattr(link, "name", ""))
    if source is None:
        return (0.0, 0.0, 0.0)
    up, down, active = (float(getattr(source, name)) for name in RADIO_FIELDS)
    return (up, down, active)


def gpu_usd(gpu_s: Any, usd_per_hour: Any) -> Any:
    """Dollars for ``gpu_s`` GPU-seconds at ``usd_per_hour``: GPU time used, or a rented pool's
    GPUs × seconds. The one place a GPU is priced (cost model, simulator summary, planner)."""
    return gpu_s / 3600.0 * usd_per_hour


def data_usd(bytes_moved: float, usd_per_gb: float) -> float:
    """Mobile data the user pays for: bytes up + down at the plan's price per GB (10^9 bytes).

    The one place this price is applied: the cost model (``totals.priced`` and ``CostModel``) and
    the simulator's device table call it (it works on numbers and numpy arrays alike).
    """
    return bytes_moved * 1e-9 * usd_per_gb


@dataclass(frozen=True)
class CloudGPU:
    """A cloud accelerator: dense FP16/BF16 peak, the fraction of it training reaches, price.

    ``memory_bandwidth_bytes_per_s`` (HBM) bounds a batch that is memory-bound: the simulator's
    GPU pool streams the frozen weights once per batch (a roofline with the compute time).
    ``memory_bytes`` (HBM capacity) bounds the sessions in flight (:mod:`.memory`).
    """

    name: str
    peak_flops: float
    efficiency: float
    usd_per_hour: float
    memory_bandwidth_bytes_per_s: float
    memory_bytes: float
    source: str = ""

    @property
    def flops_per_s(self) -> float:
        return self.peak_flops * self.efficiency


DEVICES: dict[str, EdgeDevice] = {d.name: d for d in (
    # Adreno 610-class GPU (Snapdragon 665): ~0.25 TFLOP/s FP16 peak (Qualcomm/NotebookCheck),
    # 40% sustained -> 0.1 TFLOP/s; 4 GB RAM; ~3 W SoC -> 3e-11 J/FLOP.
    EdgeDevice("phone-low", 0.1e12, 4 * GIB, 3e-11, "Snapdragon 665 class; 40% of FP16 peak; 3 W"),
    # Adreno 642L-class (Snapdragon 778G): ~1.2 TFLOP/s FP16 peak, 40% -> 0.5; 8 GB; ~5 W.
    EdgeDevice("phone-mid", 0.5e12, 8 * GIB, 1e-11, "Snapdragon 778G class; 40% of FP16 peak; 5 W"),
    # Adreno 740 (Snapdragon 8 Gen 2): ~4.2 TFLOP/s FP16 peak, ~35% -> 1.5; 12 GB; ~8 W.
    EdgeDevice("phone-high", 1.5e12, 12 * GIB, 5.3e-12, "Snapdragon 8 Gen 2; 35% of FP16 peak; 8 W"),
    # Apple M2 10-core GPU: 3.6 TFLOP/s FP32 (Apple), ~70% -> 2.5; 16 GB unified; ~20 W.
    EdgeDevice("laptop", 2.5e12, 16 * GIB, 8e-12, "Apple M2 GPU; 70% of FP32 peak; 20 W"),
    # Jetson AGX Orin 32GB: ~21 TFLOP/s dense FP16 tensor (NVIDIA datasheet, half of the
    # sparse figure), ~50% -> 10; 32 GB; 40 W power mode.
    EdgeDevice("jetson", 10e12, 32 * GIB, 4e-12, "Jetson AGX Orin 32GB datasheet; 50% dense FP16; 40 W"),
)}

# Radio power (W per Mbit/s up, down; W while active): Huang et al., "A Close Examination of
# Performance and Power Characteristics of 4G LTE Networks", MobiSys 2012, power-model table:
# LTE 0.43839 / 0.05197 / 1.28804; 3G 0.86898 / 0.12212 / 0.81788; Wi-Fi 0.28317 / 0.13701 / 0.13286.
# No comparable linear model is at hand for 5G: it reuses LTE's (a stand-in, say so when quoting);
# a fibre-connected device reaches it over Wi-Fi, so it uses Wi-Fi's.
_LTE_W = (0.43839, 0.05197, 1.28804)
_3G_W = (0.86898, 0.12212, 0.81788)
_WIFI_W = (0.28317, 0.13701, 0.13286)
# Metered mobile data, US dollars per GB: the US average price of 1 GB, $6.00, in Cable.co.uk's
# "Worldwide mobile data pricing 2023" (5,603 plans in 237 countries; global spread $0.02 Israel to
# $43.75 Zimbabwe, UK $0.62). Cellular links use it; Wi-Fi and fibre are flat-rate (0 per GB).
# A scenario sets its own with the link's data_usd_per_gb.
_CELLULAR_USD_PER_GB = 6.00

LINKS: dict[str, Link] = {l.name: l for l in (
    # HSPA-class 3G: a few Mbit/s down, ~1 up, 100-200 ms RTT (ITU IMT-2000 / OpenSignal 3G era).
    Link("3g", 1 * MBIT, 3 * MBIT, 0.150, "HSPA typical; OpenSignal 3G reports; radio: Huang 2012", *_3G_W, _CELLULAR_USD_PER_GB),
    # LTE: ~30 down / ~10 up Mbit/s, ~50 ms RTT (OpenSignal Mobile Network Experience reports).
    Link("lte", 10 * MBIT, 30 * MBIT, 0.050, "OpenSignal LTE averages; radio: Huang 2012", *_LTE_W, _CELLULAR_USD_PER_GB),
    # 5G NR mid-band: ~200 down / ~30 up, ~25 ms RTT (OpenSignal 5G experience reports).
    Link("5g", 30 * MBIT, 200 * MBIT, 0.025, "OpenSignal 5G averages; radio: LTE stand-in", *_LTE_W, _CELLULAR_USD_PER_GB),
    # Home Wi-Fi on a cable/DSL uplink: ~100 down / ~40 up, ~10 ms RTT to a nearby region (Ookla).
    Link("wifi", 40 * MBIT, 100 * MBIT, 0.010, "Ookla fixed broadband medians; radio: Huang 2012", *_WIFI_W),
    # FTTH: 1 Gbit/s down / 500 up, ~5 ms RTT to a nearby cloud region.
    Link("fibre", 500 * MBIT, 1000 * MBIT, 0.005, "FTTH gigabit plans; radio: Wi-Fi (Huang 2012)", *_WIFI_W),
)}

GPUS: dict[str, CloudGPU] = {g.name: g for g in (
    # A100 SXM: 312 TFLOP/s dense BF16 (NVIDIA datasheet); 40% model-FLOP utilisation assumed;
    # AWS p4d.24xlarge on-demand $32.77/h for 8 GPUs -> $4.10/GPU-hour.
    # HBM2e bandwidth of the A100 SXM 80 GB: 2,039 GB/s (NVIDIA A100 datasheet).
    # 80 GB of HBM2e: the A100 SXM 80 GB, the part whose bandwidth is above.
    CloudGPU("a100", 312e12, 0.40, 4.10, 2.039e12, 80 * GIB, "NVIDIA A100 datasheet; AWS p4d on-demand / 8"),
    # H100 SXM: 989 TFLOP/s dense BF16 (NVIDIA datasheet); 40% MFU assumed;
    # AWS p5.48xlarge on-demand $98.32/h for 8 GPUs -> $12.29/GPU-hour.
    # HBM3 bandwidth of the H100 SXM: 3.35 TB/s (NVIDIA H100 datasheet).
    # 80 GB HBM3 per H100 SXM (NVIDIA H100 datasheet).
    CloudGPU("h100", 989e12, 0.40, 12.29, 3.35e12, 80 * GIB, "NVIDIA H100 datasheet; AWS p5 on-demand / 8"),
    # H200 SXM: the H100's 989 TFLOP/s dense BF16 with 141 GB of HBM3e at 4.8 TB/s (NVIDIA H200
    # datasheet); 40% MFU assumed. AWS p5e.48xlarge (8 H200) is priced by capacity block rather
    # than one public on-demand figure: $14.00/GPU-hour is an assumption (H100 + ~15%); override it
    # with cloud.usd_per_hour.
    CloudGPU("h200", 989e12, 0.40, 14.00, 4.8e12, 141e9, "NVIDIA H200 datasheet; price assumed (H100 + 15%)"),
    # L40S: 362 TFLOP/s dense BF16 (NVIDIA L40S datasheet: 733 with sparsity), 48 GB GDDR6 at
    # 864 GB/s; 40% MFU assumed; AWS g6e.xlarge (1 L40S) on-demand $1.861/h.
    CloudGPU("l40s", 362e12, 0.40, 1.861, 864e9, 48 * GIB, "NVIDIA L40S datasheet; AWS g6e.xlarge on-demand"),
    # L4: 121 TFLOP/s dense BF16 (NVIDIA L4 datasheet: 242 with sparsity), 24 GB GDDR6 at
    # 300 GB/s; 40% MFU assumed; AWS g6.xlarge (1 L4) on-demand $0.805/h.
    CloudGPU("l4", 121e12, 0.40, 0.805, 300e9, 24 * GIB, "NVIDIA L4 datasheet; AWS g6.xlarge on-demand"),
)}


def _get(catalog: dict, kind: str, name: str):
    try:
        return catalog[name]
    except KeyError:
        raise InputError(f"unknown {kind} {name!r}; allowed: {', '.join(catalog)}") from None


def get_device(name: str) -> EdgeDevice:
    """Catalog look-up. Raises InputError naming the allowed devices."""
    return _get(DEVICES, "device", name)


def get_link(name: str) -> Link:
    """Catalog look-up. Raises InputError naming the allowed links."""
    return _get(LINKS, "link", name)


def get_gpu(name: str) -> CloudGPU:
    """Catalog look-up. Raises InputError naming the allowed GPUs."""
    return _get(GPUS, "gpu", name)
