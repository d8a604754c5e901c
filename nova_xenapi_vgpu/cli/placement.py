"""``placement sync`` and ``placement serve``: this host in Placement."""

import sys
import threading
import uuid

from cliff import command

from nova_xenapi_vgpu.cli import context
from nova_xenapi_vgpu.cli.simulator import listen_address
from nova_xenapi_vgpu.vgpu_types import types as typeslib


def _needs(extra):
    context.usage_error("this command needs the '%s' extra: pip install "
                        "'nova-xenapi-vgpu[%s]'" % (extra, extra))


class Sync(command.Command):
    """Write this host's provider tree to a Placement service."""

    def get_parser(self, prog_name):
        from keystoneauth1 import loading
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
        from keystoneauth1 import adapter
        from keystoneauth1 import exceptions
        from keystoneauth1 import loading

        from nova_xenapi_vgpu.placement import sync
        from nova_xenapi_vgpu.placement import tree
        ctx = self.app.context
        inventory = ctx.inventory()
        standard = ctx.conf.vgpu.placement_standard_type
        for message in typeslib.missing(
                inventory, [standard] if standard else [],
                '[vgpu] placement_standard_type'):
            context.usage_error(message)
        node = parsed_args.nodename or inventory.host_name
        auth = loading.load_auth_from_argparse_arguments(parsed_args)
        reporter = sync.Reporter(adapter.Adapter(
            loading.load_session_from_argparse_arguments(parsed_args,
                                                         auth=auth),
            service_type='placement',
            endpoint_override=parsed_args.placement_url))
        try:
            providers = provider_tree.ProviderTree()
            providers.new_root(node, reporter.find(node) or str(uuid.uuid5(
                tree.NAMESPACE, inventory.host_uuid)))
            tree.update_provider_tree(inventory, providers, node,
                                      ctx.conf.vgpu.enabled_vgpu_types,
                                      standard)
            reporter.sync(providers, node)
        except (sync.PlacementError, exceptions.ClientException) as exc:
            context.usage_error('placement sync: %s' % exc)
        self.app.stdout.write('%s: %d providers, %d writes\n' % (
            node, len(providers.get_provider_uuids(node)), reporter.writes))
        return 0


class Serve(command.Command):
    """Serve a real Placement (SQLite, no auth; token "admin") for tests.

    Prints its URL as the first line.
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
