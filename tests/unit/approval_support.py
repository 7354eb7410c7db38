"""Fakes for the approval side: EventBridge and Step Functions clients that keep what they were sent."""

from __future__ import annotations

from typing import Any


class Events:
    def __init__(self, fail: bool = False) -> None:
        self.entries: list[dict[str, Any]] = []
        self.fail = fail

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if self.fail:
            raise ConnectionError("EventBridge is unreachable")
        self.entries += Entries
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]}


class StepFunctions:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_task_success(self, **request: Any) -> None:
        self.sent.append(request)
