"""NVIDIA GPUs' ceilings from their datasheets: dense FLOP/s by dtype and memory bandwidth, the
theoretical roof a measured rate on that board can never exceed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from harness.roofline import Ceiling


@dataclass(frozen=True)
class Datasheet:
    """One GPU's ceilings from NVIDIA's datasheet: dense (no 2:4 sparsity) FLOP/s by dtype, and
    memory bandwidth. ``pattern`` matches torch's device name without ``NVIDIA``/``Tesla``."""

    pattern: str
    sheet: str
    flops_per_s: Mapping[str, float]
    bytes_per_s: float


# Figures from each product's NVIDIA datasheet. Datasheets print tensor-core figures "with
# sparsity"; the dense figures here are half of those. float32 is the non-tensor FP32 rate (torch
# does not use TF32 for float32 matmuls unless asked); tf32 applies when it is asked.
_HOPPER = {"float32": 67e12, "tf32": 494.5e12, "bfloat16": 989.5e12, "float16": 989.5e12}
_A100 = {"float32": 19.5e12, "tf32": 156e12, "bfloat16": 312e12, "float16": 312e12}
DATASHEETS: tuple[Datasheet, ...] = (
    Datasheet(r"H100 (80GB HBM3|SXM5?( 80GB)?)", "NVIDIA H100 SXM", _HOPPER, 3.35e12),
    Datasheet(r"H100 PCIe", "NVIDIA H100 PCIe",
              {"float32": 51e12, "tf32": 378e12, "bfloat16": 756.5e12, "float16": 756.5e12},
              2.0e12),
    # The H200 NVL is power-limited below these figures; it has no entry (no ceiling).
    Datasheet(r"H200( SXM5?)?( 141GB)?( HBM3e)?", "NVIDIA H200 SXM", _HOPPER, 4.8e12),
    Datasheet(r"A100-SXM4-80GB", "NVIDIA A100 80GB SXM", _A100, 2.039e12),
    Datasheet(r"A100-SXM4-40GB", "NVIDIA A100 40GB SXM", _A100, 1.555e12),
    Datasheet(r"A100 80GB PCIe", "NVIDIA A100 80GB PCIe", _A100, 1.935e12),
    Datasheet(r"A100-PCIE-40GB", "NVIDIA A100 40GB PCIe", _A100, 1.555e12),
    Datasheet(r"L4", "NVIDIA L4",
              {"float32": 30.3e12, "tf32": 60e12, "bfloat16": 121e12, "float16": 121e12}, 300e9),
    # Exactly "A10": AWS's A10G is a different board with its own figures.
    Datasheet(r"A10", "NVIDIA A10",
              {"float32": 31.2e12, "tf32": 62.5e12, "bfloat16": 125e12, "float16": 125e12},
              600e9),
    # Turing: no bfloat16 or TF32 units, and no sparsity; fp16 is the "mixed precision" figure.
    Datasheet(r"T4", "NVIDIA T4", {"float32": 8.1e12, "float16": 65e12}, 320e9),
)
_PREFIX = re.compile(r"^(NVIDIA|Tesla)\s+", re.IGNORECASE)


def datasheet_for(device_name: str) -> Datasheet | None:
    """The datasheet entry for torch's device name (e.g. ``NVIDIA H200``), if there is one."""
    name = device_name.strip()
    while _PREFIX.match(name):
        name = _PREFIX.sub("", name, count=1)
    for sheet in DATASHEETS:
        if re.fullmatch(sheet.pattern, name, re.IGNORECASE):
            return sheet
    return None


def datasheet_ceiling(device_name: str, dtype: str, *, tf32: bool = False) -> Ceiling:
    """The datasheet ceiling of ``device_name`` for ``dtype``; figures a datasheet lacks (an
    unknown board, a dtype without a rate) are None with the reason.

    ``tf32``: float32 matmuls run on TF32 tensor cores (``torch.set_float32_matmul_precision``
    ``"high"`` or ``"medium"``), so the TF32 figure is the float32 ceiling.
    """
    sheet = datasheet_for(device_name)
    if sheet is None:
        return Ceiling.unknown(f"no datasheet entry for {device_name!r}")
    memory = f"datasheet: {sheet.sheet}, memory {sheet.bytes_per_s / 1e12:g} TB/s"
    key = "tf32" if dtype == "float32" and tf32 else dtype
    if key not in sheet.flops_per_s:
        return Ceiling(None, f"the {sheet.sheet} datasheet gives no {key} rate",
                       sheet.bytes_per_s, memory)
    kind = "FP32 (non-tensor)" if key == "float32" else f"dense {key}"
    return Ceiling(sheet.flops_per_s[key], f"datasheet: {sheet.sheet}, {kind}",
                   sheet.bytes_per_s, memory)
