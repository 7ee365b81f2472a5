"""rnn-by-hand lm's command line: refusals before any work, progress output, --threads."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys

import pytest
import torch

import rnn_by_hand.lm.__main__ as cli
from conftest import REPO
from rnn_by_hand.lm import Config, Corpus, fit
from rnn_by_hand.lm.progress import Bars, width

FIXTURE = REPO / "tests" / "fixtures" / "tiny_corpus"
PROG = "python -m rnn_by_hand.lm"
SMALL = ["--batch-size", "4", "--eval-batch-size", "4", "--bptt", "5", "--emsize", "8", "--nhid", "8"]


def run_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "rnn_by_hand.lm", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120, **kwargs)


class WorkStarted(Exception):
    pass


@pytest.fixture
def no_work(monkeypatch):
    """main() in this process, with every piece of work replaced by a tripwire: the names
    of what it tried to start are in the list this returns (it must stay empty)."""
    started = []

    def tripwire(name):
        def trip(*args, **kwargs):
            started.append(name)
            raise WorkStarted(name)
        return trip

    monkeypatch.setattr(Corpus, "from_folder", classmethod(lambda cls, *a, **k: tripwire("load corpus")()))
    monkeypatch.setattr(Corpus, "penn", classmethod(lambda cls, *a, **k: tripwire("load PTB")()))
    monkeypatch.setattr(cli, "fit", tripwire("fit"))
    monkeypatch.setattr(cli, "dry_run", tripwire("dry run"))
    monkeypatch.setattr(cli, "load_checkpoint", tripwire("load checkpoint"))
    monkeypatch.setattr(torch, "set_num_threads", tripwire("set_num_threads"))
    return started


def refused(capsys, argv) -> str:
    """main(argv) must exit with status 2 and exactly one line on stderr, which is returned."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv, prog=PROG)
    out, err = capsys.readouterr()
    assert exit_.value.code == 2, (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"{PROG}: error: ")
    return err.strip().removeprefix(f"{PROG}: error: ")


# -- refused before anything loads ----------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"],
     "argument --epochs: must be at least 1, got 0 (to evaluate without training, --load a checkpoint)"),
    (["--epochs", "-1"], "argument --epochs: must be at least 1, got -1 (to evaluate without training, --load a checkpoint)"),
    (["--temperature", "-0.5", "--generate", "5"], "argument --temperature: must be at least 0, got -0.5"),
    (["--temperature", "nan"], "argument --temperature: must be a finite number, got nan"),
    (["--time-budget", "-3"], "argument --time-budget: must be greater than 0, got -3"),
    (["--time-budget", "0"], "argument --time-budget: must be greater than 0, got 0"),
    (["--bptt", "0"], "argument --bptt: must be at least 1, got 0"),
    (["--bptt", "-35"], "argument --bptt: must be at least 1, got -35"),
    (["--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
    (["--batch-size", "-4"], "argument --batch-size: must be at least 1, got -4"),
    (["--eval-batch-size", "0"], "argument --eval-batch-size: must be at least 1, got 0"),
    (["--lr", "0"], "argument --lr: must be greater than 0, got 0"),
    (["--lr", "-1"], "argument --lr: must be greater than 0, got -1"),
    (["--clip", "0"], "argument --clip: must be greater than 0, got 0"),
    (["--dropout", "1"], "argument --dropout: must be in [0, 1), got 1"),
    (["--dropout", "-0.1"], "argument --dropout: must be in [0, 1), got -0.1"),
    (["--lr-decay", "0"], "argument --lr-decay: must be at least 1, got 0 (it divides the learning rate)"),
    (["--nhid", "0"], "argument --nhid: must be at least 1, got 0"),
    (["--nlayers", "0"], "argument --nlayers: must be at least 1, got 0"),
    (["--log-interval", "0"], "argument --log-interval: must be at least 1, got 0"),
    (["--eval-every", "0"], "argument --eval-every: must be at least 1, got 0"),
    (["--max-tokens", "0"], "argument --max-tokens: must be at least 1, got 0"),
    (["--top-k", "0"], "argument --top-k: must be at least 1, got 0"),
    (["--generate", "-1"], "argument --generate: must be at least 0, got -1"),
    (["--threads", "0"], "argument --threads: must be at least 1, got 0"),
    (["--threads", "two"], "argument --threads: invalid int value: 'two'"),
    (["--seed", "-1"], "argument --seed: must be in [0, 18446744073709551616), got -1"),
])
def test_bad_values_are_refused_by_the_parser(capsys, no_work, tmp_path, args, message):
    assert refused(capsys, ["--data", str(FIXTURE), "--save", str(tmp_path / "lm.pt"), *args]) == message
    assert no_work == [] and not (tmp_path / "lm.pt").exists()


