"""gpu-groups pin and the layout check-config and inventory report, as
an operator runs them (a subprocess against the simulator)."""

import json

from nova_xenapi_vgpu.simulator import server
from tests.test_cli_preflight import cli

PARTITION = ('pgpu_types = GRID M60-4Q = 0000:86:00.0\n'
             'pgpu_types = GRID M60-8Q = 0000:87:00.0\n')


def test_pin_says_what_it_would_do_does_it_once_and_check_config_agrees(
        tmp_path):
    with server.Simulator('pool') as sim:
        before = cli(sim, tmp_path, PARTITION, 'check-config', '-f', 'json')
        assert before.returncode == 0, before.stderr
        assert json.loads(before.stdout)['Layout'] == (
            'gpu-groups pin --apply would change 12 pGPU(s), leave 0')
        assert 'shared groups Tesla M60 (4 pGPUs)' in before.stderr
        dry = cli(sim, tmp_path, PARTITION, 'gpu-groups', 'pin', '-f',
                  'json')
        rows = json.loads(dry.stdout)
        assert dry.returncode == 0 and len(rows) == 12
        assert {r['Action'] for r in rows} == {'would change'}
        assert {r['New group'] for r in rows} == {
            '', 'Tesla M60 0000:87:00.0', 'Tesla M60 0000:af:00.0',
            'Tesla M60 0000:b0:00.0'}
        done = cli(sim, tmp_path, PARTITION, 'gpu-groups', 'pin', '--apply',
                   '-f', 'json')
        assert {r['Action'] for r in json.loads(done.stdout)} == {'done'}
        again = cli(sim, tmp_path, PARTITION, 'gpu-groups', 'pin', '--apply')
        assert again.returncode == 0 and 'nothing to do' in again.stderr
        after = cli(sim, tmp_path, PARTITION, 'check-config', '-f', 'json')
        assert json.loads(after.stdout)['Layout'] == 'pinned'
        listing = cli(sim, tmp_path, PARTITION, 'inventory', '-f', 'value',
                      '-c', 'pGPU', '-c', 'vGPU type')
        assert 'layout: pinned' in listing.stderr
        assert set(listing.stdout.split('\n')) >= {
            '0000:86:00.0 GRID M60-4Q', '0000:87:00.0 GRID M60-8Q'}


def test_check_config_names_pgpu_types_no_pgpu_can_serve(tmp_path):
    with server.Simulator('mixed') as sim:
        result = cli(sim, tmp_path, 'pgpu_types = GRID M60-8Q = '
                     '0000:3b:00.0, 0000:af:00.0\n', 'check-config')
    assert result.returncode == 1
    assert '0000:af:00.0, which no pGPU of the pool has' in result.stderr
    assert 'pGPU 0000:3b:00.0 on xs-gpu-01 does not support GRID M60-8Q' in (
        result.stderr)


def test_a_bad_pgpu_types_value_exits_2_naming_the_option(tmp_path):
    with server.Simulator('m60') as sim:
        result = cli(sim, tmp_path, 'pgpu_types = GRID M60-4Q = 86:00\n',
                     'gpu-groups', 'pin')
    assert result.returncode == 2
    assert '[vgpu] pgpu_types' in result.stderr
    assert "'86:00' is not a PCI address" in result.stderr
    assert 'Traceback' not in result.stderr
