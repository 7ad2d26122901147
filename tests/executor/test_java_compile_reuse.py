"""A Java compile server reuses one javac context across programs: nothing one program declares reaches the next."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from codequant_executor.pool import ExecutorPool
from codequant_executor.status import Status
from tests.executor.conftest import FAST

MAIN = "class Main {{ public static void main(String[] a) {{ {body} }} }}\n"
HELPER = "class Helper {{ static int f() {{ return {value}; }} }}\n"
#: javatuples' Pair shadowed by the program's own source (a program may declare any package but java.*).
SHADOW_PAIR = "package org.javatuples;\nclass Pair { static int with(int a, int b) { return 42; } }\n" + MAIN.format(
    body="assert Pair.with(1, 2) == 42;"
)
USES_PAIR = "Pair<Integer, Integer> p = Pair.with(1, 2); assert p.getValue1() == 2;"
REAL_PAIR = "import org.javatuples.Pair;\n" + MAIN.format(body=USES_PAIR)
STAR_PAIR = "import org.javatuples.*;\n" + MAIN.format(body=USES_PAIR)


@pytest.fixture(scope="module")
def one_server() -> Iterator[ExecutorPool]:
    """One worker, so one compile server (and one javac context) compiles every program in turn."""
    pool = ExecutorPool(workers=1)
    yield pool
    pool.close()


def run(pool: ExecutorPool, program: str) -> Status:
    return pool.run_one(program, "java", FAST).status


def test_a_class_declared_by_one_program_is_gone_for_the_next(one_server: ExecutorPool) -> None:
    assert run(one_server, HELPER.format(value=1) + MAIN.format(body="assert Helper.f() == 1;")) == Status.OK
    assert run(one_server, MAIN.format(body="assert Helper.f() == 1;")) == Status.SYNTAX_ERROR
    assert run(one_server, HELPER.format(value=2) + MAIN.format(body="assert Helper.f() == 2;")) == Status.OK
    assert run(one_server, HELPER.format(value=3) + MAIN.format(body="assert Helper.f() == 2;")) == Status.FAILURE


def test_a_library_class_shadowed_by_one_program_is_the_library_s_again_for_the_next(
    one_server: ExecutorPool,
) -> None:
    assert run(one_server, SHADOW_PAIR) != Status.SYNTAX_ERROR  # it compiles (its main class is in a package)
    assert run(one_server, REAL_PAIR) == Status.OK
    assert run(one_server, STAR_PAIR) == Status.OK
    unnamed = "import org.javatuples.*;\n" + SHADOW_PAIR.split("\n", 1)[1]  # Pair in the unnamed package
    assert run(one_server, unnamed) == Status.OK
    assert run(one_server, STAR_PAIR) == Status.OK
    assert run(one_server, "class String { }\n" + MAIN.format(body="")) == Status.EXCEPTION  # no main(String[])
    assert run(one_server, MAIN.format(body='String s = "x"; assert s.length() == 1;')) == Status.OK


def test_a_program_declaring_a_java_package_does_not_spoil_the_next(one_server: ExecutorPool) -> None:
    hostile = "package java.util;\npublic class List { }\nclass Main { public static void main(String[] a) { } }\n"
    assert run(one_server, hostile) == Status.SYNTAX_ERROR
    uses_list = "import java.util.*;\n" + MAIN.format(body="List<Long> l = List.of(1L); assert l.size() == 1;")
    assert run(one_server, uses_list) == Status.OK
    assert run(one_server, REAL_PAIR) == Status.OK
