"""Choosing probed layers and capturing their pooled outputs with forward hooks.

A probe is a named module whose output is recorded. Probes come back in depth order, which is
the order in which the modules *produce their outputs* during a forward pass (not the
registration order), and probe i of K sits at relative depth (i + 1) / K.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from reptopo.runtime.choices import allowed
from reptopo.runtime.errors import ReptopoError
from reptopo.nets.vision import ACTIVATION_TYPES


@dataclass(frozen=True)
class Probe:
    """A probed module: ``index`` in depth order, ``depth`` = (index + 1) / K."""

    name: str
    index: int
    depth: float

    def as_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def execution_order(model: nn.Module, example: torch.Tensor) -> list[str]:
    """Names of all submodules in the order their forward passes return (first call only)."""
    order: list[str] = []
    seen: set[str] = set()
    handles = []

    def make_hook(name: str) -> Callable:
        def hook(_module, _inp, _out) -> None:
            if name not in seen:
                seen.add(name)
                order.append(name)

        return hook

    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(make_hook(name)))
    was_training = model.training
    model.eval()
    try:
        model(example)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return order


def _evenly_spaced(items: list[str], k: int) -> list[str]:
    if k >= len(items):
        return list(items)
    picks = np.unique(np.round(np.linspace(0, len(items) - 1, k)).astype(int))
    return [items[i] for i in picks]


def select_probes(model: nn.Module, model_cfg, probe_cfg, example: torch.Tensor) -> list[Probe]:
    """Resolve ``probe_cfg`` against ``model`` into probes in depth order.

    Strategies: ``names`` (exactly ``probe_cfg.layers``), ``pattern`` (regex on module names),
    ``blocks`` (every block output named by the model config's ``blocks`` regex) and
    ``evenly_spaced`` (``probe_cfg.num`` probes spread over the blocks). With ``include_logits``
    the model's logits module (``model_cfg.logits``) is appended as the last probe.
    """
    order = execution_order(model, example)
    modules = dict(model.named_modules())
    logits = model_cfg.get("logits")
    include_logits = bool(probe_cfg.get("include_logits", True))
    if include_logits and logits not in modules:
        raise ReptopoError(f"model.logits={logits!r} names no module of model {model_cfg.name!r}")

    def blocks() -> list[str]:
        pattern = re.compile(model_cfg.blocks)
        names = [n for n in order if pattern.search(n)]
        if model_cfg.get("blocks_activation_only"):
            names = [n for n in names if isinstance(modules[n], ACTIVATION_TYPES)]
        if not names:
            raise ReptopoError(f"model.blocks={model_cfg.blocks!r} matches no module of model {model_cfg.name!r}")
        return names

    strategy = probe_cfg.strategy
    if strategy == "names":
        wanted = list(probe_cfg.layers or [])
        if not wanted:
            raise ReptopoError("probe.strategy=names needs probe.layers, a list of module names")
        missing = [n for n in wanted if n not in modules]
        if missing:
            close = [n for n in order if any(m.split(".")[0] == n.split(".")[0] for m in missing)][:8]
            raise ReptopoError(
                f"probe.layers names layer(s) {missing} that model {model_cfg.name!r} lacks"
                + (f" (modules nearby: {close})" if close else "")
            )
        chosen = [n for n in order if n in set(wanted)]
    elif strategy == "pattern":
        if not probe_cfg.get("pattern"):
            raise ReptopoError("probe.strategy=pattern needs probe.pattern, a regex on module names")
        pattern = re.compile(probe_cfg.pattern)
        chosen = [n for n in order if pattern.search(n)]
        if not chosen:
            raise ReptopoError(f"probe.pattern={probe_cfg.pattern!r} matches no layer of model {model_cfg.name!r}")
    elif strategy == "blocks":
        chosen = blocks()
    elif strategy == "evenly_spaced":
        k = int(probe_cfg.num)
        n_inner = k - 1 if include_logits else k
        if n_inner < 1:
            raise ReptopoError(f"probe.num={k} is too small; expected at least {2 if include_logits else 1}")
        candidates = [n for n in blocks() if n != logits]
        if n_inner > len(candidates):
            raise ReptopoError(
                f"probe.num={k} but model {model_cfg.name!r} has only {len(candidates)} block outputs"
                f" (+ logits); expected probe.num <= {len(candidates) + int(include_logits)}"
            )
        chosen = _evenly_spaced(candidates, n_inner)
    else:
        raise ReptopoError(
            f"probe.strategy={strategy!r} is unknown; expected one of {list(allowed('probe.strategy'))}"
        )
    chosen = [n for n in chosen if n != logits]
    if include_logits:
        chosen.append(logits)
    k = len(chosen)
    return [Probe(name=n, index=i, depth=(i + 1) / k) for i, n in enumerate(chosen)]


def pool_output(output, token_pooling: str = "cls", attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Pool one module output to (N, D).

    (N, C, H, W) conv maps: global average over H, W. (N, T, D) token sequences: the first (CLS)
    token or the mean over tokens (over unmasked tokens when ``attention_mask`` (N, T) is given).
    (N, D) passes through. Tuples (e.g. Hugging Face outputs) use their first element.
    """
    if isinstance(output, (tuple, list)):
        output = output[0]
    if hasattr(output, "last_hidden_state"):
        output = output.last_hidden_state
    if output.dim() == 4:
        return output.mean(dim=(2, 3))
    if output.dim() == 3:
        if token_pooling == "cls":
            return output[:, 0]
        if token_pooling == "mean":
            if attention_mask is None:
                return output.mean(dim=1)
            mask = attention_mask.to(output.dtype).unsqueeze(-1)
            return (output * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)
        raise ReptopoError(f"probe.token_pooling={token_pooling!r}; expected 'cls' or 'mean'")
    if output.dim() == 2:
        return output
    return output.flatten(1)


class ActivationRecorder:
    """Forward hooks that pool each probe's output inside the hook and hand it to ``sink``.

    ``sink(probe, pooled)`` receives a (batch, D) float tensor on the CPU per probe per batch;
    nothing bigger than one pooled batch is kept, so peak memory does not grow with the number
    of probes times the feature-map size. Use as a context manager around forward passes.
    """

    def __init__(
        self,
        model: nn.Module,
        probes: Iterable[Probe],
        sink: Callable[[Probe, torch.Tensor], None],
        token_pooling: str = "cls",
    ) -> None:
        self.model = model
        self.probes = list(probes)
        self.sink = sink
        self.token_pooling = token_pooling
        self.attention_mask: torch.Tensor | None = None
        self._handles: list = []

    def __enter__(self) -> "ActivationRecorder":
        modules = dict(self.model.named_modules())
        for probe in self.probes:
            if probe.name not in modules:
                raise ReptopoError(f"probe layer {probe.name!r} is not a module of the model")
            self._handles.append(modules[probe.name].register_forward_hook(self._make_hook(probe)))
        return self

    def _make_hook(self, probe: Probe) -> Callable:
        def hook(_module, _inp, out) -> None:
            pooled = pool_output(out, self.token_pooling, self.attention_mask)
            self.sink(probe, pooled.detach().float().cpu())

        return hook

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
