"""The host CPU's ceiling from a fake /proc and /sys: cores × clock × FLOPs per cycle, DIMMs'
bandwidth, and a reason for every figure the machine hides."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from harness.adapters import cpu_ceiling
from harness.adapters.cpu_ceiling import (
    CpuInfo,
    dimm_bandwidth,
    flops_per_cycle,
    host_ceiling,
    parse_cpuinfo,
)

SKYLAKE_VM = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 85
model name\t: Intel(R) Xeon(R) Processor @ 2.00GHz
flags\t\t: fpu sse sse2 avx fma avx2 avx512f avx512dq hypervisor

processor\t: 1
vendor_id\t: GenuineIntel
"""
SAPPHIRE = ("vendor_id\t: GenuineIntel\ncpu family\t: 6\nflags\t\t: sse2 avx fma avx2 avx512f "
            "avx512_bf16 avx512_fp16 amx_bf16 amx_tile\n")
ZEN4 = "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nflags\t\t: sse2 avx fma avx2 avx512f\n"
ZEN5 = "vendor_id\t: AuthenticAMD\ncpu family\t: 26\nflags\t\t: sse2 avx fma avx2 avx512f\n"
GRAVITON3 = ("processor\t: 0\nFeatures\t: fp asimd fphp asimdhp sve bf16\n"
             "CPU implementer\t: 0x41\nCPU part\t: 0xd40\n")


def machine(tmp_path: Path, cpuinfo: str, *, cores: list[tuple[int, int]],
            max_khz: int | None = None, driver: str = "intel_pstate",
            boost: str | None = None) -> Path:
    """A fake root: /proc/cpuinfo and, per CPU, its (package, core) and cpufreq files."""
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(cpuinfo)
    cpu_dir = tmp_path / "sys/devices/system/cpu"
    for cpu, (package, core) in enumerate(cores):
        topology = cpu_dir / f"cpu{cpu}/topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text(f"{package}\n")
        (topology / "core_id").write_text(f"{core}\n")
        if max_khz is not None:
            freq = cpu_dir / f"cpu{cpu}/cpufreq"
            freq.mkdir()
            (freq / "cpuinfo_max_freq").write_text(f"{max_khz}\n")
            (freq / "scaling_driver").write_text(f"{driver}\n")
    if boost is not None:
        (cpu_dir / "cpufreq").mkdir(parents=True, exist_ok=True)
        (cpu_dir / "cpufreq/boost").write_text(boost)
    return tmp_path


def test_cpuinfo_fields_x86_and_arm() -> None:
    info = parse_cpuinfo(SKYLAKE_VM)
    assert (info.vendor, info.family) == ("GenuineIntel", 6)
    assert {"avx512f", "hypervisor"} <= info.flags
    assert info.model_name == "Intel(R) Xeon(R) Processor @ 2.00GHz"
    arm = parse_cpuinfo(GRAVITON3)
    assert (arm.implementer, arm.part) == (0x41, 0xD40) and "asimdhp" in arm.flags


@pytest.mark.parametrize(("cpuinfo", "dtype", "per_cycle", "says"), [
    (SKYLAKE_VM, "float32", 64, "2 FMA units of 512 bits"),
    (SKYLAKE_VM, "float64", 32, "half as many"),
    (SKYLAKE_VM, "bfloat16", 64, "computed in float32"),  # no bfloat16 instructions
    (SAPPHIRE, "bfloat16", 1024, "AMX"),
    (SAPPHIRE, "float16", 128, "AVX512-FP16"),
    (ZEN4, "float32", 48, "Zen to Zen 4"),
    (ZEN5, "float32", 96, "Zen 5"),
    (GRAVITON3, "float32", 32, "Neoverse V1"),
    (GRAVITON3, "float16", 64, "half-precision"),
    ("vendor_id: GenuineIntel\ncpu family: 6\nflags: sse2 avx fma avx2\n", "float32", 48,
     "AVX2+FMA"),
])
def test_flops_per_cycle_table(cpuinfo: str, dtype: str, per_cycle: float, says: str) -> None:
    found, how = flops_per_cycle(parse_cpuinfo(cpuinfo), dtype)
    assert found == per_cycle
    assert says in how


@pytest.mark.parametrize(("info", "dtype", "why"), [
    (parse_cpuinfo(GRAVITON3), "bfloat16", "no rate for Arm's bfloat16"),
    (parse_cpuinfo(SKYLAKE_VM), "int8", "no figure for int8"),
    (CpuInfo("CentaurHauls", 6, frozenset({"avx2"})), "float32", "CentaurHauls family 6"),
    (CpuInfo("", None, frozenset(), implementer=0x61, part=0x22), "float32", "part 0x22"),
])
def test_what_the_table_does_not_know_is_empty_with_the_reason(
        info: CpuInfo, dtype: str, why: str) -> None:
    found, how = flops_per_cycle(info, dtype)
    assert found is None and why in how


