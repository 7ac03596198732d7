# -*- test-case-name: tests.deploy.test_workers -*-
"""``hybrid serve --workers N``: one supervisor, N worker processes, one set of listening sockets.

The supervisor binds every ``--listen`` endpoint once, stops reading from it, and starts N
ordinary ``hybrid serve`` processes that inherit the sockets the way systemd passes them
(file descriptors 3, 4, ... with ``LISTEN_FDS``/``LISTEN_FDNAMES``/``LISTEN_PID``) and listen
with Twisted's stock ``systemd:`` endpoint (``adoptStreamPort`` underneath). So a worker is
exactly what runs under systemd socket activation, and the two are tested together.

Why one shared socket and not ``SO_REUSEPORT`` per worker (``bench/balance.py`` measures both;
figures in the README's "Deploying" section): for new connections both spread evenly, and for
a burst of long-lived keep-alive connections ``SO_REUSEPORT`` spreads better, but a shared
socket keeps the accept queue when a worker dies or drains (with ``SO_REUSEPORT`` the
connections queued on a closing worker's socket are reset), binds privileged ports and port 0
once, and works for systemd-passed sockets as well.

The supervisor restarts a worker that exits (after a back-off if it keeps dying at once),
forwards SIGTERM/SIGINT to every worker as SIGTERM for a graceful drain, and exits when they
have all exited (SIGKILL after ``stop_timeout``). The workers merge their ``/stats`` and mark
their responses (``app.worker``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.application.service import Service
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import (
    AdoptedStreamServerEndpoint,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    serverFromString,
)
from twisted.internet.error import ProcessTerminated
from twisted.internet.interfaces import IDelayedCall, IListeningPort, IProcessTransport
from twisted.internet.protocol import Factory, ProcessProtocol, Protocol
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from twisted.python.failure import Failure

from app.limits import Limits, with_backlog
from app.options import ServeOptions

_log = Logger(namespace="hybrid.workers")

#: Endpoint types whose listening socket a worker can adopt as is. TLS (``ssl:``) is not among
#: them: its encryption lives in the listening process, not the socket (terminate it in nginx).
SHAREABLE = (TCP4ServerEndpoint, TCP6ServerEndpoint, AdoptedStreamServerEndpoint)

#: ``systemd:domain=...`` names of the address families a worker can adopt. Not AF_UNIX: a
#: Twisted port adopting a unix socket unlinks its path when it stops listening, so the first
#: worker to stop or restart would take the socket file away from the others.
DOMAINS = {socket.AF_INET: "INET", socket.AF_INET6: "INET6"}

#: Seconds a stopping worker gets beyond its own bounds before the supervisor kills it.
STOP_SLACK = 5.0


def stop_timeout(limits: Limits) -> float:
    """How long a worker has to stop after SIGTERM before the supervisor kills it.

    Its own bounds (``--drain-timeout``, then ``--shutdown-timeout``) plus ``STOP_SLACK``: 95 s
    by default, below the stop timeouts in deploy/ (100 s), so that the supervisor, not systemd
    or Docker, decides.
    """
    return limits.drain_timeout + limits.shutdown_timeout + STOP_SLACK


#: A worker that exits sooner than this after starting is restarted after a growing back-off
#: (1, 2, 4 ... 30 s), so a worker that cannot start does not spin the CPU.
MIN_UPTIME = 10.0

#: ``hybrid serve``'s exit status for options it cannot serve (a bad --mount, say): restarting
#: the worker cannot help, so the supervisor stops with the same status.
UNSERVABLE = 2
MAX_BACKOFF = 30.0

#: The exec wrapper a worker starts in: it makes the worker's pid the ``LISTEN_PID`` (systemd's
#: contract: the descriptors are for that process only), so the worker itself needs no code for
#: it, and gives it a session of its own, so that only the supervisor signals it: a Ctrl-C or
#: ``timeout`` signalling the whole process group would otherwise reach the workers twice.
_EXEC_WRAPPER = (
    "import os, sys; os.setsid(); os.environ['LISTEN_PID'] = str(os.getpid()); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


class WorkersError(Exception):
    """``--workers`` cannot be served as asked; the message is meant for the person who typed it."""


def worker_argv(serve_argv: Sequence[str]) -> list[str]:
    """``serve_argv`` without ``--workers`` and ``--listen``: what every worker runs besides.

    Every other option reaches the workers unchanged, including ones added after this module.
    """
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--workers")
    parser.add_argument("--listen", action="append")
    _, rest = parser.parse_known_args(list(serve_argv))
    return rest


class _Idle(Protocol):
    """Never used: the supervisor stops reading its ports before any connection is accepted."""


def bind(reactor: Any, listen: Sequence[str], backlog: int) -> list[IListeningPort]:
    """Listen on every endpoint and stop accepting at once: the sockets are for the workers.

    Nothing is accepted in between: ``listen`` returns before the reactor looks at the socket.
    Each gets ``backlog`` unless its endpoint string says otherwise (the workers adopt the
    sockets as they are).
    """
    ports: list[IListeningPort] = []
    for description in listen:
        try:
            endpoint = serverFromString(reactor, with_backlog(description, backlog))
        except Exception as e:
            raise WorkersError(f"--listen {description}: {e}") from None
        if not isinstance(endpoint, SHAREABLE):
            raise WorkersError(
                f"--listen {description}: --workers can share tcp:, tcp6: and systemd: TCP "
                "endpoints (terminate TLS in front: deploy/nginx/)"
            )
        results: list[Any] = []
        factory = Factory.forProtocol(_Idle)
        factory.noisy = False
        endpoint.listen(factory).addBoth(results.append)
        if isinstance(results[0], Failure):
            raise WorkersError(f"--listen {description}: {results[0].getErrorMessage()}")
        port = results[0]
        if port.addressFamily not in DOMAINS:
            port.stopListening()
            raise WorkersError(f"--listen {description}: --workers can share TCP sockets only")
        port.stopReading()
        # Twisted shuts a socket down before closing it, which on a listening socket shared
        # with the workers would stop it for all of them at once; it skips that for adopted
        # sockets, and this one is adopted by every worker. (A private attribute: if it goes,
        # workers log failed accepts on SIGTERM, which tests.deploy.test_workers catches.)
        port._shouldShutdown = False
        ports.append(port)
    return ports


def _address(port: IListeningPort) -> str:
    host = port.getHost()
    if isinstance(host, IPv4Address | IPv6Address):
        name = f"[{host.host}]" if ":" in host.host else host.host
        return f"http://{name}:{host.port}"
    return str(host)


class _WorkerProtocol(ProcessProtocol):
    """Tells the pool when its worker exits; the worker's output goes straight to ours."""

    def __init__(self, pool: WorkerPool, worker_id: int) -> None:
        self._pool = pool
        self._id = worker_id

    def processEnded(self, reason: Failure) -> None:
        self._pool.worker_ended(self._id, reason)


