"""Which hidden neurons serve which subtask: the weight count, the ablation check, the intermediate.

The weight count (the paper's): a hidden neuron is allocated to a subtask when it is joined to the
subtask's inputs and to its output by weights whose magnitude exceeds a threshold (1e-3 in the
paper). In a deeper network "joined" means a path of such weights, found by reachability: forward
from the subtask's inputs, backward from its output, a neuron reached both ways is allocated.

The ablation check: zero one neuron's activation and see whether the subtask's loss rises by more
than a fraction `tol` of that loss. Zeroing means replacing the activation by its mean over the
data (mean-ablation), so that a constant neuron, which only shifts the output, is not counted. It confirms (or not) that a counted neuron does work.
"""

from __future__ import annotations

import torch
from torch import Tensor

# hidden activations held at once when ablating neurons of an inner layer (models x neurons x batch x width)
_ABLATION_ELEMENTS = 2**24


def allocated_by_weights(
    weights: list[Tensor], subtasks: list[tuple[tuple[int, ...], int]], threshold: float = 1e-3
) -> Tensor:
    """Boolean `(models, n_subtasks, hidden_layers, width)`: neuron allocated to a subtask by the weight count.

    `weights[l]` is `(models, fan_in, fan_out)` (a single model may drop the first dimension);
    `subtasks` lists each subtask's (input indices, output index).
    """
    single = weights[0].dim() == 2
    strong = [(w.unsqueeze(0) if single else w).abs().gt(threshold).float() for w in weights]
    n_models, n_inputs = strong[0].shape[:2]
    n_outputs = strong[-1].shape[2]
    result = []
    for inputs, output in subtasks:
        reach = torch.zeros(n_models, 1, n_inputs, device=strong[0].device)
        reach[:, 0, list(inputs)] = 1.0
        forward = []
        for w in strong[:-1]:
            reach = torch.bmm(reach, w).gt(0).float()
            forward.append(reach[:, 0])
        back = torch.zeros(n_models, n_outputs, 1, device=strong[0].device)
        back[:, output, 0] = 1.0
        backward = []
        for w in reversed(strong[1:]):
            back = torch.bmm(w, back).gt(0).float()
            backward.append(back[:, :, 0])
        backward.reverse()
        result.append(torch.stack([f.bool() & b.bool() for f, b in zip(forward, backward)], dim=1))
    allocated = torch.stack(result, dim=1)
    return allocated[0] if single else allocated


