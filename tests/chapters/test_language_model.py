"""The chapter 8 checks accept the reference solution and reject wrong answers.

Wrong answers are mutants of the solution notebook's own source, each one
classic mistake away from a correct answer; every one must be rejected on the
visible and on the hidden cases, with feedback that names the mistake.
"""
from __future__ import annotations

import math
import re

import pytest
import torch

from rnn_by_hand import lm as rnnlm
from rnn_by_hand import CHECKS, CheckFailure
from rnn_by_hand.chapters.language_model import (SampleNextCheck, check_batchify, check_corpus_perplexity, check_get_batch,
                                       check_language_model, check_sample_next, target_probabilities)
from conftest import REPO
from mutants import mutant_test, student_namespace

NOTEBOOK = REPO / "solutions" / "08-language-model" / "language_model.ipynb"


@pytest.fixture(scope="module")
def solution():
    return student_namespace(NOTEBOOK)


DROP_BOTH = ("emb = self.drop(self.encoder(input))       # (L, N, ninp)\n"
             "        output, hidden = self.rnn(emb, hidden)     # (L, N, nhid)\n"
             "        logits = self.decoder(self.drop(output))")
WINDOW_SUM = "total_loss += loss.item()\n            total_tokens += targets.numel()\n    return math.exp(total_loss / total_tokens)"

