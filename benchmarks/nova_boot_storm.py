#!/usr/bin/env python3
"""Boot storm through Nova's API: stock Nova claims, XenAPIDriver builds.

Nova 34's functional framework (REST API, conductor, scheduler with
PciPassthroughFilter, one compute service per pool member, resource
tracker, PciDevTracker, SQLite, Placement fixture) with XenAPIDriver and
the simulator in a subprocess. A pinned pool of ``--members`` members,
each with an M60 pGPU pinned to GRID M60-4Q, one to GRID M60-8Q and a T4
pinned to GRID T4-8Q; ``--servers`` servers of a flavor mix are created
at once (RPC casts stay casts, so builds overlap), waited for, then all
deleted.

Last line: ``active= novalidhost= rescheduled= overcommit= leaked=
s_per_boot=``: rescheduled counts servers with builds on more than one
member (Nova's resource tracker refusing a stale scheduler pick, or the
driver refusing), overcommit the driver's refusals (XAPI refusing what
Nova claimed; 0 on a pinned pool), leaked what remains after the
deletes (XAPI VGPUs and VMs, Nova devices not available, Placement
allocations; 0). The line before it counts servers that ran out of
retries (every member's resource tracker refused a stale pick).

Usage: python benchmarks/nova_boot_storm.py [--servers 12] [--members 2]
                                            [--seed 1] [--fail SPEC]
                                            [--placement]
"""

import argparse
import os
import random
import re
import sys
import tempfile
import time
import unittest

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# The driver's own refusals (XAPI said no to what Nova claimed); Nova's
# resource tracker refusing a stale scheduler pick is not one.
DRIVER_REFUSAL = re.compile(
    r'Build of instance (\S+) was re-scheduled: ((?:XAPI error|PCI device)'
    r'[^\'\n]*)')
MIX = ('m60-4q:1', 'm60-8q:1', 't4-8q:1', 't4-8q:2')
RESULT = {}


def profile(members):
    """A pinned pool of ``members`` members, as a profile file."""
    hosts = []
    for i in range(1, members + 1):
        pgpus = [
            {'address': address, 'model': model, 'numa_node': node,
             'group': 'nova-%02d-%s' % (i, address[5:7]),
             'enabled_types': [vgpu_type]}
            for address, model, node, vgpu_type in (
                ('0000:86:00.0', 'tesla-m60', 0, 'GRID M60-4Q'),
                ('0000:87:00.0', 'tesla-m60', 1, 'GRID M60-8Q'),
                ('0000:3b:00.0', 'tesla-t4', 0, 'GRID T4-8Q'))]
        hosts.append({'name': 'xs-nova-%02d' % i, 'pgpus': pgpus,
                      'numa_nodes': [{'cpus': '0-7', 'memory_mib': 16384},
                                     {'cpus': '8-15',
                                      'memory_mib': 16384}]})
    handle, path = tempfile.mkstemp(suffix='.yaml')
    with os.fdopen(handle, 'w') as stream:
        yaml.safe_dump({'hosts': hosts}, stream)
    return path, tuple(h['name'] for h in hosts)


