"""An offline, deterministic model: the same request always gets the same answer.

It reads the prompt the way a careful summariser would, without any network: a plain request
gets an extractive summary (the leading sentences of the longest paragraph), a JSON request gets
the capitalised names found in the prompt. Token counts follow a fixed rule (4 characters per
token), so cost figures in tests and demos are exact and reproducible.
"""

from __future__ import annotations

import json
import re
from collections import Counter

from sutram.models import ModelRequest, ModelResponse, Usage

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_NAME = re.compile(r"\b([A-Z][a-z]+(?: [A-Z][a-z]+)*)\b")
_COMMON = {
    "The",
    "A",
    "An",
    "This",
    "That",
    "In",
    "On",
    "It",
    "We",
    "Our",
    "Summarise",
    "Extract",
    "Return",
    "List",
    "Text",
    "Document",
    "For",
    "And",
    "Of",
    "To",
}


def _tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def _summary(prompt: str, max_tokens: int) -> str:
    body = max(prompt.split("\n\n"), key=len).strip()
    sentences = [s.strip() for s in _SENTENCE.split(body) if s.strip()]
    summary = " ".join(sentences[:2])
    return summary[: max_tokens * 4]


def _entities(prompt: str) -> str:
    names: Counter[str] = Counter()
    for match in _NAME.finditer(prompt):
        name = match.group(1)
        before = prompt[: match.start()].rstrip(" \t")
        sentence_start = not before or before[-1] in '.!?:#\n"'
        # A lone capitalised word opening a sentence is usually not a name.
        if name.split()[0] in _COMMON or (sentence_start and " " not in name):
            continue
        names[name] += 1
    ranked = [{"name": name, "mentions": count} for name, count in names.most_common(10)]
    return json.dumps({"entities": ranked})


class ScriptedModel:
    name = "scripted"

    def complete(self, request: ModelRequest) -> ModelResponse:
        text = _entities(request.prompt) if request.json_output else _summary(request.prompt, request.max_tokens)
        prompt_text = (request.system or "") + request.prompt
        return ModelResponse(
            text=text,
            model_id=request.model_id,
            usage=Usage(input_tokens=_tokens(prompt_text), output_tokens=_tokens(text)),
            stop_reason="end_turn",
        )
