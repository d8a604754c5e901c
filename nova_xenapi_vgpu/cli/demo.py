"""``demo``: a narrated end-to-end run on a built-in simulated pool."""

from cliff import command

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import requests as requestslib
from nova_xenapi_vgpu.vgpu_types import types as typeslib
from nova_xenapi_vgpu.vm import lifecycle
from nova_xenapi_vgpu.xapi import session

ALIASES = ['{"name": "m60-4q", "vgpu_type": "GRID M60-4Q"}',
           '{"name": "m60-8q", "vgpu_type": "GRID M60-8Q"}']


def demo_profile():
    """Two hosts with an M60 board each; one breadth_first group."""
    def host(name):
        return {'name': name, 'numa_nodes': [
            {'cpus': '0-15', 'memory_mib': 65536},
            {'cpus': '16-31', 'memory_mib': 65536}], 'pgpus': [
            {'address': '0000:86:00.0', 'model': 'tesla-m60',
             'numa_node': 0, 'group': 'M60'},
            {'address': '0000:87:00.0', 'model': 'tesla-m60',
             'numa_node': 1, 'group': 'M60'}]}
    return {'hosts': [host('demo-01'), host('demo-02')],
            'groups': {'M60': {'allocation_algorithm': 'breadth_first'}},
            'start_delay_ms': 50}


class Demo(command.Command):
    """A narrated run: claims, builds, a refusal, a live migration.

    It runs on a simulated pool of its own (no XenServer needed; under a
    minute), whatever --url or --config-file say.
    """

    def take_action(self, parsed_args):
        with server.Simulator(demo_profile()) as sim:
            with session.XapiClient(sim.url, sim.username,
                                    sim.password) as client:
                _Story(client, self.app.stdout.write).tell()
        return 0


class _Story:
    """The demo's steps, each said before it is done."""

    def __init__(self, client, write):
        self.client, self.write = client, write
        self.aliases = aliaslib.parse_aliases(ALIASES)
        self.expected = {}
        hosts = {client.call('host.get_name_label', ref): ref
                 for ref in client.call('host.get_all')}
        self.builders = {name: lifecycle.Builder.for_host(client, ref)
                         for name, ref in sorted(hosts.items())}
        self.one, self.two = (self.builders[n] for n in sorted(hosts))

    def say(self, text, *args):
        self.write(('%s\n' % text) % args)

    def free(self, builder):
        builder.sync()
        inventory = builder.stats.inventory
        return ', '.join('%s: %d free' % (s.vgpu_type.model_name, s.free)
                         for s in _free(inventory))

    def vm(self, name):
        record = {'name_label': name, 'HVM_boot_policy': 'BIOS order',
                  'other_config': {}}
        return self.client.call('VM.create', record)

    def tell(self):
        self.say('== A pool of two hosts, two Tesla M60 pGPUs each, one '
                 'breadth_first GPU group (XAPI puts each vGPU on the '
                 'emptiest pGPU).')
        before = {n: self.free(b) for n, b in self.builders.items()}
        for name, text in before.items():
            self.say('   %s: %s', name, text)
        requests = self._requests('m60-4q:1')
        self.say('== A flavor asks pci_passthrough:alias=m60-4q:1; two '
                 'instances are claimed on %s (VGPUs made, not started).',
                 self._name(self.one))
        vms = [self._claim('instance-%d' % i, requests) for i in (1, 2)]
        expected = dict(self.expected)
        self.say('== A third instance asks for a GRID M60-8Q there.')
        big = self.vm('instance-3')
        try:
            self.one.attach('instance-3', big, self._requests('m60-8q:1'))
        except exception.ClaimRefused as exc:
            self.say('   refused: %s', exc)
        for instance, vm in vms:
            self._start(instance, vm, expected[instance])
        self._migrate(vms[0])
        self.say('== With instance-1 gone, the 8Q fits on %s in every '
                 'order:', self._name(self.one))
        pgpus = self.one.build('instance-3', big, self._requests('m60-8q:1'))
        self.say('   instance-3 started on %s', self._addresses(pgpus))
        self._delete([(self.two, vms[0]), (self.one, vms[1]),
                      (self.one, ('instance-3', big))])
        after = {n: self.free(b) for n, b in self.builders.items()}
        self.say('== Inventory back where it began: %s', after == before)

    def _start(self, instance, vm, expected):
        """Start a claimed VM; where XAPI's choice differs from the
        expected pGPU, say why both are right."""
        self.one.sync()
        inventory = self.one.stats.inventory
        held = {p: len(inventory.allocated(p)) for p in inventory.pgpus}
        pgpus = self.one.start(instance, vm)
        self.say('   %s started; XAPI chose %s', instance,
                 self._addresses(pgpus))
        if list(pgpus) == list(expected):
            return
        if [held[p] for p in pgpus] == [held[p] for p in expected]:
            self.say('   (%s and %s were equally empty: a tie XAPI may '
                     'break either way; the claim held for both, and now '
                     'follows %s)', self._addresses(expected),
                     self._addresses(pgpus), self._addresses(pgpus))
        else:
            self.say('   (not the expected %s: an earlier tie went the '
                     'other way, which the claim allowed for; it now '
                     'follows %s)', self._addresses(expected),
                     self._addresses(pgpus))

    def _requests(self, spec):
        return requestslib.requests_from_spec(spec, self.aliases)[0]

    def _claim(self, instance, requests):
        expected = self.one.stats.explain(requests)[1]
        self.expected[instance] = expected
        vm = self.vm(instance)
        self.one.attach(instance, vm, requests)
        self.say('   %s: claim accepted (expected on %s), VGPU created',
                 instance, self._addresses(expected))
        return instance, vm

    def _migrate(self, instance_vm):
        instance, vm = instance_vm
        self.say('== Live-migrating %s to %s (a claim there first).',
                 instance, self._name(self.two))
        self.one.live_migrate(instance, vm, self.two)
        placed = [self.client.call('VGPU.get_resident_on', v)
                  for v in self.client.call('VM.get_VGPUs', vm)]
        self.say('   %s now runs on %s, %s', instance, self._name(self.two),
                 self._addresses(placed))

    def _delete(self, pairs):
        self.say('== Deleting every instance.')
        for builder, (instance, vm) in pairs:
            self.client.call_async('VM.hard_shutdown', vm)
            builder.detach(instance, vm)
            self.client.call('VM.destroy', vm)

    def _name(self, builder):
        return builder.stats.inventory.host_name

    def _addresses(self, pgpus):
        return ', '.join(self.client.call('PCI.get_pci_id', self.client.call(
            'PGPU.get_PCI', p)) for p in pgpus)


def _free(inventory):
    return typeslib.offered(inventory, ('GRID M60-4Q', 'GRID M60-8Q'))
