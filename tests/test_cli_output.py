"""Output as the openstack CLI gives it: whole sentences in the help,
the demo's ties explained."""

import re

import pytest

from nova_xenapi_vgpu.cli import demo
from nova_xenapi_vgpu.cli import main
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.xapi import session
from tests.test_cli import run


def test_the_help_lists_every_command_with_a_whole_sentence():
    result = run('--help')
    manager = main.NovaXenapiVgpuApp().command_manager
    for name, entry in manager:
        summary = entry.load().__doc__.split('\n\n')[0]
        assert '\n' not in summary.strip(), name
        assert ' '.join(summary.split()).rstrip('.') in ' '.join(
            result.stdout.split())


@pytest.mark.parametrize('ties', ['address', 'reverse-address'])
def test_the_demo_says_why_both_pgpus_are_right_in_a_tie(ties):
    lines = []
    with server.Simulator(demo.demo_profile()) as sim:
        sim.db.tie_break = ties
        with session.XapiClient(sim.url, sim.username,
                                sim.password) as client:
            demo._Story(client, lines.append).tell()
    text = ''.join(lines)
    assert text.rstrip().endswith('Inventory back where it began: True')
    chosen = [line.split('chose ')[1][:12] for line in lines
              if 'started; XAPI chose' in line]
    expected = [line.split('expected on ')[1][:12] for line in lines
                if 'expected on' in line]
    assert expected == ['0000:86:00.0', '0000:87:00.0']
    # The reverse tie-break takes 87 first: XAPI and the claim disagree.
    differs = ties == 'reverse-address'
    assert (chosen[:2] != expected) == differs
    assert ('a tie XAPI may break either way' in text) == differs
    assert ('an earlier tie went the other way' in text) == differs


@pytest.mark.parametrize('command', [
    ['inventory'], ['types'], ['pci-devices'], ['check-config'], ['plan'],
    ['attach'], ['detach'], ['migrate'], ['reap-orphans'],
    ['placement', 'sync'], ['plugin', 'check'], ['gpu-groups', 'split']])
def test_every_command_that_prints_data_takes_a_format(command):
    result = run(*command, '--help')
    assert result.returncode == 0, result.stderr
    choices = re.search(r'-f \{([a-z,]+)\}', result.stdout).group(1)
    assert {'json', 'yaml', 'table', 'value'} <= set(choices.split(','))
