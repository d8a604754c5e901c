"""check-config as the pre-flight, plan's refusals, and listings that
say why they are empty (a subprocess against the simulator)."""

import json
import re

import pytest

from nova_xenapi_vgpu.simulator import server
from tests.conftest import login
from tests.test_cli import run

BASE = '''[xenserver]
connection_url = %s
[vgpu]
'''


def cli(sim, tmp_path, vgpu, *args, env=None):
    conf = tmp_path / 'nova.conf'
    conf.write_text(BASE % sim.url + vgpu)
    return run('--config-file', str(conf), *args,
               env=dict(env or {}, XENAPI_PASSWORD=sim.password))


@pytest.fixture(scope='module')
def sim():
    with server.Simulator('mixed') as simulator:
        yield simulator


def test_check_config_passes_a_good_configuration(sim, tmp_path):
    result = cli(sim, tmp_path, 'enabled_vgpu_types = GRID M60-4Q\n'
                 'alias = {"name": "m60-4q", "vgpu_type": "GRID M60-4Q"}\n',
                 'check-config', '--flavor-spec',
                 'pci_passthrough:alias=m60-4q:1', '-f', 'json')
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer['Problems'] == [] and answer['Aliases'] == ['m60-4q']
    assert answer['vGPU types offered'] == 1


@pytest.mark.parametrize('vgpu, words', [
    ('enabled_vgpu_types = GRID M60-4q\n',
     ['[vgpu] enabled_vgpu_types', 'offers no GRID M60-4q',
      'did you mean GRID M60-4Q']),
    ('alias = {"name": "k1", "vgpu_type": "GRID K1-4Q"}\n',
     ['alias k1', 'offers no GRID K1-4Q']),
    ('enabled_vgpu_types = GRID M60-4Q\n'
     'alias = {"name": "big", "vgpu_type": "GRID M60-8Q"}\n',
     ['alias big', 'GRID M60-8Q is not in [vgpu] enabled_vgpu_types',
      '(GRID M60-4Q)']),
    ('alias = {"name": "near", "vgpu_type": "GRID M60-4Q", '
     '"numa_policy": "required"}\n',
     ['alias near', 'numa_policy required cannot be met', 'spans NUMA',
      'gpu-groups split']),
])
def test_check_config_exits_1_naming_the_problem(sim, tmp_path, vgpu, words):
    result = cli(sim, tmp_path, vgpu, 'check-config')
    assert result.returncode == 1, result.stderr
    for word in words:
        assert word in result.stderr
    assert 'Traceback' not in result.stderr


def test_check_config_knows_the_per_vm_maximum(sim, tmp_path):
    result = cli(sim, tmp_path, 'alias = {"name": "m60-4q", "vgpu_type": '
                 '"GRID M60-4Q"}\n', 'check-config', '--flavor-spec',
                 'pci_passthrough:alias=m60-4q:2', '-f', 'json')
    assert result.returncode == 1
    (problem,) = json.loads(result.stdout)['Problems']
    assert 'at most 1 of GRID M60-4Q per VM' in problem


def test_the_readme_headline_plan_fits(tmp_path):
    with server.Simulator('m60') as sim:
        vgpu = ('alias = {"name": "m60-4q", "vgpu_type": "GRID M60-4Q", '
                '"numa_policy": "required"}\n')
        before = cli(sim, tmp_path, vgpu, 'check-config')
        split = cli(sim, tmp_path, vgpu, 'gpu-groups', 'split', '--apply')
        after = cli(sim, tmp_path, vgpu, 'check-config')
        plan = cli(sim, tmp_path, vgpu, 'plan', '--flavor-spec',
                   'pci_passthrough:alias=m60-4q:1', '--numa-node', '0',
                   '-f', 'json')
        two = cli(sim, tmp_path, vgpu, 'plan', '--flavor-spec',
                  'pci_passthrough:alias=m60-4q:2', '--numa-node', '0',
                  '-f', 'json')
    assert before.returncode == 1 and 'gpu-groups split' in before.stderr
    assert split.returncode == 0, split.stderr
    assert after.returncode == 0, after.stderr
    assert plan.returncode == 0, plan.stderr
    answer = json.loads(plan.stdout)
    assert answer['Fits'] is True
    assert answer['Expected pGPUs'] == ['0000:86:00.0']
    assert answer['NUMA nodes'] == [0]
    assert two.returncode == 1
    assert 'XAPI allows at most 1 of GRID M60-4Q per VM' in json.loads(
        two.stdout)['Reason']


