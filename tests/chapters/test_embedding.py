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
    check_embedding_bag, check_embedding_bag_matrix, check_embedding_grad, check_encode_batch,
    check_extend_vocab)
from rnn_by_hand.chapters.embedding.lookup import bagged, empty_bags
from rnn_by_hand.chapters.embedding.vocab import (counts_of, extended, reference_batch, reference_encode,
                                                  vocabulary)
from conftest import REPO
from mutants import mutant_test, student_namespace, untrapped

NOTEBOOK = REPO / "solutions" / "02-embedding" / "embedding.ipynb"
ALL = (check_extend_vocab, check_encode_batch, check_embedding_bag, check_embedding_bag_matrix,
       check_embedding_grad)
BAGS = (check_embedding_bag, check_embedding_bag_matrix)


@pytest.fixture(scope="module")
def solution():
    return student_namespace(NOTEBOOK)


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
def test_batches_have_unknown_words_and_rows_of_different_lengths(hidden, seed):
    for case in check_encode_batch.make_cases(hidden=hidden, seed=seed):
        stoi = dict(map(reversed, enumerate(vocabulary(case.config["sentences"],
                                                        case.config["min_freq"]))))
        words = [w for s in case.config["to_encode"] for w in s.split()]
        assert any(w not in stoi for w in words)
        _, lengths = reference_batch(case.config["to_encode"], stoi, len(stoi))
        assert lengths.min() < lengths.max(), "no row is padded"
        assert lengths.argmax() > 0, "the longest row is the first: its length would do for all"


@pytest.mark.parametrize("check", BAGS, ids=lambda c: c.student_name)
@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("seed", [None, 5, 77])
def test_bag_cases_have_empty_bags_repeats_and_padding(check, hidden, seed):
    """An empty bag wherever bags are cut by offsets, an index twice in one bag, and padding
    both among other rows and alone in a bag."""
    for case in check.make_cases(hidden=hidden, seed=seed):
        t, config = case.tensors, case.config
        V, pad = config["num_embeddings"], config.get("padding_idx")
        bags = [bag for bag, _ in _bags(case)]
        assert any(len(bag.unique()) < len(bag) for bag in bags), "no index twice in one bag"
        if t["input"].dim() == 1:
            assert any(len(bag) == 0 for bag in bags), "no empty bag"
        if pad is not None:
            assert any((bag == pad % V).all() and len(bag) for bag in bags), "no bag of padding alone"
            assert any((bag == pad % V).any() and (bag != pad % V).any() for bag in bags)
    if check is check_embedding_bag_matrix:
        cases = check.make_cases(hidden=hidden, seed=seed)
        assert any(int(c.tensors["input"].max()) + 1 < c.config["num_embeddings"] for c in cases), \
            "F.one_hot without num_classes would happen to be wide enough"


def _bags(case):
    from rnn_by_hand.chapters.embedding.lookup import bag_indices
    t = case.tensors
    return untrapped(bag_indices)(t["input"], t.get("offsets"), case.config.get("layout") == "last offset")


@pytest.mark.parametrize("check", BAGS, ids=lambda c: c.student_name)
@pytest.mark.parametrize("hidden", [False, True])
def test_our_bags_are_nn_embedding_bags(check, hidden):
    """bagged, which the hints build their mistakes from, is nn.EmbeddingBag when it makes none."""
    for case in check.make_cases(hidden=hidden, seed=13):
        t, config = case.tensors, case.config
        ours = bagged(t["input"], t["weight"], t.get("offsets"), config["mode"],
                      config.get("layout") == "last offset", t.get("per_sample_weights"),
                      config.get("padding_idx"))
        assert torch.allclose(ours, check.run_reference(case)["output"], rtol=1e-12, atol=1e-12)
        empty = empty_bags(t["input"], t.get("offsets"), config.get("layout") == "last offset",
                           config.get("padding_idx"), config["num_embeddings"])
        assert (check.run_reference(case)["output"][empty] == 0).all()


