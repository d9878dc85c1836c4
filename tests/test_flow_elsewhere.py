"""Where a load balancer's retry goes in a region without databases (:mod:`sim.engine.flow.elsewhere`)."""

import doctest

import sim.engine.flow.elsewhere


def test_the_docstring_examples_hold():
    result = doctest.testmod(sim.engine.flow.elsewhere)
    assert result.attempted > 0 and result.failed == 0
