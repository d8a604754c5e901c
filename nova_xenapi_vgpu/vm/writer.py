"""One writer per host: a lease kept in XAPI, in the host's other_config.

The pools decide a claim from what XAPI showed them; two processes
deciding at once (nova-compute and an ``attach`` command, two commands)
would both see the last vGPU free and both take it. So whoever claims
and creates VGPUs on a host, or destroys them for a move, first takes
the host's lease: one key, ``other_config:nova_xenapi_vgpu_writer``,
naming its owner (host name, process id, a random tag) and its expiry.

The compare step is XAPI's own: ``host.add_to_other_config`` adds a key
only when it is absent (``MAP_DUPLICATE_KEY`` otherwise), so of two
processes racing for a free host exactly one writes the key. The loser
waits (up to ``WAIT_SECONDS``) for the holder to remove it, then is
refused with the holder's name and expiry. A lease past its expiry (its
holder died), or a value no lease parses, is removed and taken at once;
one that keeps coming back is then waited on like a held lease, so the
wait stays bounded whatever another writer does. Two processes taking
over at once can, in a window of one call, both believe they hold it:
the expiry is long (``LEASE_SECONDS``) so that this only follows a
crash. The writers' clocks are compared through the expiry: keep them in
step (NTP).

Within one process a lock per host does the same for threads, and the
lease is taken once however deeply the writes nest.
"""

import contextlib
import dataclasses
import datetime
import json
import os
import socket
import threading
import time
import uuid

from oslo_log import log as logging

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.xapi import writes

LOG = logging.getLogger(__name__)

KEY = 'nova_xenapi_vgpu_writer'
LEASE_SECONDS = 120.0
WAIT_SECONDS = 30.0
POLL_SECONDS = 0.2
OWNER = '%s/%d/%s' % (socket.gethostname(), os.getpid(),
                      uuid.uuid4().hex[:8])

_held = {}  # (XAPI url, host ref) -> _Held
_guard = threading.Lock()


@dataclasses.dataclass
class _Held:
    lock: threading.RLock
    depth: int = 0


@dataclasses.dataclass(frozen=True)
class Lease:
    """Who writes on a host, and until when (seconds since the epoch)."""

    owner: str
    expires: float

    def value(self):
        """The key's value."""
        return json.dumps({'owner': self.owner, 'expires': self.expires})

    @classmethod
    def parse(cls, text):
        """The lease a value names, or None when it names none."""
        try:
            data = json.loads(text)
            return cls(str(data['owner']), float(data['expires']))
        except (ValueError, KeyError, TypeError):
            return None

    def until(self):
        """The expiry, readable (UTC)."""
        return datetime.datetime.fromtimestamp(
            self.expires, datetime.timezone.utc).strftime('%H:%M:%S UTC')


class HostWriter:
    """The lease on one host, for this process."""

    def __init__(self, client, host_ref, lease=LEASE_SECONDS,
                 wait=WAIT_SECONDS, clock=time.time):
        self.client = client
        self.host_ref = host_ref
        self.lease = lease
        self.wait = wait
        self.clock = clock

    @contextlib.contextmanager
    def held(self):
        """Hold the host's lease (taken once per process and host).

        :raises: ClaimRefused naming the holder when another writer keeps
                 it past ``wait``; XapiError, XapiConnectionError.
        """
        with _guard:
            entry = _held.setdefault((self.client.target_url,
                                      self.host_ref),
                                     _Held(threading.RLock()))
        with entry.lock:
            if entry.depth == 0:
                self._acquire()
            entry.depth += 1
            try:
                yield
            finally:
                entry.depth -= 1
                if entry.depth == 0:
                    self._release()

    def _acquire(self):
        deadline = self.clock() + self.wait
        took_over = False
        while True:
            mine = Lease(OWNER, self.clock() + self.lease)
            current = Lease.parse(writes.add_key(
                self.client, 'host', self.host_ref, KEY, mine.value()))
            if current == mine:
                return
            if current is None or current.owner == OWNER or (
                    current.expires <= self.clock()):
                LOG.warning('Taking the vGPU writer lease of host %s from '
                            '%s (expired or left over)', self.host_ref,
                            current.owner if current else 'nobody')
                writes.remove_key(self.client, 'host', self.host_ref, KEY)
                if not took_over:  # at once; again only at the poll's pace
                    took_over = True
                    continue
            if self.clock() >= deadline:
                raise exception.ClaimRefused(reason=_refusal(current))
            self.client.sleep(POLL_SECONDS)

    def _release(self):
        try:
            config = self.client.call('host.get_other_config',
                                      self.host_ref)
            current = Lease.parse(config.get(KEY))
            if current is not None and current.owner == OWNER:
                writes.remove_key(self.client, 'host', self.host_ref, KEY)
        except (exception.XapiError, exception.XapiConnectionError) as exc:
            LOG.warning('Could not give up the vGPU writer lease of host '
                        '%s (%s); it expires by itself', self.host_ref, exc)


def _refusal(current):
    """Why the lease could not be had: who holds it, until when."""
    holder = ('%s until %s' % (current.owner, current.until()) if current
              else 'a value this version cannot read')
    return ('another writer holds this host (other_config:%s): %s; try '
            'again then' % (KEY, holder))
