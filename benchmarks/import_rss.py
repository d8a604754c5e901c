#!/usr/bin/env python3
"""The simulator's memory while it imports an image: PUT /import_raw_vdi.

Runs ``nova-xenapi-vgpu simulator`` as a subprocess, streams an image of
``--gib`` GiB of zeros into a VDI with http.client in 1 MiB pieces and
samples the subprocess's resident set size (/proc/PID/status) all along.
Prints the RSS before the import, its peak during it (VmHWM) and the
import's outcome; ``--json`` prints them as one JSON object.

Usage: python benchmarks/import_rss.py [--gib 1] [--json]
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

import XenAPI

GIB = 1024 ** 3
MIB = 1024 ** 2
PROFILE = {'hosts': [{'name': 'xs-import', 'pgpus': [],
                      'local_sr': {'type': 'ext', 'size_gib': 64}}]}


def rss_kib(pid, field='VmRSS'):
    """A memory field of /proc/PID/status, in KiB."""
    with open('/proc/%d/status' % pid, encoding='ascii') as status:
        for line in status:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise ValueError(field)


def start_simulator(profile_path):
    """The simulator subprocess and its URL (its first line)."""
    process = subprocess.Popen(
        [sys.executable, '-m', 'nova_xenapi_vgpu.cli.main', 'simulator',
         '--profile', profile_path], stdout=subprocess.PIPE, text=True)
    return process, process.stdout.readline().strip()


def put_zeros(url, path, size):
    """Stream ``size`` zero bytes with http.client; the HTTP status."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port)
    connection.putrequest('PUT', path)
    connection.putheader('Content-Length', str(size))
    connection.endheaders()
    piece = b'\0' * MIB
    for _ in range(size // MIB):
        connection.send(piece)
    connection.send(b'\0' * (size % MIB))
    response = connection.getresponse()
    response.read()
    return response.status


def measure(gib, profile_path):
    """Import ``gib`` GiB; figures as a dict."""
    process, url = start_simulator(profile_path)
    try:
        session = XenAPI.Session(url)
        session.login_with_password('root', 'xenroot', '1.0', 'bench')
        xapi = session.xenapi
        (pool,) = xapi.pool.get_all()
        vdi = xapi.VDI.create({
            'name_label': 'image', 'name_description': '',
            'SR': xapi.pool.get_default_SR(pool),
            'virtual_size': str(gib * GIB), 'type': 'user',
            'sharable': False, 'read_only': False, 'other_config': {},
            'xenstore_data': {}, 'sm_config': {}, 'tags': []})
        task = xapi.task.create('import', '')
        before = rss_kib(process.pid)
        samples, done = [before], threading.Event()

        def sample():
            while not done.wait(0.02):
                samples.append(rss_kib(process.pid))
        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.perf_counter()
        status = put_zeros(url, '/import_raw_vdi?' + urllib.parse.urlencode(
            {'session_id': session._session, 'vdi': vdi, 'task_id': task}),
            gib * GIB)
        while xapi.task.get_status(task) == 'pending':
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        return {'gib': gib, 'http_status': status,
                'task_status': xapi.task.get_status(task),
                'rss_before_mib': before / 1024.0,
                'rss_peak_sampled_mib': max(samples) / 1024.0,
                'vm_hwm_mib': rss_kib(process.pid, 'VmHWM') / 1024.0,
                'seconds': seconds,
                'written': xapi.VDI.get_physical_utilisation(vdi)}
    finally:
        process.terminate()
        process.wait(10)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--gib', type=int, default=1)
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args()
    path = os.path.join(os.environ.get('TMPDIR', '/tmp'),
                        'import-rss-%d.json' % os.getpid())
    with open(path, 'w', encoding='utf-8') as stream:
        json.dump(PROFILE, stream)
    try:
        figures = measure(args.gib, path)
    finally:
        os.unlink(path)
    if args.json:
        print(json.dumps(figures))
        return
    print('import of %(gib)d GiB: HTTP %(http_status)d, task %(task_status)s,'
          ' %(written)s bytes written in %(seconds).1f s' % figures)
    print('simulator RSS before %(rss_before_mib).1f MiB, peak sampled '
          '%(rss_peak_sampled_mib).1f MiB, VmHWM %(vm_hwm_mib).1f MiB'
          % figures)


if __name__ == '__main__':
    main()
