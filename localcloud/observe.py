"""Local observers: count what the step code does, without changing it.

The counter wraps the step runtime's provider factory, so the demo and the tests can prove
how many times a model was actually called for a step, independently of what the checkpoint says.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from sutram.models import ModelProvider, ModelRequest, ModelResponse


class ModelCallCounter:
    """Counts model calls by the first line of the prompt (steps' prompts name what they do)."""

    def __init__(self, providers: Callable[[str], ModelProvider]) -> None:
        self._providers = providers
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    def __call__(self, name: str) -> ModelProvider:
        return _CountingProvider(self._providers(name), self)

    def record(self, request: ModelRequest) -> None:
        with self._lock:
            self.calls[request.prompt.splitlines()[0]] += 1


class _CountingProvider:
    def __init__(self, provider: ModelProvider, counter: ModelCallCounter) -> None:
        self.name = provider.name
        self._provider = provider
        self._counter = counter

    def complete(self, request: ModelRequest) -> ModelResponse:
        self._counter.record(request)
        return self._provider.complete(request)


def count_model_calls() -> ModelCallCounter:
    """Install a counter on this process's step runtime and return it."""
    from sutram import wiring

    runtime = wiring.step_runtime()
    counter = ModelCallCounter(runtime.providers)
    runtime.providers = counter
    return counter
