"""The chapter 8 checks accept the reference solution and reject wrong answers.

Wrong answers are mutants of the solution notebook's own source, each one
classic mistake away from a correct answer; every one must be rejected on the
visible and on the hidden cases, with feedback that names the mistake. The
references written in the check module (padded_columns, padded_reference,
sample_by_hand, batch_first_window, TiedModel) are tested here against independent formulations.
"""
from __future__ import annotations

import math
import re

import pytest
import torch

from rnn_by_hand import lm as rnnlm
from rnn_by_hand import CHECKS, CheckFailure
import torch.nn.functional as F

from rnn_by_hand.chapters.language_model import (TiedModel, batch_first_window, check_batchify_padded,
                                                 check_get_batch_first, check_language_model,
                                                 check_padded_perplexity, check_sample_text, padded_columns,
                                                 padded_reference, sample_by_hand)
from conftest import REPO
from mutants import assert_partial_credit, failing_when, mutant_test, student_namespace

NOTEBOOK = REPO / "solutions" / "08-language-model" / "language_model.ipynb"


@pytest.fixture(scope="module")
def solution():
    return student_namespace(NOTEBOOK)


DROP_BOTH = ("emb = self.drop(self.encoder(input))       # (L, N, ninp)\n"
             "        output, hidden = self.rnn(emb, hidden)     # (L, N, nhid)\n"
             "        projected = self.proj(self.drop(output))")
TARGETS = "targets = source[i + 1:i + 1 + seq_len].t()"
TIE = "self.decoder.weight = self.encoder.weight"
WINDOW_SUM = ("total_loss += loss.item()\n            total_tokens += int((targets != pad_id).sum())  # ... and are "
              "not counted\n    return math.exp(total_loss / total_tokens)")
PADDING = ("rows = -(-data.size(0) // batch_size)                         # ceil(T / N)\n"
           "    padding = data.new_full((rows * batch_size - data.size(0),), pad_id)\n"
           "    stream = torch.cat([data, padding])")
DRAW = "token = int(torch.multinomial(probs, 1, generator=generator))"

