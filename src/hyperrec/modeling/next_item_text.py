"""The language-model side of the next-item model: where its item text vectors come from.

Frozen (the default): the catalogue is embedded once (disk-cached) into the net's ``text_table`` and nothing
here runs while training. With ``finetune_item_encoder`` the encoder trains with the recommender, over a
``TokenStateCache`` (only the top layers run) or end to end on each batch's tokenized item texts; the vectors
of the items in a batch are then computed live, and the ``text_table`` that scoring reads is stale until
``refresh`` re-embeds the catalogue.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from hyperrec.errors import ModelError
from hyperrec.modeling.item_encoder import TextEncoder, embed_catalogue, item_texts
from hyperrec.modeling.next_item_net import NextItemNet
from hyperrec.modeling.settings import ItemEncoderSettings, NextItemSettings, RuntimeSettings
from hyperrec.modeling.token_cache import TokenStateCache, cached_encoder, live_text_table


class ItemText:
    """The item encoder of a next-item model (None: frozen embeddings or no text) and its training state."""

    def __init__(self, encoder: TextEncoder | None = None, *, batch_size: int = 128) -> None:
        self.encoder = encoder
        self.batch_size = batch_size
        #: Tokenized catalogue texts (end-to-end fine-tuning without a token cache).
        self.tokens: dict[str, torch.Tensor] | None = None
        self.token_cache: TokenStateCache | None = None
        #: Whether the encoder changed since the catalogue was last embedded.
        self.stale = False

    @classmethod
    def build(cls, items: pd.DataFrame, settings: NextItemSettings, encoder_settings: ItemEncoderSettings,
              runtime: RuntimeSettings, device: torch.device, item_embeddings: np.ndarray | None = None,
              ) -> tuple[ItemText, torch.Tensor | None]:
        """The text side of a model about to train, and the (n_items, dim) text table it starts from.

        Args:
            items: the catalogue, one row per item in item_idx order.
            settings: the next-item settings (``use_text``, ``finetune_item_encoder``, ``token_cache``).
            encoder_settings: the language model and its text budget.
            runtime: device and progress settings of catalogue embedding.
            device: where a trainable encoder lives.
            item_embeddings: precomputed frozen embeddings (skip the encoder), e.g. shared with zero-shot.

        Returns:
            The item-text state, and the text table (None when ``use_text`` is off).
        """
        text = cls(batch_size=encoder_settings.batch_size)
        if not settings.use_text:
            return text, None
        texts = item_texts(items, max_tags=encoder_settings.max_tags,
                           include_categories=encoder_settings.include_categories)
        if settings.finetune_item_encoder:
            text.encoder = TextEncoder(encoder_settings.model_path, max_length=encoder_settings.max_length,
                                       dropout=settings.training.dropout).to(device)
            if settings.token_cache:
                text.token_cache = cached_encoder(text.encoder, texts, settings.training.unfreeze_schedule,
                                                  batch_size=encoder_settings.batch_size)
                item_embeddings = text.token_cache.encode_all().numpy()
            else:
                text.tokens = text.encoder.tokenize(texts)
        if item_embeddings is None:
            item_embeddings = embed_catalogue(texts, encoder_settings, runtime, encoder=text.encoder)
        if item_embeddings.shape[0] != len(items):
            raise ModelError(f"item_embeddings has {item_embeddings.shape[0]} rows for {len(items)} items")
        return text, torch.from_numpy(np.ascontiguousarray(item_embeddings, dtype=np.float32))

    def live_table(self, net: NextItemNet, targets: torch.Tensor, n_live: int,
                   generator: torch.Generator) -> torch.Tensor | None:
        """Full softmax: the net's text table with live rows for up to ``n_live`` targets while the
        cached-over layers train (``token_cache.live_text_table``); None when the cached table is what the
        step uses (or the net reads no text)."""
        if self.token_cache is None or not self.token_cache.trains():
            return None
        self.stale = True
        return live_text_table(self.token_cache, net.text_table, targets, n_live, generator)

    def live_vectors(self, items: torch.Tensor, device: torch.device) -> torch.Tensor | None:
        """Sampled softmax: the text vectors of a batch's items, computed live while the encoder trains.

        Args:
            items: distinct item indices of the batch.
            device: where the vectors are needed.

        Returns:
            (len(items), dim) vectors that carry gradients into the encoder, or None when it is frozen (the
            cached table is used).
        """
        if self.token_cache is not None and self.token_cache.trains():
            self.stale = True
            return self.token_cache.encode(items).to(device)
        if self.encoder is None or not any(p.requires_grad for p in self.encoder.parameters()):
            return None
        assert self.tokens is not None
        self.stale = True
        tok = {k: v[items.cpu()].to(device) for k, v in self.tokens.items()}
        width = int(tok["attention_mask"].sum(1).max())
        return self.encoder(**{k: v[:, :width] for k, v in tok.items()})

    @torch.no_grad()
    def refresh(self, net: NextItemNet, device: torch.device) -> None:
        """After steps that trained the item encoder, re-embed the catalogue into the net's text table.

        Args:
            net: whose ``text_table`` scoring reads.
            device: where the tokenized texts are embedded (end-to-end fine-tuning).
        """
        if self.token_cache is not None and self.stale:
            net.text_table.copy_(self.token_cache.encode_all().to(net.text_table.device))
            self.stale = False
            return
        if self.encoder is None or not self.stale or self.tokens is None:
            return
        was_training = self.encoder.training
        self.encoder.eval()
        out = []
        for start in range(0, self.tokens["input_ids"].shape[0], self.batch_size):
            tok = {k: v[start:start + self.batch_size].to(device) for k, v in self.tokens.items()}
            width = int(tok["attention_mask"].sum(1).max())
            out.append(self.encoder(**{k: v[:, :width] for k, v in tok.items()}).float())
        net.text_table.copy_(torch.cat(out))
        self.encoder.train(was_training)
        self.stale = False
