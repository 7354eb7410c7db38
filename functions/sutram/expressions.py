"""Input mapping expressions: `$.input.<path>`, `$.steps.<step id>.<path>` and, inside a `map`,
`$.item.<path>` (the current item).

An expression is also a valid Amazon States Language path into the run's state, so choice
conditions, map items and transforms use it as is.

The compiler uses each reference's `root` to pass only the roots a step needs into its Lambda payload; the
step runtime evaluates the full path against those roots after fetching offloaded artifacts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]")


class ExpressionError(ValueError):
    pass


@dataclass(frozen=True)
class Reference:
    """A parsed expression: its root (`input` or `steps.<id>`) and the path inside that root."""

    root: str  # "input", "item" or "steps.<id>"
    path: tuple[str | int, ...]

    @property
    def step_id(self) -> str | None:
        return self.root.split(".", 1)[1] if self.root.startswith("steps.") else None


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("$.")


def parse(expression: str) -> Reference:
    if not is_expression(expression):
        raise ExpressionError(f"{expression!r} is not an expression: it must start with $.")
    segments: list[str | int] = []
    position = 1  # skip "$"
    while position < len(expression):
        match = _SEGMENT.match(expression, position)
        if not match:
            raise ExpressionError(f"cannot parse {expression!r} at character {position}")
        segments.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        position = match.end()
    if not segments or segments[0] not in ("input", "item", "steps"):
        raise ExpressionError(f"{expression!r} must start with $.input, $.item or $.steps.<step id>")
    if segments[0] in ("input", "item"):
        return Reference(str(segments[0]), tuple(segments[1:]))
    if len(segments) < 2 or not isinstance(segments[1], str):
        raise ExpressionError(f"{expression!r} must name a step: $.steps.<step id>")
    return Reference(f"steps.{segments[1]}", tuple(segments[2:]))


def references_in(mapping: Any) -> list[Reference]:
    """Every expression inside a (possibly nested) input mapping."""
    if is_expression(mapping):
        return [parse(mapping)]
    if isinstance(mapping, dict):
        return [ref for value in mapping.values() for ref in references_in(value)]
    if isinstance(mapping, list):
        return [ref for value in mapping for ref in references_in(value)]
    return []


def evaluate(mapping: Any, roots: dict[str, Any], load: Callable[[Any], Any]) -> Any:
    """Resolve a mapping against `roots` ({"input": ..., "item": ..., "steps.<id>": ...}).

    `load` turns an artifact reference into its value; it is applied to every value walked
    through, so a path may lead into an offloaded document transparently.
    """
    if is_expression(mapping):
        ref = parse(mapping)
        if ref.root not in roots:
            raise ExpressionError(f"{mapping!r}: {ref.root} is not available to this step")
        value = load(roots[ref.root])
        for segment in ref.path:
            try:
                value = load(value[segment])
            except (KeyError, IndexError, TypeError):
                raise ExpressionError(f"{mapping!r}: no value at {segment!r}") from None
        return value
    if isinstance(mapping, dict):
        return {key: evaluate(value, roots, load) for key, value in mapping.items()}
    if isinstance(mapping, list):
        return [evaluate(value, roots, load) for value in mapping]
    return mapping
