"""Training with truncated backpropagation through time.

The training split is cut into `batch_size` columns (data.batchify) and walked
down in windows of `bptt` rows (data.get_batch). The hidden state at the end of
one window is the start of the next, so each column is read as one long text;
it is detached between windows, so gradients flow back at most `bptt` steps:

    window 0          window 1          window 2
    x0 .. x34   h ->  x35 .. x69   h -> x70 .. x104 ...
    <-backprop--|     <-backprop--|     (detach at each |)
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .configs import Config
from .data import Corpus, batchify, check_fits, get_batch
from .evaluate import cross_entropy
from .model import RNNModel
from .precision import autocast, training_precision
from .progress import NoBars, print_now


def repackage_hidden(hidden):
    """The same state values cut from the graph of the window that made them (a tensor,
    or a tuple for the LSTM). Without it the graph grows across windows, and the second
    backward() fails with "Trying to backward through the graph a second time"."""
    if isinstance(hidden, torch.Tensor):
        return hidden.detach()
    return tuple(repackage_hidden(h) for h in hidden)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}: choose auto, cpu or cuda")
    return torch.device(name)


def build_model(config: Config, ntoken: int, train_ids: torch.Tensor | None = None) -> RNNModel:
    """The configuration's model; with the adaptive decoder, train_ids ranks its words
    by frequency (a checkpoint brings its own ranks)."""
    model = RNNModel(config.model, ntoken, config.emsize, config.nhid, config.nlayers, config.dropout,
                     config.tied, config.decoder, config.cutoffs, config.div_value)
    if model.adaptive and train_ids is not None:
        model.set_frequencies(train_ids)
    return model


@dataclass
class History:
    """What fit() measured: one row per epoch, the validation curve, the test result."""
    epochs: list[dict] = field(default_factory=list)
    curve: list[tuple[float, float]] = field(default_factory=list)   # (training seconds, valid ppl)
    tokens_curve: list[tuple[int, float]] = field(default_factory=list)  # (training tokens, valid ppl)
    test_ppl: float | None = None
    best_valid_ppl: float = math.inf
    stopped_by_budget: bool = False


class Clock:
    """Training seconds (evaluation excluded) and tokens, and the budgets on them."""

    def __init__(self, budget: float | None, max_tokens: int | None = None):
        self.budget, self.spent, self.started = budget, 0.0, None
        self.max_tokens, self.tokens = max_tokens, 0

    def start(self):
        self.started = time.perf_counter()

    def stop(self):
        self.spent += time.perf_counter() - self.started
        self.started = None

    def now(self) -> float:
        return self.spent + (time.perf_counter() - self.started if self.started else 0.0)

    def out(self) -> bool:
        return (self.budget is not None and self.now() >= self.budget) or \
            (self.max_tokens is not None and self.tokens >= self.max_tokens)


def train_epoch(model, train_data, optimizer, config: Config, clock: Clock, log: Callable,
                epoch: int, on_interval: Callable | None = None, bars=None,
                precision: str = "float32") -> tuple[float, int, bool]:
    """One pass over train_data (rows, batch). Returns (mean loss, tokens, stopped early).

    precision (from precision.training_precision): "bfloat16" runs each forward pass
    under autocast; the weights and the optimizer stay float32.

    bars (progress.Bars) draws a bar over the batches this epoch will run: all of them,
    or fewer when the token budget ends it sooner."""
    model.train()
    hidden = model.init_hidden(config.batch_size)
    total_loss, total_tokens, interval_loss, interval_tokens = 0.0, 0, 0.0, 0
    batches = math.ceil((train_data.size(0) - 1) / config.bptt)
    expected = batches
    if config.max_tokens is not None:
        expected = min(batches, math.ceil((config.max_tokens - clock.tokens) / (config.bptt * config.batch_size)))
    bar = (bars or NoBars())(expected, f"epoch {epoch}", "batches")
    interval_start = clock.now()
    clock.start()
    for batch, i in enumerate(range(0, train_data.size(0) - 1, config.bptt), start=1):
        inputs, targets = get_batch(train_data, i, config.bptt)   # (seq_len, N), (seq_len * N,)
        hidden = repackage_hidden(hidden)
        optimizer.zero_grad(set_to_none=True)
        with autocast(precision, inputs.device):
            loss, hidden = model.loss(inputs, hidden, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()
        # Token-weighted sums: the last window of the epoch is shorter than the rest.
        tokens, value = targets.numel(), loss.item()
        clock.tokens += tokens
        total_loss += value * tokens
        total_tokens += tokens
        interval_loss += value * tokens
        interval_tokens += tokens
        bar.update(loss=value)
        if batch % config.log_interval == 0 or batch == batches:
            seconds = clock.now() - interval_start
            mean = interval_loss / interval_tokens
            # 88 characters wide, so that the line fits a terminal and the book's column
            log(f"| epoch {epoch:2d} | {batch:5d}/{batches:5d} batches | lr {optimizer.param_groups[0]['lr']:5.3g} "
                f"| {interval_tokens / seconds:6.0f} tokens/s | loss {mean:5.2f} | ppl {math.exp(mean):7.2f}")
            interval_loss, interval_tokens, interval_start = 0.0, 0, clock.now()
        if on_interval and config.eval_every and batch % config.eval_every == 0:
            clock.stop()
            on_interval()
            model.train()
            clock.start()
        if clock.out():
            break
    clock.stop()
    bar.close()
    return total_loss / total_tokens, total_tokens, clock.out()


def next_lr(lr: float, config: Config, epoch: int, valid_loss: float, best_loss: float) -> float:
    """The classic SGD schedules: divide after a fixed epoch, or when validation stalls."""
    if config.schedule == "step" and epoch >= config.decay_start:
        return lr / config.lr_decay
    if config.schedule == "plateau" and valid_loss >= best_loss:
        return lr / config.lr_decay
    return lr


def evaluate_split(model, split: str, source: torch.Tensor, bptt: int, bars=None,
                   log: Callable = print_now) -> float:
    """cross_entropy of one split (rows, batch); with bars (progress.Bars), a line that it
    starts and a bar over its windows."""
    if bars is None:
        return cross_entropy(model, source, bptt)
    windows = math.ceil((source.size(0) - 1) / bptt)
    log(f"| evaluating {split}: {windows} windows of up to {bptt} x {source.size(1)} tokens")
    with bars(windows, split, "windows") as bar:
        return cross_entropy(model, source, bptt, on_window=bar.update)


def fit(config: Config, corpus: Corpus, save: str | Path | None = None, log: Callable = print_now,
        model: RNNModel | None = None, bars=None) -> tuple[RNNModel, History]:
    """Train on corpus.train, keep the best model by validation loss, report test perplexity.

    bars (a progress.Bars, as the command line passes): progress bars with ETA for
    training and evaluation, and a line when an evaluation starts; log should then be
    bars.log, so that no line is printed into a bar."""
    if config.epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {config.epochs}")
    check_fits(corpus, config.batch_size, config.eval_batch_size)
    torch.manual_seed(config.seed)
    device = pick_device(config.device)
    ntoken = len(corpus.dictionary)
    model = (model or build_model(config, ntoken, corpus.train)).to(device)
    precision, why = training_precision(config.precision, device)
    if why:
        log(why)
    train_data = batchify(corpus.train, config.batch_size).to(device)          # (rows, batch)
    valid_data = batchify(corpus.valid, config.eval_batch_size).to(device)
    test_data = batchify(corpus.test, config.eval_batch_size).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
    history, clock = History(), Clock(config.time_budget, config.max_tokens)
    best_loss, best_state = math.inf, None

    def valid_point():
        ppl = math.exp(evaluate_split(model, "valid", valid_data, config.bptt, bars, log))
        history.curve.append((clock.now(), ppl))
        history.tokens_curve.append((clock.tokens, ppl))

    for epoch in range(1, config.epochs + 1):
        seconds_before = clock.now()
        train_loss, tokens, out_of_time = train_epoch(model, train_data, optimizer, config, clock, log, epoch,
                                                      valid_point, bars, precision)
        seconds = clock.now() - seconds_before
        valid_loss = evaluate_split(model, "valid", valid_data, config.bptt, bars, log)
        history.curve.append((clock.now(), math.exp(valid_loss)))
        history.tokens_curve.append((clock.tokens, math.exp(valid_loss)))
        history.epochs.append(dict(epoch=epoch, train_loss=train_loss, valid_ppl=math.exp(valid_loss),
                                   seconds=seconds, tokens_per_s=tokens / seconds,
                                   lr=optimizer.param_groups[0]["lr"]))
        log(f"| end of epoch {epoch:2d} | train loss {train_loss:5.2f} | valid ppl {math.exp(valid_loss):7.2f} "
            f"| {seconds:6.0f} s | {tokens / seconds:6.0f} tokens/s")
        for group in optimizer.param_groups:
            group["lr"] = next_lr(group["lr"], config, epoch, valid_loss, best_loss)
        if valid_loss < best_loss:
            best_loss = valid_loss
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if save:
                save_checkpoint(save, model, config, corpus)
        if out_of_time:
            history.stopped_by_budget = True
            spent = (f"token budget of {config.max_tokens:,}" if config.max_tokens is not None
                     and clock.tokens >= config.max_tokens else f"time budget of {config.time_budget:g} s")
            log(f"| {spent} reached during epoch {epoch}")
            break
    model.load_state_dict(best_state)
    history.best_valid_ppl = math.exp(best_loss)
    history.test_ppl = math.exp(evaluate_split(model, "test", test_data, config.bptt, bars, log))
    log(f"| end of training | best valid ppl {history.best_valid_ppl:8.2f} | test ppl {history.test_ppl:8.2f}")
    return model, history


def save_checkpoint(path: str | Path, model: RNNModel, config: Config, corpus: Corpus) -> None:
    """Weights, the configuration that built them and the vocabulary, in one file."""
    torch.save({"config": asdict(config), "state_dict": model.state_dict(),
                "vocabulary": corpus.dictionary.idx2word}, path)


def check_checkpoint_path(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"checkpoint {path} is a folder, not a checkpoint file")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return path


def check_save_path(path: str | Path) -> Path:
    """Where --save will write, checked before training rather than at the first checkpoint."""
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"--save {path} is a folder; give the file to write, such as {path / 'lm.pt'}")
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"--save {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"--save {path}: the folder {folder} is not writable")
    return path


def load_checkpoint(path: str | Path, device: str = "auto") -> tuple[RNNModel, Config, list[str]]:
    path = check_checkpoint_path(path)
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        config = Config(**saved["config"])
        model = build_model(config, len(saved["vocabulary"]))
        model.load_state_dict(saved["state_dict"])
    except Exception as error:  # any failure here means: not one of our checkpoints (re-raised, so no BLE001)
        first = (str(error).strip().splitlines() or [""])[0].split(". ")[0]
        reason = f"{type(error).__name__}: {first}" if first else type(error).__name__
        raise ValueError(f"{path} is not a checkpoint written by rnn_by_hand.lm --save ({reason})") from error
    # No flatten_parameters() here: load_state_dict copies into the existing Parameters,
    # and .to() goes through RNNBase._apply, which ends in _init_flat_weights() and so in
    # flatten_parameters() (torch 2.13, nn/modules/rnn.py). A Parameter replaced later
    # is caught by the _update_flat_weights() at the start of every forward.
    model.to(pick_device(device))
    return model, config, saved["vocabulary"]