def storm_case(path, hosts, servers, seed, fail=(), placement=False):
    """The TestCase class that runs the storm (Nova's fixtures need one)."""
    from tests import novashim
    novashim.find_driver_shim()
    from tests.functional import base

    class Storm(base.XenAPIDriverTestBase):
        CAST_AS_CALL = False
        PLACEMENT = placement
        SIMULATOR_ARGS = tuple(a for f in fail for a in ('--fail', f))
        PROFILE = path
        HOSTS = hosts

        def setUp(self):
            self.flags(instances=-1, cores=-1, ram=-1, group='quota')
            super().setUp()

        def test_storm(self):
            rng = random.Random(seed)
            flavors = {spec: self.flavor(spec, name=spec) for spec in MIX}
            start = time.monotonic()
            made = [self.api.post_server({'server': self._build_server(
                name='storm-%d' % i, flavor_id=flavors[rng.choice(MIX)],
                networks='none')}) for i in range(servers)]
            done = [self.settled(s) for s in made]
            elapsed = time.monotonic() - start
            RESULT.update(self.count(done), s_per_boot=elapsed / servers)
            refusals = set(DRIVER_REFUSAL.findall(
                self.stdlog.logger.output))
            RESULT['overcommit'] = len(refusals)
            RESULT['refusals'] = sorted(r[1] for r in refusals)
            for server in done:
                self.api.delete_server(server['id'])
            for server in done:
                self._wait_until_deleted(server)
            RESULT['leaked'] = self.leaked(done)

        def settled(self, server):
            for _ in range(1200):
                server = self.api.get_server(server['id'])
                if server['status'] in ('ACTIVE', 'ERROR'):
                    return server
                time.sleep(0.1)
            raise AssertionError('%s never settled' % server['id'])

        def count(self, done):
            result = {'active': 0, 'novalidhost': 0, 'rescheduled': 0,
                      'faults': [], 'exhausted': 0}
            for server in done:
                if server['status'] == 'ACTIVE':
                    result['active'] += 1
                elif 'No valid host' in server.get('fault', {}).get(
                        'message', ''):
                    result['novalidhost'] += 1
                else:
                    result['faults'].append(server.get('fault', {}).get(
                        'message', server['status']))
                    result['exhausted'] += 'Exceeded maximum number of ' \
                        'retries' in result['faults'][-1]
                result['rescheduled'] += len(self.build_hosts(server)) > 1
            return result

        def build_hosts(self, server):
            hosts = []
            for action in self.api.get_instance_actions(server['id']):
                events = self.api.get_instance_action_details(
                    server['id'], action['request_id'])['events']
                for event in events:
                    if event['event'] != 'compute__do_build_and_run_instance':
                        continue
                    hosts.append(event['host'])
            return hosts

        def leaked(self, done):
            xapi = self.sim.xapi
            left = len([v for v in xapi.VGPU.get_all_records().values()
                        if 'nova_instance_uuid' in v['other_config']])
            left += len([v for v in xapi.VM.get_all_records().values()
                         if 'nova_uuid' in v['other_config']])
            for host in self.HOSTS:
                left += len([d for d in self.devices(host)
                             if d.status != 'available'])
            for server in done:
                left += len(self.placement.get('/allocations/%s' % server[
                    'id']).body['allocations'])
            return left

    return Storm('test_storm')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--servers', type=int, default=12)
    parser.add_argument('--members', type=int, default=2)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--fail', action='append', default=[],
                        metavar='METHOD:N:CODE[:PARAM...]',
                        help="The simulator's fault injection, e.g. "
                             "VM.start_on@plug:2:INTERNAL_ERROR:x (then "
                             "overcommit counts the driver's refusals).")
    parser.add_argument('--placement', action='store_true',
                        help='PCI in Placement (nova-conf --placement).')
    args = parser.parse_args()
    path, hosts = profile(args.members)
    try:
        result = unittest.TextTestRunner(sys.__stderr__, verbosity=0).run(
            storm_case(path, hosts, args.servers, args.seed, args.fail,
                       args.placement))
    finally:
        os.unlink(path)
    if not result.wasSuccessful() or 'leaked' not in RESULT:
        for _, text in result.errors + result.failures:
            print(text[-3000:], file=sys.__stderr__)
        print('storm failed', file=sys.__stderr__)
        return 1
    for refusal in RESULT.get('refusals', []):
        print('refusal: %s' % refusal[:300], file=sys.__stdout__)
    for fault in sorted({f.split(' for instance')[0]
                         for f in RESULT['faults']}):
        print('fault: %s' % fault[:120], file=sys.__stdout__)
    print('retries_exhausted=%(exhausted)d (stale scheduler picks the '
          'resource tracker refused on every member)' % RESULT,
          file=sys.__stdout__)
    print('active=%(active)d novalidhost=%(novalidhost)d '
          'rescheduled=%(rescheduled)d overcommit=%(overcommit)d '
          'leaked=%(leaked)d s_per_boot=%(s_per_boot).2f' % RESULT,
          file=sys.__stdout__)
    return 0


if __name__ == '__main__':
    sys.exit(main())
