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
CHARS_PER_TOKEN = 4  # the prompt-token estimate of the plan lines


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


@dataclass(frozen=True)
class RoundPlan:
    """One round of one level, before it is sent: what the recordings answer, what is paid."""

    requests: int
    recorded: int  # answered from the recordings: replayed, not paid
    to_send: int
    prompt_chars: int  # characters of the prompts to send

    @property
    def prompt_tokens(self) -> int:
        """Estimated prompt tokens to send: characters / 4, rounded up (about right for
        English text with GPT tokenizers; the API's own count is in each recording)."""
        return -(-self.prompt_chars // CHARS_PER_TOKEN)


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

    def _stored(self, req: ConceptRequest) -> tuple[dict[str, Any], str]:
        """What a recording keeps of a request, and its key."""
        stored = {"body": self.api.request_body(req.prompt), "attempt": req.attempt}
        return stored, request_key(stored)

    def replayed(self, key: str) -> Recording | None:
        """The recording that answers a prompt without paying, or None: in record mode any
        recording, in refresh mode only one made by this run (replay: any, or a miss)."""
        rec = self.store.get(key)
        if self.settings.mode == "refresh" and key not in self._refreshed:
            return None
        return rec

    def plan(self, requests: Sequence[ConceptRequest]) -> RoundPlan:
        """How many of a round's requests are answered from the recordings and how many
        will be sent, with the characters of the prompts to send."""
        to_send = [r for r in requests if self.replayed(self._stored(r)[1]) is None]
        return RoundPlan(
            requests=len(requests),
            recorded=len(requests) - len(to_send),
            to_send=len(to_send),
            prompt_chars=sum(len(r.prompt) for r in to_send),
        )

    def ask(self, req: ConceptRequest) -> Recording | None:
        what = f"{req.level}-level prompt for {', '.join(req.codes)}"
        stored, key = self._stored(req)
        body = stored["body"]
        rec = self.replayed(key)
        if rec is not None or self.settings.mode == "replay":
            return rec
        if self._stopped is not None:  # a 401 for one prompt is a 401 for all: don't pay
            raise self._stopped
        rounds = self.settings.max_parse_retries + 1
        log.info("asking the API: %s (attempt %d of %d)", what, req.attempt + 1, rounds)
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


def _log_round_plan(
    level: Level, attempt: int, plan: RoundPlan, settings: GenerationSettings, api: ApiSettings
) -> None:
    """One line before a round is sent, so that the job log says what is about to be paid
    (and, after a failure, that a rerun pays only for what was not recorded)."""
    log.info(
        "%s-level concepts, attempt %d of %d: %d requests, %d already recorded (replayed, "
        "not paid), %d to send, about %d prompt tokens to send (characters / %d); no "
        "completion cap per answer is set, the run stops at concepts.api.max_tokens = %d "
        "tokens (prompt + completion) or max_requests = %d requests",
        level,
        attempt + 1,
        settings.max_parse_retries + 1,
        plan.requests,
        plan.recorded,
        plan.to_send,
        plan.prompt_tokens,
        CHARS_PER_TOKEN,
        api.max_tokens,
        api.max_requests,
    )


def _log_run_plan(rows: Sequence[CodeRow], settings: GenerationSettings, api: ApiSettings) -> None:
    """The whole run's requests before the first is sent: both levels batch the same
    ordered codes (`make_batches`), so each level's first round has the same count."""
    batches = len(make_batches(rows, settings.min_batch, settings.max_batch))
    parents = len({r.parent for r in rows})
    recorded = (
        "recorded answers are replayed, not paid"
        if settings.mode == "record"
        else "refresh mode sends every prompt again, recorded or not"
    )
    log.info(
        "concept generation plan (%s mode): %d codes under %d parents -> %d parent-level "
        "and %d leaf-level requests (batches of %d-%d codes; unreadable answers add up to %d "
        "more rounds per level); %s; the run stops at concepts.api.max_requests = %d "
        "requests sent",
        settings.mode,
        len(rows),
        parents,
        batches,
        batches,
        settings.min_batch,
        settings.max_batch,
        settings.max_parse_retries,
        recorded,
        api.max_requests,
    )


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
        if settings.mode != "replay":
            _log_round_plan(level, attempt, asker.plan(requests), settings, asker.api)
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
    if settings.mode != "replay":
        _log_run_plan(ordered, settings, api)
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
