"""The `sutram` command's exit codes and the error that ends it with one.

Exit codes: 0 success, 1 an API error or a FAILED run, 2 a usage or configuration problem, 130 interrupted.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code
