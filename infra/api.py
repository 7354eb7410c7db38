"""The public HTTPS API: a regional REST API proxying every route to the api function, behind a
Cognito user pool whose users carry their tenant in an immutable custom attribute."""

from __future__ import annotations

import json
from typing import cast

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import constants


class Api(Construct):
    """REST API stage `v1`; every method requires a Cognito ID token, except the signed approval
    callback links."""

    def __init__(self, scope: Construct, construct_id: str, *, handler: lambda_.IFunction) -> None:
        super().__init__(scope, construct_id)
        self.user_pool = self._build_user_pool()
        self.client = self.user_pool.add_client(
            "Client",
            auth_flows=cognito.AuthFlow(user_password=True, user_srp=True),
            generate_secret=False,
            disable_o_auth=True,  # clients sign in with the API flows above; no hosted UI, no redirects
            prevent_user_existence_errors=True,
        )
        self.rest_api = self._build_rest_api(handler)

    def _build_user_pool(self) -> cognito.UserPool:
        user_pool = cognito.UserPool(
            self,
            "Users",
            self_sign_up_enabled=False,
            # Immutable: a user's tenant is set when an administrator creates them and never changes.
            custom_attributes={
                constants.TENANT_ATTRIBUTE: cognito.StringAttribute(min_len=1, max_len=63, mutable=False)
            },
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            removal_policy=RemovalPolicy.RETAIN,
        )
        cognito.CfnUserPoolGroup(
            self,
            "Approvers",
            user_pool_id=user_pool.user_pool_id,
            group_name=constants.APPROVERS_GROUP,
            description="May approve or reject a run's pending approvals within their tenant",
        )
        return user_pool

    def _build_rest_api(self, handler: lambda_.IFunction) -> apigw.LambdaRestApi:
        authorizer = apigw.CognitoUserPoolsAuthorizer(self, "Authorizer", cognito_user_pools=[self.user_pool])
        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=constants.LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY
        )
        rest_api = apigw.LambdaRestApi(
            self,
            "RestApi",
            handler=handler,
            proxy=True,
            endpoint_types=[apigw.EndpointType.REGIONAL],
            default_method_options=apigw.MethodOptions(
                authorizer=authorizer, authorization_type=apigw.AuthorizationType.COGNITO
            ),
            # Access logging needs the account-level API Gateway role; a fresh account has none.
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=constants.API_STAGE_NAME,
                tracing_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=_access_log_format(),
                throttling_rate_limit=constants.API_THROTTLE_RATE,
                throttling_burst_limit=constants.API_THROTTLE_BURST,
            ),
        )
        # The stack declares its own ApiUrl output.
        rest_api.node.try_remove_child("Endpoint")
        self._add_callback_route(rest_api, handler)
        return rest_api

    @staticmethod
    def _add_callback_route(rest_api: apigw.LambdaRestApi, handler: lambda_.IFunction) -> None:
        """Approval callback links are used without an API session (from chat tools or e-mail):
        they carry their own HMAC signature, so these two methods skip the Cognito authorizer."""
        token = rest_api.root.add_resource("callbacks").add_resource("approvals").add_resource("{token}")
        for verb in ("GET", "POST"):
            method = token.add_method(verb, apigw.LambdaIntegration(handler))
            cfn = cast(apigw.CfnMethod, method.node.default_child)
            cfn.add_property_override("AuthorizationType", "NONE")
            cfn.add_property_deletion_override("AuthorizerId")


def _access_log_format() -> apigw.AccessLogFormat:
    # One JSON line per request; `sub` is the Cognito user, so every call can be attributed.
    field = apigw.AccessLogField
    return apigw.AccessLogFormat.custom(
        json.dumps(
            {
                "requestId": field.context_request_id(),
                "requestTime": field.context_request_time(),
                "ip": field.context_identity_source_ip(),
                "sub": field.context_authorizer_claims("sub"),
                "method": field.context_http_method(),
                # The route, not the path: a callback path holds a signed approval link.
                "resource": field.context_resource_path(),
                "status": field.context_status(),
                "responseLength": field.context_response_length(),
                "integrationLatencyMs": field.context_integration_latency(),
                "error": field.context_error_message(),
            }
        )
    )
