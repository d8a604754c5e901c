"""``placement sync`` and ``placement serve``: this host in Placement."""

import json
import logging
import re
import sys
import threading
import uuid

from cliff import command

from nova_xenapi_vgpu.cli import context
from nova_xenapi_vgpu.cli import output
from nova_xenapi_vgpu.cli.simulator import listen_address
from nova_xenapi_vgpu.vgpu_types import types as typeslib

# What a fresh Placement says while it sets up its database.
QUIET_LOGGERS = ('alembic', 'placement', 'oslo_db', 'oslo_policy',
                 'stevedore', 'keystonemiddleware')


def _needs(extra):
    context.usage_error("this command needs the '%s' extra: pip install "
                        "'nova-xenapi-vgpu[%s]'" % (extra, extra))


class Sync(output.ShowOne):
    """Write this host's provider tree to a Placement service.

    Credentials are keystoneauth's --os-* options (or OS_* variables):
    --os-token for the default --os-auth-type admin_token. Exits 1 when
    Placement cannot be reached or refuses a write (its title and detail
    said), 2 for missing credentials or a missing extra.
    """

    def get_parser(self, prog_name):
        try:
            from keystoneauth1 import loading
        except ImportError:
            _needs('placement')
        parser = super().get_parser(prog_name)
        parser.add_argument('--placement-url', required=True, metavar='URL',
                            help='The Placement endpoint.')
        parser.add_argument('--nodename', metavar='NAME',
                            help='The compute node provider (default: the '
                                 'XenServer host name).')
        loading.register_session_argparse_arguments(parser)
        loading.register_auth_argparse_arguments(parser, sys.argv[1:],
                                                 default='admin_token')
        return parser

    def take_action(self, parsed_args):
        try:
            from nova.compute import provider_tree
        except ImportError:
            _needs('nova')
        from keystoneauth1 import exceptions

        from nova_xenapi_vgpu.placement import sync
        from nova_xenapi_vgpu.placement import tree
        reporter = sync.Reporter(_adapter(parsed_args))
        ctx = self.app.context
        inventory = ctx.inventory()
        standard = ctx.conf.vgpu.placement_standard_type
        for message in typeslib.missing(
                inventory, [standard] if standard else [],
                '[vgpu] placement_standard_type'):
            context.usage_error(message)
        node = parsed_args.nodename or inventory.host_name
        try:
            providers = provider_tree.ProviderTree()
            providers.new_root(node, reporter.find(node) or str(uuid.uuid5(
                tree.NAMESPACE, inventory.host_uuid)))
            tree.update_provider_tree(inventory, providers, node,
                                      ctx.conf.vgpu.enabled_vgpu_types,
                                      standard)
            reporter.sync(providers, node)
        except sync.PlacementError as exc:
            return _failed('Placement refused %s %s: %s' % (
                exc.method, exc.url, placement_error(exc.status, exc.body)))
        except exceptions.ConnectionError as exc:
            return _failed('Cannot reach Placement at %s: %s' % (
                parsed_args.placement_url, _cause(exc)))
        except exceptions.ClientException as exc:
            return _failed('Placement at %s: %s' % (
                parsed_args.placement_url, exc))
        return ('Node', 'Providers', 'Writes'), (
            node, len(providers.get_provider_uuids(node)), reporter.writes)

    def run(self, parsed_args):
        try:
            return super().run(parsed_args)
        except _Failed as exc:
            self.app.stderr.write('placement sync: %s\n' % exc)
            return 1


class _Failed(Exception):
    """Placement could not be written: the reason, in words."""


def _failed(message):
    raise _Failed(message)


def _adapter(parsed_args):
    """A keystoneauth Adapter for Placement; exit 2 naming the options
    when the credentials are missing."""
    from keystoneauth1 import adapter
    from keystoneauth1 import exceptions
    from keystoneauth1 import loading
    auth_type = parsed_args.os_auth_type or 'admin_token'
    if auth_type == 'admin_token' and not getattr(parsed_args, 'os_token',
                                                  None):
        context.usage_error(NO_CREDENTIALS)
    try:
        auth = loading.load_auth_from_argparse_arguments(parsed_args)
    except exceptions.MissingRequiredOptions as exc:
        context.usage_error('placement sync: --os-auth-type %s needs %s' % (
            auth_type, ', '.join('--os-%s' % o.dest.replace('_', '-')
                                 for o in exc.options)))
    except exceptions.NoMatchingPlugin as exc:
        context.usage_error('placement sync: --os-auth-type: %s' % exc)
    return adapter.Adapter(
        loading.load_session_from_argparse_arguments(parsed_args,
                                                     auth=auth),
        service_type='placement',
        endpoint_override=parsed_args.placement_url)


def _cause(exc):
    """The socket's reason (``Connection refused``) out of urllib3's
    chain of wrappers, else the whole message."""
    match = re.search(r'\[Errno -?\d+\] ([^"\')]+)', str(exc))
    return match.group(1) if match else str(exc)


NO_CREDENTIALS = (
    'placement sync needs credentials for Placement: --os-token TOKEN '
    '(OS_TOKEN; the default --os-auth-type admin_token), or e.g. '
    '--os-auth-type password --os-auth-url URL --os-username NAME '
    '--os-password ... --os-project-name NAME (or the OS_* variables)')


def placement_error(status, body):
    """Placement's own words for a failed request: ``title: detail``
    of each error in its JSON body, else the status and the text."""
    try:
        errors = json.loads(body)['errors']
        return '; '.join('HTTP %s %s: %s' % (
            e.get('status', status), e.get('title', ''),
            ' '.join(str(e.get('detail', '')).split())) for e in errors)
    except (ValueError, KeyError, TypeError, AttributeError):
        return 'HTTP %s: %s' % (status, ' '.join(str(body).split())[:300])


class Serve(command.Command):
    """Serve a real Placement (SQLite, no auth; token "admin") for tests.

    Prints its URL as the first line; quiet otherwise (-v shows the
    database migrations and the like).
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--listen', default='127.0.0.1:0',
                            metavar='HOST:PORT',
                            help='Address to serve on (port 0: a free one).')
        parser.add_argument('--db', metavar='PATH',
                            help='SQLite file (default: a temporary one).')
        return parser

    def take_action(self, parsed_args):
        if self.app.options.verbose_level < 2:
            for name in QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.WARNING)
        try:
            from nova_xenapi_vgpu.placement import service
        except ImportError:
            _needs('nova')
        try:
            host, port = listen_address(parsed_args.listen)
        except ValueError:
            context.usage_error('--listen %s: expected HOST:PORT' %
                                parsed_args.listen)
        try:
            with service.serve(host, port, parsed_args.db) as placement:
                self.app.stdout.write(placement.endpoint_override + '\n')
                self.app.stdout.flush()
                threading.Event().wait()
        except OSError as exc:
            context.usage_error('--listen/--db: %s' % exc)
        except KeyboardInterrupt:
            return 130
        return 0