# Each mutant: (check, cell, source text, replacement, words the feedback must contain)
MUTANTS = {
    "batchify: drops the remainder": (check_batchify_padded, "batchify_padded", PADDING,
                                      "rows = data.size(0) // batch_size\n    stream = data[: rows * batch_size]",
                                      "that drops the last"),
    "batchify: pads at the front": (check_batchify_padded, "batchify_padded", "torch.cat([data, padding])",
                                    "torch.cat([padding, data])", "your padding comes first"),
    "batchify: pads with 0": (check_batchify_padded, "batchify_padded",
                              "data.new_full((rows * batch_size - data.size(0),), pad_id)",
                              "data.new_zeros((rows * batch_size - data.size(0),))", "your padding is 0"),
    "batchify: batch-major (batch, rows)": (check_batchify_padded, "batchify_padded",
                                            "return stream.view(batch_size, rows).t().contiguous()",
                                            "return stream.view(batch_size, rows)", "your result is (batch, rows)"),
    "batchify: row-major fill": (check_batchify_padded, "batchify_padded",
                                 "return stream.view(batch_size, rows).t().contiguous()",
                                 "return stream.view(rows, batch_size)", "each column holds every batch_size-th token"),
    "get_batch_first: targets not shifted": (check_get_batch_first, "get_batch_first", TARGETS,
                                             "targets = source[i:i + seq_len].t()", "your targets are the inputs"),
    "get_batch_first: targets not flattened": (check_get_batch_first, "get_batch_first", "targets.reshape(-1)",
                                               "targets", "your targets are 2-D"),
    "get_batch_first: last window overruns": (check_get_batch_first, "get_batch_first",
                                              "seq_len = min(bptt, source.size(0) - 1 - i)", "seq_len = bptt",
                                              "seq_len = min(bptt, rows - 1 - i)"),
    "get_batch_first: targets in time-major order": (check_get_batch_first, "get_batch_first", TARGETS,
                                                     "targets = source[i + 1:i + 1 + seq_len]",
                                                     "flattened row by row, the time-major order"),
    "get_batch_first: inputs time-major": (check_get_batch_first, "get_batch_first",
                                           "inputs = source[i:i + seq_len].t()", "inputs = source[i:i + seq_len]",
                                           "your inputs are (seq_len, batch), time-major"),
    "get_batch_first: view of a transpose": (check_get_batch_first, "get_batch_first", "targets.reshape(-1)",
                                             "targets.view(-1)", "use .reshape(-1)"),
    "model: returns log_softmax": (check_language_model, "LanguageModel", "return logits, hidden",
                                   "return F.log_softmax(logits, dim=-1), hidden", "log-probabilities (log_softmax)"),
    "model: returns softmax": (check_language_model, "LanguageModel", "return logits, hidden",
                               "return F.softmax(logits, dim=-1), hidden", "probabilities (softmax)"),
    "model: decoder on the final hidden state": (
        check_language_model, "LanguageModel", "projected = self.proj(self.drop(output))",
        "projected = self.proj(self.drop(hidden[0] if isinstance(hidden, tuple) else hidden))",
        "the decoder applied to the final hidden state"),
    "model: hidden not passed to the rnn": (check_language_model, "LanguageModel", "self.rnn(emb, hidden)",
                                            "self.rnn(emb)", "pass the hidden argument to self.rnn"),
    "model: LSTM init_hidden one tensor": (check_language_model, "LanguageModel",
                                           'return (zeros, zeros.clone()) if self.rnn_type == "LSTM" else zeros',
                                           "return zeros", "should be a tuple (h, c) of two tensors for an LSTM"),
    "model: init_hidden (N, nlayers, nhid)": (check_language_model, "LanguageModel",
                                              "weight.new_zeros(self.nlayers, batch_size, self.nhid)",
                                              "weight.new_zeros(batch_size, self.nlayers, self.nhid)",
                                              "(layers first, then the batch)"),
    "model: init_hidden in float32": (check_language_model, "LanguageModel",
                                      "zeros = weight.new_zeros(self.nlayers, batch_size, self.nhid)",
                                      "zeros = torch.zeros(self.nlayers, batch_size, self.nhid)",
                                      "has dtype torch.float32, expected torch.float64"),
    "model: no dropout at all": (check_language_model, "LanguageModel", DROP_BOTH,
                                 "emb = self.encoder(input)\n        output, hidden = self.rnn(emb, hidden)\n"
                                 "        projected = self.proj(output)", "those with dropout off"),
    "model: dropout on the embeddings only": (check_language_model, "LanguageModel",
                                              "projected = self.proj(self.drop(output))",
                                              "projected = self.proj(output)", "only the embeddings go through dropout"),
    "model: dropout on the output only": (check_language_model, "LanguageModel",
                                          "emb = self.drop(self.encoder(input))", "emb = self.encoder(input)",
                                          "only the rnn output goes through dropout"),
    "model: dropout after the projection": (check_language_model, "LanguageModel",
                                            "projected = self.proj(self.drop(output))",
                                            "projected = self.drop(self.proj(output))",
                                            "your dropout acts on the projection's output"),
    "model: not tied": (check_language_model, "LanguageModel", TIE, "pass", "decoder.weight is not encoder.weight"),
    "model: tied by copying the values": (check_language_model, "LanguageModel", TIE,
                                          "self.decoder.weight.data.copy_(self.encoder.weight.data)",
                                          "decoder.weight is not encoder.weight"),
    "model: a projection with a bias": (check_language_model, "LanguageModel", "nn.Linear(nhid, ninp, bias=False)",
                                        "nn.Linear(nhid, ninp)", "the projection has no bias"),
    "model: a projection even when nhid == ninp": (check_language_model, "LanguageModel",
                                                   "if nhid != ninp else nn.Identity()",
                                                   "if True else nn.Identity()", "use self.proj = nn.Identity()"),
    "model: no projection": (check_language_model, "LanguageModel",
                             "nn.Linear(nhid, ninp, bias=False) if nhid != ninp else nn.Identity()",
                             "nn.Identity()", "has no proj.weight"),
    "perplexity: pads counted": (check_padded_perplexity, "padded_perplexity",
                                 "total_tokens += int((targets != pad_id).sum())",
                                 "total_tokens += targets.numel()", "divides by every target, pads included"),
    "perplexity: pads not ignored": (check_padded_perplexity, "padded_perplexity",
                                     'reduction="sum",\n                                   ignore_index=pad_id)',
                                     'reduction="sum")', "leaves out the pads' counts but not their losses"),
    "perplexity: neither ignored nor left out": (check_padded_perplexity, "padded_perplexity",
                                                 'reduction="sum",\n                                   '
                                                 'ignore_index=pad_id)     # pads add nothing\n'
                                                 '            total_loss += loss.item()\n'
                                                 '            total_tokens += int((targets != pad_id).sum())',
                                                 'reduction="sum")\n            total_loss += loss.item()\n'
                                                 '            total_tokens += targets.numel()',
                                                 "counts the pads as words"),
    "perplexity: unweighted mean of window means": (check_padded_perplexity, "padded_perplexity", WINDOW_SUM,
                                                    "total_loss += loss.item() / int((targets != pad_id).sum())\n"
                                                    "            total_tokens += 1\n"
                                                    "    return math.exp(total_loss / total_tokens)",
                                                    "every window the same weight"),
    "perplexity: hidden not carried": (check_padded_perplexity, "padded_perplexity",
                                       "logits, hidden = model(inputs, hidden)",
                                       "logits, _ = model(inputs, hidden)", "zero hidden state"),
    "perplexity: model.eval() forgotten": (check_padded_perplexity, "padded_perplexity", "model.eval()", "pass",
                                           "call model.eval() before evaluating"),
    "perplexity: one window too many": (check_padded_perplexity, "padded_perplexity",
                                        "range(0, source.size(0) - 1, bptt)", "range(0, source.size(0), bptt)",
                                        None),
    "perplexity: one window too few": (check_padded_perplexity, "padded_perplexity",
                                       "range(0, source.size(0) - 1, bptt)", "range(0, source.size(0) - 1 - bptt, bptt)",
                                       None),
    "perplexity: returns the cross-entropy": (check_padded_perplexity, "padded_perplexity",
                                              "return math.exp(total_loss / total_tokens)",
                                              "return total_loss / total_tokens", "the mean cross-entropy itself"),
    "sample: reseeds the global generator": (check_sample_text, "sample_text", DRAW,
        "torch.manual_seed(int(torch.randint(2**31 - 1, (), generator=generator)))\n"
        "                token = int(torch.multinomial(probs, 1))", "used torch's global random generator"),
    "sample: generator not used": (check_sample_text, "sample_text", DRAW, "token = int(torch.multinomial(probs, 1))",
                                   "used torch's global random generator"),
    "sample: temperature ignored": (check_sample_text, "sample_text", "torch.softmax(last / temperature, dim=-1)",
                                    "torch.softmax(last, dim=-1)", "ignore the temperature"),
    "sample: multiplies by temperature": (check_sample_text, "sample_text", "torch.softmax(last / temperature, dim=-1)",
                                          "torch.softmax(last * temperature, dim=-1)", "softmax(logits * temperature)"),
    "sample: prompt's last character fed back": (check_sample_text, "sample_text",
                                                 "model(torch.tensor([[token]]), hidden)", "model(ids[-1:], hidden)",
                                                 "feeding the prompt's last character at every step"),
    "sample: hidden not carried": (check_sample_text, "sample_text",
                                   "logits, hidden = model(torch.tensor([[token]]), hidden)",
                                   "logits, _ = model(torch.tensor([[token]]), hidden)",
                                   "starting every step from the state after the prompt"),
    "sample: temperature 0 divides by zero": (check_sample_text, "sample_text",
                                              "            if temperature < 1e-8:\n                token = int(last.argmax())\n"
                                              "            else:\n", "            if True:\n",
                                              "is the limit of no randomness"),
    "sample: argmax at every temperature": (check_sample_text, "sample_text", "if temperature < 1e-8:", "if True:",
                                            "the argmax at every step"),
    "sample: prompt included": (check_sample_text, "sample_text", 'return "".join(out)',
                                'return prompt + "".join(out)', "starts with the prompt"),
    "sample: model.eval() forgotten": (check_sample_text, "sample_text", "    model.eval()\n", "",
                                       "call model.eval() before sampling"),
}


