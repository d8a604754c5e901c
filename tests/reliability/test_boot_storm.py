"""A small boot storm, in the normal run: nothing over-committed or
leaked, and no refusal the exhaustive judge finds XAPI would honour."""

import importlib.util
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, '..', '..', 'benchmarks', 'boot_storm.py')


def load_storm():
    spec = importlib.util.spec_from_file_location('boot_storm', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('algorithm', ['depth_first', 'breadth_first'])
def test_a_small_boot_storm(algorithm):
    storm = load_storm()
    counts, leaked, refused_feasible, refused = storm.run(
        'mixed', algorithm, builds=24, threads=8, seed=7)
    assert counts['accepted'] > 0 and refused > 0
    assert counts['started'] == counts['accepted']
    assert counts['overcommit'] == 0
    assert leaked == 0
    assert refused_feasible == 0


def test_the_judge_sees_an_unlucky_order():
    judge = load_storm()
    m60 = {'GRID M60-4Q': 2, 'GRID M60-8Q': 1}
    pgpus = [('g', m60, None, 0), ('g', m60, None, 0)]
    four, eight = (('g', 'GRID M60-4Q'),), (('g', 'GRID M60-8Q'),)
    assert not judge.judge_feasible(pgpus, {'g': 'breadth_first'},
                                    [four, four], [eight])
    assert judge.judge_feasible(pgpus, {'g': 'depth_first'},
                                [four, four], [eight])
