"""The import streams: 1 GiB through PUT /import_raw_vdi keeps the
simulator (a subprocess, measured from /proc) under 100 MB of RSS.

The measurement is benchmarks/import_rss.py's; this test runs it and
checks the figures it prints.
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT_BYTES = 100 * 1000 * 1000


def test_a_one_gib_import_streams():
    output = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'benchmarks', 'import_rss.py'),
         '--gib', '1', '--json'], capture_output=True, text=True,
        check=True, timeout=600).stdout
    figures = json.loads(output)
    assert (figures['http_status'], figures['task_status']) == (
        200, 'success')
    assert figures['written'] == str(2 ** 30)
    assert figures['vm_hwm_mib'] * 2 ** 20 < LIMIT_BYTES
    assert figures['rss_peak_sampled_mib'] * 2 ** 20 < LIMIT_BYTES
