"""A language-model configuration against pytorch/examples' defaults, side by side on one CPU.

    .venv/bin/python benchmarks/lm_side_by_side.py [--config small] [--baseline examples]
        [--tokens 930000] [--config-tokens N] [--eval-every 400] [--rounds 2] [--data FOLDER]

Both are trained by this course's own trainer (rnn_by_hand.lm.fit); the baseline,
CONFIGS["examples"], has the defaults of pytorch/examples' word_language_model (2 x 200
LSTM, untied, dropout 0.2, SGD lr 20, clip 0.25, bptt 35, batch 20); nothing of theirs is
copied. Each round starts both at the same moment, each pinned to a core of its own with
one thread, for a budget of training tokens (work, not seconds, so a busy machine
changes the speeds but not what is trained); the next round swaps the cores. Validation
perplexity is measured every --eval-every batches, against training tokens seen.

Printed: each round's training tokens/s; the median over rounds; each model's validation
curve (tokens, perplexity) from the first round; and the derived ratios, which hold as long
as both shared the machine alike:

    speed            ours tokens/s / baseline tokens/s
    time to ppl T    (tokens to T / tokens/s), and baseline's / ours
    ppl at the baseline's one-epoch time   ours' curve read at the tokens it trains in
                                            the time the baseline takes for one epoch

A full comparison on Penn Treebank takes one epoch of the baseline per round (about
930,000 tokens); --tokens and --data shrink it for a trial. --config-tokens gives the
measured configuration a budget of its own (default: --tokens), so that a faster one
can train for about as long as the baseline's epoch and its curve reach that time.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path


def worker(args) -> None:
    """One trainer, pinned to one core with one thread: prints its measurements as JSON."""
    os.sched_setaffinity(0, {args.core})
    import torch

    from rnn_by_hand.lm import CONFIGS, Corpus, fit
    torch.set_num_threads(1)
    corpus = Corpus.from_folder(args.data) if args.data else Corpus.penn()
    # the token budget ends training, not the configuration's number of epochs
    config = CONFIGS[args.worker].with_(max_tokens=args.tokens, eval_every=args.eval_every, device="cpu",
                                        log_interval=10**9, epochs=10**6)
    _, history = fit(config, corpus, log=lambda *_: None)
    curve = [point for i, point in enumerate(history.tokens_curve)
             if i == 0 or point != history.tokens_curve[i - 1]]  # an epoch's end can repeat a point
    seconds = sum(row["seconds"] for row in history.epochs)
    tokens = sum(row["tokens_per_s"] * row["seconds"] for row in history.epochs)
    print(json.dumps({"config": args.worker, "core": args.core, "tokens_per_s": tokens / seconds,
                      "curve": curve, "epoch_tokens": int(corpus.train.numel()),
                      "test_ppl": history.test_ppl}))


def run_round(names: list[str], cores: list[int], args) -> dict[str, dict]:
    """Both trainers at once, each on its core; their JSON results by configuration."""
    budget = {args.config: args.config_tokens or args.tokens, args.baseline: args.tokens}
    common = ["--eval-every", str(args.eval_every)] + (["--data", str(args.data)] if args.data else [])
    environment = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    running = [subprocess.Popen([sys.executable, __file__, "--worker", name, "--core", str(core),
                                 "--tokens", str(budget[name]), *common],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
               for name, core in zip(names, cores)]
    results = {}
    for name, process in zip(names, running):
        out, err = process.communicate()
        if process.returncode:
            last = err.strip().splitlines()[-1] if err.strip() else f"exit status {process.returncode}"
            sys.exit(f"the {name} trainer failed: {last}")
        results[name] = json.loads(out.strip().splitlines()[-1])
    return results


def tokens_to(curve: list[list[float]], target: float) -> float | None:
    """Training tokens at which the validation curve first reaches `target`, interpolated."""
    previous = (0.0, float("inf"))
    for tokens, ppl in curve:
        if ppl <= target:
            t0, p0 = previous
            if p0 == float("inf"):
                return tokens
            return t0 + (tokens - t0) * (p0 - target) / (p0 - ppl)
        previous = (tokens, ppl)
    return None


def ppl_at(curve: list[list[float]], tokens: float) -> float | None:
    """The curve's perplexity after `tokens` training tokens, interpolated; None past its end."""
    for (t0, p0), (t1, p1) in zip(curve, curve[1:]):
        if t0 <= tokens <= t1:
            return p0 + (p1 - p0) * (tokens - t0) / (t1 - t0) if t1 > t0 else p1
    return curve[-1][1] if curve and tokens <= curve[-1][0] else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="small", help="the configuration measured (default small)")
    p.add_argument("--baseline", default="examples", help="what it is measured against (default examples)")
    p.add_argument("--tokens", type=int, default=930_000, help="training tokens per trainer and round")
    p.add_argument("--config-tokens", type=int, help="the measured configuration's own budget (default --tokens)")
    p.add_argument("--eval-every", type=int, default=400, help="batches between validation points")
    p.add_argument("--rounds", type=int, default=2, help="rounds; each swaps the cores (default 2)")
    p.add_argument("--target", type=float, default=200.0, help="validation perplexity to reach (default 200)")
    p.add_argument("--data", type=Path, help="a corpus folder (train/valid/test.txt) instead of Penn Treebank")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--core", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    from rnn_by_hand.lm import CONFIGS
    for name in (args.config, args.baseline):
        if name not in CONFIGS:
            p.error(f"no configuration {name!r}; known: {', '.join(sorted(CONFIGS))}")
    if min(args.tokens, args.rounds, args.eval_every, args.config_tokens or 1) < 1:
        p.error("--tokens, --config-tokens, --rounds and --eval-every must be at least 1")
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        p.error(f"two cores are needed to run both at once; this process may use {len(cores)}")

    names = [args.config, args.baseline]
    rounds = []
    for index in range(args.rounds):
        pair = cores[:2] if index % 2 == 0 else cores[1::-1]
        result = run_round(names, pair, args)
        rounds.append(result)
        print(f"round {index + 1}: " + ", ".join(f"{name} on core {result[name]['core']} "
                                                 f"{result[name]['tokens_per_s']:.0f} tokens/s" for name in names),
              flush=True)

    speed = {name: statistics.median(r[name]["tokens_per_s"] for r in rounds) for name in names}
    first = rounds[0]
    ours, base = args.config, args.baseline
    print(f"\nmedian training tokens/s over {args.rounds} round(s), one thread each, cores swapped:")
    for name in names:
        curve = ", ".join(f"({int(t):,}, {ppl:.1f})" for t, ppl in first[name]["curve"])
        print(f"  {name:10s} {speed[name]:8.0f}   valid ppl (tokens, ppl): {curve}")
    print(f"speed ratio {ours}/{base}: {speed[ours] / speed[base]:.2f}")
    times = {}
    for name in names:
        reached = tokens_to(first[name]["curve"], args.target)
        times[name] = None if reached is None else reached / speed[name]
        print(f"  {name:10s} reaches valid ppl {args.target:g} after "
              + ("(not within the budget)" if reached is None else
                 f"{reached:,.0f} tokens, {times[name]:.0f} s of training at its median speed"))
    if times[ours] and times[base]:
        print(f"time to valid ppl {args.target:g}: {base} takes {times[base] / times[ours]:.2f} "
              f"times as long as {ours}")
    epoch_seconds = first[base]["epoch_tokens"] / speed[base]
    at = ppl_at(first[ours]["curve"], epoch_seconds * speed[ours])
    print(f"{ours} at the time {base} needs for one epoch ({epoch_seconds:.0f} s): "
          + (f"valid ppl {at:.1f}" if at is not None else "past the budget of this run"))


if __name__ == "__main__":
    main()
