"""The chapter 2 checks accept the reference solution and reject wrong answers.

Wrong answers are made by mutating the reference solution's own source (the
solution notebook), so every mutant is one plausible student mistake away from
a correct answer. A check that accepts any of them is a bug; so is a check that
rejects a correct answer written another way.
"""
from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnn_by_hand import CHECKS, CheckFailure
from rnn_by_hand.chapters.embedding import (
    check_embedding_grad, check_embedding_lookup, check_embedding_max_norm, check_embedding_one_hot,
    check_encode, check_extend_vocab)
from rnn_by_hand.chapters.embedding.vocab import counts_of, extended, reference_encode, vocabulary
from conftest import REPO
from mutants import mutant_test, student_namespace, untrapped

NOTEBOOK = REPO / "solutions" / "02-embedding" / "embedding.ipynb"
ALL = (check_extend_vocab, check_encode, check_embedding_lookup, check_embedding_one_hot,
       check_embedding_grad, check_embedding_max_norm)


@pytest.fixture(scope="module")
def solution():
    return student_namespace(NOTEBOOK)


def params(case) -> dict:
    """A case's configuration without its generated corpus."""
    return {k: v for k, v in case.config.items() if k not in ("sentences", "to_encode", "max_norm")}


# -- the cases can tell right from wrong ------------------------------------------------

@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("seed", [None, 5, 77])
def test_corpora_have_ties_rare_words_and_words_at_min_freq(hidden, seed):
    """Every rule of extend_vocab makes a difference on these corpora."""
    cases = check_extend_vocab.make_cases(hidden=hidden, seed=seed)
    for case in cases:
        itos, sentences = case.config["itos"], case.config["sentences"]
        counts, min_freq = counts_of(sentences), case.config["min_freq"]
        new = [w for w in counts if counts[w] >= min_freq and w not in itos]
        assert len({counts[w] for w in new}) < len(new), "no tie among the new words"
        assert extended(itos, sentences, min_freq, order="first_seen") != extended(itos, sentences, min_freq)
        known = [w for w in itos[2:] if w in counts]
        assert known, "the new text repeats no word of the given vocabulary"
        assert sorted(itos[2:], key=lambda w: (-counts[w], w)) != itos[2:], "the given itos is in count order"
    with_threshold = [c for c in cases if c.config["min_freq"] > 1]
    assert with_threshold
    for case in with_threshold:
        counts, min_freq = counts_of(case.config["sentences"]), case.config["min_freq"]
        fresh = [counts[w] for w in counts if w not in case.config["itos"]]
        assert any(c < min_freq for c in fresh), "no new word below min_freq"
        assert any(c == min_freq for c in fresh), "no new word exactly at min_freq"
    assert any(c.config.get("unk_in_text") and "<unk>" in counts_of(c.config["sentences"])
               for c in cases)


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("seed", [None, 5, 77])
def test_encode_cases_contain_unknown_words(hidden, seed):
    for case in check_encode.make_cases(hidden=hidden, seed=seed):
        stoi = dict(map(reversed, enumerate(vocabulary(case.config["sentences"],
                                                        case.config["min_freq"]))))
        words = [w for s in case.config["to_encode"] for w in s.split()]
        assert any(w not in stoi for w in words)


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("seed", [None, 5, 77])
def test_max_norm_cases_have_every_kind_of_row(hidden, seed):
    """Looked-up rows above and below max_norm, a row above it left alone, a repeated index."""
    for case in check_embedding_max_norm.make_cases(hidden=hidden, seed=seed):
        w, idx, config = case.tensors["weight"], case.tensors["input"], case.config
        norms = w.norm(config["norm_type"], dim=1)
        looked_up = torch.zeros(len(w), dtype=torch.bool)
        looked_up[idx.reshape(-1)] = True
        above = norms > config["max_norm"]
        assert (looked_up & above).any() and (looked_up & ~above).any()
        assert (~looked_up & above).any()
        assert idx.numel() > idx.unique().numel()
        assert (norms - config["max_norm"]).abs().min() > 1e-6


