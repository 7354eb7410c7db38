"""Your own tools. Every module in this package is imported when the tool registry is first
used, so a tool defined here with `@tool(...)` can be named in any workflow's `tool:` field.

`text_stats` is a worked example; see docs/tools.md for delivery modes and idempotency keys.
"""
