"""The book's diagrams, drawn with matplotlib when the pages are built, one function a figure.

Why matplotlib and not graphviz: the pictures that matter most are the insides of cells
(gates, elementwise products, the two biases, where the reset gate acts), which need
exact placement that graphviz's automatic layout does not give; the pipelines and
unrolled chains are short rows of boxes that are as easy to place by hand. matplotlib
is already a dependency of the book, works offline and needs no system package, and
its SVG output turns text into paths, so the pictures look the same on every machine
and load no font and no JavaScript.

A page shows a diagram from a code cell tagged `remove-input`, with the caption, the
label (`name`) and the alt text in the cell's `mystnb` metadata:

    from _diagrams import elman_step
    elman_step()

Each function returns an `IPython.display.SVG`. Coordinates are in inches (one axes
unit is one inch of the figure), so a 12-point label is 12/72 inch tall wherever it is
placed. Figures are at most 7.2 inches wide, the width of the text column, so they
are shown at their own size and no font is below 10 points.

The execution cache (jupyter-cache) keys on a page's code cells only, not on this file:
`dev.py book` keeps a digest of this file beside the build and executes every page again
when it changes, so no page keeps an old picture.
"""
from __future__ import annotations

import io

import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle

FONT = 12  # points: labels
SMALL = 10.5  # points: shapes and parameter names, never smaller
MONO = "DejaVu Sans Mono"

# One colour per role, the same on every page.
INPUT = "#dbe9f6"  # x_t, inputs
STATE = "#fde2c4"  # h, c: states
WEIGHT = "#e8e8e8"  # affine maps (a matrix product and its bias)
GATE = "#d9f0d3"  # sigmoid gates
CAND = "#f6d5e5"  # tanh candidates
OUTPUT = "#fff3b0"  # output, h_n
GRAD = "#c0392b"  # gradients, differences
EDGE = "#333333"


class Canvas:
    """A figure whose data coordinates are inches, with boxes, arrows and operators."""

    def __init__(self, width: float, height: float):
        self.fig = plt.figure(figsize=(width, height))
        self.fig.patch.set_facecolor("white")  # readable on the dark theme too
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.set_aspect("equal")
        self.ax.axis("off")

    def text(self, x, y, s, size=FONT, mono=False, **kwargs):
        kwargs.setdefault("ha", "center")
        kwargs.setdefault("va", "center")
        if mono:
            kwargs["family"] = MONO
        return self.ax.text(x, y, s, fontsize=size, zorder=5, **kwargs)

    def box(self, x, y, w, h, s="", color=WEIGHT, size=FONT, mono=False, edge=EDGE, lw=1.2,
            round_=0.06, ls="-", **kwargs):
        """A box centred at (x, y)."""
        self.ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                         boxstyle=f"round,pad=0,rounding_size={round_}",
                                         facecolor=color, edgecolor=edge, lw=lw, ls=ls, zorder=3,
                                         **kwargs))
        if s:
            self.text(x, y, s, size=size, mono=mono)

    def cell(self, x, y, w, h, s="", color="white", size=SMALL, mono=False, edge=EDGE, lw=1.0,
             hatch=None, ls="-"):
        """A square grid cell with its lower left corner at (x, y)."""
        self.ax.add_patch(Rectangle((x, y), w, h, facecolor=color, edgecolor=edge, lw=lw,
                                    zorder=3, hatch=hatch, ls=ls))
        if s:
            self.text(x + w / 2, y + h / 2, s, size=size, mono=mono)

    def op(self, x, y, s, r=0.17, color="white", size=FONT):
        """An elementwise operation in a circle: +, the product, sigma, tanh."""
        self.ax.add_patch(Circle((x, y), r, facecolor=color, edgecolor=EDGE, lw=1.2, zorder=3))
        self.text(x, y, s, size=size)

    def arrow(self, start, end, color=EDGE, lw=1.4, style="-|>", ls="-", rad=0.0,
              shrink=(0, 0), head=12, zorder=2):
        self.ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=head,
                                          color=color, lw=lw, ls=ls, zorder=zorder,
                                          shrinkA=shrink[0], shrinkB=shrink[1],
                                          connectionstyle=f"arc3,rad={rad}"))

    def path(self, points, color=EDGE, lw=1.4, ls="-", head=True):
        """A polyline through points, with an arrow head on its last segment."""
        for a, b in zip(points[:-2], points[1:-1]):
            self.ax.plot([a[0], b[0]], [a[1], b[1]], color=color, lw=lw, ls=ls, zorder=2,
                         solid_capstyle="butt")
        self.arrow(points[-2], points[-1], color=color, lw=lw, ls=ls,
                   style="-|>" if head else "-")

    def show(self):
        buffer = io.StringIO()
        with mpl.rc_context({"svg.hashsalt": "rnn-book", "svg.fonttype": "path"}):
            self.fig.savefig(buffer, format="svg", metadata={"Date": None})
        plt.close(self.fig)
        from IPython.display import SVG
        return SVG(buffer.getvalue())