@pytest.mark.parametrize("hidden", [False, True])
def test_grad_cases_repeat_indices_and_use_the_padding_row(hidden):
    for case in check_embedding_grad.make_cases(hidden=hidden, seed=3):
        idx, pad = case.tensors["input"].reshape(-1), case.config["padding_idx"]
        assert idx.numel() > idx.unique().numel()
        if pad is not None:
            assert (idx == pad % case.config["num_embeddings"]).sum() >= 2
    configs = [c.config for c in check_embedding_grad.make_cases(hidden=True)]
    assert any((c["padding_idx"] or 0) < 0 for c in configs)
    assert any(c["scale_grad_by_freq"] and c["padding_idx"] is not None for c in configs)


def test_one_hot_cases_leave_the_last_rows_unused():
    """Otherwise F.one_hot without num_classes would happen to be wide enough."""
    for hidden in (False, True):
        cases = check_embedding_one_hot.make_cases(hidden=hidden, seed=11)
        assert any(int(c.tensors["input"].max()) + 1 < c.config["num_embeddings"] for c in cases)


def test_reference_vocabulary_follows_the_rule():
    sentences = ["b a", "a c c", "<unk> d b"]
    assert vocabulary(sentences, 1) == ["<unk>", "<eos>", "a", "b", "c", "d"]
    assert vocabulary(sentences, 2) == ["<unk>", "<eos>", "a", "b", "c"]
    assert vocabulary(sentences, 3) == ["<unk>", "<eos>"]
    assert vocabulary(["z z y y x"], 1) == ["<unk>", "<eos>", "y", "z", "x"]
    stoi = {w: i for i, w in enumerate(vocabulary(sentences, 2))}
    assert reference_encode("a d c", stoi).tolist() == [2, 0, 4, 1]
    assert reference_encode("", stoi).tolist() == [1]
    assert reference_encode("a", stoi).dtype == torch.long
    old = ["<unk>", "<eos>", "c", "x"]
    assert extended(old, sentences, 1) == old + ["a", "b", "d"]
    assert extended(old, sentences, 2) == old + ["a", "b"]
    assert extended(old, ["z z y y w x"], 1) == old + ["y", "z", "w"]
    assert extended(old, ["z z y y w x"], 1, order="appearance") == old + ["z", "y", "w"]


# -- mutants of the solution ---------------------------------------------------------------

MAX_NORM_BODY = """\
    rows = input.reshape(-1).unique()  # (k,): each looked-up row once
    norms = weight[rows].norm(p=norm_type, dim=1)  # (k,)
    too_long = norms > max_norm
    scale = max_norm / (norms[too_long] + 1e-7)  # PyTorch's formula, with its epsilon
    with torch.no_grad():  # as in nn.Embedding: the renormalisation is outside the graph
        weight[rows[too_long]] *= scale.unsqueeze(1)
    return weight[input]  # (*, embedding_dim), from the renormalised weight
"""

