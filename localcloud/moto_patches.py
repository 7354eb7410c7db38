"""The local cloud's patches of moto internals (moto 5.2.5); LocalCloud.start() installs all four.

install_invoke_seam(dispatch): the Lambda backend's `invoke`, so that Lambda invocations (Step
    Functions' Lambda tasks among them) run the real handlers in the local cloud's sandboxes instead
    of returning moto's canned "Simple Lambda happy path".
    tests/integration/test_local_cloud.py fails loudly if moto moves or changes it.
start_executions_on_versions(): the Step Functions backend's `start_execution`, because moto publishes
    versions but cannot start an execution on one. tests/integration/test_versions.py.
start_executions_from_tasks(): the parameter casing of the startExecution task integration, which
    moto passes to boto3 as the ASL's. tests/integration/test_agents.py.
verify_srp_passwords(): Cognito's SRP sign-in (USER_SRP_AUTH), which moto answers with random
    numbers and completes whatever the password: the challenge is computed from the user's password
    as Cognito's is, and a claim that does not prove the password is refused.
    tests/unit/cli/test_runs.py signs in with the CLI, right and wrong.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable
from typing import Any

from moto.awslambda_simple.models import lambda_simple_backends
from moto.cognitoidp.exceptions import NotAuthorizedError
from moto.cognitoidp.models import CognitoIdpBackend
from moto.stepfunctions.exceptions import StateMachineDoesNotExist
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.responses import get_backend
from pycognito.aws_srp import G_HEX, N_HEX, calculate_u, compute_hkdf, hex_hash, hex_to_long, long_to_hex, pad_hex

# The account and region the local cloud's mock runs in: the backends patched here are theirs.
ACCOUNT = "123456789012"
REGION = "us-east-1"
# Held while an execution starts on a version (its definition is swapped in for that moment) and
# while the local cloud redeploys: neither sees the other's definitions half way.
DEFINITIONS = threading.RLock()


def install_invoke_seam(dispatch: Callable[[str, Any], tuple[Any, str | None]]) -> None:
    """Route every Lambda invocation to `dispatch(function name, event) -> (payload, function error or None)`."""
    backend = lambda_simple_backends[ACCOUNT][REGION]

    def invoke(function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any) -> bytes:
        payload, error = dispatch(function_name, json.loads(body or b"{}"))
        if error:
            response_headers["x-amz-function-error"] = error
        return json.dumps(payload).encode()

    backend.invoke = invoke  # type: ignore[method-assign]


def start_executions_on_versions() -> None:
    """Let StartExecution name a published version (`<state machine ARN>:<n>`), as AWS does.

    moto 5.2.5 publishes versions but starts executions only on a state machine's latest definition.
    Its execution copies the definition when it starts, so the version's definition is put in place
    for that moment: the execution runs that version to its end, whatever is deployed meanwhile. An
    unpublished version number is StateMachineDoesNotExist, as in AWS. Installed on the backend of
    the running mock (moto resets it when the mock stops).
    """
    backend = get_backend(ACCOUNT, REGION)
    start = backend.start_execution

    def start_execution(state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
        parts = state_machine_arn.split(":")
        if len(parts) != 8 or not parts[7].isdigit():  # arn:aws:states:region:account:stateMachine:name[:n]
            return start(state_machine_arn, *args, **kwargs)
        machine_arn = ":".join(parts[:7])
        machine = backend.describe_state_machine(machine_arn)
        version = machine.versions.get(int(parts[7]))
        if version is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{state_machine_arn}'")
        with DEFINITIONS:
            latest, machine.definition = machine.definition, version.definition
            try:
                return start(machine_arn, *args, **kwargs)
            finally:
                machine.definition = latest

    backend.start_execution = start_execution  # type: ignore[method-assign]


def start_executions_from_tasks() -> None:
    """Let a Task state start an execution (`arn:aws:states:::states:startExecution`).

    moto 5.2.5 passes the task's parameters to boto3 in the ASL's casing (StateMachineArn), which
    boto3 rejects; they are renamed to the API's (stateMachineArn) after moto's own normalisation.
    Agent loops continue a long run in a fresh execution this way (tests/integration/test_agents.py).
    """
    normalise = StateTaskServiceSfn._normalise_parameters
    if getattr(normalise, "sutram_patched", False):
        return

    def normalise_parameters(self: Any, parameters: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        normalise(self, parameters, *args, **kwargs)
        if self._get_boto_service_action() == "start_execution":
            for key in [key for key in parameters if key[:1].isupper()]:
                parameters[key[0].lower() + key[1:]] = parameters.pop(key)

    normalise_parameters.sutram_patched = True  # type: ignore[attr-defined]
    StateTaskServiceSfn._normalise_parameters = normalise_parameters  # type: ignore[method-assign]


_N, _G = hex_to_long(N_HEX), hex_to_long(G_HEX)
_K = hex_to_long(hex_hash("00" + N_HEX + "0" + G_HEX))


def verify_srp_passwords() -> None:
    """Make moto's USER_SRP_AUTH prove the password, as Cognito does (SRP-6a with Cognito's hashing)."""
    initiate, respond = CognitoIdpBackend.initiate_auth, CognitoIdpBackend.respond_to_auth_challenge
    if getattr(initiate, "sutram_patched", False):
        return
    pending: dict[str, tuple[int, int, int, int, str, str]] = {}  # secret block -> A, b, B, v, pool, user id

    def initiate_auth(self: Any, client_id: str, auth_flow: str, auth_parameters: dict[str, str]) -> dict[str, Any]:
        answer: dict[str, Any] = initiate(self, client_id, auth_flow, auth_parameters)
        if answer.get("ChallengeName") != "PASSWORD_VERIFIER":
            return answer
        parameters = answer["ChallengeParameters"]
        _, pool = self.sessions[answer["Session"]]
        user = self.admin_get_user(pool.id, parameters["USERNAME"])
        pool_name, salt = pool.id.split("_")[1], secrets.token_hex(16)
        secret = hashlib.sha256(f"{pool_name}{parameters['USER_ID_FOR_SRP']}:{user.password}".encode()).hexdigest()
        verifier = pow(_G, hex_to_long(hex_hash(pad_hex(salt) + secret)), _N)
        small_b = secrets.randbits(1024) % _N
        big_b = (_K * verifier + pow(_G, small_b, _N)) % _N
        big_a = hex_to_long(auth_parameters["SRP_A"])
        pending[parameters["SECRET_BLOCK"]] = (
            big_a,
            small_b,
            big_b,
            verifier,
            pool_name,
            parameters["USER_ID_FOR_SRP"],
        )
        parameters.update({"SALT": salt, "SRP_B": long_to_hex(big_b)})
        return answer

    def respond_to_auth_challenge(
        self: Any, session: str, client_id: str, challenge_name: str, challenge_responses: dict[str, str]
    ) -> dict[str, Any]:
        if challenge_name == "PASSWORD_VERIFIER":
            block = challenge_responses.get("PASSWORD_CLAIM_SECRET_BLOCK", "")
            if block not in pending:
                raise NotAuthorizedError("Incorrect username or password.")
            big_a, small_b, big_b, verifier, pool_name, user_id = pending.pop(block)
            u = calculate_u(big_a, big_b)
            shared = pow(big_a * pow(verifier, u, _N), small_b, _N)
            key = compute_hkdf(bytearray.fromhex(pad_hex(shared)), bytearray.fromhex(pad_hex(long_to_hex(u))))
            message = (
                pool_name.encode()
                + user_id.encode()
                + base64.standard_b64decode(block)
                + challenge_responses.get("TIMESTAMP", "").encode()
            )
            expected = base64.standard_b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()
            if not hmac.compare_digest(expected, challenge_responses.get("PASSWORD_CLAIM_SIGNATURE", "")):
                raise NotAuthorizedError("Incorrect username or password.")
        answer: dict[str, Any] = respond(self, session, client_id, challenge_name, challenge_responses)
        return answer

    initiate_auth.sutram_patched = True  # type: ignore[attr-defined]
    CognitoIdpBackend.initiate_auth = initiate_auth  # type: ignore[method-assign]
    CognitoIdpBackend.respond_to_auth_challenge = respond_to_auth_challenge  # type: ignore[method-assign]