test_mistake_is_rejected_with_specific_feedback = mutant_test(NOTEBOOK, MUTANTS)

# For the class grader's tests (tests/grading/test_grading_every_chapter.py): an answer that hands
# the work to the book's own package: (answer cell it follows, source, exercises it loses).
LIBRARY_ANSWER = ("get_batch_first",
                  "from rnn_by_hand.lm.data import get_batch\n\n"
                  "def get_batch_first(source, i, bptt):\n"
                  "    inputs, targets = get_batch(source, i, bptt)\n"
                  "    return inputs.t(), targets.view(inputs.shape).t().reshape(-1)\n",
                  ["get_batch_first"])


def test_registry_lists_every_chapter_eight_check():
    assert {f"08-language-model/{n}" for n in ("batchify_padded", "get_batch_first", "LanguageModel", "padded_perplexity",
                                               "sample_text")} <= set(CHECKS)


class BorrowedModel(rnnlm.RNNModel):
    """A "LanguageModel" that is rnnlm's, under another name."""


class ReferenceModel(TiedModel):
    """A "LanguageModel" that is the check's own reference."""


def borrowed_window(source, i, bptt):
    inputs, targets = rnnlm.get_batch(source, i, bptt)
    return inputs.t(), targets.view(inputs.shape).t().reshape(-1)


