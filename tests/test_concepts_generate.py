"""Concept generation through the real `openai` client against a local HTTP server."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest

from cec.concepts.client import ApiSettings, SpendingCapError
from cec.concepts.generate import (
    ConceptGenerationError,
    GenerationSettings,
    ReplayMissError,
    generate_concepts,
)
from cec.concepts.guard import NoteShingleGuard, PrivacyGuardError
from cec.concepts.prompts import CodeRow
from cec.plumbing.errors import InputError
from tests.openai_server import Action, FakeOpenAI, answer, hang, status

ROWS = [
    CodeRow("584.9", "Acute kidney failure, unspecified", "584", "Acute kidney failure"),
    CodeRow("585.9", "Chronic kidney disease, unspecified", "585", "Chronic kidney disease (ckd)"),
    CodeRow(
        "96.71",
        "Continuous invasive mechanical ventilation for less than 96 consecutive hours",
        "96",
        "Nonoperative intubation and irrigation",
    ),
    CodeRow(
        "96.72",
        "Continuous invasive mechanical ventilation for 96 consecutive hours or more",
        "96",
        "Nonoperative intubation and irrigation",
    ),
    CodeRow(
        "96.04", "Insertion of endotracheal tube", "96", "Nonoperative intubation and irrigation"
    ),
    CodeRow("428.0", "Congestive heart failure, unspecified", "428", "Heart failure"),
    CodeRow("427.31", "Atrial fibrillation", "427", "Cardiac dysrhythmias"),
    CodeRow("V45.81", "Aortocoronary bypass status", "V45", "Other postprocedural states"),
]
PARENTS = sorted({r.parent for r in ROWS})


def _asked(body: dict[str, Any]) -> tuple[str, list[str]]:
    prompt = body["messages"][0]["content"]
    level = "parent" if "relevant to the parents" in prompt else "leaf"
    pattern = r"'parent_code' : \('([^']+)'" if level == "parent" else r"'leaf_code' : \('([^']+)'"
    return level, list(dict.fromkeys(re.findall(pattern, prompt)))


def gpt4_style(body: dict[str, Any], skip: set[str] = frozenset(), fence: bool = False) -> Action:
    level, codes = _asked(body)
    items = [{c: [f"{level} concept {i} of {c}" for i in (1, 2)]} for c in codes if c not in skip]
    text = repr(items)
    if fence:
        text = f"Here are the concepts:\n```python\n{text}\n```"
    return answer(text)


def _settings(tmp_path: Path, mode: str = "record", **kw: Any) -> GenerationSettings:
    return GenerationSettings(mode=mode, recordings=tmp_path / "rec.jsonl", **kw)


def _api(server: FakeOpenAI, **kw: Any) -> ApiSettings:
    defaults = dict(
        model="gpt-4-test",
        base_url=server.base_url,
        timeout_s=1.0,
        backoff_s=0.01,
        max_backoff_s=0.05,
        max_retries=3,
        max_concurrent=2,
    )
    defaults.update(kw)
    return ApiSettings(**defaults)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")


def test_record_then_replay_never_pays_twice(tmp_path: Path) -> None:
    with FakeOpenAI(default=gpt4_style) as server:
        result = generate_concepts(ROWS, _settings(tmp_path), _api(server))
        first = len(server.requests)
        assert first == 4  # 8 codes -> 2 batches per level
        assert set(result.parent) == set(PARENTS)
        assert set(result.leaf) == {r.code for r in ROWS}
        assert result.leaf["96.72"] == ["leaf concept 1 of 96.72", "leaf concept 2 of 96.72"]
        assert result.api_requests == 4 and result.api_tokens == 600
        again = generate_concepts(ROWS, _settings(tmp_path), _api(server))
        assert len(server.requests) == first  # all answers came from the recordings
        assert again.leaf == result.leaf
        # the leaf prompts carry the parent concepts already found (Fig. 7)
        leaf_prompts = [
            b["messages"][0]["content"]
            for b in server.requests
            if "relevant to the parents" not in b["messages"][0]["content"]
        ]
        assert "'parent_concepts' : ['parent concept 1 of 96'" in "".join(leaf_prompts)
    # replay needs no server and no key
    replay = generate_concepts(
        ROWS,
        _settings(tmp_path, "replay"),
        ApiSettings(model="gpt-4-test", api_key_env="NO_SUCH_KEY"),
    )
    assert replay.leaf == result.leaf and replay.api_requests == 0


def test_refresh_asks_again(tmp_path: Path) -> None:
    with FakeOpenAI(default=gpt4_style) as server:
        generate_concepts(ROWS, _settings(tmp_path), _api(server))
        generate_concepts(ROWS, _settings(tmp_path, "refresh"), _api(server))
        assert len(server.requests) == 8
    lines = (tmp_path / "rec.jsonl").read_text().splitlines()
    assert len(lines) == 8  # append-only: the refreshed answers are added, nothing rewritten


@pytest.mark.parametrize(
    "failure",
    [status(429, retry_after="0"), status(500), status(503), hang(60.0)],
    ids=["429", "500", "503", "timeout"],
)
def test_transient_failures_are_retried(tmp_path: Path, failure: Action) -> None:
    with FakeOpenAI(default=gpt4_style) as server:
        server.script.append(failure)
        result = generate_concepts(ROWS, _settings(tmp_path), _api(server, max_concurrent=1))
        assert len(server.requests) == 5  # the failed attempt, then 4 good ones
        assert set(result.leaf) == {r.code for r in ROWS}
        if failure.kind == "hang":
            # the client gave up at its 1 s timeout: the hung request (60 s) is still being
            # served when every code has its answer (no wall-clock limit in the test)
            assert server.in_flight == 1


def test_persistent_failure_stops_with_a_clear_error(tmp_path: Path) -> None:
    from cec.concepts.client import ApiError

    with FakeOpenAI(default=lambda body: status(500)) as server:
        with pytest.raises(ApiError, match="failed 3 times.*HTTP 500"):
            generate_concepts(ROWS, _settings(tmp_path), _api(server, max_retries=2))


def test_answers_in_code_fences_are_read(tmp_path: Path) -> None:
    with FakeOpenAI(default=lambda b: gpt4_style(b, fence=True)) as server:
        result = generate_concepts(ROWS, _settings(tmp_path), _api(server))
    assert result.parent["96"][0] == "parent concept 1 of 96"


def test_malformed_json_is_asked_again(tmp_path: Path) -> None:
    with FakeOpenAI(default=gpt4_style) as server:
        server.script.append(answer("[{'584': ['Rising creatinine', 'Oliguria'"))  # cut off
        result = generate_concepts(ROWS, _settings(tmp_path), _api(server, max_concurrent=1))
        assert len(server.requests) == 5
    assert set(result.parent) == set(PARENTS)
    meta = [json.loads(line)["meta"] for line in (tmp_path / "rec.jsonl").read_text().splitlines()]
    assert meta[0]["parsed_ok"] is False and "not closed" in meta[0]["error"]
    # a replay follows the same path, offline, from the recordings
    replay = generate_concepts(ROWS, _settings(tmp_path, "replay"), ApiSettings(model="gpt-4-test"))
    assert replay.parent == result.parent


def test_a_code_never_answered_stops_the_run_naming_it(tmp_path: Path) -> None:
    with FakeOpenAI(default=lambda b: gpt4_style(b, skip={"96.72"})) as server:
        with pytest.raises(ConceptGenerationError) as err:
            generate_concepts(ROWS, _settings(tmp_path, max_parse_retries=2), _api(server))
    assert "leaf-level" in str(err.value) and "96.72" in str(err.value)
    assert "584.9" not in str(err.value)


def test_spending_cap_stops_with_a_clear_message(tmp_path: Path) -> None:
    with FakeOpenAI(default=gpt4_style) as server:
        with pytest.raises(SpendingCapError, match="max_requests = 3"):
            generate_concepts(ROWS, _settings(tmp_path), _api(server, max_requests=3))
        assert len(server.requests) == 3
    with FakeOpenAI(default=gpt4_style) as server:
        with pytest.raises(SpendingCapError, match="max_tokens = 200"):
            generate_concepts(
                ROWS, _settings(tmp_path / "t"), _api(server, max_tokens=200, max_concurrent=1)
            )


def test_concurrency_is_capped(tmp_path: Path) -> None:
    def slow(body: dict[str, Any]) -> Action:
        time.sleep(0.3)
        return gpt4_style(body)

    rows = ROWS * 1  # 2 batches per level; make more batches with more codes
    more = [
        CodeRow(f"V45.{i:02d}", f"title {i}", "V45", "Other postprocedural states")
        for i in range(10, 30)
    ]
    with FakeOpenAI(default=slow) as server:
        generate_concepts(rows + more, _settings(tmp_path), _api(server, max_concurrent=2))
        assert server.peak_in_flight == 2


def test_replay_miss_names_the_codes(tmp_path: Path) -> None:
    with pytest.raises(ReplayMissError) as err:
        generate_concepts(ROWS, _settings(tmp_path, "replay"), ApiSettings(model="gpt-4-test"))
    message = str(err.value)
    assert "parent-level" in message and "584.9" in message and "V45.81" in message
    assert "concepts.mode: record" in message


def test_privacy_guard_refuses_a_request_carrying_note_text(tmp_path: Path) -> None:
    note = (
        "Pt is a 67 yo man admitted with dyspnea; creatinine peaked at 3.4 from a "
        "baseline of 0.9 and improved with IV fluids over three days."
    )
    guard = NoteShingleGuard.from_texts([note])
    leaky = [
        *ROWS[:-1],
        CodeRow(
            "V45.81",
            "creatinine peaked at 3.4 from a baseline of 0.9 and improved",
            "V45",
            "Other postprocedural states",
        ),
    ]
    with FakeOpenAI(default=gpt4_style) as server:
        with pytest.raises(PrivacyGuardError) as err:
            generate_concepts(leaky, _settings(tmp_path), _api(server), guard=guard)
        assert server.requests == []  # refused before anything was sent
        assert "creatinine" not in str(err.value)  # the refusal never quotes the note
        # public ICD text passes the same guard
        generate_concepts(ROWS, _settings(tmp_path), _api(server), guard=guard)
        assert len(server.requests) == 4


# --- bad recordings and templates ---


def _record(tmp_path: Path) -> Path:
    with FakeOpenAI(default=gpt4_style) as server:
        generate_concepts(ROWS, _settings(tmp_path), _api(server))
    return tmp_path / "rec.jsonl"


def _line_with(path: Path, text: str) -> int:
    """1-based line of the recording whose answer contains `text` (threads set the order)."""
    lines = path.read_text().splitlines()
    return next(i for i, x in enumerate(lines, 1) if text in json.loads(x)["response"]["content"])


def _rewrite(path: Path, edit) -> None:  # noqa: ANN001
    from cec.concepts.store import request_key

    lines = [json.loads(x) for x in path.read_text().splitlines()]
    edit(lines)
    for obj in lines:
        obj["key"] = request_key(obj["request"])
    path.write_text("".join(json.dumps(o) + "\n" for o in lines))


def test_recording_cut_mid_line(tmp_path: Path) -> None:
    path = _record(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    with pytest.raises(InputError) as err:
        generate_concepts(ROWS, _settings(tmp_path, "replay"), ApiSettings(model="gpt-4-test"))
    assert err.value.row == 4 and "cut mid-record" in str(err.value)


def test_unknown_code_in_recordings(tmp_path: Path) -> None:
    path = _record(tmp_path)

    target = _line_with(path, "{'584': [")

    def edit(lines):
        content = lines[target - 1]["response"]["content"]
        lines[target - 1]["response"]["content"] = content.replace("'584'", "'999'")

    _rewrite(path, edit)
    with pytest.raises(InputError) as err:
        generate_concepts(ROWS, _settings(tmp_path, "replay"), ApiSettings(model="gpt-4-test"))
    assert err.value.row == target and "not asked: 999" in str(err.value)


def test_empty_concept_list_in_recordings(tmp_path: Path) -> None:
    path = _record(tmp_path)

    target = _line_with(path, "{'584.9': [")

    def edit(lines):
        content = lines[target - 1]["response"]["content"]
        lines[target - 1]["response"]["content"] = re.sub(
            r"\{'584\.9': \[[^\]]*\]\}", "{'584.9': []}", content
        )

    _rewrite(path, edit)
    with pytest.raises(InputError) as err:
        generate_concepts(ROWS, _settings(tmp_path, "replay"), ApiSettings(model="gpt-4-test"))
    assert err.value.row == target and "empty concept list for 584.9" in str(err.value)


def test_hand_edited_request_is_refused(tmp_path: Path) -> None:
    path = _record(tmp_path)
    lines = path.read_text().splitlines()
    obj = json.loads(lines[1])
    obj["request"]["body"]["temperature"] = 0.7
    lines[1] = json.dumps(obj)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        generate_concepts(ROWS, _settings(tmp_path, "replay"), ApiSettings(model="gpt-4-test"))
    assert err.value.row == 2 and err.value.field == "key"


def test_template_missing_a_variable(tmp_path: Path) -> None:
    template = tmp_path / "parent_bad.jinja2"
    template.write_text("Codes: {% for i in items %}{{ i.leaf_code }} {% endfor %}{{ batch_id }}\n")
    settings = _settings(
        tmp_path, "replay", templates={"parent": str(template), "leaf": "concepts_leaf_v1.jinja2"}
    )
    with pytest.raises(InputError) as err:
        generate_concepts(ROWS, settings, ApiSettings(model="gpt-4-test"))
    assert "parent_bad.jinja2" in str(err.value) and "batch_id" in str(err.value)


def test_guard_lets_icd10_titles_pass_but_not_the_rest_of_a_mimic4_note() -> None:
    """A MIMIC-IV note quoting an ICD-10-PCS and an ICD-10-CM title: the quoted titles are
    public text (the prompts show them), the note's own words are not."""
    pcs = "Insertion of Infusion Device into Superior Vena Cava, Percutaneous Approach"
    cm = "Type 2 diabetes mellitus with diabetic chronic kidney disease"
    note = (
        f"Procedures: {pcs}. Diagnoses: {cm}. Right IJ line placed at the bedside by the "
        "night resident after two failed attempts on the left side."
    )
    guard = NoteShingleGuard.from_texts([note])
    assert not guard.shares_run(pcs) and not guard.shares_run(cm)
    assert guard.shares_run("placed at the bedside by the night resident after two")


