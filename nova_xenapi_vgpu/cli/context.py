"""What commands share: configuration, the XAPI client, this host."""

import argparse
import os
import re
import sys

from oslo_config import cfg

from nova_xenapi_vgpu import conf as conflib
from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.host import dom0
from nova_xenapi_vgpu.host import identity
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.pci import stats as statslib
from nova_xenapi_vgpu.simulator import profiles
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import types as typeslib
from nova_xenapi_vgpu.xapi import session

ENV = {'url': 'XENAPI_URL', 'username': 'XENAPI_USERNAME',
       'password': 'XENAPI_PASSWORD'}
# What an OpaqueRef in a message may name, most likely first.
READABLE = ('VM', 'host', 'VGPU', 'PGPU', 'GPU_group', 'VGPU_type')
_OVERRIDES = (('url', 'connection_url'), ('username', 'connection_username'),
              ('password', 'connection_password'))


def usage_error(message):
    """Print a bad-usage message and exit 2, without a traceback."""
    sys.stderr.write('nova-xenapi-vgpu: error: %s\n' % message)
    raise SystemExit(2)


def add_global_options(parser):
    """The configuration and connection options every command shares."""
    parser.add_argument(
        '--config-file', action='append', default=[], metavar='PATH',
        help='An oslo.config file, e.g. /etc/nova/nova.conf (this '
             'project reads its [xenserver] and [vgpu] sections); may be '
             'repeated. Without it and without --config-dir, Nova\'s own '
             'files are read when present: nova.conf and nova.conf.d/ '
             'in ~/.nova/, ~/, /etc/nova/ or /etc/.')
    parser.add_argument(
        '--config-dir', action='append', default=[], metavar='DIR',
        help='A directory of *.conf files read in name order after the '
             'config files, as oslo.config does (e.g. '
             '/etc/nova/nova.conf.d); may be repeated.')
    parser.add_argument(
        '--url', default=os.environ.get(ENV['url']),
        help='XAPI URL, e.g. https://xenserver.example.com/ '
             '(env XENAPI_URL); overrides [xenserver] connection_url.')
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
    parser.add_argument(
        '--timeout', type=_seconds, metavar='SECONDS',
        help='Wait at most this long for each answer of XAPI and do not '
             'retry (overrides [xenserver] call_timeout, connect_timeout '
             'and connection_retries).')
    parser.add_argument(
        '--simulator', nargs='?', const=profiles.DEFAULT, metavar='PROFILE',
        help='Run against a built-in XAPI simulator started for this '
             'command (profile: %s by default; %s). Commands that change '
             'things need it said explicitly; without any XAPI configured, '
             'read-only commands use it and say so.' % (
                 profiles.DEFAULT, ', '.join(profiles.BUILTIN)))


def simulator_profile(argv):
    """``--simulator`` followed by a command or an option rather than a
    profile gets the default profile (argparse would take the command
    for one)."""
    argv = list(argv)
    commands = _command_words()
    for index, arg in enumerate(argv[:-1]):
        following = argv[index + 1]
        if arg == '--simulator' and (following in commands
                                     or following.startswith('-')):
            argv[index] = '--simulator=%s' % profiles.DEFAULT
    return argv


def _command_words():
    """The first word of every command (``gpu-groups`` of ``gpu-groups
    split``), and cliff's own."""
    from importlib import metadata
    names = {e.name for e in metadata.entry_points(
        group='nova_xenapi_vgpu.cli')}
    return {n.replace('_', ' ').split()[0] for n in names} | {
        'help', 'complete'}


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = 0
    if not value > 0:
        raise argparse.ArgumentTypeError(
            '%r: expected a positive number of seconds' % text[:20])
    return value


def config_sources(options):
    """(files, dirs, found by default) this run reads."""
    if options.config_file or options.config_dir:
        return options.config_file, options.config_dir, False
    files, dirs = conflib.default_sources()
    return files, dirs, True


def load_conf(options):
    """A validated ConfigOpts from files, flags and environment.

    Exits 2 with a message naming the option on bad configuration; warns
    (on stderr) of options this project does not know.
    """
    files, dirs, found = config_sources(options)
    _check_files(files, dirs, found)
    _check_url_flag(options.url)
    conf = cfg.ConfigOpts()
    conflib.register_opts(conf)
    try:
        conf(args=[], project='nova-xenapi-vgpu',
             default_config_files=files, default_config_dirs=dirs)
        _override(conf, options)
        conflib.validate(conf)
    except exception.ConfigError as exc:
        usage_error(str(exc))
    except (cfg.Error, ValueError) as exc:
        usage_error('configuration: %s' % conflib.plain_reason(exc))
    _warn_unknown(conflib.files_of(files, dirs))
    return conf


def _override(conf, options):
    for flag, name in _OVERRIDES:
        value = getattr(options, flag)
        if value is not None:
            conf.set_override(name, value, group='xenserver')
    if options.insecure:
        conf.set_override('insecure', True, group='xenserver')
    if options.timeout:
        for name in ('call_timeout', 'connect_timeout'):
            conf.set_override(name, options.timeout, group='xenserver')
        conf.set_override('connection_retries', 0, group='xenserver')