# Chapter 1 -----------------------------------------------------------------------------

def elman_step():
    """One step of nn.RNN: two affine maps, their sum, tanh; shapes on every arrow."""
    d = Canvas(7.2, 3.3)
    top, bottom = 2.35, 0.85
    d.text(0.55, top + 0.18, "$h_{t-1}$")
    d.text(0.55, top - 0.18, "(N, H)", size=SMALL, mono=True)
    d.text(0.55, bottom + 0.18, "$x_t$")
    d.text(0.55, bottom - 0.18, "(N, H_in)", size=SMALL, mono=True)
    for y, matrix, w_name, b_name in (
            (top, r"$W_{hh}\,h_{t-1} + b_{hh}$", "weight_hh_l0 (H, H)", "bias_hh_l0 (H,)"),
            (bottom, r"$W_{ih}\,x_t + b_{ih}$", "weight_ih_l0 (H, H_in)", "bias_ih_l0 (H,)")):
        d.box(2.75, y, 2.0, 0.5, matrix)
        d.text(2.75, y - 0.45, w_name, size=SMALL, mono=True)
        d.text(2.75, y - 0.70, b_name, size=SMALL, mono=True)
        d.arrow((1.2, y), (1.75, y))
    plus = (4.45, top)
    d.op(*plus, "+")
    d.arrow((3.75, top), (plus[0] - 0.17, top))
    d.text(4.05, top + 0.2, "(N, H)", size=SMALL, mono=True)
    d.path([(3.75, bottom), (plus[0], bottom), (plus[0], top - 0.17)])
    d.text(4.1, bottom + 0.2, "(N, H)", size=SMALL, mono=True)
    d.box(5.3, top, 0.75, 0.45, "tanh", color=CAND)
    d.arrow((plus[0] + 0.17, top), (4.92, top))
    d.arrow((5.68, top), (6.45, top))
    d.text(6.8, top + 0.18, "$h_t$")
    d.text(6.8, top - 0.18, "(N, H)", size=SMALL, mono=True)
    d.text(6.8, top - 0.5, "to step t+1", size=SMALL)
    d.arrow((6.05, top), (6.05, 2.95))
    d.text(6.05, 3.12, "output[t-1]", size=SMALL, mono=True)
    return d.show()


def unrolled():
    """The recurrence over L steps: one cell per step, the same four parameters in each."""
    d = Canvas(7.2, 3.7)
    y = 1.85
    xs = [1.55, 3.15, 5.35]
    names = ["step 1", "step 2", "step L"]
    d.text(0.4, y + 0.2, "$h_0$")
    d.text(0.4, y - 0.2, "(1, N, H)", size=SMALL, mono=True)
    for x, name, t in zip(xs, names, ("1", "2", "L")):
        d.box(x, y, 0.95, 0.62, name, color=WEIGHT)
        d.arrow((x, 0.72), (x, y - 0.31))
        d.text(x, 0.52, f"$x_{t}$ = input[{'L-1' if t == 'L' else int(t) - 1}]", size=SMALL)
        d.arrow((x, y + 0.31), (x, 2.98))
        d.text(x, 3.2, f"output[{'L-1' if t == 'L' else int(t) - 1}] = $h_{t}$", size=SMALL)
    d.text(xs[0], 0.27, "(N, H_in)", size=SMALL, mono=True)
    d.text(xs[0], 3.45, "(N, H)", size=SMALL, mono=True)
    d.arrow((0.78, y), (xs[0] - 0.48, y))
    d.arrow((xs[0] + 0.48, y), (xs[1] - 0.48, y))
    d.text((xs[0] + xs[1]) / 2, y + 0.2, "$h_1$")
    d.text((xs[0] + xs[1]) / 2, y - 0.2, "(N, H)", size=SMALL, mono=True)
    d.arrow((xs[1] + 0.48, y), (3.95, y))
    d.text(4.25, y, "...", size=FONT)
    d.arrow((4.55, y), (xs[2] - 0.48, y))
    d.text(4.5, y + 0.25, "$h_{L-1}$")
    d.arrow((xs[2] + 0.48, y), (6.3, y))
    d.text(6.75, y + 0.2, "h_n = $h_L$", size=FONT)
    d.text(6.75, y - 0.2, "(1, N, H)", size=SMALL, mono=True)
    return d.show()


# Chapter 3 -----------------------------------------------------------------------------

def _grid(d, x0, y0, rows, cols, size, label, color=INPUT, highlight=None, hl_color=OUTPUT):
    """rows x cols cells from the top left corner (x0, y0); label(r, c) names each cell."""
    for r in range(rows):
        for c in range(cols):
            fill = hl_color if highlight and highlight(r, c) else color
            d.cell(x0 + c * size, y0 - (r + 1) * size, size, size, label(r, c), color=fill)


