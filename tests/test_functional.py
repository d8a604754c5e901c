"""Nova's functional tests with XenAPIDriver, in a process of their own.

Importing ``nova.tests.functional`` eventlet-patches the process, which
would block the in-process simulators of the rest of this suite; so the
functional package runs here as a subprocess, and any failure in it fails
this test with its output.
"""

import importlib.util
import os
import re
import subprocess
import sys

import pytest

# Found, never imported here: importing it would eventlet-patch this process.
if importlib.util.find_spec('nova.tests.functional') is None:
    pytest.skip('needs the nova extra', allow_module_level=True)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_nova_functional_tests_pass():
    result = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
         '-p', 'no:warnings', os.path.join('tests', 'functional')],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    summary = result.stdout.strip().splitlines()[-1:] or ['']
    assert result.returncode == 0, result.stdout[-6000:]
    passed = re.search(r'(\d+) passed', summary[0])
    assert passed and int(passed.group(1)) >= 50, summary
    assert not re.search(r'failed|error|skipped', summary[0]), summary