# Each mutant: (check, cell, source text, replacement, words the feedback must contain)
MUTANTS = {
    "batchify: pads instead of dropping": (
        check_batchify, "batchify",
        "rows = data.size(0) // batch_size\n    columns = data[: rows * batch_size].view(batch_size, rows)",
        "rows = -(-data.size(0) // batch_size)\n"
        "    columns = F.pad(data, (0, rows * batch_size - data.size(0))).view(batch_size, rows)",
        "are dropped (T // batch_size rows), not padded"),
    "batchify: batch-major (batch, rows)": (check_batchify, "batchify", "return columns.t().contiguous()",
                                            "return columns", "your result is (batch, rows)"),
    "batchify: row-major fill": (check_batchify, "batchify", "return columns.t().contiguous()",
                                 "return data[: rows * batch_size].view(-1, batch_size)",
                                 "each column holds every batch_size-th token"),
    "get_batch: targets not shifted": (check_get_batch, "get_batch", "source[i + 1:i + 1 + seq_len].reshape(-1)",
                                       "source[i:i + seq_len].reshape(-1)", "your targets are the inputs"),
    "get_batch: targets not flattened": (check_get_batch, "get_batch", "source[i + 1:i + 1 + seq_len].reshape(-1)",
                                         "source[i + 1:i + 1 + seq_len]", "flatten them to (seq_len * batch,)"),
    "get_batch: last window overruns": (check_get_batch, "get_batch", "seq_len = min(bptt, source.size(0) - 1 - i)",
                                        "seq_len = bptt", "seq_len = min(bptt, rows - 1 - i)"),
    "get_batch: targets column-major": (check_get_batch, "get_batch", "source[i + 1:i + 1 + seq_len].reshape(-1)",
                                        "source[i + 1:i + 1 + seq_len].t().reshape(-1)", "column by column"),
    "model: returns log_softmax": (check_language_model, "LanguageModel", "return logits, hidden",
                                   "return F.log_softmax(logits, dim=-1), hidden", "log-probabilities (log_softmax)"),
    "model: returns softmax": (check_language_model, "LanguageModel", "return logits, hidden",
                               "return F.softmax(logits, dim=-1), hidden", "probabilities (softmax)"),
    "model: decoder on the final hidden state": (
        check_language_model, "LanguageModel", "logits = self.decoder(self.drop(output))",
        "logits = self.decoder(self.drop(hidden[0] if isinstance(hidden, tuple) else hidden))",
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
                                 "        logits = self.decoder(output)", "those with dropout off"),
    "model: dropout on the embeddings only": (check_language_model, "LanguageModel",
                                              "logits = self.decoder(self.drop(output))",
                                              "logits = self.decoder(output)", "only the embeddings go through dropout"),
    "model: dropout on the output only": (check_language_model, "LanguageModel",
                                          "emb = self.drop(self.encoder(input))", "emb = self.encoder(input)",
                                          "only the rnn output goes through dropout"),
    "perplexity: mean of window perplexities": (check_corpus_perplexity, "corpus_perplexity", WINDOW_SUM,
                                                "total_loss += math.exp(loss.item() / targets.numel())\n"
                                                "            total_tokens += 1\n    return total_loss / total_tokens",
                                                "mean of the windows' perplexities"),
    "perplexity: unweighted mean of window means": (check_corpus_perplexity, "corpus_perplexity", WINDOW_SUM,
                                                    "total_loss += loss.item() / targets.numel()\n"
                                                    "            total_tokens += 1\n"
                                                    "    return math.exp(total_loss / total_tokens)",
                                                    "every window the same weight"),
    "perplexity: hidden not carried": (check_corpus_perplexity, "corpus_perplexity",
                                       "logits, hidden = model(inputs, hidden)",
                                       "logits, _ = model(inputs, hidden)", "zero hidden state"),
    "perplexity: model.eval() forgotten": (check_corpus_perplexity, "corpus_perplexity", "model.eval()", "pass",
                                           "call model.eval() before evaluating"),
    "perplexity: 2 ** nats": (check_corpus_perplexity, "corpus_perplexity",
                              "return math.exp(total_loss / total_tokens)", "return 2 ** (total_loss / total_tokens)",
                              "2 ** (cross-entropy in nats)"),
    "perplexity: exp of bits": (check_corpus_perplexity, "corpus_perplexity",
                                "return math.exp(total_loss / total_tokens)",
                                "return math.exp(total_loss / total_tokens / math.log(2))",
                                "exp of the cross-entropy in bits"),
    "perplexity: returns the cross-entropy": (check_corpus_perplexity, "corpus_perplexity",
                                              "return math.exp(total_loss / total_tokens)",
                                              "return total_loss / total_tokens", "the mean cross-entropy itself"),
    "sample: reseeds the global generator": (check_sample_next, "sample_next",
        "ids = torch.multinomial(probs, 1, generator=generator)",
        "torch.manual_seed(int(torch.randint(2**31 - 1, (), generator=generator)))\n"
        "    ids = torch.multinomial(probs, 1)", "used torch's global random generator"),
    "sample: temperature ignored": (check_sample_next, "sample_next", "scaled = logits / temperature",
                                    "scaled = logits", "as if temperature were 1"),
    "sample: multiplies by temperature": (check_sample_next, "sample_next", "scaled = logits / temperature",
                                          "scaled = logits * temperature", "softmax(logits * temperature)"),
    "sample: divides after the softmax": (check_sample_next, "sample_next",
                                          "probs = torch.softmax(scaled, dim=-1).reshape",
                                          "probs = (torch.softmax(scaled * temperature, dim=-1) / temperature).reshape",
                                          "as if temperature were 1"),
    "sample: top-k by index": (check_sample_next, "sample_next", "values, indices = scaled.topk(top_k, dim=-1)",
                               "values, indices = scaled[..., :top_k], "
                               "torch.arange(top_k).expand(*scaled.shape[:-1], top_k)",
                               "keep the first top_k ids, not the top_k largest logits"),
    "sample: top-k ignored": (check_sample_next, "sample_next", "if top_k is not None and top_k < scaled.size(-1):",
                              "if False:", "ignore top_k"),
    "sample: masked with zeros, not -inf": (check_sample_next, "sample_next", 'torch.full_like(scaled, float("-inf"))',
                                            "torch.zeros_like(scaled)", "set to 0, which still has probability"),
    "sample: generator not used": (check_sample_next, "sample_next", "torch.multinomial(probs, 1, generator=generator)",
                                   "torch.multinomial(probs, 1)", "used torch's global random generator"),
    "sample: temperature 0 divides by zero": (check_sample_next, "sample_next",
                                              "if temperature < 1e-8:\n        return logits.argmax(dim=-1)\n    scaled", "scaled",
                                              "sample_next(logits, temperature="),
    "sample: ids keep the sample dimension": (check_sample_next, "sample_next", "return ids.view(logits.shape[:-1])",
                                              "return ids", "ids has shape"),
}


