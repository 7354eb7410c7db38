"""Runs: start a workflow run, read it and its steps, list a tenant's runs, record how it ended."""