def borrowed_perplexity(model, source, bptt, pad_id):
    from rnn_by_hand.lm.evaluate import cross_entropy  # imported before the check, called during it
    return math.exp(cross_entropy(model, source, bptt))


def borrowed_sampler(model, chars, prompt, length, temperature, generator):
    model.eval()
    logits, hidden = model(torch.tensor([[chars.index(c)] for c in prompt]), model.init_hidden(1))
    out = []
    for _ in range(length):
        token = rnnlm.sample_next(logits[-1], temperature, None, generator)   # (1,)
        out.append(chars[token.item()])
        logits, hidden = model(token.view(1, 1), hidden)
    return "".join(out)


def own_padded_perplexity(model, source, bptt, pad_id):
    return padded_reference(model, source, bptt, pad_id)


@pytest.mark.parametrize("check, student, called", [
    (check_batchify_padded, lambda data, n, pad: rnnlm.batchify(data, n), "rnn_by_hand.lm.data.batchify"),
    (check_batchify_padded, padded_columns, "rnn_by_hand.chapters.language_model.padded_columns"),
    (check_get_batch_first, borrowed_window, "rnn_by_hand.lm.data.get_batch"),
    (check_get_batch_first, batch_first_window, "rnn_by_hand.chapters.language_model.batch_first_window"),
    (check_language_model, BorrowedModel, "rnn_by_hand.lm.model.RNNModel.__init__"),
    (check_language_model, ReferenceModel, "rnn_by_hand.chapters.language_model.TiedModel.__init__"),
    (check_padded_perplexity, lambda model, source, bptt, pad: rnnlm.perplexity(model, source, bptt),
     "rnn_by_hand.lm.evaluate.perplexity"),
    (check_padded_perplexity, borrowed_perplexity, "rnn_by_hand.lm.evaluate.cross_entropy"),
    (check_padded_perplexity, own_padded_perplexity, "rnn_by_hand.chapters.language_model.padded_reference"),
    (check_sample_text, borrowed_sampler, "rnn_by_hand.lm.generate.sample_next"),
    (check_sample_text, sample_by_hand, "rnn_by_hand.chapters.language_model.sample_by_hand")])
def test_answers_that_call_the_book_package_are_refused(check, student, called):
    """rnnlm holds the chapter's versions, and the check module its references; calling them is not
    writing the answer."""
    with pytest.raises(CheckFailure, match=f"is not written by hand: it calls {re.escape(called)}"):
        check(student, quiet=True)


