"""Units shown to people: one formatter for sizes, so the Markdown and the HTML report say the same thing."""

from __future__ import annotations

from typing import Any

# Binary multiples are named as such (IEC): a model file of 3 * 2**20 bytes is "3.0 MiB", never "3.1 MB".
BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def binary_unit(size: float) -> tuple[str, int]:
    """The largest binary unit that ``size`` bytes fill at least once, and its size in bytes."""
    power = 0
    while power < len(BINARY_UNITS) - 1 and size >= 1024 ** (power + 1):
        power += 1
    return BINARY_UNITS[power], 1024**power


def size_text(size: Any) -> str:
    """``812 B``, ``1.5 KiB``, ``37.2 MiB``; '' when the size is unknown (not a number)."""
    if not isinstance(size, int | float) or isinstance(size, bool):
        return ""
    unit, scale = binary_unit(size)
    return f"{size:.0f} B" if scale == 1 else f"{size / scale:.1f} {unit}"
