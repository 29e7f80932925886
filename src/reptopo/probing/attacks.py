"""Adversarial inputs for the activations stage (paper experiment E5), from torchattacks.

The authors used cleverhans' ``fast_gradient_method`` (targeted, L-inf); torchattacks' FGSM is the
same one-step attack: ``x_adv = clip_[0,1](x - eps * sign(grad_x CE(f(x), target)))``. Inputs and
outputs here are the dataset's *normalized* tensors; torchattacks un-normalizes them, attacks in
pixel space [0, 1] (so ``eps`` is in pixel units) and normalizes the result again.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from reptopo.runtime.choices import allowed
from reptopo.runtime.errors import ReptopoError

METHODS = allowed("attack.method")


def adversarial_examples(model: nn.Module, x: torch.Tensor, method: str, eps: float, target: int,
                         mean: list[float], std: list[float], batch_size: int = 256) -> torch.Tensor:
    """Adversarial copies of normalized images ``x`` (N, C, H, W), targeted at class ``target``.

    ``eps`` is the L-inf budget in pixel units ([0, 1] images); ``eps=0`` returns ``x`` unchanged.
    """
    import torchattacks

    if method not in METHODS:
        raise ReptopoError(f"attack.method={method!r}; expected null or one of {list(METHODS)}")
    if eps < 0:
        raise ReptopoError(f"attack.eps={eps}; expected >= 0 (L-inf budget in pixel units)")
    if x.ndim != 4 or len(mean) != x.shape[1] or len(std) != x.shape[1]:
        raise ReptopoError(
            f"attack.method needs images (N, C, H, W) with per-channel data.mean/data.std; got inputs of shape "
            f"{tuple(x.shape)} and {len(mean)} mean / {len(std)} std values"
        )
    if eps == 0:
        return x.clone()
    model.eval()
    attack = torchattacks.FGSM(model, eps=float(eps))
    attack.set_normalization_used(mean=list(mean), std=list(std))
    attack.set_mode_targeted_by_function(lambda images, labels: torch.full_like(labels, int(target)))
    # The targeted mode needs some labels to map; the target map ignores them.
    out = [attack(x[i : i + batch_size], torch.zeros(len(x[i : i + batch_size]), dtype=torch.long))
           for i in range(0, len(x), batch_size)]
    return torch.cat(out)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """Predicted classes (N,) of ``model`` in eval mode."""
    model.eval()
    return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]).numpy()


def attack_scores(y_true: np.ndarray, y_pred: np.ndarray, target: int) -> dict[str, float]:
    """Macro-F1 against the true labels (the paper's attack measure: lower = more successful),
    accuracy, and the share of inputs classified as the target class."""
    from sklearn.metrics import f1_score

    return {
        "macro_f1": float(f1_score(y_true, y_pred, average="macro")),
        "accuracy": float(np.mean(y_true == y_pred)),
        "target_rate": float(np.mean(y_pred == target)),
    }
