"""Reading a model's concept answer: the paper's `[{'code': [concepts]}, ...]` format.

GPT-4 answers in JSON or in Python-literal style (single quotes, as the prompt itself
shows), sometimes inside a Markdown code fence or after a sentence of preamble. We accept
exactly those variations and nothing looser: an answer we cannot read is reported, never
guessed at.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Collection
from typing import Any

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)


class AnswerFormatError(ValueError):
    """The answer is not a readable list of {code: [concepts]}."""


def _candidate_payload(text: str) -> str:
    fenced = _FENCE.search(text)
    if fenced:
        return fenced.group(1).strip()
    start = min((i for i in (text.find("["), text.find("{")) if i >= 0), default=-1)
    if start < 0:
        raise AnswerFormatError("no list or object found in the answer")
    end = max(text.rfind("]"), text.rfind("}"))
    if end <= start:
        raise AnswerFormatError("the list in the answer is not closed")
    return text[start : end + 1]


def _load(payload: str) -> Any:
    try:
        return json.loads(payload)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(payload)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise AnswerFormatError(
            f"neither JSON nor a Python literal ({type(exc).__name__})"
        ) from None


def parse_concept_answer(text: str, expected: Collection[str]) -> dict[str, list[str]]:
    """Map each answered code to its concept phrases (stripped, de-duplicated, in order).

    Raises AnswerFormatError for an unreadable answer or for codes that were not asked.
    Codes the model left out are simply absent: the caller asks for them again.
    """
    data = _load(_candidate_payload(text))
    entries: list[tuple[Any, Any]] = []
    if isinstance(data, dict):
        entries = list(data.items())
    elif isinstance(data, list):
        for element in data:
            if not isinstance(element, dict):
                raise AnswerFormatError("the list holds something other than {code: [...]}")
            entries.extend(element.items())
    else:
        raise AnswerFormatError("the answer is neither a list nor an object")
    wanted = {str(c) for c in expected}
    out: dict[str, list[str]] = {}
    unknown: list[str] = []
    for key, value in entries:
        code = str(key).strip()
        if code not in wanted:
            unknown.append(code)
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise AnswerFormatError(f"the concepts of {code} are not a list of strings")
        phrases = [" ".join(v.split()) for v in value]
        merged = out.setdefault(code, [])
        for phrase in phrases:
            if phrase and phrase.lower() not in {m.lower() for m in merged}:
                merged.append(phrase)
    if unknown:
        raise AnswerFormatError(f"answers for codes that were not asked: {', '.join(unknown)}")
    return {code: phrases for code, phrases in out.items() if phrases}


def empty_codes(text: str, expected: Collection[str]) -> list[str]:
    """Codes the answer lists with an empty concept list (for error messages)."""
    try:
        data = _load(_candidate_payload(text))
    except AnswerFormatError:
        return []
    items = (
        data.items()
        if isinstance(data, dict)
        else (kv for d in data if isinstance(d, dict) for kv in d.items())
        if isinstance(data, list)
        else []
    )
    return [str(k) for k, v in items if str(k) in set(expected) and v == []]