def ablation_losses(net_weights: list[Tensor], net_biases: list[Tensor], masks: list[Tensor],
                    act, x: Tensor, y: Tensor) -> tuple[Tensor, list[Tensor]]:  # fmt: skip
    """Per-subtask MSE `(models, n_outputs)` and, per hidden layer, the MSE with each neuron mean-ablated,
    `(models, width, n_outputs)`.

    The last hidden layer is exact in closed form (removing neuron j moves output k by
    -h_j W_jk, so the new MSE is a quadratic in W_jk of batch means); inner layers are re-run
    from the layer after the neuron, for chunks of neurons at once.
    """
    n_models = net_weights[0].shape[0]
    depth = len(net_weights) - 1
    h = x.unsqueeze(0).expand(n_models, *x.shape)
    posts = []
    for layer in range(depth):
        h = act(torch.baddbmm(net_biases[layer], h, net_weights[layer])) * masks[layer]
        posts.append(h)
    out = torch.baddbmm(net_biases[-1], h, net_weights[-1])
    residual = out - y.unsqueeze(0)  # (models, batch, outputs)
    base = residual.square().mean(dim=1)
    batch = x.shape[0]
    # mean-ablation: a neuron is replaced by its mean over the data, so a neuron that only adds a
    # constant (zero input weights, a positive bias: a second output bias) is not counted as working
    last = posts[-1] - posts[-1].mean(dim=1, keepdim=True)
    w_out = net_weights[-1]  # (models, width, outputs)
    cross = torch.bmm(last.transpose(1, 2), residual) / batch  # mean(h_j r_k): (models, width, outputs)
    power = last.square().mean(dim=1).unsqueeze(2)  # mean(h_j^2): (models, width, 1)
    per_layer: list[Tensor] = [torch.empty(0)] * depth
    per_layer[-1] = base.unsqueeze(1) - 2 * cross * w_out + power * w_out.square()
    for layer in range(depth - 1):
        width = posts[layer].shape[2]
        chunk = max(1, _ABLATION_ELEMENTS // max(1, n_models * batch * width))
        following = torch.baddbmm(net_biases[layer + 1], posts[layer], net_weights[layer + 1]).unsqueeze(1)
        rows = []
        for start in range(0, width, chunk):
            js = torch.arange(start, min(width, start + chunk), device=x.device)
            # pre-activation of layer+1 without neuron j: subtract h_j * W[j, :]
            centred = posts[layer][:, :, js] - posts[layer][:, :, js].mean(dim=1, keepdim=True)
            h_j = centred.permute(0, 2, 1).unsqueeze(3)  # (models, J, batch, 1)
            w_j = net_weights[layer + 1][:, js, :].unsqueeze(2)  # (models, J, 1, width')
            g = following - h_j * w_j
            for nxt in range(layer + 1, depth):
                g = act(g) * masks[nxt].unsqueeze(1)
                g = torch.matmul(g, net_weights[nxt + 1].unsqueeze(1)) + net_biases[nxt + 1].unsqueeze(1)
            rows.append((g - y.unsqueeze(0).unsqueeze(0)).square().mean(dim=2))
        per_layer[layer] = torch.cat(rows, dim=1)
    return base, per_layer


def allocated_by_ablation(base: Tensor, ablated: list[Tensor], tol: float = 0.01) -> Tensor:
    """Boolean `(models, n_subtasks, hidden_layers, width)`: zeroing the neuron raises the subtask's
    MSE by more than `tol` times that MSE."""
    rises = [(a - base.unsqueeze(1)) > tol * base.unsqueeze(1) for a in ablated]
    return torch.stack([r.permute(0, 2, 1) for r in rises], dim=2)


def agreement(by_weights: Tensor, by_ablation: Tensor) -> Tensor:
    """Per model: |both| / |either| over (subtask, neuron) pairs (1 when neither marks any)."""
    dims = tuple(range(1, by_weights.dim()))
    both = (by_weights & by_ablation).sum(dim=dims).float()
    either = (by_weights | by_ablation).sum(dim=dims).float()
    return torch.where(either > 0, both / either.clamp(min=1), torch.ones_like(either))


def intermediate_correlation(
    pres: list[Tensor], posts: list[Tensor], g: Tensor, masks: list[Tensor]
) -> list[dict]:
    """Per model, the hidden unit (pre- or post-activation) whose value best correlates with `g`.

    Returns `{"r": |r|, "layer": l, "neuron": j, "kind": "pre"|"post"}`; a constant unit scores 0.
    """
    gc = g - g.mean()
    g_norm = gc.norm()
    n_models = pres[0].shape[0]
    best = [{"r": 0.0, "layer": -1, "neuron": -1, "kind": ""} for _ in range(n_models)]
    for layer, (pre, post) in enumerate(zip(pres, posts)):
        for kind, values in (("pre", pre), ("post", post)):
            centred = values - values.mean(dim=1, keepdim=True)
            norms = centred.norm(dim=1)
            r = (torch.einsum("mbw,b->mw", centred, gc) / (norms * g_norm).clamp(min=1e-30)).abs()
            r = torch.where((norms > 1e-12) & (masks[layer][:, 0] > 0), r, torch.zeros_like(r))
            value, index = r.max(dim=1)
            for m in range(n_models):
                if float(value[m]) > best[m]["r"]:
                    best[m] = {"r": float(value[m]), "layer": layer, "neuron": int(index[m]), "kind": kind}
    return best