def test_our_bags_by_hand():
    weight = torch.arange(12.0, dtype=torch.float64).reshape(6, 2)  # row i is [2i, 2i + 1]
    input, offsets = torch.tensor([0, 2, 4, 1, 2]), torch.tensor([0, 3, 3])
    assert bagged(input, weight, offsets, "sum").tolist() == [[12, 15], [0, 0], [6, 8]]
    assert bagged(input, weight, offsets, "mean", padding_idx=2).tolist() == [[4, 5], [0, 0], [2, 3]]
    assert bagged(input, weight, offsets, "max").tolist() == [[8, 9], [0, 0], [4, 5]]
    assert bagged(input, weight, torch.tensor([0, 3, 3, 5]), "sum", include_last_offset=True).tolist() == \
        [[12, 15], [0, 0], [6, 8]]
    assert bagged(input, weight, offsets, "sum", per_sample_weights=torch.tensor(
        [1.0, 0.5, 0.0, 2.0, 1.0], dtype=torch.float64)).tolist() == [[2, 3.5], [0, 0], [8, 11]]
    assert bagged(input.reshape(1, 5), weight, mode="mean").tolist() == [[3.6, 4.6]]
    assert bagged(input, weight, offsets, "sum", split="pairs").tolist() == [[12, 15], [0, 0]]
    assert bagged(torch.tensor([2, 2, 5]), weight, torch.tensor([0]), "sum", repeats="once").tolist() == \
        [[14, 16]]


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
    ids, lengths = reference_batch(["a d c", "", "b"], stoi, 5)
    assert ids.tolist() == [[2, 0, 4, 1], [1, 5, 5, 5], [3, 1, 5, 5]] and lengths.tolist() == [4, 1, 2]
    assert ids.dtype == lengths.dtype == torch.long
    old = ["<unk>", "<eos>", "c", "x"]
    assert extended(old, sentences, 1) == old + ["a", "b", "d"]
    assert extended(old, sentences, 2) == old + ["a", "b"]
    assert extended(old, ["z z y y w x"], 1) == old + ["y", "z", "w"]
    assert extended(old, ["z z y y w x"], 1, order="appearance") == old + ["z", "y", "w"]


# -- mutants of the solution ---------------------------------------------------------------

