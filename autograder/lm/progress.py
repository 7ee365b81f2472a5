"""Progress for the command line: a bar with elapsed time and ETA on a terminal, plain lines elsewhere.

    bars = Bars()                                  # bars on stderr when it is a terminal
    with bars(1328, "epoch 1", "batches") as bar:
        for ...:
            bar.update(loss=5.21)                   # |████▌     | 420/1328 batches [01:02<02:14, 6.8/s] loss 5.21
    bars.log("| end of epoch ...")                 # clears the bar first, then prints the line

Without a terminal (a pipe, a file, a notebook, TERM=dumb) nothing is drawn and no
carriage return is written: a bar only logs one plain line, at most once every
`every` seconds ("| epoch 1 | 420/1328 batches | 01:02 elapsed | ETA 02:14"), so a
long pass is never silent in a log file. A small class of our own instead of tqdm,
which the package would otherwise need only for this.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from typing import Callable, TextIO


def clock(seconds: float) -> str:
    """01:02, or 1:01:02 past an hour."""
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def print_now(line: str) -> None:
    """print, flushed: progress lines show up at once even when stdout is a file or a pipe."""
    print(line, flush=True)


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Bars:
    """Makes Progress bars that share one stream and one log: a log line never lands inside a bar."""

    def __init__(self, stream: TextIO | None = None, log: Callable[[str], None] = print_now,
                 every: float = 60.0, terminal: bool | None = None):
        self.stream = sys.stderr if stream is None else stream
        self.terminal = is_terminal(self.stream) if terminal is None else terminal
        self.every, self._log, self.drawn = every, log, False

    def __call__(self, total: int, desc: str, unit: str = "batches") -> "Progress":
        return Progress(self, total, desc, unit)

    def log(self, line: str) -> None:
        self.clear()
        self._log(line)

    def clear(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = False

    def draw(self, text: str) -> None:
        width = shutil.get_terminal_size().columns - 1
        self.stream.write("\r" + text[:width] + "\x1b[K")
        self.stream.flush()
        self.drawn = True


class Progress:
    """One pass of `total` steps; see Bars."""

    redraw = 0.1   # seconds between two drawings of the bar

    def __init__(self, bars: Bars, total: int, desc: str, unit: str):
        self.bars, self.total, self.desc, self.unit = bars, max(total, 1), desc, unit
        self.n, self.postfix = 0, ""
        self.start = self.last = time.perf_counter()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1, **postfix: float) -> None:
        self.n += n
        if postfix:
            self.postfix = " ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in postfix.items())
        now = time.perf_counter()
        if self.bars.terminal:
            if now - self.last >= self.redraw or self.n >= self.total:
                self.last = now
                self.bars.draw(self.bar(now))
        elif now - self.last >= self.bars.every:
            self.last = now
            self.bars.log(self.line(now))

    def times(self, now: float) -> tuple[str, str, float]:
        elapsed = now - self.start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        eta = clock((self.total - self.n) / rate) if rate > 0 else "?"
        return clock(elapsed), eta, rate

    def bar(self, now: float) -> str:
        elapsed, eta, rate = self.times(now)
        done = min(self.n / self.total, 1.0)
        cells = 20
        full, part = divmod(int(done * cells * 8), 8)
        body = "█" * full + (" ▏▎▍▌▋▊▉"[part] if full < cells else "")
        return (f"{self.desc} |{body:<{cells}}| {self.n}/{self.total} {self.unit} "
                f"[{elapsed}<{eta}, {rate:.1f}/s] {self.postfix}").rstrip()

    def line(self, now: float) -> str:
        elapsed, eta, _ = self.times(now)
        return (f"| {self.desc} | {self.n}/{self.total} {self.unit} | {elapsed} elapsed | ETA {eta}"
                + (f" | {self.postfix}" if self.postfix else ""))

    def close(self) -> None:
        if self.bars.terminal:
            self.bars.clear()


class NoBars:
    """What fit() uses when nobody asked for progress: no bars, no lines."""

    def __call__(self, total: int, desc: str, unit: str = "batches") -> "NoProgress":
        return NoProgress()


class NoProgress:
    def __enter__(self) -> "NoProgress":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def update(self, n: int = 1, **postfix: float) -> None:
        pass

    def close(self) -> None:
        pass