def test_plan_names_the_hosts_numa_nodes(sim, tmp_path):
    vgpu = 'alias = {"name": "t4", "vgpu_type": "GRID T4-8Q"}\n'
    unknown = cli(sim, tmp_path, vgpu, 'plan', '--flavor-spec',
                  'pci_passthrough:alias=t4:1', '--numa-node', '7')
    both = cli(sim, tmp_path, vgpu, 'plan', '--flavor-spec',
               'pci_passthrough:alias=t4:1', '--numa-node', '0,1', '-f',
               'json')
    bad = cli(sim, tmp_path, vgpu, 'plan', '--flavor-spec',
              'pci_passthrough:alias=t4:1', '--numa-node', 'x')
    assert unknown.returncode == 2
    assert 'no such NUMA node' in unknown.stderr
    assert 'its nodes are 0, 1' in unknown.stderr
    assert 'spanning' not in unknown.stderr + unknown.stdout
    assert both.returncode == 0, both.stderr
    assert json.loads(both.stdout)['Expected pGPUs'] == ['0000:3b:00.0']
    assert bad.returncode == 2 and '--numa-node' in bad.stderr


def test_plan_names_the_enabled_list(sim, tmp_path):
    result = cli(sim, tmp_path, 'enabled_vgpu_types = GRID M60-4Q\n'
                 'alias = {"name": "t4", "vgpu_type": "GRID T4-8Q"}\n',
                 'plan', '--flavor-spec', 'pci_passthrough:alias=t4:1',
                 '-f', 'json')
    assert result.returncode == 1
    reason = json.loads(result.stdout)['Reason']
    assert 'GRID T4-8Q is not in [vgpu] enabled_vgpu_types (GRID M60-4Q)' in (
        reason)


@pytest.mark.parametrize('command', ['inventory', 'types', 'pci-devices'])
def test_nothing_to_list_says_why(sim, tmp_path, command):
    result = cli(sim, tmp_path, 'enabled_vgpu_types = GRID M60-4q\n',
                 command, '-f', 'table')
    assert result.returncode == 0, result.stderr
    assert result.stdout == ''
    assert 'nothing to list: [vgpu] enabled_vgpu_types' in result.stderr
    assert 'did you mean GRID M60-4Q' in result.stderr


def test_inventory_long_shows_the_pgpu_uuids_xe_shows(sim, tmp_path):
    result = cli(sim, tmp_path, '', 'inventory', '--long', '-f', 'json')
    assert result.returncode == 0, result.stderr
    xapi = login(sim.url).xenapi
    uuids = {xapi.PCI.get_pci_id(r['PCI']): r['uuid']
             for r in xapi.PGPU.get_all_records().values()}
    rows = json.loads(result.stdout)
    assert {(r['pGPU'], r['pGPU uuid']) for r in rows} == set(uuids.items())


@pytest.mark.parametrize('columns', ['60', '250'])
def test_tables_follow_the_terminal_and_keep_addresses_whole(
        sim, tmp_path, columns):
    table = cli(sim, tmp_path, '', 'inventory', '--long',
                env={'COLUMNS': columns})
    rows = json.loads(cli(sim, tmp_path, '', 'inventory', '-f',
                          'json').stdout)
    assert table.returncode == 0, table.stderr
    addresses = re.findall(r'\b0000:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\b',
                           table.stdout)
    assert len(addresses) == len(rows)
    if columns == '250':  # room enough: one line per row, none wrapped
        assert len(table.stdout.splitlines()) == len(rows) + 4
        assert max(len(line) for line in table.stdout.splitlines()) <= 250


@pytest.mark.parametrize('command', ['inventory', 'types'])
def test_capacity_columns_are_explained_in_help(command):
    result = run(command, '--help')
    text = ' '.join(result.stdout.split())
    for word in ('Capacity', 'In use', 'Remaining'):
        assert word in text
    if command == 'inventory':
        assert 'Use: how full the pGPU is' in text


def test_a_duplicated_alias_line_is_named_as_such(sim, tmp_path):
    line = 'alias = {"name": "m60-4q", "vgpu_type": "GRID M60-4Q"}\n'
    result = cli(sim, tmp_path, line + line, 'check-config')
    assert result.returncode == 2
    assert 'alias m60-4q' in result.stderr
    assert 'given twice' in result.stderr
