"""``simulator``: serve a simulated XenServer pool until interrupted."""

import threading

from cliff import command

from nova_xenapi_vgpu.cli import context
from nova_xenapi_vgpu.simulator import faults
from nova_xenapi_vgpu.simulator import profiles
from nova_xenapi_vgpu.simulator import server


def listen_address(value):
    host, sep, port = value.rpartition(':')
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(value)
    return host.strip('[]') or '127.0.0.1', int(port)


class Simulator(command.Command):
    """Serve the XAPI simulator; prints its URL as the first line.

    It accepts the credentials of the global --username and --password
    options (default root / xenroot).
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--listen', default='127.0.0.1:0',
                            metavar='HOST:PORT',
                            help='Address of the pool master (port 0: a '
                                 'free port). Members take the next '
                                 'loopback addresses, same port.')
        parser.add_argument('--profile', default=profiles.DEFAULT,
                            metavar='NAME|FILE',
                            help='Built-in profile (%s) or a YAML/JSON '
                                 'file.' % ', '.join(profiles.BUILTIN))
        parser.add_argument('--tls-cert', metavar='FILE',
                            help='PEM certificate: serve HTTPS.')
        parser.add_argument('--tls-key', metavar='FILE',
                            help='PEM private key for --tls-cert.')
        parser.add_argument('--latency-ms', type=int, default=0,
                            help='Delay added to every call.')
        parser.add_argument('--start-delay-ms', type=int, metavar='MS',
                            help='Boot window of every VM start or move: '
                                 'the VGPUs stay scheduled, not resident, '
                                 'this long (default: the profile\'s, 0).')
        parser.add_argument('--fail', action='append', default=[],
                            metavar='METHOD:N:CODE[:PARAM...]',
                            help='Fail the Nth call of METHOD with CODE. '
                                 'METHOD@plug (e.g. VM.start_on@plug) '
                                 'fails inside the boot window, after the '
                                 'reservation.')
        parser.add_argument('--expire-sessions-every', type=float,
                            metavar='SECONDS',
                            help='Invalidate every session this often, '
                                 'as a xapi restart would.')
        parser.add_argument('--drop', action='append', default=[],
                            metavar='METHOD',
                            help='Drop the connection on the next call of '
                                 'METHOD (the call is not run).')
        parser.add_argument('--lose-reply', action='append', default=[],
                            metavar='METHOD',
                            help='Run the next call of METHOD, then drop '
                                 'the connection instead of answering: '
                                 'done, but the reply is lost.')
        return parser

    def take_action(self, parsed_args):
        sim = self._build(parsed_args)
        try:
            sim.start()
        except (OSError, ValueError) as exc:
            context.usage_error('--listen %s: cannot serve there: %s' % (
                parsed_args.listen, getattr(exc, 'strerror', None) or exc))
        try:
            self.app.stdout.write(sim.url + '\n')
            for url in sim.urls[1:]:
                self.app.stderr.write('pool member listening at %s\n' % url)
            self.app.stdout.flush()
            self._serve(sim, parsed_args.expire_sessions_every)
        except KeyboardInterrupt:
            return 130
        finally:
            sim.stop()
        return 0

    @staticmethod
    def _serve(sim, expire_every):
        stop = threading.Event()
        if expire_every:
            while not stop.wait(expire_every):
                sim.expire_sessions()
        stop.wait()

    def _build(self, args):
        every = args.expire_sessions_every
        if every is not None and every <= 0:
            context.usage_error('--expire-sessions-every must be positive')
        if args.start_delay_ms is not None and args.start_delay_ms < 0:
            context.usage_error('--start-delay-ms must not be negative')
        if bool(args.tls_cert) != bool(args.tls_key):
            context.usage_error('--tls-cert and --tls-key go together')
        try:
            host, port = listen_address(args.listen)
            rules = [faults.parse_fail_spec(spec) for spec in args.fail]
            sim = server.Simulator(
                args.profile, host, port,
                self.app.options.username or 'root',
                self.app.options.password or 'xenroot', args.tls_cert,
                args.tls_key, args.latency_ms,
                start_delay_ms=args.start_delay_ms)
        except profiles.ProfileError as exc:
            context.usage_error(str(exc))
        except ValueError as exc:
            context.usage_error('--listen/--fail: bad value %s' % exc)
        except OSError as exc:
            context.usage_error('--tls-cert/--tls-key: %s' % exc)
        for method, nth, error in rules:
            sim.faults.fail_call(method, nth, *error)
        for method in args.drop:
            sim.faults.drop_connection(method)
        for method in args.lose_reply:
            sim.faults.lose_reply(method)
        return sim