def layouts():
    """The same batch in both layouts, and h_0/h_n, whose layout batch_first does not change."""
    d = Canvas(7.2, 4.1)
    s = 0.44
    names = "abc"  # three sequences of four steps
    # time-major
    x0, y0 = 0.7, 3.25
    d.text(x0 + 1.5 * s, 3.85, "default: (L, N, H_in)", size=SMALL, mono=True)
    _grid(d, x0, y0, 4, 3, s, lambda r, c: f"${names[c]}_{r + 1}$",
          highlight=lambda r, c: r == 1)
    for r in range(4):
        d.text(x0 - 0.35, y0 - (r + 0.5) * s, f"t={r}", size=SMALL, mono=True)
    for c in range(3):
        d.text(x0 + (c + 0.5) * s, y0 + 0.17, f"n={c}", size=SMALL, mono=True)
    d.text(x0 + 1.5 * s, y0 - 4 * s - 0.3, "input[1]: step 2", size=SMALL)
    d.text(x0 + 1.5 * s, y0 - 4 * s - 0.58, "of every sequence", size=SMALL)
    # batch_first
    x1 = 2.8
    d.text(x1 + 2 * s, 3.85, "batch_first: (N, L, H_in)", size=SMALL, mono=True)
    _grid(d, x1, y0, 3, 4, s, lambda r, c: f"${names[r]}_{c + 1}$",
          highlight=lambda r, c: c == 1)
    for r in range(3):
        d.text(x1 - 0.35, y0 - (r + 0.5) * s, f"n={r}", size=SMALL, mono=True)
    for c in range(4):
        d.text(x1 + (c + 0.5) * s, y0 + 0.17, f"t={c}", size=SMALL, mono=True)
    d.text(x1 + 2 * s, y0 - 3 * s - 0.3, "input[:, 1]: the same", size=SMALL)
    d.text(x1 + 2 * s, y0 - 3 * s - 0.58, "numbers", size=SMALL)
    # h_0 / h_n
    x2 = 5.55
    d.text(x2 + 1.5 * s - 0.15, 3.85, "h_0, h_n: always", size=SMALL, mono=True)
    d.text(x2 + 1.5 * s - 0.15, 3.55, "(num_layers*D, N, H)", size=SMALL, mono=True)
    _grid(d, x2, y0, 2, 3, s, lambda r, c: f"${names[c]}$", color=STATE)
    for r, name in enumerate(("layer 0", "layer 1")):
        d.text(x2 - 0.1, y0 - (r + 0.5) * s, name, size=SMALL, ha="right")
    d.text(x2 + 1.5 * s, y0 - 2 * s - 0.3, "one final state per", size=SMALL)
    d.text(x2 + 1.5 * s, y0 - 2 * s - 0.58, "layer and sequence", size=SMALL)
    d.text(3.6, 0.25, "Each cell is one vector of H_in features (of H for h_0, h_n); output has the"
           "\ninput's layout with D*H features: the top layer's state at every step.",
           size=SMALL)
    return d.show()


def stacked():
    """A two-layer stack over L steps: output is the top layer, h_n[k] the end of layer k."""
    d = Canvas(7.2, 4.3)
    xs = [1.6, 3.1, 5.1]
    ts = ["0", "1", "L-1"]
    ys = [1.75, 3.0]
    for k, y in enumerate(ys):
        d.text(0.45, y, f"h_0[{k}]", size=SMALL, mono=True)
        d.arrow((0.85, y), (xs[0] - 0.45, y))
        for x in xs:
            d.box(x, y, 0.9, 0.5, f"layer {k}", size=SMALL)
        d.arrow((xs[0] + 0.45, y), (xs[1] - 0.45, y))
        d.arrow((xs[1] + 0.45, y), (3.9, y))
        d.text(4.2, y, "...")
        d.arrow((4.45, y), (xs[2] - 0.45, y))
        d.arrow((xs[2] + 0.45, y), (6.05, y))
        d.box(6.5, y, 0.8, 0.42, f"h_n[{k}]", color=OUTPUT, size=SMALL, mono=True)
    for x, t in zip(xs, ts):
        d.arrow((x, 0.9), (x, ys[0] - 0.25))
        d.text(x, 0.72, f"input[{t}]", size=SMALL, mono=True)
        d.arrow((x, ys[0] + 0.25), (x, ys[1] - 0.25))
        d.arrow((x, ys[1] + 0.25), (x, 3.65))
        d.box(x, 3.9, 1.2, 0.42, f"output[{t}]", color=OUTPUT, size=SMALL, mono=True)
    d.text(4.1, 2.38, "layer 1 reads\nlayer 0's states", size=SMALL, style="italic")
    d.text(3.6, 0.25, "output: (L, N, H), the top layer only      h_n: (num_layers, N, H)",
           size=SMALL, mono=True)
    return d.show()