# Each mutant: (check, cell, source text, replacement, words the feedback must contain)
MUTANTS = {
    # extend_vocab
    "extend: count > min_freq": (check_extend_vocab, "extend_vocab", "c >= min_freq", "c > min_freq",
                                 "add a word when count >= min_freq"),
    "extend: Counter.most_common ties": (
        check_extend_vocab, "extend_vocab",
        "new = [w for w, c in counts.items() if c >= min_freq and w not in known]\n"
        "    new.sort(key=lambda w: (-counts[w], w))",
        "new = [w for w, c in counts.most_common() if c >= min_freq and w not in known]",
        "Counter.most_common()"),
    "extend: order of appearance": (check_extend_vocab, "extend_vocab",
                                    "    new.sort(key=lambda w: (-counts[w], w))", "    pass",
                                    "in order of first appearance"),
    "extend: known words added again": (check_extend_vocab, "extend_vocab", " and w not in known]", "]",
                                        "appears twice"),
    "extend: only the specials skipped": (check_extend_vocab, "extend_vocab", "w not in known]",
                                          "w not in SPECIALS]", "appears twice"),
    "extend: a new vocabulary from the new text": (
        check_extend_vocab, "extend_vocab", "    known = set(itos)",
        "    itos = list(SPECIALS)  # the given vocabulary dropped\n    known = set(itos)",
        "built a new vocabulary from the new text alone"),
    "extend: everything sorted again": (
        check_extend_vocab, "extend_vocab", "itos = list(itos) + new",
        "itos = itos[:2] + sorted(itos[2:] + new, key=lambda w: (-counts[w], w))",
        "keeps its index"),
    "extend: appends to the given list": (check_extend_vocab, "extend_vocab", "itos = list(itos) + new",
                                          "itos.extend(new)", "changed the itos it was given"),
    "extend: stoi off by one": (check_extend_vocab, "extend_vocab", "enumerate(itos)",
                                "enumerate(itos, 1)", "stoi counts from 1"),
    # encode
    "encode: no <eos>": (check_encode, "encode", 'ids.append(stoi["<eos>"])', "pass",
                         "'<eos>' is missing"),
    "encode: <eos> first": (check_encode, "encode", 'ids.append(stoi["<eos>"])',
                            'ids.insert(0, stoi["<eos>"])', "not before them"),
    "encode: unknown words dropped": (check_encode, "encode",
                                      "[stoi.get(word, unk) for word in sentence.split()]",
                                      "[stoi[word] for word in sentence.split() if word in stoi]",
                                      "were left out"),
    "encode: KeyError on unknown words": (check_encode, "encode", "stoi.get(word, unk)", "stoi[word]",
                                          "encode raised KeyError"),
    "encode: adds unknown words to stoi": (check_encode, "encode", "stoi.get(word, unk)",
                                           "stoi.setdefault(word, len(stoi))", "changed stoi: it added"),
    "encode: returns a list": (check_encode, "encode", "return torch.tensor(ids, dtype=torch.long)",
                               "return ids", "should be a torch.Tensor, got a list"),
    "encode: float indices": (check_encode, "encode", "dtype=torch.long", "dtype=torch.float32",
                              "expected torch.int64 (torch.long)"),
    # embedding_lookup
    "lookup: flattened": (check_embedding_lookup, "embedding_lookup", "return weight[input]",
                          "return weight[input.reshape(-1)]", "the input's shape was flattened"),
    "lookup: index - 1": (check_embedding_lookup, "embedding_lookup", "return weight[input]",
                          "return weight[input - 1]", "one before the index"),
    "lookup: columns instead of rows": (check_embedding_lookup, "embedding_lookup",
                                        "return weight[input]", "return weight.T[input]",
                                        "selects a row of weight"),
    "lookup: embedding dim first": (check_embedding_lookup, "embedding_lookup", "return weight[input]",
                                    "return weight[input].movedim(-1, 0)", "comes last, not first"),
    "lookup: float32": (check_embedding_lookup, "embedding_lookup", "return weight[input]",
                        "return weight[input].float()", "dtype torch.float32"),
    "lookup: calls F.embedding": (check_embedding_lookup, "embedding_lookup", "return weight[input]",
                                  "return F.embedding(input, weight)", "not written by hand"),
    # embedding_one_hot
    "one-hot: no num_classes": (check_embedding_one_hot, "embedding_one_hot",
                                "F.one_hot(input, num_classes=num_embeddings)", "F.one_hot(input)",
                                "pass num_classes=weight.shape[0]"),
    "one-hot: left as int64": (check_embedding_one_hot, "embedding_one_hot", ".to(weight.dtype)", "",
                               "convert the one-hot tensor to weight.dtype"),
    "one-hot: float32 product": (check_embedding_one_hot, "embedding_one_hot", "return one_hot @ weight",
                                 "return one_hot.float() @ weight.float()", "dtype torch.float32"),
    "one-hot: indexes instead": (check_embedding_one_hot, "embedding_one_hot", "return one_hot @ weight",
                                 "return weight[input]", "never uses weight in a product"),
    "one-hot: one column short": (check_embedding_one_hot, "embedding_one_hot",
                                  "num_classes=num_embeddings", "num_classes=num_embeddings - 1",
                                  "cannot be multiplied"),
    # embedding_grad
    "grad: padding row gets gradient": (check_embedding_grad, "embedding_grad",
                                        "grad[padding_idx] = 0", "pass", "the padding row received gradient"),
    "grad: negative padding_idx ignored": (check_embedding_grad, "embedding_grad",
                                           "if padding_idx is not None:",
                                           "if padding_idx is not None and padding_idx >= 0:",
                                           "counts from the end"),
    "grad: assignment, not accumulation": (check_embedding_grad, "embedding_grad",
                                           "grad.index_add_(0, flat, rows)", "grad[flat] = rows",
                                           "keeps only one of them"),
    "grad: scale_grad_by_freq ignored": (check_embedding_grad, "embedding_grad",
                                         "if scale_grad_by_freq:", "if False:", "yours is not scaled"),
    "grad: always scaled": (check_embedding_grad, "embedding_grad", "if scale_grad_by_freq:",
                            "if True:", "but scale_grad_by_freq=False"),
    "grad: divided by the number of indices": (check_embedding_grad, "embedding_grad",
                                               "rows = rows / counts[flat].unsqueeze(1)",
                                               "rows = rows / flat.numel()",
                                               "not by the total number of indices"),
    # embedding_max_norm
    "max_norm: every row": (check_embedding_max_norm, "embedding_max_norm",
                            "rows = input.reshape(-1).unique()", "rows = torch.arange(weight.shape[0])",
                            "does not look up were renormalised too"),
    "max_norm: no 1e-7": (check_embedding_max_norm, "embedding_max_norm", "(norms[too_long] + 1e-7)",
                          "norms[too_long]", "with the 1e-7"),
    "max_norm: always the 2-norm": (check_embedding_max_norm, "embedding_max_norm",
                                    "norm(p=norm_type, dim=1)", "norm(p=2, dim=1)",
                                    "measured with the 2-norm"),
    "max_norm: short rows scaled up too": (check_embedding_max_norm, "embedding_max_norm",
                                           "too_long = norms > max_norm", "too_long = norms >= 0",
                                           "already at most max_norm"),
    "max_norm: weight not changed in place": (check_embedding_max_norm, "embedding_max_norm",
                                              "        weight[rows[too_long]] *= scale.unsqueeze(1)",
                                              "        weight = weight.clone()\n"
                                              "        weight[rows[too_long]] *= scale.unsqueeze(1)",
                                              "weight is unchanged"),
    "max_norm: output before renormalising": (
        check_embedding_max_norm, "embedding_max_norm", MAX_NORM_BODY,
        "    before = weight[input].clone()  # looked up too early\n"
        + MAX_NORM_BODY.replace("return weight[input]", "return before"), "before renormalisation"),
    "max_norm: repeated index scaled twice": (
        check_embedding_max_norm, "embedding_max_norm", MAX_NORM_BODY,
        MAX_NORM_BODY.replace(".unique()", "").replace(
            "weight[rows[too_long]] *= scale.unsqueeze(1)",
            "weight.index_add_(0, rows[too_long], weight[rows[too_long]] * (scale.unsqueeze(1) - 1))"),
        "looks up more than once"),
}
def mutant(name) -> dict:
    _, cell, old, new, _ = MUTANTS[name]
    return student_namespace(NOTEBOOK, mutation=(cell, old, new))


