"""The simulator's object store: records, relations, events."""

import collections
import copy
import threading
import uuid as uuidlib

from nova_xenapi_vgpu.simulator import schema
from nova_xenapi_vgpu.simulator.errors import XapiFailure

NULL = schema.NULL


def new_ref():
    """A fresh ``OpaqueRef:<uuid>``."""
    return 'OpaqueRef:%s' % uuidlib.uuid4()


class Database:
    """Objects by class and ref, reverse relations and a change log."""

    def __init__(self):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.objects = {name: {} for name in schema.CLASSES}
        self.derived = {}
        self._by_uuid = {}
        self._relations = {(r.cls, r.field): r for r in schema.RELATIONS}
        self._reverse = {(r.target, r.reverse): r for r in schema.RELATIONS}
        self._shown_reverse = {name: [
            r.reverse for r in schema.RELATIONS if r.target == name
            and (name, r.reverse) not in schema.HIDDEN]
            for name in schema.CLASSES}
        self._index = collections.defaultdict(set)
        self.log = [None]
        self._created = {}
        self._deleted = {}
        self.start_delay_ms = 0
        self.guest_shutdown_ms = 0  # None: guests ignore clean shutdowns
        self.shutdown_timeout_s = 1200.0  # domain_shutdown_total_timeout
        self.tie_break = None  # None, 'address' or 'reverse-address'

    @property
    def generation(self):
        """Number of the last change."""
        return len(self.log) - 1

    def create(self, cls, **fields):
        """Store a new object; omitted fields take the class defaults."""
        with self.lock:
            ref = new_ref()
            record = copy.deepcopy(schema.CLASSES[cls].fields)
            record.update(fields)
            record['uuid'] = record['uuid'] or str(uuidlib.uuid4())
            self.objects[cls][ref] = record
            self._by_uuid[(cls, record['uuid'])] = ref
            for field in record:
                self._link(cls, ref, field, record[field])
            self._created[(cls, ref)] = self.generation + 1
            self.touch(cls, ref)
            return ref

    def destroy(self, cls, ref):
        """Remove an object; its reverse relations forget it."""
        with self.lock:
            record = self.get(cls, ref)
            for field in record:
                self._unlink(cls, ref, field, record[field])
            del self.objects[cls][ref]
            del self._by_uuid[(cls, record['uuid'])]
            self._deleted[(cls, ref)] = self.generation + 1
            self.touch(cls, ref)

    def get(self, cls, ref):
        """The stored record (not a copy).

        :raises: XapiFailure HANDLE_INVALID.
        """
        try:
            return self.objects[cls][ref]
        except KeyError:
            raise XapiFailure('HANDLE_INVALID', cls, ref) from None

    def set(self, cls, ref, field, value):
        """Change one stored field, keeping relations and events right."""
        with self.lock:
            record = self.get(cls, ref)
            self._unlink(cls, ref, field, record[field])
            record[field] = value
            self._link(cls, ref, field, value)
            self.touch(cls, ref)

    def by_uuid(self, cls, uuid):
        """The ref of the object of ``cls`` with ``uuid``.

        :raises: XapiFailure UUID_INVALID.
        """
        try:
            return self._by_uuid[(cls, uuid)]
        except KeyError:
            raise XapiFailure('UUID_INVALID', cls, uuid) from None

    def field(self, cls, ref, name):
        """One field as a client sees it: stored, reverse or derived."""
        record = self.get(cls, ref)
        if name in record:
            return record[name]
        if (cls, name) in self._reverse:
            return sorted(self._index[(cls, name, ref)])
        if (cls, name) in self.derived:
            return self.derived[(cls, name)](self, ref)
        raise KeyError(name)

    def record(self, cls, ref):
        """A deep copy of the whole record, as a client sees it."""
        with self.lock:
            result = {name: copy.deepcopy(value)
                      for name, value in self.get(cls, ref).items()
                      if not schema.is_internal(name)}
            for reverse in self._shown_reverse[cls]:
                result[reverse] = sorted(self._index[(cls, reverse, ref)])
            for derived_cls, name in self.derived:
                if derived_cls == cls:
                    result[name] = self.derived[(cls, name)](self, ref)
            return result

    def has_field(self, cls, name):
        """Whether ``cls`` shows a field called ``name``."""
        if schema.is_internal(name):
            return False
        return (name in schema.CLASSES[cls].fields
                or ((cls, name) in self._reverse
                    and (cls, name) not in schema.HIDDEN)
                or (cls, name) in self.derived)

    def touch(self, cls, ref):
        """Record that an object changed, and wake event.from waiters."""
        with self.lock:
            self.log.append((cls, ref))
            self.changed.notify_all()

    def changes_since(self, generation):
        """``{(cls, ref): operation}`` for objects changed after a point."""
        with self.lock:
            result = {}
            for cls, ref in self.log[generation + 1:]:
                if self._deleted.get((cls, ref), 0) > generation:
                    result[(cls, ref)] = 'del'
                elif self._created.get((cls, ref), 0) > generation:
                    result[(cls, ref)] = 'add'
                else:
                    result[(cls, ref)] = 'mod'
            return result

    def _link(self, cls, ref, field, value):
        relation = self._relations.get((cls, field))
        if relation and value != NULL:
            self._index[(relation.target, relation.reverse, value)].add(ref)
            if value in self.objects[relation.target]:
                self.touch(relation.target, value)

    def _unlink(self, cls, ref, field, value):
        relation = self._relations.get((cls, field))
        if relation and value != NULL:
            self._index[(relation.target, relation.reverse, value)].discard(
                ref)
            if value in self.objects[relation.target]:
                self.touch(relation.target, value)
