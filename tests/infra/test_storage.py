"""The table and the bucket: durable, encrypted, private, and shaped as sutram.store.keys expects."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match, Template

from infra import constants
from sutram.store import artifacts, keys


def test_table_is_on_demand_with_recovery_ttl_and_aws_managed_encryption(cdk_template: Template) -> None:
    cdk_template.resource_count_is("AWS::DynamoDB::Table", 1)
    cdk_template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": Match.object_like(
                {
                    "BillingMode": "PAY_PER_REQUEST",
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
                    # SSEEnabled without a key: the AWS-managed key (aws/dynamodb).
                    "SSESpecification": {"SSEEnabled": True},
                }
            ),
        },
    )


def test_runs_index_projects_everything(cdk_template: Template) -> None:
    cdk_template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": keys.INDEX,
                    "KeySchema": [
                        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        },
    )


def test_buckets_are_private_encrypted_unversioned_and_retained(cdk_template: Template) -> None:
    cdk_template.resource_count_is("AWS::S3::Bucket", 2)  # the artifacts, and their access logs
    cdk_template.has_resource(
        "AWS::S3::Bucket",
        {
            "DeletionPolicy": "Retain",
            "Properties": Match.object_like(
                {
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    },
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                        ]
                    },
                    "VersioningConfiguration": Match.absent(),
                }
            ),
        },
    )


def test_the_artifact_bucket_logs_every_access_to_the_access_log_bucket(template: dict[str, Any]) -> None:
    buckets = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::S3::Bucket"}
    (artifacts,) = [v for v in buckets.values() if "LoggingConfiguration" in v["Properties"]]
    (logs_id,) = [k for k, v in buckets.items() if "LoggingConfiguration" not in v["Properties"]]
    assert artifacts["Properties"]["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": logs_id},
        "LogFilePrefix": "artifacts/",
    }
    assert buckets[logs_id]["Properties"]["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 365


def test_bucket_policy_denies_requests_without_tls(cdk_template: Template) -> None:
    cdk_template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Principal": {"AWS": "*"},
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_tenant_artifacts_expire_and_incomplete_uploads_are_aborted(cdk_template: Template) -> None:
    cdk_template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Prefix": "tenants/",
                                "ExpirationInDays": constants.ARTIFACT_EXPIRY_DAYS,
                                "Status": "Enabled",
                            }
                        ),
                        Match.object_like(
                            {"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}, "Status": "Enabled"}
                        ),
                    ]
                )
            }
        },
    )


def test_artifact_keys_fall_under_the_expiring_prefix() -> None:
    assert artifacts.tenant_prefix("acme").startswith(constants.ARTIFACTS_PREFIX)
