"""Concept generation: parent-level prompts first, then leaf-level prompts (Figs. 6, 7).

Every prompt passes the privacy guard, then the recording store; only in `record` (on a
miss) or `refresh` mode does it reach the API. A code whose concepts cannot be read is
asked again (alone with the other unanswered codes) up to `max_parse_retries` times; after
that the run stops naming every such code. No code is ever dropped silently.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cec.concepts.client import ApiError, ApiSettings, ChatClient, SpendingCapError
from cec.concepts.guard import NoteShingleGuard
from cec.concepts.parse import AnswerFormatError, empty_codes, parse_concept_answer
from cec.concepts.prompts import (
    DEFAULT_TEMPLATES,
    CodeRow,
    ConceptRequest,
    Level,
    leaf_request,
    make_batches,
    parent_request,
)
from cec.concepts.store import Recording, RecordingStore, request_key
from cec.plumbing.errors import InputError
from cec.plumbing.io import atomic_write

log = logging.getLogger(__name__)
Mode = Literal["replay", "record", "refresh"]


class ReplayMissError(InputError, RuntimeError):
    """Replay mode met a prompt that has no recording (the config's mode or recordings
    to fix: one line, no traceback)."""


class ConceptGenerationError(InputError, RuntimeError):
    """Some codes have no readable concepts after all retries (one line naming them, and
    the setting that allows more attempts)."""


@dataclass
class GenerationSettings:
    """The `concepts` block of the config, minus the API part."""

    mode: Mode = "replay"
    recordings: Path = Path("recordings.jsonl")
    min_batch: int = 5
    max_batch: int = 7
    max_parse_retries: int = 2
    templates: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TEMPLATES))


@dataclass
class GenerationResult:
    """Concepts per owner code in generation order, and the exchanges that produced them."""

    parent: dict[str, list[str]]
    leaf: dict[str, list[str]]
    sources: dict[tuple[str, str], str]  # (level, owner) -> recording key
    exchanges: list[Recording]
    api_requests: int
    api_tokens: int


class _Asker:
    """Guard -> store -> (maybe) API, for one run."""

    def __init__(
        self,
        settings: GenerationSettings,
        api: ApiSettings,
        guard: NoteShingleGuard | None,
        client_factory: Callable[[ApiSettings], ChatClient],
    ) -> None:
        self.settings = settings
        self.api = api
        self.guard = guard
        self.store = RecordingStore(settings.recordings)
        self._client_factory = client_factory
        self._client: ChatClient | None = None
        self._client_lock = threading.Lock()
        self._refreshed: set[str] = set()
        self._stopped: Exception | None = None  # a refusal: the queued prompts stay unsent

    @property
    def client(self) -> ChatClient:
        # one client per run, created on first need (never in replay), shared by threads
        with self._client_lock:
            if self._client is None:
                self._client = self._client_factory(self.api)
            return self._client

    def vet(self, requests: Sequence[ConceptRequest]) -> None:
        """Guard every prompt of a round before any of them is looked up or sent."""
        if self.guard is None:
            return
        for req in requests:
            self.guard.check(req.prompt, f"{req.level}-level prompt for {', '.join(req.codes)}")

    def ask(self, req: ConceptRequest) -> Recording | None:
        what = f"{req.level}-level prompt for {', '.join(req.codes)}"
        body = self.api.request_body(req.prompt)
        stored = {"body": body, "attempt": req.attempt}
        key = request_key(stored)
        mode = self.settings.mode
        rec = self.store.get(key)
        if mode == "replay" or (mode == "record" and rec is not None):
            return rec
        if mode == "refresh" and key in self._refreshed and rec is not None:
            return rec
        if self._stopped is not None:  # a 401 for one prompt is a 401 for all: don't pay
            raise self._stopped
        log.info("asking the API: %s (attempt %d)", what, req.attempt)
        try:
            response = self.client.complete(body, what)
        except (ApiError, SpendingCapError) as exc:
            self._stopped = exc
            raise
        try:
            parse_concept_answer(response["content"], req.answer_codes)
            meta_ok: dict[str, Any] = {"parsed_ok": True}
        except AnswerFormatError as exc:
            meta_ok = {"parsed_ok": False, "error": str(exc)}
        meta = {
            "level": req.level,
            "codes": req.codes,
            "template": req.template,
            "provider": self.api.provider,
            **meta_ok,
        }
        self._refreshed.add(key)
        return self.store.append(stored, response, meta)


def _read(
    rec: Recording, req: ConceptRequest, store: RecordingStore, strict: bool
) -> dict[str, list[str]]:
    """Parse a recorded answer. Recordings that parsed when made must still parse."""
    expected_ok = rec.meta.get("parsed_ok", True)
    try:
        answer = parse_concept_answer(rec.content, req.answer_codes)
    except AnswerFormatError as exc:
        if strict and expected_ok:
            raise InputError(
                f"recorded answer is unusable: {exc}",
                file=store.path,
                row=rec.line,
                field="response",
            ) from None
        log.warning("unreadable answer for %s: %s", ", ".join(req.answer_codes), exc)
        return {}
    empty = empty_codes(rec.content, req.answer_codes)
    if empty and strict and expected_ok:
        raise InputError(
            f"recorded answer has an empty concept list for {', '.join(empty)}",
            file=store.path,
            row=rec.line,
            field="response",
        )
    return answer


def _run_level(
    level: Level,
    rows: Sequence[CodeRow],
    make_request: Callable[[list[CodeRow], int], ConceptRequest],
    owner_of: Callable[[CodeRow], str],
    asker: _Asker,
    settings: GenerationSettings,
    result: GenerationResult,
) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    pending = list(rows)
    strict = settings.mode == "replay"
    workers = 1 if settings.mode == "replay" else max(1, asker.api.max_concurrent)
    for attempt in range(settings.max_parse_retries + 1):
        batches = make_batches(pending, settings.min_batch, settings.max_batch)
        requests = [make_request(batch, attempt) for batch in batches]
        asker.vet(requests)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            recordings = list(pool.map(asker.ask, requests))
        missing = [
            c
            for req, rec in zip(requests, recordings, strict=True)
            if rec is None
            for c in req.codes
        ]
        if missing:
            raise ReplayMissError(
                f"replay mode: no recording for the {level}-level prompt(s) of code(s) "
                f"{', '.join(missing)} in {asker.store.path}; run with concepts.mode: record "
                "to ask the API for them"
            )
        for req, rec in zip(requests, recordings, strict=True):
            assert rec is not None
            result.exchanges.append(rec)
            for owner, phrases in _read(rec, req, asker.store, strict).items():
                if owner not in found:
                    found[owner] = list(phrases)
                    result.sources[(level, owner)] = rec.key
                else:  # a parent answered in two batches: keep both lists, in order
                    found[owner] += [p for p in phrases if p not in found[owner]]
        pending = [r for r in rows if owner_of(r) not in found]
        if not pending:
            return found
        log.warning(
            "%s-level concepts missing for %s; asking again",
            level,
            ", ".join(sorted({owner_of(r) for r in pending})),
        )
    codes = sorted({r.code for r in pending})
    raise ConceptGenerationError(
        f"no readable {level}-level concepts after {settings.max_parse_retries + 1} attempts "
        f"for code(s): {', '.join(codes)}; the answers are in the recordings (meta.error "
        "says why each was unreadable); raise concepts.max_parse_retries to ask again"
    )


def generate_concepts(
    rows: Sequence[CodeRow],
    settings: GenerationSettings,
    api: ApiSettings,
    guard: NoteShingleGuard | None = None,
    client_factory: Callable[[ApiSettings], ChatClient] = ChatClient,
) -> GenerationResult:
    """Parent concepts for every parent, then leaf concepts for every code."""
    asker = _Asker(settings, api, guard, client_factory)
    result = GenerationResult({}, {}, {}, [], 0, 0)
    ordered = sorted(rows, key=lambda r: (r.parent, r.code))  # siblings share a batch
    result.parent = _run_level(
        "parent",
        ordered,
        lambda batch, attempt: parent_request(batch, settings.templates["parent"], attempt),
        lambda r: r.parent,
        asker,
        settings,
        result,
    )
    parents = result.parent
    result.leaf = _run_level(
        "leaf",
        ordered,
        lambda batch, attempt: leaf_request(batch, parents, settings.templates["leaf"], attempt),
        lambda r: r.code,
        asker,
        settings,
        result,
    )
    if asker._client is not None:
        result.api_requests = asker._client.spending.requests
        result.api_tokens = asker._client.spending.tokens
    return result


def write_raw(
    result: GenerationResult, rows: Sequence[CodeRow], concepts_path: Path, exchanges_path: Path
) -> None:
    """Raw concepts in generation order (parents first) and the exchanges behind them."""
    order = sorted(rows, key=lambda r: (r.parent, r.code))
    with atomic_write(concepts_path) as fh:
        for parent in dict.fromkeys(r.parent for r in order):
            fh.write(
                json.dumps(
                    {
                        "level": "parent",
                        "owner": parent,
                        "concepts": result.parent[parent],
                        "request_key": result.sources[("parent", parent)],
                    }
                )
                + "\n"
            )
        for r in order:
            fh.write(
                json.dumps(
                    {
                        "level": "leaf",
                        "owner": r.code,
                        "parent": r.parent,
                        "concepts": result.leaf[r.code],
                        "request_key": result.sources[("leaf", r.code)],
                    }
                )
                + "\n"
            )
    seen: set[str] = set()
    with atomic_write(exchanges_path) as fh:
        for rec in result.exchanges:
            if rec.key in seen:
                continue
            seen.add(rec.key)
            fh.write(
                json.dumps(
                    {
                        "key": rec.key,
                        "request": rec.request,
                        "response": rec.response,
                        "meta": rec.meta,
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
