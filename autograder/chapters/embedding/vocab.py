"""Chapter 2's text checks: growing a vocabulary and encoding sentences, compared exactly.

    extend_vocab(itos, sentences, min_freq)  vs the reference rule below (spec in its docstring)
    encode_batch(sentences, stoi, padding_idx)
                                       vs the reference below: (N, L) indices and lengths

The cases are random corpora drawn from a seed, with Zipf-like word counts so that
there are ties and rare words.
"""
from __future__ import annotations

from collections import Counter

import torch

from ...checking import Case, Check, CheckFailure, call_student, describe_config, unpack_pair
from ...checking.compare import shape_str, type_name
from ...common import DTYPE

UNK, EOS = "<unk>", "<eos>"
SPECIALS = (UNK, EOS)


# -- vocabulary: the specification, written once ------------------------------------

def vocabulary(sentences: list[str], min_freq: int = 1, *, count: str = "total",
               keep: str = "at_least", order: str = "count_then_word",
               specials: str = "front") -> list[str]:
    """itos by the rule of the exercise; the keyword arguments give classic mistakes.

    The rule: split each sentence on whitespace (str.split()); count every
    occurrence of every word in all sentences together; keep the words that occur
    at least min_freq times; put "<unk>" at index 0 and "<eos>" at 1; then the kept
    words by decreasing count, equal counts in Python's string order (sorted()).
    A word of the text that is itself "<unk>" or "<eos>" keeps its special index.
    """
    counts: Counter = Counter()
    for sentence in sentences:
        words = sentence.split()
        counts.update(set(words) if count == "per_sentence" else words)
    for special in SPECIALS:
        counts.pop(special, None)
    threshold = {"at_least": min_freq, "more_than": min_freq + 1, "all": 1}[keep]
    kept = [w for w in counts if counts[w] >= threshold]  # Counter keeps first-seen order
    if order == "count_then_word":
        kept.sort(key=lambda w: (-counts[w], w))
    elif order == "first_seen":  # what Counter.most_common() does with ties
        kept.sort(key=lambda w: -counts[w])
    elif order == "word":
        kept.sort()
    elif order == "increasing":
        kept.sort(key=lambda w: (counts[w], w))
    if specials == "front":
        return list(SPECIALS) + kept
    if specials == "end":
        return kept + list(SPECIALS)
    if specials == "eos_only":
        return [EOS] + kept
    return kept


def reference_encode(sentence: str, stoi: dict[str, int], *, eos: str = "end",
                     unknown: str = "unk") -> torch.Tensor:
    """One index per word (stoi, or "<unk>"'s index for a word not in it), then "<eos>"."""
    ids = []
    for word in sentence.split():
        if word in stoi:
            ids.append(stoi[word])
        elif unknown == "unk":
            ids.append(stoi[UNK])
    if eos == "end":
        ids.append(stoi[EOS])
    elif eos == "start":
        ids.insert(0, stoi[EOS])
    return torch.tensor(ids, dtype=torch.long)


SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


def random_words(n: int, syllables: tuple[int, int] = (1, 3)) -> list[str]:
    """n distinct made-up lower-case words of 1 to 3 syllables by default (uses the torch RNG)."""
    words: list[str] = []
    while len(words) < n:
        k = int(torch.randint(syllables[0], syllables[1] + 1, ()))
        word = "".join(SYLLABLES[int(i)] for i in torch.randint(len(SYLLABLES), (k,)))
        if word not in words:
            words.append(word)
    return words


def random_corpus(config: dict) -> tuple[list[str], list[str]]:
    """(sentences, words used): Zipf-like counts, so there are ties and rare words.

    Three more words are planted so that every rule matters whatever the seed: two
    with the same count, max(min_freq, 2), the alphabetically later one seen first
    (a tie that first-seen order gets wrong), and one with count min_freq - 1.
    """
    min_freq = config["min_freq"]
    pool = random_words(config["n_words"] + 3)
    *pool, early, late, rare = pool
    late, early = sorted([early, late])  # `early` is the later word in sorted() order
    if config.get("unk_in_text"):
        pool[3] = UNK  # as in Mikolov's Penn Treebank, whose text already says <unk>
    weights = 1.0 / torch.arange(1, len(pool) + 1, dtype=DTYPE)
    sentences = []
    for _ in range(config["n_sentences"]):
        picks = torch.multinomial(weights, int(torch.randint(3, 11, ())), replacement=True)
        sentences.append([pool[int(i)] for i in picks])
    tie = max(min_freq, 2)
    plant = [early] + [early] * (tie - 1) + [late] * tie + [rare] * (min_freq - 1)
    for k, word in enumerate(plant):
        # the first copy of `early` goes into sentence 0, everything else after it
        target = sentences[0] if k == 0 else sentences[int(torch.randint(1, len(sentences), ()))]
        target.insert(int(torch.randint(len(target) + 1, ())) if k else 0, word)
    return [" ".join(words) for words in sentences], pool + [early, late, rare]


