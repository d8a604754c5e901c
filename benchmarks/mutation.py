#!/usr/bin/env python3
"""Mutation testing of the core with mutmut: do the tests fail when the
code is broken on purpose, one small change at a time?

Each module of the core is mutated in a copy of the work tree of its own
(``.mutation/<module>/``, kept between runs: mutmut reruns only mutants
whose code or tests changed) and judged by the test files that guard it,
not by the whole suite, so that a run fits on a small machine. Mutants
listed in ``benchmarks/mutation_equivalent.txt`` (one a line, then why
the change cannot be seen) count as equivalent, not as survivors. Log
calls (``LOG.debug(...)`` and the like) are not mutated: their wording
is not behaviour.

Prints, per module and last for all of them,
``mutation_score= killed= survived= equivalent=`` (timeouts count as
killed: the tests noticed; a mutant no test reaches is a survivor), and
names every survivor. Not part of CI's run: a full run takes hours on
two cores.

Usage: python benchmarks/mutation.py [--module pci --module host]
       [--jobs 2] [--report-only | --survivors]
"""

import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORK = ROOT / '.mutation'
EQUIVALENT = ROOT / 'benchmarks' / 'mutation_equivalent.txt'
PACKAGE = 'nova_xenapi_vgpu'
# module -> (source globs, the test files that guard it)
MODULES = {
    'pci': (['pci/*'], [
        'tests/test_pci_claims.py', 'tests/test_pci_claims_judge.py',
        'tests/test_pinned.py', 'tests/test_pci_numa_fit.py',
        'tests/test_nova_devices.py']),
    'host': (['host/*'], [
        'tests/test_capacity.py', 'tests/test_host_inventory.py',
        'tests/test_dom0_plugin.py', 'tests/test_pinned.py',
        'tests/test_groups.py', 'tests/test_xapi_client.py',
        'tests/test_pinning_model.py']),
    'vgpu_types': (['vgpu_types/*'], [
        'tests/test_vgpu_requests.py', 'tests/test_nova_devices.py',
        'tests/test_conf.py', 'tests/test_pci_claims.py',
        'tests/test_vgpu_types.py', 'tests/test_nova_synthetic.py',
        'tests/test_cli_preflight.py']),
    'placement': (['placement/*'], [
        'tests/test_placement_tree.py', 'tests/test_placement_sync.py']),
    'vm': (['vm/*'], [
        'tests/test_vm_build.py', 'tests/test_vm_life.py',
        'tests/test_vm_movable.py', 'tests/vm_path',
        'tests/test_pinned.py', 'tests/reliability/test_campaign.py']),
    'xapi_session': (['xapi/session.py'], [
        'tests/test_xapi_client.py', 'tests/test_xapi_session.py']),
}
# A mutant that hangs (a retry loop that never ends) is stopped after
# this many times its tests' measured time (mutmut's default is 15: a
# quarter of an hour per hanging mutant of the VM path).
TIMEOUT_MULTIPLIER = 4.0
KILLED = {'killed', 'timeout', 'segfault', 'caught by type check'}
LINE = re.compile(r'^\s+(\S+): (.+)$')


def toml_list(values):
    return '[%s]' % ', '.join('"%s"' % v for v in values)


