"""Device, precision and allocator helpers."""

import sys

import pytest
import torch

from e2espot.device import resolve_device, resolve_precision, tune_cpu_allocator
from e2espot.errors import ConfigError


def test_resolve_device_and_precision():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ConfigError, match="expected cpu, cuda"):
        resolve_device("tpu")
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    with pytest.raises(ConfigError, match="fp16 is not supported on CPU"):
        resolve_precision("fp16", torch.device("cpu"))
    with pytest.raises(ConfigError, match="precision 'half'"):
        resolve_precision("half", torch.device("cpu"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_allocator_tuning_is_active_and_idempotent():
    assert tune_cpu_allocator() is True
    assert tune_cpu_allocator() is True
