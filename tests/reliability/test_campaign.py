"""A campaign on pinned pools: random builds, stops, starts, suspends,
snapshots, live and cold migrations, resizes confirmed or reverted, VMs
started by hand and host reboots; judged from XAPI's records alone, by
code that shares nothing with the claim code: every accepted instance
starts again, no VGPU leaks.
"""

import random

import pytest

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.host import pinning
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import requests as requestslib
from nova_xenapi_vgpu.vm import lifecycle
from nova_xenapi_vgpu.xapi import session as sessionlib
from tests.conftest import login
from tests.simhelpers import new_vm

TYPES = {'m60-1q': 'GRID M60-1Q', 'm60-2q': 'GRID M60-2Q',
         'm60-4q': 'GRID M60-4Q', 'm60-8q': 'GRID M60-8Q',
         't4-4q': 'GRID T4-4Q', 't4-8q': 'GRID T4-8Q',
         'gvt': 'Intel GVT-g 128M'}
ALIASES = aliaslib.parse_aliases([
    '{"name": "%s", "vgpu_type": "%s"}' % item for item in TYPES.items()])
FLAVORS = {'pool': ['m60-1q:1', 'm60-2q:1', 'm60-4q:1', 'm60-8q:1'],
           'mixed': ['m60-2q:1', 'm60-4q:1', 'm60-8q:1', 't4-4q:2',
                     't4-8q:1', 'gvt:1']}
STEPS = 70
OFF = ('Halted',)


