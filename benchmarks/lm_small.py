"""How fast a configuration (default `small`) learns Penn Treebank on this machine.

    .venv/bin/python benchmarks/lm_small.py [--config small] [--time-budget 360] [--eval-every 200]
        [--threads N]

Trains the configuration (autograder/lm/configs.py) with a wall-clock budget of training seconds,
evaluating the whole validation split every `--eval-every` batches (evaluation
time is not counted as training time). Prints the training tokens/s, the
training seconds at which validation perplexity first fell below 200, and the
best validation and the test perplexity of the best model.
"""
from __future__ import annotations

import argparse
import time

import torch

from rnn_by_hand.lm import CONFIGS, Corpus, fit
from rnn_by_hand.lm.train import print_now


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="small", help="a configuration of configs.py (default small)")
    p.add_argument("--time-budget", type=float, default=360.0, help="seconds of training (default 360)")
    p.add_argument("--eval-every", type=int, default=200, help="batches between validation points (default 200)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--target", type=float, default=200.0, help="validation perplexity to reach (default 200)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.config not in CONFIGS:
        p.error(f"no configuration {args.config!r}; known: {', '.join(sorted(CONFIGS))}")
    config = CONFIGS[args.config].with_(time_budget=args.time_budget, eval_every=args.eval_every, device="cpu")
    corpus = Corpus.penn()
    started = time.perf_counter()
    _, history = fit(config, corpus, log=print_now)
    wall = time.perf_counter() - started

    tokens = sum(row["tokens_per_s"] * row["seconds"] for row in history.epochs)
    seconds = sum(row["seconds"] for row in history.epochs)
    reached = next((t for t, ppl in history.curve if ppl < args.target), None)
    print()
    print(f"config small: {config}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"training tokens/s              {tokens / seconds:10.0f}")
    print(f"training seconds               {seconds:10.1f}  ({len(history.epochs)} epoch(s) started, "
          f"wall clock with evaluation {wall:.0f} s)")
    print("valid ppl curve (train s, ppl) " + ", ".join(f"({t:.0f}, {ppl:.1f})" for t, ppl in history.curve))
    print(f"seconds to valid ppl < {args.target:g}   " + (f"{reached:10.1f}" if reached is not None else "not reached"))
    print(f"best valid ppl                 {history.best_valid_ppl:10.2f}")
    print(f"test ppl                       {history.test_ppl:10.2f}")


if __name__ == "__main__":
    main()
