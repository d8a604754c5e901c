"""What commands share: configuration, the XAPI client, this host."""

import os
import sys

from oslo_config import cfg

from nova_xenapi_vgpu import conf as conflib
from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.host import dom0
from nova_xenapi_vgpu.host import identity
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.pci import stats as statslib
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import types as typeslib
from nova_xenapi_vgpu.xapi import session

ENV = {'url': 'XENAPI_URL', 'username': 'XENAPI_USERNAME',
       'password': 'XENAPI_PASSWORD'}
_OVERRIDES = (('url', 'connection_url'), ('username', 'connection_username'),
              ('password', 'connection_password'))


def usage_error(message):
    """Print a bad-usage message and exit 2, without a traceback."""
    sys.stderr.write('nova-xenapi-vgpu: error: %s\n' % message)
    raise SystemExit(2)


def add_global_options(parser):
    """The connection options every command shares."""
    parser.add_argument(
        '--config-file', action='append', default=[], metavar='PATH',
        help='oslo.config file with [xenserver] and [vgpu] sections; may '
             'be repeated.')
    parser.add_argument(
        '--url', default=os.environ.get(ENV['url']),
        help='XAPI URL, e.g. https://xenserver.example.com/ '
             '(env XENAPI_URL). Without it and without a config file, '
             'commands run against the built-in simulator.')
    parser.add_argument(
        '--username', default=os.environ.get(ENV['username']),
        help='XAPI user name (env XENAPI_USERNAME).')
    parser.add_argument(
        '--password', default=os.environ.get(ENV['password']),
        help='XAPI password (env XENAPI_PASSWORD, preferred: a flag shows '
             'in the process list).')
    parser.add_argument(
        '--insecure', action='store_true', default=None,
        help='Do not verify the TLS certificate of XAPI.')


def load_conf(options):
    """A validated ConfigOpts from files, flags and environment.

    Exits 2 with a message naming the option on bad configuration; warns
    (on stderr) of options this project does not know.
    """
    _check_files(options.config_file)
    _check_url_flag(options.url)
    conf = cfg.ConfigOpts()
    conflib.register_opts(conf)
    try:
        conf(args=[], project='nova-xenapi-vgpu',
             default_config_files=options.config_file)
        for flag, name in _OVERRIDES:
            value = getattr(options, flag)
            if value is not None:
                conf.set_override(name, value, group='xenserver')
        if options.insecure:
            conf.set_override('insecure', True, group='xenserver')
        conflib.validate(conf)
    except exception.ConfigError as exc:
        usage_error(str(exc))
    except (cfg.Error, ValueError) as exc:
        usage_error('configuration: %s' % conflib.plain_reason(exc))
    _warn_unknown(options.config_file)
    return conf


def _check_files(paths):
    for path in paths:
        reason = conflib.check_config_file(path)
        if reason:
            usage_error('--config-file %s: %s' % (conflib.cut(path, 300),
                                                  reason))


def _check_url_flag(url):
    reason = url is not None and conflib.check_url(url)
    if reason:
        usage_error('--url (or XENAPI_URL) %s' % reason)


def _warn_unknown(paths):
    for path, group, option, close in conflib.unknown_options(paths):
        hint = '; did you mean %s?' % close if close else ''
        sys.stderr.write('nova-xenapi-vgpu: warning: %s: [%s] %s is not an '
                         'option of nova-xenapi-vgpu%s\n' % (
                             path, group, option, hint))


class Context:
    """Lazily built shared state; ``close`` releases it."""

    def __init__(self, options):
        self.options = options
        self.simulator = None
        self._conf = self._client = self._host = self._dom0 = None

    @property
    def conf(self):
        """The validated configuration."""
        if self._conf is None:
            self._conf = load_conf(self.options)
        return self._conf

    @property
    def client(self):
        """The XAPI client; the built-in simulator when nothing is set."""
        if self._client is None:
            conf = self.conf
            if not conf.xenserver.connection_url:
                if self.options.config_file:
                    usage_error('[xenserver] connection_url is required '
                                'when a config file is given')
                self._start_simulator(conf)
            self._client = session.XapiClient.from_conf(conf)
        return self._client

    @property
    def host_ref(self):
        """This compute host inside the pool."""
        if self._host is None:
            self._host = identity.resolve_host(
                self.client, self.conf.xenserver.host_uuid)
        return self._host

    def inventory(self):
        """This host's inventory, read now (NUMA from the dom0 plugin)."""
        return reader.read_inventory(self.client, self.host_ref,
                                     dom0=self.dom0)

    def inventory_of(self, host_ref):
        """Another host's inventory (NUMA from its own dom0 plugin)."""
        return reader.read_inventory(self.client, host_ref,
                                     dom0=dom0.Dom0Plugin(self.client,
                                                          host_ref))

    def host_of(self, vm):
        """The host a VM runs on, or None."""
        host = self.client.call('VM.get_resident_on', vm)
        return None if host == 'OpaqueRef:NULL' else host

    def resolve_host_name(self, name):
        """A host of the pool by name label or uuid; exit 2 if none."""
        for ref, record in self.client.call('host.get_all_records').items():
            if name in (record['name_label'], record['uuid'],
                        record['hostname']):
                return ref
        usage_error('--host %s: no such host in the pool' % name)

    @property
    def aliases(self):
        """The parsed ``[vgpu] alias`` values."""
        return aliaslib.parse_aliases(self.conf.vgpu.alias,
                                      self.conf.vgpu.numa_policy)

    def stats(self, inventory=None):
        """This host's vGPU pools, with the stopped instances' claims;
        one warning per enabled type the host does not offer."""
        inventory = inventory or self.inventory()
        enabled = self.conf.vgpu.enabled_vgpu_types
        for message in typeslib.missing(inventory, enabled,
                                        '[vgpu] enabled_vgpu_types'):
            self.warn(message)
        return statslib.VgpuStats(inventory, enabled)

    def warn(self, message):
        """One warning line on stderr."""
        sys.stderr.write('nova-xenapi-vgpu: warning: %s\n' % message)

    @property
    def dom0(self):
        """The dom0 plugin client for this host."""
        if self._dom0 is None:
            self._dom0 = dom0.Dom0Plugin(self.client, self.host_ref)
        return self._dom0

    def _start_simulator(self, conf):
        from nova_xenapi_vgpu.simulator import profiles
        from nova_xenapi_vgpu.simulator import server
        self.simulator = server.Simulator().start()
        for name, value in (('connection_url', self.simulator.url),
                            ('connection_username', self.simulator.username),
                            ('connection_password',
                             self.simulator.password)):
            conf.set_override(name, value, group='xenserver')
        sys.stderr.write('No XenServer configured: using the built-in XAPI '
                         'simulator (profile %s) at %s\n' % (
                             profiles.DEFAULT, self.simulator.url))

    def close(self):
        """Log out of XAPI and stop the simulator if one was started."""
        if self._client is not None:
            self._client.close()
        if self.simulator is not None:
            self.simulator.stop()
