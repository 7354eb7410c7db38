"""The REST API: regional, proxied to the api function, every method behind the Cognito authorizer."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match, Template

from infra import constants


def test_every_method_but_the_callback_links_requires_the_cognito_authorizer(cdk_template: Template) -> None:
    (authorizer_id,) = cdk_template.find_resources(
        "AWS::ApiGateway::Authorizer", {"Properties": {"Type": "COGNITO_USER_POOLS"}}
    )
    methods = {
        logical_id: method
        for logical_id, method in cdk_template.find_resources("AWS::ApiGateway::Method").items()
        if method["Properties"]["AuthorizationType"] != "NONE"
    }
    assert {method["Properties"]["HttpMethod"] for method in methods.values()} == {"ANY"}
    assert len(methods) == 2  # the root and {proxy+}
    for method in methods.values():
        assert method["Properties"]["AuthorizationType"] == "COGNITO_USER_POOLS"
        assert method["Properties"]["AuthorizerId"] == {"Ref": authorizer_id}
        assert method["Properties"]["Integration"]["Type"] == "AWS_PROXY"


def test_all_paths_proxy_to_the_api_function(cdk_template: Template) -> None:
    cdk_template.has_resource_properties("AWS::ApiGateway::Resource", {"PathPart": "{proxy+}"})
    cdk_template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {
            "Integration": {
                "Uri": {"Fn::Join": ["", Match.array_with([{"Fn::GetAtt": [constants.API_FUNCTION_ID, "Arn"]}])]}
            }
        },
    )


def test_api_is_regional_with_an_untraced_throttled_logged_v1_stage(cdk_template: Template) -> None:
    cdk_template.has_resource_properties("AWS::ApiGateway::RestApi", {"EndpointConfiguration": {"Types": ["REGIONAL"]}})
    cdk_template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": "v1",
            "TracingEnabled": False,  # X-Ray would record callback links' paths
            "AccessLogSetting": {"DestinationArn": Match.any_value(), "Format": Match.string_like_regexp("requestId")},
            "MethodSettings": [
                Match.object_like(
                    {
                        "ThrottlingRateLimit": constants.API_THROTTLE_RATE,
                        "ThrottlingBurstLimit": constants.API_THROTTLE_BURST,
                    }
                )
            ],
        },
    )


def test_access_logs_name_the_route_not_the_path_so_callback_links_stay_out_of_them(cdk_template: Template) -> None:
    [stage] = cdk_template.find_resources("AWS::ApiGateway::Stage").values()
    fields = json.loads(stage["Properties"]["AccessLogSetting"]["Format"])

    assert fields["resource"] == "$context.resourcePath" and fields["sub"] == "$context.authorizer.claims.sub"
    assert "$context.path" not in fields.values()


def test_users_are_created_by_admins_with_an_immutable_tenant(cdk_template: Template) -> None:
    cdk_template.has_resource_properties(
        "AWS::Cognito::UserPool",
        {
            "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
            "Schema": [Match.object_like({"Name": "tenant", "AttributeDataType": "String", "Mutable": False})],
        },
    )
    cdk_template.has_resource_properties("AWS::Cognito::UserPoolGroup", {"GroupName": "approvers"})


def test_client_signs_in_with_srp_only_without_a_secret_or_oauth(cdk_template: Template) -> None:
    cdk_template.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "ExplicitAuthFlows": ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            "GenerateSecret": False,
            "AllowedOAuthFlows": Match.absent(),
            "CallbackURLs": Match.absent(),
        },
    )


def test_outputs_give_a_client_everything_it_needs(cdk_template: Template) -> None:
    assert set(cdk_template.find_outputs("*")) == {
        "ApiUrl",
        "UserPoolId",
        "UserPoolClientId",
        "TableName",
        "BucketName",
    }


def test_only_the_signed_callback_route_skips_the_authorizer(cdk_template: Template) -> None:
    methods = cdk_template.find_resources("AWS::ApiGateway::Method", {"Properties": {"AuthorizationType": "NONE"}})
    assert sorted(method["Properties"]["HttpMethod"] for method in methods.values()) == ["GET", "POST"]
    assert all("AuthorizerId" not in method["Properties"] for method in methods.values())
    (resource,) = cdk_template.find_resources("AWS::ApiGateway::Resource", {"Properties": {"PathPart": "{token}"}})
    assert resource
