"""Durable storage: the single DynamoDB table (runs, checkpoints, approvals, costs) and the
artifact bucket for values too large for Step Functions state. Both outlive the stack."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import constants, nag
from sutram.store import keys


def _string_key(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class Storage(Construct):
    """The table and the bucket every function reads and writes."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = self._build_table()
        self.bucket = self._build_bucket()

    def _build_table(self) -> dynamodb.Table:
        # Table, not TableV2: the local cloud cannot create AWS::DynamoDB::GlobalTable.
        table = dynamodb.Table(
            self,
            "Table",
            partition_key=_string_key(constants.TABLE_PARTITION_KEY),
            sort_key=_string_key(constants.TABLE_SORT_KEY),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=constants.TABLE_TTL_ATTRIBUTE,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.RETAIN,
        )
        table.add_global_secondary_index(
            index_name=keys.INDEX,
            partition_key=_string_key(constants.INDEX_PARTITION_KEY),
            sort_key=_string_key(constants.INDEX_SORT_KEY),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        return table

    def _build_bucket(self) -> s3.Bucket:
        # Who read or wrote which artifact, for audits (server access logs, kept ACCESS_LOG_DAYS).
        access_logs = s3.Bucket(
            self,
            "ArtifactAccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(id="ExpireLogs", expiration=Duration.days(constants.ACCESS_LOG_DAYS))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        nag.acknowledge(
            access_logs, {"S1": "It is the access-log bucket: its own access cannot be logged into itself."}
        )
        return s3.Bucket(
            self,
            "Artifacts",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="artifacts/",
            versioned=False,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireTenantArtifacts",
                    prefix=constants.ARTIFACTS_PREFIX,
                    expiration=Duration.days(constants.ARTIFACT_EXPIRY_DAYS),
                ),
                s3.LifecycleRule(
                    id="AbortIncompleteUploads",
                    abort_incomplete_multipart_upload_after=Duration.days(constants.INCOMPLETE_UPLOAD_EXPIRY_DAYS),
                ),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
