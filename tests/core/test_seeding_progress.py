from __future__ import annotations

import random

import numpy as np
import torch

from intelligible.core import progress, seed_everything


def _draw(generator: torch.Generator) -> tuple[float, float, float, float]:
    return (
        random.random(),
        float(np.random.rand()),
        float(torch.rand(1)),
        float(torch.rand(1, generator=generator)),
    )


def test_seed_everything_repeats_every_stream():
    first = _draw(seed_everything(123))
    second = _draw(seed_everything(123))
    assert first == second
    assert _draw(seed_everything(124)) != first


def test_seed_everything_returns_a_seeded_generator():
    generator = seed_everything(7)
    assert isinstance(generator, torch.Generator)
    assert generator.initial_seed() == 7


def test_progress_is_off_when_not_a_terminal(monkeypatch):
    monkeypatch.delenv("INTELLIGIBLE_PROGRESS", raising=False)
    # Under pytest stderr is captured, so not a terminal.
    bar = progress(range(3), desc="x")
    assert bar.disable
    assert list(bar) == [0, 1, 2]


def test_progress_env_forces_on_and_explicit_disable_wins(monkeypatch):
    monkeypatch.setenv("INTELLIGIBLE_PROGRESS", "1")
    bar = progress(total=2, desc="forced")
    assert not bar.disable
    bar.update(1)
    bar.set_postfix(loss=0.5)
    bar.close()
    assert progress(range(2), disable=True).disable
    monkeypatch.setenv("INTELLIGIBLE_PROGRESS", "0")
    assert progress(range(2)).disable
    shown = progress(range(2), disable=False)
    assert not shown.disable
    shown.close()


def test_progress_is_the_function_whatever_was_imported_first():
    import subprocess
    import sys

    probe = (
        "import intelligible.core.progress; from intelligible.core import progress; print(callable(progress))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"
