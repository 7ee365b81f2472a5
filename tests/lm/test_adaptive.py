"""The adaptive-softmax decoder and bfloat16 training: what the `small` configuration is made of."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from conftest import REPO
from rnn_by_hand.lm import CONFIGS, Config, Corpus, RNNModel, batchify, fit, load_checkpoint, perplexity
from rnn_by_hand.lm import precision as precision_module
from rnn_by_hand.lm.evaluate import cross_entropy
from rnn_by_hand.lm.precision import autocast, training_precision
from rnn_by_hand.lm.train import build_model

FIXTURE = REPO / "tests" / "fixtures" / "tiny_corpus"
TINY = Config(emsize=16, nhid=16, nlayers=1, dropout=0.0, batch_size=4, eval_batch_size=4, bptt=5, epochs=3,
              lr=5.0, device="cpu", log_interval=1000, decoder="adaptive", cutoffs=(4, 10), div_value=2.0,
              tied=False)


def adaptive_model(ntoken=40, cutoffs=(5, 15), seed=0):
    torch.manual_seed(seed)
    model = RNNModel("LSTM", ntoken, 8, 8, 1, dropout=0.0, decoder="adaptive", cutoffs=cutoffs, div_value=2.0)
    # a skewed stream, so that frequency order is far from id order: id 39 is the most frequent
    stream = torch.distributions.Categorical(probs=torch.arange(1, ntoken + 1.0) ** 3).sample((2000,))
    model.set_frequencies(stream)
    return model.double(), stream


def test_rank_is_the_order_of_training_frequency():
    model, stream = adaptive_model()
    counts = torch.bincount(stream, minlength=40)
    assert sorted(model.rank.tolist()) == list(range(40))           # a permutation
    assert model.rank[counts.argmax()] == 0                          # the most frequent word heads the list
    by_rank = counts[torch.argsort(model.rank)]                      # counts in rank order
    assert (by_rank[:-1] >= by_rank[1:]).all()


def test_forward_is_a_distribution_over_corpus_ids_and_loss_reads_it():
    model, _ = adaptive_model()
    model.eval()
    torch.manual_seed(1)
    inputs = torch.randint(40, (6, 3))                              # (L, N)
    targets = torch.randint(40, (18,))                              # (L * N,)
    scores, _ = model(inputs, model.init_hidden(3))                  # (L, N, ntoken)
    torch.testing.assert_close(scores.exp().sum(-1), torch.ones(6, 3, dtype=torch.float64))
    # the loss of the adaptive decoder (targets' log-probabilities only) is the
    # cross-entropy of forward's full distribution: the renumbering goes both ways
    loss, _ = model.loss(inputs, model.init_hidden(3), targets)
    torch.testing.assert_close(loss, F.cross_entropy(scores.view(-1, 40), targets))
    # and it is not what the distribution in rank order would give
    by_rank = scores.view(-1, 40)[:, torch.argsort(model.rank)]
    assert not torch.allclose(F.cross_entropy(by_rank, targets), loss)


def test_full_decoder_loss_is_cross_entropy_of_forward():
    torch.manual_seed(0)
    model = RNNModel("GRU", 30, 8, 8, 2, dropout=0.0).double().eval()
    inputs, targets = torch.randint(30, (5, 2)), torch.randint(30, (10,))
    logits, _ = model(inputs, model.init_hidden(2))
    loss, _ = model.loss(inputs, model.init_hidden(2), targets, reduction="sum")
    torch.testing.assert_close(loss, F.cross_entropy(logits.view(-1, 30), targets, reduction="sum"))


def test_evaluation_of_any_logit_model_still_works():
    class Uniform(torch.nn.Module):                                  # not an RNNModel: logits only
        def forward(self, inputs, hidden):
            return torch.zeros(*inputs.shape, 7), hidden

        def init_hidden(self, n):
            return None
    assert cross_entropy(Uniform(), torch.randint(7, (20, 2)), 5) == pytest.approx(torch.log(torch.tensor(7.0)))


def test_adaptive_cannot_be_tied_and_small_vocabularies_keep_a_cluster():
    with pytest.raises(ValueError, match="adaptive decoder cannot be tied"):
        RNNModel("LSTM", 50, 8, 8, 1, tie_weights=True, decoder="adaptive", cutoffs=(10,))
    with pytest.raises(ValueError, match="unknown decoder 'sampled'"):
        RNNModel("LSTM", 50, 8, 8, 1, decoder="sampled")
    small = RNNModel("LSTM", 12, 8, 8, 1, decoder="adaptive", cutoffs=(2000, 6000))
    assert small.decoder.cutoffs == [6, 12]                          # half the words in one tail cluster
    with pytest.raises(ValueError, match="last cluster would have no units: nhid 8 divided by div_value 4 2 times"):
        RNNModel("LSTM", 50, 8, 8, 1, decoder="adaptive", cutoffs=(10, 20))


def test_fit_trains_the_adaptive_model_and_its_checkpoint_keeps_the_ranks(tmp_path):
    corpus = Corpus.from_folder(FIXTURE)
    model, history = fit(TINY, corpus, save=tmp_path / "best.pt", log=lambda line: None)
    assert history.best_valid_ppl < len(corpus.dictionary) / 2     # well below uniform
    assert model.rank.tolist() != list(range(len(corpus.dictionary)))
    loaded, config, _ = load_checkpoint(tmp_path / "best.pt", "cpu")
    assert config == TINY
    torch.testing.assert_close(loaded.rank, model.rank)
    test = batchify(corpus.test, TINY.eval_batch_size)
    assert perplexity(loaded, test, TINY.bptt) == pytest.approx(history.test_ppl)


def test_build_model_ranks_words_from_the_training_split():
    corpus = Corpus.from_folder(FIXTURE)
    model = build_model(TINY, len(corpus.dictionary), corpus.train)
    counts = torch.bincount(corpus.train, minlength=len(corpus.dictionary))
    assert model.rank[counts.argmax()] == 0


# -- bfloat16 -----------------------------------------------------------------------

@pytest.mark.parametrize("flags, expected", [({"avx512_bf16", "avx2"}, "bfloat16"), ({"amx_bf16"}, "bfloat16"),
                                             ({"avx512f", "avx2"}, "float32"), (set(), "float32")])
def test_bfloat16_only_where_the_cpu_has_it(monkeypatch, flags, expected):
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: flags)
    used, why = training_precision("bfloat16", torch.device("cpu"))
    assert used == expected
    assert (why == "") == (expected == "bfloat16")
    if why:
        assert "no bfloat16 instructions" in why and "training in float32" in why
    assert training_precision("float32", torch.device("cpu")) == ("float32", "")


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="unknown precision 'float16': choose one of float32, bfloat16"):
        training_precision("float16", torch.device("cpu"))


@pytest.mark.parametrize("decoder", ["full", "adaptive"])
def test_a_bfloat16_step_computes_in_bfloat16_and_keeps_float32_weights(decoder):
    torch.manual_seed(0)
    model = RNNModel("LSTM", 30, 8, 8, 1, decoder=decoder, cutoffs=(10,), div_value=2.0)
    inputs, targets = torch.randint(30, (5, 2)), torch.randint(30, (10,))
    with autocast("bfloat16", torch.device("cpu")):
        output, _ = model.features(inputs, model.init_hidden(2))
        loss, _ = model.loss(inputs, model.init_hidden(2), targets)
    assert output.dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()
    assert all(p.dtype == torch.float32 and p.grad is not None for p in model.parameters())
    with torch.no_grad():
        exact, _ = model.loss(inputs, model.init_hidden(2), targets)
    assert loss.item() == pytest.approx(exact.item(), rel=2e-2)      # bfloat16 keeps about 3 digits


def test_fit_in_bfloat16_falls_back_and_says_so_without_bf16_units(monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: set())
    lines = []
    fit(TINY.with_(precision="bfloat16", epochs=1), Corpus.from_folder(FIXTURE), log=lines.append)
    assert any("training in float32" in line for line in lines)


# -- the command line and the configurations -----------------------------------------

def test_small_is_the_adaptive_configuration_and_small_tied_the_full_one():
    assert CONFIGS["small"].decoder == "adaptive" and not CONFIGS["small"].tied
    assert CONFIGS["small-tied"].decoder == "full" and CONFIGS["small-tied"].tied
    assert CONFIGS["examples"].decoder == "full" and CONFIGS["examples"].nlayers == 2


@pytest.mark.parametrize("args, words", [
    (["--cutoffs", "6000,2000"], "argument --cutoffs: expected increasing whole numbers of at least 1, got '6000,2000'"),
    (["--cutoffs", "2k"], "argument --cutoffs: expected increasing whole numbers such as 2000,6000, got '2k'"),
    (["--div-value", "1"], "argument --div-value: must be greater than 1, got 1"),
    (["--precision", "float16"], "argument --precision: invalid choice: 'float16'"),
    (["--decoder", "adaptive", "--tied"], "the adaptive decoder cannot be tied to the embedding"),
])
def test_bad_decoder_and_precision_arguments_get_one_line(args, words):
    result = subprocess.run([sys.executable, "-m", "rnn_by_hand.lm", "--data", str(FIXTURE), "--dry-run", *args],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 2
    assert words in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_dry_run_of_the_adaptive_decoder_on_a_folder():
    result = subprocess.run([sys.executable, "-m", "rnn_by_hand.lm", "--data", str(FIXTURE), "--dry-run",
                             "--batch-size", "4", "--cutoffs", "4,10", "--precision", "bfloat16"],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert [line.split("|")[1].strip() for line in result.stdout.splitlines()
            if line.startswith("dry run |")] == ["train", "valid", "test"]