def corpus_label(config: dict) -> str:
    return describe_config({k: v for k, v in config.items()
                            if k not in ("sentences", "to_encode")})


def counts_of(sentences: list[str]) -> Counter:
    return Counter(w for s in sentences for w in s.split())


class ExactCheck(Check):
    """A check whose outputs are words and indices, compared exactly rather than in float64."""

    def ok_message(self, count: int) -> str:
        return (f"OK: {self.student_name} matches {self.reference_name} on {count} random "
                "corpora (compared exactly).")


# -- extend_vocab ------------------------------------------------------------------------

def extended(itos: list[str], sentences: list[str], min_freq: int = 1, *, keep: str = "at_least",
             order: str = "count_then_word", known: str = "skip") -> list[str]:
    """itos grown by the rule of extend_vocab; the keyword arguments give classic mistakes.

    The rule: the given itos, unchanged, then the words of `sentences` that are not in it
    and occur at least min_freq times in `sentences`, by decreasing count there, equal
    counts in sorted() order.
    """
    counts = counts_of(sentences)
    threshold = min_freq + 1 if keep == "more_than" else min_freq
    new = [w for w in counts if counts[w] >= threshold and (known == "again" or w not in itos)]
    if order == "count_then_word":
        new.sort(key=lambda w: (-counts[w], w))
    elif order == "first_seen":  # Counter.most_common()'s order for ties
        new.sort(key=lambda w: -counts[w])
    # order == "appearance": no sorting, as chapter 8's Dictionary numbers words
    return list(itos) + new


def old_vocabulary(config: dict) -> list[str]:
    """An existing vocabulary: specials first, its words in an order of its own (not count order)."""
    sentences, _ = random_corpus(dict(n_sentences=config["n_old"], n_words=config["n_old"],
                                      min_freq=1))
    words = vocabulary(sentences)[len(SPECIALS):]
    order = torch.randperm(len(words)).tolist()
    return list(SPECIALS) + [words[i] for i in order]