def test_the_book_package_works_again_after_a_refusal():
    with pytest.raises(CheckFailure):
        check_padded_perplexity(lambda model, source, bptt, pad: rnnlm.perplexity(model, source, bptt), quiet=True)
    model = rnnlm.RNNModel("GRU", 12, 4, 5, 1)
    data = rnnlm.batchify(torch.randint(0, 12, (40,)), 4)                 # (10, 4)
    assert math.isfinite(rnnlm.perplexity(model, data, bptt=3))
    assert model(data[:3], model.init_hidden(4))[0].shape == (3, 4, 12)


def test_a_correct_sampler_passes_whatever_the_secret_seed(solution):
    for seed in range(4):
        check_sample_text(solution["sample_text"], hidden=True, seed=seed, quiet=True)


def test_padded_columns_keep_every_token_in_order():
    """Read column by column, the result is the stream and then its padding; with no remainder it is
    the chapter's batchify."""
    for T, n in ((23, 4), (17, 5), (30, 3), (50, 7)):
        data = torch.randint(0, 50, (T,))
        columns = padded_columns(data, n, pad_id=99)                           # (rows, n)
        stream = columns.t().reshape(-1)
        assert columns.shape == (-(-T // n), n) and torch.equal(stream[:T], data)
        assert bool((stream[T:] == 99).all()) and stream.numel() - T < n
        if T % n == 0:
            assert torch.equal(columns, rnnlm.batchify(data, n))


def test_padded_reference_equals_one_pass_over_each_column():
    """Carrying the hidden state across windows is one long pass over the columns: the reference's
    perplexity equals the masked mean over a single call of the model on the whole source."""
    for hidden in (False, True):
        for case in check_padded_perplexity.make_cases(hidden=hidden):
            model, source, pad = check_padded_perplexity.model(case).eval(), case.tensors["source"], \
                case.config["ntoken"] - 1
            with torch.no_grad():
                logits, _ = model(source[:-1], model.init_hidden(source.size(1)))   # (rows - 1, N, V)
            losses = F.cross_entropy(logits.reshape(-1, logits.size(-1)), source[1:].reshape(-1),
                                     reduction="none")                               # (rows - 1) * N
            real = source[1:].reshape(-1) != pad
            expected = math.exp(losses[real].mean().item())
            assert abs(padded_reference(model, source, case.config["bptt"], pad) - expected) < 1e-9 * expected
            if case.config["padding"]:
                assert not bool(real.all()), case.label


def test_sample_by_hand_equals_recomputing_from_the_start():
    """The reference loop carries the hidden state; recomputing the whole text from zeros at every step,
    with a generator seeded alike, draws the same characters."""
    for case in check_sample_text.make_cases() + check_sample_text.make_cases(hidden=True):
        c, model = case.config, check_sample_text.model(case).eval()
        chars, text = c["chars"], check_sample_text.prompt(case)
        generator = check_sample_text.generator(case)
        with torch.no_grad():
            for _ in range(c["length"]):
                ids = torch.tensor([[chars.index(ch)] for ch in text])              # (len(text), 1)
                last = model(ids, model.init_hidden(1))[0][-1, 0]                    # (V,)
                if c["temperature"] < 1e-8:
                    token = int(last.argmax())
                else:
                    token = int(torch.multinomial(torch.softmax(last / c["temperature"], -1), 1,
                                                  generator=generator))
                text += chars[token]
        assert check_sample_text.run_reference(case)["text"] == text[c["prompt"]:], case.label


def test_sampling_cases_cover_temperature_zero_and_both_cores():
    for hidden in (False, True):
        configs = [c.config for c in check_sample_text.make_cases(hidden=hidden)]
        assert any(c["temperature"] == 0 for c in configs) and any(c["temperature"] not in (0, 1) for c in configs)
        assert {c["rnn_type"] for c in configs} == {"GRU", "LSTM"}


def test_window_mistakes_really_differ():
    """Visible and hidden cases alike: some have a short last window (weighting mistakes change the
    value) and one tiles the source exactly (a loop running one window too far or stopping one short
    shows); every hidden case has padding."""
    for hidden in (False, True):
        tiles = [(c.config["rows"] - 1) % c.config["bptt"] == 0 for c in check_padded_perplexity.make_cases(hidden=hidden)]
        assert tiles.count(True) == 1 and tiles.count(False) >= 2
        assert all(c.config["padding"] for c in check_padded_perplexity.make_cases(hidden=True))


@pytest.mark.parametrize("check, cell, wrap, words", [
    (check_get_batch_first, "get_batch_first", lambda f: lambda *a: None,
     "should return a tuple (inputs, targets), got None"),
    (check_batchify_padded, "batchify_padded", lambda f: lambda *a: f(*a).float(),
     "dtype torch.float32, expected torch.int64"),
    (check_padded_perplexity, "padded_perplexity", lambda f: lambda *a: str(f(*a)),
     "should return a number (a Python float), got a str"),
    (check_padded_perplexity, "padded_perplexity", lambda f: lambda *a: torch.tensor(f(*a), dtype=torch.float64),
     None),
    (check_padded_perplexity, "padded_perplexity", lambda f: lambda *a: torch.tensor(f(*a)).item(),
     "float32 rounding"),
    (check_sample_text, "sample_text", lambda f: lambda *a: list(f(*a)), "should return a str"),
    (check_sample_text, "sample_text", lambda f: lambda *a: f(*a)[:-1], "29 characters"),
])
def test_wrong_return_values_get_clear_messages(solution, check, cell, wrap, words):
    student = wrap(solution[cell])
    if words is None:  # a 0-dim tensor is accepted as a number
        check(student, quiet=True)
        return
    with pytest.raises(CheckFailure) as failure:
        check(student, quiet=True)
    assert words in str(failure.value)


def test_model_whose_forward_returns_only_logits(solution):
    class OnlyLogits(solution["LanguageModel"]):
        def forward(self, input, hidden):
            return super().forward(input, hidden)[0]
    with pytest.raises(CheckFailure, match=r"should return a tuple \(logits, hidden\), got a Tensor"):
        check_language_model(OnlyLogits, quiet=True)


def test_model_with_renamed_submodules_is_told_which_names(solution):
    class Renamed(solution["LanguageModel"]):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.embedding = self.encoder
            del self.encoder
    with pytest.raises(CheckFailure, match="Keep the submodules __init__ creates"):
        check_language_model(Renamed, quiet=True)


def test_failure_names_the_window_and_the_index(solution):
    def late(source, i, bptt):
        inputs, targets = solution["get_batch_first"](source, i, bptt)
        return inputs, (targets + 1 if i > 0 else targets)
    with pytest.raises(CheckFailure) as failure:
        check_get_batch_first(late, quiet=True)
    message = str(failure.value)
    assert "get_batch_first differs from the batch-first window expected on case 1 of 3" in message
    assert "targets (window at i=4)[k=0] is" in message


def test_reference_reads_the_case_weights():
    """Changing the case's weights changes the expected logits: they come from TiedModel at check time."""
    case = check_language_model.make_cases()[0]
    before = check_language_model.run_reference(case)["logits"]
    case.tensors["state.decoder.bias"] = case.tensors["state.decoder.bias"] + 1
    after = check_language_model.run_reference(case)["logits"]
    assert torch.allclose(after, before + 1)


def test_sampling_is_deterministic_for_a_correct_answer(solution):
    case = check_sample_text.make_cases()[1]
    first = check_sample_text.run_student(solution["sample_text"], case)
    again = check_sample_text.run_student(solution["sample_text"], case)
    assert first["text"] == again["text"] and first["reproducible"] and first["global_rng"] is False


def model_without_projection(solution):
    class Mutant(solution["LanguageModel"]):
        def __init__(self, rnn_type, ntoken, ninp, nhid, *args, **kwargs):
            if nhid != ninp:
                raise ValueError("the projection is not done yet")
            super().__init__(rnn_type, ntoken, ninp, nhid, *args, **kwargs)
    return Mutant


@pytest.mark.parametrize("check, make, share, missing, sets", [
    (check_batchify_padded, lambda s: failing_when(s["batchify_padded"], lambda data, n, pad: data.numel() % n == 0),
     "1 of 2", ("exact fit",), (False, True)),
    (check_language_model, model_without_projection, "1 of 2", ("nhid != ninp, tied through proj",), (False, True)),
    # every hidden case is padded: an answer without the unpadded part loses it on the visible cases
    (check_padded_perplexity, lambda s: failing_when(s["padded_perplexity"],
                                                     lambda model, source, bptt, pad: not (source == pad).any()),
     "1 of 2", ("no padding",), (False,)),
    (check_sample_text, lambda s: failing_when(s["sample_text"], lambda *args: args[4] == 0), "1 of 2",
     ("temperature 0",), (False, True))])
def test_an_answer_missing_one_part_earns_the_others(solution, check, make, share, missing, sets):
    assert_partial_credit(check, make(solution), share, missing, sets)


def test_batch_first_window_gives_a_batch_first_model_the_time_major_loss():
    """The same GRU read batch-first on batch_first_window's window and time-major on get_batch's has
    the same per-token losses, in the same order once the time-major ones are transposed."""
    torch.manual_seed(0)
    embedding, head = torch.nn.Embedding(30, 4), torch.nn.Linear(5, 30)
    time_major = torch.nn.GRU(4, 5)
    batch_first = torch.nn.GRU(4, 5, batch_first=True)
    batch_first.load_state_dict(time_major.state_dict())
    source = torch.randint(0, 30, (12, 3))                                       # (rows, N)
    for i in range(0, 11, 4):
        x, y = rnnlm.get_batch(source, i, 4)                                     # (S, N), (S * N,)
        xb, yb = batch_first_window(source, i, 4)                                # (N, S), (N * S,)
        assert xb.shape == (3, x.size(0)) and torch.equal(xb, x.t())
        logits = head(time_major(embedding(x))[0])                               # (S, N, V)
        logits_b = head(batch_first(embedding(xb))[0])                           # (N, S, V)
        losses = F.cross_entropy(logits.reshape(-1, 30), y, reduction="none").view(x.shape)
        losses_b = F.cross_entropy(logits_b.reshape(-1, 30), yb, reduction="none").view(xb.shape)
        assert torch.allclose(losses.t(), losses_b, atol=1e-6)


def test_tied_model_is_rnnmodel_tied_when_the_widths_agree_and_a_formula_when_not():
    """nhid == ninp: TiedModel is RNNModel(tie_weights=True). nhid != ninp: its logits are
    (proj @ h_t) . E[w] + b for the embedding table E, and the table's gradient gathers both uses."""
    torch.manual_seed(0)
    ours, chapter = TiedModel("LSTM", 17, 6, 6, 2, 0.0), rnnlm.RNNModel("LSTM", 17, 6, 6, 2, 0.0, tie_weights=True)
    chapter.load_state_dict(ours.state_dict())
    x = torch.randint(0, 17, (5, 3))                                               # (L, N)
    assert torch.allclose(ours(x, ours.init_hidden(3))[0], chapter(x, chapter.init_hidden(3))[0])
    assert ours.decoder.weight is ours.encoder.weight
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in chapter.parameters())
    model = TiedModel("GRU", 17, 4, 7, 1, 0.0).eval()
    table, proj, bias = model.encoder.weight, model.proj.weight, model.decoder.bias   # (V, 4), (4, 7), (V,)
    h = model.rnn(table[x])[0]                                                     # (L, N, 7)
    logits = model(x, model.init_hidden(3))[0]
    assert torch.allclose(logits, h @ proj.t() @ table.t() + bias, atol=1e-6)
    logits.sum().backward()
    decoder_use = (h @ proj.t()).reshape(-1, 4).sum(0).expand(17, 4)               # d(sum)/dE from the decoder
    assert not torch.allclose(table.grad, decoder_use) and not torch.allclose(table.grad, table.grad * 0)
    untied_grad = torch.autograd.grad(model.decoder(model.proj(h.detach())).sum(), table)[0]
    assert torch.allclose(untied_grad, decoder_use, atol=1e-5)
