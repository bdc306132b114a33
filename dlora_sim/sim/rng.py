"""Named random streams: one generator per (seed, device, purpose), never per event order.

Paired strategies must see the same world. If random numbers were drawn from one shared
generator in event order, a strategy that finishes steps faster would consume draws earlier and
shift every later draw, so two strategies would face different disconnections. Deriving each stream
from ``(seed, device id, purpose)`` makes a device's availability, speed and jitter independent of
what any strategy does.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["stream"]


def stream(seed: int, device_id: int, purpose: str) -> np.random.Generator:
    """Return the generator for one device and one purpose (e.g. ``"availability"``).

    ``zlib.crc32`` rather than ``hash()``: Python salts string hashes per process, which would
    break byte-identical reruns.
    """
    if seed < 0 or device_id < 0:
        raise ValueError(f"seed and device_id must be >= 0, got {seed}, {device_id}")
    return np.random.default_rng([int(seed), int(device_id), zlib.crc32(purpose.encode("utf-8"))])
