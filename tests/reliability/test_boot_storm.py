"""A small boot storm, in the normal run: nothing over-committed or
leaked, and no refusal the exhaustive judge finds XAPI would honour."""

import importlib.util
import os
import random

import pytest

from nova_xenapi_vgpu.pci import pgpu_choice
from nova_xenapi_vgpu.pci import stats as statslib
from tests.pcihelpers import HostBuilder
from tests.pcihelpers import type_ref

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, '..', '..', 'benchmarks', 'boot_storm.py')


def load_storm():
    spec = importlib.util.spec_from_file_location('boot_storm', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('algorithm', ['depth_first', 'breadth_first'])
def test_a_small_boot_storm(algorithm):
    storm = load_storm()
    counts, leaked, refused_feasible, refused = storm.run(
        'mixed', algorithm, builds=24, threads=8, seed=7)
    assert counts['accepted'] > 0 and refused > 0
    assert counts['started'] == counts['accepted']
    assert counts['overcommit'] == 0
    assert leaked == 0
    assert refused_feasible == 0


def test_the_judge_sees_an_unlucky_order():
    judge = load_storm()
    m60 = {'GRID M60-4Q': 2, 'GRID M60-8Q': 1}
    pgpus = [('g', m60, None, 0), ('g', m60, None, 0)]
    four, eight = (('g', 'GRID M60-4Q'),), (('g', 'GRID M60-8Q'),)
    assert not judge.judge_feasible(pgpus, {'g': 'breadth_first'},
                                    [four, four], [eight])
    assert judge.judge_feasible(pgpus, {'g': 'depth_first'},
                                [four, four], [eight])


def test_the_judge_models_the_host_from_records_not_from_the_claim_code():
    judge = load_storm()
    host = HostBuilder()
    group = host.group('m60', 'breadth_first')
    a = host.pgpu(group, '0000:86:00.0')
    host.pgpu(group, '0000:87:00.0')
    host.vgpu(group, 'GRID M60-4Q', pgpu=a, instance='resident')
    four = (group, type_ref('GRID M60-4Q'))
    eight = ((group, type_ref('GRID M60-8Q')),)
    # A claim code that saw no pGPU at all: the judge does not ask it.
    blind = pgpu_choice.Host(())
    snapshot = statslib.Snapshot(host.inventory(), blind, (), ())
    pgpus, algorithms, pending = judge.judge_host(snapshot)
    assert sorted(count for _, _, _, count in pgpus) == [0, 1]
    assert judge.judge_feasible(pgpus, algorithms, pending, [eight])
    # A stopped instance's VGPU gives way to its claim, counted once.
    host.vgpu(group, 'GRID M60-4Q', instance='stopped')
    claims = (statslib.Claim('stopped', (four,), (a,)),
              statslib.Claim('new', (four,), (a,)))
    pgpus, _, pending = judge.judge_host(statslib.Snapshot(
        host.inventory(), blind, (), claims))
    assert pending == [(four,), (four,)]
    assert sorted(count for _, _, _, count in pgpus) == [0, 1]
    assert not judge.judge_feasible(pgpus, algorithms, pending, [eight])


def test_a_seed_draws_the_same_flavors():
    judge = load_storm()
    first = judge.draw_flavors(random.Random(7), 24)
    assert first == judge.draw_flavors(random.Random(7), 24)
    assert len(set(first)) > 3
