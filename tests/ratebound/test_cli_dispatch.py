"""Every subcommand module is importable and fulfils the dispatch contract."""

import importlib

import pytest

from ratebound.cli import _SUBCOMMANDS, build_parser, main


@pytest.mark.parametrize("name", sorted(_SUBCOMMANDS))
def test_subcommand_module_has_the_contract(name):
    module = importlib.import_module(_SUBCOMMANDS[name][0])
    assert callable(module.add_arguments) and callable(module.run)


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in _SUBCOMMANDS)


def test_unknown_subcommand_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["frobnicate"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "frobnicate" in err
