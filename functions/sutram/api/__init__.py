"""The HTTP API: routes (app), request/response models (models) and the caller's identity (auth)."""
