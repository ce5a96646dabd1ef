"""Token ids for the label prompt (Fig. 4) and the direct-coding prompt, in shared parts.

A label prompt is `head + note + after_note` (the same for every code of a note), then the
concept lines, then the code's question, whose last line is the answer cue. Each part is
tokenised on its own and the ids concatenated, so the tree scorer, the full-prompt
reference and the trainer see the same ids. Concept lines and questions are cached: a
note asks 50 codes and the same ~340 concept lines over and over.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cec.llm.prompting import EncodedNote, single_token_answers, template_environment, template_path
from cec.plumbing.errors import InputError

LABEL_TEMPLATE = "label_question_v1.jinja2"
DIRECT_TEMPLATE = "direct_question_v1.jinja2"
MACROS = ("head", "after_note", "concept_line", "question")


@dataclass(frozen=True)
class LabelTemplate:
    """A template with head(), after_note(), concept_line(c, answer), question(title)."""

    name: str
    _module: Any

    @classmethod
    def load(cls, name: str) -> LabelTemplate:
        path = template_path(name)
        env = template_environment(path.parent)
        module = env.get_template(path.name).module
        missing = [m for m in MACROS if not hasattr(module, m)]
        if missing:
            raise InputError(f"template lacks the macros {missing}", file=path)
        return cls(name, module)

    def head(self) -> str:
        return str(self._module.head())

    def after_note(self) -> str:
        return str(self._module.after_note())

    def concept_line(self, concept: str, yes: bool) -> str:
        return str(self._module.concept_line(concept, "Yes" if yes else "No"))

    def question(self, title: str) -> str:
        return str(self._module.question(title))

    def render(self, note: str, lines: list[tuple[str, bool]], title: str) -> str:
        """The whole prompt as one text (for display and the figure test)."""
        body = "".join(self.concept_line(c, y) for c, y in lines)
        return self.head() + note + self.after_note() + body + self.question(title)


@dataclass
class LabelPromptEncoder:
    """Tokenises label prompts for one tokenizer; checks the answer tokens."""

    tokenizer: Any
    template: LabelTemplate
    note_budget: int
    answers: tuple[str, str] = ("Yes", "No")
    _lines: dict[tuple[str, bool], tuple[int, ...]] = field(default_factory=dict, repr=False)
    _questions: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        bos = self.tokenizer.bos_token_id
        self._head = ([bos] if bos is not None else []) + self._ids(self.template.head())
        self._after = self._ids(self.template.after_note())
        self.answer_ids = self._answer_ids()

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _answer_ids(self) -> tuple[int, int]:
        cue = self.template.question("x")
        return single_token_answers(self.tokenizer, cue, self.answers, self.template.name)

    def around_note(self, longest_tail: int) -> int:
        """Tokens of the longest prompt around the note, given its longest concept lines
        plus question (`longest_tail`): instruction head, the line after the note, tail."""
        return len(self._head) + len(self._after) + longest_tail

    def longest_tail(self, concepts: Iterable[str], titles: Iterable[str], lines: int) -> int:
        """An upper bound of `lines` concept lines (either answer) plus one question."""
        line = max((len(self.line(c, y)) for c in concepts for y in (True, False)), default=0)
        return lines * line + max((len(self.question(t)) for t in titles), default=0)

    def note_tokens(self, text: str) -> int:
        return len(self._ids(text))

    def note(self, text: str) -> EncodedNote:
        ids = self._ids(text)
        cut = ids[: self.note_budget]
        return EncodedNote(self._head + cut + self._after, len(ids) > self.note_budget, len(ids))

    def line(self, concept: str, yes: bool) -> tuple[int, ...]:
        key = (concept, yes)
        if key not in self._lines:
            self._lines[key] = tuple(self._ids(self.template.concept_line(concept, yes)))
        return self._lines[key]

    def question(self, title: str) -> tuple[int, ...]:
        if title not in self._questions:
            self._questions[title] = tuple(self._ids(self.template.question(title)))
        return self._questions[title]