def bidirectional():
    """One bidirectional layer: where output's halves and h_n's two rows come from."""
    d = Canvas(7.2, 4.5)
    xs = [1.7, 3.2, 5.3]
    ts = ["0", "1", "L-1"]
    steps = ["1", "2", "L"]
    y, w, h = 1.75, 1.0, 0.9  # the boxes: one per step, forward half left, backward right
    up, down = y + 0.22, y - 0.22  # the forward chain runs above, the backward one below
    fcol, bcol = "#cfe3f7", "#fbd9b8"
    for x, t, step in zip(xs, ts, steps):
        d.cell(x - w / 2, y - h / 2, w / 2, h, "", color=fcol)
        d.cell(x, y - h / 2, w / 2, h, "", color=bcol)
        d.text(x - w / 4, y, rf"$\overrightarrow{{h}}_{{{step}}}$")
        d.text(x + w / 4, y, rf"$\overleftarrow{{h}}_{{{step}}}$")
        d.arrow((x, 0.55), (x, y - h / 2))
        d.text(x, 0.35, f"input[{t}]", size=SMALL, mono=True)
        # output[t]: the forward half then the backward half
        oy = 2.85
        d.cell(x - w / 2, oy, w / 2, 0.42, "[:H]", color=fcol, mono=True)
        d.cell(x, oy, w / 2, 0.42, "[H:]", color=bcol, mono=True)
        d.text(x, oy + 0.62, f"output[{t}]", size=SMALL, mono=True)
        d.arrow((x - w / 4, y + h / 2), (x - w / 4, oy))
        d.arrow((x + w / 4, y + h / 2), (x + w / 4, oy))
    for a, b in ((xs[0], xs[1]), (xs[1], 4.0), (4.5, xs[2])):
        d.arrow((a + w / 2 if a in xs else a, up), (b - w / 2 if b in xs else b, up))
        d.arrow((b - w / 2 if b in xs else b, down), (a + w / 2 if a in xs else a, down))
    d.text(4.25, y, "...")
    # the ends: forward starts left and ends right, backward the other way round
    d.text(0.45, up + 0.05, "h_0[0]", size=SMALL, mono=True)
    d.arrow((0.85, up), (xs[0] - w / 2, up))
    d.arrow((xs[0] - w / 2, down), (0.95, down))
    d.box(0.55, down - 0.1, 0.78, 0.36, "h_n[-1]", color=OUTPUT, size=SMALL, mono=True,
          edge=GRAD, lw=2.2)
    d.arrow((xs[2] + w / 2, up), (6.25, up))
    d.box(6.65, up + 0.1, 0.78, 0.36, "h_n[-2]", color=OUTPUT, size=SMALL, mono=True)
    d.text(6.75, down - 0.05, "h_0[1]", size=SMALL, mono=True)
    d.arrow((6.35, down), (xs[2] + w / 2, down))
    # output[0, :, H:] is h_n[-1]; output[-1, :, H:] has read only x_L
    d.cell(xs[0], 2.85, w / 2, 0.42, "", color="none", edge=GRAD, lw=2.2)
    d.cell(xs[2], 2.85, w / 2, 0.42, "", color="none", edge=EDGE, lw=2.0, ls="--")
    d.text(3.6, 4.25, "h_n[-1] == output[0, :, H:]: the backward direction after all of x",
           size=SMALL, color=GRAD)
    d.text(3.6, 3.95, "output[-1, :, H:] (dashed): the backward direction after x_L only",
           size=SMALL)
    return d.show()