def test_data_pointing_at_a_file_says_it_is_a_file_and_what_a_corpus_is(capsys, no_work):
    train = FIXTURE / "train.txt"
    assert refused(capsys, ["--data", str(train)]) == (
        f"{train} is a file, not a corpus folder: "
        "a corpus folder holds train.txt, valid.txt and test.txt, one sentence per line")
    assert no_work == []


def test_missing_corpus_folder_and_files_are_named(capsys, no_work, tmp_path):
    assert refused(capsys, ["--data", str(tmp_path / "nope")]) == (
        f"corpus folder {tmp_path / 'nope'} does not exist "
        "(a corpus folder holds train.txt, valid.txt and test.txt, one sentence per line)")
    (tmp_path / "train.txt").write_text("a b\n")
    assert refused(capsys, ["--data", str(tmp_path)]).startswith(f"corpus folder {tmp_path} has no valid.txt, test.txt")
    assert no_work == []


def test_save_into_a_missing_folder_is_refused_before_training(capsys, no_work, tmp_path):
    target = tmp_path / "no" / "lm.pt"
    assert refused(capsys, ["--data", str(FIXTURE), "--save", str(target)]) == (
        f"--save {target}: the folder {target.parent} does not exist")
    assert refused(capsys, ["--data", str(FIXTURE), "--save", str(tmp_path)]) == (
        f"--save {tmp_path} is a folder; give the file to write, such as {tmp_path / 'lm.pt'}")
    assert no_work == []


def test_load_of_a_folder_or_a_missing_file_is_refused(capsys, no_work, tmp_path):
    assert refused(capsys, ["--load", str(tmp_path)]) == f"checkpoint {tmp_path} is a folder, not a checkpoint file"
    assert refused(capsys, ["--load", str(tmp_path / "x.pt"), "--data", str(FIXTURE)]) == (
        f"checkpoint {tmp_path / 'x.pt'} does not exist")
    assert no_work == []


def test_a_file_that_is_no_checkpoint_is_refused_before_the_corpus_loads(capsys, monkeypatch, tmp_path):
    loaded = []
    monkeypatch.setattr(cli, "load_corpus", lambda *a, **k: loaded.append(1))
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    assert refused(capsys, ["--load", str(tmp_path / "other.pt"), "--data", str(FIXTURE)]) == (
        f"{tmp_path / 'other.pt'} is not a checkpoint written by rnn_by_hand.lm --save (KeyError: 'config')")
    assert refused(capsys, ["--load", str(FIXTURE / "train.txt"), "--data", str(FIXTURE)]).startswith(
        f"{FIXTURE / 'train.txt'} is not a checkpoint written by rnn_by_hand.lm --save (UnpicklingError")
    assert loaded == []


# -- splits too short: refused after the corpus loads, before training -----------------------

def corpus_folder(path, valid="a b c\n" * 10, test="a b c\n" * 10, train="a b c\n" * 40):
    path.mkdir()
    for name, text in (("train", train), ("valid", valid), ("test", test)):
        (path / f"{name}.txt").write_text(text)
    return path