test_mistake_is_rejected_with_specific_feedback = mutant_test(NOTEBOOK, MUTANTS)

# For the class grader's tests (tests/grading/test_grading_every_chapter.py): an answer that hands
# the work to torch.nn: (answer cell it follows, source, exercises it loses).
LIBRARY_ANSWER = ("embedding_lookup", "def embedding_lookup(input, weight):\n"
                                     "    return torch.nn.functional.embedding(input, weight)",
                  ["embedding_lookup"])


def test_no_float32_guess_when_the_epsilon_is_missing():
    """An error of 1e-8 here comes from max_norm / norm, not from float32: say only that."""
    student = mutant("max_norm: no 1e-7")["embedding_max_norm"]
    with pytest.raises(CheckFailure) as failure:
        check_embedding_max_norm(student, quiet=True)
    assert "float32" not in str(failure.value) and "max_norm / (norm + 1e-7)" in str(failure.value)


# -- correct answers written another way pass -------------------------------------------

def lookup_index_select(input, weight):
    return weight.index_select(0, input.reshape(-1)).reshape(*input.shape, weight.shape[1])


def one_hot_eye(input, weight):
    return torch.eye(weight.shape[0], dtype=weight.dtype)[input] @ weight


def one_hot_einsum(input, weight):
    one_hot = F.one_hot(input, weight.shape[0]).to(weight.dtype)
    return torch.einsum("...v,vh->...h", one_hot, weight)


