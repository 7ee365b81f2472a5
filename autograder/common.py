"""What the chapters' checks share about RNNs: the float64 dtype, PyTorch's weight names,
copying a layer's weights, nn.RNN's layouts, random sequences, the one-step check of an
nn.*Cell, and the Elman recurrence written by hand (our reference for hints, never
shown to students as an answer).

No chapter's module imports another's; they all import from here and from the
framework (rnn_by_hand.checking), which knows nothing of RNNs.
"""
from __future__ import annotations

import torch
from torch import nn

from .checking.cases import Case
from .checking.compare import compare_tensor, shape_str, type_name

DTYPE = torch.float64
WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
# The fused kernels behind nn.RNN and nn.RNNCell: the exercises write them by hand.
RNN_KERNELS = ("rnn_tanh", "rnn_relu", "rnn_tanh_cell", "rnn_relu_cell")
# The recurrent modules by the names the exercises pass (cell="lstm", ...).
RECURRENT_MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def cell_weights(module: nn.Module, suffix: str = "") -> dict[str, torch.Tensor | None]:
    """weight_ih, weight_hh, bias_ih, bias_hh of one layer (None where bias=False)."""
    return {w: getattr(module, w + suffix, None) for w in WEIGHTS}


def layer_tensors(module: nn.Module, suffix: str = "") -> dict[str, torch.Tensor]:
    """Detached copies of one layer's weights under the cell's names (weight_ih, ...): those
    that exist, and an LSTM's weight_hr when it has a projection. suffix "_l0" is layer 0."""
    names = WEIGHTS + ("weight_hr",)
    return {w: getattr(module, w + suffix).detach().clone() for w in names
            if getattr(module, w + suffix, None) is not None}


def load_weights(module: nn.Module, tensors: dict, suffix: str = "") -> nn.Module:
    """Copy the case's weights into a freshly built reference module."""
    with torch.no_grad():
        for w in WEIGHTS:
            if tensors.get(w) is not None:
                getattr(module, w + suffix).copy_(tensors[w])
    return module


def state_dict_problems(converted: dict, shapes: dict[str, tuple[int, ...]], module: str,
                        explain=lambda key, value, shape: "", order=None, extra_note: str = "") -> list[str]:
    """What keeps `converted` from loading into `module` (e.g. "nn.GRU") with load_state_dict:
    missing and extra keys, values that are no tensors, wrong shapes. `explain(key, value,
    shape)` adds a reason to a wrong shape ("" for none); `order` lists the keys to report
    missing, in their order (default: those of `shapes`); `extra_note` follows the
    sentence about a key `module` does not have."""
    problems = [f"the dict has no key {k!r}" for k in (order or shapes) if k not in converted]
    problems += [f"the dict has a key {k!r} that {module} does not have{extra_note}"
                 for k in converted if k not in shapes]
    for key, shape in shapes.items():
        if key not in converted:
            continue
        value = converted[key]
        if not isinstance(value, torch.Tensor):
            problems.append(f"{key} should be a torch.Tensor, got {type_name(value)}")
        elif tuple(value.shape) != shape:
            reason = explain(key, value, shape)
            problems.append(f"{key} has shape {shape_str(value.shape)}, expected {shape_str(shape)}"
                            + (f": {reason}" if reason else ""))
    return problems


def layouts(config: dict) -> dict[str, tuple[tuple[str, ...], str]]:
    """Dimension names and a readable layout for output and h_n in this configuration."""
    if not config.get("batched", True):
        return {"output": (("t", "h"), "(L, H) for unbatched input"),
                "h_n": (("layer", "h"), "(num_layers, H) for unbatched input")}
    if config.get("batch_first"):
        return {"output": (("n", "t", "h"), "(N, L, H) because batch_first=True"),
                "h_n": (("layer", "n", "h"), "(num_layers, N, H) whatever batch_first says")}
    return {"output": (("t", "n", "h"), "(L, N, H)"),
            "h_n": (("layer", "n", "h"), "(num_layers, N, H)")}


def step_layout(batched: bool) -> tuple[tuple[str, ...], str]:
    """Dimension names and a readable layout of one step's state: (N, H), or (H,) unbatched."""
    return (("n", "h"), "(N, H)") if batched else (("h",), "(H,) for an unbatched x_t")


