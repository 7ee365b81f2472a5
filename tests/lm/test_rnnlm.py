"""The language-model package: data layout, model contract, perplexity, sampling, command line."""
from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest
import torch
from torch import nn

from conftest import REPO
from rnn_by_hand.lm import (RNN_TYPES, Config, Corpus, Dictionary, RNNModel, batchify, cross_entropy, fit, get_batch,
                   load_checkpoint, perplexity, repackage_hidden, sample_next, save_checkpoint, unigram_perplexity,
                   uniform_perplexity)
from rnn_by_hand.lm.data import PTB_TOKENS, penn_text, tokenize

FIXTURE = REPO / "tests" / "fixtures" / "tiny_corpus"


# -- data ----------------------------------------------------------------------

def test_tokenize_appends_eos_to_every_line():
    dictionary = Dictionary()
    ids = tokenize("a b\nb c\n", dictionary)
    assert dictionary.idx2word == ["a", "b", "<eos>", "c"]
    assert ids.tolist() == [0, 1, 2, 1, 3, 2] and ids.dtype == torch.long
    with pytest.raises(ValueError, match="line 1: the word 'z' is not in the training vocabulary"):
        tokenize("z", dictionary, grow=False)


def test_batchify_drops_the_remainder_and_makes_contiguous_columns():
    data = torch.arange(11)                       # not divisible by 4
    batched = batchify(data, 4)
    assert batched.shape == (2, 4)
    assert batched.t().tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]   # column j = data[2j : 2j + 2]
    assert batched.is_contiguous()
    assert batchify(torch.arange(12), 4).shape == (3, 4)
    with pytest.raises(ValueError, match="cannot fill"):
        batchify(torch.arange(3), 4)
    with pytest.raises(ValueError, match="at least 1"):
        batchify(data, 0)


def test_get_batch_windows_targets_and_the_last_short_window():
    source = batchify(torch.arange(20), 2)        # (10, 2): columns 0..9 and 10..19
    starts = list(range(0, source.size(0) - 1, 4))
    assert starts == [0, 4, 8]
    lengths = []
    for i in starts:
        inputs, targets = get_batch(source, i, 4)
        lengths.append(inputs.size(0))
        assert targets.shape == (inputs.numel(),)
        assert torch.equal(targets.view(-1, 2), source[i + 1: i + 1 + inputs.size(0)])  # shifted by one row
        assert torch.equal(targets.view(-1, 2) - 1, inputs)                             # the next word
    assert lengths == [4, 4, 1]                   # the last window is short, and never overruns
    assert sum(lengths) == source.size(0) - 1     # every row but the last is an input exactly once
    with pytest.raises(ValueError, match="no window starts at row 9"):
        get_batch(source, 9, 4)


def test_get_batch_docstring_example_five_rows_bptt_two():
    """The docstring's picture: 5 rows, bptt 2 -> windows at rows 0 and 2 only."""
    source = batchify(torch.arange(20), 4)        # (5, 4)
    assert list(range(0, source.size(0) - 1, 2)) == [0, 2]
    assert [get_batch(source, i, 2)[0].size(0) for i in (0, 2)] == [2, 2]
    with pytest.raises(ValueError, match="no window starts at row 4"):
        get_batch(source, 4, 2)


def test_corpus_from_a_folder():
    corpus = Corpus.from_folder(FIXTURE)
    lines = (FIXTURE / "train.txt").read_text().splitlines()
    assert len(corpus.train) == sum(len(line.split()) + 1 for line in lines)
    assert corpus.dictionary.idx2word[corpus.train[-1]] == "<eos>"
    assert len(corpus.valid) > 0 and len(corpus.test) > 0


def test_missing_corpus_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Corpus.from_folder(tmp_path / "nope")
    (tmp_path / "train.txt").write_text("a b\n")
    with pytest.raises(FileNotFoundError, match="has no valid.txt, test.txt"):
        Corpus.from_folder(tmp_path)


