"""Resilience drills: crash a step on purpose at a named point, on its first attempt only.

SUTRAM_FAULTS="summarise@after_model_call" makes the first attempt of step `summarise` exit
the way a killed Lambda runtime does (Runtime.ExitError) right after its model answered and the
answer was recorded, before the step returns to Step Functions. Step Functions then retries,
and the retry must return the recorded answer without calling the model again.
"""

from __future__ import annotations

import sys


def crash_if_injected(spec: str, step_id: str, point: str, attempt: int) -> None:
    """Exit at `point` if `spec` names it: before_call, before_record (the model or tool answered,
    nothing is recorded yet), after_model_call or after_tool_call (recorded, not yet returned)."""
    if attempt == 1 and f"{step_id}@{point}" in {item.strip() for item in spec.split(",")}:
        sys.exit(f"fault injection: step {step_id!r} crashed at {point}")
