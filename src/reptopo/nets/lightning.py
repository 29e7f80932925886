"""Lightning wrapper for supervised classification of any ``nn.Module`` that returns logits.

Batches are ``(x, y)`` for images and points, ``(input_ids, attention_mask, y)`` for text: every
element but the last is passed to the model. A ``MinibatchGroup`` of such batches
(``batch_loader(..., steps_per_call=k)``) is k minibatches in one Lightning batch: one optimizer
step each, in order.
"""
from __future__ import annotations

import math

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import convert_inf
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler

from reptopo.runtime.choices import CHOICES, allowed
from reptopo.runtime.errors import ReptopoError


class Classifier(pl.LightningModule):
    """Cross-entropy training with AdamW/SGD and an optional cosine schedule."""

    def __init__(self, model: nn.Module, optimizer: str = "adamw", lr: float = 1e-3,
                 weight_decay: float = 0.0, scheduler: str | None = "cosine", augment: str | None = None,
                 channels_last: bool = False, steps_per_epoch: int | None = None) -> None:
        """``steps_per_epoch``: optimizer steps (minibatches) per epoch, for the schedule's length when
        a Lightning batch holds several minibatches; None: one step per Lightning batch (Lightning's
        ``estimated_stepping_batches``)."""
        super().__init__()
        if augment not in AUGMENTATIONS:
            raise ReptopoError(f"train.augment={augment!r}; expected one of {list(AUGMENTATIONS)}")
        self.augment = augment
        self.model = model
        self.optimizer_name = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.scheduler_name = scheduler
        self.steps_per_epoch = steps_per_epoch
        self._plain_steps = False  # set by on_fit_start
        # NHWC for models with 2-d convolutions: 1.5x (CNNs) to 2x (MobileNetV2's depthwise convs)
        # the training throughput on CPU (oneDNN). The sums run in another order, so the weights
        # differ from NCHW training in the last bits (still bitwise-deterministic per seed).
        self.channels_last = bool(channels_last) and any(isinstance(m, nn.Conv2d) for m in model.modules())
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self._sums: dict[str, torch.Tensor] = {}  # stage -> (loss sum, correct, examples) this epoch
        # The step is written out in training_step: Lightning's automatic optimisation wraps it in
        # a closure and ~10 hooks, about 0.5 ms a step, a third of the Naitzat MLP's (same updates,
        # bitwise: tests/test_stages.py).
        self.automatic_optimization = False

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(*inputs)

    def _step(self, batch, stage: str) -> torch.Tensor:
        *inputs, y = batch
        if self.channels_last:
            inputs = [t.contiguous(memory_format=torch.channels_last) if t.ndim == 4 else t for t in inputs]
        logits = self(*inputs)
        loss = F.cross_entropy(logits, y)
        # Epoch sums on the device, read once per epoch: a per-step self.log costs about 1.7 ms,
        # the whole step of the Naitzat MLP (batch 128) about 3 ms (benchmarks/bench_train.py).
        # In place on two accumulators and a Python count: 7 tensor ops a step (a stacked triple
        # cost 10 and an allocation, 3 % of the MLP's run).
        with torch.no_grad():
            loss_sum, correct = loss.detach().double() * len(y), (logits.argmax(dim=1) == y).sum()
            sums = self._sums.get(stage)
            if sums is None:
                self._sums[stage] = [loss_sum, correct, len(y)]
            else:
                sums[0].add_(loss_sum)
                sums[1].add_(correct)
                sums[2] += len(y)
        return loss

    def epoch_metrics(self) -> dict[str, float]:
        """``<stage>_loss`` and ``<stage>_acc`` (example-weighted means) of the epoch so far, for
        the stages ("train", "val") that saw a batch since their epoch began."""
        out = {}
        for stage, (loss_sum, correct, n) in self._sums.items():
            out[f"{stage}_loss"], out[f"{stage}_acc"] = float(loss_sum) / n, int(correct) / n
        return out

    def on_train_epoch_start(self) -> None:
        self._sums.pop("train", None)

    def on_validation_epoch_start(self) -> None:
        self._sums.pop("val", None)

    def on_fit_start(self) -> None:
        # The optimizer's own step and a plain backward are what Lightning's wrappers do on one
        # device without loss scaling (train.precision: 32-true, bf16-mixed), less ~0.1 ms of hooks
        # a step (4 % of the Naitzat MLP's); anything else (several devices, 16-bit loss scaling)
        # goes through Lightning's manual_backward and optimizer wrapper.
        plugin = self.trainer.precision_plugin
        self._plain_steps = self.trainer.world_size == 1 and getattr(plugin, "scaler", None) is None

    def training_step(self, batch, batch_idx):
        # Several minibatches (batch_loader's steps_per_call): Lightning's per-batch work (hooks,
        # fetch, progress: about 0.5 ms) is paid once for all of them.
        plain = self._plain_steps
        optimizer, scheduler = self.optimizers(use_pl_optimizer=not plain), self.lr_schedulers()
        # Lightning counts optimizer steps (trainer.global_step) in its wrapper's step.
        counter = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress if plain else None
        for minibatch in batch if isinstance(batch, MinibatchGroup) else (batch,):
            loss = self._optimizer_step(minibatch, optimizer, scheduler, plain)
            if counter is not None:
                counter.increment_ready()
                counter.increment_completed()
        return loss

    def _optimizer_step(self, batch, optimizer, scheduler, plain: bool) -> torch.Tensor:
        if self.augment and batch[0].ndim == 4:  # images only (N, C, H, W)
            batch = (augment_images(batch[0], self.augment), *batch[1:])
        loss = self._step(batch, "train")
        # What automatic optimisation does, in its order: zero the gradients, backward, step, then
        # the per-step schedule.
        optimizer.zero_grad()
        if plain:
            loss.backward()
        else:
            self.manual_backward(loss)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        return loss.detach()

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
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self._total_steps())
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        if self.scheduler_name == "onecycle":
            # Smith's one-cycle: 30 % warm-up to lr, cosine annealing to lr / 1e4 (per step). Fast
            # convergence in few epochs, which is what the quick scale can afford.
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=self._total_steps())
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        return opt

    def _total_steps(self) -> int:
        """Optimizer steps of the whole fit (at least 1): the schedules' length."""
        if self.steps_per_epoch is None:
            return max(1, int(self.trainer.estimated_stepping_batches))
        return max(1, int(self.trainer.max_epochs) * int(self.steps_per_epoch))


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


