#!/usr/bin/env python3
"""Simulator throughput: calls per second through the real XenAPI SDK.

Usage: python benchmarks/simulator_throughput.py [--calls 2000] [--threads 4]
"""

import argparse
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--calls', type=int, default=2000)
    parser.add_argument('--threads', type=int, default=4)
    args = parser.parse_args()
    profile = profiles.generate(hosts=4, pgpus_per_host=16)
    with server.Simulator(profile) as sim:
        print('simulator with 4 hosts x 16 pGPUs, %d calls over %d threads'
              % (args.calls, args.threads))
        for name, call in CALLS:
            print('%-36s %10.0f calls/s' % (
                name, run(sim.url, call, args.calls, args.threads)))


if __name__ == '__main__':
    main()
