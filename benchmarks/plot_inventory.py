#!/usr/bin/env python3
"""Plot calls and time per periodic task against host size: docs/*.png.

Upstream Nova's per-object refresh (twice per periodic task) beside this
project's periodic refresh and full read, on single hosts of 2 to 32 M60
pGPUs with 5 ms per XAPI call. Needs matplotlib (``pip install
matplotlib``); the figures come from ``benchmarks/inventory.py``'s
functions.

Usage: python benchmarks/plot_inventory.py [--repeat 5]
                                           [--out docs/inventory.png]
"""

import argparse

import inventory  # benchmarks/inventory.py, beside this script
import matplotlib
import matplotlib.pyplot as plt

from nova_xenapi_vgpu.simulator import profiles
from nova_xenapi_vgpu.simulator import server

matplotlib.use('Agg')
SIZES = (2, 4, 8, 16, 32)
SERIES = (('upstream, per task', inventory.upstream_task),
          ('full read', inventory.full_read),
          ('periodic refresh', inventory.incremental))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--latency-ms', type=float, default=5.0)
    parser.add_argument('--out', default='docs/inventory.png')
    args = parser.parse_args()
    figures = {name: [] for name, _ in SERIES}
    for size in SIZES:
        with server.Simulator(profiles.generate(1, size),
                              latency_ms=args.latency_ms) as sim:
            for name, func in SERIES:
                figures[name].append(inventory.measure(sim, func,
                                                       args.repeat))
        print(size, {n: f[-1] for n, f in figures.items()})
    fig, (calls_ax, time_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for name, points in figures.items():
        calls_ax.plot(SIZES, [c for c, _ in points], marker='o', label=name)
        time_ax.plot(SIZES, [t for _, t in points], marker='o', label=name)
    calls_ax.set(xlabel='pGPUs on the host', ylabel='XAPI calls',
                 title='Calls per periodic task')
    time_ax.set(xlabel='pGPUs on the host', ylabel='ms',
                title='Time per periodic task (%.0f ms per call)'
                % args.latency_ms)
    for axis in (calls_ax, time_ax):
        axis.set_xscale('log', base=2)
        axis.grid(True, alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print('wrote %s' % args.out)


if __name__ == '__main__':
    main()