EMPTY_BAG_SKIP = "        if len(bag) == 0:\n            continue  # an empty bag gives zeros, in every mode\n"
LAST_BAG = "([] if include_last_offset else [len(input)])"

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
    # encode_batch
    "batch: padded with <unk>": (check_encode_batch, "encode_batch", "(len(rows), L), padding_idx",
                                 "(len(rows), L), unk", "the padding is stoi['<unk>']"),
    "batch: padding first": (check_encode_batch, "encode_batch", "ids[n, :len(row)]",
                             "ids[n, ids.shape[1] - len(row):]", "goes after the words"),
    "batch: no <eos>": (check_encode_batch, "encode_batch", "] + [eos]\n", "]\n",
                        "'<eos>' is missing"),
    "batch: lengths without <eos>": (check_encode_batch, "encode_batch", "return ids, lengths",
                                     "return ids, lengths - 1", "lengths leave out the '<eos>'"),
    "batch: (L, N)": (check_encode_batch, "encode_batch", "return ids, lengths", "return ids.T, lengths",
                      "yours is (L, N)"),
    "batch: unknown words dropped": (check_encode_batch, "encode_batch",
                                     "[stoi.get(word, unk) for word in sentence.split()]",
                                     "[stoi[word] for word in sentence.split() if word in stoi]",
                                     "were left out"),
    "batch: KeyError on unknown words": (check_encode_batch, "encode_batch", "stoi.get(word, unk)",
                                         "stoi[word]", "look words up with stoi.get(word"),
    "batch: adds unknown words to stoi": (check_encode_batch, "encode_batch", "stoi.get(word, unk)",
                                          "stoi.setdefault(word, len(stoi))", "changed stoi: it added"),
    "batch: float indices": (check_encode_batch, "encode_batch", "padding_idx, dtype=torch.long)",
                             "padding_idx, dtype=torch.float32)", "expected torch.int64 (torch.long)"),
    # embedding_bag
    "bag: empty bags averaged": (check_embedding_bag, "embedding_bag", EMPTY_BAG_SKIP, "",
                                 "gives a row of zeros"),
    "bag: last bag dropped": (check_embedding_bag, "embedding_bag", LAST_BAG, "[]",
                              "the last bag runs from offsets[-1]"),
    "bag: include_last_offset ignored": (check_embedding_bag, "embedding_bag", LAST_BAG, "[len(input)]",
                                         "len(offsets) - 1 bags"),
    "bag: 2-D columns as bags": (check_embedding_bag, "embedding_bag", "bags = list(input)",
                                 "bags = list(input.T)", "each row is a bag"),
    "bag: mean as sum": (check_embedding_bag, "embedding_bag", "rows.mean(dim=0)", "rows.sum(dim=0)",
                         "yours adds them (mode='sum')"),
    "bag: max of whole rows": (check_embedding_bag, "embedding_bag", "rows.max(dim=0).values",
                               "rows[rows.sum(dim=1).argmax()]", "yours picks one whole row"),
    "bag: max as mean": (check_embedding_bag, "embedding_bag", "rows.max(dim=0).values",
                         "rows.mean(dim=0)", "yours averages them (mode='mean')"),
    "bag: float32": (check_embedding_bag, "embedding_bag", "weight.new_zeros(len(bags), weight.shape[1])",
                     "torch.zeros(len(bags), weight.shape[1])", "dtype torch.float32"),
    # embedding_bag_matrix
    "matrix: no num_classes": (check_embedding_bag_matrix, "embedding_bag_matrix",
                               "F.one_hot(input, num_classes=num_embeddings)", "F.one_hot(input)",
                               "pass num_classes=weight.shape[0]"),
    "matrix: one-hot left as int64": (check_embedding_bag_matrix, "embedding_bag_matrix",
                                      ".to(weight.dtype)  # (n, V)", "",
                                      "convert the one-hot tensor to weight.dtype"),
    "matrix: per_sample_weights ignored": (
        check_embedding_bag_matrix, "embedding_bag_matrix",
        "one_hot = one_hot * per_sample_weights.unsqueeze(1)", "pass", "per_sample_weights were not used"),
    "matrix: padding kept": (check_embedding_bag_matrix, "embedding_bag_matrix",
                             "one_hot[:, padding_idx] = 0", "pass", "are left out of their bag"),
    "matrix: padding counted in the mean": (
        check_embedding_bag_matrix, "embedding_bag_matrix", "bags.sum(dim=1, keepdim=True).clamp(min=1)",
        "sizes.unsqueeze(1).clamp(min=1)", "not by the size of the bag"),
    "matrix: empty bags 0 / 0": (check_embedding_bag_matrix, "embedding_bag_matrix",
                                 "bags.sum(dim=1, keepdim=True).clamp(min=1)",
                                 "bags.sum(dim=1, keepdim=True)", "gives a row of zeros"),
    "matrix: 0 or 1, not counts": (check_embedding_bag_matrix, "embedding_bag_matrix",
                                   "    if mode == \"mean\":",
                                   "    bags = (bags != 0).to(weight.dtype)\n    if mode == \"mean\":",
                                   "counts twice"),
    "matrix: mean ignored": (check_embedding_bag_matrix, "embedding_bag_matrix", "if mode == \"mean\":",
                             "if False:", "yours computes mode='sum'"),
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
}


def mutant(name) -> dict:
    _, cell, old, new, _ = MUTANTS[name]
    return student_namespace(NOTEBOOK, mutation=(cell, old, new))


test_mistake_is_rejected_with_specific_feedback = mutant_test(NOTEBOOK, MUTANTS)

# For the class grader's tests (tests/grading/test_grading_every_chapter.py): an answer that hands
# the work to torch.nn: (answer cell it follows, source, exercises it loses).
LIBRARY_ANSWER = ("embedding_bag",
                  "def embedding_bag(input, weight, offsets=None, mode='mean', include_last_offset=False):\n"
                  "    return torch.nn.functional.embedding_bag(input, weight, offsets, mode=mode,\n"
                  "                                             include_last_offset=include_last_offset)",
                  ["embedding_bag"])


# -- partial credit: a mistake in one part costs that part ---------------------------------

