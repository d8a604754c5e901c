"""Fault injection and call counting for the simulator."""

import collections
import dataclasses
import threading
import time


class DropConnection(Exception):
    """Close the client's connection without answering."""


@dataclasses.dataclass
class _FailRule:
    method: str
    nth: int
    error: list


class Faults:
    """Per-call latency, the Nth call failing, dropped connections."""

    def __init__(self, latency_ms=0):
        self.latency_ms = latency_ms
        self.calls = collections.Counter()
        self._fail = []
        self._drop = collections.Counter()
        self._lock = threading.Lock()

    def fail_call(self, method, nth, code, *params):
        """Make the ``nth`` call (from now, 1-based) of ``method`` fail."""
        with self._lock:
            self._fail.append(_FailRule(
                method, self.calls[method] + nth, [code, *params]))

    def drop_connection(self, method, times=1):
        """Drop the connection on the next ``times`` calls of ``method``."""
        with self._lock:
            self._drop[method] += times

    def on_call(self, method):
        """Count the call, sleep, then drop or return an injected error."""
        with self._lock:
            self.calls[method] += 1
            count = self.calls[method]
            drop = self._drop[method] > 0
            if drop:
                self._drop[method] -= 1
            rule = next((r for r in self._fail
                         if r.method == method and r.nth == count), None)
            if rule:
                self._fail.remove(rule)
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000.0)
        if drop:
            raise DropConnection(method)
        return rule.error if rule else None


def parse_fail_spec(spec):
    """``METHOD:N:CODE[:PARAM...]`` -> (method, n, [code, params...]).

    :raises: ValueError with what is wrong.
    """
    parts = spec.split(':')
    if len(parts) < 3 or not parts[1].isdigit() or int(parts[1]) < 1:
        raise ValueError('%r: expected METHOD:N:CODE[:PARAM...] with N >= 1'
                         % spec)
    return parts[0], int(parts[1]), parts[2:]