@pytest.mark.parametrize("split, texts, option, message", [
    ("valid", dict(valid=""), [],
     "has 0 tokens; need at least 20 to fill 10 columns of 2 rows (a row of inputs and one of targets): "
     "add text or lower --eval-batch-size"),
    ("test", dict(test="a b c\n"), [],
     "has 4 tokens; need at least 20 to fill 10 columns of 2 rows (a row of inputs and one of targets): "
     "add text or lower --eval-batch-size"),
    ("train", dict(train="a b c\n" * 9), ["--batch-size", "20"],
     "has 36 tokens; need at least 40 to fill 20 columns of 2 rows (a row of inputs and one of targets): "
     "add text or lower --batch-size"),
])
def test_a_split_too_short_is_named_before_training(capsys, monkeypatch, tmp_path, split, texts, option, message):
    started = []
    monkeypatch.setattr(cli, "fit", lambda *a, **k: started.append("fit"))
    monkeypatch.setattr(cli, "dry_run", lambda *a, **k: started.append("dry run"))
    folder = corpus_folder(tmp_path / "corpus", **texts)
    for extra in ([], ["--dry-run"]):
        assert refused(capsys, ["--data", str(folder), "--save", str(tmp_path / "lm.pt"), *option, *extra]) == (
            f"{folder / f'{split}.txt'} {message}")
    assert started == [] and not (tmp_path / "lm.pt").exists()


def test_the_hint_works_a_smaller_eval_batch_fills_a_short_valid(capsys, tmp_path):
    folder = corpus_folder(tmp_path / "corpus", valid="a b c\n" * 2)      # 8 tokens: 4 columns of 2 rows
    refused(capsys, ["--data", str(folder), "--dry-run"])
    assert cli.main(["--data", str(folder), "--dry-run", "--eval-batch-size", "4"]) == 0
    assert "dry run | valid | inputs (1, 4)" in capsys.readouterr().out


def test_fit_names_the_split_and_refuses_zero_epochs():
    tiny = Config(emsize=8, nhid=8, batch_size=2, eval_batch_size=2, bptt=2, device="cpu", epochs=1)
    corpus = Corpus.from_folder(FIXTURE)
    with pytest.raises(ValueError, match="epochs must be at least 1, got 0"):
        fit(tiny.with_(epochs=0), corpus, log=lambda line: None)
    short = Corpus(corpus.dictionary, corpus.train, corpus.valid[:3], corpus.test)
    with pytest.raises(ValueError, match=r"^the valid split has 3 tokens; need at least 4 to fill 2 columns"):
        fit(tiny, short, log=lambda line: None)


def test_the_real_command_refuses_epochs_zero_in_one_line(tmp_path):
    """The same refusal through python -m, the way a user meets it (the others run main() in this process)."""
    result = run_cli("--data", str(FIXTURE), "--save", str(tmp_path / "lm.pt"), "--epochs", "0")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"{PROG}: error: argument --epochs: must be at least 1, got 0 "
                             "(to evaluate without training, --load a checkpoint)\n")
    assert not (tmp_path / "lm.pt").exists()


# -- progress --------------------------------------------------------------------------------

def test_without_a_terminal_progress_is_plain_lines_only(tmp_path):
    result = run_cli("--data", str(FIXTURE), *SMALL, "--epochs", "1", "--save", str(tmp_path / "lm.pt"))
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stdout + result.stderr and "\x1b" not in result.stdout + result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == f"| loading the corpus in {FIXTURE}"
    assert lines[1].startswith("| corpus: 22 words | train 360, valid 72, test 72 tokens | ")
    assert lines[2].startswith("| training 1 x 8 LSTM on cpu, ")
    evaluations = [line for line in lines if line.startswith("| evaluating")]
    assert evaluations == ["| evaluating valid: 4 windows of up to 5 x 4 tokens",
                           "| evaluating test: 4 windows of up to 5 x 4 tokens"]
    assert lines.index(evaluations[0]) < [i for i, line in enumerate(lines) if "end of epoch" in line][0]
    assert all(line.startswith("|") for line in lines)


def test_plain_progress_lines_carry_elapsed_time_and_eta():
    stream, lines = io.StringIO(), []
    bars = Bars(stream=stream, log=lines.append, every=0.0, terminal=False)
    with bars(4, "epoch 1", "batches") as bar:
        for _ in range(4):
            bar.update(loss=2.5)
    assert stream.getvalue() == ""            # nothing drawn where there is no terminal
    assert len(lines) == 4
    assert lines[1].startswith("| epoch 1 | 2/4 batches | 00:00 elapsed | ETA 00:00 | loss 2.50")
    quiet = Bars(stream=stream, log=lines.append, terminal=False)   # the default: at most a line a minute
    with quiet(1000, "valid", "windows") as bar:
        for _ in range(1000):
            bar.update()
    assert len(lines) == 4 and stream.getvalue() == ""


