"""An offline, deterministic model: the same request always gets the same answer.

It reads the prompt the way a careful summariser would, without any network: a plain request
gets an extractive summary (the leading sentences of the longest paragraph), a JSON request gets
the capitalised names found in the prompt. Token counts follow a fixed rule (4 characters per
token), so cost figures in tests and demos are exact and reproducible.

Offered tools, it acts as a simple agent. With a `script` it takes the script's action for the
turn (the number of assistant messages so far): {"call": tool, "arguments": {...}}, a list of
those (parallel calls), or {"answer": text}. Without one, its first turn calls every tool whose
name shares a word with the prompt, taking arguments written in the prompt as `name: value`;
once it has results, or when no tool fits, it answers with a summary of the results.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from sutram.models import ModelRequest, ModelResponse, ToolCall, ToolSpec, Usage

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


def _act(request: ModelRequest) -> tuple[str, list[ToolCall]]:
    """The agent policy: this turn's text and tool calls."""
    turn = sum(message.role == "assistant" for message in request.messages)
    if request.script and turn < len(request.script):
        action = request.script[turn]
        if isinstance(action, dict) and "answer" in action:
            return str(action["answer"]), []
        calls = action if isinstance(action, list) else [action]
        return "", [_call(turn, i, c["call"], c.get("arguments", {})) for i, c in enumerate(calls)]
    results = [r for m in request.messages for r in m.tool_results]
    if turn == 0 and not request.script:
        words = set(re.findall(r"[a-z0-9]+", request.prompt.lower()))
        chosen = [t for t in request.tools if words & set(t.name.lower().split("_"))]
        if chosen:
            return "", [_call(turn, i, t.name, _arguments(t, request.prompt)) for i, t in enumerate(chosen)]
    if not results:
        return _summary(request.prompt, request.max_tokens), []
    return "Based on the tools: " + "; ".join(f"{r.name} returned {r.content}" for r in results), []


def _call(turn: int, index: int, name: str, arguments: dict[str, Any]) -> ToolCall:
    return ToolCall(id=f"call_{turn}_{index}", name=name, arguments=arguments)


def _arguments(spec: ToolSpec, prompt: str) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for name, schema in spec.parameters.get("properties", {}).items():
        match = re.search(rf"\b{re.escape(name)}\s*[:=]\s*\"?([^\"\n,;]+)", prompt)
        if match:
            value = match.group(1).strip().rstrip(".!?")
            kind = schema.get("type")
            arguments[name] = int(value) if kind == "integer" and value.isdigit() else value
    return arguments


class ScriptedModel:
    name = "scripted"

    def complete(self, request: ModelRequest) -> ModelResponse:
        calls: list[ToolCall] = []
        if request.tools:
            text, calls = _act(request)
        else:
            text = _entities(request.prompt) if request.json_output else _summary(request.prompt, request.max_tokens)
        conversation = [
            request.system or "",
            request.prompt,
            *(spec.model_dump_json() for spec in request.tools),
            *(message.model_dump_json() for message in request.messages),
        ]
        output = text + "".join(call.model_dump_json() for call in calls)
        return ModelResponse(
            text=text,
            model_id=request.model_id,
            usage=Usage(input_tokens=_tokens("".join(conversation)), output_tokens=_tokens(output)),
            stop_reason="tool_use" if calls else "end_turn",
            tool_calls=calls,
        )
