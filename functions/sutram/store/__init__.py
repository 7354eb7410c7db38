"""The store layer: one class per DynamoDB entity or S3 store, and every key, cursor, time format and
retention they share. Nothing above this layer builds a key or parses a stored item."""
