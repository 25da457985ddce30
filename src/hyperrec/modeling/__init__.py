"""Language-model recommenders: item encoder, next-item model, bi-encoder, cross-encoder."""
