"""Stage 1, train: fit the configured model on the configured dataset (seeded, Lightning).

Writes ``paths.train_dir``: ``model.safetensors`` (state dict), ``model.json`` (what the
checkpoint is: model config, input shape, class count) and ``metrics.json`` (train/val/test
accuracy and loss).
"""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from reptopo.datasets import load_dataset
from reptopo.nets import build_model, check_compatible, count_parameters
from reptopo.nets.lightning import (Classifier, EpochProgressBar, HistoryCallback, batch_loader, evaluate_splits,
                                   padded_lengths)
from reptopo.nets.text import build_tokenizer, encode_dataset
from reptopo.runtime.cli import run_stage
from reptopo.runtime.config import abspath, config_dir, config_to_dict
from reptopo.runtime.errors import ReptopoError
from reptopo.runtime.io import atomic_dir, write_json, write_json_atomic
from reptopo.runtime.schema import validate_config
from reptopo.runtime.stamps import write_stamp
from reptopo.runtime.threads import limit_threads
from reptopo.runtime.tracking import stage_run

log = logging.getLogger("reptopo.train")


def _make_trainer(cfg, **kwargs) -> "pl.Trainer":
    """``pl.Trainer(**kwargs)``; an accelerator this machine lacks (or an unknown name) is one
    error naming ``train.accelerator`` instead of Lightning's traceback."""
    import pytorch_lightning as pl
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    try:
        return pl.Trainer(**kwargs)
    except (MisconfigurationException, ValueError, ImportError) as exc:
        # ImportError: an accelerator's optional package (torch_xla for tpu) is missing.
        about_accelerator = any(w in str(exc).lower() for w in ("accelerator", "backend"))
        if not (about_accelerator or isinstance(exc, ImportError)):
            raise
        raise ReptopoError(
            f"train.accelerator={cfg.train.accelerator!r} cannot run here: {str(exc).splitlines()[0]} "
            f"(use train.accelerator=auto or cpu)"
        ) from None