class EpochProgressBar(TQDMProgressBar):
    """A tqdm bar per training epoch that shows the epoch's running ``<stage>_loss`` and
    ``<stage>_acc`` (Classifier.epoch_metrics) instead of ``self.log``'d values (a ``self.log`` call
    costs about 1 ms, as much as a step of the Naitzat MLP).

    It redraws at most once every ``min_interval`` seconds and reads the metrics only then:
    Lightning's bar redraws at every epoch's start and end and opens a validation bar each epoch,
    about 1 ms an epoch, 5 % of an epoch of the Naitzat MLP (6 steps). No validation bar: the
    validation's ``val_*`` show in the training bar once it has run."""

    def __init__(self, refresh_rate: int = 10, min_interval: float = 0.5) -> None:
        super().__init__(refresh_rate=refresh_rate)
        self.min_interval = float(min_interval)

    def get_metrics(self, trainer, pl_module) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        if isinstance(pl_module, Classifier):
            metrics.update({k: round(v, 4) for k, v in pl_module.epoch_metrics().items()})
        return metrics

    def init_train_tqdm(self):
        bar = super().init_train_tqdm()
        bar.mininterval = self.min_interval
        return bar

    def _redraw(self, trainer, pl_module, force: bool = False) -> None:
        """Redraw the training bar (position, epoch, metrics) when ``min_interval`` has passed."""
        bar = self._train_progress_bar
        if bar is None or bar.disable:
            return
        now = bar._time()
        if force or now - bar.last_print_t >= bar.mininterval:
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            bar.refresh()
            bar.last_print_t, bar.last_print_n = now, bar.n

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        bar = self.train_progress_bar
        bar.n = bar.last_print_n = 0
        bar.start_t = bar._time()  # the epoch's rate (what tqdm's reset does, without its redraw)
        bar.total = convert_inf(self.total_train_batches)
        bar.set_description(f"Epoch {trainer.current_epoch}", refresh=False)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.train_progress_bar.n = batch_idx + 1
        self._redraw(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._redraw(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self._redraw(trainer, pl_module, force=True)  # the last epoch's numbers stay on screen
        super().on_train_end(trainer, pl_module)

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            super().on_validation_start(trainer, pl_module)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if trainer.sanity_checking:
            super().on_validation_batch_start(trainer, pl_module, batch, batch_idx, dataloader_idx)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if trainer.sanity_checking:
            super().on_validation_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            super().on_validation_end(trainer, pl_module)
        else:
            self._redraw(trainer, pl_module)


class HistoryCallback(pl.Callback):
    """Collects epoch-level metrics (train/val loss and accuracy), one dict per epoch."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # After the epoch's validation; val_* are absent when there is no validation set.
        self.epochs.append(pl_module.epoch_metrics())


def batch_loader(tensors, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                 num_workers: int = 0, steps_per_call: int = 1, lengths: torch.Tensor | None = None,
                 group_by_length: int = 0) -> DataLoader:
    """A DataLoader over equal-length ``tensors`` that yields ``tuple(t[rows] for t in tensors)``:
    one gather per batch rather than ``batch_size`` items stacked by ``default_collate`` (per-item
    indexing is most of a small model's step). Same batches, in the same order for the same
    ``generator`` state, as ``DataLoader(TensorDataset(*tensors), batch_size, shuffle, generator=...)``.

    ``steps_per_call`` > 1: it yields ``MinibatchGroup`` lists of that many minibatches (the last of
    an epoch may be shorter), the same minibatches in the same order; ``Classifier`` makes one
    optimizer step per minibatch. ``len()`` counts the groups.

    ``lengths`` (N,) int, tokens per row of right-padded sequences: every 2-D tensor of a batch (token
    ids, attention mask) is cut to the batch's longest row; the dropped columns are padding only.
    ``group_by_length`` = k >= 1 (with ``shuffle`` and ``lengths``): rows of similar length share a
    batch (:class:`LengthGroupedBatches`), so little padding is left to cut."""
    if int(steps_per_call) < 1:
        raise ValueError(f"steps_per_call={steps_per_call!r}; expected an integer >= 1")
    rows = _Rows(*tensors, lengths=lengths)
    if int(group_by_length) > 0:
        if not shuffle or lengths is None:
            raise ValueError("group_by_length needs shuffle=True and the rows' lengths")
        batches = LengthGroupedBatches(lengths, batch_size, int(group_by_length), generator)
    else:
        sampler = RandomSampler(rows, generator=generator) if shuffle else SequentialSampler(rows)
        batches = BatchSampler(sampler, batch_size, drop_last=False)
    if int(steps_per_call) > 1:
        batches = _Groups(batches, int(steps_per_call))
    return DataLoader(rows, sampler=batches, batch_size=None, generator=generator, num_workers=num_workers)


class MinibatchGroup(list):
    """Minibatches handed to Lightning as one batch (a list, so collation and device transfer
    keep it): ``Classifier.training_step`` makes one optimizer step per item, in order."""


class _Groups(Sampler):
    """Consecutive lists of row lists from a batch sampler, ``size`` at a time."""

    def __init__(self, batches: BatchSampler, size: int) -> None:
        self.batches, self.size = batches, size

    def __len__(self) -> int:
        return math.ceil(len(self.batches) / self.size)

    def __iter__(self):
        group = []
        for rows in self.batches:
            group.append(rows)
            if len(group) == self.size:
                yield group
                group = []
        if group:
            yield group


class _Rows(Dataset):
    """Tensors indexed by a list of rows at once (the batch sampler's lists), or by a list of such
    lists (a group of minibatches: a list of tuples)."""

    def __init__(self, *tensors: torch.Tensor, lengths: torch.Tensor | None = None) -> None:
        self.tensors, self.lengths = tensors, lengths

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, rows):
        if rows and isinstance(rows[0], list):
            return MinibatchGroup(self[r] for r in rows)
        index = torch.as_tensor(rows, dtype=torch.long)
        if self.lengths is None:
            return tuple(t[index] for t in self.tensors)
        width = int(self.lengths[index].max())
        return tuple(t[index, :width] if t.ndim == 2 else t[index] for t in self.tensors)


def padded_lengths(mask: torch.Tensor, what: str = "rows") -> torch.Tensor:
    """(N,) int64 tokens per row of a right-padded (N, T) attention mask; a mask with a zero before
    a one (left padding, or holes) is a ReptopoError, since cutting columns would drop tokens."""
    lengths = mask.sum(dim=1).long()
    if not torch.equal(mask.bool(), torch.arange(mask.shape[1]) < lengths[:, None]):
        raise ReptopoError(f"train.group_by_length: the attention masks of the {what} split are not right-padded "
                           "(ones, then zeros); expected a tokenizer with padding_side='right'")
    return lengths


class LengthGroupedBatches(Sampler):
    """Batches of rows of similar length, reshuffled every epoch (as Hugging Face's
    ``group_by_length``, with chunks sized in batches).

    Each epoch: a random permutation of the N rows (``generator``) is cut into chunks of
    ``chunk_batches * batch_size`` rows; each chunk is sorted by length, longest first (a stable
    sort, so rows of equal length keep their random order) and cut into batches; the epoch's
    batches come in a random order. Batch count: ceil(N / batch_size), as plain batching (only the
    last chunk can end in a short batch). Transformers on CPU cost about linearly in the padded
    length, so trimmed batches of similar rows do the same epoch in a fraction of the time."""

    def __init__(self, lengths: torch.Tensor, batch_size: int, chunk_batches: int,
                 generator: torch.Generator | None = None) -> None:
        self.lengths = torch.as_tensor(lengths).tolist()
        self.batch_size, self.chunk = int(batch_size), int(chunk_batches) * int(batch_size)
        self.generator = generator

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self):
        perm = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        batches = []
        for start in range(0, len(perm), self.chunk):
            chunk = sorted(perm[start : start + self.chunk], key=lambda r: -self.lengths[r])
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        for i in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[i]


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512,
             mask: torch.Tensor | None = None, by_length: bool = False, what: str = "evaluated") -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``model`` on (x, y) (text: ``mask`` = attention mask), in eval mode.

    ``by_length`` (text): rows in order of length, longest first, each batch cut to its first
    (longest) row: a fraction of the padded cost; the accuracy is the same count, the loss sums in
    another order. The masks must be right-padded (:func:`padded_lengths`; ``what`` names the split
    in its error)."""
    model.eval()
    lengths = None
    if by_length and mask is not None and len(y):
        lengths = padded_lengths(mask, what)
        order = torch.sort(lengths, descending=True, stable=True).indices
        x, y, mask, lengths = x[order], y[order], mask[order], lengths[order]
    correct, loss_sum = 0, 0.0
    for i in range(0, len(y), batch_size):
        if mask is None:
            inputs = (x[i : i + batch_size],)
        else:
            width = int(lengths[i]) if lengths is not None else x.shape[1]
            inputs = (x[i : i + batch_size, :width], mask[i : i + batch_size, :width])
        logits = model(*inputs)
        loss_sum += float(F.cross_entropy(logits, y[i : i + batch_size], reduction="sum"))
        correct += int((logits.argmax(1) == y[i : i + batch_size]).sum())
    n = max(1, len(y))
    return {"acc": correct / n, "loss": loss_sum / n}


def evaluate_splits(model: nn.Module, ds, batch_size: int = 512, train_rows: int | None = None,
                    seed: int = 0, by_length: bool = False) -> dict[str, float]:
    """``<split>_acc`` and ``<split>_loss`` of ``model`` on each non-empty split of dataset ``ds``;
    the train split on a seeded random ``train_rows`` of it (None: all): on 60k images the full
    pass costs about a tenth of the training, for a number only reported. ``by_length``: see
    :func:`evaluate`."""
    metrics: dict[str, float] = {}
    for name in ("train", "val", "test"):
        split = getattr(ds, name)
        if len(split):
            x, y, mask = split.x, split.y, split.mask
            if name == "train" and train_rows is not None and train_rows < len(y):
                rows = torch.from_numpy(np.sort(np.random.default_rng(seed).choice(len(y), train_rows, replace=False)))
                x, y, mask = x[rows], y[rows], None if mask is None else mask[rows]
            res = evaluate(model, x, y, batch_size, mask, by_length, name)
            metrics[f"{name}_acc"], metrics[f"{name}_loss"] = res["acc"], res["loss"]
    return metrics