def _how_it_ended(reason: Failure) -> str:
    if reason.check(ProcessTerminated):
        if reason.value.signal is not None:
            return f"was killed by signal {reason.value.signal}"
        return f"exited with status {reason.value.exitCode}"
    return "exited normally"


class WorkerPool(Service):
    """Keeps ``count`` workers running on the shared ``ports`` while the service runs.

    :param argv: the worker's command line after the Python executable, without the wrapper.
    :param env: the worker's environment, without ``HYBRID_WORKER_ID`` and the ``LISTEN_*``
        variables, which this sets.
    :param on_unservable: called when a worker exits with ``UNSERVABLE``; it is not restarted.
    """

    def __init__(
        self,
        reactor: Any,
        ports: Sequence[IListeningPort],
        argv: Sequence[str],
        env: Mapping[str, str],
        count: int,
        stop_timeout: float,
        on_unservable: Callable[[], None],
    ) -> None:
        self._reactor = reactor
        self._stop_timeout = stop_timeout
        self._on_unservable = on_unservable
        self._ports = list(ports)
        self._argv = [sys.executable, "-c", _EXEC_WRAPPER, *argv]
        names = [f"hybrid{i}" for i in range(len(ports))]
        self._env = {
            **{k: v for k, v in env.items() if not k.startswith("LISTEN_")},
            "LISTEN_FDS": str(len(ports)),
            "LISTEN_FDNAMES": ":".join(names),
        }
        # systemd's numbering: the first passed descriptor is 3.
        self._child_fds: dict[int, int | str] = {0: 0, 1: 1, 2: 2}
        for i, port in enumerate(ports):
            self._child_fds[3 + i] = port.fileno()  # type: ignore[attr-defined]
        self._count = count
        self._processes: dict[int, IProcessTransport] = {}
        self._pids: dict[int, int] = {}
        self._started_at: dict[int, float] = {}
        self._quick_exits: dict[int, int] = {}
        self._restarts: dict[int, IDelayedCall] = {}
        self._all_exited: list[Deferred[None]] = []

    def startService(self) -> None:
        super().startService()
        for worker_id in range(1, self._count + 1):
            self._spawn(worker_id)

    def _spawn(self, worker_id: int) -> None:
        self._restarts.pop(worker_id, None)
        env = {**self._env, "HYBRID_WORKER_ID": str(worker_id)}
        process = self._reactor.spawnProcess(
            _WorkerProtocol(self, worker_id), self._argv[0], self._argv, env=env, childFDs=self._child_fds
        )
        self._processes[worker_id] = process
        self._pids[worker_id] = process.pid
        self._started_at[worker_id] = self._reactor.seconds()
        _log.info("worker {id} started (pid {pid})", id=worker_id, pid=process.pid)

    def worker_ended(self, worker_id: int, reason: Failure) -> None:
        """A worker exited: restart it while running, or count it out while stopping."""
        del self._processes[worker_id]
        pid = self._pids.pop(worker_id)
        how = _how_it_ended(reason)
        if not self.running:
            _log.info("worker {id} (pid {pid}) {how}", id=worker_id, pid=pid, how=how)
            if not self._processes:
                waiters, self._all_exited = self._all_exited, []
                for d in waiters:
                    d.callback(None)
            return
        if reason.check(ProcessTerminated) and reason.value.exitCode == UNSERVABLE:
            _log.critical("worker {id} (pid {pid}) cannot serve these options: stopping", id=worker_id, pid=pid)
            self._on_unservable()
            return
        lived = self._reactor.seconds() - self._started_at[worker_id]
        quick = self._quick_exits.get(worker_id, 0) + 1 if lived < MIN_UPTIME else 0
        self._quick_exits[worker_id] = quick
        delay = min(2.0 ** (quick - 1), MAX_BACKOFF) if quick else 0.0
        _log.warn(
            "worker {id} (pid {pid}) {how}; restarting it in {delay:g} s", id=worker_id, pid=pid, how=how, delay=delay
        )
        self._restarts[worker_id] = self._reactor.callLater(delay, self._spawn, worker_id)

    def stopService(self) -> Deferred[None]:
        """SIGTERM every worker, close our copies of the sockets, fire when all have exited."""
        super().stopService()
        for call in self._restarts.values():
            call.cancel()
        self._restarts.clear()
        for process in self._processes.values():
            process.signalProcess("TERM")
        # The kernel closes a listening socket when its last descriptor closes: ours go now,
        # the workers' when they start draining, so new connections are refused from then on.
        for port in self._ports:
            port.stopListening()
        if not self._processes:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._all_exited.append(d)
        kill = self._reactor.callLater(self._stop_timeout, self._kill_remaining)
        d.addBoth(lambda result: kill.cancel() if kill.active() else None)
        return d

    def _kill_remaining(self) -> None:
        for worker_id, process in self._processes.items():
            _log.warn(
                "worker {id} (pid {pid}) still draining after {t:g} s: killing it",
                id=worker_id,
                pid=self._pids[worker_id],
                t=self._stop_timeout,
            )
            process.signalProcess("KILL")