def padding_packing():
    """A padded batch of lengths 4, 3, 1; the packed data and batch_sizes; the last valid steps."""
    d = Canvas(7.2, 4.0)
    s = 0.48
    seqs = {"a": 4, "b": 3, "c": 1}
    x0, y0 = 0.75, 3.25
    d.text(x0 + 1.5 * s, 3.8, "padded: (L=4, N=3)", size=SMALL, mono=True)
    for c, (name, length) in enumerate(seqs.items()):
        d.text(x0 + (c + 0.5) * s, y0 + 0.17, f"{name}", size=SMALL, mono=True)
        for t in range(4):
            valid = t < length
            last = t == length - 1
            d.cell(x0 + c * s, y0 - (t + 1) * s, s, s, f"${name}_{t + 1}$" if valid else "0",
                   color=(OUTPUT if last else INPUT) if valid else "#f0f0f0",
                   hatch=None if valid else "//", edge=GRAD if last else EDGE,
                   lw=2.2 if last else 1.0)
    for t in range(4):
        d.text(x0 - 0.3, y0 - (t + 0.5) * s, f"t={t}", size=SMALL, mono=True)
    d.text(x0 + 1.5 * s, y0 - 4 * s - 0.3, "lengths = [4, 3, 1]", size=SMALL, mono=True)
    d.text(x0 + 1.5 * s, y0 - 4 * s - 0.6, "output[-1, 2] (c) has", size=SMALL)
    d.text(x0 + 1.5 * s, y0 - 4 * s - 0.87, "read three pads", size=SMALL)
    # packed
    d.arrow((2.4, 2.3), (2.95, 2.3))
    d.text(2.68, 2.55, "pack", size=SMALL)
    px, py = 3.1, 2.55
    d.text(px + 4 * s, 3.8, "pack_padded_sequence(...).data: (8, H_in)", size=SMALL, mono=True)
    order = [("a", 1), ("b", 1), ("c", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3), ("a", 4)]
    for k, (name, t) in enumerate(order):
        last = t == seqs[name]
        d.cell(px + k * s, py, s, s, f"${name}_{t}$", color=OUTPUT if last else INPUT,
               edge=GRAD if last else EDGE, lw=2.2 if last else 1.0)
    # batch_sizes braces
    start = 0
    for size in [3, 2, 2, 1]:
        a, b = px + start * s, px + (start + size) * s
        d.ax.plot([a + 0.04, a + 0.04, b - 0.04, b - 0.04], [py - 0.08, py - 0.16, py - 0.16,
                                                             py - 0.08], color=EDGE, lw=1.2)
        d.text((a + b) / 2, py - 0.38, f"{size}", size=SMALL, mono=True)
        start += size
    d.text(px + 4 * s, py - 0.7, "batch_sizes = [3, 2, 2, 1]: sequences", size=SMALL, mono=True)
    d.text(px + 4 * s, py - 0.98, "still running at t = 0, 1, 2, 3", size=SMALL)
    d.text(px + 4 * s, 0.72, "outlined: each sequence's last valid step,", size=SMALL)
    d.text(px + 4 * s, 0.44, "output[lengths - 1, n]; a packed batch's h_n", size=SMALL)
    d.text(px + 4 * s, 0.16, "holds the states after these steps", size=SMALL)
    return d.show()


# Chapter 4 -----------------------------------------------------------------------------

def truncated_bptt():
    """Two windows of k = 3 steps: the state crosses the boundary, the gradient does not."""
    d = Canvas(7.2, 3.6)
    y = 1.65
    xs = [0.9, 1.95, 3.0, 4.45, 5.5, 6.55]
    for t, x in enumerate(xs, start=1):
        d.box(x, y, 0.62, 0.5, f"$h_{t}$", color=STATE)
        d.arrow((x, 0.55), (x, y - 0.25))
        d.text(x, 0.38, f"$x_{t}$")
        d.arrow((x, y + 0.25), (x, 2.45))
        d.text(x, 2.62, rf"$\mathcal{{L}}_{t}$")
    for a, b in zip(xs, xs[1:]):
        d.arrow((a + 0.31, y + 0.08), (b - 0.31, y + 0.08))
        if b != xs[3]:  # the gradient goes back inside a window only
            d.arrow((b - 0.31, y - 0.1), (a + 0.31, y - 0.1), color=GRAD)
    for x in xs:  # each loss term sends its gradient down into its step
        d.arrow((x + 0.12, 2.45), (x + 0.12, y + 0.25), color=GRAD, lw=1.0, head=8)
    cut = (xs[2] + xs[3]) / 2
    d.ax.plot([cut, cut], [0.2, 3.1], color=EDGE, lw=1.2, ls=(0, (4, 3)))
    d.text(cut, 3.3, "h = h.detach()", size=SMALL, mono=True)
    d.text(cut, 1.25, "no gradient", size=SMALL, color=GRAD)
    d.text(cut, 1.02, "crosses", size=SMALL, color=GRAD)
    d.text(1.95, 3.3, "window 1: backward()", size=SMALL)
    d.text(5.5, 3.3, "window 2: backward()", size=SMALL)
    d.text(3.6, 0.08, "black: the forward pass, across windows;  red: the gradient, inside one",
           size=SMALL)
    return d.show()


# Chapter 5 -----------------------------------------------------------------------------

def _rows(k):
    """The rows of gate block k in a stacked parameter: [0, H), [H, 2H), ..."""
    return ["[0, H)", "[H, 2H)", "[2H, 3H)", "[3H, 4H)"][k]


