"""Memory checks that refuse an impossible config before anything loads."""

from __future__ import annotations

import pytest

from intelligible.core.errors import ConfigError
from intelligible.core.memory import (
    _cgroup_available,
    _meminfo_available,
    available_memory,
    check_fits,
    format_bytes,
)


def test_meminfo_and_cgroup_readings(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 100 kB\nMemAvailable:   2048 kB\n")
    assert _meminfo_available(meminfo) == 2048 * 1024
    assert _meminfo_available(tmp_path / "missing") is None

    (tmp_path / "memory.max").write_text("1000\n")
    (tmp_path / "memory.current").write_text("400\n")
    assert _cgroup_available(tmp_path) == 600
    (tmp_path / "memory.max").write_text("max\n")
    assert _cgroup_available(tmp_path) is None
    assert _cgroup_available(tmp_path / "missing") is None


def test_available_memory_is_positive_here():
    free = available_memory()
    assert free is None or free > 0


def test_check_fits_names_what_and_what_to_lower():
    check_fits(10, "the activations", "lower --n-tokens", available=100)  # fits: no error
    with pytest.raises(ConfigError) as info:
        check_fits(80 * 2**40, "the activations of 1e12 tokens", "lower --n-tokens", available=2**30)
    message = str(info.value)
    assert "the activations of 1e12 tokens need about 80.0 TiB" in message
    assert "only 1.0 GiB is available; lower --n-tokens" in message


@pytest.mark.parametrize(("count", "text"), [(512, "512 B"), (1536, "1.5 KiB"), (3 * 2**30, "3.0 GiB")])
def test_format_bytes(count, text):
    assert format_bytes(count) == text


def test_a_cuda_device_that_cannot_be_asked_skips_the_check():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU answers the question")
    # the device's free memory is unknown, so nothing is refused
    assert available_memory("cuda:0") is None
    check_fits(10**18, "a huge batch", "lower --batch-size", device="cuda:0")
