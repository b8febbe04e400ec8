"""Fixtures shared by every test: the fake platform that ``qfrun`` opens instead of a real one, a local
platform home of each test's own (so tests run in parallel under pytest-xdist), and ``--cpu-durations``.

``--cpu-durations=N`` lists the N tests that cost the most CPU (user + system, of the test process and of the
child processes it waited for): wall time is noisy on a loaded machine, CPU time is what two cores pay for.
"""

from __future__ import annotations

import dataclasses
import resource
from collections.abc import Generator, Iterator

import pytest

from runner.platform.registry import PLATFORM_KINDS
from runner.testing.fake_platform import ClosingFake
from runner.testing.pipelines import FAST


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> ClosingFake:
    """What every platform the CLI opens is, in this test: one fake, polled without waiting."""
    fake = ClosingFake()
    monkeypatch.setattr("runner.run.connect.open_platform", lambda *args, **kwargs: fake)
    for name, kind in list(PLATFORM_KINDS.items()):
        monkeypatch.setitem(PLATFORM_KINDS, name, dataclasses.replace(kind, poll=FAST))
    monkeypatch.delenv("CI", raising=False)
    return fake


@pytest.fixture(autouse=True)
def _own_platform_home(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test falls back to the user's own local platform (``<user data dir>/qfrun/local``), which tests
    running side by side would share: QFRUN_HOME is a fresh folder unless the test sets its own."""
    monkeypatch.setenv("QFRUN_HOME", str(tmp_path_factory.mktemp("qfrun-home")))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cpu-durations",
        type=int,
        default=0,
        metavar="N",
        help="list the N tests that used the most CPU time (user + system, with waited-for children)",
    )


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


_PHASE_START = pytest.StashKey[float]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # CPU of this phase (setup, call or teardown) rides on the report, so that xdist's workers send it home
    start = item.stash.get(_PHASE_START, None)
    if start is not None:
        report.user_properties.append(("cpu_s", _cpu_seconds() - start))
    item.stash[_PHASE_START] = _cpu_seconds()
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    item.stash[_PHASE_START] = _cpu_seconds()
    return (yield)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    count = config.getoption("--cpu-durations")
    if not count:
        return
    phases: list[tuple[float, str, str]] = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if isinstance(report, pytest.TestReport):
                cpu = dict(report.user_properties).get("cpu_s")
                if isinstance(cpu, float):
                    phases.append((cpu, report.when or "", report.nodeid))
    total = sum(cpu for cpu, _, _ in phases)
    terminalreporter.write_sep(
        "=", f"{count} most CPU-costly phases of {len(phases)} ({total:.1f} s CPU in all)"
    )
    for cpu, when, nodeid in sorted(phases, reverse=True)[:count]:
        terminalreporter.write_line(f"{cpu:8.2f}s cpu {when:<8} {nodeid}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files that hold slow tests first, each file's tests together and in their order, then the rest:
    under pytest-xdist the longest tests start at once and the many quick ones fill the workers' last
    minutes, instead of one slow test running alone at the end. A file stays whole, on one worker
    (``--dist loadfile`` in setup.cfg): split, its module-scoped fixtures (a served platform, a loaded model)
    would be set up again for its second part."""
    slow_files = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow_files)