def lstm_cell():
    """nn.LSTM's step: one stacked pre-activation cut into i, f, g, o; c and h; proj_size."""
    d = Canvas(7.2, 5.0)
    bar_y, act_y, cline, mid = 1.0, 2.1, 4.25, 3.3
    seg = {"i": 1.85, "f": 2.9, "g": 3.95, "o": 5.0}
    # the stacked pre-activation (N, 4H), in PyTorch's order
    for k, (name, x) in enumerate(seg.items()):
        d.cell(x - 0.525, bar_y - 0.3, 1.05, 0.6, "", color=WEIGHT)
        d.text(x, bar_y + 0.08, f"${name}$", size=FONT)
        d.text(x, bar_y - 0.16, _rows(k), size=SMALL, mono=True)
    d.text(3.425, 0.45, r"$W_{ih}\,x_t + b_{ih} + W_{hh}\,h_{t-1} + b_{hh}$   (N, 4H)")
    d.text(3.425, 0.17, "weight_ih_l0, bias_ih_l0, weight_hh_l0, bias_hh_l0", size=SMALL,
           mono=True)
    d.text(0.5, 1.2, "$x_t$")
    d.arrow((0.75, 1.2), (1.325, 1.2))
    d.text(0.5, 0.8, "$h_{t-1}$")
    d.arrow((0.85, 0.8), (1.325, 0.8))
    for name, x in seg.items():
        d.arrow((x, bar_y + 0.3), (x, act_y - 0.22))
        d.op(x, act_y, "tanh" if name == "g" else r"$\sigma$", r=0.24 if name == "g" else 0.2,
             color=CAND if name == "g" else GATE, size=SMALL if name == "g" else FONT)
        d.text(x - 0.32, act_y + 0.45, f"${name}_t$")
    # the cell line
    d.text(0.45, cline + 0.18, "$c_{t-1}$")
    d.text(0.45, cline - 0.18, "(N, H)", size=SMALL, mono=True)
    times_f, plus = (seg["f"], cline), (seg["g"], cline)
    d.arrow((0.85, cline), (times_f[0] - 0.17, cline))
    d.op(*times_f, r"$\times$")
    d.arrow((times_f[0] + 0.17, cline), (plus[0] - 0.17, cline))
    d.op(*plus, "+")
    d.arrow((plus[0] + 0.17, cline), (6.45, cline))
    d.text(6.8, cline + 0.18, "$c_t$")
    d.text(6.8, cline - 0.18, "(N, H)", size=SMALL, mono=True)
    # f multiplies c_{t-1}; i times g is added. f's line crosses i's, over a gap.
    i_times_g = (seg["g"], mid)
    d.path([(seg["i"], act_y + 0.2), (seg["i"], mid), (i_times_g[0] - 0.17, mid)])
    d.op(*i_times_g, r"$\times$")
    d.arrow((seg["g"], act_y + 0.24), (seg["g"], mid - 0.17))
    d.arrow((seg["g"], mid + 0.17), (seg["g"], cline - 0.17))
    d.ax.plot([seg["f"] - 0.09, seg["f"] + 0.09], [mid, mid], color="white", lw=6, zorder=2.1)
    d.arrow((seg["f"], act_y + 0.2), (seg["f"], cline - 0.17), zorder=2.5)
    # h_t = o * tanh(c_t), then the projection when proj_size > 0
    tap, h_y = 5.75, 2.9
    d.arrow((tap, cline), (tap, 3.6 + 0.24))
    d.op(tap, 3.6, "tanh", r=0.24, color=CAND, size=SMALL)
    d.arrow((tap, 3.6 - 0.24), (tap, h_y + 0.17))
    d.op(tap, h_y, r"$\times$")
    d.path([(seg["o"], act_y + 0.2), (seg["o"], h_y), (tap - 0.17, h_y)])
    d.box(6.35, h_y, 0.55, 0.42, "$W_{hr}$", color="white", ls="--")
    d.arrow((tap + 0.17, h_y), (6.075, h_y))
    d.arrow((6.625, h_y), (6.85, h_y))
    d.text(7.0, h_y, "$h_t$")
    d.text(6.3, 2.35, "proj_size > 0 only:", size=SMALL)
    d.text(6.3, 2.08, "weight_hr_l0", size=SMALL, mono=True)
    d.text(6.3, 1.62, "h_t: (N, H),", size=SMALL, mono=True)
    d.text(6.3, 1.35, "(N, proj_size)", size=SMALL, mono=True)
    d.text(6.3, 1.08, "with a projection", size=SMALL)
    return d.show()


def lstm_weights():
    """How nn.LSTM stacks the four gates' blocks in each of its four parameters."""
    d = Canvas(7.2, 3.5)
    top, row = 2.75, 0.55
    columns = [("weight_ih_l0", "(4H, H_in)", 2.4, 1.3, "W_{i%s}"),
               ("weight_hh_l0", "(4H, H)", 4.05, 1.0, "W_{h%s}"),
               ("bias_ih_l0", "(4H,)", 5.45, 0.55, "b_{i%s}"),
               ("bias_hh_l0", "(4H,)", 6.55, 0.55, "b_{h%s}")]
    colours = {"i": GATE, "f": GATE, "g": CAND, "o": GATE}
    for name, shape, x, w, symbol in columns:
        d.text(x, top + 0.48, name, size=SMALL, mono=True)
        d.text(x, top + 0.2, shape, size=SMALL, mono=True)
        for k, gate in enumerate("ifgo"):
            d.cell(x - w / 2, top - (k + 1) * row, w, row, f"${symbol % gate}$",
                   color=colours[gate], size=FONT)
    for k, gate in enumerate("ifgo"):
        rows = _rows(k)
        d.text(0.15, top - (k + 0.5) * row, f"${gate}$", ha="left")
        d.text(0.45, top - (k + 0.5) * row, f"rows {rows}", size=SMALL, mono=True, ha="left")
    d.text(3.6, 0.3, "weight_ih_l0.chunk(4) gives W_ii, W_if, W_ig, W_io; with proj_size = P,"
           "\nweight_hh_l0 is (4H, P) and weight_hr_l0 (P, H) projects h_t", size=SMALL)
    return d.show()