# --- the plan lines of a record run, and a rerun after a failure ---

PLAN_ROWS = [
    CodeRow(f"V45.{i:02d}", f"Postprocedural state number {i}", f"V4{i % 3}", f"Group {i % 3}")
    for i in range(10, 30)
]  # 20 codes -> 3 batches (7, 7, 6) per level


class _FailsAfter:
    """Answers like GPT-4 until `n` answers are given, then refuses every request with a
    401 (not retried: the run stops at once). Counts the answers per prompt."""

    def __init__(self, n: int | None) -> None:
        self.n = n
        self.answered: list[str] = []

    def __call__(self, body: dict[str, Any]) -> Action:
        if self.n is not None and len(self.answered) >= self.n:
            return status(401)
        self.answered.append(body["messages"][0]["content"])
        return gpt4_style(body)


def _plan_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The run's plan line and each round's plan line, in order."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "cec.concepts.generate"
        and ("concepts, attempt" in r.getMessage() or "generation plan" in r.getMessage())
    ]


def test_rerun_after_a_failure_sends_no_prompt_twice_and_logs_its_plan(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from cec.concepts.client import ApiError

    caplog.set_level(logging.INFO, logger="cec.concepts.generate")
    failing = _FailsAfter(4)  # 3 parent answers, 1 leaf answer, then 401
    with FakeOpenAI(default=failing) as server:
        with pytest.raises(ApiError, match="HTTP 401"):
            generate_concepts(PLAN_ROWS, _settings(tmp_path), _api(server, max_concurrent=1))
        refused = [b["messages"][0]["content"] for b in server.requests[4:]]
    assert len(refused) == 1  # the run stopped at the first refusal
    first = _plan_lines(caplog)
    assert "20 codes under 3 parents -> 3 parent-level and 3 leaf-level requests" in first[0]
    assert "parent-level concepts, attempt 1 of 3: 3 requests, 0 already recorded" in first[1]
    assert "3 to send" in first[1] and "leaf-level" in first[2] and "0 already recorded" in first[2]
    caplog.clear()

    working = _FailsAfter(None)
    with FakeOpenAI(default=working) as server:
        result = generate_concepts(PLAN_ROWS, _settings(tmp_path), _api(server, max_concurrent=1))
        sent = [b["messages"][0]["content"] for b in server.requests]
    assert set(result.leaf) == {r.code for r in PLAN_ROWS}
    # the rerun sent only the two leaf prompts never answered, the refused one among them
    answered = failing.answered + working.answered
    assert len(sent) == 2 and refused[0] in sent
    assert len(answered) == len(set(answered)) == 6  # 3 + 3 distinct prompts, each paid once
    lines = _plan_lines(caplog)
    assert "parent-level concepts, attempt 1 of 3: 3 requests, 3 already recorded" in lines[1]
    assert "0 to send, about 0 prompt tokens" in lines[1]
    tokens = -(-sum(len(p) for p in sent) // 4)
    assert (
        f"leaf-level concepts, attempt 1 of 3: 3 requests, 1 already recorded (replayed, not "
        f"paid), 2 to send, about {tokens} prompt tokens to send (characters / 4)" in lines[2]
    )
    assert "max_tokens = 500000 tokens" in lines[2]


def test_replay_logs_no_plan(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _record(tmp_path)
    caplog.clear()  # the recording run's own plan (logged where INFO is already on)
    caplog.set_level(logging.INFO, logger="cec.concepts.generate")
    generate_concepts(ROWS, _settings(tmp_path, "replay"), ApiSettings(model="gpt-4-test"))
    assert _plan_lines(caplog) == []  # nothing is sent, so nothing is planned


def test_refresh_plans_to_send_what_is_recorded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Refresh pays again for recorded prompts: its plan must not count them as replayed."""
    _record(tmp_path)
    caplog.clear()  # the recording run's own plan (logged where INFO is already on)
    caplog.set_level(logging.INFO, logger="cec.concepts.generate")
    with FakeOpenAI(default=gpt4_style) as server:
        generate_concepts(ROWS, _settings(tmp_path, "refresh"), _api(server))
        assert len(server.requests) == 4
    lines = _plan_lines(caplog)
    assert "refresh mode sends every prompt again" in lines[0]
    assert "2 requests, 0 already recorded (replayed, not paid), 2 to send" in lines[1]
    assert "2 requests, 0 already recorded (replayed, not paid), 2 to send" in lines[2]
