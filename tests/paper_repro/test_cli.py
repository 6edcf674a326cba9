"""The ``repro`` command's arguments and the table writer."""

from __future__ import annotations

import argparse
import json

import pytest

from paper_repro import cli, dinl
from paper_repro._notes import recorded_warnings
from paper_repro._table import Comparison, Detail, Report, fmt, write_table
from ratebound.cli import main


def _parse(*argv):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_and_settings():
    args = _parse()
    assert (args.target, args.quick, args.out, args.seeds) == ("all", False, "repro_out", None)
    assert cli.settings_for(dinl, args) == dinl.Settings.full()
    assert cli.settings_for(dinl, _parse("dinl", "--quick")) == dinl.Settings.quick()
    # --seeds sets the masks per supersample of the D-INL supersample experiment
    assert cli.settings_for(dinl, _parse("dinl", "--seeds", "7")).masks == 7
    assert dinl.Settings.full().masks >= 20 and dinl.Settings.full().supersamples >= 2
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    (seeds,) = [a for a in parser._actions if a.dest == "seeds"]
    assert f"default: {dinl.Settings.full().masks}, or {dinl.Settings.quick().masks} with --quick" in seeds.help


def test_bad_arguments_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["repro", "nonsense", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert main(["repro", "dinl", "--seeds", "0", "--out", str(tmp_path)]) == 2
    assert "--seeds" in capsys.readouterr().err


def test_write_table(tmp_path):
    report = Report(title="T", source="S", comparisons=[Comparison("q", "1", "2", "differs")],
                    details=[Detail("D", ("a", "b"), [("x|y", "1")])], choices=["c"], differences=["d"])
    md, js = write_table(tmp_path, report, {"value": float("nan"), "n": 3})
    text = md.read_text()
    assert "| q | 1 | 2 | differs |" in text and "x\\|y" in text
    data = json.loads(js.read_text())
    assert data["value"] is None and data["n"] == 3 and data["choices"] == ["c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.json", "table.md"]


def test_fmt():
    assert fmt(None) == "n/a" and fmt(float("nan")) == "n/a" and fmt(True) == "yes"
    assert fmt(3) == "3" and fmt(0.123456) == "0.1235" and fmt(1e-16) == "0" and fmt(2e-5) == "2.000e-05"


def test_recorded_warnings_become_notes():
    import warnings

    with recorded_warnings() as notes:
        warnings.warn("stopped at max_iter", RuntimeWarning)
        warnings.warn("stopped at max_iter", RuntimeWarning)
    assert notes == ["RuntimeWarning: stopped at max_iter"]


def test_bank_dataset_flags_reach_the_expert_bank_settings(tmp_path):
    from paper_repro import expert_bank

    args = _parse("expert-bank", "--quick", "--bank-dataset", "auto", "--data-path", str(tmp_path))
    assert cli.settings_for(expert_bank, args).dataset == "digits"  # nothing installed in tmp_path
    forced = cli.settings_for(expert_bank, _parse("expert-bank", "--bank-dataset", "fashion-mnist"))
    assert forced.dataset == "fashion-mnist"
    # the D-INL experiment keeps its own choice under "auto" and takes the folder; a named data set is applied
    d = cli.settings_for(dinl, args)
    assert d.dataset == "auto" and d.data_path == str(tmp_path) and d.resolved_dataset == "digits"
    assert cli.settings_for(dinl, _parse("dinl", "--bank-dataset", "digits")).resolved_dataset == "digits"
