#!/usr/bin/env python3
"""Simulator throughput: calls per second through the real XenAPI SDK.

``--revision REV`` also measures the simulator of another commit, run the
same way in the same conditions (its package taken with ``git archive``
into a temporary folder, imported first), so that a "before" figure comes
from this script, not from memory.

Usage: python benchmarks/simulator_throughput.py [--calls 2000] [--threads 4]
                                                 [--revision REV]
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

import XenAPI

from nova_xenapi_vgpu.simulator import profiles
from nova_xenapi_vgpu.simulator import server

CALLS = [
    ('host.get_all', lambda x, h, p: x.host.get_all()),
    ('PGPU.get_record', lambda x, h, p: x.PGPU.get_record(p)),
    ('PGPU.get_all_records_where (host)', lambda x, h, p:
     x.PGPU.get_all_records_where('field "host" = "%s"' % h)),
    ('VGPU_type.get_all_records', lambda x, h, p:
     x.VGPU_type.get_all_records()),
]


def run(url, call, count, threads):
    """Calls per second of ``call`` spread over ``threads`` sessions."""
    def worker(n):
        session = XenAPI.Session(url)
        session.login_with_password('root', 'xenroot', '1.0', 'bench')
        xapi = session.xenapi
        host = xapi.host.get_all()[0]
        pgpu = xapi.host.get_PGPUs(host)[0]
        barrier.wait()
        for _ in range(n):
            call(xapi, host, pgpu)
    barrier = threading.Barrier(threads + 1)
    workers = [threading.Thread(target=worker, args=(count // threads,))
               for _ in range(threads)]
    for thread in workers:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in workers:
        thread.join()
    return (count // threads * threads) / (time.perf_counter() - start)


def measure(calls, threads, label):
    profile = profiles.generate(hosts=4, pgpus_per_host=16)
    with server.Simulator(profile) as sim:
        print('%s: simulator with 4 hosts x 16 pGPUs, %d calls over %d '
              'threads' % (label, calls, threads))
        for name, call in CALLS:
            print('%-36s %10.0f calls/s' % (
                name, run(sim.url, call, calls, threads)), flush=True)


def measure_revision(revision, calls, threads):
    """The same measurement with the package of ``revision``."""
    root = pathlib.Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as folder:
        archive = subprocess.run(
            ['git', 'archive', revision, 'nova_xenapi_vgpu'], cwd=root,
            check=True, capture_output=True).stdout
        subprocess.run(['tar', '-x', '-C', folder], input=archive,
                       check=True)
        subprocess.run(
            [sys.executable, __file__, '--calls', str(calls), '--threads',
             str(threads), '--label', revision], check=True,
            env=dict(os.environ, PYTHONPATH=folder))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--calls', type=int, default=2000)
    parser.add_argument('--threads', type=int, default=4)
    parser.add_argument('--revision', help='a commit to measure as well')
    parser.add_argument('--label', default='this tree',
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    measure(args.calls, args.threads, args.label)
    if args.revision:
        measure_revision(args.revision, args.calls, args.threads)


if __name__ == '__main__':
    main()