@pytest.mark.parametrize("name, share", [
    ("extend: ignores min_freq", "Partial credit: 1 of 2 parts pass (min_freq=1); "
                                 "still to do: min_freq above 1."),
    ("bag: include_last_offset ignored", "Partial credit: 3 of 4 parts pass (2-D input, offsets, "
                                         "mode max); still to do: include_last_offset."),
    ("bag: max of whole rows", "Partial credit: 3 of 4 parts pass (2-D input, offsets, "
                               "include_last_offset); still to do: mode max."),
    ("matrix: per_sample_weights ignored", "Partial credit: 3 of 4 parts pass (mode sum, mode mean, "
                                           "padding_idx); still to do: per_sample_weights."),
    ("matrix: padding kept", "Partial credit: 3 of 4 parts pass (mode sum, mode mean, "
                             "per_sample_weights); still to do: padding_idx."),
    ("grad: scale_grad_by_freq ignored", "Partial credit: 2 of 3 parts pass (the sum of rows, "
                                         "padding_idx); still to do: scale_grad_by_freq."),
])
@pytest.mark.parametrize("hidden", [False, True])
def test_a_mistake_in_one_part_earns_the_others(name, share, hidden):
    check, cell, old, new, _ = {**MUTANTS, **PART_MUTANTS}[name]
    student = student_namespace(NOTEBOOK, mutation=(cell, old, new))[check.student_name]
    with pytest.raises(CheckFailure) as failure:
        check(student, hidden=hidden, quiet=True)
    assert str(failure.value).endswith(share), str(failure.value)


PART_MUTANTS = {"extend: ignores min_freq": (check_extend_vocab, "extend_vocab", "c >= min_freq", "c >= 1",
                                             None)}


def test_every_check_with_parts_has_a_test_above():
    with_parts = {check for check in ALL if check.PARTS}
    tested = {MUTANTS.get(name, PART_MUTANTS.get(name))[0] for name in
              ("extend: ignores min_freq", "bag: max of whole rows", "matrix: padding kept",
               "grad: scale_grad_by_freq ignored")}
    assert with_parts == tested, with_parts ^ tested


# -- correct answers written another way pass -------------------------------------------

def encode_batch_lists(sentences, stoi, padding_idx):
    rows = [[stoi[w] if w in stoi else stoi["<unk>"] for w in s.split()] + [stoi["<eos>"]] for s in sentences]
    longest = max(map(len, rows))
    ids = torch.tensor([row + [padding_idx] * (longest - len(row)) for row in rows])
    return ids, torch.tensor([len(row) for row in rows])


def bag_vectorised(input, weight, offsets=None, mode="mean", include_last_offset=False):
    """index_add_ and scatter_reduce_ over each entry's bag number, no loop over bags."""
    if input.dim() == 2:
        B = input.shape[0]
        bag_of = torch.arange(B).repeat_interleave(input.shape[1])
        input = input.reshape(-1)
    else:
        starts = offsets[:-1] if include_last_offset else offsets
        B = len(starts)
        bag_of = torch.bucketize(torch.arange(len(input)), starts, right=True) - 1
        keep = bag_of < B
        input, bag_of = input[keep], bag_of[keep]
    rows = weight[input]  # (n, H)
    index = bag_of.unsqueeze(1).expand_as(rows)
    if mode == "max":
        out = weight.new_zeros(B, weight.shape[1]).scatter_reduce_(0, index, rows, "amax", include_self=False)
        return out
    out = weight.new_zeros(B, weight.shape[1]).index_add_(0, bag_of, rows)
    if mode == "mean":
        out = out / torch.bincount(bag_of, minlength=B).clamp(min=1).unsqueeze(1)
    return out


def bag_matrix_index_put(input, offsets, weight, mode="sum", per_sample_weights=None, padding_idx=None):
    V = weight.shape[0]
    bag_of = torch.bucketize(torch.arange(len(input)), offsets, right=True) - 1
    amount = torch.ones(len(input), dtype=weight.dtype) if per_sample_weights is None else per_sample_weights
    if padding_idx is not None:
        amount = amount * (input != padding_idx % V)
    bags = torch.zeros(len(offsets), V, dtype=weight.dtype).index_put_((bag_of, input), amount, accumulate=True)
    if mode == "mean":
        counted = torch.zeros(len(offsets), dtype=weight.dtype).index_add_(0, bag_of, amount)
        bags = bags / counted.clamp(min=1).unsqueeze(1)
    return torch.einsum("bv,vh->bh", bags, weight)


