"""What the numbers were measured on, read from the machine itself (never assumed)."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from upres.core.parallel import available_cores

# SIMD features that decide which MLAS / oneDNN kernels run (VNNI is what makes INT8 pay).
SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
              "amx_int8", "amx_bf16")
PACKAGES = ("numpy", "onnxruntime", "torch", "opencv-python-headless",
            "opencv-contrib-python-headless")


def cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's)."""
    return available_cores()


def _cpuinfo() -> tuple[str, set[str]]:
    """Model name (with family/model when the name is as vague as a VM's "AMD EPYC") and flags."""
    model = platform.processor() or platform.machine()
    flags: set[str] = set()
    family = number = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key == "cpu family" and not family:
                    family = value.strip()
                elif key == "model" and not number:
                    number = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    if family and number:
        model = f"{model} (family {family}, model {number})"
    return model, flags


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except (OSError, ValueError):
        pass
    return None


def load_average() -> float | None:
    """1-minute load average: above the core count means other work shared these cores."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def cpu_busy_seconds() -> float | None:
    """CPU seconds spent busy by everything on the machine since boot (all cores, /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have been waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)  # metadata only: importing torch here would cost seconds
        except PackageNotFoundError:
            continue
    return out


def describe() -> dict[str, Any]:
    model, flags = _cpuinfo()
    return {
        "cpu": model,
        "cores": cores(),
        "simd": [f for f in SIMD_FLAGS if f in flags],
        "vnni": bool({"avx512_vnni", "avx_vnni"} & flags),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "versions": _versions(),
    }


def one_line(m: dict[str, Any]) -> str:
    simd = ", ".join(m["simd"]) or "no AVX2"
    vnni = "VNNI" if m["vnni"] else "no VNNI"
    mem = f", {m['memory_gib']:.0f} GiB" if m.get("memory_gib") else ""
    return f"{m['cpu']}, {m['cores']} cores ({simd}; {vnni}){mem}, {m['os']}"
