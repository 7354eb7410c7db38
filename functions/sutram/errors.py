"""Errors raised by step code. The class name is the error name Step Functions sees,
so retry policies in workflow definitions refer to these names."""

from __future__ import annotations


class SutramError(Exception):
    """Base class for errors Sutram raises on purpose."""


class TransientStepError(SutramError):
    """Worth retrying: throttling, a 5xx from a provider, a network failure."""


class StepFailed(SutramError):
    """Permanent failure of a step's own work: retrying would fail the same way."""


class TooLargeForState(StepFailed):
    """A value Step Functions must carry in state (a list an inline map iterates) is too large,
    even with its large parts offloaded."""


class ReplayDiverged(StepFailed):
    """A replayed step asked something other than what the recorded run asked, or the recorded run
    never ran it: the replay stops there, and says what differs."""


class InvalidStepInput(SutramError):
    """The step's input mapping or arguments do not fit what the step needs."""


class StepInProgress(SutramError):
    """Another attempt of the same step holds a live lease; retry after it ends or expires."""


class OutcomeUnknown(SutramError):
    """An at-most-once side effect may or may not have happened; an operator must decide."""


#: Errors retried by default: Sutram's transient ones, a held lease, and the Lambda service's
#: own failures, including a crashed runtime (Runtime.ExitError) and a task timeout.
DEFAULT_RETRYABLE_ERRORS: tuple[str, ...] = (
    "TransientStepError",
    "StepInProgress",
    "Runtime.ExitError",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.Unknown",
    "States.Timeout",
)
