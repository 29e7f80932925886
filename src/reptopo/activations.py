"""Stage 2, activations: run a fixed, seeded sample through the trained model and dump probes.

Writes ``paths.activations_dir``:
- ``layer_XX.npy``: (N, D_layer) pooled activations of probe XX (depth order), float32/float16;
- ``labels.npy`` (N,) int64 and ``indices.npy`` (N,) int64 (rows of the dataset's training files);
- ``meta.json``: layers (name, file, index, relative depth, raw output shape, pooled shape, dtype),
  pooling, sample size and seed, model and dataset, and the attack (E5) with its macro-F1;
- with ``probe.attack``: ``paths.metrics_dir``/attack.json (eps, macro-F1, accuracy, target rate).
Arrays are written batch by batch into memory-mapped files, so memory holds one pooled batch.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from reptopo.app import abspath, config_dir, config_to_dict, limit_threads, run_stage, write_stamp
from reptopo.schema import validate_config
from reptopo.errors import ReptopoError

log = logging.getLogger("reptopo.activations")


def load_trained_model(cfg: DictConfig, train_dir: Path):
    """Rebuild ``cfg.model`` and load the train stage's checkpoint, checking they match."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from reptopo.io import read_json
    from reptopo.models import build_model

    ckpt = train_dir / "model.safetensors"
    info = read_json(train_dir / "model.json", "checkpoint description (run the train stage first)")
    if not ckpt.is_file():
        raise ReptopoError(f"checkpoint not found: {ckpt} (run the train stage first)")
    saved = info.get("model", {})
    wanted = config_to_dict(cfg.model)
    arch_keys = ("family", "arch", "kwargs", "activation")
    if any(saved.get(k) != wanted.get(k) for k in arch_keys):
        raise ReptopoError(
            f"checkpoint {ckpt} was trained for model {saved.get('name')!r} "
            f"({ {k: saved.get(k) for k in arch_keys} }), but the config asks for model {wanted.get('name')!r} "
            f"({ {k: wanted.get(k) for k in arch_keys} })"
        )
    model = build_model(cfg.model, info["in_chans"], info["num_classes"], info["img_size"],
                        vocab_size=info.get("vocab_size"), hf_config_dir=train_dir / "hf_config")
    try:
        state = load_file(str(ckpt))  # safetensors: no pickle, nothing executed on load
    except (SafetensorError, OSError) as exc:
        raise ReptopoError(f"checkpoint {ckpt} is unreadable ({exc})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ReptopoError(f"checkpoint {ckpt} does not fit model {cfg.model.name!r}: {first}") from None
    model.eval()
    return model, info


def run(cfg: DictConfig, tracker=None) -> dict:
    """Dump the probed layers; returns the metadata written to meta.json."""
    t0 = time.time()
    cfg = validate_config(cfg)
    import torch
    from tqdm.auto import tqdm

    from reptopo.datasets import load_dataset
    from reptopo.io import atomic_dir, write_json
    from reptopo.models import example_input
    from reptopo.probes import ActivationRecorder, select_probes
    from reptopo.tracking import stage_run

    limit_threads()
    torch.manual_seed(cfg.seed)
    train_dir = abspath(cfg.paths.train_dir)
    model, info = load_trained_model(cfg, train_dir)
    ds = load_dataset(cfg.data, cfg.seed)
    if ds.kind == "text":  # the exact tokenizer the model was trained with
        from reptopo.text import encode_dataset, load_tokenizer

        encode_dataset(ds, load_tokenizer(train_dir / "tokenizer"), cfg.model.max_length)
    split = getattr(ds, cfg.probe.sample_split, None)
    if split is None:
        raise ReptopoError(f"probe.sample_split={cfg.probe.sample_split!r}; expected train, val or test")
    n = int(cfg.probe.sample_size)
    if n < 1 or n > len(split):
        raise ReptopoError(
            f"probe.sample_size={n} but the {cfg.probe.sample_split} split has {len(split)} examples "
            f"(expected 1..{len(split)}; raise data.{cfg.probe.sample_split}_size or lower probe.sample_size)"
        )
    # A fixed, seeded sample in random order (the local lifespans take the first points per class).
    rows = np.random.default_rng(cfg.seed).choice(len(split), size=n, replace=False)
    x, y = split.x[rows], split.y[rows]
    mask = split.mask[rows] if split.mask is not None else None
    attack = None
    if cfg.probe.attack.method:  # E5: probe adversarial copies of the sample
        from reptopo.attacks import adversarial_examples, attack_scores, predict

        if ds.kind != "image":
            raise ReptopoError(f"probe.attack.method={cfg.probe.attack.method!r} needs an image dataset; "
                               f"data={cfg.data.name!r} is {ds.kind}")
        a = cfg.probe.attack
        x = adversarial_examples(model, x, a.method, float(a.eps), int(a.target), list(cfg.data.mean),
                                 list(cfg.data.std), batch_size=int(cfg.probe.batch_size))
        attack = {"method": a.method, "eps": float(a.eps), "target": int(a.target),
                  **attack_scores(y.numpy(), predict(model, x), int(a.target))}
        log.info("attack %s eps=%g: macro-F1 %.3f, accuracy %.3f, target rate %.3f", a.method, a.eps,
                 attack["macro_f1"], attack["accuracy"], attack["target_rate"])
    example = x[:2] if mask is not None else example_input(info["in_chans"], info["img_size"])
    probes = select_probes(model, cfg.model, cfg.probe, example)
    dtype = np.dtype(cfg.probe.dtype)
    if dtype not in (np.float32, np.float16):
        raise ReptopoError(f"probe.dtype={cfg.probe.dtype!r}; expected float32 or float16")
    out_dir = abspath(cfg.paths.activations_dir)
    raw_shapes: dict[str, list[int]] = {}

    with stage_run(cfg, "activations", tracker) as tracker, atomic_dir(out_dir) as tmp:
        arrays: dict[str, np.ndarray] = {}
        cursor = {"start": 0, "stop": 0}

        def sink(probe, pooled: torch.Tensor) -> None:
            if probe.name not in arrays:
                arrays[probe.name] = np.lib.format.open_memmap(
                    tmp / f"layer_{probe.index:02d}.npy", mode="w+", dtype=dtype, shape=(n, pooled.shape[1]))
            arrays[probe.name][cursor["start"] : cursor["stop"]] = pooled.numpy().astype(dtype, copy=False)

        def shape_hook(name):
            def hook(_m, _i, out):
                out = out[0] if isinstance(out, (tuple, list)) else out
                raw_shapes.setdefault(name, list(out.shape[1:]))
            return hook

        modules = dict(model.named_modules())
        handles = [modules[p.name].register_forward_hook(shape_hook(p.name)) for p in probes]
        bs = int(cfg.probe.batch_size)
        with torch.no_grad(), ActivationRecorder(model, probes, sink, cfg.probe.token_pooling) as recorder:
            for start in tqdm(range(0, n, bs), desc=f"activations {cfg.run_name}", unit="batch"):
                cursor["start"], cursor["stop"] = start, min(n, start + bs)
                if mask is None:
                    model(x[start : start + bs])
                else:  # masked-mean pooling of token sequences needs this batch's attention mask
                    recorder.attention_mask = mask[start : start + bs]
                    model(x[start : start + bs], mask[start : start + bs])
        for h in handles:
            h.remove()
        for arr in arrays.values():
            arr.flush()
        arrays.clear()  # close the memmaps before the files are read back
        np.save(tmp / "labels.npy", y.numpy().astype(np.int64))
        np.save(tmp / "indices.npy", split.indices[rows].astype(np.int64))
        layers = []
        for p in probes:
            arr = np.load(tmp / f"layer_{p.index:02d}.npy", mmap_mode="r")
            layers.append({
                "index": p.index, "name": p.name, "depth": p.depth, "file": f"layer_{p.index:02d}.npy",
                "output_shape": raw_shapes.get(p.name), "shape": list(arr.shape), "dtype": str(arr.dtype),
                "pooling": "gap" if raw_shapes.get(p.name) and len(raw_shapes[p.name]) == 3 else
                           (cfg.probe.token_pooling if raw_shapes.get(p.name) and len(raw_shapes[p.name]) == 2 else "none"),
            })
        meta = {
            "run_name": cfg.run_name, "model": cfg.model.name, "dataset": ds.name,
            "num_classes": ds.num_classes, "n_samples": n, "seed": int(cfg.seed),
            "sample_split": cfg.probe.sample_split, "probe": config_to_dict(cfg.probe), "layers": layers,
            "attack": attack,
        }
        write_json(tmp / "meta.json", meta)
        write_stamp(tmp, cfg, "activations", seconds=time.time() - t0)
        log_results(tracker, tmp)
    if attack is not None:
        from reptopo.io import write_json_atomic

        write_json_atomic(abspath(cfg.paths.metrics_dir) / "attack.json", attack)
    log.info("activations: %d samples x %d probes -> %s", n, len(probes), out_dir)
    return meta


def log_results(tracker, out_dir: Path) -> None:
    """Send a finished activations output's shape information to ``tracker``."""
    import json

    meta = json.loads((out_dir / "meta.json").read_text())
    tracker.log_metrics({"n_samples": meta["n_samples"], "n_probes": len(meta["layers"])})
    if meta.get("attack"):
        tracker.log_metrics({f"attack/{k}": v for k, v in meta["attack"].items() if isinstance(v, float)})
    tracker.log_series("probe_dim", [l["shape"][1] for l in meta["layers"]])
    tracker.log_dict(meta, "activations_meta.json")


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> None:
    run_stage(run, cfg, "activations")


if __name__ == "__main__":
    main()