def one_hot_linear(input, weight):
    return F.linear(F.one_hot(input, weight.shape[0]).double(), weight.T)


def one_hot_mm(input, weight):
    one_hot = torch.zeros(input.numel(), weight.shape[0], dtype=weight.dtype)
    one_hot[torch.arange(input.numel()), input.reshape(-1)] = 1
    return torch.mm(one_hot, weight).reshape(*input.shape, -1)


def grad_by_autograd(grad_output, input, num_embeddings, padding_idx=None, scale_grad_by_freq=False):
    weight = torch.zeros(num_embeddings, grad_output.shape[-1], dtype=grad_output.dtype,
                         requires_grad=True)
    g = grad_output
    if scale_grad_by_freq:
        g = g / torch.bincount(input.reshape(-1), minlength=num_embeddings)[input].unsqueeze(-1)
    weight[input].backward(g)
    grad = weight.grad
    if padding_idx is not None:
        grad[padding_idx % num_embeddings] = 0
    return grad


def grad_by_loop(grad_output, input, num_embeddings, padding_idx=None, scale_grad_by_freq=False):
    flat, rows = input.reshape(-1).tolist(), grad_output.reshape(len(input.reshape(-1)), -1)
    counts = Counter(flat)
    pad = None if padding_idx is None else padding_idx % num_embeddings
    grad = torch.zeros(num_embeddings, rows.shape[1], dtype=rows.dtype)
    for k, index in enumerate(flat):
        if index != pad:
            grad[index] += rows[k] / (counts[index] if scale_grad_by_freq else 1)
    return grad


def max_norm_loop(input, weight, max_norm, norm_type=2.0):
    for index in sorted(set(input.reshape(-1).tolist())):
        norm = torch.linalg.vector_norm(weight[index], ord=norm_type)
        if norm > max_norm:
            weight[index] *= max_norm / (norm + 1e-7)
    return weight[input]


def max_norm_repeats(input, weight, max_norm, norm_type=2.0):
    """Renormalising a repeated row again changes nothing: its norm is now below max_norm."""
    for index in input.reshape(-1).tolist():
        norm = weight[index].norm(norm_type)
        if norm > max_norm:
            weight[index] = weight[index] * (max_norm / (norm + 1e-7))
    return weight[input]


def extend_sorted_items(itos, sentences, min_freq=1):
    counts = Counter(w for s in sentences for w in s.split())
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    itos = itos + [w for w, c in ranked if c >= min_freq and w not in itos]
    return itos, {w: i for i, w in enumerate(itos)}


def encode_loop(sentence, stoi):
    ids = torch.empty(len(sentence.split()) + 1, dtype=torch.int64)
    for k, word in enumerate(sentence.split()):
        ids[k] = stoi[word] if word in stoi else stoi["<unk>"]
    ids[-1] = stoi["<eos>"]
    return ids


@pytest.mark.parametrize("check, student", [
    (check_embedding_lookup, lookup_index_select),
    (check_embedding_one_hot, one_hot_eye),
    (check_embedding_one_hot, one_hot_einsum),
    (check_embedding_one_hot, one_hot_linear),
    (check_embedding_one_hot, one_hot_mm),
    (check_embedding_grad, grad_by_autograd),
    (check_embedding_grad, grad_by_loop),
    (check_embedding_max_norm, max_norm_loop),
    (check_embedding_max_norm, max_norm_repeats),
    (check_extend_vocab, extend_sorted_items),
    (check_encode, encode_loop),
], ids=lambda x: getattr(x, "__name__", ""))
def test_other_correct_answers_pass(check, student):
    for hidden in (False, True):
        check(student, hidden=hidden, quiet=True)


