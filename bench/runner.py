"""The run: every workload, three times, servers interleaved (A B C A B C), within a time budget.

Each measurement gets a fresh server process (pinned to the server CPU) so that memory figures
start from the same idle state and no run inherits another's garbage; the slow-reader part of W3
starts all its servers at once instead (see ``workloads/download.py``).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType

from bench import machine
from bench.lineup import LINEUPS, SERVERS
from bench.procs import SERVER_CPU, ForeignLoad, Launched, free_port, pinned, wait_ready
from bench.profiles import Profile
from bench.workloads import background, download, held, hello, upload, websocket
from bench.workloads.common import Target, WorkloadError, shell

WORKLOADS: dict[str, ModuleType] = {
    "W1": hello,
    "W2": held,
    "W3": download,
    "W4": upload,
    "W5": websocket,
    "W6": background,
}
ORDER = ["W1", "W2", "W3", "W3-slow", "W4", "W5", "W6"]
#: The machine is shared: a run during which other processes used more than this share of a core
#: is measured again, up to the profile's ``disturbed_retries`` times (the last attempt is kept).
DISTURBED_PCT = 25.0


@dataclass
class Cell:
    """All runs of one server in one workload."""

    runs: list[dict[str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    disturbed: int = 0  # runs discarded because other processes loaded the machine


@dataclass
class Results:
    profile: str
    reps: int
    retries: int
    started: float
    finished: float = 0.0
    machine: list[tuple[str, str]] = field(default_factory=list)
    commands: dict[str, str] = field(default_factory=dict)
    servers: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    cells: dict[str, dict[str, Cell]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def cell(self, workload: str, server: str) -> Cell:
        return self.cells.setdefault(workload, {}).setdefault(server, Cell())

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> Results:
        data = json.loads(path.read_text())
        cells = {
            workload: {server: Cell(**cell) for server, cell in by_server.items()}
            for workload, by_server in data.pop("cells").items()
        }
        machine = [(name, value) for name, value in data.pop("machine")]
        return cls(cells=cells, machine=machine, **data)


class Runner:
    def __init__(
        self, profile: Profile, workloads: list[str], servers: list[str], work: Path, say: Callable[[str], None] = print
    ) -> None:
        self.profile = profile
        self.workloads = [w for w in ORDER if w in workloads]
        self.servers = servers
        self.work = work
        self.say = say
        self.results = Results(
            profile=profile.name,
            reps=profile.reps,
            retries=profile.disturbed_retries,
            started=time.time(),
            machine=machine.describe(),
        )
        self.began = time.monotonic()
        self.deadline = self.began + profile.budget_seconds
        self.planned = self.remaining = 0

    def run(self) -> Results:
        self._check_servers()
        plan = [
            (w, [s for s in LINEUPS[w] if s in self.servers and s not in self.results.missing]) for w in self.workloads
        ]
        self.planned = self.remaining = self.profile.reps * sum(
            1 if workload == "W3-slow" else len(lineup) for workload, lineup in plan
        )
        for workload, lineup in plan:
            self.results.commands[workload] = self._describe(workload)
            for rep in range(1, self.profile.reps + 1):
                if workload == "W3-slow":
                    self._slow_readers(lineup, rep)
                    self.remaining -= 1
                else:
                    for server in lineup:
                        self._measure(workload, server, rep)
                        self.remaining -= 1
        self.results.finished = time.time()
        return self.results

    def _can_redo(self) -> bool:
        """Whether the budget still covers the planned runs at the pace so far, plus a redo."""
        done = self.planned - self.remaining
        if not done:
            return True
        pace = (time.monotonic() - self.began) / done
        return time.monotonic() + pace * (self.remaining + 1) < self.deadline

    def _check_servers(self) -> None:
        for name in self.servers:
            server = SERVERS[name]
            self.results.servers[name] = shell(pinned(SERVER_CPU, server.argv("$PORT")))
            reason = server.missing()
            if reason:
                self.results.missing[name] = reason
                self.say(f"not measured: {name}: {reason}")

    def _describe(self, workload: str) -> str:
        if workload == "W3-slow":
            return download.describe_slow(self.profile)
        description: str = WORKLOADS[workload].describe(self.profile)
        return description

    def _out_of_time(self, what: str) -> bool:
        if time.monotonic() < self.deadline:
            return False
        self.results.skipped.append(what)
        self.say(f"skipped (time budget spent): {what}")
        return True

    def _start(self, server: str, label: str) -> Target:
        port = free_port()
        argv = pinned(SERVER_CPU, SERVERS[server].argv(port))
        process = Launched(argv, self.work / "logs" / f"{label}.log", cwd=Path.cwd())
        try:
            wait_ready(process, port, time.monotonic() + 30)
        except RuntimeError:
            process.stop()
            raise
        return Target(server, port, process)

    def _measure(self, workload: str, server: str, rep: int) -> None:
        """One run; measured again when other load disturbed it (see DISTURBED_PCT) and the
        budget allows, keeping the least disturbed attempt."""
        cell = self.results.cell(workload, server)
        attempts: list[dict[str, float]] = []
        for attempt in range(self.profile.disturbed_retries + 1):
            label = f"{workload}-{server}-{rep}" + (f"-again{attempt}" if attempt else "")
            if attempt and not self._can_redo():
                break
            if self._out_of_time(label):
                break
            figures = self._attempt(workload, server, label, cell)
            if figures is None:
                break
            attempts.append(figures)
            if figures["foreign_cpu_pct"] <= DISTURBED_PCT:
                break
            self.say(f"[{label}] disturbed by other processes")
        if attempts:
            cell.runs.append(min(attempts, key=lambda figures: figures["foreign_cpu_pct"]))
            cell.disturbed += len(attempts) - 1

    def _attempt(self, workload: str, server: str, label: str, cell: Cell) -> dict[str, float] | None:
        try:
            target = self._start(server, label)
        except RuntimeError as exc:
            cell.errors.append(str(exc))
            self.say(f"[{label}] did not start: {exc}")
            return None
        try:
            foreign = ForeignLoad(target.process.pid)
            figures = WORKLOADS[workload].measure(target, self.profile)
            figures["foreign_cpu_pct"] = foreign.percent()
        except WorkloadError as exc:
            cell.errors.append(str(exc))
            self.say(f"[{label}] failed: {exc}")
            return None
        finally:
            target.process.stop()
        shown = ", ".join(
            f"{c.key}={figures.get(c.key, float('nan')):.{c.digits}f}" for c in WORKLOADS[workload].COLUMNS
        )
        self.say(f"[{label}] {shown}, other load {figures['foreign_cpu_pct']:.0f}% of a core")
        return figures

    def _slow_readers(self, lineup: list[str], rep: int) -> None:
        label = f"W3-slow-rep{rep}"
        if self._out_of_time(label):
            return
        targets: list[tuple[Target, int]] = []
        try:
            for server in lineup:
                try:
                    target = self._start(server, f"W3-slow-{server}-{rep}")
                except RuntimeError as exc:
                    self.results.cell("W3-slow", server).errors.append(str(exc))
                    continue
                targets.append((target, download.slow_start(target)))
            self._read_slowly(targets, rep)
        finally:
            for target, _ in targets:
                target.process.stop()

    def _read_slowly(self, targets: list[tuple[Target, int]], rep: int) -> None:
        clients = [
            Launched(
                download.slow_argv(self.profile, target.port),
                self.work / "logs" / f"W3-slow-client-{target.name}-{rep}.log",
                cwd=Path.cwd(),
            )
            for target, _ in targets
        ]
        limit = time.monotonic() + self.profile.slow_seconds + 60
        for client, (target, idle) in zip(clients, targets, strict=True):
            cell = self.results.cell("W3-slow", target.name)
            try:
                client.process.wait(max(1.0, limit - time.monotonic()))
                if client.process.returncode:
                    raise WorkloadError(f"client failed: {client.tail(1)}")
                result = json.loads(client.log.read_text().strip().splitlines()[-1])
            except (WorkloadError, ValueError, IndexError, subprocess.TimeoutExpired) as exc:
                cell.errors.append(str(exc))
                self.say(f"[W3-slow-{target.name}-{rep}] failed: {exc}")
                continue
            finally:
                client.stop()
            figures = download.slow_finish(target, idle, result)
            cell.runs.append(figures)
            self.say(f"[W3-slow-{target.name}-{rep}] rss_growth_mb={figures['rss_growth_mb']:.1f}")
