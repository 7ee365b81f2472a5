"""Chapter 2, nn.Embedding: a vocabulary grown for new text and a batch of sentences encoded
and padded (vocab.py), then bags of an embedding's rows, by indexing and by a matrix product,
and the gradient of its weight, by hand (lookup.py)."""
from .lookup import check_embedding_bag, check_embedding_bag_matrix, check_embedding_grad
from .vocab import check_encode_batch, check_extend_vocab

ASSIGNMENT = "02-embedding"
__all__ = ["check_embedding_bag", "check_embedding_bag_matrix", "check_embedding_grad",
           "check_encode_batch", "check_extend_vocab"]