# -- messages ---------------------------------------------------------------------------

def test_feedback_names_the_output_case_and_index(solution):
    def last_row_wrong(input, weight):
        output = solution["embedding_lookup"](input, weight).clone()
        output[-1, -1] += 1.0
        return output
    with pytest.raises(CheckFailure) as failure:
        check_embedding_lookup(last_row_wrong, quiet=True)
    message = str(failure.value)
    assert message.startswith("embedding_lookup does not match torch.nn.Embedding on case 1 of 3 "
                              "(num_embeddings=10, embedding_dim=4, shape=(6,)):")
    assert "output[i0=5, h=3] is" in message and "largest error 1" in message


def test_vocabulary_feedback_names_the_first_wrong_word(solution):
    def swapped(itos, sentences, min_freq=1):
        known = len(itos)
        itos, _ = solution["extend_vocab"](itos, sentences, min_freq)
        itos[known], itos[-1] = itos[-1], itos[known]  # the most and the least frequent new word
        return itos, {w: i for i, w in enumerate(itos)}
    with pytest.raises(CheckFailure) as failure:
        check_extend_vocab(swapped, quiet=True)
    message = str(failure.value)
    assert "extend_vocab does not match the rule of extend_vocab" in message
    assert "case 1 of 3 (n_old=15, n_sentences=20, n_words=25, min_freq=1, n_known=2, 19 words given)" \
        in message
    assert "itos[19] is '" in message and "(count " in message and "expected '" in message
    assert "sentences=[" not in message  # the corpus itself is not printed


def test_ok_messages(solution, capsys):
    check_extend_vocab(solution["extend_vocab"])
    check_embedding_grad(solution["embedding_grad"])
    out = capsys.readouterr().out
    assert "OK: extend_vocab matches the rule of extend_vocab" in out
    assert "on 3 random corpora (compared exactly)" in out
    assert "OK: embedding_grad matches autograd through torch.nn.Embedding (weight.grad) on 3 cases " \
        "(float64" in out


own_extended = untrapped(extended)  # wrong answers below are built from the reference


@pytest.mark.parametrize("student, words", [
    (lambda i, s, min_freq=1: own_extended(i, s, min_freq), "should return a tuple (itos, stoi), got a list"),
    (lambda i, s, min_freq=1: tuple(reversed(extend_sorted_items(i, s, min_freq))),
     "itos should be a list of words, got a dict"),
    (lambda i, s, min_freq=1: (list(range(5)), {}), "itos[0] is 0, but the vocabulary you were given"),
    (lambda i, s, min_freq=1: (i + [3], {}), "itos should hold strings (the words), but holds an int"),
    (lambda i, s, min_freq=1: (own_extended(i, s, min_freq), own_extended(i, s, min_freq)),
     "stoi should be a dict from word to index, got a list"),
    (lambda i, s, min_freq=1: (own_extended(i, s, min_freq), {"<unk>": 0}), "stoi has no entry for '<eos>'"),
    (lambda i, s, min_freq=1: (own_extended(i, s, min_freq)[:-1],
                               {w: k for k, w in enumerate(own_extended(i, s, min_freq))}), "it stops before"),
])
def test_wrong_vocabulary_results_get_clear_messages(student, words):
    with pytest.raises(CheckFailure) as failure:
        check_extend_vocab(student, quiet=True)
    assert words in str(failure.value)


@pytest.mark.parametrize("result, words", [
    (lambda out: out.numpy(), "output should be a torch.Tensor, got a numpy.ndarray"),
    (lambda out: out * float("nan"), "not a finite number"),
    (lambda out: out.unsqueeze(0), "output has shape (1, 6, 4), expected (6, 4)"),
])
def test_wrong_return_values_get_clear_messages(solution, result, words):
    def student(input, weight):
        return result(solution["embedding_lookup"](input, weight))
    with pytest.raises(CheckFailure) as failure:
        check_embedding_lookup(student, quiet=True)
    assert words in str(failure.value)


