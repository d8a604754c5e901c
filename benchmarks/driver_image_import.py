#!/usr/bin/env python3
"""The driver's side of an image import: its memory while it streams.

Runs ``nova-xenapi-vgpu simulator`` as a subprocess and, in this process,
streams ``--gib`` GiB of zeros into a VDI through the driver's
``xapi.vdi_import.import_raw_vdi`` (what ``XenAPIDriver.spawn`` calls
with Glance's chunks), handing it 64 KiB chunks as Nova's image API
does. Prints this process's RSS before, its peak (VmHWM) and the time;
the last line is ``gib= seconds= mib_per_s= rss_before_mib= hwm_mib=``.

Usage: python benchmarks/driver_image_import.py [--gib 1]
"""

import argparse
import json
import os
import subprocess
import sys
import time

from nova_xenapi_vgpu.xapi import session
from nova_xenapi_vgpu.xapi import vdi_import

GIB = 1024 ** 3
CHUNK = 64 * 1024  # glanceclient's chunk size
PROFILE = {'hosts': [{'name': 'xs-import', 'pgpus': [],
                      'local_sr': {'type': 'ext', 'size_gib': 64}}]}


def kib(field):
    """A memory field of this process's /proc status, in KiB."""
    with open('/proc/self/status', encoding='ascii') as status:
        for line in status:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise ValueError(field)


def fill(size):
    """``fill(body)`` writing ``size`` zero bytes in Glance's chunks."""
    def write(body):
        piece = b'\0' * CHUNK
        for _ in range(size // CHUNK):
            body.write(piece)
        body.write(b'\0' * (size % CHUNK))
    return write


def measure(gib, url):
    """Import ``gib`` GiB through the driver's path; figures."""
    with session.XapiClient(url, 'root', 'xenroot') as client:
        host = client.call('host.get_all')[0]
        sr = client.call('pool.get_default_SR',
                         client.call('pool.get_all')[0])
        vdi = client.call('VDI.create', {
            'name_label': 'image', 'SR': sr, 'type': 'user',
            'virtual_size': str(gib * GIB), 'other_config': {}})
        before = kib('VmRSS')
        started = time.perf_counter()
        vdi_import.import_raw_vdi(client, client.call(
            'host.get_address', host), vdi, 'raw', gib * GIB,
            fill(gib * GIB))
        seconds = time.perf_counter() - started
        return {'gib': gib, 'seconds': round(seconds, 2),
                'mib_per_s': round(gib * 1024 / seconds, 1),
                'rss_before_mib': round(before / 1024.0, 1),
                'hwm_mib': round(kib('VmHWM') / 1024.0, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--gib', type=int, default=1)
    args = parser.parse_args()
    path = os.path.join(os.environ.get('TMPDIR', '/tmp'),
                        'driver-import-%d.json' % os.getpid())
    with open(path, 'w', encoding='utf-8') as stream:
        json.dump(PROFILE, stream)
    process = subprocess.Popen(
        [sys.executable, '-m', 'nova_xenapi_vgpu.cli.main', 'simulator',
         '--profile', path], stdout=subprocess.PIPE, text=True)
    try:
        figures = measure(args.gib, process.stdout.readline().strip())
    finally:
        process.terminate()
        process.wait(10)
        os.unlink(path)
    print(' '.join('%s=%s' % item for item in figures.items()))


if __name__ == '__main__':
    main()
