"""The scaling tests train tiny models: one thread each, since on a busy 2-core machine every op of a
2-thread pool waits for the descheduled partner (milliseconds per op) and tiny tensors gain nothing."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
