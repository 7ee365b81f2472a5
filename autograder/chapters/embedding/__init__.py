"""Chapter 2, nn.Embedding: a vocabulary grown for new text (vocab.py), then lookups into an
embedding's weight, their gradient and max_norm, by hand (lookup.py)."""
from .lookup import (check_embedding_grad, check_embedding_lookup, check_embedding_max_norm,
                     check_embedding_one_hot)
from .vocab import check_encode, check_extend_vocab

ASSIGNMENT = "02-embedding"
__all__ = ["check_embedding_grad", "check_embedding_lookup", "check_embedding_max_norm",
           "check_embedding_one_hot", "check_encode", "check_extend_vocab"]