def test_on_a_terminal_the_bar_is_tqdms_and_log_lines_clear_it_first():
    stream, lines = io.StringIO(), []
    bars = Bars(stream=stream, log=lambda line: lines.append((stream.getvalue(), line)), terminal=True)
    bars.redraw = 0.0
    bar = bars(3, "epoch 1", "batches")
    bar.update(loss=3.25)
    drawn = stream.getvalue()
    last = drawn.rsplit("\r", 1)[1]
    assert last.startswith("epoch 1:  33%|") and "| 1/3 [00:00<00:00, " in last and last.endswith("batches/s, loss=3.25]")
    bars.log("| a line")
    (before, line), = lines
    assert line == "| a line" and before.startswith(drawn)
    assert before[len(drawn):].strip(" \r") == ""       # the bar was wiped before the line
    assert stream.getvalue().endswith(last)               # and drawn again after it
    bar.close()
    assert stream.getvalue().rsplit("\r", 2)[1].strip() == ""   # closed: the bar is wiped (leave=False)
    assert stream.getvalue().endswith("\r")


def test_clear_closes_the_open_bars_of_its_stream():
    stream = io.StringIO()
    bars = Bars(stream=stream, terminal=True)
    bar = bars(10, "valid", "windows")
    bar.update()
    bars.clear()
    assert bar.bar.disable and not bars.open   # disable: tqdm's mark of a closed bar
    assert stream.getvalue().endswith("\r")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="no pseudo-terminals here")
def test_the_bar_follows_a_sized_terminal_and_falls_back_on_one_without_a_size():
    import fcntl
    import struct
    import termios
    main_fd, terminal_fd = os.openpty()
    try:
        with open(terminal_fd, "w", closefd=False) as terminal:
            assert width(terminal) == {"ncols": shutil.get_terminal_size().columns,
                                       "nrows": shutil.get_terminal_size().lines}   # 0 x 0: tqdm would hide the bar
            fcntl.ioctl(terminal_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
            assert width(terminal) == {"dynamic_ncols": True}
    finally:
        os.close(main_fd)
        os.close(terminal_fd)
    assert "nrows" in width(io.StringIO())


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="no pseudo-terminals here")
def test_on_a_pseudo_terminal_the_real_command_draws_bars_with_eta():
    import pty
    main_fd, terminal_fd = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "rnn_by_hand.lm", "--data", str(FIXTURE), *SMALL,
                                    "--epochs", "1"], cwd=REPO, stdout=subprocess.PIPE, stderr=terminal_fd,
                                   env={**os.environ, "TERM": "xterm"})
        os.close(terminal_fd)
        out, _ = process.communicate(timeout=120)
        drawn = b""
        while True:
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:        # the terminal's other end closed
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(main_fd)
    assert process.returncode == 0
    drawn = drawn.decode()
    assert "\repoch 1: " in drawn and "/18 [" in drawn and "batches/s, loss=" in drawn
    assert "\rvalid: " in drawn and "\rtest: " in drawn and "/4 [" in drawn and "windows/s]" in drawn
    assert "\r" not in out.decode()        # the log on the pipe stays plain


# -- threads ---------------------------------------------------------------------------------

@pytest.mark.parametrize("threads, words", [("1", "1 thread"), ("3", "3 threads")])
def test_threads_sets_torch_threads(threads, words):
    result = run_cli("--data", str(FIXTURE), "--dry-run", "--threads", threads, *SMALL)
    assert result.returncode == 0, result.stderr
    assert f"| dry run on cpu, {words}, OpenMP waits " in result.stdout


@pytest.mark.parametrize("given, reported", [(None, "passive"), ("ACTIVE", "active")])
def test_python_m_sets_a_passive_wait_before_torch_loads_unless_told(given, reported):
    """As `rnn-by-hand lm` does: a spinning OpenMP wait collapses training on a shared machine."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    result = run_cli("--data", str(FIXTURE), "--dry-run", *SMALL, env=env)
    assert result.returncode == 0, result.stderr
    assert f"OpenMP waits {reported}\n" in result.stdout


def test_threads_is_documented_with_the_shared_machine_advice():
    text = " ".join(cli.parser().format_help().split())
    assert "--threads N" in text and "one thread is usually fastest on a shared machine" in text
    assert "to evaluate without training, --load a checkpoint" in text
