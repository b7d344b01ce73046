"""Probes, batched: ridge regression and CCA fitted for every context position at once.

The authors fit one scikit-learn `Ridge` per site, position and target in a loop; here one site's
positions are a batch of small normal-equation systems solved together (Cholesky, float64), every
target column at once, which gives the same coefficients as `Ridge(alpha, fit_intercept=True)` and
the same held-out R^2 (benchmarks/worldmodel_probes.py checks both).
"""

from __future__ import annotations

import numpy as np
import torch

# a target column whose training variance is below this (relative) is a constant: no R^2 for it
_CONSTANT = 1e-12


def _as_batched(array: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(n, T, d) -> float64 tensor (T, n, d): positions first, so each is one system of the batch."""
    tensor = array if isinstance(array, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(array))
    return tensor.to(torch.float64).transpose(0, 1).contiguous()


as_batched = _as_batched


def ridge_fit(x: torch.Tensor, y: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge with intercept for a batch of problems: x (B, n, d), y (B, n, k) -> (coef (B, d, k), intercept (B, k)).

    Same objective as scikit-learn's Ridge(alpha, fit_intercept=True): centre both sides on the
    training means, solve (Xc^T Xc + alpha I) W = Xc^T Yc, intercept = mean(y) - mean(x) W.
    """
    x_mean, y_mean = x.mean(dim=1, keepdim=True), y.mean(dim=1, keepdim=True)
    xc, yc = x - x_mean, y - y_mean
    gram = xc.transpose(1, 2) @ xc
    gram.diagonal(dim1=1, dim2=2).add_(alpha)
    rhs = xc.transpose(1, 2) @ yc
    factor, info = torch.linalg.cholesky_ex(gram)
    if bool((info != 0).any()):  # alpha 0 on a rank-deficient block: fall back to least squares
        coef = torch.linalg.lstsq(gram, rhs).solution
    else:
        coef = torch.cholesky_solve(rhs, factor)
    intercept = (y_mean - x_mean @ coef).squeeze(1)
    return coef, intercept


def r2_columns(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """R^2 of each column, (B, n, k) -> (B, k), with the held-out set's own mean (as sklearn's r2_score).

    A column that is constant on the held-out set has no R^2 (NaN).
    """
    residual = ((y_true - y_pred) ** 2).sum(dim=1)
    total = ((y_true - y_true.mean(dim=1, keepdim=True)) ** 2).sum(dim=1)
    scale = (y_true**2).sum(dim=1).clamp_min(1e-300)
    r2 = 1.0 - residual / total.clamp_min(1e-300)
    return torch.where(total > _CONSTANT * scale, r2, torch.full_like(r2, float("nan")))


def varying_columns(y_train: torch.Tensor) -> torch.Tensor:
    """(B, n, k) -> (B, k) bool: columns that vary over the training sequences (constants have no R^2)."""
    spread = y_train.var(dim=1)
    scale = (y_train**2).mean(dim=1).clamp_min(1e-300)
    return spread > _CONSTANT * scale


def ridge_r2(
    hidden_train: np.ndarray | torch.Tensor,
    hidden_test: np.ndarray | torch.Tensor,
    target_train: np.ndarray | torch.Tensor,
    target_test: np.ndarray | torch.Tensor,
    alpha: float = 1e-3,
) -> np.ndarray:
    """Held-out R^2 of ridge probes from hidden (n, T, d) to targets (n, T, k), one per position and
    column: (T, k); NaN for a column constant in training or on the held-out set."""
    return ridge_r2_batched(*map(_as_batched, (hidden_train, hidden_test, target_train, target_test)), alpha)


def ridge_r2_batched(
    xtr: torch.Tensor, xte: torch.Tensor, ytr: torch.Tensor, yte: torch.Tensor, alpha: float
) -> np.ndarray:
    """`ridge_r2` on position-first float64 tensors (T, n, d) and (T, n, k)."""
    coef, intercept = ridge_fit(xtr, ytr, alpha)
    r2 = r2_columns(yte, torch.baddbmm(intercept[:, None, :], xte, coef))
    r2 = torch.where(varying_columns(ytr), r2, torch.full_like(r2, float("nan")))
    return r2.numpy()


def variance_explained(
    source_train: np.ndarray | torch.Tensor,
    source_test: np.ndarray | torch.Tensor,
    hidden_train: np.ndarray | torch.Tensor,
    hidden_test: np.ndarray | torch.Tensor,
    alpha: float = 1e-3,
) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
    """Reverse probes: ridge from the intermediate (n, T, k) to the hidden state (n, T, d).

    Returns the held-out fraction of the hidden state's total variance they explain, (T,), and the
    fitted probes (standardisation of the intermediate, coefficients, intercept), which interventions
    use to write a new value of the intermediate into the hidden state.
    """
    return variance_explained_batched(
        *map(_as_batched, (source_train, source_test, hidden_train, hidden_test)), alpha
    )


def variance_explained_batched(
    ztr: torch.Tensor, zte: torch.Tensor, htr: torch.Tensor, hte: torch.Tensor, alpha: float
) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
    """`variance_explained` on position-first float64 tensors."""
    # standardise the intermediate so one alpha suits entries of very different scales (Taylor terms)
    mean, std = ztr.mean(dim=1, keepdim=True), ztr.std(dim=1, keepdim=True)
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    coef, intercept = ridge_fit((ztr - mean) / std, htr, alpha)
    pred = torch.baddbmm(intercept[:, None, :], (zte - mean) / std, coef)
    residual = ((hte - pred) ** 2).sum(dim=(1, 2))
    total = ((hte - hte.mean(dim=1, keepdim=True)) ** 2).sum(dim=(1, 2))
    explained = torch.where(total > 1e-300, 1.0 - residual / total.clamp_min(1e-300), torch.nan)
    probe = {"mean": mean, "std": std, "coef": coef, "intercept": intercept}
    return explained.numpy(), probe


def polynomial_features(values: np.ndarray | torch.Tensor, degree: int) -> np.ndarray | torch.Tensor:
    """(..., k) -> (..., k * degree): each column's powers 1..degree (no cross terms)."""
    if isinstance(values, torch.Tensor):
        return torch.cat([values**p for p in range(1, degree + 1)], dim=-1)
    return np.concatenate([values**p for p in range(1, degree + 1)], axis=-1)


def _inverse_sqrt(cov: torch.Tensor) -> torch.Tensor:
    eigenvalues, vectors = torch.linalg.eigh(cov)
    return vectors @ torch.diag_embed(eigenvalues.clamp_min(1e-12).rsqrt()) @ vectors.transpose(1, 2)


class Whitened:
    """One side of a CCA, fitted on training rows (T, n, d): standardised, then whitened (with `reg`)."""

    def __init__(self, train: torch.Tensor, reg: float) -> None:
        self.mean = train.mean(dim=1, keepdim=True)
        # columns of very different scales (w and w^3) are standardised, so `reg` means the same for each
        self.std = train.std(dim=1, keepdim=True).clamp_min(1e-12)
        self.train = (train - self.mean) / self.std
        cov = self.train.transpose(1, 2) @ self.train / train.shape[1]
        cov.diagonal(dim1=1, dim2=2).add_(reg)
        self.inv_sqrt = _inverse_sqrt(cov)

    def apply(self, rows: torch.Tensor) -> torch.Tensor:
        return (rows - self.mean) / self.std


def cca_r2(
    hidden_train: np.ndarray | torch.Tensor,
    hidden_test: np.ndarray | torch.Tensor,
    features_train: np.ndarray | torch.Tensor,
    features_test: np.ndarray | torch.Tensor,
    reg: float = 1e-3,
) -> np.ndarray:
    """Held-out squared first canonical correlation between hidden (n, T, d) and features (n, T, p), (T,).

    Regularised CCA fitted on the training sequences (each standardised covariance gets `reg` on the
    diagonal); the held-out score is the squared correlation of the two fitted projections on the test
    sequences (0 when it comes out negative). With the powers of an intermediate as features it finds
    a polynomial of the intermediate that is linear in the hidden state: a non-linear encoding that a
    linear probe misses.
    """
    xtr, xte = _as_batched(hidden_train), _as_batched(hidden_test)
    return cca_r2_batched(
        Whitened(xtr, reg), xte, _as_batched(features_train), _as_batched(features_test), reg
    )


def cca_r2_batched(
    hidden: Whitened, hidden_test: torch.Tensor, ytr: torch.Tensor, yte: torch.Tensor, reg: float
) -> np.ndarray:
    """`cca_r2` with the hidden side already fitted (it is shared by every hypothesis at a site)."""
    features = Whitened(ytr, reg)
    cross = hidden.train.transpose(1, 2) @ features.train / ytr.shape[1]
    u, _, vh = torch.linalg.svd(hidden.inv_sqrt @ cross @ features.inv_sqrt)
    a = hidden.inv_sqrt @ u[:, :, :1]
    b = features.inv_sqrt @ vh[:, :1, :].transpose(1, 2)
    px = (hidden.apply(hidden_test) @ a).squeeze(2)
    py = (features.apply(yte) @ b).squeeze(2)
    px, py = px - px.mean(dim=1, keepdim=True), py - py.mean(dim=1, keepdim=True)
    corr = (px * py).sum(dim=1) / (px.norm(dim=1) * py.norm(dim=1)).clamp_min(1e-300)
    return (corr.clamp_min(0.0) ** 2).numpy()