def lstm_gradient_paths():
    """Backward through one step: along c, an elementwise f_t; along h, a matrix and tanh'."""
    d = Canvas(7.2, 3.1)
    c_y, h_y = 2.3, 0.9
    for y, prev, nxt, colour in ((c_y, "$c_{t-1}$", "$c_t$", STATE), (h_y, "$h_{t-1}$", "$h_t$",
                                                                           STATE)):
        d.box(0.75, y, 0.8, 0.5, prev, color=colour)
        d.box(6.45, y, 0.8, 0.5, nxt, color=colour)
    d.arrow((1.15, c_y + 0.1), (6.05, c_y + 0.1))
    d.op(3.6, c_y + 0.1, r"$\times$", r=0.15, size=SMALL)
    d.text(3.6, c_y + 0.45, "$f_t$", size=FONT)
    d.arrow((6.05, c_y - 0.14), (1.15, c_y - 0.14), color=GRAD)
    d.text(3.6, c_y - 0.42, r"along $c$: $f_t\odot\,\partial\mathcal{L}/\partial c_t$,"
           r" elementwise, no matrix", color=GRAD, size=SMALL)
    d.arrow((1.15, h_y + 0.1), (6.05, h_y + 0.1))
    d.box(3.6, h_y + 0.1, 1.1, 0.36, r"$W_{hh}$, tanh", size=SMALL)
    d.arrow((6.05, h_y - 0.14), (1.15, h_y - 0.14), color=GRAD)
    d.text(3.6, h_y - 0.42, r"along an Elman $h$: $W_{hh}^{\top}\,\mathrm{diag}(1 - h_t^2)$"
           r" at every step", color=GRAD, size=SMALL)
    d.text(3.6, 0.12, "black: forward;  red: the gradient, one step back", size=SMALL)
    return d.show()


# Chapter 6 -----------------------------------------------------------------------------

def gru_forms():
    """The new gate n_t in nn.GRU's form and in Cho et al.'s: where the reset gate acts."""
    d = Canvas(7.2, 4.9)
    for x0, title, pytorch in ((0.0, "nn.GRU (PyTorch)", True),
                               (3.65, "Cho et al. (2014)", False)):
        left, right = x0 + 1.2, x0 + 2.85
        d.text(x0 + 1.75, 4.65, title, size=FONT, weight="bold")
        d.text(left, 0.3, "$h_{t-1}$")
        d.text(right, 0.3, "$x_t$")
        if pytorch:
            d.box(left, 1.25, 1.75, 0.48, r"$W_{hn}\,h_{t-1} + b_{hn}$", edge=GRAD, lw=2.0)
            d.arrow((left, 0.5), (left, 1.01))
            d.arrow((left, 1.49), (left, 2.13))
            d.op(left, 2.3, r"$\times$", color="white")
            d.arrow((left, 2.47), (left, 2.93))
            xbox = r"$W_{in}\,x_t + b_{in}$"
        else:
            d.arrow((left, 0.5), (left, 1.08))
            d.op(left, 1.25, r"$\times$", color="white")
            d.box(left, 2.3, 1.75, 0.48, r"$W_{hn}\,(r_t \odot h_{t-1})$", edge=GRAD, lw=2.0)
            d.arrow((left, 1.42), (left, 2.06))
            d.arrow((left, 2.54), (left, 2.93))
            xbox = r"$W_{in}\,x_t + b_n$"
        r_y = 2.3 if pytorch else 1.25
        d.text(x0 + 0.12, r_y, "$r_t$", ha="left", color=GRAD)
        d.arrow((x0 + 0.42, r_y), (left - 0.17, r_y), color=GRAD)
        d.box(right, 1.8, 1.3, 0.48, xbox, size=SMALL + 0.5)
        d.arrow((right, 0.5), (right, 1.56))
        d.path([(right, 2.04), (right, 3.1), (left + 0.17, 3.1)])
        d.op(left, 3.1, "+")
        d.arrow((left, 3.27), (left, 3.62))
        d.box(left, 3.82, 0.75, 0.4, "tanh", color=CAND)
        d.arrow((left + 0.375, 3.82), (right - 0.25, 3.82))
        d.text(right, 3.82, "$n_t$")
        d.text(x0 + 1.8, 4.3, "reset after the product, $b_{hn}$ inside" if pytorch
               else "reset before the product", size=SMALL, color=GRAD)
    d.ax.plot([3.6, 3.6], [0.15, 4.8], color="#999999", lw=1.0)
    return d.show()


