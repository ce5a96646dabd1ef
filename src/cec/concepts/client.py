"""The chat-completion client: the official `openai` SDK, with our own retry and budget.

The SDK's built-in retries are switched off so that every attempt passes through one
place: the concurrency cap, the spending cap (requests and tokens per run) and the log.
Back-off is exponential with jitter and honours a server's Retry-After.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger(__name__)


class SpendingCapError(RuntimeError):
    """The run reached its request or token cap."""


class ApiError(RuntimeError):
    """The API kept failing after all retries."""


@dataclass(frozen=True)
class ApiSettings:
    """Where and how to ask; every field comes from the config (`concepts.api`)."""

    provider: Literal["openai", "azure"] = "openai"
    model: str = "gpt-4-0613"
    temperature: float = 0.0
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    azure_endpoint: str | None = None
    api_version: str | None = None
    timeout_s: float = 120.0
    max_retries: int = 5
    backoff_s: float = 2.0
    max_backoff_s: float = 60.0
    max_concurrent: int = 4
    max_requests: int = 200
    max_tokens: int = 500_000

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> ApiSettings:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(f"unknown concepts.api setting(s): {', '.join(unknown)}")
        return cls(**dict(cfg))

    def request_body(self, prompt: str) -> dict[str, Any]:
        """What determines the answer, hence what the recording key hashes."""
        return {
            "model": self.model,
            "temperature": self.temperature,
            "messages": [{"role": "user", "content": prompt}],
        }


class SpendingTracker:
    """Counts requests and tokens of one run; refuses to start a request past a cap."""

    def __init__(self, max_requests: int, max_tokens: int) -> None:
        self.max_requests = max_requests
        self.max_tokens = max_tokens
        self.requests = 0
        self.tokens = 0
        self._lock = threading.Lock()

    def reserve(self) -> None:
        with self._lock:
            if self.requests >= self.max_requests:
                raise SpendingCapError(
                    f"spending cap reached: {self.requests} requests sent, cap "
                    f"concepts.api.max_requests = {self.max_requests}; raise it to continue "
                    "(recorded answers are kept and not paid again)"
                )
            if self.tokens >= self.max_tokens:
                raise SpendingCapError(
                    f"spending cap reached: {self.tokens} tokens used, cap "
                    f"concepts.api.max_tokens = {self.max_tokens}; raise it to continue "
                    "(recorded answers are kept and not paid again)"
                )
            self.requests += 1

    def add_tokens(self, n: int) -> None:
        with self._lock:
            self.tokens += n


class ChatClient:
    """Sends one prompt, returns the answer text and usage; thread-safe."""

    def __init__(self, settings: ApiSettings, *, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.spending = SpendingTracker(settings.max_requests, settings.max_tokens)
        self._slots = threading.BoundedSemaphore(max(1, settings.max_concurrent))
        self._rng = rng or random.Random(0)
        self._client = self._make_client()

    def _make_client(self) -> Any:
        import openai

        s = self.settings
        key = os.environ.get(s.api_key_env)
        if not key:
            raise ApiError(
                f"environment variable {s.api_key_env} (concepts.api.api_key_env) is not set; "
                "it must hold the API key (or use concepts.mode: replay to work offline)"
            )
        if s.provider == "azure":
            if not s.azure_endpoint or not s.api_version:
                raise ApiError("provider azure needs concepts.api.azure_endpoint and api_version")
            return openai.AzureOpenAI(
                azure_endpoint=s.azure_endpoint,
                api_version=s.api_version,
                api_key=key,
                timeout=s.timeout_s,
                max_retries=0,
            )
        return openai.OpenAI(base_url=s.base_url, api_key=key, timeout=s.timeout_s, max_retries=0)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self.settings.max_backoff_s, retry_after)
        base = self.settings.backoff_s * (2**attempt)
        return min(self.settings.max_backoff_s, base * (0.5 + self._rng.random()))

    def complete(self, body: dict[str, Any], what: str) -> dict[str, Any]:
        """POST one chat completion; retries 429, 5xx, timeouts and dropped connections."""
        import openai

        last: Exception | None = None
        for attempt in range(self.settings.max_retries + 1):
            self.spending.reserve()
            with self._slots:
                try:
                    resp = self._client.chat.completions.create(**body)
                except openai.RateLimitError as exc:
                    last = exc
                    retry_after = _retry_after(exc)
                except openai.InternalServerError as exc:
                    last, retry_after = exc, None
                except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                    last, retry_after = exc, None
                else:
                    usage = resp.usage
                    total = int(getattr(usage, "total_tokens", 0) or 0)
                    self.spending.add_tokens(total)
                    choice = resp.choices[0]
                    return {
                        "content": choice.message.content or "",
                        "finish_reason": choice.finish_reason,
                        "model": resp.model,
                        "usage": {
                            "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
                            "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
                            "total_tokens": total,
                        },
                    }
            if attempt == self.settings.max_retries:
                break
            delay = self._delay(attempt, retry_after)
            log.warning(
                "%s: %s; retry %d/%d in %.1f s",
                what,
                _describe(last),
                attempt + 1,
                self.settings.max_retries,
                delay,
            )
            time.sleep(delay)
        raise ApiError(
            f"{what}: the API failed {self.settings.max_retries + 1} times "
            f"(last: {_describe(last)})"
        )


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _describe(exc: Exception | None) -> str:
    if exc is None:
        return "unknown error"
    status = getattr(exc, "status_code", None)
    return f"{type(exc).__name__}" + (f" (HTTP {status})" if status else "")
