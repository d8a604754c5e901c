"""``plugin path`` and ``plugin check``: the dom0 plugin for operators."""

from cliff import command

from nova_xenapi_vgpu import plugin_files
from nova_xenapi_vgpu.cli import output


class PluginPath(command.Command):
    """Print where this package keeps the dom0 plugin file."""

    def take_action(self, parsed_args):
        try:
            path = plugin_files.plugin_path()
        except FileNotFoundError as exc:
            self.app.stderr.write('%s\n' % exc)
            return 1
        self.app.stdout.write(path + '\n')
        return 0


class PluginCheck(output.ShowOne):
    """Check that this host's dom0 plugin is installed and compatible.

    Exits 1 when it is missing (or too old: then the error says so).
    """

    def take_action(self, parsed_args):
        dom0 = self.app.context.dom0
        version = dom0.version()
        columns = ('Host', 'Plugin', 'Installed', 'API version',
                   'Functions')
        self.installed = version is not None
        if version is None:
            return columns, (dom0.host_label, plugin_files.PLUGIN_NAME,
                             False, '', '')
        return columns, (dom0.host_label, plugin_files.PLUGIN_NAME, True,
                         version.get('api_version', ''),
                         ', '.join(version.get('functions', ())))

    def run(self, parsed_args):
        result = super().run(parsed_args)
        return result if self.installed else 1
