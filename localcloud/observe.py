"""A local extension loaded into every sandbox (localcloud/bootstrap.py): it counts the model calls
the function's code makes, without changing the code or what it returns.

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
_lock = threading.Lock()


class _CountingProvider:
    def __init__(self, provider: Any) -> None:
        self.name = provider.name
        self._provider = provider

    def complete(self, request: Any) -> Any:
        with _lock:
            _calls[request.prompt.splitlines()[0]] += 1
        return self._provider.complete(request)


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
    """The model calls since the last call, by the first line of the prompt."""
    with _lock:
        counts = dict(_calls)
        _calls.clear()
    return {"model_calls": counts} if counts else {}


_install()
