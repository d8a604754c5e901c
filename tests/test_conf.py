"""Configuration options, their validation and the sample config."""

import os
import subprocess
import sys

import pytest
from oslo_config import cfg

from nova_xenapi_vgpu import conf as conflib
from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, 'etc', 'nova-xenapi-vgpu.conf.sample')


def make_conf(tmp_path, text):
    path = tmp_path / 'test.conf'
    path.write_text(text)
    conf = cfg.ConfigOpts()
    conflib.register_opts(conf)
    conf(args=[], default_config_files=[str(path)])
    return conf


def test_generator_entry_point_matches_committed_sample():
    result = subprocess.run(
        [sys.executable, '-m', 'oslo_config.generator', '--namespace',
         'nova_xenapi_vgpu', '--wrap-width', '79'],
        capture_output=True, text=True, check=True)
    with open(SAMPLE, encoding='utf-8') as stream:
        committed = stream.read()
    assert '[xenserver]' in result.stdout and '[vgpu]' in result.stdout
    assert result.stdout == committed, (
        'etc/nova-xenapi-vgpu.conf.sample is stale: run oslo-config-generator'
        ' --config-file etc/oslo-config-generator/nova-xenapi-vgpu.conf')


def test_every_option_has_help_text():
    for group, opts in conflib.list_opts():
        for opt in opts:
            assert len(opt.help.strip()) > 20, (group.name, opt.name)


def test_options_are_not_global():
    first, second = cfg.ConfigOpts(), cfg.ConfigOpts()
    conflib.register_opts(first)
    conflib.register_opts(second)
    first.set_override('insecure', True, group='xenserver')
    first([])
    second([])
    assert first.xenserver.insecure is True
    assert second.xenserver.insecure is False


def test_defaults(tmp_path):
    conf = make_conf(tmp_path, '')
    conflib.validate(conf)
    assert conf.xenserver.insecure is False
    assert conf.xenserver.connection_concurrent == 5
    assert conf.vgpu.flavor_extra_spec_key == 'pci_passthrough:alias'
    assert conf.vgpu.numa_policy == 'legacy'


@pytest.mark.parametrize('text, option', [
    ('[xenserver]\nconnection_concurrent = 0\n', 'connection_concurrent'),
    ('[xenserver]\nconnection_url = ftp://host/\n', 'connection_url'),
    ('[xenserver]\nconnection_url = https://root:pw@host/\n',
     'connection_url'),
    ('[xenserver]\ninsecure = perhaps\n', 'insecure'),
    ('[vgpu]\nnuma_policy = sometimes\n', 'numa_policy'),
    ('[vgpu]\nalias = {not json\n', 'alias'),
    ('[vgpu]\nalias = {"vgpu_type": "GRID M60-4Q"}\n', 'alias'),
])
def test_bad_values_name_the_option(tmp_path, text, option):
    conf = make_conf(tmp_path, text)
    with pytest.raises(exception.ConfigError) as info:
        conflib.validate(conf)
    assert option in str(info.value)
    assert 'pw@' not in str(info.value)


def test_aliases_are_multi_valued(tmp_path):
    conf = make_conf(tmp_path, (
        '[vgpu]\n'
        'alias = {"name": "a", "vgpu_type": "GRID M60-4Q", '
        '"device_type": "type-PCI"}\n'
        'alias = {"name": "a", "vgpu_type": "GRID M60-8Q", '
        '"device_type": "type-PCI"}\n'))
    conflib.validate(conf)
    (alias,) = aliaslib.parse_aliases(conf.vgpu.alias).values()
    assert [s['vgpu_types'] for s in alias.specs] == [['GRID M60-4Q'],
                                                      ['GRID M60-8Q']]


def test_same_named_aliases_need_a_device_type_as_in_nova(tmp_path):
    conf = make_conf(tmp_path, (
        '[vgpu]\n'
        'alias = {"name": "a", "vgpu_type": "GRID M60-4Q"}\n'
        'alias = {"name": "a", "vgpu_type": "GRID M60-8Q"}\n'))
    with pytest.raises(exception.InvalidAlias) as info:
        conflib.validate(conf)
    assert 'alias a: device_type' in str(info.value)
