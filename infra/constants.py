"""Names, sizes and timeouts shared by the constructs. Units are in the comments."""

from aws_cdk.aws_logs import RetentionDays

from sutram.store.dynamo import RETENTION_DAYS

STACK_NAME = "Sutram"
SERVICE_NAME = "sutram"
METRICS_NAMESPACE = "Sutram"
LAMBDA_RUNTIME_PYTHON = "python3.14"  # the default of CONTEXT_LAMBDA_PYTHON
LAMBDA_ARCHITECTURE = "x86_64"
LAMBDA_PIP_PLATFORM = "manylinux2014_x86_64"  # wheels that run on LAMBDA_ARCHITECTURE
LAMBDA_MEMORY_MB = 512  # MB
STEP_FUNCTION_TIMEOUT = 900  # seconds: the longest step timeout a definition may declare
API_FUNCTION_TIMEOUT = 29  # seconds: API Gateway's integration limit
FINISH_FUNCTION_TIMEOUT = 30  # seconds
ROTATE_FUNCTION_TIMEOUT = 30  # seconds
KEY_ROTATION_DAYS = 30  # days between rotations of the link-signing keys
ARTIFACT_EXPIRY_DAYS = RETENTION_DAYS  # days: S3 lifecycle, the same retention as the table's items (TTL)
INCOMPLETE_UPLOAD_EXPIRY_DAYS = 1  # days
ACCESS_LOG_DAYS = 365  # days: the artifact bucket's server access logs
LOG_RETENTION = RetentionDays.ONE_MONTH  # 30 days, for every log group

# Lambda runtime packages the code asset leaves out (the Python runtime ships them).
RUNTIME_PROVIDED_PACKAGES = ("boto3", "botocore", "s3transfer")

# Single-table layout (see sutram.store.keys); the index name is sutram.store.keys.INDEX.
TABLE_PARTITION_KEY = "pk"
TABLE_SORT_KEY = "sk"
INDEX_PARTITION_KEY = "gsi1pk"
INDEX_SORT_KEY = "gsi1sk"
TABLE_TTL_ATTRIBUTE = "expires_at"  # epoch seconds
ARTIFACTS_PREFIX = "tenants/"  # every tenant's artifacts live below it (sutram.store.artifacts.tenant_prefix)

# API Gateway stage and its default method throttling.
API_STAGE_NAME = "v1"
API_THROTTLE_RATE = 50  # requests per second, steady state
API_THROTTLE_BURST = 100  # requests
# WAF rate-based rules, per client IP over FIREWALL_WINDOW_SECONDS: any route, and the callback links.
FIREWALL_WINDOW_SECONDS = 60
FIREWALL_CLIENT_LIMIT = 600  # requests: 10 a second on average
FIREWALL_CALLBACK_LIMIT = 30  # requests: an approver uses a link once
PASSWORD_MIN_LENGTH = 12  # characters, with lower and upper case, digits and symbols
TENANT_ATTRIBUTE = "tenant"  # Cognito custom attribute; tokens carry it as custom:tenant
APPROVERS_GROUP = "approvers"  # Cognito group whose members may decide approvals

# Every workflow's alias: new runs start on the version it routes to (infra.versions).
LIVE_ALIAS = "live"

# Environment variable names read by sutram.settings.
ENV_TABLE = "SUTRAM_TABLE"
ENV_BUCKET = "SUTRAM_BUCKET"
ENV_STATE_MACHINES = "SUTRAM_STATE_MACHINES"
ENV_WORKFLOW_ALIASES = "SUTRAM_WORKFLOW_ALIASES"
ENV_MODEL_PROVIDER = "SUTRAM_MODEL_PROVIDER"
ENV_MODEL_ID = "SUTRAM_MODEL_ID"
ENV_OFFLOAD_THRESHOLD = "SUTRAM_OFFLOAD_THRESHOLD_BYTES"
ENV_WORKFLOWS_DIR = "SUTRAM_WORKFLOWS_DIR"
ENV_EVENT_BUS = "SUTRAM_EVENT_BUS"
ENV_APPROVAL_WEBHOOK_URL = "SUTRAM_APPROVAL_WEBHOOK_URL"
ENV_CALLBACK_SECRET_ARN = "SUTRAM_CALLBACK_SECRET_ARN"
EVENT_BUS_SUFFIX = "approvals"  # the bus `<stack>-approvals` carries "Approval requested" events
LAMBDA_WORKFLOWS_DIR = "/var/task/workflows"  # where the code asset puts workflows/*.yaml

# CDK context keys (cdk.json) and the values used when a key is absent.
CONTEXT_MODEL_PROVIDER = "sutram:modelProvider"
CONTEXT_MODEL_ID = "sutram:modelId"
CONTEXT_OFFLOAD_THRESHOLD = "sutram:offloadThresholdBytes"
CONTEXT_APPROVAL_WEBHOOK_URL = "sutram:approvalWebhookUrl"
CONTEXT_REQUIRE_MFA = (
    "sutram:requireMfa"  # true: every user must answer a TOTP challenge  # optional Slack-compatible webhook
)
# The functions' Lambda runtime, and the Python the asset's dependencies are installed for.
CONTEXT_LAMBDA_PYTHON = "sutram:lambdaPython"
CONTEXT_RESERVED_CONCURRENCY = "sutram:reservedConcurrency"  # {"step": 100, ...}; none reserved by default
FUNCTION_NAMES = ("step", "finish", "api", "rotate")
DEFAULT_MODEL_PROVIDER = "bedrock"
DEFAULT_MODEL_ID = "anthropic.claude-3-5-haiku-20241022-v1:0"
DEFAULT_OFFLOAD_THRESHOLD = 8192  # bytes

# Logical ids the local cloud looks up in the synthesized template.
STEP_FUNCTION_ID = "StepFunction"
FINISH_FUNCTION_ID = "FinishFunction"
API_FUNCTION_ID = "ApiFunction"
ROTATE_FUNCTION_ID = "RotateFunction"
CONTEXT_PUBLIC_API_URL = "sutram:publicApiUrl"  # e.g. https://api.example.com/v1, for links in approval notifications

JSON_NULL = "States.StringToJson('null')"  # a JSON null in Parameters (CDK drops None values)
# The error of an approval nobody decided in time whose rules say `on_timeout: fail`.
APPROVAL_TIMED_OUT = "Sutram.ApprovalTimedOut"
STAGE_ITEMS_TIMEOUT_SECONDS = 120  # a distributed map's staging task: load the list, write it to S3
PAUSE_TIMEOUT_SECONDS = 30 * 86_400  # a paused run waits this long for an operator, then fails (States.Timeout)
