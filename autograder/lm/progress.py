"""Progress for the command line: tqdm's bar on a terminal, plain lines elsewhere.

    bars = Bars()                                  # bars on stderr when it is a terminal
    with bars(1328, "epoch 1", "batches") as bar:
        for ...:
            bar.update(loss=5.21)
    # epoch 1:  32%|███▏      | 420/1328 [01:02<02:14, 6.80batches/s, loss=5.21]
    bars.log("| end of epoch ...")                 # clears the bar, prints the line, draws the bar again

On a terminal the bar is tqdm's, used the standard way: tqdm is the well-kept tool for
this (rate, ETA, terminal width, redrawing a bar around other output) and the one a
reader already knows. Without a terminal (a pipe, a file, a notebook, TERM=dumb) tqdm
would write carriage returns into the log, so nothing is drawn: a bar only logs one plain
line, at most once every `every` seconds ("| epoch 1 | 420/1328 batches | 01:02 elapsed |
ETA 02:14"), with tqdm's clock format, so a long pass is never silent in a log file.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from typing import Callable, TextIO

from tqdm import tqdm

clock = tqdm.format_interval   # 01:02, or 1:01:02 past an hour


def print_now(line: str) -> None:
    """print, flushed: progress lines show up at once even when stdout is a file or a pipe."""
    print(line, flush=True)


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def width(stream: TextIO) -> dict:
    """tqdm's size settings: follow the terminal as it is resized, unless it reports no size (a
    pseudo-terminal that no terminal emulator has sized): there tqdm counts -1 rows and draws nothing."""
    try:
        size = os.get_terminal_size(stream.fileno())
        if size.columns > 0 and size.lines > 0:
            return {"dynamic_ncols": True}
    except (AttributeError, ValueError, OSError):   # no fileno, or not a terminal
        pass
    fallback = shutil.get_terminal_size()   # $COLUMNS and $LINES, else 80 x 24
    return {"ncols": fallback.columns, "nrows": fallback.lines}


class Bars:
    """Makes Progress bars that share one stream and one log: a log line never lands inside a bar."""

    redraw = 0.1   # seconds between two drawings of a bar (tqdm's mininterval)

    def __init__(self, stream: TextIO | None = None, log: Callable[[str], None] = print_now,
                 every: float = 60.0, terminal: bool | None = None):
        self.stream = sys.stderr if stream is None else stream
        self.terminal = is_terminal(self.stream) if terminal is None else terminal
        self.every, self._log = every, log
        self.open: set[Progress] = set()   # bars drawn and not yet closed

    def __call__(self, total: int, desc: str, unit: str = "batches") -> "Progress":
        return Progress(self, total, desc, unit)

    def log(self, line: str) -> None:
        if self.terminal:
            with tqdm.external_write_mode(file=self.stream):   # wipes the bars, then draws them again
                self._log(line)
        else:
            self._log(line)

    def clear(self) -> None:
        """Closes any bar still open (before an error message, or on Ctrl-C)."""
        for bar in list(self.open):
            bar.close()


class Progress:
    """One pass of `total` steps; see Bars."""

    def __init__(self, bars: Bars, total: int, desc: str, unit: str):
        self.bars, self.total, self.desc, self.unit = bars, max(total, 1), desc, unit
        self.n, self.postfix = 0, ""
        self.start = self.last = time.perf_counter()
        self.bar = (tqdm(total=self.total, desc=desc, unit=unit, file=bars.stream, leave=False,
                         mininterval=bars.redraw, **width(bars.stream)) if bars.terminal else None)
        if self.bar is not None:
            bars.open.add(self)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1, **postfix: float) -> None:
        self.n += n
        if self.bar is not None:
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(n)
            return
        if postfix:
            self.postfix = " ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in postfix.items())
        now = time.perf_counter()
        if now - self.last >= self.bars.every:
            self.last = now
            self.bars.log(self.line(now))

    def line(self, now: float) -> str:
        elapsed = now - self.start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        eta = clock((self.total - self.n) / rate) if rate > 0 else "?"
        return (f"| {self.desc} | {self.n}/{self.total} {self.unit} | {clock(elapsed)} elapsed | ETA {eta}"
                + (f" | {self.postfix}" if self.postfix else ""))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bars.open.discard(self)


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
