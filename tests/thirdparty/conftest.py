"""On failure, show the log of the server the test was talking to (its tracebacks are there)."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.thirdparty.fronts import Front

LOG_TAIL = 8000


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    front = getattr(item, "funcargs", {}).get("front")
    if report.failed and isinstance(front, Front):
        report.sections.append((f"{front.placement} server log", front.log()[-LOG_TAIL:]))
    return report