def _check_files(files, dirs, found):
    """Exit 2 for a file or directory that cannot be read; one found by
    default is named as Nova's, with how to choose another."""
    hint = ("; it is Nova's own, read by default: pass --config-file or "
            '--config-dir to read others') if found else ''
    for kind, paths, check in (('--config-file', files,
                                conflib.check_config_file),
                               ('--config-dir', dirs,
                                conflib.check_config_dir)):
        for path in paths:
            reason = check(path)
            if reason:
                usage_error('%s%s: %s%s' % ('' if found else kind + ' ',
                                            conflib.cut(path, 300), reason,
                                            hint))
    for path in conflib.files_of((), dirs):
        reason = conflib.check_config_file(path)
        if reason:
            usage_error('%s: %s' % (conflib.cut(path, 300), reason))


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
    pci = conflib.nova_pci_aliases(paths)
    if pci:
        sys.stderr.write(
            'nova-xenapi-vgpu: note: %s sets Nova\'s [pci] alias; those '
            'are Nova\'s own PCI passthrough, not read here: vGPU aliases '
            'go in [vgpu] alias\n' % ', '.join(pci))


class Context:
    """Lazily built shared state; ``close`` releases it."""

    def __init__(self, options):
        self.options = options
        self.simulator = None
        self.writing = None
        self._conf = self._client = self._host = self._dom0 = None

    @property
    def conf(self):
        """The validated configuration."""
        if self._conf is None:
            self._conf = load_conf(self.options)
        return self._conf

    @property
    def client(self):
        """The XAPI client: the configured host, else a simulator (asked
        for with --simulator, or for a read-only command, said on
        stderr)."""
        if self._client is None:
            conf = self.conf
            if self.options.simulator is not None:
                if self.options.url:
                    usage_error('--simulator and --url (or XENAPI_URL) '
                                'exclude each other')
                self._start_simulator(conf, self.options.simulator)
            elif not conf.xenserver.connection_url:
                self._no_xapi()
                self._start_simulator(conf, profiles.DEFAULT)
            self._client = session.XapiClient.from_conf(conf)
        return self._client

    def why_refused(self, exc):
        """A refused login in words: which setting gave the password (or
        that none was given) and how to fix it."""
        xenserver = self.conf.xenserver
        files, dirs, _ = config_sources(self.options)
        where = ', '.join(conflib.files_of(files, dirs)) or (
            '/etc/nova/nova.conf')
        head = 'XAPI at %s refused the login of %s (%s)' % (
            xenserver.connection_url, xenserver.connection_username,
            exc.code)
        if not xenserver.connection_password:
            return ('%s: no password was given; set [xenserver] '
                    'connection_password in %s, or XENAPI_PASSWORD (or '
                    '--password)' % (head, where))
        source = ('--password or XENAPI_PASSWORD'
                  if self.options.password is not None
                  else '[xenserver] connection_password in %s' % where)
        return ('%s: check the user name ([xenserver] connection_username '
                'or --username) and the password, given by %s' % (
                    head, source))

    def readable(self, text):
        """``text`` with each OpaqueRef as xe names the object: a VM or
        host by name-label and uuid, anything else by uuid."""
        def name(match):
            ref = match.group(0)
            for cls in READABLE:
                try:
                    record = self.client.call('%s.get_record' % cls, ref)
                except exception.XapiError:
                    continue
                if 'name_label' in record and cls in ('VM', 'host'):
                    return '%s (%s)' % (record['name_label'],
                                        record['uuid'])
                return '%s %s' % (cls, record['uuid'])
            return ref
        return re.sub(r'OpaqueRef:[0-9a-fA-F-]+', name, text)

    def will_write(self, what):
        """Say, before any XAPI call, that this command changes things:
        then it never runs on a simulator nobody asked for."""
        self.writing = what

    def _no_xapi(self):
        files, dirs, _ = config_sources(self.options)
        read = conflib.files_of(files, dirs)
        if read:
            usage_error('[xenserver] connection_url is not set in %s: set '
                        'it, or pass --url, or --simulator for the built-in '
                        'simulator' % ', '.join(read))
        if self.writing:
            usage_error(
                'no XenServer configured, and %s changes things: point it '
                'at a host with --config-file /etc/nova/nova.conf (its '
                '[xenserver] connection_url) or --url (XENAPI_URL), or ask '
                'for the built-in simulator with --simulator [PROFILE]'
                % self.writing)

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

    def _start_simulator(self, conf, profile):
        from nova_xenapi_vgpu.simulator import server
        try:
            self.simulator = server.Simulator(profile).start()
        except profiles.ProfileError as exc:
            usage_error('--simulator: %s' % exc)
        for name, value in (('connection_url', self.simulator.url),
                            ('connection_username', self.simulator.username),
                            ('connection_password',
                             self.simulator.password)):
            conf.set_override(name, value, group='xenserver')
        how = ('asked for with --simulator' if self.options.simulator
               else 'no XenServer configured')
        sys.stderr.write('Using the built-in XAPI simulator (profile %s) at '
                         '%s: %s\n' % (profile, self.simulator.url, how))

    def close(self):
        """Log out of XAPI and stop the simulator if one was started."""
        if self._client is not None:
            self._client.close()
        if self.simulator is not None:
            self.simulator.stop()
