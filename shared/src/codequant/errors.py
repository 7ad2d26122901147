"""Errors that reach the user as one line and a non-zero exit code."""


class CodequantError(Exception):
    """An error caused by the user's input or environment, reported without a traceback."""

    exit_code = 2


class InputError(CodequantError):
    """Bad input: a file, line or field that cannot be used. Exit code 2."""


class ServiceError(CodequantError):
    """A service the command depends on is unreachable or failed. Exit code 3."""

    exit_code = 3
