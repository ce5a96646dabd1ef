"""The chat-completion client: the official `openai` SDK, with our own retry and budget.

The SDK's built-in retries are switched off so that every attempt passes through one
place: the concurrency cap, the spending cap (requests and tokens per run) and the log.
Back-off is exponential with jitter and honours a server's Retry-After.

A failure the run cannot get past (a refused key, an unknown model, a server that keeps
failing, an answer that is not a chat completion) ends as one `ApiError` line naming the
HTTP status or the kind of failure and what to check. The response body is never copied
into a message or a log line (a server may echo the key, or the prompt, back), and any
text equal to the API key is replaced by `[API key]` in what this client logs.
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

from cec.plumbing.errors import InputError

log = logging.getLogger(__name__)
REDACTED = "[API key]"


class SpendingCapError(InputError, RuntimeError):
    """The run reached its request or token cap (the config's to raise: one line, no
    traceback)."""


class ApiError(InputError, RuntimeError):
    """The API refused or kept failing: one line with the status or kind of failure and
    what to check, for the CLI and a job's log alike (an InputError: the key, the URL and
    the model are the user's settings)."""


class _KeyRedactor(logging.Filter):
    """Replaces the API key in every record of the loggers it sits on (this client's, the
    SDK's and its HTTP library's), whatever a server or a library put into a message."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            text = record.getMessage()
            clean = redact(text, self.secrets)
            if clean != text:
                record.msg, record.args = clean, None
        return True


_REDACTOR = _KeyRedactor()
_REDACTED_LOGGERS = (
    __name__,
    "cec.concepts.generate",
    "openai",
    "openai._base_client",
    "openai._response",
    "httpx",
    "httpx2",
    "httpcore",
    "httpcore2",
)


def redact(text: str, secrets: set[str] | frozenset[str]) -> str:
    """`text` with every secret replaced by REDACTED (secrets shorter than 8 characters
    are left alone: they would blank ordinary words, and no real key is that short)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 8:
            text = text.replace(secret, REDACTED)
    return text


def _guard_logs(key: str) -> None:
    """From now on, no log record of the concept client or the SDK shows `key`."""
    _REDACTOR.secrets.add(key)
    for name in _REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)


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
        self._secrets: frozenset[str] = frozenset()
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
        self._secrets = frozenset({key, key.strip()})
        _guard_logs(key)
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
        """POST one chat completion; retries 429, 5xx, timeouts and dropped connections.
        Anything else (401, 403, 404, 400, an answer that is not a chat completion) stops
        at once: asking again would fail the same way and pay for it."""
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
                except openai.APIStatusError as exc:
                    raise self._error(what, exc, attempts=attempt + 1) from None
                except (openai.APIResponseValidationError, ValueError) as exc:
                    raise self._error(what, exc, attempts=attempt + 1) from None
                else:
                    return self._answer(resp, what)
            if attempt == self.settings.max_retries:
                break
            delay = self._delay(attempt, retry_after)
            log.warning(
                "%s: %s; retry %d/%d in %.1f s",
                what,
                self._redact(_describe(last)),
                attempt + 1,
                self.settings.max_retries,
                delay,
            )
            time.sleep(delay)
        raise self._error(what, last, attempts=self.settings.max_retries + 1)

    def _answer(self, resp: Any, what: str) -> dict[str, Any]:
        """The parts of a chat completion a recording keeps; a body without them (a proxy's
        page, another API) is an ApiError, not an IndexError."""
        choices = getattr(resp, "choices", None)
        message = getattr(choices[0], "message", None) if choices else None
        if message is None:
            kind = "a body that is not a chat completion (no choices)"
            raise self._error(what, None, attempts=1, kind=kind)
        usage = resp.usage
        total = int(getattr(usage, "total_tokens", 0) or 0)
        self.spending.add_tokens(total)
        return {
            "content": message.content or "",
            "finish_reason": choices[0].finish_reason,
            "model": resp.model,
            "usage": {
                "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
                "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
                "total_tokens": total,
            },
        }

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def _error(
        self, what: str, exc: Exception | None, attempts: int, kind: str | None = None
    ) -> ApiError:
        """One line: what was asked, the status or kind of failure, what to check. Built
        from the status and the settings only, never from the response body."""
        s = self.settings
        where = s.azure_endpoint if s.provider == "azure" else (s.base_url or "api.openai.com")
        kind = kind or _describe(exc)
        times = f" {attempts} times, the last" if attempts > 1 else ""
        failure = f"failed{times} with {kind}"
        advice = _advice(exc, s, where)
        return ApiError(self._redact(f"{what}: the concept API at {where} {failure}; {advice}"))


def _advice(exc: Exception | None, s: ApiSettings, where: str | None) -> str:
    """What to check for a failure, in the config's terms."""
    status = getattr(exc, "status_code", None)
    key = f"check that {s.api_key_env} holds a valid API key for {where}"
    if status == 401:
        return key
    if status == 403:
        return f"{key}, with access to model {s.model}"
    if status == 404:
        return (
            f"check concepts.api.base_url ({where}) and concepts.api.model ({s.model}); "
            "the URL must end before /chat/completions (e.g. https://api.openai.com/v1)"
        )
    if status == 429:
        return (
            "the rate or quota limit of the key was hit: wait, lower concepts.api."
            "max_concurrent, or check the account's quota; recorded answers are kept"
        )
    if isinstance(status, int) and status >= 500:
        return "the server is failing: try again later; recorded answers are kept"
    if isinstance(status, int):
        return f"the request was refused: check concepts.api.model ({s.model}) and base_url"
    if _is(exc, "APITimeoutError"):
        return f"the server did not answer within concepts.api.timeout_s = {s.timeout_s} s"
    if _is(exc, "APIConnectionError"):
        return f"check concepts.api.base_url ({where}) and the network"
    return f"check concepts.api.base_url ({where}): it must be an OpenAI-compatible API"


def _is(exc: Exception | None, name: str) -> bool:
    return exc is not None and any(c.__name__ == name for c in type(exc).__mro__)


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


_STATUS_NAMES = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    408: "request timeout",
    409: "conflict",
    422: "unprocessable request",
    429: "too many requests",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}


def _describe(exc: Exception | None) -> str:
    """The status or kind of a failure in a few words: never the exception's own text,
    which for an HTTP error holds the response body."""
    if exc is None:
        return "an unknown error"
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return f"HTTP {status} ({_STATUS_NAMES.get(status, 'error')})"
    if _is(exc, "APITimeoutError"):
        return "no answer in time (timeout)"
    if _is(exc, "APIConnectionError"):
        return "no connection (refused, reset or unreachable)"
    if _is(exc, "APIResponseValidationError") or isinstance(exc, ValueError):
        return "a body that is not a chat completion (invalid JSON or schema)"
    return type(exc).__name__
