"""What starting, reading and listing runs answers when it cannot do what was asked."""

from __future__ import annotations

from http import HTTPStatus

from sutram.rest.errors import RequestError


class WorkflowNotFound(RequestError):
    code, status = "workflow_not_found", HTTPStatus.NOT_FOUND


class RunNotFound(RequestError):
    code, status = "run_not_found", HTTPStatus.NOT_FOUND


class VersionNotFound(RequestError):
    code, status = "version_not_found", HTTPStatus.NOT_FOUND


class InvalidRunInput(RequestError):
    code, status = "invalid_input", HTTPStatus.BAD_REQUEST


class IdempotencyKeyReused(RequestError):
    code, status = "idempotency_key_reused", HTTPStatus.CONFLICT


class RunIdTaken(RequestError):
    code, status = "run_id_taken", HTTPStatus.CONFLICT


class StartFailed(RequestError):
    code, status = "start_failed", HTTPStatus.SERVICE_UNAVAILABLE


class RunAlreadyFinished(RequestError):
    code = "run_already_finished"