def bag_matrix_loop(input, offsets, weight, mode="sum", per_sample_weights=None, padding_idx=None):
    V = weight.shape[0]
    pad = None if padding_idx is None else padding_idx % V
    ends = offsets[1:].tolist() + [len(input)]
    bags = torch.zeros(len(offsets), V, dtype=weight.dtype)
    for b, (start, end) in enumerate(zip(offsets.tolist(), ends)):
        for k in range(start, end):
            if int(input[k]) != pad:
                bags[b, input[k]] += 1.0 if per_sample_weights is None else per_sample_weights[k]
    if mode == "mean":
        bags = bags / bags.sum(dim=1, keepdim=True).clamp(min=1)
    return torch.mm(bags, weight)


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


def extend_sorted_items(itos, sentences, min_freq=1):
    counts = Counter(w for s in sentences for w in s.split())
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    itos = itos + [w for w, c in ranked if c >= min_freq and w not in itos]
    return itos, {w: i for i, w in enumerate(itos)}


@pytest.mark.parametrize("check, student", [
    (check_encode_batch, encode_batch_lists),
    (check_embedding_bag, bag_vectorised),
    (check_embedding_bag_matrix, bag_matrix_index_put),
    (check_embedding_bag_matrix, bag_matrix_loop),
    (check_embedding_grad, grad_by_autograd),
    (check_embedding_grad, grad_by_loop),
    (check_extend_vocab, extend_sorted_items),
], ids=lambda x: getattr(x, "__name__", ""))
def test_other_correct_answers_pass(check, student):
    for hidden in (False, True):
        check(student, hidden=hidden, quiet=True)


# -- messages ---------------------------------------------------------------------------

def test_feedback_names_the_output_case_and_bag(solution):
    def last_bag_wrong(input, weight, offsets=None, mode="mean", include_last_offset=False):
        output = solution["embedding_bag"](input, weight, offsets, mode, include_last_offset).clone()
        output[-1, -1] += 1.0
        return output
    with pytest.raises(CheckFailure) as failure:
        check_embedding_bag(last_bag_wrong, quiet=True)
    message = str(failure.value)
    assert message.startswith("embedding_bag does not match torch.nn.EmbeddingBag on case 1 of 8 "
                              "(layout='2-D', mode='sum', num_embeddings=10, embedding_dim=4, "
                              "shape=(4, 3)):")
    assert "output[bag=3, h=3] is" in message and "largest error 1" in message
    assert "Partial credit: 0 of 4 parts pass" in message


def test_a_looked_up_bag_is_no_product(solution):
    def looked_up(input, offsets, weight, mode="sum", per_sample_weights=None, padding_idx=None):
        return solution["embedding_bag"](input, weight, offsets, mode)
    with pytest.raises(CheckFailure, match="never uses weight in a product"):
        check_embedding_bag_matrix(looked_up, quiet=True)


def test_a_mean_of_an_empty_bag_is_named_and_the_max_of_one_too():
    student = mutant("bag: empty bags averaged")["embedding_bag"]
    messages = []
    for config in (check_embedding_bag.VISIBLE[2], check_embedding_bag.VISIBLE[7]):  # mean, max
        case = check_embedding_bag.make_case(config, 0)
        messages.append(check_embedding_bag.judge(student, case, 1, 1, True))
    assert "not a finite number" in messages[0] and "nan (0 / 0)" in messages[0]
    assert "raised IndexError" in messages[1] and "has no rows to take the max of" in messages[1]