# Chapter 8 -----------------------------------------------------------------------------

def lm_batches():
    """batchify: the stream as batch_size columns; get_batch: windows of bptt rows."""
    d = Canvas(7.2, 4.2)
    s = 0.38
    # the stream
    d.text(0.15, 3.85, "stream, T = 11, batch_size = 4:", size=SMALL, ha="left")
    letters = "abcdefghijk"
    colours = ["#dbe9f6", "#d9f0d3", "#fde2c4", "#f6d5e5"]
    for k, ch in enumerate(letters):
        fill = colours[k // 2] if k < 8 else "#f0f0f0"
        d.cell(2.75 + k * s, 3.65, s, s, ch, color=fill, mono=True, hatch=None if k < 8 else "//")
    d.text(2.75 + 9.5 * s, 3.45, "dropped", size=SMALL)
    # batchify
    d.text(1.2, 3.0, "batchify(data, 4)", size=SMALL, mono=True)
    d.text(1.2, 2.72, "(rows = 2, batch = 4)", size=SMALL, mono=True)
    for c in range(4):
        for r in range(2):
            d.cell(0.4 + c * s, 2.2 - (r + 1) * s, s, s, letters[2 * c + r], color=colours[c],
                   mono=True)
    d.text(1.2, 1.1, "column j: one", size=SMALL)
    d.text(1.2, 0.85, "contiguous piece", size=SMALL)
    # get_batch on a source of 5 rows
    gx, gy = 3.05, 2.95
    d.text(4.8, 3.1, "get_batch(source, i, bptt=2), 5 rows:", size=SMALL)
    rows = ["afkp", "bglq", "chmr", "dins", "ejot"]
    for r, text in enumerate(rows):
        d.text(gx - 0.35, gy - (r + 0.5) * s, f"row {r}", size=SMALL, mono=True)
        for c, ch in enumerate(text):
            d.cell(gx + 0.05 + c * s, gy - (r + 1) * s, s, s, ch, color="white", mono=True)

    def bracket(x, r0, r1, label, colour):
        y0, y1 = gy - r0 * s - 0.04, gy - r1 * s + 0.04
        d.ax.plot([x, x + 0.1, x + 0.1, x], [y0, y0, y1, y1], color=colour, lw=1.6)
        d.text(x + 0.18, (y0 + y1) / 2, label, size=SMALL, color=colour, ha="left")

    bracket(gx + 1.62, 0, 2, "inputs i=0", "#1f5fa8")
    bracket(gx + 2.75, 1, 3, "targets i=0", GRAD)
    bracket(gx + 1.62, 2, 4, "inputs i=2", "#1f5fa8")
    bracket(gx + 2.75, 3, 5, "targets i=2", GRAD)
    d.text(4.8, 0.62, "windows start at rows 0 and 2: range(0, rows - 1, bptt);", size=SMALL)
    d.text(4.8, 0.34, "targets are the inputs' rows shifted down by one", size=SMALL)
    return d.show()


def lm_model():
    """RNNModel: Embedding, dropout, the recurrent core, dropout, decoder; tied weights."""
    d = Canvas(7.2, 3.0)
    y = 1.7
    stages = [(0.55, 0.9, "input", "(L, N)", OUTPUT, True),
              (1.8, 1.25, "encoder", "Embedding", INPUT, False),
              (3.05, 0.9, "dropout", "", WEIGHT, False),
              (4.2, 1.05, "rnn", "LSTM", STATE, False),
              (5.35, 0.9, "dropout", "", WEIGHT, False),
              (6.5, 1.0, "decoder", "Linear", INPUT, False)]
    for x, w, name, kind, colour, mono in stages:
        d.box(x, y, w, 0.75, "", color=colour)
        d.text(x, y + 0.15 if kind else y, name, size=SMALL, mono=True)
        if kind:
            d.text(x, y - 0.17, kind, size=SMALL, mono=mono)
    for (x, w, *_), (nx, nw, *_) in zip(stages, stages[1:]):
        d.arrow((x + w / 2, y), (nx - nw / 2, y))
    d.text(1.8, 2.35, "(ntoken, ninp)", size=SMALL, mono=True)
    d.text(4.2, 2.35, "(ninp -> nhid)", size=SMALL, mono=True)
    d.text(7.15, 2.35, "(nhid -> ntoken)", size=SMALL, mono=True, ha="right")
    d.text(7.15, 2.75, "logits: (L, N, ntoken)", size=SMALL, mono=True, ha="right")
    d.arrow((6.5, 1.32), (1.8, 1.32), color=GRAD, style="<|-|>", rad=-0.25)
    d.text(4.15, 0.45, "tie_weights: decoder.weight = encoder.weight, one (ntoken, ninp)",
           size=SMALL, color=GRAD)
    d.text(4.15, 0.17, "table for both ends; needs nhid == ninp", size=SMALL, color=GRAD)
    return d.show()