class ExtendVocabCheck(ExactCheck):
    name = "02-embedding/extend_vocab"
    forbidden_functions = ("rnn_by_hand.chapters.embedding.vocab.extended",
                           "rnn_by_hand.chapters.embedding.vocab.vocabulary")
    student_name = "extend_vocab"
    reference_name = "the rule of extend_vocab (reference in rnn_by_hand.chapters.embedding.vocab)"

    # n_old: the size of the text the given vocabulary came from; n_known: how many of its
    # words each new sentence repeats (so that some new text is already in the vocabulary).
    VISIBLE = [dict(n_old=15, n_sentences=20, n_words=25, min_freq=1, n_known=2),
               dict(n_old=25, n_sentences=40, n_words=50, min_freq=2, n_known=1),
               dict(n_old=10, n_sentences=30, n_words=40, min_freq=3, n_known=2, unk_in_text=True)]
    HIDDEN = [dict(n_old=30, n_sentences=60, n_words=80, min_freq=2, n_known=2, unk_in_text=True),
              dict(n_old=8, n_sentences=12, n_words=15, min_freq=1, n_known=1),
              dict(n_old=20, n_sentences=50, n_words=60, min_freq=4, n_known=3),
              dict(n_old=12, n_sentences=35, n_words=30, min_freq=5, n_known=1, unk_in_text=True)]
    PARTS = {"min_freq=1": lambda c: c["min_freq"] == 1,
             "min_freq above 1": lambda c: c["min_freq"] > 1}

    def make_case(self, params, seed):
        itos = old_vocabulary(params)
        sentences, _ = random_corpus(params)
        words = itos[len(SPECIALS):]
        for k, sentence in enumerate(sentences):  # repeat some known words in the new text
            split = sentence.split()
            for i in torch.randint(len(words), (params["n_known"],)).tolist():
                split.insert(int(torch.randint(len(split) + 1, ())), words[i])
            sentences[k] = " ".join(split)
        config = dict(params, itos=itos, sentences=sentences)
        return Case(describe_config({k: v for k, v in config.items() if k not in ("itos", "sentences")})
                    + f", {len(itos)} words given", config)

    def run_student(self, student, case):
        itos, sentences = list(case.config["itos"]), list(case.config["sentences"])
        result = call_student(self.student_name, student, itos, sentences, min_freq=case.config["min_freq"])
        if itos != case.config["itos"]:
            raise CheckFailure(f"{self.student_name} changed the itos it was given (append?); build "
                               "a new list: the old vocabulary may still be in use")
        if sentences != case.config["sentences"]:
            raise CheckFailure(f"{self.student_name} changed the list of sentences it was given; "
                               "read it without modifying it")
        itos, stoi = unpack_pair(self.student_name, result, ("itos", "stoi"))
        return {"itos": itos, "stoi": stoi}

    def run_reference(self, case):
        c = case.config
        itos = extended(c["itos"], c["sentences"], c["min_freq"])
        return {"itos": itos, "stoi": {w: i for i, w in enumerate(itos)}}

    def compare(self, case, expected, actual):
        old, itos = case.config["itos"], actual["itos"]
        if isinstance(itos, (list, tuple)):
            for i, (got, want) in enumerate(zip(itos, old)):
                if got != want:
                    return [f"itos[{i}] is {got!r}, but the vocabulary you were given has {want!r} "
                            "there: every word it has keeps its index (an embedding trained with it "
                            "has a row for each)"]
        counts = counts_of(case.config["sentences"])
        problems = compare_itos(expected["itos"], itos, counts)
        return problems + compare_stoi(expected["stoi"], actual["stoi"], itos)

    def hint(self, case, actual):
        c = case.config
        itos = actual.get("itos")
        if not isinstance(itos, (list, tuple)):
            return ""
        itos, expected = list(itos), extended(c["itos"], c["sentences"], c["min_freq"])
        if itos == expected:
            stoi = actual.get("stoi")
            if isinstance(stoi, dict) and all(stoi.get(w) == i + 1 for i, w in enumerate(itos)):
                return "stoi counts from 1 (enumerate(itos, 1)?); stoi[itos[i]] must be i, starting at 0"
            return ""
        if len(set(itos)) < len(itos):
            return ("a word appears twice: a word of the new text that the vocabulary already has "
                    "keeps its index and is not added again")
        if itos == vocabulary(c["sentences"], c["min_freq"]):
            return ("you built a new vocabulary from the new text alone: start from the itos you "
                    "were given, unchanged, and add only the words it does not have")
        mistakes = [
            (dict(keep="more_than"), f"your new words leave out those that occur exactly "
             f"min_freq={c['min_freq']} times: add a word when count >= min_freq"),
            (dict(order="first_seen"), "your ties are in order of first appearance, which is what "
             "Counter.most_common() gives; equal counts must be in sorted() order of the words"),
            (dict(order="appearance"), "your new words are in order of first appearance; add them "
             "by decreasing count in the new text, equal counts in sorted() order"),
        ]
        for options, text in mistakes:
            if itos == extended(c["itos"], c["sentences"], c["min_freq"], **options) != expected:
                return text
        return ""


def compare_itos(expected: list[str], itos, counts: Counter) -> list[str]:
    if not isinstance(itos, (list, tuple)):
        return [f"itos should be a list of words, got {type_name(itos)}"]
    bad = [w for w in itos if not isinstance(w, str)]
    if bad:
        return [f"itos should hold strings (the words), but holds {type_name(bad[0])}"]
    itos = list(itos)
    if itos == expected:
        return []

    def described(word):
        return f"{word!r} (a special token)" if word in SPECIALS else \
            f"{word!r} (count {counts[word]})"
    for i, (got, want) in enumerate(zip(itos, expected)):
        if got != want:
            sizes = f"; itos has {len(itos)} entries, expected {len(expected)}" \
                if len(itos) != len(expected) else ""
            return [f"itos[{i}] is {described(got)}, expected {described(want)}{sizes}"]
    if len(itos) > len(expected):
        return [f"itos has {len(itos)} entries, expected {len(expected)}: the first extra one is "
                f"itos[{len(expected)}] = {described(itos[len(expected)])}"]
    return [f"itos has {len(itos)} entries, expected {len(expected)}: it stops before "
            f"{described(expected[len(itos)])}"]


def compare_stoi(expected: dict[str, int], stoi, itos) -> list[str]:
    if not isinstance(stoi, dict):
        return [f"stoi should be a dict from word to index, got {type_name(stoi)}"]
    missing = [w for w in expected if w not in stoi]
    if missing:
        others = f" ({len(missing)} words of the vocabulary are missing from it)" \
            if len(missing) > 1 else ""
        return [f"stoi has no entry for {missing[0]!r}{others}"]
    extra = [w for w in stoi if w not in expected]
    if extra:
        return [f"stoi has an entry for {extra[0]!r}, which is not in the vocabulary"]
    for word, index in expected.items():
        if stoi[word] != index:
            inverse = " (stoi must be the inverse of itos: stoi[itos[i]] == i)" \
                if isinstance(itos, (list, tuple)) and list(itos) == list(expected) else ""
            return [f"stoi[{word!r}] is {stoi[word]!r}, expected {index}{inverse}"]
    return []


