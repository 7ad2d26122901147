"""EvalPlus's tests import numpy only to compare floats; the sandboxed interpreter has no third-party packages.

``without_numpy`` replaces the ``import numpy as np`` line of a test with a pure-Python ``np`` that has what
those tests use: ``np.allclose`` and ``np.testing.assert_allclose`` (numpy's formula,
``|actual - desired| <= atol + rtol * |desired|`` elementwise over nested lists and tuples, NaN never close)
and ``np.ndarray``, ``np.float32``, ``np.float64`` for their type checks (no value of a test is an array).
"""

from __future__ import annotations

import re

_IMPORT = re.compile(r"^import numpy as np[ \t]*$", re.MULTILINE)

STANDIN = '''class np:  # codequant: stand-in for the numpy calls of EvalPlus tests (the sandbox has no numpy)
    class ndarray:
        pass

    float32 = float64 = float

    @staticmethod
    def _close(actual, desired, rtol, atol):
        if isinstance(actual, (list, tuple)) and isinstance(desired, (list, tuple)):
            return len(actual) == len(desired) and all(np._close(a, d, rtol, atol) for a, d in zip(actual, desired))
        try:
            return actual == desired or abs(actual - desired) <= atol + rtol * abs(desired)
        except TypeError:
            return False

    @staticmethod
    def allclose(a, b, rtol=1e-05, atol=1e-08):
        return np._close(a, b, rtol, atol)

    class testing:
        @staticmethod
        def assert_allclose(actual, desired, rtol=1e-07, atol=0):
            assert np._close(actual, desired, rtol, atol), f"not close: {actual!r} != {desired!r}"'''


def without_numpy(test: str) -> tuple[str, bool]:
    """The test with its numpy import replaced by the stand-in, and whether it had one."""
    replaced, count = _IMPORT.subn(lambda _: STANDIN, test, count=1)
    return replaced, bool(count)
