"""Append-only record of every concept request and its response, keyed by a request hash.

A published concept set must be reproducible offline and a rerun must never pay twice.
Each line holds one exchange; lines are only ever appended (flushed and fsynced), so a
crash can at worst cut the last line, which the loader reports instead of silently
dropping.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cec.plumbing.errors import InputError


def request_key(request: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of what determines the answer (model, params, prompt)."""
    canonical = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Recording:
    """One stored exchange and where it lies, for error messages."""

    key: str
    request: dict[str, Any]
    response: dict[str, Any]
    meta: dict[str, Any]
    line: int

    @property
    def content(self) -> str:
        return str(self.response.get("content", ""))


class RecordingStore:
    """Read all recordings of a file; append new ones. Thread-safe for appends."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._by_key: dict[str, Recording] = {}
        self._lock = threading.Lock()
        self._lines = 0
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            last = data.count(b"\n") + 1
            raise InputError(
                "the last line is cut mid-record (a write was interrupted); remove that "
                "line and rerun in record mode to ask for it again",
                file=self.path,
                row=last,
            )
        for number, raw in enumerate(data.decode("utf-8").splitlines(), start=1):
            self._lines = number
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"not valid JSON ({exc.msg})", file=self.path, row=number
                ) from None
            for field in ("key", "request", "response"):
                if field not in obj:
                    raise InputError(
                        f"recording has no '{field}'", file=self.path, row=number, field=field
                    )
            if request_key(obj["request"]) != obj["key"]:
                raise InputError(
                    "the key does not match the hash of the request (edited by hand?)",
                    file=self.path,
                    row=number,
                    field="key",
                )
            # refresh appends newer answers: the latest recording of a key wins
            self._by_key[obj["key"]] = Recording(
                obj["key"], obj["request"], obj["response"], obj.get("meta", {}), number
            )

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, key: str) -> Recording | None:
        return self._by_key.get(key)

    def append(
        self, request: dict[str, Any], response: dict[str, Any], meta: dict[str, Any]
    ) -> Recording:
        key = request_key(request)
        meta = {**meta, "recorded_at": datetime.now(UTC).isoformat(timespec="seconds")}
        line = json.dumps(
            {"key": key, "request": request, "response": response, "meta": meta},
            ensure_ascii=False,
            sort_keys=True,
        )
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            self._lines += 1
            rec = Recording(key, request, response, meta, self._lines)
            self._by_key[key] = rec
        return rec
