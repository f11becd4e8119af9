"""Collecting failed checks, so one run reports every problem instead of stopping at the first."""

from __future__ import annotations

import json
from typing import Any


class FirstFailure(Exception):
    """Raised by a fail-fast Failures at the first failed check."""


class Failures:
    """Every failed check of the run, as `where: what` messages; with `fail_fast` (the mutation
    pass, which only needs to know that some check fails) it stops at the first one."""

    def __init__(self, fail_fast: bool = False) -> None:
        self.messages: list[str] = []
        self.fail_fast = fail_fast

    @property
    def count(self) -> int:
        return len(self.messages)

    def fail(self, where: str, what: str) -> None:
        self.messages.append(f"{where}: {what}")
        if self.fail_fast:
            raise FirstFailure(self.messages[-1])

    def check(self, condition: bool, where: str, what: str) -> bool:
        if not condition:
            self.fail(where, what)
        return condition

    def scoped(self, where: str) -> Scope:
        return Scope(self, where)


class Scope:
    """Checks reported under one heading (a scenario or an error case)."""

    def __init__(self, failures: Failures, where: str) -> None:
        self.failures = failures
        self.where = where

    def fail(self, what: str) -> None:
        self.failures.fail(self.where, what)

    def check(self, condition: bool, what: str) -> bool:
        return self.failures.check(condition, self.where, what)

    def equal(self, actual: Any, expected: Any, what: str) -> bool:
        if actual == expected:
            return True
        if isinstance(actual, dict) and isinstance(expected, dict):
            self.fail(f"{what} differs: {dict_diff(actual, expected)}")
        else:
            self.fail(f"{what}: expected {show(expected)}, got {show(actual)}")
        return False


def dict_diff(actual: dict, expected: dict) -> str:
    """Only the keys that differ, so a long object does not hide the one wrong field."""
    parts = []
    for key in sorted(set(actual) | set(expected), key=str):
        if key not in actual:
            parts.append(f"{key} missing (expected {show(expected[key])})")
        elif key not in expected:
            parts.append(f"{key} unexpected ({show(actual[key])})")
        elif actual[key] != expected[key]:
            parts.append(f"{key} is {show(actual[key])}, expected {show(expected[key])}")
    return "; ".join(parts)


def show(value: Any) -> str:
    """Compact, stable text of a value for failure messages."""
    try:
        return json.dumps(value, sort_keys=True)
    except TypeError:
        return repr(value)
