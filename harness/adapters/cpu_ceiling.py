"""The host CPU's theoretical ceiling: cores × maximum clock × FLOPs per cycle, and its memory
bandwidth from the DIMMs the firmware lists.

Every input is read from the machine, and a figure whose input is hidden is empty with the
reason, never guessed:

- **cores**: the physical cores among the CPUs this process may run on (sched affinity, then
  ``/sys/devices/system/cpu/cpuN/topology``: SMT siblings share one core's vector units), at
  most the adapter's thread count. In a VM the guest's "cores" may be hyperthreads of fewer host
  cores: the ceiling is then above the hardware's, never below;
- **maximum clock**: ``cpufreq/cpuinfo_max_freq`` (the highest turbo under ``intel_pstate`` and
  ``amd-pstate``). ``acpi-cpufreq`` with boost on lists only the highest P-state, which boost
  exceeds, and VMs usually have no cpufreq at all; the model name's "@ 2.00GHz" is the base clock,
  which turbo exceeds. Then the clock is unknown, unless ``$HARNESS_CPU_MAX_MHZ`` gives the
  part's documented maximum (the source then says it was given);
- **FLOPs per cycle**: :data:`X86_CORES` and :data:`ARM_CORES` below, chosen by vendor, family
  and ISA flags (``/proc/cpuinfo``), counting an FMA as 2 FLOPs and taking the most any
  instruction mix retires per cycle (FMA and separate add pipes together). Where one row covers
  parts that differ, it holds the largest: a ceiling must bound every part it matches;
- **memory bandwidth**: Σ over populated DIMMs of speed × data width (SMBIOS type 17, from
  ``/sys/firmware/dmi/tables/DMI``, readable by root only). DIMMs sharing a channel share its
  bandwidth, so the sum bounds it from above.

Sources of the FLOPs-per-cycle table: Intel 64 and IA-32 Architectures Optimization Reference
Manual (execution ports of Haswell to Golden Cove; Skylake-SP parts with one or two 512-bit FMA
units); Intel Architecture Day 2021 (AMX: 1024 bfloat16 operations per cycle per core on
Sapphire Rapids); AMD Software Optimization Guides for families 17h, 19h and 1Ah (two FMA and
two FADD pipes; 256 bits wide up to Zen 4, which splits 512-bit instructions over them; 512 bits
on Zen 5); Arm Neoverse N1, N2, V1 and V2 Software Optimization Guides (ASIMD/SVE pipes and
widths); Agner Fog, "The microarchitecture of Intel, AMD and VIA CPUs" (cross-checks).
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.roofline import Ceiling

#: Environment variable giving the CPU's maximum clock in MHz where the machine hides it.
CLOCK_VARIABLE = "HARNESS_CPU_MAX_MHZ"


@dataclass(frozen=True)
class Core:
    """One row of the FLOPs-per-cycle table: the most float32 FLOPs one core retires per cycle
    (an FMA counts as 2), and how (which units, which parts)."""

    fp32_per_cycle: int
    how: str


X86_CORES: dict[str, Core] = {
    "zen5": Core(96, "AMD Zen 5: 2 FMA + 2 FADD pipes of 512 bits"),
    "zen": Core(48, "AMD Zen to Zen 4: 2 FMA + 2 FADD pipes of 256 bits (Zen 1: 128; Zen 4 "
                    "runs 512-bit instructions on them in halves)"),
    "avx512": Core(64, "Intel AVX-512: 2 FMA units of 512 bits (Skylake-SP to Granite Rapids; "
                       "parts with one unit reach half)"),
    "avx2": Core(48, "Intel AVX2+FMA: at most 2 FMA + 2 FADD pipes of 256 bits (Lion Cove; "
                     "Haswell to Raptor Lake have 2 FMA pipes: 32)"),
    "avx": Core(16, "AVX without FMA: one 256-bit add and one 256-bit multiply per cycle"),
    "sse2": Core(8, "SSE2: one 128-bit add and one 128-bit multiply per cycle"),
}
#: Arm cores by (implementer, part) from /proc/cpuinfo.
ARM_CORES: dict[tuple[int, int], Core] = {
    (0x41, 0xD0C): Core(16, "Arm Neoverse N1: 2 ASIMD pipes of 128 bits"),
    (0x41, 0xD49): Core(16, "Arm Neoverse N2: 2 ASIMD/SVE pipes of 128 bits"),
    (0x41, 0xD40): Core(32, "Arm Neoverse V1: 4 ASIMD pipes of 128 bits (2 SVE of 256)"),
    (0x41, 0xD4F): Core(32, "Arm Neoverse V2: 4 ASIMD/SVE pipes of 128 bits"),
}
#: AMX's tile unit: 1024 FLOPs per cycle per core in bfloat16 (and in float16 with AMX-FP16).
AMX_PER_CYCLE = 1024


@dataclass(frozen=True)
class CpuInfo:
    """What ``/proc/cpuinfo`` says about the first processor."""

    vendor: str
    family: int | None
    flags: frozenset[str]
    implementer: int | None = None
    part: int | None = None
    model_name: str = ""


def parse_cpuinfo(text: str) -> CpuInfo:
    """The fields of ``/proc/cpuinfo`` the table needs (x86 or Arm), from its first block."""
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())

    def number(key: str, base: int = 10) -> int | None:
        try:
            return int(fields[key], base)
        except (KeyError, ValueError):
            return None

    flags = fields.get("flags") or fields.get("features") or ""
    return CpuInfo(vendor=fields.get("vendor_id", ""), family=number("cpu family"),
                   flags=frozenset(flags.split()), implementer=number("cpu implementer", 16),
                   part=number("cpu part", 16), model_name=fields.get("model name", ""))


def core_of(info: CpuInfo) -> tuple[Core | None, str]:
    """The table row for this CPU, or None and why there is none."""
    if info.implementer is not None:
        found = ARM_CORES.get((info.implementer, info.part or 0))
        return found, "" if found else (
            f"no FLOPs-per-cycle entry for Arm implementer {info.implementer:#x}, part "
            f"{info.part or 0:#x}")
    if info.vendor in ("AuthenticAMD", "HygonGenuine"):
        key = {0x17: "zen", 0x18: "zen", 0x19: "zen", 0x1A: "zen5"}.get(info.family or 0)
    elif info.vendor == "GenuineIntel" and info.family == 6:
        key = next((isa for isa, needs in (("avx512", {"avx512f"}), ("avx2", {"avx2", "fma"}),
                                           ("avx", {"avx"}), ("sse2", {"sse2"}))
                    if needs <= info.flags), None)
    else:
        key = None
    if key is None:
        return None, (f"no FLOPs-per-cycle entry for {info.vendor or 'this vendor'} family "
                      f"{info.family}")
    return X86_CORES[key], ""


def flops_per_cycle(info: CpuInfo, dtype: str) -> tuple[float | None, str]:
    """FLOPs one core retires per cycle in ``dtype`` at most, and how; None and why where the
    table does not know. Half precisions without their own instructions are computed in float32
    (converted on load), so the float32 rate bounds them."""
    core, why = core_of(info)
    if core is None:
        return None, why
    fp32 = core.fp32_per_cycle
    arm = info.implementer is not None
    if dtype == "float32":
        return fp32, core.how
    if dtype == "float64":
        return fp32 / 2, f"{core.how}; float64 lanes are half as many"
    if dtype not in ("bfloat16", "float16"):
        return None, f"the FLOPs-per-cycle table has no figure for {dtype}"
    amx, vector, name = (("amx_bf16", "avx512_bf16", "vdpbf16ps") if dtype == "bfloat16"
                         else ("amx_fp16", "avx512_fp16", "AVX512-FP16"))
    if not arm and amx in info.flags:
        return AMX_PER_CYCLE, f"AMX tile unit ({amx}): {AMX_PER_CYCLE} {dtype} FLOPs per cycle"
    if not arm and vector in info.flags:
        return 2 * fp32, f"{core.how}; {name} doubles the lanes in {dtype}"
    if arm and dtype == "float16" and "asimdhp" in info.flags:
        return 2 * fp32, f"{core.how}; half-precision ASIMD doubles the lanes"
    if arm and dtype == "bfloat16" and "bf16" in info.flags:
        return None, "the table has no rate for Arm's bfloat16 matrix instructions"
    return fp32, f"{core.how}; no {dtype} arithmetic, so it is computed in float32"


def usable_cores(root: Path, cpus: set[int]) -> int:
    """Physical cores (distinct package and core ids) among ``cpus``; ``len(cpus)`` where the
    topology is not readable (never fewer cores than there are)."""
    cores = set()
    for cpu in cpus:
        topology = root / f"sys/devices/system/cpu/cpu{cpu}/topology"
        try:
            cores.add(((topology / "physical_package_id").read_text().strip(),
                       (topology / "core_id").read_text().strip()))
        except OSError:
            return len(cpus)
    return len(cores) or len(cpus)


def max_clock_hz(root: Path, cpus: set[int], info: CpuInfo,
                 environ: Mapping[str, str]) -> tuple[float | None, str]:
    """The highest clock any of ``cpus`` can reach, and where it comes from; None and why."""
    given = environ.get(CLOCK_VARIABLE, "").strip()
    if given:
        try:
            mhz = float(given)
        except ValueError:
            mhz = 0.0
        if not mhz > 0:
            return None, f"${CLOCK_VARIABLE}={given!r} is not a clock in MHz"
        return mhz * 1e6, f"{mhz:g} MHz given by ${CLOCK_VARIABLE}"
    cpu_dir = root / "sys/devices/system/cpu"
    clocks = []
    for cpu in sorted(cpus):
        try:
            clocks.append(int((cpu_dir / f"cpu{cpu}/cpufreq/cpuinfo_max_freq").read_text()))
            driver = (cpu_dir / f"cpu{cpu}/cpufreq/scaling_driver").read_text().strip()
        except (OSError, ValueError):
            continue
        boost = cpu_dir / "cpufreq/boost"
        if driver == "acpi-cpufreq" and boost.exists() and boost.read_text().strip() == "1":
            return None, ("acpi-cpufreq lists the highest P-state, which boost exceeds; set "
                          f"${CLOCK_VARIABLE} to the part's documented maximum")
    if clocks:
        return max(clocks) * 1e3, "cpufreq cpuinfo_max_freq"
    where = "a VM, which" if "hypervisor" in info.flags else "this kernel"
    base = re.search(r"@\s*([\d.]+\s*GHz)", info.model_name)
    said = (f"; the model name's {base.group(1)} is the base clock, which turbo exceeds"
            if base else "")
    return None, (f"the maximum clock is hidden: {where} exposes no cpufreq{said}; set "
                  f"${CLOCK_VARIABLE} to the part's documented maximum")


def dimm_bandwidth(table: bytes) -> tuple[float | None, str]:
    """Σ speed × data width over the populated memory devices of an SMBIOS table (type 17)."""
    total, count, offset = 0.0, 0, 0
    while offset + 4 <= len(table):
        kind, length = table[offset], table[offset + 1]
        if kind == 127 or length < 4:
            break
        body = table[offset:offset + length]
        if kind == 17 and length >= 0x17:
            width, size, speed = (struct.unpack_from("<H", body, at)[0]
                                  for at in (0x0A, 0x0C, 0x15))
            if length >= 0x22:
                speed = struct.unpack_from("<H", body, 0x20)[0] or speed  # configured speed
            if speed == 0xFFFF and length >= 0x58:
                speed = struct.unpack_from("<I", body, 0x54)[0]
            if size not in (0, 0xFFFF):
                if speed in (0, 0xFFFF) or width in (0, 0xFFFF):
                    return None, "the firmware lists a memory device without its speed or width"
                total += speed * 1e6 * width / 8
                count += 1
        # Strings follow the formatted area, ending at a double NUL.
        end = table.find(b"\0\0", offset + length)
        if end < 0:
            break
        offset = end + 2
    if not count:
        return None, "the firmware lists no populated memory device"
    return total, f"{count} DIMMs × speed × data width (SMBIOS type 17)"


def memory_bandwidth(root: Path) -> tuple[float | None, str]:
    """The DIMMs' bandwidth bound from the DMI tables, or None and why."""
    path = root / "sys/firmware/dmi/tables/DMI"
    try:
        table = path.read_bytes()
    except FileNotFoundError:
        return None, "no DMI tables (/sys/firmware/dmi) to read the memory speed from"
    except OSError:
        return None, f"the DMI tables ({path}) are readable only by root"
    return dimm_bandwidth(table)


