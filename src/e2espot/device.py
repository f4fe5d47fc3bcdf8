"""One device and precision context for training and inference (nanoGPT style)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from e2espot.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_device(name="auto"):
    """``auto`` → cuda when available, else cpu. ``cuda`` without a GPU is a ConfigError.
    A ``torch.device`` is returned as is."""
    import torch

    if isinstance(name, torch.device):
        return name
    name = name or "auto"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device is available here; use --device cpu")
    if name.split(":")[0] not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device {name}: expected cpu, cuda, cuda:N or auto")
    return torch.device(name)


def resolve_precision(precision: str, device) -> str:
    """``auto`` → bf16 on CUDA and on CPUs with native bf16 (AMX/AVX512-BF16), else fp32."""
    import torch

    if precision not in PRECISIONS:
        raise ConfigError(f"precision '{precision}': expected one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise ConfigError("precision fp16 is not supported on CPU; use bf16 or fp32")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"


def cpu_has_native_bf16() -> bool:
    """True when the CPU runs bf16 matmuls natively (then bf16 autocast is faster than fp32)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast(device, precision: str) -> AbstractContextManager:
    """The single precision context: ``nullcontext()`` for fp32, else ``torch.autocast``."""
    import torch

    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)
