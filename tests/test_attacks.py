"""Targeted FGSM from torchattacks, checked against FGSM written out by hand, on a trained net."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from reptopo.probing.attacks import adversarial_examples, attack_scores, predict
from reptopo.runtime.errors import ReptopoError

MEAN, STD = [0.3], [0.4]


@pytest.fixture(scope="module")
def digits_net():
    """A small CNN trained for a few seconds on sklearn's 8x8 digits (normalized inputs)."""
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32)[:, None]
    x = (x - MEAN[0]) / STD[0]
    y = torch.tensor(d.target)
    net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(8):
        for i in range(0, 1500, 100):
            opt.zero_grad()
            F.cross_entropy(net(x[i : i + 100]), y[i : i + 100]).backward()
            opt.step()
    net.eval()
    return net, x[1500:], y[1500:]


def test_fgsm_matches_the_formula_and_hurts_the_model(digits_net):
    net, x, y = digits_net
    clean = attack_scores(y.numpy(), predict(net, x), target=8)
    assert clean["accuracy"] > 0.9

    eps = 0.1
    adv = adversarial_examples(net, x, "fgsm_targeted", eps, target=8, mean=MEAN, std=STD)
    # FGSM by hand, in pixel space: x01 - eps * sign(grad CE(f(norm(x01)), target)), clipped to [0, 1].
    x01 = (x * STD[0] + MEAN[0]).clone().requires_grad_(True)
    loss = F.cross_entropy(net((x01 - MEAN[0]) / STD[0]), torch.full_like(y, 8))
    (grad,) = torch.autograd.grad(loss, x01)
    expected = ((x01 - eps * grad.sign()).clamp(0, 1) - MEAN[0]) / STD[0]
    assert torch.allclose(adv, expected.detach(), atol=1e-5)
    # The perturbation is an L-inf ball of radius eps in pixel units.
    assert float(((adv - x) * STD[0]).abs().max()) <= eps + 1e-5

    attacked = attack_scores(y.numpy(), predict(net, adv), target=8)
    stronger = attack_scores(y.numpy(), predict(net, adversarial_examples(net, x, "fgsm_targeted", 0.3, 8, MEAN, STD)), 8)
    print(clean, attacked, stronger)
    assert clean["macro_f1"] > attacked["macro_f1"] > stronger["macro_f1"]
    assert stronger["macro_f1"] < clean["macro_f1"] - 0.3
    assert clean["target_rate"] < attacked["target_rate"] < stronger["target_rate"]


def test_eps_zero_is_the_clean_sample_and_bad_input(digits_net):
    net, x, y = digits_net
    assert torch.equal(adversarial_examples(net, x, "fgsm_targeted", 0.0, 8, MEAN, STD), x)
    with pytest.raises(ReptopoError, match="attack.method='pgd'"):
        adversarial_examples(net, x, "pgd", 0.1, 8, MEAN, STD)
    with pytest.raises(ReptopoError, match="attack.eps=-0.1"):
        adversarial_examples(net, x, "fgsm_targeted", -0.1, 8, MEAN, STD)
    with pytest.raises(ReptopoError, match="per-channel data.mean"):
        adversarial_examples(net, x, "fgsm_targeted", 0.1, 8, [0.1, 0.2, 0.3], STD)
    scores = attack_scores(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), target=0)
    assert scores["accuracy"] == 0.75 and scores["target_rate"] == 0.75
    assert scores["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)


def test_augment_shifts_and_flips_deterministically():
    from reptopo.nets.lightning import augment_images

    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6) + 1
    torch.manual_seed(1)
    a = augment_images(x, "crop", pad=2)
    torch.manual_seed(1)
    assert torch.equal(a, augment_images(x, "crop", pad=2))
    assert a.shape == x.shape
    for i in range(2):  # a shifted copy: the kept pixels form a contiguous block of the original
        kept = a[i, 0][a[i, 0] > 0]
        assert set(kept.tolist()) <= set(x[i, 0].flatten().tolist()) and kept.numel() >= 16
    torch.manual_seed(0)
    f = augment_images(x, "crop_flip", pad=0)
    assert all(torch.equal(f[i], x[i]) or torch.equal(f[i], x[i].flip(-1)) for i in range(2))