def test_penn_treebank_has_its_published_sizes():
    corpus = Corpus.penn()
    assert {s: len(getattr(corpus, s)) for s in ("train", "valid", "test")} == PTB_TOKENS
    assert PTB_TOKENS == {"train": 929_589, "valid": 73_760, "test": 82_430}
    assert len(corpus.dictionary) == 10_000
    assert penn_text("valid").startswith(" consumers may want to move their telephones")


# -- model ---------------------------------------------------------------------

@pytest.mark.parametrize("rnn_type", RNN_TYPES)
def test_forward_contract(rnn_type):
    model = RNNModel(rnn_type, ntoken=13, ninp=6, nhid=5, nlayers=2, dropout=0.0)
    hidden = model.init_hidden(3)
    if rnn_type == "LSTM":
        assert isinstance(hidden, tuple) and [h.shape for h in hidden] == [(2, 3, 5)] * 2
    else:
        assert isinstance(hidden, torch.Tensor) and hidden.shape == (2, 3, 5)
    inputs = torch.randint(13, (7, 3))
    logits, hidden = model(inputs, hidden)
    assert logits.shape == (7, 3, 13)
    # raw scores: a softmax would make every row sum to one
    assert not torch.allclose(logits.exp().sum(-1), torch.ones(7, 3))
    # carrying the hidden state: two halves equal the whole
    first, h = model(inputs[:4], model.init_hidden(3))
    second, _ = model(inputs[4:], h)
    whole, _ = model(inputs, model.init_hidden(3))
    torch.testing.assert_close(torch.cat([first, second]), whole)


def test_rnn_relu_really_uses_relu():
    assert RNNModel("RNN_RELU", 5, 4, 4, 1).rnn.nonlinearity == "relu"
    assert RNNModel("RNN_TANH", 5, 4, 4, 1).rnn.nonlinearity == "tanh"


def test_bad_model_arguments_are_explained():
    with pytest.raises(ValueError, match="unknown rnn_type 'lstm': choose one of LSTM, GRU, RNN_TANH, RNN_RELU"):
        RNNModel("lstm", 5, 4, 4, 1)
    with pytest.raises(ValueError, match="tied weights need nhid == emsize"):
        RNNModel("LSTM", 5, 4, 6, 1, tie_weights=True)


def test_tying_shares_one_tensor_and_init_weights():
    model = RNNModel("GRU", 50, 8, 8, 1, tie_weights=True)
    assert model.decoder.weight is model.encoder.weight
    assert model.encoder.weight.abs().max() <= 0.1 and not model.decoder.bias.any()
    assert sum(p.numel() for p in model.parameters()) == (
        50 * 8 + 3 * (8 * 8 + 8 * 8 + 2 * 8) + 50)  # one table, the GRU, the decoder bias


def test_repackage_hidden_detaches_tensors_and_tuples():
    h = torch.zeros(1, 2, 3, requires_grad=True) * 2
    pair = (h, h + 1)
    assert not repackage_hidden(h).requires_grad
    detached = repackage_hidden(pair)
    assert isinstance(detached, tuple) and not any(t.requires_grad for t in detached)
    assert torch.equal(detached[1], pair[1])


# -- perplexity ----------------------------------------------------------------

class ConstantModel(nn.Module):
    """Logits that ignore the input: log_probs for every position."""

    def __init__(self, log_probs):
        super().__init__()
        self.log_probs = nn.Parameter(log_probs.clone())

    def forward(self, input, hidden):
        return self.log_probs.expand(*input.shape, -1), hidden

    def init_hidden(self, batch_size):
        return torch.zeros(1, batch_size, 1)


def test_uniform_model_has_perplexity_equal_to_the_vocabulary_size():
    source = batchify(torch.randint(10_000, (1_000,)), 10)
    model = ConstantModel(torch.zeros(10_000, dtype=torch.float64))
    assert perplexity(model, source, bptt=35) == pytest.approx(10_000, rel=1e-9)
    assert uniform_perplexity(10_000) == 10_000