# -- encode_batch ----------------------------------------------------------------------

def reference_batch(sentences: list[str], stoi: dict[str, int], padding_idx: int, *,
                    eos: str = "end", unknown: str = "unk", side: str = "right",
                    pad: int | None = None, eos_counted: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, lengths): each sentence encoded as encode does, the rows padded at the end with
    padding_idx to the longest; the keyword arguments give classic mistakes."""
    rows = [reference_encode(s, stoi, eos=eos, unknown=unknown) for s in sentences]
    longest = max(len(row) for row in rows)
    ids = torch.full((len(rows), longest), padding_idx if pad is None else pad, dtype=torch.long)
    for n, row in enumerate(rows):
        if side == "right":
            ids[n, :len(row)] = row
        else:  # side == "left"
            ids[n, longest - len(row):] = row
    extra = 1 if eos_counted or eos == "none" else 0
    lengths = torch.tensor([len(row) - 1 + extra for row in rows], dtype=torch.long)
    return ids, lengths


class EncodeBatchCheck(ExactCheck):
    name = "02-embedding/encode_batch"
    forbidden_functions = ("rnn_by_hand.chapters.embedding.vocab.reference_batch",
                           "rnn_by_hand.chapters.embedding.vocab.reference_encode",
                           "torch.nn.utils.rnn.pad_sequence", "torch.nn.utils.rnn.pad_packed_sequence")
    forbidden_reason = "this exercise asks you to pad the batch yourself"
    student_name = "encode_batch"
    reference_name = "the reference batch encoder (encode, then padding_idx)"

    # spare: padding_idx is len(stoi) + spare, a row of the embedding beyond the vocabulary
    VISIBLE = [dict(n_sentences=20, n_words=25, min_freq=2, n_encode=3, spare=0),
               dict(n_sentences=30, n_words=40, min_freq=3, n_encode=4, spare=2, unk_in_text=True),
               dict(n_sentences=12, n_words=15, min_freq=1, n_encode=3, spare=0, empty=True)]
    HIDDEN = [dict(n_sentences=40, n_words=50, min_freq=2, n_encode=5, spare=1, unk_in_text=True),
              dict(n_sentences=15, n_words=20, min_freq=1, n_encode=2, spare=0, empty=True),
              dict(n_sentences=25, n_words=30, min_freq=4, n_encode=4, spare=3)]

    def make_case(self, params, seed):
        sentences, _ = random_corpus(params)
        unseen = random_words(5, syllables=(4, 4))  # longer than any word of the corpus
        to_encode = []
        for k in range(params["n_encode"]):
            words = sentences[k].split()[:3 + 2 * k]  # lengths that differ from one another
            # one word the corpus never had, somewhere in the sentence
            words.insert(int(torch.randint(len(words) + 1, ())), unseen[k % len(unseen)])
            to_encode.append(" ".join(words))
        if params.get("empty"):
            to_encode.insert(1, "")
        to_encode = [to_encode[i] for i in torch.randperm(len(to_encode)).tolist()]
        sizes = [len(sentence.split()) for sentence in to_encode]
        if sizes[0] == max(sizes):  # the first row's width must not do for all of them
            j = sizes.index(min(sizes))
            to_encode[0], to_encode[j] = to_encode[j], to_encode[0]
        config = dict(params, sentences=sentences, to_encode=to_encode)
        return Case(corpus_label(config), config)

    @staticmethod
    def stoi(case) -> dict[str, int]:
        itos = vocabulary(case.config["sentences"], case.config["min_freq"])
        return {w: i for i, w in enumerate(itos)}

    def padding_idx(self, case) -> int:
        return len(self.stoi(case)) + case.config["spare"]

    def run_student(self, student, case):
        stoi, sentences = self.stoi(case), list(case.config["to_encode"])
        given = dict(stoi)
        result = call_student(self.student_name, student, sentences, given, self.padding_idx(case))
        if given != stoi:
            added = [w for w in given if w not in stoi]
            raise CheckFailure(f"{self.student_name} changed stoi" + (
                f": it added {added[0]!r}" if added else "") + "; the vocabulary is fixed "
                "once built, and a word that is not in it is encoded as '<unk>'")
        if sentences != case.config["to_encode"]:
            raise CheckFailure(f"{self.student_name} changed the list of sentences it was given; "
                               "read it without modifying it")
        ids, lengths = unpack_pair(self.student_name, result, ("ids", "lengths"))
        return {"ids": ids, "lengths": lengths}

    def run_reference(self, case):
        ids, lengths = reference_batch(case.config["to_encode"], self.stoi(case), self.padding_idx(case))
        return {"ids": ids, "lengths": lengths}

    def compare(self, case, expected, actual):
        itos, pad = list(self.stoi(case)), self.padding_idx(case)
        want, got = expected["ids"], actual["ids"]
        problems = long_tensor_problems("ids", got)
        if problems:
            return problems
        N, L = want.shape
        if got.shape != want.shape:
            text = (f"ids has shape {shape_str(got.shape)}, expected {shape_str(want.shape)}, that is "
                    "(N, L): one row per sentence, L the longest one's number of words + 1")
            if tuple(got.shape) == (L, N):
                text += "; yours is (L, N): put the sentences in the rows"
            return [text]
        differ = (got != want).nonzero()
        if len(differ):
            n, t = (int(i) for i in differ[0])
            what = "padding_idx" if int(want[n, t]) == pad and t >= int(expected["lengths"][n]) else \
                repr(itos[int(want[n, t])])
            return [f"ids[{n}, {t}] is {int(got[n, t])}, expected {int(want[n, t])} ({what}); "
                    f"row {n} encodes {short(case.config['to_encode'][n])!r}"]
        return compare_lengths(expected["lengths"], actual["lengths"])

    def error_hint(self, case, message):
        if "raised KeyError" in message:
            return ("a word that is not in stoi is encoded as stoi['<unk>']: look words up with "
                    "stoi.get(word, stoi['<unk>'])")
        return ""

    def hint(self, case, actual):
        stoi, pad, sentences = self.stoi(case), self.padding_idx(case), case.config["to_encode"]
        mistakes = [(dict(pad=stoi[UNK]), f"the padding is stoi['<unk>'] = {stoi[UNK]}: fill the "
                     f"positions after each sentence with padding_idx ({pad}), a row that is no word"),
                    (dict(side="left"), "the padding goes after the words, at the end of each row, "
                     "not before them"),
                    (dict(eos="none"), "'<eos>' is missing: each row starts with encode(sentence), "
                     "which ends in stoi['<eos>']"),
                    (dict(unknown="drop"), "words that are not in stoi were left out: encode each "
                     "as stoi['<unk>'], so that the sentence keeps its length"),
                    (dict(eos_counted=False), "lengths leave out the '<eos>': lengths[n] is the "
                     "number of entries of row n before the padding, '<eos>' included")]
        for options, text in mistakes:
            ids, lengths = reference_batch(sentences, stoi, pad, **options)
            if same_ints(actual.get("ids"), ids) and same_ints(actual.get("lengths"), lengths):
                return text
        return ""


def same_ints(actual, expected: torch.Tensor) -> bool:
    return isinstance(actual, torch.Tensor) and actual.shape == expected.shape and \
        not actual.dtype.is_floating_point and torch.equal(actual.long(), expected)


def short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def long_tensor_problems(name: str, actual) -> list[str]:
    if isinstance(actual, (list, tuple)):
        return [f"{name} should be a torch.Tensor, got {type_name(actual)}: make a LongTensor, "
                "e.g. with torch.full(..., dtype=torch.long) or torch.tensor(..., dtype=torch.long)"]
    if not isinstance(actual, torch.Tensor):
        return [f"{name} should be a torch.Tensor of indices, got {type_name(actual)}"]
    if actual.dtype != torch.long:
        return [f"{name} has dtype {actual.dtype}, expected torch.int64 (torch.long), the dtype "
                "nn.Embedding and pack_padded_sequence expect"]
    return []


def compare_lengths(expected: torch.Tensor, actual) -> list[str]:
    problems = long_tensor_problems("lengths", actual)
    if problems:
        return problems
    if actual.shape != expected.shape:
        return [f"lengths has shape {shape_str(actual.shape)}, expected {shape_str(expected.shape)}: "
                "one length per sentence"]
    differ = (actual != expected).nonzero()
    if len(differ):
        n = int(differ[0, 0])
        return [f"lengths[{n}] is {int(actual[n])}, expected {int(expected[n])}: the number of words "
                "of sentence n, plus one for '<eos>'"]
    return []


check_extend_vocab = ExtendVocabCheck()
check_encode_batch = EncodeBatchCheck()
