"""Simplifying a trained RNN before reading it (MIPS step 1b), each step kept only if the RNN stays
100% right on held-out data.

`integer_krylov_form`: a linear recurrence h' = A h + B x + c is rewritten in its Krylov coordinates
h = K s (K = [B, AB, A^2 B, ..., c, Ac, ...], the reachable subspace), where it reads
s' = A' s + B' x + c' with B' made of unit vectors; the matrices are then rounded to integers (then
to halves). When the rounded RNN is still perfect, its hidden states are exact integers — the
counters, sums and memories the task needs — and the lattice reader takes them as they are.
This folds the paper's whitening, Jordan/Toeplitz normal forms and quantisation into one change of
basis for the linear case.

`quantize_weights`: rounds every weight of any RNN to the coarsest grid (1, 1/2, 1/4, ... 1/16) that
keeps it perfect; integer-ish weights make the FSM reader's states crisp.

`sparsify`: L1 fine-tuning, then small weights zeroed and frozen while the others retrain (the
paper's L1 step and "retraining with zeroed weights frozen"); used when the plain readings fail.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import Tensor, nn

from intelligible.mips.extract import krylov_basis
from intelligible.mips.rnn import RNN, robust_loss, sequence_accuracy


def _perfect(model: RNN, inputs: Tensor, outputs: Tensor) -> bool:
    return sequence_accuracy(model, inputs, outputs) == 1.0


def debias(model: RNN, inputs: np.ndarray, outputs: np.ndarray) -> RNN | None:
    """The paper's de-biasing: a linear recurrence h' = A h + B x + c shifted to its input-free fixed
    point h* = (I - A)^-1 c, so it reads h' = A h + B x from h_0 = 0 and g sees h + h*. Kept only if
    still perfect (the shifted RNN differs during the first steps' transient); None when I - A is
    singular (an integrator, whose bias is a real drive, as gravity is)."""
    if model.f_depth != 1:
        return None
    layer = model.f[0]
    a = layer.weight.detach().double().numpy()[:, : model.hidden]
    bias = layer.bias.detach().double().numpy()
    shift = np.eye(model.hidden) - a
    if np.linalg.cond(shift) > 1e6 or np.abs(bias).max() < 1e-9:
        return None
    fixed = np.linalg.solve(shift, bias)
    shifted = copy.deepcopy(model)
    with torch.no_grad():
        shifted.f[0].bias.zero_()
        first = shifted.g[0]
        first.bias.add_(
            torch.as_tensor(first.weight.detach().double().numpy() @ fixed, dtype=first.bias.dtype)
        )
    x, y = torch.as_tensor(inputs, dtype=torch.float32), torch.as_tensor(outputs, dtype=torch.float32)
    return shifted if _perfect(shifted, x, y) else None


def integer_krylov_form(model: RNN, inputs: np.ndarray, outputs: np.ndarray) -> RNN | None:
    """An equivalent RNN with integer recurrence weights and integer hidden states, or None.

    The de-biased RNN is tried first: without a bias chain its Krylov coordinates are the inputs'
    own shift register or sums, rather than those plus a fractional transient."""
    shifted = debias(model, inputs, outputs)
    found = _krylov_rounded(shifted, inputs, outputs) if shifted is not None else None
    return found if found is not None else _krylov_rounded(model, inputs, outputs)


def _krylov_rounded(model: RNN, inputs: np.ndarray, outputs: np.ndarray) -> RNN | None:
    basis = krylov_basis(model)
    if basis is None:
        return None
    x, y = torch.as_tensor(inputs, dtype=torch.float32), torch.as_tensor(outputs, dtype=torch.float32)
    layer = model.f[0]
    weight = layer.weight.detach().double().numpy()
    bias = layer.bias.detach().double().numpy()
    size = model.hidden
    a, b = weight[:, :size], weight[:, size:]
    project = np.linalg.pinv(basis)
    a_new, b_new, c_new = project @ a @ basis, project @ b, project @ bias
    g_first = model.g[0]
    g_weight = g_first.weight.detach().double().numpy() @ basis
    rank = basis.shape[1]
    g_bias = g_first.bias.detach().double().numpy()
    # a linear readout is rounded too when the float one is not exact enough: its error grows with
    # the state (a position of 2000 read with weight 1.9997 is off by 0.6)
    readouts = [(g_weight, g_bias)]
    if model.g_depth == 1:
        readouts += [
            (np.round(g_weight * 2) / 2, np.round(g_bias * 2) / 2),
            (np.round(g_weight * 2) / 2, g_bias),
        ]
    for step in (1.0, 0.5):
        for g_w, g_b in readouts:
            reduced = RNN(model.input_dim, rank, model.output_dim, f_depth=1, g_depth=model.g_depth,
                          width=model.width, seed=model.seed)  # fmt: skip
            reduced.g = copy.deepcopy(model.g)
            with torch.no_grad():
                reduced.f[0].weight.copy_(torch.as_tensor(np.round(np.hstack([a_new, b_new]) / step) * step))
                reduced.f[0].bias.copy_(torch.as_tensor(np.round(c_new / step) * step))
                reduced.g[0] = nn.Linear(rank, g_first.out_features)
                reduced.g[0].weight.copy_(torch.as_tensor(g_w))
                reduced.g[0].bias.copy_(torch.as_tensor(g_b))
            if _perfect(reduced, x, y):
                return reduced
    return None


def quantize_weights(model: RNN, inputs: np.ndarray, outputs: np.ndarray) -> RNN | None:
    """A copy with every weight rounded to the coarsest grid that keeps the RNN perfect, or None."""
    x, y = torch.as_tensor(inputs, dtype=torch.float32), torch.as_tensor(outputs, dtype=torch.float32)
    for denominator in (1, 2, 4, 8, 16):
        rounded = copy.deepcopy(model)
        with torch.no_grad():
            for parameter in rounded.parameters():
                parameter.copy_(torch.round(parameter * denominator) / denominator)
        if _perfect(rounded, x, y):
            return rounded
    return None


def sparsify(
    model: RNN, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], *,
    l1: float = 3e-3, steps: int = 1000, threshold: float = 0.05, lr: float = 3e-3, seed: int = 0,
) -> RNN | None:  # fmt: skip
    """L1 fine-tuning, then every weight below `threshold` zeroed and frozen while the rest retrain.

    Fewer non-zero weights mean fewer ways for hidden units to mix, so states line up with the
    task's variables. Returns the sparse copy if it is still perfect on `test`, else None.
    """
    x, y = (torch.as_tensor(a, dtype=torch.float32) for a in train)
    x_test, y_test = (torch.as_tensor(a, dtype=torch.float32) for a in test)
    sparse = copy.deepcopy(model)
    # work in the scaled coordinates the RNN was trained in, where one threshold fits all weights
    with torch.no_grad():
        in_scale, out_scale = max(float(x.abs().max()), 1.0), max(float(y.abs().max()), 1.0)
        sparse.f[0].weight[:, sparse.hidden :] *= in_scale
        sparse.g[-1].weight /= out_scale
        sparse.g[-1].bias /= out_scale
        sparse.input_scale.fill_(in_scale)
        sparse.output_scale.fill_(out_scale)
    weights = [p for name, p in sparse.named_parameters() if name.endswith("weight")]
    generator = torch.Generator().manual_seed(seed)

    def fit(penalty: float, masks: list[Tensor] | None) -> None:
        optimizer = torch.optim.Adam(sparse.parameters(), lr=lr)
        for _ in range(steps):
            rows = torch.randint(0, x.shape[0], (min(4096, x.shape[0]),), generator=generator)
            loss = robust_loss(sparse(x[rows]), y[rows])
            if penalty:
                loss = loss + penalty * sum(w.abs().sum() for w in weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if masks is not None:
                for w, mask in zip(weights, masks):
                    w.grad.mul_(mask)  # frozen at zero: no gradient, and Adam's update stays 0
            optimizer.step()

    fit(l1, None)
    with torch.no_grad():
        masks = [(w.abs() >= threshold).to(w.dtype) for w in weights]
        for w, mask in zip(weights, masks):
            w.mul_(mask)
    fit(0.0, masks)
    sparse.fold_scales()
    return sparse if _perfect(sparse, x_test, y_test) else None