def test_perplexity_weights_every_token_not_every_window():
    """Three tokens per column, bptt 2: a window of 2 rows, then a short one of 1 row.

    The model gives word 0 probability 1/2 and word 1 probability 1/4. Column 0 holds
    0 0 1 and column 1 holds 1 1 0 after batchify, so the targets are rows 1..2:
    window 1 (row 1) = [0, 1] and window 2 (row 2) = [1, 0].
    """
    source = batchify(torch.tensor([0, 0, 1, 1, 1, 0]), 2)       # (3, 2)
    assert source.tolist() == [[0, 1], [0, 1], [1, 0]]
    model = ConstantModel(torch.tensor([0.5, 0.25, 0.25]).log())
    # by hand: targets are 0, 1, 1, 0 -> losses ln 2, ln 4, ln 4, ln 2, mean = 1.5 ln 2
    assert cross_entropy(model, source, bptt=2) == pytest.approx(1.5 * math.log(2))
    assert perplexity(model, source, bptt=2) == pytest.approx(2 ** 1.5)
    # a split whose last window is short: 5 rows, bptt 3 -> windows of 3 rows and of 1 row
    source = batchify(torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1, 1]), 2)   # (5, 2)
    assert source.tolist() == [[0, 1], [0, 1], [0, 1], [0, 1], [1, 1]]
    # window 1 targets: 0 1 0 1 0 1 (mean 1.5 ln 2); window 2 targets: 1 1 (mean 2 ln 2)
    assert cross_entropy(model, source, bptt=3) == pytest.approx((3 * 1 + 5 * 2) / 8 * math.log(2))
    # the mean of the two window means would be 1.75 ln 2: the short window weighs too much
    assert cross_entropy(model, source, bptt=3) != pytest.approx(1.75 * math.log(2))


def test_evaluation_puts_the_model_in_eval_mode_and_restores_it():
    torch.manual_seed(0)
    model = RNNModel("LSTM", 20, 8, 8, 1, dropout=0.5)
    source = batchify(torch.randint(20, (200,)), 4)
    first = cross_entropy(model, source, bptt=5)
    assert cross_entropy(model, source, bptt=5) == first   # no dropout noise
    assert model.training


def test_unigram_baseline_by_hand():
    train = torch.tensor([0, 0, 0, 1])                # counts 3, 1, 0 -> add one: 4, 2, 1 of 7
    split = torch.tensor([0, 2])
    expected = math.exp(-(math.log(4 / 7) + math.log(1 / 7)) / 2)
    assert unigram_perplexity(train, split, ntoken=3) == pytest.approx(expected)


# -- sampling ------------------------------------------------------------------

def test_temperature_zero_is_argmax_and_small_temperatures_approach_it():
    logits = torch.randn(50, 30)
    assert torch.equal(sample_next(logits, 0.0), logits.argmax(-1))
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(sample_next(logits, 1e-4, generator=generator), logits.argmax(-1))


def test_top_k_keeps_the_k_largest_by_value():
    logits = torch.tensor([0.0, 5.0, -1.0, 4.0, 3.0, 1.0])   # top 3 by value: ids 1, 3, 4
    generator = torch.Generator().manual_seed(1)
    draws = sample_next(logits.expand(4000, -1), 1.0, top_k=3, generator=generator)
    assert set(draws.tolist()) == {1, 3, 4}


def test_sampling_frequencies_follow_the_tempered_softmax():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
    for temperature in (0.5, 1.0, 2.0):
        generator = torch.Generator().manual_seed(2)
        draws = sample_next(logits.expand(20_000, -1), temperature, generator=generator)
        frequencies = torch.bincount(draws, minlength=4).double() / 20_000
        expected = torch.softmax(logits.double() / temperature, -1)
        assert (frequencies - expected).abs().max() < 0.015, (temperature, frequencies, expected)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        sample_next(logits, -1.0)


# -- training and checkpoints ----------------------------------------------------

TINY = Config(emsize=16, nhid=16, nlayers=1, dropout=0.0, batch_size=4, eval_batch_size=4, bptt=5, epochs=3,
              lr=5.0, device="cpu", log_interval=1000)


