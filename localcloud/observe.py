"""A local extension loaded into every sandbox (localcloud/bootstrap.py): it counts the model calls
the function's code makes, and the tokens they spend, without changing the code or what it returns.

It wraps the composition root's model provider factory (sutram.wiring.provider) before the first
invocation; the counts, by the first line of each prompt (steps' prompts name what they do), travel
back with each invocation's answer and add up in LocalCloud.observations["model_calls"]. This file
runs inside the sandbox: it imports the asset's own sutram, and nothing of the local cloud.
"""

from __future__ import annotations

import threading
from collections import Counter
from functools import cache
from typing import Any

_calls: Counter[str] = Counter()
_tokens: Counter[str] = Counter()
_lock = threading.Lock()


class _CountingProvider:
    def __init__(self, provider: Any) -> None:
        self.name = provider.name
        self._provider = provider

    def complete(self, request: Any) -> Any:
        line = request.prompt.splitlines()[0]
        with _lock:
            _calls[line] += 1
        response = self._provider.complete(request)
        with _lock:
            _tokens[line] += response.usage.input_tokens + response.usage.output_tokens
        return response


def _install() -> None:
    try:
        from sutram import wiring
    except ImportError:  # not a Sutram function (a test's or a benchmark's own handler)
        return
    providers = wiring.provider

    @cache
    def provider(name: str) -> Any:
        return _CountingProvider(providers(name))

    wiring.provider = provider  # type: ignore[assignment]


def observe() -> dict[str, dict[str, int]]:
    """The model calls and their tokens since the last call, by the first line of the prompt."""
    with _lock:
        counts, tokens = dict(_calls), dict(_tokens)
        _calls.clear()
        _tokens.clear()
    return ({"model_calls": counts} if counts else {}) | ({"model_tokens": tokens} if tokens else {})


_install()
