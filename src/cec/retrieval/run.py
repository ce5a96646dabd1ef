"""One dataset's candidate retrieval: fit both retrievers on train, choose on dev by
recall@K, write each split's candidates and every recall figure."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from cec.plumbing.artifacts import CANDIDATE_COLUMNS, SPLITS, read_code_table
from cec.plumbing.io import atomic_write, read_dataset, write_json
from cec.retrieval.recall import band_of, choose, recall_of_ranked, top_k
from cec.retrieval.retrievers import NeighbourRetriever, TitleRetriever, code_texts

log = logging.getLogger(__name__)


def _ranked(
    retriever: NeighbourRetriever | TitleRetriever,
    texts: list[str],
    depth: int,
    training: bool = False,
    batch: int = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """Each note's `depth` best codes (indices) and their scores, scored `batch` notes at a
    time: a full notes x codes matrix of a MIMIC-IV split (~110,000 training notes x
    thousands of codes) would not fit in memory. `training`: the texts are the training
    notes the neighbour retriever was fitted on, each scored without its own vote, so that
    train candidates (the label model's negatives) and train recall are what a new note
    gets."""
    ranked, kept = [], []
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        if training and isinstance(retriever, NeighbourRetriever):
            scores = retriever.scores(chunk, exclude=range(start, start + len(chunk)))
        else:
            scores = retriever.scores(chunk)
        best = top_k(scores, depth)
        ranked.append(best)
        kept.append(np.take_along_axis(scores, best, axis=1))
    if not ranked:
        return np.zeros((0, depth), dtype=int), np.zeros((0, depth))
    return np.concatenate(ranked), np.concatenate(kept)


def retrieve_candidates(
    dataset_dir: str | Path,
    codes_tsv: str | Path,
    out_dir: str | Path,
    *,
    ks: list[int],
    choose_at: int,
    neighbours: int,
    summary_path: str | Path,
    splits: tuple[str, ...] = SPLITS,
    choice: str | Path | None = None,
) -> dict[str, Any]:
    """Write `{split}.tsv` for `splits` (hadm_id, code, score, rank: the chosen
    retriever's top max(ks) codes of each note) and `summary_path` (recall@K of both
    retrievers per split and per training-frequency band, and which was chosen); returns
    the latter. Both retrievers are fitted on train alone.

    The choice reads dev only: without `choice`, `splits` must hold dev and the choice is
    made here; with `choice` (the summary of an earlier call on train and dev), the
    retriever it chose is used and its recall figures are carried over. The workflow
    makes two calls, so that no file written before the choice (the train candidates,
    which the training sets read) has test upstream of it."""
    if choose_at not in ks:
        raise ValueError(f"choose_at {choose_at} is not one of ks {ks}")
    earlier = None if choice is None else json.loads(Path(choice).read_text(encoding="utf-8"))
    if earlier is None and "dev" not in splits:
        raise ValueError("the retriever is chosen on dev: give dev, or an earlier choice")
    start = time.perf_counter()
    rows = read_code_table(codes_tsv)
    codes = [row["code"] for row in rows]
    index = {code: i for i, code in enumerate(codes)}
    read = dict.fromkeys(["train", *splits])
    records = {split: list(read_dataset(Path(dataset_dir) / f"{split}.jsonl")) for split in read}
    texts = {split: [r["text"] for r in recs] for split, recs in records.items()}
    gold = {
        split: [{index[c] for c in r["labels"] if c in index} for r in recs]
        for split, recs in records.items()
    }
    train_counts = np.zeros(len(codes), dtype=int)
    for labels in gold["train"]:
        train_counts[list(labels)] += 1
    bands = band_of(train_counts.tolist())
    retrievers = {
        "neighbours": NeighbourRetriever(codes, neighbours=neighbours).fit(
            texts["train"], [r["labels"] for r in records["train"]]
        ),
        "titles": TitleRetriever(codes, code_texts(rows)),
    }
    depth = max(ks)
    top = {
        name: {
            split: _ranked(retriever, texts[split], depth, training=split == "train")
            for split in splits
        }
        for name, retriever in retrievers.items()
    }
    recall = {
        name: {split: recall_of_ranked(t[split][0], gold[split], ks, bands) for split in splits}
        for name, t in top.items()
    }
    if earlier is None:
        chosen = choose({name: r["dev"] for name, r in recall.items()}, choose_at)
    else:
        chosen = earlier["chosen"]
        recall = {name: {**earlier["recall"][name], **r} for name, r in recall.items()}
    out_dir = Path(out_dir)
    for split in splits:
        ranked, kept = top[chosen][split]
        with atomic_write(out_dir / f"{split}.tsv") as fh:
            fh.write("\t".join(CANDIDATE_COLUMNS) + "\n")
            for row, record in enumerate(records[split]):
                for rank, (col, score) in enumerate(
                    zip(ranked[row], kept[row], strict=True), start=1
                ):
                    fh.write(f"{record['hadm_id']}\t{codes[col]}\t{score:.6f}\t{rank}\n")
    band_sizes = {name: bands.count(name) for name in dict.fromkeys(bands)}
    notes = {split: len(records[split]) for split in splits}
    summary = {
        "codes": len(codes),
        "codes_per_band": band_sizes,
        "notes": notes if earlier is None else {**earlier["notes"], **notes},
        "ks": ks,
        "chosen": chosen,
        "chosen_by": f"recall@{choose_at} on dev",
        "recall": recall,
        "parameters": {"neighbours": neighbours, "titles": "code and parent titles, BM25"},
        "seconds": round(time.perf_counter() - start, 1),
    }
    write_json(summary_path, summary)
    log.info(
        "candidates of %s: %s (chosen by dev recall@%d: %s); recall %s",
        ", ".join(splits),
        chosen,
        choose_at,
        {n: r["dev"]["all"][f"@{choose_at}"] for n, r in recall.items()},
        {split: recall[chosen][split]["all"] for split in splits},
    )
    return summary
