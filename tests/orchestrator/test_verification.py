"""A verdict the executor caused stops the study with an error naming where, and never counts as the model's."""

from __future__ import annotations

import pytest

from codequant.payloads import ExecuteResult, ExecutionOutcome
from codequant_orchestrator.verification import InfrastructureFailure, check_infrastructure


def _outcome(status: str, stderr: str = "") -> ExecutionOutcome:
    return ExecutionOutcome(
        completion_key="c" * 40,
        execution_key="e" * 40,
        language="python",
        status=status,
        passed=status == "OK",
        stderr=stderr,
    )


def test_only_the_executor_s_own_failures_stop_the_study() -> None:
    check_infrastructure(ExecuteResult(outcomes=[_outcome("OK"), _outcome("Timeout"), _outcome("Failure")]), "m/v")
    lost = ExecuteResult(
        outcomes=[
            _outcome("OK"),
            _outcome("SandboxError", "codequant sandbox error: [Errno 28] No space left on device\n"),
        ]
    )
    with pytest.raises(InfrastructureFailure) as raised:
        check_infrastructure(lost, "tiny/fp32 on humaneval")
    message = str(raised.value)
    assert message.startswith("tiny/fp32 on humaneval: the executor failed on 1 program(s) after retries")
    assert "No space left on device" in message and "the study stops" in message
    assert raised.value.exit_code != 2  # not the user's input
