"""The public HTTPS API: a regional REST API proxying every route to the api function, behind a
Cognito user pool whose users carry their tenant in an immutable custom attribute."""

from __future__ import annotations

import json
from typing import Any, cast

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra import constants, nag

_LOGGING_POLICY = "arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"


class Api(Construct):
    """REST API stage `v1`; every method requires a Cognito ID token, except the signed approval
    callback links."""

    def __init__(self, scope: Construct, construct_id: str, *, handler: lambda_.IFunction) -> None:
        super().__init__(scope, construct_id)
        self.user_pool = self._build_user_pool()
        self.client = self.user_pool.add_client(
            "Client",
            # SRP only: the password never travels, not even inside TLS to Cognito.
            auth_flows=cognito.AuthFlow(user_srp=True),
            generate_secret=False,
            disable_o_auth=True,  # clients sign in with the API flows above; no hosted UI, no redirects
            prevent_user_existence_errors=True,
        )
        self.rest_api = self._build_rest_api(handler)

    def _build_user_pool(self) -> cognito.UserPool:
        require_mfa = bool(self.node.try_get_context(constants.CONTEXT_REQUIRE_MFA))
        user_pool = cognito.UserPool(
            self,
            "Users",
            self_sign_up_enabled=False,
            # Immutable: a user's tenant is set when an administrator creates them and never changes.
            custom_attributes={
                constants.TENANT_ATTRIBUTE: cognito.StringAttribute(min_len=1, max_len=63, mutable=False)
            },
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            password_policy=cognito.PasswordPolicy(
                min_length=constants.PASSWORD_MIN_LENGTH,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            # TOTP for every user who enrols; required for all when CDK context sutram:requireMfa is true.
            mfa=cognito.Mfa.REQUIRED if require_mfa else cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            # Threat protection: compromised-credential and adaptive (risky sign-in) checks, enforced.
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            removal_policy=RemovalPolicy.RETAIN,
        )
        if not require_mfa:
            nag.acknowledge(
                user_pool,
                {
                    "COG2": "Every user may enrol TOTP; requiring it is the deployment's choice (CDK context "
                    "sutram:requireMfa), because every API client must then answer the MFA challenge."
                },
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
                # No X-Ray on the stage: its segments record each request's full URL, and a
                # callback link's path is its credential. The functions' own traces remain.
                tracing_enabled=False,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=_access_log_format(),
                throttling_rate_limit=constants.API_THROTTLE_RATE,
                throttling_burst_limit=constants.API_THROTTLE_BURST,
                # Execution logs for errors only, never request or response bodies (tokens, links).
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
            ),
        )
        # The stack declares its own ApiUrl output.
        rest_api.node.try_remove_child("Endpoint")
        self._add_callback_route(rest_api, handler)
        nag.acknowledge(
            rest_api,
            {
                "APIG2": "The api function validates every request against the OpenAPI document's models and "
                "refuses unreadable bodies before any route (400/413/415 naming the problem, fuzzed in CI); "
                "a gateway validator would duplicate part of that with vaguer errors.",
                f"IAM4[Policy::{_LOGGING_POLICY}]": "API Gateway's account-level logging role, with the AWS "
                "managed policy API Gateway documents for it (log groups and streams only).",
            },
        )
        self._add_firewall(rest_api)
        return rest_api

    def _add_firewall(self, rest_api: apigw.LambdaRestApi) -> None:
        """A WAF web ACL on the stage: per-client rate limits, tighter on the callback links (which
        need no session), and AWS's known-bad-inputs rules."""

        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=f"Sutram{name}", sampled_requests_enabled=True
            )

        def per_client(limit: int, scope: wafv2.CfnWebACL.StatementProperty | None = None) -> Any:
            return wafv2.CfnWebACL.StatementProperty(
                rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                    limit=limit,
                    aggregate_key_type="IP",
                    evaluation_window_sec=constants.FIREWALL_WINDOW_SECONDS,
                    scope_down_statement=scope,
                )
            )

        callbacks = wafv2.CfnWebACL.StatementProperty(
            byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
                positional_constraint="STARTS_WITH",
                search_string=f"/{constants.API_STAGE_NAME}/callbacks/",
                text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")],
            )
        )
        block = wafv2.CfnWebACL.RuleActionProperty(block={})
        acl = wafv2.CfnWebACL(
            self,
            "Firewall",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility("Api"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="CallbackLinksPerClient",
                    priority=0,
                    action=block,
                    statement=per_client(constants.FIREWALL_CALLBACK_LIMIT, callbacks),
                    visibility_config=visibility("CallbackLinksPerClient"),
                ),
                wafv2.CfnWebACL.RuleProperty(
                    name="RequestsPerClient",
                    priority=1,
                    action=block,
                    statement=per_client(constants.FIREWALL_CLIENT_LIMIT),
                    visibility_config=visibility("RequestsPerClient"),
                ),
                wafv2.CfnWebACL.RuleProperty(
                    name="KnownBadInputs",
                    priority=2,
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS", name="AWSManagedRulesKnownBadInputsRuleSet"
                        )
                    ),
                    visibility_config=visibility("KnownBadInputs"),
                ),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self, "FirewallOnStage", resource_arn=rest_api.deployment_stage.stage_arn, web_acl_arn=acl.attr_arn
        )

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