def host_ceiling(dtype: str, threads: int | None = None, *, root: Path = Path("/"),
                 environ: Mapping[str, str] | None = None,
                 cpus: set[int] | None = None) -> Ceiling:
    """The host CPU's ceilings for ``dtype`` for an adapter running ``threads`` threads (all
    usable cores when None)."""
    environ = os.environ if environ is None else environ
    if cpus is None:
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(
            range(os.cpu_count() or 1))
    try:
        info = parse_cpuinfo((root / "proc/cpuinfo").read_text(errors="replace"))
    except OSError as exc:
        info, unreadable = CpuInfo("", None, frozenset()), f"/proc/cpuinfo unreadable: {exc}"
    else:
        unreadable = ""
    bandwidth, bandwidth_note = memory_bandwidth(root)
    per_cycle, how = (None, unreadable) if unreadable else flops_per_cycle(info, dtype)
    clock, clock_note = max_clock_hz(root, cpus, info, environ)
    if per_cycle is None or clock is None:
        return Ceiling(None, how if per_cycle is None else clock_note, bandwidth, bandwidth_note)
    cores = usable_cores(root, cpus)
    used = min(cores, threads) if threads else cores
    limit = f", limited by threads={threads}" if threads and threads < cores else ""
    counted = f"{used} core{'s' * (used != 1)}{limit}"
    return Ceiling(used * clock * per_cycle,
                   f"{counted} × {clock / 1e9:g} GHz ({clock_note}) × {per_cycle:g} {dtype} "
                   f"FLOP/cycle ({how})", bandwidth, bandwidth_note)