def prepare(module):
    """A copy of the tracked files, configured to mutate ``module``."""
    globs, tests = MODULES[module]
    where = WORK / module
    listed = subprocess.run(['git', 'ls-files'], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    for name in listed.splitlines():
        source, target = ROOT / name, where / name
        if not source.is_file():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_bytes() != (
                source.read_bytes()):
            shutil.copy2(source, target)
    with open(where / 'pyproject.toml', 'a') as config:
        config.write('\n[tool.mutmut]\nsource_paths = ["%s"]\n'
                     'only_mutate = %s\n'
                     'also_copy = ["dom0_plugins", "etc"]\n'
                     'do_not_mutate_patterns = ["LOG\\\\.[a-z]+\\\\("]\n'
                     'timeout_multiplier = %s\n'
                     'pytest_add_cli_args_test_selection = %s\n'
                     'pytest_add_cli_args = ["-p", "no:cacheprovider", '
                     '"-x", "-q"]\n' % (
                         PACKAGE, toml_list('%s/%s' % (PACKAGE, g)
                                            for g in globs),
                         TIMEOUT_MULTIPLIER, toml_list(tests)))
    return where


def run(module, jobs, names=()):
    """mutmut run in the module's copy (its output goes to a log); only
    the mutants ``names`` if given (mutmut reruns those, with new tests
    found by their coverage)."""
    where = prepare(module)
    with open(where / 'mutmut.log', 'w') as log:
        subprocess.run([sys.executable, '-m', 'mutmut', 'run',
                        '--max-children', str(jobs), *names], cwd=where,
                       stdout=log, stderr=subprocess.STDOUT,
                       env=dict(os.environ, PYTHONHASHSEED='0'))


def results(module):
    """{mutant name: status} from mutmut's record of the last run."""
    where = WORK / module
    if not (where / 'mutants').is_dir():
        return {}
    listed = subprocess.run(
        [sys.executable, '-m', 'mutmut', 'results', '--all', 'true'],
        cwd=where, capture_output=True, text=True).stdout
    return dict(m.groups() for m in map(LINE.match, listed.splitlines())
                if m)


def equivalents():
    """{mutant name: why} from the checked-in list."""
    found = {}
    if EQUIVALENT.exists():
        for line in EQUIVALENT.read_text().splitlines():
            name, _, why = line.partition(' ')
            if name and not name.startswith('#'):
                found[name] = why.strip()
    return found


def figures(statuses, equivalent):
    """(score, killed, survived, equivalent, survivors); mutants not yet
    checked (a run cut short) are left out."""
    statuses = {n: s for n, s in statuses.items() if s != 'not checked'}
    killed = sum(1 for s in statuses.values() if s in KILLED)
    same = sum(1 for n, s in statuses.items()
               if n in equivalent and s not in KILLED)
    survivors = sorted(n for n, s in statuses.items()
                       if s not in KILLED and n not in equivalent)
    judged = killed + len(survivors)
    score = killed / judged if judged else 0.0
    return score, killed, len(survivors), same, survivors


def line(score, killed, survived, same):
    return 'mutation_score=%.3f killed=%d survived=%d equivalent=%d' % (
        score, killed, survived, same)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--module', action='append', choices=MODULES,
                        help='a module of the core (default: every one)')
    parser.add_argument('--jobs', type=int, default=2,
                        help='mutants tested at once')
    parser.add_argument('--report-only', action='store_true',
                        help='print the figures of the last runs')
    parser.add_argument('--survivors', action='store_true',
                        help='run the mutants of code changed since the '
                             'last run, then again those that survived it '
                             '(after new tests)')
    args = parser.parse_args()
    equivalent = equivalents()
    totals = {}
    for module in args.module or list(MODULES):
        if args.survivors:
            run(module, args.jobs)  # mutants of code changed since
            survivors = figures(results(module), equivalent)[4]
            # mutmut keeps which tests reach which function from its
            # first run: forget it, so tests written since are used.
            (WORK / module / 'mutants' / 'mutmut-stats.json').unlink(
                missing_ok=True)
            if survivors:
                run(module, args.jobs, survivors)
        elif not args.report_only:
            run(module, args.jobs)
        statuses = results(module)
        if not statuses:
            print('%s: not run' % module)
            continue
        totals.update(statuses)
        score, killed, survived, same, survivors = figures(statuses,
                                                           equivalent)
        unchecked = sum(1 for s in statuses.values() if s == 'not checked')
        print('%s: %s not_checked=%d' % (
            module, line(score, killed, survived, same), unchecked))
        for name in survivors:
            print('  survived: %s (%s)' % (name, statuses[name]))
        for name in sorted(n for n, s in statuses.items()
                           if n in equivalent and s in KILLED):
            print('  listed as equivalent but killed: %s' % name)
    print(line(*figures(totals, equivalent)[:4]))


if __name__ == '__main__':
    main()
