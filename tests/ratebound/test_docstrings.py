"""The runnable examples in the ratebound docstrings hold."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["generalization", "ceo", "rdg", "ecmi"])
def test_docstring_examples(module):
    mod = importlib.import_module(f"ratebound.{module}")
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
