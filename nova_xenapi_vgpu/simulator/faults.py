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
        self._lose = collections.Counter()
        self._slow = {}
        self._lock = threading.Lock()

    def fail_call(self, method, nth, code, *params):
        """Make the ``nth`` call (from now, 1-based) of ``method`` fail.

        ``METHOD@plug`` fails the ``nth`` start (or move) while its devices
        are plugged: after the reservation, inside the boot window.
        """
        with self._lock:
            self._fail.append(_FailRule(
                method, self.calls[method] + nth, [code, *params]))

    def drop_connection(self, method, times=1):
        """Drop the connection on the next ``times`` calls of ``method``."""
        with self._lock:
            self._drop[method] += times

    def lose_reply(self, method, times=1):
        """Run the next ``times`` calls of ``method``, then drop their
        connections instead of answering: done, but the reply is lost."""
        with self._lock:
            self._lose[method] += times

    def slow_call(self, method, ms):
        """Delay every later call of ``method`` by ``ms`` more, before it
        runs (a slow VGPU.create, say, while other calls answer)."""
        with self._lock:
            self._slow[method] = ms

    def reply_lost(self, method):
        """Whether this call's reply is to be lost (counts it down)."""
        with self._lock:
            lost = self._lose[method] > 0
            if lost:
                self._lose[method] -= 1
        return lost

    def on_call(self, method):
        """Count the call, sleep, then drop or return an injected error."""
        with self._lock:
            drop = self._drop[method] > 0
            if drop:
                self._drop[method] -= 1
        error = self.injected(method)
        delay = self.latency_ms + self._slow.get(method, 0)
        if delay:
            time.sleep(delay / 1000.0)
        if drop:
            raise DropConnection(method)
        return error

    def injected(self, name):
        """Count ``name`` (a method, or a phase such as
        ``VM.start@plug``) and return the error a rule injects, or None."""
        with self._lock:
            self.calls[name] += 1
            rule = next((r for r in self._fail if r.method == name
                         and r.nth == self.calls[name]), None)
            if rule:
                self._fail.remove(rule)
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
