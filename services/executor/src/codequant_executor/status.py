"""The closed status vocabulary shared by every language, and its mapping to MultiPL-E's four statuses."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    OK = "OK"  # the tests ran to completion
    FAILURE = "Failure"  # a test assertion failed
    EXCEPTION = "Exception"  # any other runtime error (including exiting before the tests completed)
    SYNTAX_ERROR = "SyntaxError"  # Python syntax error or Java compile error
    TIMEOUT = "Timeout"  # wall-clock or CPU limit
    MEMORY_LIMIT = "MemoryLimit"  # MemoryError / OutOfMemoryError under the memory limit
    OUTPUT_LIMIT = "OutputLimit"  # stdout or stderr exceeded the cap
    KILLED = "Killed"  # ended by a signal we did not send
    SANDBOX_ERROR = "SandboxError"  # our fault, never the program's


#: MultiPL-E reports OK, Exception, SyntaxError and Timeout; everything else it would count as Exception.
MULTIPLE_STATUS: dict[Status, str] = {
    Status.OK: "OK",
    Status.FAILURE: "Exception",
    Status.EXCEPTION: "Exception",
    Status.SYNTAX_ERROR: "SyntaxError",
    Status.TIMEOUT: "Timeout",
    Status.MEMORY_LIMIT: "Exception",
    Status.OUTPUT_LIMIT: "Exception",
    Status.KILLED: "Exception",
    Status.SANDBOX_ERROR: "Exception",
}

#: Statuses the executor caused, not the program: run again, never counted in pass@k; a study stops if they persist.
INFRASTRUCTURE = frozenset({Status.SANDBOX_ERROR})
