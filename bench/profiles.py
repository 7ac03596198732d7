"""Run sizes: the full run (the issue's figures) and the QUICK smoke run.

The full run is planned to fit about 20 minutes on a 2-core machine, QUICK about 2-3 minutes;
every figure can be overridden from the command line (``python -m bench --help``).
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1 << 20


@dataclass(frozen=True)
class Profile:
    name: str
    reps: int
    # W1 hello
    hello_connections: int
    hello_warmup: int  # wrk takes whole seconds
    hello_seconds: int
    # W2 the tutorial at scale
    held_connections: int
    held_delay: float
    held_rounds: int
    held_ramp_rate: float
    # W3 download, W4 upload
    transfer_bytes: int
    slow_rate: float
    slow_seconds: float
    # W5 WebSocket echo
    ws_connections: int
    ws_message: int
    ws_warmup: float
    ws_seconds: float
    # a run disturbed by other processes is measured again at most this many times
    disturbed_retries: int
    # the whole run stops starting new measurements after this long
    budget_seconds: float


FULL = Profile(
    name="full",
    reps=3,
    hello_connections=64,
    hello_warmup=2,
    hello_seconds=4,
    # The issues' load: 5,000 connections each holding a 1-s request, for 10 s.
    held_connections=5_000,
    held_delay=1.0,
    held_rounds=10,
    held_ramp_rate=2500.0,
    transfer_bytes=1024 * MIB,
    slow_rate=1e6,
    slow_seconds=10.0,
    ws_connections=100,
    ws_message=64,
    ws_warmup=1.0,
    ws_seconds=3.0,
    disturbed_retries=2,
    budget_seconds=30 * 60,
)

QUICK = Profile(
    name="quick",
    reps=1,
    hello_connections=64,
    hello_warmup=1,
    hello_seconds=2,
    held_connections=500,
    held_delay=1.0,
    held_rounds=2,
    held_ramp_rate=2500.0,
    transfer_bytes=128 * MIB,
    slow_rate=1e6,
    slow_seconds=3.0,
    ws_connections=100,
    ws_message=64,
    ws_warmup=0.5,
    ws_seconds=1.5,
    disturbed_retries=0,
    budget_seconds=5 * 60,
)

PROFILES = {profile.name: profile for profile in (FULL, QUICK)}
