"""What resuming, aborting and forking answer when they cannot do what was asked."""

from __future__ import annotations

from http import HTTPStatus

from sutram.rest.errors import RequestError


class RunNotResumable(RequestError):
    code, status = "run_not_resumable", HTTPStatus.CONFLICT


class VersionMismatch(RequestError):
    code, status = "version_mismatch", HTTPStatus.CONFLICT


class RunNotRunning(RequestError):
    code, status = "run_not_running", HTTPStatus.CONFLICT


class InvalidForkPoint(RequestError):
    code, status = "invalid_fork_point", HTTPStatus.BAD_REQUEST


class OutcomeKnown(RequestError):
    code, status = "outcome_known", HTTPStatus.CONFLICT


class InvalidInputs(RequestError):
    code, status = "invalid_inputs", HTTPStatus.BAD_REQUEST