class CellStep:
    """Mixin for a check of one step of an nn.*Cell (peephole_lstm_step, ...).

    A case is x_t and the previous state, drawn in the configuration's layout (N, H_in) or
    (H_in,), and the weights of a freshly initialised `reference(config)` cell; the
    reference is that cell with the case's weights copied in, and each name in STATES is
    compared in the state's layout. The subclass keeps run_student, which is where the
    exercises differ (their arguments, their return values).
    """

    STATES: tuple[str, ...] = ("h_t",)  # what one step returns, in the cell's order
    rtol: float
    atol: float

    def reference(self, config: dict) -> nn.Module:
        raise NotImplementedError

    def step_inputs(self, config: dict) -> dict[str, torch.Tensor]:
        """x_t and h_prev (N, H_in) and (N, H), or without N for an unbatched case."""
        lead = (config["N"],) if config["batched"] else ()
        return {"x_t": torch.randn(*lead, config["input_size"], dtype=DTYPE),
                "h_prev": torch.randn(*lead, config["hidden_size"], dtype=DTYPE)}

    def cell_state(self, tensors: dict) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """The state argument the cell module takes (a tuple for nn.LSTMCell)."""
        return tensors["h_prev"]

    def make_tensors(self, config: dict) -> dict[str, torch.Tensor]:
        cell = self.reference(config)  # drawn first: its initialisation sets the weights
        return self.step_inputs(config) | layer_tensors(cell)

    def run_reference(self, case: Case) -> dict[str, torch.Tensor]:
        cell = load_weights(self.reference(case.config), case.tensors)
        with torch.no_grad():
            out = cell(case.tensors["x_t"], self.cell_state(case.tensors))
        return dict(zip(self.STATES, out if isinstance(out, tuple) else (out,)))

    def compare(self, case: Case, expected: dict, actual: dict) -> list[str]:
        dims, layout = step_layout(case.config["batched"])
        return [p for name in self.STATES
                for p in compare_tensor(name, expected[name], actual[name], dims=dims, layout=layout,
                                        rtol=self.rtol, atol=self.atol)]


class ConversionHints:
    """Mixin for a check of a converter from another library's weights to a torch.nn state_dict
    (Keras's GRU, TensorFlow's LSTM): no hint while the keys, types or shapes are wrong, which
    compare_state explains; then the weights' hint, or the biases'."""

    def hint(self, case: Case, actual: dict) -> str:
        converted = actual["converted"]
        if self.compare_state(case, converted):
            return ""
        return self.weight_hint(case, converted) or self.bias_hint(case, converted)


def make_sequence(config: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Random input (and h_0 when the case gives one) in the case's layout."""
    L, H_in, H = config["L"], config["input_size"], config["hidden_size"]
    N, layers = config.get("N", 1), config.get("num_layers", 1)
    if not config.get("batched", True):
        x, h_0 = torch.randn(L, H_in, dtype=DTYPE), torch.randn(layers, H, dtype=DTYPE)
    elif config.get("batch_first"):
        x, h_0 = torch.randn(N, L, H_in, dtype=DTYPE), torch.randn(layers, N, H, dtype=DTYPE)
    else:
        x, h_0 = torch.randn(L, N, H_in, dtype=DTYPE), torch.randn(layers, N, H, dtype=DTYPE)
    return x, (h_0 if config.get("h_0", True) else None)


def compare_outputs(case: Case, expected: dict, actual: dict, names=("output", "h_n"),
                    **tolerance) -> list[str]:
    dims = layouts(case.config)
    problems = []
    for name in names:
        problems += compare_tensor(name, expected[name], actual[name], dims=dims[name][0],
                                   layout=dims[name][1], **tolerance)
    return problems


def recurrence(x, h, w, nonlinearity, use_bias_ih=True, use_bias_hh=True):
    """Time-major single-layer recurrence: x (L, N, H_in), h (N, H) -> all states (L, N, H)."""
    act = torch.tanh if nonlinearity == "tanh" else torch.relu
    states = []
    for x_t in x:
        pre = x_t @ w["weight_ih"].T + h @ w["weight_hh"].T
        if use_bias_ih and w.get("bias_ih") is not None:
            pre = pre + w["bias_ih"]
        if use_bias_hh and w.get("bias_hh") is not None:
            pre = pre + w["bias_hh"]
        h = act(pre)
        states.append(h)
    return torch.stack(states)