def run(cfg: DictConfig, tracker=None) -> dict:
    """Train and save; returns the metrics dict. Logs into ``tracker`` or a new MLflow run."""
    cfg = validate_config(cfg)
    import pytorch_lightning as pl
    import torch

    n_threads = limit_threads()
    # Denormal floats (tiny gradients late in an annealed schedule) run 10-100x slower on x86;
    # flushing them to zero costs nothing measurable in accuracy and keeps epochs at one speed.
    torch.set_flush_denormal(True)
    # Lightning's banner (accelerator tips) is noise in stage logs; warnings still show.
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    t0 = time.time()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    check_compatible(cfg.model, cfg.data)
    ds = load_dataset(cfg.data, cfg.seed)
    tokenizer = None
    if ds.kind == "text":  # token ids + attention masks; the tokenizer is saved with the checkpoint
        tokenizer = build_tokenizer(cfg.model, ds.train.texts)
        encode_dataset(ds, tokenizer, cfg.model.max_length)
    model = build_model(cfg.model, ds.in_chans, ds.num_classes, ds.img_size,
                        vocab_size=len(tokenizer) if tokenizer is not None else None)
    log.info("training %s (%d parameters) on %s: %d train / %d val / %d test examples",
             cfg.model.name, count_parameters(model), ds.name, len(ds.train), len(ds.val), len(ds.test))
    out_dir = abspath(cfg.paths.train_dir)
    with stage_run(cfg, "train", tracker) as tracker, atomic_dir(out_dir) as tmp:
        model, history = fit(cfg, model, ds, tmp)
        metrics = {**evaluate_splits(model, ds, cfg.train.eval_batch_size, cfg.train.train_eval_rows, int(cfg.seed),
                                     by_length=bool(cfg.train.group_by_length)), "n_parameters": count_parameters(model),
                   "train_seconds": round(time.time() - t0, 2)}
        save_checkpoint(tmp, cfg, model, ds, tokenizer)
        write_json(tmp / "metrics.json", metrics)
        write_json(tmp / "history.json", history)
        write_stamp(tmp, cfg, "train", seconds=time.time() - t0, threads=n_threads)
        log_results(tracker, tmp)
    write_json_atomic(abspath(cfg.paths.metrics_dir) / "train.json", metrics)
    log.info("train: %s", {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
    return metrics


def fit(cfg: DictConfig, model, ds, root: Path):
    """Train ``model`` on ``ds`` with Lightning under ``cfg.train``; returns (model in eval mode on
    the CPU, per-epoch history)."""
    import torch

    t = cfg.train
    # Several minibatches per Lightning batch (train.steps_per_call): the schedule counts minibatches.
    grouped = int(t.steps_per_call) > 1
    module = Classifier(model, t.optimizer, t.lr, t.weight_decay, t.scheduler, augment=t.augment,
                        channels_last=t.channels_last,
                        steps_per_epoch=math.ceil(len(ds.train) / int(t.batch_size)) if grouped else None)
    gen = torch.Generator().manual_seed(int(cfg.seed))
    # train.group_by_length (text): batches of similar length, cut to their longest row.
    by_length = int(t.group_by_length)
    lengths = {name: padded_lengths(getattr(ds, name).mask, name) if by_length else None for name in ("train", "val")}
    train_loader = batch_loader(ds.train.tensors(), t.batch_size, shuffle=True, generator=gen,
                                num_workers=t.num_workers, steps_per_call=int(t.steps_per_call),
                                lengths=lengths["train"], group_by_length=by_length)
    val_loader = batch_loader(ds.val.tensors(), t.eval_batch_size, lengths=lengths["val"])
    history = HistoryCallback()
    trainer = _make_trainer(
        cfg, max_epochs=t.max_epochs, accelerator=t.accelerator, devices=1, deterministic=t.deterministic,
        precision=t.precision,
        logger=False, enable_checkpointing=False, enable_model_summary=False,
        limit_train_batches=t.limit_train_batches, num_sanity_val_steps=0,
        # tqdm also prints usable progress when stdout is a log file (DVC, SLURM).
        callbacks=[history, EpochProgressBar(refresh_rate=10)], default_root_dir=str(root),
    )
    trainer.fit(module, train_loader, val_loader if len(ds.val) else None)
    # Back to NCHW: safetensors stores contiguous tensors, and later stages feed NCHW batches.
    return module.model.cpu().to(memory_format=torch.contiguous_format).eval(), history.epochs


def save_checkpoint(out: Path, cfg: DictConfig, model, ds, tokenizer) -> None:
    """model.safetensors, model.json (what the checkpoint is) and, for text, the tokenizer and the
    transformers config the activations stage needs to rebuild the model offline."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    # One metadata key: safetensors writes several in hash order, and byte-identical files keep
    # DVC's output hashes reproducible.
    save_file(state, str(out / "model.safetensors"),
              metadata={"reptopo": json.dumps({"model": cfg.model.name, "dataset": ds.name})})
    write_json(out / "model.json", {
        "model": config_to_dict(cfg.model), "dataset": ds.name, "in_chans": ds.in_chans, "img_size": ds.img_size,
        "num_classes": ds.num_classes, "kind": ds.kind,
        "vocab_size": len(tokenizer) if tokenizer is not None else None, "seed": int(cfg.seed),
    })
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out / "tokenizer"))
        model.net.config.save_pretrained(str(out / "hf_config"))


def log_results(tracker, out_dir: Path) -> None:
    """Send a finished train output to ``tracker``: per-epoch curves (step = epoch) and the final
    evaluation of the saved model as ``final/<split>_acc`` and ``final/<split>_loss``."""
    import json

    for epoch, row in enumerate(json.loads((out_dir / "history.json").read_text())):
        tracker.log_metrics(row, step=epoch)
    metrics = json.loads((out_dir / "metrics.json").read_text())
    tracker.log_metrics({f"final/{k}": v for k, v in metrics.items() if k.endswith(("acc", "loss"))})
    tracker.log_artifact(out_dir / "metrics.json")


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> None:
    run_stage(run, cfg, "train")


if __name__ == "__main__":
    main()