def test_batch_feedback_names_the_row_and_what_belongs_there(solution):
    def one_wrong(sentences, stoi, padding_idx):
        ids, lengths = solution["encode_batch"](sentences, stoi, padding_idx)
        ids[int(lengths.argmin()), -1] = 0
        return ids, lengths
    with pytest.raises(CheckFailure) as failure:
        check_encode_batch(one_wrong, quiet=True)
    message = str(failure.value)
    assert "encode_batch does not match the reference batch encoder" in message
    assert "is 0, expected" in message and "(padding_idx); row" in message
    assert "sentences=[" not in message  # the corpus itself is not printed


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
    check_encode_batch(solution["encode_batch"])
    out = capsys.readouterr().out
    assert "OK: extend_vocab matches the rule of extend_vocab" in out
    assert "on 3 random corpora (compared exactly)" in out
    assert "OK: embedding_grad matches autograd through torch.nn.Embedding (weight.grad) on 4 cases " \
        "(float64" in out
    assert "OK: encode_batch matches the reference batch encoder" in out


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
    (lambda ids, lengths: (ids.tolist(), lengths), "ids should be a torch.Tensor, got a list"),
    (lambda ids, lengths: (ids, lengths.tolist()), "lengths should be a torch.Tensor, got a list"),
    (lambda ids, lengths: (ids, lengths[:-1]), "one length per sentence"),
    (lambda ids, lengths: ids, "should return a tuple (ids, lengths)"),
    (lambda ids, lengths: (ids[:, :-1], lengths), "L the longest one's number of words + 1"),
])
def test_wrong_batch_results_get_clear_messages(solution, result, words):
    def student(sentences, stoi, padding_idx):
        return result(*solution["encode_batch"](sentences, stoi, padding_idx))
    with pytest.raises(CheckFailure) as failure:
        check_encode_batch(student, quiet=True)
    assert words in str(failure.value)


@pytest.mark.parametrize("result, words", [
    (lambda out: out.numpy(), "output should be a torch.Tensor, got a numpy.ndarray"),
    (lambda out: out * float("nan"), "not a finite number"),
    (lambda out: out.unsqueeze(0), "output has shape (1, 4, 4), expected (4, 4)"),
])
def test_wrong_return_values_get_clear_messages(solution, result, words):
    def student(input, weight, offsets=None, mode="mean", include_last_offset=False):
        return result(solution["embedding_bag"](input, weight, offsets, mode, include_last_offset))
    with pytest.raises(CheckFailure) as failure:
        check_embedding_bag(student, quiet=True)
    assert words in str(failure.value)


def test_student_exceptions_become_feedback_not_tracebacks():
    def not_done(*args, **kwargs):
        raise NotImplementedError()
    for check in ALL:
        with pytest.raises(CheckFailure, match="not implemented yet"):
            check(not_done)

    def crashes(input, weight, offsets=None, mode="mean", include_last_offset=False):
        return weight @ input  # a shape error inside torch
    with pytest.raises(CheckFailure) as failure:
        check_embedding_bag(crashes)
    message = str(failure.value)
    assert message.startswith("embedding_bag raised RuntimeError: ")
    assert "return weight @ input" in message and failure.value.__cause__ is None


def test_in_place_edits_of_inputs_are_reported(solution):
    def sorts_input(input, weight, offsets=None, mode="mean", include_last_offset=False):
        input.copy_(input.reshape(-1).sort().values.reshape(input.shape))
        return solution["embedding_bag"](input, weight, offsets, mode, include_last_offset)

    def sorts_sentences(sentences, stoi, padding_idx):
        sentences.sort()
        return solution["encode_batch"](sentences, stoi, padding_idx)

    def changes_weight(input, offsets, weight, mode="sum", per_sample_weights=None, padding_idx=None):
        weight.zero_()
        return solution["embedding_bag_matrix"](input, offsets, weight, mode, per_sample_weights, padding_idx)
    with pytest.raises(CheckFailure, match="changed one of its input tensors in place"):
        check_embedding_bag(sorts_input)
    with pytest.raises(CheckFailure, match="changed the list of sentences"):
        check_encode_batch(sorts_sentences)
    with pytest.raises(CheckFailure, match="changed one of its input tensors in place"):
        check_embedding_bag_matrix(changes_weight)


def test_registry_lists_every_chapter_two_check():
    assert {f"02-embedding/{c.student_name}" for c in ALL} == {n for n in CHECKS if n.startswith("02-")}


