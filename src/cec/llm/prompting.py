"""Prompt token ids for yes/no questions that share a note prefix.

A prompt is `head + note + question lead` (shared by every question about the note) then
`slot + question tail` (the concept and the answer cue), tokenised in these parts and
concatenated, so the shared-prefix scorer, the naive scorer and the trainer all see
exactly the same ids: the equivalence test then checks arithmetic, not tokenizer
boundary effects. The constant lead of the question ("### Question: Is the note above
relevant with the concept '") is moved into the prefix: it halves the tokens each
question costs. The note part is cut to the backbone's note budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2

from cec.plumbing.errors import InputError

PROMPT_DIR = Path(str(files("cec") / "resources" / "prompts"))


def template_path(name: str, folder: Path | None = None) -> Path:
    """Resolve a template name in the shipped prompt folder (or an explicit path)."""
    candidate = Path(name)
    if candidate.is_file():
        return candidate
    path = (folder or PROMPT_DIR) / name
    if not path.is_file():
        raise InputError("prompt template not found", file=path)
    return path


def template_environment(folder: Path) -> jinja2.Environment:
    """The one jinja2 set-up of every prompt: a missing variable is an error, text is
    kept byte for byte (trailing newline, no escaping)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["pyrepr"] = repr
    return env


class AnswerTokenError(ValueError):
    """' yes' / ' no' are not single tokens after the answer cue for this tokenizer."""


def single_token_answers(
    tokenizer: Any, cue: str, answers: tuple[str, str], template: str
) -> tuple[int, int]:
    """The token ids of the two answers right after `cue`, each required to be exactly one
    token that extends the cue's tokenisation (scoring reads one logit per answer)."""

    def ids(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    base = ids(cue)
    out = []
    for answer in answers:
        full = ids(cue + answer)
        cont = full[len(base) :]
        if full[: len(base)] != base or len(cont) != 1:
            pieces = tokenizer.convert_ids_to_tokens(cont or full[-2:])
            raise AnswerTokenError(
                f"after the answer cue of {template}, {answer!r} is not one token "
                f"for this tokenizer (got {pieces}); scoring needs single-token answers"
            )
        out.append(cont[0])
    if out[0] == out[1]:
        raise AnswerTokenError(f"{answers[0]!r} and {answers[1]!r} map to the same token")
    return out[0], out[1]


@dataclass(frozen=True)
class QuestionTemplate:
    """A template with `head()` and `question(x)` macros (Figs. 3 and 4 of the paper)."""

    name: str
    head_text: str
    _module: Any

    @classmethod
    def load(cls, name: str) -> QuestionTemplate:
        path = template_path(name)
        env = template_environment(path.parent)
        try:
            module = env.get_template(path.name).module
            head = str(module.head())  # type: ignore[attr-defined]
        except (jinja2.UndefinedError, AttributeError) as exc:
            raise InputError(
                f"template must define head() and question() macros ({exc})", file=path
            ) from None
        return cls(name, head, module)

    def question(self, text: str) -> str:
        return str(self._module.question(text))

    def question_parts(self) -> tuple[str, str]:
        """The question's text before and after the slot: the part before is the same for
        every question, so it joins the shared prefix."""
        sentinel = "\u0000"
        rendered = self.question(sentinel)
        if rendered.count(sentinel) != 1:
            raise InputError(f"question() of {self.name} must use its argument exactly once")
        lead, trail = rendered.split(sentinel)
        return lead, trail


@dataclass(frozen=True)
class EncodedNote:
    """Token ids of head + (truncated) note, and whether the note was cut."""

    ids: list[int]
    truncated: bool
    note_tokens: int  # the whole note's length; the prompt holds at most the budget

    def share_lost(self, budget: int) -> float:
        """The share of the note's tokens that did not fit the budget."""
        return max(0, self.note_tokens - budget) / self.note_tokens if self.note_tokens else 0.0


@dataclass
class CutStats:
    """How much of a split's notes the model read: for the score and prediction summaries."""

    budget: int
    notes: int = 0
    cut: int = 0
    lost: float = 0.0

    def add(self, note: EncodedNote) -> None:
        self.notes += 1
        self.cut += note.truncated
        self.lost += note.share_lost(self.budget)

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "note_budget_tokens": self.budget,
            "notes_truncated": self.cut,
            "share_notes_truncated": round(self.cut / self.notes, 4) if self.notes else None,
            "mean_share_tokens_lost": round(self.lost / self.notes, 4) if self.notes else None,
        }


class PromptEncoder:
    """Tokenises prompts consistently for one tokenizer and checks its answer tokens."""

    def __init__(
        self,
        tokenizer: Any,
        template: QuestionTemplate,
        note_budget: int,
        answers: tuple[str, str] = (" yes", " no"),
    ) -> None:
        self.tokenizer = tokenizer
        self.template = template
        self.note_budget = note_budget
        bos = tokenizer.bos_token_id
        self._head = ([bos] if bos is not None else []) + self._ids(template.head_text)
        self._lead_text, self._trail_text = template.question_parts()
        self._lead = self._ids(self._lead_text)
        self.answer_ids = self._answer_ids(answers)

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _answer_ids(self, answers: tuple[str, str]) -> tuple[int, int]:
        return single_token_answers(
            self.tokenizer, "x" + self._trail_text, answers, self.template.name
        )

    def around_note(self, questions: Sequence[Sequence[int]]) -> int:
        """Tokens of the longest prompt around the note: head, lead, the longest question."""
        return len(self._head) + len(self._lead) + max((len(q) for q in questions), default=0)

    def note(self, text: str) -> EncodedNote:
        """head + note (cut to the budget) + the question's constant lead: the shared part."""
        ids = self._ids(text)
        cut = ids[: self.note_budget]
        return EncodedNote(self._head + cut + self._lead, len(ids) > self.note_budget, len(ids))

    def question(self, text: str) -> list[int]:
        """The part that differs per question: the slot text and the answer cue."""
        return self._ids(text + self._trail_text)
