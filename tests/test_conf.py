"""Configuration options, their validation and the sample config."""

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from oslo_config import cfg

from nova_xenapi_vgpu import conf as conflib
from nova_xenapi_vgpu import exception

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
        'alias = {"name": "a", "vgpu_type": "GRID M60-4Q"}\n'
        'alias = {"name": "a", "vgpu_type": "GRID M60-8Q"}\n'))
    conflib.validate(conf)
    assert [conflib.parse_alias(v)['vgpu_type'] for v in conf.vgpu.alias] == [
        'GRID M60-4Q', 'GRID M60-8Q']


@given(st.one_of(st.text(max_size=40),
                 st.dictionaries(st.text(max_size=5),
                                 st.one_of(st.text(max_size=5),
                                           st.integers()),
                                 max_size=3).map(json.dumps)))
def test_parse_alias_accepts_or_refuses_cleanly(value):
    try:
        alias = conflib.parse_alias(value)
    except exception.ConfigError as exc:
        assert 'alias' in str(exc)
    else:
        assert isinstance(alias['name'], str) and alias['name']