def test_student_exceptions_become_feedback_not_tracebacks():
    def not_done(*args, **kwargs):
        raise NotImplementedError()
    for check in ALL:
        with pytest.raises(CheckFailure, match="not implemented yet"):
            check(not_done)

    def crashes(input, weight, max_norm, norm_type=2.0):
        return weight @ input  # a shape error inside torch
    with pytest.raises(CheckFailure) as failure:
        check_embedding_max_norm(crashes)
    message = str(failure.value)
    assert message.startswith("embedding_max_norm raised RuntimeError: ")
    assert "return weight @ input" in message and failure.value.__cause__ is None


def test_in_place_edits_of_inputs_are_reported(solution):
    def sorts_input(input, weight):
        input.copy_(input.reshape(-1).sort().values.reshape(input.shape))
        return weight[input]

    def sorts_sentences(itos, sentences, min_freq=1):
        sentences.sort()
        return solution["extend_vocab"](itos, sentences, min_freq)

    def changes_weight(input, weight):
        weight.zero_()
        return weight[input]
    with pytest.raises(CheckFailure, match="changed one of its input tensors in place"):
        check_embedding_lookup(sorts_input)
    with pytest.raises(CheckFailure, match="changed the list of sentences"):
        check_extend_vocab(sorts_sentences)
    with pytest.raises(CheckFailure, match="changed one of its input tensors in place"):
        check_embedding_one_hot(lambda input, weight: changes_weight(input, weight) @ torch.eye(
            weight.shape[1], dtype=weight.dtype))


def test_registry_lists_every_chapter_two_check():
    assert {f"02-embedding/{c.student_name}" for c in ALL} <= set(CHECKS)


def test_references_really_are_torch_nn():
    """The references come from the module: the same numbers as nn.Embedding built here."""
    case = check_embedding_max_norm.make_cases(hidden=True)[1]  # norm_type = inf
    config, t = case.config, case.tensors
    module = nn.Embedding.from_pretrained(t["weight"].clone(), freeze=False,
                                          max_norm=config["max_norm"], norm_type=config["norm_type"])
    output = module(t["input"])
    expected = check_embedding_max_norm.run_reference(case)
    assert torch.equal(expected["output"], output) and torch.equal(expected["weight"], module.weight)
    assert not torch.equal(expected["weight"], t["weight"]), "the case did not renormalise anything"

    case = check_embedding_grad.make_cases()[2]
    module = nn.Embedding(case.config["num_embeddings"], case.config["embedding_dim"],
                          padding_idx=case.config["padding_idx"], scale_grad_by_freq=True,
                          dtype=torch.float64)
    module(case.tensors["input"]).backward(case.tensors["grad_output"])
    assert torch.equal(check_embedding_grad.run_reference(case)["grad_weight"], module.weight.grad)


@pytest.mark.parametrize("check, student", [
    (check_embedding_lookup, lambda input, weight: F.embedding(input, weight)),
    (check_embedding_one_hot, lambda input, weight: nn.Embedding.from_pretrained(weight)(input)),
    (check_embedding_grad, lambda g, input, n, padding_idx=None, scale_grad_by_freq=False:
        _autograd_through_f_embedding(g, input, n, padding_idx, scale_grad_by_freq)),
    (check_embedding_max_norm, lambda input, weight, max_norm, norm_type=2.0:
        F.embedding(input, weight, max_norm=max_norm, norm_type=norm_type)),
], ids=["lookup", "one-hot", "grad", "max_norm"])
def test_answers_that_call_torch_embedding_are_rejected(check, student):
    with pytest.raises(CheckFailure, match="is not written by hand: it calls torch's built-in embedding"):
        check(student, quiet=True)
    # the trap is removed afterwards: torch.nn works again for everyone else
    nn.Embedding(3, 2, max_norm=1.0)(torch.tensor([0, 2]))


def _autograd_through_f_embedding(grad_output, input, num_embeddings, padding_idx, scale):
    weight = torch.zeros(num_embeddings, grad_output.shape[-1], dtype=grad_output.dtype,
                         requires_grad=True)
    F.embedding(input, weight, padding_idx=padding_idx, scale_grad_by_freq=scale).backward(grad_output)
    return weight.grad
