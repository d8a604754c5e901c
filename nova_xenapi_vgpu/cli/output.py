"""What every command's output shares, as the ``openstack`` CLI does it:
``-f table|json|yaml|csv|value``, tables that follow the terminal and
never break a word (a PCI address stays whole), lists as lists and
numbers as numbers in JSON/YAML, and a word on stderr when there is
nothing to show."""

import os

from cliff import columns
from cliff import lister
from cliff import show
from cliff.formatters import table

CAPACITY_HELP = (
    'Capacity: vGPUs of the type the pGPU(s) could hold if empty; In use: '
    'vGPUs resident or being started there now; '
    'Remaining: what XAPI would still give (0 while another type holds '
    'the pGPU: one type per pGPU).')


class Items(columns.FormattableColumn):
    """A list: comma-separated in a table (``-`` for an unknown), a list
    in JSON/YAML (null for an unknown)."""

    def __init__(self, value):
        super().__init__(tuple(value))

    def human_readable(self):
        return ', '.join('-' if v is None else str(v) for v in self._value)

    def machine_readable(self):
        return list(self._value)


class Lines(Items):
    """Sentences: one a line in a table, a list in JSON/YAML."""

    def human_readable(self):
        return '\n'.join(str(v) for v in self._value)


class Table(table.TableFormatter):
    """cliff's table, whose columns never shrink below their longest
    word: a PCI address or a uuid is never cut across lines."""

    @staticmethod
    def _assign_max_widths(x, max_width, min_width=0, fit_width=False):
        table.TableFormatter._assign_max_widths(x, max_width, min_width,
                                                fit_width)
        for index, field in enumerate(x.field_names):
            if field not in x.max_width:
                continue
            words = [len(word) for row in x.rows
                     for word in str(row[index]).split()]
            x.max_width[field] = max([x.max_width[field]] + words)


class _Output:
    """Our table formatter; the width of the terminal (``COLUMNS`` too)
    unless --max-width says otherwise."""

    def _load_formatter_plugins(self):
        plugins = super()._load_formatter_plugins()
        for extension in plugins:
            if extension.name == 'table':
                extension.obj = Table()
        return plugins

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        width = os.environ.get('COLUMNS', '')
        if 'CLIFF_MAX_TERM_WIDTH' not in os.environ and width.isdigit():
            parser.set_defaults(max_width=int(width))
        return parser


class Lister(_Output, lister.Lister):
    """A listing; ``self.nothing`` is said on stderr when it is empty."""

    nothing = 'nothing to list'

    def produce_output(self, parsed_args, column_names, data):
        data = list(data)
        if not data:
            self.app.stderr.write('%s\n' % self.nothing)
            if parsed_args.formatter in ('table', 'value'):
                return 0
        return super().produce_output(parsed_args, column_names, data)


class ShowOne(_Output, show.ShowOne):
    """One object, field by field."""
