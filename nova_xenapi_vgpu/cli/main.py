"""Entry point of ``nova-xenapi-vgpu``."""

import sys

from cliff import app
from cliff import commandmanager

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.cli import context

# Failures that a change of configuration fixes: exit 2, like bad usage.
CONFIG_ERRORS = (exception.XapiTlsError, exception.ConfigError,
                 exception.HostNotFound)

try:
    from importlib import metadata
    VERSION = metadata.version('nova-xenapi-vgpu')
except Exception:  # noqa: BLE001 - running from a source tree
    VERSION = 'unknown'


class NovaXenapiVgpuApp(app.App):
    """vGPUs for OpenStack Nova on XenServer."""

    def __init__(self):
        super().__init__(
            description='vGPUs for OpenStack Nova on XenServer through '
                        "Nova's PCI framework.",
            version=VERSION,
            command_manager=commandmanager.CommandManager(
                'nova_xenapi_vgpu.cli'),
            deferred_help=True)
        self.context = None
        self.error = None

    def build_option_parser(self, description, version,
                            argparse_kwargs=None):
        parser = super().build_option_parser(description, version,
                                             argparse_kwargs)
        context.add_global_options(parser)
        return parser

    def initialize_app(self, argv):
        self.context = context.Context(self.options)

    def prepare_to_run_command(self, cmd):
        """A refused login exits 2 naming the setting to fix; any other
        XAPI failure exits 1 with its code, its refs as xe names them."""
        run = cmd.run

        def explained(parsed_args):
            try:
                return run(parsed_args)
            except exception.AuthenticationFailed as exc:
                self.stderr.write('%s\n' % self.context.why_refused(exc))
                return 2
            except exception.XapiError as exc:
                self.stderr.write('%s\n' % self._readable(str(exc)))
                return 1
        cmd.run = explained

    def _readable(self, text):
        try:
            return self.context.readable(text)
        except (exception.XapiError, exception.XapiConnectionError):
            return text

    def run_subcommand(self, argv):
        result = super().run_subcommand(argv)
        return 2 if isinstance(self.error, CONFIG_ERRORS) else result

    def clean_up(self, cmd, result, err):
        self.error = err
        if self.context is not None:
            self.context.close()


def main(argv=None):
    """Run the command line; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    return NovaXenapiVgpuApp().run(context.simulator_profile(argv)
                                   or ['--help'])


if __name__ == '__main__':
    sys.exit(main())