class Campaign:
    """One pinned pool, one random generator, the instances it accepted."""

    def __init__(self, sim, profile, seed):
        self.xapi = login(sim.url).xenapi
        self.client = sessionlib.XapiClient(sim.url, 'root', 'xenroot',
                                            retry_interval=0.01)
        pool = pinning.read_pool(self.client)
        pinning.apply(self.client, pool, pinning.propose(pool))
        self.builders = {h: lifecycle.Builder.for_host(self.client, h)
                         for h in self.xapi.host.get_all()}
        self.hosts = sorted(self.builders, key=self.xapi.host.get_name_label)
        self.random = random.Random(seed)
        self.flavors = FLAVORS[profile]
        self.instances = {}  # name -> [vm, host ref, vGPU count]
        self.outside, self.snapshots = [], []
        self.failures, self.excused = [], 0
        self.serial = 0

    # -- the judge: XAPI's records only --------------------------------------

    def power(self, vm):
        return self.xapi.VM.get_power_state(vm)

    def start(self, name, resume=False):
        """Start (or resume) an accepted instance; a refusal is a broken
        promise, unless a VM started by hand runs on its host (XAPI gives
        such a VM any pGPU with room, owed or not)."""
        vm, host, _ = self.instances[name]
        builder = self.builders[host]
        try:
            (builder.resume if resume else builder.start_again)(vm)
        except exception.XapiError as exc:
            if self._outside_running(host):
                self.excused += 1
                return
            self.failures.append((name, exc.code, exc.details))

    def _outside_running(self, host):
        return any(self.xapi.VM.get_resident_on(vm) == host
                   for vm in self.outside if self.power(vm) == 'Running')

    def check_vgpus(self):
        """Each instance's VM holds its vGPUs; no tagged VGPU elsewhere
        but on the snapshots that copied them."""
        vms = {vm: name for name, (vm, _, _) in self.instances.items()}
        for ref, vgpu in self.xapi.VGPU.get_all_records().items():
            owner = vgpu['other_config'].get(tags.INSTANCE)
            if owner is None or vgpu['VM'] in self.snapshots:
                continue
            assert vms.get(vgpu['VM']) == owner, (ref, vgpu)
        for name, (vm, _, count) in self.instances.items():
            assert len(self.xapi.VM.get_VGPUs(vm)) == count, name

    # -- the actions -------------------------------------------------------

    def pick(self, states):
        names = sorted(n for n, (vm, _, _) in self.instances.items()
                       if self.power(vm) in states)
        return self.random.choice(names) if names else None

    def build(self):
        host = self.random.choice(self.hosts)
        spec = self.random.choice(self.flavors)
        self.serial += 1
        name = 'c%d' % self.serial
        vm = new_vm(self.xapi, name)
        requests = requestslib.requests_from_spec(spec, ALIASES)[0]
        try:
            self.builders[host].attach(name, vm, requests)
        except exception.ClaimRefused:
            self.xapi.VM.destroy(vm)
            return
        self.instances[name] = [vm, host, sum(r.count for r in requests)]
        self.start(name)

    def stop(self):
        name = self.pick(('Running',))
        if name:
            vm, host, _ = self.instances[name]
            self.builders[host].stop(vm)

    def start_one(self):
        name = self.pick(OFF)
        if name:
            self.start(name)

    def suspend_resume(self):
        name = self.pick(('Running', 'Suspended'))
        if not name:
            return
        vm, host, _ = self.instances[name]
        if self.power(vm) == 'Suspended':
            self.start(name, resume=True)
            return
        try:
            self.builders[host].suspend(name, vm)
        except exception.OperationRefused:
            pass

    def snapshot(self):
        name = self.pick(('Running', 'Halted'))
        if name:
            vm = self.instances[name][0]
            self.snapshots.append(self.xapi.VM.snapshot(vm, name + '-snap'))

    def live_migrate(self):
        name = self.pick(('Running',))
        if not name or len(self.builders) < 2:
            return
        vm, host, _ = self.instances[name]
        target = self.random.choice([h for h in self.hosts if h != host])
        try:
            self.builders[host].live_migrate(name, vm, self.builders[target])
        except (exception.ClaimRefused, exception.OperationRefused):
            return
        self.instances[name][1] = target

    def cold_migrate(self):
        name = self.pick(OFF)
        if not name:
            return
        vm, host, _ = self.instances[name]
        target = self.random.choice(self.hosts)
        try:
            self.builders[host].cold_migrate(name, vm, self.builders[target])
        except exception.ClaimRefused:
            return
        except exception.OperationRefused:
            assert target == host  # the one refusal before any change
            return
        self.instances[name][1] = target

    def resize(self):
        """Resize a stopped instance to a random flavor on a random host,
        then confirm (the new vGPUs stay) or revert (the old come back:
        the source held them)."""
        name = self.pick(OFF)
        if not name:
            return
        vm, host, count = self.instances[name]
        target = self.random.choice(self.hosts)
        requests = requestslib.requests_from_spec(
            self.random.choice(self.flavors), ALIASES)[0]
        source, destination = self.builders[host], self.builders[target]
        demand = source.move_out(name, vm, destination.host_uuid)
        try:
            destination.move_in(name, vm, requests)
        except exception.ClaimRefused:
            source.restore(name, vm, demand)
            return
        if self.random.random() < 0.5:
            source.restore(name, vm, demand)
            return
        source.confirm_move(name, vm)
        self.instances[name] = [vm, target, sum(r.count for r in requests)]

    def outside_vm(self):
        """A VM an administrator makes and starts by hand (no claim)."""
        running = [vm for vm in self.outside if self.power(vm) == 'Running']
        if running and self.random.random() < 0.5:
            self.xapi.VM.hard_shutdown(self.random.choice(running))
            return
        pgpu = self.random.choice(sorted(
            self.xapi.PGPU.get_all(), key=lambda p: (
                self.xapi.host.get_name_label(self.xapi.PGPU.get_host(p)),
                self.xapi.PCI.get_pci_id(self.xapi.PGPU.get_PCI(p)))))
        enabled = sorted(self.xapi.PGPU.get_enabled_VGPU_types(pgpu),
                         key=self.xapi.VGPU_type.get_model_name)
        if not enabled:
            return
        vm = new_vm(self.xapi, 'outside-%d' % len(self.outside))
        self.xapi.VGPU.create(vm, self.xapi.PGPU.get_GPU_group(pgpu), '0',
                              {}, self.random.choice(enabled))
        self.outside.append(vm)
        try:
            self.xapi.VM.start_on(vm, self.xapi.PGPU.get_host(pgpu), False,
                                  False)
        except Exception:  # noqa: BLE001 - XAPI refused: it stays halted
            return
        for builder in self.builders.values():
            builder.sync()

    def reboot(self):
        """One host restarts: every VM there stops, accepted instances
        start again in a random order, then the administrator's."""
        host = self.random.choice(self.hosts)
        on_host = [vm for vm in self.xapi.VM.get_all()
                   if self.xapi.VM.get_resident_on(vm) == host
                   and not self.xapi.VM.get_is_control_domain(vm)]
        for vm in on_host:
            self.xapi.VM.hard_shutdown(vm)
        names = sorted(n for n, (vm, h, _) in self.instances.items()
                       if h == host and self.power(vm) in OFF)
        self.random.shuffle(names)
        for name in names:
            self.start(name)
        for vm in on_host:
            if vm in self.outside:
                try:
                    self.xapi.VM.start_on(vm, host, False, False)
                except Exception:  # noqa: BLE001, S110 - may not fit now
                    pass

    ACTIONS = (('build', 6), ('stop', 3), ('start_one', 3),
               ('suspend_resume', 2), ('snapshot', 1), ('live_migrate', 2),
               ('cold_migrate', 2), ('resize', 2), ('outside_vm', 1),
               ('reboot', 1))

    def run(self, steps):
        names = [n for n, w in self.ACTIONS for _ in range(w)]
        for _ in range(steps):
            getattr(self, self.random.choice(names))()
            for builder in self.builders.values():
                builder.sync()
        self.check_vgpus()

    def delete_all(self):
        for name, (vm, host, _) in sorted(self.instances.items()):
            if self.power(vm) not in OFF:
                self.xapi.VM.hard_shutdown(vm)
            self.builders[host].detach(name, vm)
            self.xapi.VM.destroy(vm)
        for vm in self.snapshots:
            for vgpu in self.xapi.VM.get_VGPUs(vm):
                self.xapi.VGPU.destroy(vgpu)
            self.xapi.VM.destroy(vm)
        for builder in self.builders.values():
            builder.sync()
            assert builder.stats.claims == {}
        tagged = [v for v in self.xapi.VGPU.get_all_records().values()
                  if tags.INSTANCE in v['other_config']]
        assert tagged == []


@pytest.mark.parametrize('profile', ['pool', 'mixed'])
@pytest.mark.parametrize('seed', [1, 2, 3])
def test_every_accepted_instance_starts_again(profile, seed):
    with server.Simulator(profile) as sim:
        campaign = Campaign(sim, profile, seed)
        campaign.run(STEPS)
        for name in sorted(campaign.instances):  # a last reboot of all
            vm = campaign.instances[name][0]
            if campaign.power(vm) != 'Halted':
                campaign.xapi.VM.hard_shutdown(vm)
        for vm in campaign.outside:
            if campaign.power(vm) != 'Halted':
                campaign.xapi.VM.hard_shutdown(vm)
        names = sorted(campaign.instances)
        campaign.random.shuffle(names)
        for name in names:
            campaign.start(name)
        assert campaign.failures == []
        assert all(campaign.power(vm) == 'Running'
                   for vm, _, _ in campaign.instances.values())
        assert len(campaign.instances) >= 3
        campaign.delete_all()
        campaign.client.close()