def test_references_really_are_torch_nn():
    """The references come from the modules: the same numbers as nn.EmbeddingBag built here."""
    case = check_embedding_bag_matrix.make_cases(hidden=True)[3]  # mean, padding_idx=-2
    t, config = case.tensors, case.config
    module = nn.EmbeddingBag.from_pretrained(t["weight"].clone(), mode="mean",
                                             padding_idx=config["padding_idx"])
    assert torch.equal(check_embedding_bag_matrix.run_reference(case)["output"], module(t["input"], t["offsets"]))

    case = check_embedding_bag.make_cases()[4]  # include_last_offset, sum
    module = nn.EmbeddingBag.from_pretrained(case.tensors["weight"].clone(), mode="sum",
                                             include_last_offset=True)
    assert torch.equal(check_embedding_bag.run_reference(case)["output"],
                       module(case.tensors["input"], case.tensors["offsets"]))

    case = check_embedding_grad.make_cases()[2]
    module = nn.Embedding(case.config["num_embeddings"], case.config["embedding_dim"],
                          padding_idx=case.config["padding_idx"], scale_grad_by_freq=True,
                          dtype=torch.float64)
    module(case.tensors["input"]).backward(case.tensors["grad_output"])
    assert torch.equal(check_embedding_grad.run_reference(case)["grad_weight"], module.weight.grad)


@pytest.mark.parametrize("check, student, kernel", [
    (check_embedding_bag, lambda input, weight, offsets=None, mode="mean", include_last_offset=False:
        F.embedding_bag(input, weight, offsets, mode=mode, include_last_offset=include_last_offset),
     "embedding_bag"),
    (check_embedding_bag, lambda input, weight, offsets=None, mode="mean", include_last_offset=False:
        nn.EmbeddingBag.from_pretrained(weight, mode=mode, include_last_offset=include_last_offset)(
            input, offsets), "embedding_bag"),
    (check_embedding_bag, lambda input, weight, offsets=None, mode="mean", include_last_offset=False:
        F.embedding(input, weight).sum(dim=1), "embedding"),
    (check_embedding_bag_matrix, lambda input, offsets, weight, mode="sum", per_sample_weights=None,
        padding_idx=None: F.embedding_bag(input, weight @ torch.eye(weight.shape[1], dtype=weight.dtype),
                                          offsets, mode=mode, per_sample_weights=per_sample_weights,
                                          padding_idx=padding_idx), "embedding_bag"),
    (check_embedding_grad, lambda g, input, n, padding_idx=None, scale_grad_by_freq=False:
        _autograd_through_f_embedding(g, input, n, padding_idx, scale_grad_by_freq), "embedding"),
], ids=["bag", "module", "lookup", "matrix", "grad"])
def test_answers_that_call_torch_embedding_are_rejected(check, student, kernel):
    with pytest.raises(CheckFailure, match=f"is not written by hand: it calls torch's built-in {kernel} "):
        check(student, quiet=True)
    # the trap is removed afterwards: torch.nn works again for everyone else
    nn.EmbeddingBag(3, 2, mode="max")(torch.tensor([[0, 2]]))


def test_pad_sequence_is_refused(solution):
    def padded(sentences, stoi, padding_idx):
        rows = [reference_encode(s, stoi) for s in sentences]  # the checker's own encoder: refused
        return nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=padding_idx), None

    def by_pad_sequence(sentences, stoi, padding_idx):
        rows = [torch.tensor([stoi.get(w, 0) for w in s.split()] + [1]) for s in sentences]
        return (nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=padding_idx),
                torch.tensor([len(r) for r in rows]))
    for student in (padded, by_pad_sequence):
        with pytest.raises(CheckFailure, match="is not written by hand: it calls"):
            check_encode_batch(student, quiet=True)
    assert nn.utils.rnn.pad_sequence([torch.ones(2), torch.ones(1)]).shape == (2, 2)


def _autograd_through_f_embedding(grad_output, input, num_embeddings, padding_idx, scale):
    weight = torch.zeros(num_embeddings, grad_output.shape[-1], dtype=grad_output.dtype,
                         requires_grad=True)
    F.embedding(input, weight, padding_idx=padding_idx, scale_grad_by_freq=scale).backward(grad_output)
    return weight.grad
