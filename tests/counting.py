"""Property tests that say how often each of their branches ran."""

import collections

from hypothesis import event
from hypothesis import given
from hypothesis import settings


def run_counting(strategy, check, examples=300):
    """Run ``check`` over ``strategy``; the count of each outcome it
    returns (also hypothesis events, seen with --hypothesis-show-stats)."""
    outcomes = collections.Counter()

    @settings(max_examples=examples, deadline=None)
    @given(strategy)
    def each(value):
        outcome = check(value)
        event(outcome)
        outcomes[outcome] += 1
    each()
    return outcomes