test_mistake_is_rejected_with_specific_feedback = mutant_test(NOTEBOOK, MUTANTS)

# For the class grader's tests (tests/grading/test_grading_every_chapter.py): an answer that hands
# the work to the book's own package: (answer cell it follows, source, exercises it loses).
LIBRARY_ANSWER = ("batchify", "from rnn_by_hand.lm.data import batchify", ["batchify"])


def test_registry_lists_every_chapter_eight_check():
    assert {f"08-language-model/{n}" for n in ("batchify", "get_batch", "LanguageModel", "corpus_perplexity",
                                               "sample_next")} <= set(CHECKS)


class BorrowedModel(rnnlm.RNNModel):
    """A "LanguageModel" that is rnnlm's, under another name."""


def borrowed_perplexity(model, source, bptt):
    from rnn_by_hand.lm.evaluate import cross_entropy  # imported before the check, called during it
    return math.exp(cross_entropy(model, source, bptt))


@pytest.mark.parametrize("check, student, called", [
    (check_batchify, rnnlm.batchify, "rnn_by_hand.lm.data.batchify"),
    (check_get_batch, lambda source, i, bptt: rnnlm.get_batch(source, i, bptt), "rnn_by_hand.lm.data.get_batch"),
    (check_language_model, BorrowedModel, "rnn_by_hand.lm.model.RNNModel.__init__"),
    (check_corpus_perplexity, rnnlm.perplexity, "rnn_by_hand.lm.evaluate.perplexity"),
    (check_corpus_perplexity, borrowed_perplexity, "rnn_by_hand.lm.evaluate.cross_entropy"),
    (check_sample_next, rnnlm.sample_next, "rnn_by_hand.lm.generate.sample_next")])
def test_answers_that_call_the_book_package_are_refused(check, student, called):
    """rnnlm holds every answer of the chapter; calling it is not writing it."""
    with pytest.raises(CheckFailure, match=f"is not written by hand: it calls {re.escape(called)}"):
        check(student, quiet=True)


def test_the_book_package_works_again_after_a_refusal():
    with pytest.raises(CheckFailure):
        check_corpus_perplexity(rnnlm.perplexity, quiet=True)
    model = rnnlm.RNNModel("GRU", 12, 4, 5, 1)
    data = rnnlm.batchify(torch.randint(0, 12, (40,)), 4)                 # (10, 4)
    assert math.isfinite(rnnlm.perplexity(model, data, bptt=3))
    assert model(data[:3], model.init_hidden(4))[0].shape == (3, 4, 12)


def test_a_correct_sampler_passes_whatever_the_secret_seed(solution):
    for seed in range(6):
        check_sample_next(solution["sample_next"], hidden=True, seed=seed, quiet=True)


