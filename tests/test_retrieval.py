"""Candidate retrieval for full code sets: recall@K computed by hand, and two retrievers
that learn what they should on a small task where the note words give the codes away
only for a reader of the text (a frequency-only ranking does poorly)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from cec.retrieval.recall import band_of, choose, recall_at_k, top_k
from cec.retrieval.retrievers import NeighbourRetriever, TitleRetriever, code_texts


def test_recall_at_k_by_hand() -> None:
    scores = np.array([[0.9, 0.1, 0.5, 0.0], [0.2, 0.8, 0.8, 0.1]])
    gold = [{2, 3}, {2}]
    # note 1 ties codes 1 and 2: the lower index ranks first
    assert top_k(scores, 2).tolist() == [[0, 2], [1, 2]]
    bands = band_of([50, 5, 200, 10])
    assert bands == ["10-100", "<10", ">100", "10-100"]
    got = recall_at_k(scores, gold, [1, 2, 4], bands)
    assert got["all"] == {"pairs": 3, "@1": 0.0, "@2": 0.6667, "@4": 1.0}
    assert got[">100"] == {"pairs": 2, "@1": 0.0, "@2": 1.0, "@4": 1.0}
    assert got["10-100"] == {"pairs": 1, "@1": 0.0, "@2": 0.0, "@4": 1.0}
    assert got["<10"] == {"pairs": 0, "@1": None, "@2": None, "@4": None}
    with pytest.raises(ValueError, match="1 gold sets for 2 notes"):
        recall_at_k(scores, gold[:1], [1])


def test_the_choice_reads_dev_recall_only_and_breaks_ties_by_name() -> None:
    dev = {"title": {"all": {"@50": 0.61}}, "neighbours": {"all": {"@50": 0.83}}}
    assert choose(dev, 50) == "neighbours"
    assert choose({"b": {"all": {"@5": 0.5}}, "a": {"all": {"@5": 0.5}}}, 5) == "a"


N_CODES = 20
FILLER = [f"filler{i}" for i in range(300)]


def _world(seed: int, n_notes: int, unseen: int | None = None):
    """Notes of 1-3 codes: each code puts its own marker word in the note (and its title
    words, half the time) among 40 filler words. Code frequencies are skewed, so ranking
    by frequency alone is a real baseline. `unseen` is a code no note carries."""
    rng = random.Random(seed)
    weights = [1.0 / (i + 1) for i in range(N_CODES)]
    notes, labels = [], []
    for _ in range(n_notes):
        codes = set()
        while len(codes) < rng.randint(1, 3):
            code = rng.choices(range(N_CODES), weights)[0]
            if code != unseen:
                codes.add(code)
        words = [rng.choice(FILLER) for _ in range(40)]
        for code in codes:
            words.append(f"marker{code}")
            if rng.random() < 0.5:
                words += [f"organ{code}", f"disorder{code}"]
        rng.shuffle(words)
        notes.append(" ".join(words))
        labels.append([f"C{code:02d}" for code in sorted(codes)])
    return notes, labels


CODES = [f"C{i:02d}" for i in range(N_CODES)]


def _gold(labels):
    return [{CODES.index(c) for c in codes} for codes in labels]


def test_neighbour_voting_learns_the_codes_from_the_text() -> None:
    train, train_labels = _world(1, 300)
    test, test_labels = _world(2, 80)  # 141 gold pairs: one pair is 0.007 of recall
    gold = _gold(test_labels)

    def recall(labels: list[list[str]]) -> float:
        retriever = NeighbourRetriever(CODES, neighbours=10).fit(train, labels)
        return recall_at_k(retriever.scores(test), gold, [3])["all"]["@3"]

    got = recall(train_labels)
    # the frequency-only ranking: what the retriever falls back to without a vote
    prior = np.tile(-np.arange(N_CODES, dtype=float), (len(test), 1))
    baseline = recall_at_k(prior, gold, [3])["all"]["@3"]
    # labels one note off (a plausible indexing bug): the text no longer predicts them
    shifted = recall(train_labels[1:] + train_labels[:1])
    print(f"recall@3: neighbours {got}, frequency only {baseline}, labels shifted {shifted}")
    assert got >= baseline + 0.2
    assert shifted <= baseline + 0.1


def test_titles_find_a_code_no_training_note_carries() -> None:
    """Code 7 never occurs in training: the neighbours cannot propose it, its title can."""
    train, train_labels = _world(3, 300, unseen=7)
    rows = [
        {"code": c, "description": f"Disorder{i} of the organ{i}", "parent_description": ""}
        for i, c in enumerate(CODES)
    ]
    titles = TitleRetriever(CODES, code_texts(rows))
    neighbours = NeighbourRetriever(CODES, neighbours=10).fit(train, train_labels)
    note = "filler1 marker7 organ7 disorder7 filler2"
    assert top_k(titles.scores([note]), 1).tolist() == [[7]]
    assert 7 not in top_k(neighbours.scores([note]), 3)[0]
    # a note sharing no word with any title scores zero everywhere (then code order)
    assert not titles.scores(["filler1 filler2"]).any()


def test_bad_use_is_refused() -> None:
    with pytest.raises(ValueError, match="2 notes but 1 label sets"):
        NeighbourRetriever(CODES).fit(["a b", "c d"], [["C00"]])
    with pytest.raises(RuntimeError, match="fit the retriever first"):
        NeighbourRetriever(CODES).scores(["a"])
    with pytest.raises(ValueError, match="1 codes without a text"):
        TitleRetriever(["C00", "C01"], {"C00": "x"})


def test_a_training_note_does_not_vote_for_itself() -> None:
    """Scoring the training notes with `exclude`: a code only one note carries must not be
    proposed to that note by its own vote (leave-one-out), while a code its near-duplicate
    neighbour carries still is."""
    texts = ["fever cough sputum", "fever cough sputum", "rash itch hives", "unique zebra words"]
    labels = [["A"], ["A", "B"], ["C"], ["D"]]
    retriever = NeighbourRetriever(["A", "B", "C", "D"], neighbours=2).fit(texts, labels)
    plain = retriever.scores(texts)
    loo = retriever.scores(texts, exclude=[0, 1, 2, 3])
    assert plain[3, 3] > 0.5  # its own vote, similarity 1
    assert loo[3, 3] < 1e-5  # only the frequency prior is left
    assert loo[0, 1] > 0.5  # note 1 (same text) still votes B for note 0
    assert loo[1, 1] < 1e-5  # B is only note 1's: no vote for itself
    np.testing.assert_allclose(retriever.scores(texts[1:3], exclude=[-1, -1]), plain[1:3])
    with pytest.raises(ValueError, match="rows to exclude"):
        retriever.scores(texts, exclude=[0])
