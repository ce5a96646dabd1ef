"""Concept-API failures end in one line that names the status and what to check, never the
response body, and never the API key, even from a server that echoes the key back.

The real `openai` client talks over HTTP to tests/openai_server.py, as in a record run.
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
from pathlib import Path
from typing import Any

import pytest

from cec.concepts.client import ApiError, ApiSettings
from cec.concepts.generate import GenerationSettings, generate_concepts
from cec.plumbing.errors import InputError
from cec.plumbing.logs import job_log
from tests.openai_server import Action, FakeOpenAI, hang, raw, status
from tests.test_concepts_generate import ROWS, gpt4_style

KEY = "sk-test-5ecret-Key-0123456789abcdef"
MARKER = "BODY-MARKER"  # in every error body the server sends: never in a message
ECHO = f"{MARKER}: Incorrect API key provided: {{key}}"


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def _settings(tmp_path: Path) -> GenerationSettings:
    return GenerationSettings(mode="record", recordings=tmp_path / "rec.jsonl")


def _api(base_url: str, **kw: Any) -> ApiSettings:
    defaults: dict[str, Any] = dict(
        model="gpt-4-test",
        base_url=base_url,
        timeout_s=0.5,
        backoff_s=0.01,
        max_backoff_s=0.02,
        max_retries=2,
        max_concurrent=1,
    )
    return ApiSettings(**(defaults | kw))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# (server action, words the message must hold, is it retried)
CASES: dict[str, tuple[Action, str, bool]] = {
    "401": (status(401, ECHO), "HTTP 401 (unauthorized)", False),
    "403": (status(403, ECHO), "HTTP 403 (forbidden)", False),
    "404": (status(404, ECHO), "HTTP 404 (not found)", False),
    "400": (status(400, ECHO), "HTTP 400 (bad request)", False),
    "429": (status(429, ECHO, retry_after="0"), "HTTP 429 (too many requests)", True),
    "500": (status(500, ECHO), "HTTP 500 (internal server error)", True),
    "timeout": (hang(3.0), "timeout", True),
    "invalid JSON": (raw(f"<html>{MARKER} {KEY}</html>".encode()), "not a chat completion", False),
    "no choices": (raw(json.dumps({"x": MARKER}).encode()), "not a chat completion", False),
}


def _assert_clean(text: str) -> None:
    assert KEY not in text
    assert MARKER not in text


@pytest.mark.parametrize("case", list(CASES))
def test_api_failure_is_one_line_naming_the_status_without_body_or_key(
    case: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    action, words, retried = CASES[case]
    caplog.set_level(logging.DEBUG)  # the SDK's own debug lines too
    with FakeOpenAI(default=lambda body: action) as server:
        with pytest.raises(ApiError) as err:
            generate_concepts(ROWS, _settings(tmp_path), _api(server.base_url))
        assert len(server.requests) == (3 if retried else 1)  # 1 + max_retries, or 1
    message = str(err.value)
    assert isinstance(err.value, InputError)  # the CLI and a job log: one line, exit 2
    assert "\n" not in message and words in message, message
    assert "parent-level prompt for" in message and "concept API at" in message
    _assert_clean(message)
    _assert_clean(caplog.text)
    captured = capsys.readouterr()
    _assert_clean(captured.out + captured.err)
    chained = err.value.__cause__ or (
        None if err.value.__suppress_context__ else err.value.__context__
    )
    assert chained is None  # a traceback would show the SDK's error, and with it the body
    assert not (tmp_path / "rec.jsonl").exists()  # nothing answered, nothing recorded


def test_advice_names_the_setting_to_check(tmp_path: Path) -> None:
    with FakeOpenAI(default=lambda body: status(401, ECHO)) as server:
        with pytest.raises(ApiError, match="check that OPENAI_API_KEY holds a valid API key"):
            generate_concepts(ROWS, _settings(tmp_path), _api(server.base_url))
    with FakeOpenAI(default=lambda body: status(404, ECHO)) as server:
        with pytest.raises(
            ApiError, match=r"check concepts\.api\.base_url .* concepts\.api\.model"
        ):
            generate_concepts(ROWS, _settings(tmp_path), _api(server.base_url))


def test_connection_refused_names_the_url_and_redacts_a_key_inside_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from cec.concepts.client import REDACTED

    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{_closed_port()}/{KEY}/v1"  # a key pasted into the URL
    with pytest.raises(ApiError) as err:
        generate_concepts(ROWS, _settings(tmp_path), _api(url))
    message = str(err.value)
    assert "failed 3 times" in message and "no connection" in message
    assert f"http://127.0.0.1:{url.split(':')[2].split('/')[0]}/{REDACTED}/v1" in message
    assert "\n" not in message
    assert KEY not in message and KEY not in caplog.text


def test_a_job_log_gets_one_line_and_no_key(tmp_path: Path) -> None:
    """Under Snakemake the job's log is what a user reads (and shares): one line, no
    traceback, no key, no body; the job exits with the user-error status."""
    log = tmp_path / "job.log"
    with FakeOpenAI(default=lambda body: status(401, ECHO)) as server:
        with pytest.raises(SystemExit) as stop:
            with job_log(log):
                generate_concepts(ROWS, _settings(tmp_path), _api(server.base_url))
    assert stop.value.code == 2
    text = log.read_text(encoding="utf-8")
    _assert_clean(text)
    assert "Traceback" not in text
    failed = [line for line in text.splitlines() if "job failed" in line]
    assert len(failed) == 1 and "HTTP 401 (unauthorized)" in failed[0]


def test_a_failure_mid_run_keeps_whole_recordings_and_a_rerun_pays_only_the_rest(
    tmp_path: Path,
) -> None:
    """Answers recorded before a 401 stay, each a whole line; the rerun asks only for
    what was never answered (the recordings are append-only and fsynced per answer)."""
    calls = itertools.count()

    def then_refused(body: dict[str, Any]) -> Action:
        return gpt4_style(body) if next(calls) < 2 else status(401, ECHO)

    with FakeOpenAI(default=then_refused) as server:
        with pytest.raises(ApiError, match="HTTP 401"):
            generate_concepts(ROWS, _settings(tmp_path), _api(server.base_url))
        assert len(server.requests) == 3  # the two parent batches, then the refusal
    data = (tmp_path / "rec.jsonl").read_bytes()
    assert data.endswith(b"\n")
    recorded = [json.loads(line) for line in data.decode("utf-8").splitlines()]
    assert len(recorded) == 2 and all(r["meta"]["level"] == "parent" for r in recorded)
    assert KEY.encode() not in data

    with FakeOpenAI(default=gpt4_style) as server:
        result = generate_concepts(ROWS, _settings(tmp_path), _api(server.base_url))
        asked = [b["messages"][0]["content"] for b in server.requests]
    assert len(asked) == 2  # the two leaf batches only
    assert not any("relevant to the parents" in prompt for prompt in asked)
    assert set(result.leaf) == {r.code for r in ROWS}


def test_redact_replaces_every_copy_of_the_key() -> None:
    from cec.concepts.client import REDACTED, redact

    text = f"key {KEY} and again {KEY}."
    assert redact(text, {KEY}) == f"key {REDACTED} and again {REDACTED}."
    assert redact("a short word", {"a"}) == "a short word"  # too short to be a key
