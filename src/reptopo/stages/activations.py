"""Stage 2, activations: run a fixed, seeded sample through the trained model and dump probes.

Writes ``paths.activations_dir``:
- ``layer_XX.npy``: (N, D_layer) pooled activations of probe XX (depth order), float32/float16;
- ``labels.npy`` (N,) int64 and ``indices.npy`` (N,) int64: the probed examples' rows in the source
  files that ``sample.split`` is drawn from (a test sample indexes the test files);
- ``meta.json``: layers (name, file, index, relative depth, raw output shape, pooled shape, dtype),
  pooling, the sample (size, split, seed), model and dataset, and the attack (E5) with its macro-F1;
- with ``attack.method``: ``paths.metrics_dir``/attack.json (eps, macro-F1, accuracy, target rate).
Arrays are written batch by batch into memory-mapped files, so memory holds one pooled batch.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from reptopo.datasets import load_dataset
from reptopo.nets import build_model, example_input
from reptopo.nets.text import encode_dataset, load_tokenizer
from reptopo.probing.attacks import adversarial_examples, attack_scores, predict
from reptopo.probing.probes import ActivationRecorder, select_probes
from reptopo.probing.sampling import pooling_of, sample_rows
from reptopo.runtime.cli import run_stage
from reptopo.runtime.config import abspath, config_dir, config_to_dict
from reptopo.runtime.errors import ReptopoError
from reptopo.runtime.io import atomic_dir, read_json, write_json, write_json_atomic
from reptopo.runtime.schema import validate_config
from reptopo.runtime.stamps import write_stamp
from reptopo.runtime.threads import limit_threads
from reptopo.runtime.tracking import stage_run

log = logging.getLogger("reptopo.activations")


def load_trained_model(cfg: DictConfig, train_dir: Path):
    """Rebuild ``cfg.model`` and load the train stage's checkpoint, checking they match."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

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

    n_threads = limit_threads()
    torch.manual_seed(cfg.seed)
    train_dir = abspath(cfg.paths.train_dir)
    model, info = load_trained_model(cfg, train_dir)
    ds = load_dataset(cfg.data, cfg.seed)
    if ds.kind == "text":  # the exact tokenizer the model was trained with
        encode_dataset(ds, load_tokenizer(train_dir / "tokenizer"), cfg.model.max_length)
    split = getattr(ds, cfg.sample.split)
    rows = sample_rows(len(split), int(cfg.sample.size), int(cfg.seed), cfg.sample.split)
    x, y = split.x[rows], split.y[rows]
    mask = split.mask[rows] if split.mask is not None else None
    attack = None
    if cfg.attack.method:  # E5: probe adversarial copies of the sample
        x, attack = attacked_sample(model, x, y, cfg, ds.kind)
    example = x[:2] if mask is not None else example_input(info["in_chans"], info["img_size"])
    probes = select_probes(model, cfg.model, cfg.probe, example)
    out_dir = abspath(cfg.paths.activations_dir)
    with stage_run(cfg, "activations", tracker) as tracker, atomic_dir(out_dir) as tmp:
        layers = dump_layers(model, probes, x, mask, tmp, cfg)
        np.save(tmp / "labels.npy", y.numpy().astype(np.int64))
        np.save(tmp / "indices.npy", split.indices[rows].astype(np.int64))
        meta = {"run_name": cfg.run_name, "model": cfg.model.name, "dataset": ds.name, "num_classes": ds.num_classes,
                "n_samples": len(rows), "seed": int(cfg.seed), "sample": config_to_dict(cfg.sample),
                "probe": config_to_dict(cfg.probe), "layers": layers, "attack": attack}
        write_json(tmp / "meta.json", meta)
        write_stamp(tmp, cfg, "activations", seconds=time.time() - t0, threads=n_threads)
        log_results(tracker, tmp)
    if attack is not None:
        write_json_atomic(abspath(cfg.paths.metrics_dir) / "attack.json", attack)
    log.info("activations: %d samples x %d probes -> %s", len(rows), len(probes), out_dir)
    return meta


def attacked_sample(model, x, y, cfg: DictConfig, kind: str):
    """Adversarial copies of the sample ``x`` under ``cfg.attack`` and the attack's scores."""
    if kind != "image":
        raise ReptopoError(f"attack.method={cfg.attack.method!r} needs an image dataset; "
                           f"data={cfg.data.name!r} is {kind}")
    a = cfg.attack
    x = adversarial_examples(model, x, a.method, float(a.eps), int(a.target), list(cfg.data.mean),
                             list(cfg.data.std), batch_size=int(cfg.sample.batch_size))
    scores = {"method": a.method, "eps": float(a.eps), "target": int(a.target),
              **attack_scores(y.numpy(), predict(model, x), int(a.target))}
    log.info("attack %s eps=%g: macro-F1 %.3f, accuracy %.3f, target rate %.3f", a.method, a.eps,
             scores["macro_f1"], scores["accuracy"], scores["target_rate"])
    return x, scores


def dump_layers(model, probes, x, mask, out: Path, cfg: DictConfig) -> list[dict]:
    """Run ``x`` through ``model`` batch by batch and stream every probe's pooled output into
    ``out``/layer_XX.npy (memory-mapped, (N, D_layer), ``probe.dtype``); returns the layer records."""
    import torch
    from tqdm.auto import tqdm

    n, bs, dtype = len(x), int(cfg.sample.batch_size), np.dtype(cfg.probe.dtype)
    arrays: dict[str, np.ndarray] = {}
    raw_shapes: dict[str, list[int]] = {}
    cursor = {"start": 0, "stop": 0}

    def sink(probe, pooled: torch.Tensor) -> None:
        if probe.name not in arrays:
            arrays[probe.name] = np.lib.format.open_memmap(
                out / f"layer_{probe.index:02d}.npy", mode="w+", dtype=dtype, shape=(n, pooled.shape[1]))
        arrays[probe.name][cursor["start"] : cursor["stop"]] = pooled.numpy().astype(dtype, copy=False)

    def shape_hook(name):
        def hook(_m, _i, output):
            output = output[0] if isinstance(output, (tuple, list)) else output
            raw_shapes.setdefault(name, list(output.shape[1:]))
        return hook

    modules = dict(model.named_modules())
    handles = [modules[p.name].register_forward_hook(shape_hook(p.name)) for p in probes]
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
    layers = []
    for p in probes:
        arr = np.load(out / f"layer_{p.index:02d}.npy", mmap_mode="r")
        layers.append({"index": p.index, "name": p.name, "depth": p.depth, "file": f"layer_{p.index:02d}.npy",
                       "output_shape": raw_shapes.get(p.name), "shape": list(arr.shape), "dtype": str(arr.dtype),
                       "pooling": pooling_of(raw_shapes.get(p.name), cfg.probe.token_pooling)})
    return layers


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