def test_a_vm_hides_the_clock_so_the_flops_ceiling_is_empty(tmp_path: Path) -> None:
    root = machine(tmp_path, SKYLAKE_VM, cores=[(0, 0), (0, 1)])
    ceiling = host_ceiling("float32", root=root, environ={}, cpus={0, 1})
    assert ceiling.flops_per_s is None
    # The base clock in the model name is not taken: turbo exceeds it.
    assert ceiling.flops_note.startswith("the maximum clock is hidden: a VM, which exposes no "
                                         "cpufreq; the model name's 2.00GHz is the base clock")
    assert "$HARNESS_CPU_MAX_MHZ" in ceiling.flops_note
    assert ceiling.bytes_per_s is None and "DMI" in ceiling.bytes_note


def test_ceiling_is_physical_cores_times_max_clock_times_flops_per_cycle(tmp_path: Path) -> None:
    # 4 logical CPUs, 2 physical cores (SMT pairs share the vector units), 3.5 GHz max.
    root = machine(tmp_path, SKYLAKE_VM, cores=[(0, 0), (0, 1), (0, 0), (0, 1)],
                   max_khz=3_500_000)
    ceiling = host_ceiling("float32", root=root, environ={}, cpus={0, 1, 2, 3})
    assert ceiling.flops_per_s == pytest.approx(2 * 3.5e9 * 64)
    assert ceiling.flops_note.startswith("2 cores × 3.5 GHz (cpufreq cpuinfo_max_freq) × 64 "
                                         "float32 FLOP/cycle")
    one = host_ceiling("float32", 1, root=root, environ={}, cpus={0, 1, 2, 3})
    assert one.flops_per_s == pytest.approx(3.5e9 * 64)
    assert "1 core, limited by threads=1" in one.flops_note
    # Only the CPUs this process may use count: CPUs 0 and 2 are one core.
    pinned = host_ceiling("float32", root=root, environ={}, cpus={0, 2})
    assert pinned.flops_per_s == pytest.approx(3.5e9 * 64)


def test_acpi_cpufreq_with_boost_does_not_know_the_max_clock(tmp_path: Path) -> None:
    root = machine(tmp_path, ZEN4, cores=[(0, 0)], max_khz=2_450_000, driver="acpi-cpufreq",
                   boost="1\n")
    ceiling = host_ceiling("float32", root=root, environ={}, cpus={0})
    assert ceiling.flops_per_s is None
    assert "boost exceeds" in ceiling.flops_note


def test_a_clock_given_by_the_user_is_used_and_labelled(tmp_path: Path) -> None:
    root = machine(tmp_path, SKYLAKE_VM, cores=[(0, 0), (0, 1)])
    given = host_ceiling("float32", root=root, environ={"HARNESS_CPU_MAX_MHZ": "3700"},
                         cpus={0, 1})
    assert given.flops_per_s == pytest.approx(2 * 3.7e9 * 64)
    assert "3700 MHz given by $HARNESS_CPU_MAX_MHZ" in given.flops_note
    bad = host_ceiling("float32", root=root, environ={"HARNESS_CPU_MAX_MHZ": "fast"},
                       cpus={0, 1})
    assert bad.flops_per_s is None and "'fast' is not a clock in MHz" in bad.flops_note


def smbios_memory_device(size_mb: int, speed: int, configured: int, width: int = 64) -> bytes:
    """One SMBIOS type 17 structure (0x28 bytes formatted, no strings)."""
    body = bytearray(0x28)
    body[0], body[1] = 17, 0x28
    struct.pack_into("<H", body, 0x08, width + 8)  # total width, with ECC
    struct.pack_into("<H", body, 0x0A, width)
    struct.pack_into("<H", body, 0x0C, size_mb)
    struct.pack_into("<H", body, 0x15, speed)
    struct.pack_into("<H", body, 0x20, configured)
    return bytes(body) + b"\0\0"


def test_dimm_bandwidth_sums_populated_devices_at_their_configured_speed() -> None:
    other = bytes([4, 4, 0, 0]) + b"Xeon\0\0"  # a processor structure with one string
    table = (other + smbios_memory_device(32768, 3200, 2933) + smbios_memory_device(0, 0, 0)
             + smbios_memory_device(32768, 3200, 0) + bytes([127, 4, 0, 0]) + b"\0\0")
    found, note = dimm_bandwidth(table)
    assert found == pytest.approx(2933e6 * 8 + 3200e6 * 8)
    assert note.startswith("2 DIMMs")


def test_dimm_without_a_speed_gives_no_bandwidth() -> None:
    found, note = dimm_bandwidth(smbios_memory_device(16384, 0, 0) + bytes([127, 4, 0, 0]))
    assert found is None and "without its speed" in note
    assert dimm_bandwidth(b"")[0] is None


def test_this_machine_gives_a_ceiling_or_a_reason_for_each_figure() -> None:
    ceiling = host_ceiling("float32")
    for value, note in ((ceiling.flops_per_s, ceiling.flops_note),
                        (ceiling.bytes_per_s, ceiling.bytes_note)):
        assert note  # a derivation or a reason, never silence
        assert value is None or value > 0
    assert cpu_ceiling.CLOCK_VARIABLE == "HARNESS_CPU_MAX_MHZ"