def supervise(options: ServeOptions, count: int, serve_argv: Sequence[str]) -> int:
    """Run ``count`` workers of ``hybrid serve`` on ``options.listen`` until SIGTERM or SIGINT.

    ``serve_argv`` is the command line as typed (``serve ...``); the workers get it without
    ``--workers`` and ``--listen``. Returns the exit status: 2 if the options cannot be served
    (a worker exited with status 2, which no restart can fix), else 0.
    """
    from twisted.internet import reactor

    if count < 1:
        print("hybrid serve: error: --workers must be at least 1", file=sys.stderr)
        return UNSERVABLE
    try:
        ports = bind(reactor, options.listen, options.backlog())
    except WorkersError as e:
        print(f"hybrid serve: error: {e}", file=sys.stderr)
        return UNSERVABLE
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)], redirectStandardIO=False)
    # Private to this pool: the workers find each other here to merge /stats (app.worker).
    rundir = tempfile.mkdtemp(prefix="hybrid-workers-")
    listens = [f"systemd:domain={DOMAINS[p.addressFamily]}:index={i}" for i, p in enumerate(ports)]  # type: ignore[attr-defined]
    argv = ["-m", "app", *worker_argv(serve_argv)]
    for description in listens:
        argv += ["--listen", description]
    env = {**os.environ, "HYBRID_WORKERS_DIR": rundir, "HYBRID_WORKERS": str(count)}
    env["HYBRID_SUPERVISOR_PID"] = str(os.getpid())  # app.worker's watch of its supervisor
    unservable: list[bool] = []

    def stop_unservable() -> None:
        if not unservable:  # every worker may report it
            unservable.append(True)
            reactor.stop()

    pool = WorkerPool(reactor, ports, argv, env, count, stop_timeout(options), stop_unservable)
    kind = type(reactor)
    _log.info(
        "hybrid serving on {addresses} with {reactor} (supervisor of {count} workers)",
        addresses=" ".join(_address(p) for p in ports),
        reactor=f"{kind.__module__}.{kind.__qualname__}",
        count=count,
    )
    reactor.callWhenRunning(pool.startService)
    reactor.addSystemEventTrigger("before", "shutdown", pool.stopService)
    try:
        reactor.run()
    finally:
        shutil.rmtree(rundir, ignore_errors=True)
    return UNSERVABLE if unservable else 0
