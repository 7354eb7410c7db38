"""The store layer: one class per DynamoDB entity or S3 store, and every key, cursor, time format and
retention they share. Nothing above this layer builds a key. Checkpoint items leave it as stored
(`CheckpointStore.list_steps`), read by the run views and the agent's transcript."""