def test_every_mistaken_distribution_is_far_beyond_the_bound():
    """The bound leaves a margin: each mistake's distribution is at least 3 bounds away in some row,
    so sampling noise cannot let it through, whatever the seed."""
    check = check_sample_next
    for seed in (None, 1, 2, 3, 4, 5, 6, 7):
        for case in check.make_cases(hidden=False, seed=seed) + check.make_cases(hidden=True, seed=seed):
            T, k, logits = case.config["temperature"], case.config["top_k"], case.tensors["logits"]
            if T < 1e-8:
                continue
            right = target_probabilities(logits, T, k)
            bound = check.bound(right, case.config["draws"])
            wrong = [target_probabilities(logits, 1.0, k), target_probabilities(logits * T, 1.0, k)] \
                if T != 1.0 else []
            if k is not None:
                first = torch.full_like(logits, float("-inf"))
                first[:, :k] = logits[:, :k] / T
                top = logits.topk(k, dim=-1).indices
                zeros = torch.zeros_like(logits).scatter(-1, top, logits.gather(-1, top) / T)
                wrong += [torch.softmax(first, -1), target_probabilities(logits, T, None), torch.softmax(zeros, -1)]
            for probabilities in wrong:
                assert (0.5 * (probabilities - right).abs().sum(-1) > 3 * bound).any(), case.label


def test_top_k_cases_never_have_the_top_k_first(solution):
    for hidden in (False, True):
        for case in check_sample_next.make_cases(hidden=hidden, seed=5):
            k = case.config["top_k"]
            if k is not None:
                assert not (case.tensors["logits"].topk(k, dim=-1).indices < k).all(-1).any()


def test_window_mistakes_really_differ():
    """Every perplexity case has a short last window, so weighting mistakes change the value."""
    for hidden in (False, True):
        for case in check_corpus_perplexity.make_cases(hidden=hidden):
            rows, bptt = case.config["rows"], case.config["bptt"]
            assert (rows - 1) % bptt != 0, case.label


@pytest.mark.parametrize("check, cell, wrap, words", [
    (check_get_batch, "get_batch", lambda f: lambda *a: None, "should return a tuple (inputs, targets), got None"),
    (check_batchify, "batchify", lambda f: lambda d, b: f(d, b).float(), "dtype torch.float32, expected torch.int64"),
    (check_corpus_perplexity, "corpus_perplexity", lambda f: lambda *a: str(f(*a)),
     "should return a number (a Python float), got a str"),
    (check_corpus_perplexity, "corpus_perplexity", lambda f: lambda *a: torch.tensor(f(*a), dtype=torch.float64), None),
    (check_corpus_perplexity, "corpus_perplexity", lambda f: lambda *a: torch.tensor(f(*a)).item(), "float32 rounding"),
    (check_sample_next, "sample_next", lambda f: lambda *a, **k: f(*a, **k).double(), "dtype torch.float64"),
    (check_sample_next, "sample_next", lambda f: lambda *a, **k: f(*a, **k).tolist(), "should be a torch.Tensor"),
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
        inputs, targets = solution["get_batch"](source, i, bptt)
        return inputs, (targets + 1 if i > 0 else targets)
    with pytest.raises(CheckFailure) as failure:
        check_get_batch(late, quiet=True)
    message = str(failure.value)
    assert "get_batch differs from rnn_by_hand.lm.data.get_batch on case 1 of 3" in message
    assert "targets (window at i=4)[k=0] is" in message


def test_reference_really_is_rnnlm():
    """Changing the case's weights changes the expected logits: they come from RNNModel at check time."""
    case = check_language_model.make_cases()[0]
    before = check_language_model.run_reference(case)["logits"]
    case.tensors["state.decoder.bias"] = case.tensors["state.decoder.bias"] + 1
    after = check_language_model.run_reference(case)["logits"]
    assert torch.allclose(after, before + 1)
    value = check_corpus_perplexity.run_reference(check_corpus_perplexity.make_cases()[0])["perplexity"]
    assert math.isfinite(value) and value > 1


def test_sampling_bound_is_deterministic_for_a_correct_answer(solution):
    first = check_sample_next.run_student(solution["sample_next"], check_sample_next.make_cases()[0])
    again = check_sample_next.run_student(solution["sample_next"], check_sample_next.make_cases()[0])
    assert torch.equal(first["ids"], again["ids"]) and first["reproducible"]
    assert isinstance(check_sample_next, SampleNextCheck)
