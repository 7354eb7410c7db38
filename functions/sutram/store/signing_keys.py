"""The keys that sign approval callback links (sutram.approvals.links), read at run time from
Secrets Manager: never from the environment, the template or a log.

The secret holds {"key": <current key>, "previous": <the key before the last rotation>}. Links are
signed with the current key; a link is accepted under either, so one signed just before a rotation
still works until it expires (24 hours at most, far less than the rotation period). The value is
cached for KEY_CACHE_SECONDS, so a rotation reaches every sandbox within that time, without a deploy.
Rotation itself is sutram.handlers.rotate.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider

KEY_CACHE_SECONDS = 300


class SigningKeys:
    def __init__(self, client: Any, secret_id: str, max_age: int = KEY_CACHE_SECONDS) -> None:
        self._provider = SecretsProvider(boto3_client=client)
        self._secret_id = secret_id
        self._max_age = max_age

    def current(self) -> str:
        """The key new links are signed with."""
        return str(self._value()["key"])

    def accepted(self) -> tuple[str, ...]:
        """The keys a link may be signed with: the current one, then the previous one if any."""
        value = self._value()
        return tuple(str(value[name]) for name in ("key", "previous") if value.get(name))

    def _value(self) -> dict[str, Any]:
        value = self._provider.get(self._secret_id, max_age=self._max_age, transform="json")
        if not isinstance(value, dict) or not value.get("key"):
            raise ValueError(f"the signing-key secret {self._secret_id} holds no key")
        return value
