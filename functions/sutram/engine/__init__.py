"""The step engine: run one step, agent turn or tool call exactly once per checkpoint key."""
