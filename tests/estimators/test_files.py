"""Atomic file replacement: all or nothing, ordinary permission bits."""

import os
import stat

import pytest

from estimators._files import atomic_replace


def test_writes_and_replaces(tmp_path):
    target = tmp_path / "log.jsonl"
    with atomic_replace(target) as fh:
        fh.write(b"one\n")
    with atomic_replace(target, mode="w") as fh:
        fh.write("two\n")
    assert target.read_text() == "two\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl"]


def test_an_interrupted_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "table.md"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_replace(target, mode="w") as fh:
        fh.write("half of the new")
        raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.md"]


def test_permission_bits_are_those_of_an_ordinary_file(tmp_path):
    umask = os.umask(0o022)
    try:
        new = tmp_path / "new.png"
        with atomic_replace(new) as fh:
            fh.write(b"x")
        assert stat.S_IMODE(new.stat().st_mode) == 0o644
        kept = tmp_path / "kept.png"
        kept.write_bytes(b"")
        kept.chmod(0o640)
        with atomic_replace(kept) as fh:
            fh.write(b"y")
        assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    finally:
        os.umask(umask)


def test_mode_is_checked(tmp_path):
    with pytest.raises(ValueError, match="mode"), atomic_replace(tmp_path / "f", mode="a"):
        pass
