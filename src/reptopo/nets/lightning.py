"""Lightning wrapper for supervised classification of any ``nn.Module`` that returns logits.

Batches are ``(x, y)`` for images and points, ``(input_ids, attention_mask, y)`` for text: every
element but the last is passed to the model.
"""
from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F

from reptopo.runtime.choices import CHOICES, allowed
from reptopo.runtime.errors import ReptopoError


class Classifier(pl.LightningModule):
    """Cross-entropy training with AdamW/SGD and an optional cosine schedule."""

    def __init__(self, model: nn.Module, optimizer: str = "adamw", lr: float = 1e-3,
                 weight_decay: float = 0.0, scheduler: str | None = "cosine", augment: str | None = None,
                 channels_last: bool = False) -> None:
        super().__init__()
        if augment not in AUGMENTATIONS:
            raise ReptopoError(f"train.augment={augment!r}; expected one of {list(AUGMENTATIONS)}")
        self.augment = augment
        self.model = model
        self.optimizer_name = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.scheduler_name = scheduler
        # NHWC for models with 2-d convolutions: 1.5x (CNNs) to 2x (MobileNetV2's depthwise convs)
        # the training throughput on CPU (oneDNN). The sums run in another order, so the weights
        # differ from NCHW training in the last bits (still bitwise-deterministic per seed).
        self.channels_last = bool(channels_last) and any(isinstance(m, nn.Conv2d) for m in model.modules())
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(*inputs)

    def _step(self, batch, stage: str) -> torch.Tensor:
        *inputs, y = batch
        if self.channels_last:
            inputs = [t.contiguous(memory_format=torch.channels_last) if t.ndim == 4 else t for t in inputs]
        logits = self(*inputs)
        loss = F.cross_entropy(logits, y)
        acc = (logits.argmax(dim=1) == y).float().mean()
        on_step = stage == "train"
        self.log(f"{stage}_loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, batch_size=len(y))
        self.log(f"{stage}_acc", acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def training_step(self, batch, batch_idx):
        if self.augment and batch[0].ndim == 4:  # images only (N, C, H, W)
            batch = (augment_images(batch[0], self.augment), *batch[1:])
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def configure_optimizers(self):
        if self.optimizer_name == "adamw":
            opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        elif self.optimizer_name == "sgd":
            opt = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9, weight_decay=self.weight_decay, nesterov=True)
        else:
            raise ReptopoError(f"train.optimizer={self.optimizer_name!r}; expected one of {list(allowed('train.optimizer'))}")
        if self.scheduler_name == "cosine":
            steps = max(1, int(self.trainer.estimated_stepping_batches))
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        if self.scheduler_name == "onecycle":
            # Smith's one-cycle: 30 % warm-up to lr, cosine annealing to lr / 1e4 (per step). Fast
            # convergence in few epochs, which is what the quick scale can afford.
            steps = max(1, int(self.trainer.estimated_stepping_batches))
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=steps)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        return opt


AUGMENTATIONS = CHOICES["train.augment"]


def augment_images(x: torch.Tensor, kind: str, pad: int = 2) -> torch.Tensor:
    """Random shifts by up to ``pad`` pixels (zero padding, as a padded random crop) and, for
    ``crop_flip``, random horizontal flips; one draw per image from torch's global RNG (seeded)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,))
    dx = torch.randint(0, 2 * pad + 1, (n,))
    rows = (dy[:, None] + torch.arange(h)[None]).to(x.device)  # (n, h)
    cols = (dx[:, None] + torch.arange(w)[None]).to(x.device)  # (n, w)
    idx = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if kind == "crop_flip":
        flip = torch.rand(n) < 0.5
        out[flip] = out[flip].flip(-1)
    return out.contiguous()


class HistoryCallback(pl.Callback):
    """Collects epoch-level metrics (train/val loss and accuracy), one dict per epoch."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        wanted = ("train_loss_epoch", "train_acc", "val_loss", "val_acc")
        row = {k.removesuffix("_epoch"): float(v) for k, v in trainer.callback_metrics.items() if k in wanted}
        self.epochs.append(row)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512,
             mask: torch.Tensor | None = None) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``model`` on (x, y) (text: ``mask`` = attention mask), in eval mode."""
    model.eval()
    correct, loss_sum = 0, 0.0
    for i in range(0, len(y), batch_size):
        inputs = (x[i : i + batch_size],) if mask is None else (x[i : i + batch_size], mask[i : i + batch_size])
        logits = model(*inputs)
        loss_sum += float(F.cross_entropy(logits, y[i : i + batch_size], reduction="sum"))
        correct += int((logits.argmax(1) == y[i : i + batch_size]).sum())
    n = max(1, len(y))
    return {"acc": correct / n, "loss": loss_sum / n}


def evaluate_splits(model: nn.Module, ds, batch_size: int = 512, train_rows: int | None = None,
                    seed: int = 0) -> dict[str, float]:
    """``<split>_acc`` and ``<split>_loss`` of ``model`` on each non-empty split of dataset ``ds``;
    the train split on a seeded random ``train_rows`` of it (None: all): on 60k images the full
    pass costs about a tenth of the training, for a number only reported."""
    metrics: dict[str, float] = {}
    for name in ("train", "val", "test"):
        split = getattr(ds, name)
        if len(split):
            x, y, mask = split.x, split.y, split.mask
            if name == "train" and train_rows is not None and train_rows < len(y):
                rows = torch.from_numpy(np.sort(np.random.default_rng(seed).choice(len(y), train_rows, replace=False)))
                x, y, mask = x[rows], y[rows], None if mask is None else mask[rows]
            res = evaluate(model, x, y, batch_size, mask)
            metrics[f"{name}_acc"], metrics[f"{name}_loss"] = res["acc"], res["loss"]
    return metrics
