"""Free ports on 127.0.0.1 that no other cdc-spec process is about to bind.

A port found free is not bound until its service starts, seconds later (a JVM, after the
broker). Two stacks starting at once (xdist workers, parallel runs) could pick the same one,
and a client's outgoing connection could take one from the ephemeral range meanwhile. So ports
are picked outside the kernel's ephemeral range and reserved for :data:`HOLD_SECONDS` in a
file every cdc-spec process on the machine reads, under a lock.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import port_for
from filelock import FileLock

__all__ = ["HOLD_SECONDS", "reserve_ports"]

HOLD_SECONDS = 600.0
"""How long a handed-out port is kept from others (its service binds it well before)."""
RESERVATIONS = Path("/tmp/cdc-spec-ports.json")
EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_range() -> range:
    """The ports the kernel gives outgoing connections (32768-60999 when unknown)."""
    try:
        low, high = (int(part) for part in EPHEMERAL.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


@functools.cache
def _candidates() -> frozenset[int]:
    """port_for's good ports (unassigned by IANA) outside the ephemeral range."""
    return frozenset(port_for.available_good_ports() - set(ephemeral_range()))


def reserve_ports(count: int, *, path: Path = RESERVATIONS) -> list[int]:
    """``count`` distinct free ports, none reserved by another cdc-spec process in the last
    :data:`HOLD_SECONDS`, none in the ephemeral range; reserved for that long from now."""
    candidates = _candidates()
    with FileLock(f"{path}.lock"):
        now = time.time()
        try:
            held = {int(p): t for p, t in json.loads(path.read_text()).items() if t > now}
        except (OSError, ValueError, AttributeError):
            held = {}
        ports: list[int] = []
        while len(ports) < count:
            port = port_for.select_random(set(candidates), exclude_ports={*held, *ports})
            ports.append(port)
        held.update(dict.fromkeys(ports, now + HOLD_SECONDS))
        path.write_text(json.dumps({str(p): t for p, t in held.items()}))
    return ports