def test_fit_learns_the_tiny_corpus_and_checkpoints_round_trip(tmp_path):
    corpus = Corpus.from_folder(FIXTURE)
    lines = []
    model, history = fit(TINY, corpus, save=tmp_path / "best.pt", log=lines.append)
    assert [row["epoch"] for row in history.epochs] == [1, 2, 3]
    assert history.best_valid_ppl < len(corpus.dictionary) / 2       # well below uniform
    assert any(re.search(r"end of epoch +1 \|", line) and "tokens/s" in line for line in lines)
    assert "test ppl" in lines[-1]
    loaded, config, vocabulary = load_checkpoint(tmp_path / "best.pt", "cpu")
    assert config == TINY and vocabulary == corpus.dictionary.idx2word
    test = batchify(corpus.test, TINY.eval_batch_size)
    assert perplexity(loaded, test, TINY.bptt) == pytest.approx(history.test_ppl)


def test_time_budget_stops_between_batches():
    corpus = Corpus.from_folder(FIXTURE)
    _, history = fit(TINY.with_(time_budget=0.0, epochs=50), corpus, log=lambda line: None)
    assert history.stopped_by_budget and len(history.epochs) == 1


def test_token_budget_stops_after_that_much_work():
    corpus = Corpus.from_folder(FIXTURE)
    per_batch = TINY.batch_size * TINY.bptt
    _, history = fit(TINY.with_(max_tokens=2 * per_batch, epochs=50, eval_every=1), corpus, log=lambda line: None)
    assert history.stopped_by_budget and len(history.epochs) == 1
    assert [tokens for tokens, _ in history.tokens_curve] == [per_batch, 2 * per_batch, 2 * per_batch]


def test_the_step_schedule_divides_after_decay_start():
    corpus = Corpus.from_folder(FIXTURE)
    _, history = fit(TINY.with_(schedule="step", decay_start=2, epochs=4), corpus, log=lambda line: None)
    assert [row["lr"] for row in history.epochs] == [5.0, 5.0, 1.25, 0.3125]


def test_checkpoint_of_a_tied_model_keeps_the_tie(tmp_path):
    corpus = Corpus.from_folder(FIXTURE)
    model = RNNModel("LSTM", len(corpus.dictionary), 16, 16, 1, tie_weights=True)
    save_checkpoint(tmp_path / "m.pt", model, TINY, corpus)
    loaded, _, _ = load_checkpoint(tmp_path / "m.pt", "cpu")
    assert loaded.decoder.weight is loaded.encoder.weight
    torch.testing.assert_close(loaded.encoder.weight, model.encoder.weight)


# -- command line ---------------------------------------------------------------

def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "rnn_by_hand.lm", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


def test_dry_run_on_a_folder():
    result = run_cli("--data", str(FIXTURE), "--dry-run", "--batch-size", "4")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("dry run |")]
    assert [line.split("|")[1].strip() for line in lines] == ["train", "valid", "test"]
    assert "inputs (35, 4)" in lines[0] and "inputs (6, 10)" in lines[1]   # valid: eval columns, as in fit


@pytest.mark.parametrize("args, words", [
    (["--model", "LSTMM"], "unknown rnn_type 'LSTMM': choose one of LSTM, GRU, RNN_TANH, RNN_RELU"),
    (["--nhid", "100", "--tied"], "tied weights need nhid == emsize"),
    (["--load", "missing.pt"], "checkpoint missing.pt does not exist"),
    (["--data", "no/such/folder", "--dry-run"], "corpus folder no/such/folder does not exist"),
    (["--schedule", "cosine"], "invalid choice: 'cosine'"),
    (["--bptt", "ten"], "invalid int value: 'ten'"),
])
def test_bad_arguments_get_one_line_and_exit_status_2(args, words):
    result = run_cli(*args)
    assert result.returncode == 2
    assert words in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_explained():
    result = run_cli("--device", "cuda", "--data", str(FIXTURE), "--dry-run")
    assert result.returncode == 2 and "torch sees no CUDA device" in result.stderr
