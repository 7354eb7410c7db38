"""Names, sizes and timeouts shared by the constructs. Units are in the comments."""

SERVICE_NAME = "sutram"
METRICS_NAMESPACE = "Sutram"
LAMBDA_RUNTIME_PYTHON = "python3.13"
LAMBDA_MEMORY_MB = 512  # MB
STEP_FUNCTION_TIMEOUT = 900  # seconds: the longest step timeout a definition may declare
API_FUNCTION_TIMEOUT = 29  # seconds: API Gateway's integration limit
FINISH_FUNCTION_TIMEOUT = 30  # seconds
ARTIFACT_EXPIRY_DAYS = 90  # days: S3 lifecycle, matches the DynamoDB TTL of runs
LOG_RETENTION_DAYS = 30  # days

# Environment variable names read by sutram.settings.
ENV_TABLE = "SUTRAM_TABLE"
ENV_BUCKET = "SUTRAM_BUCKET"
ENV_STATE_MACHINES = "SUTRAM_STATE_MACHINES"
ENV_MODEL_PROVIDER = "SUTRAM_MODEL_PROVIDER"
ENV_MODEL_ID = "SUTRAM_MODEL_ID"
ENV_OFFLOAD_THRESHOLD = "SUTRAM_OFFLOAD_THRESHOLD_BYTES"

# Logical ids the local cloud looks up in the synthesized template.
STEP_FUNCTION_ID = "StepFunction"
FINISH_FUNCTION_ID = "FinishFunction"
API_FUNCTION_ID = "ApiFunction"
