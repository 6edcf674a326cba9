"""``python -m inl.distributed`` under ``torchrun``: the documented commands, run as written.

The commands are taken from the docstring of :mod:`inl.distributed` (the README's
"Across machines" section copies them) and run with ``$HOST0 = 127.0.0.1`` and a
free port: two launchers, each in a working directory of its own standing for
its machine, meet on loopback. Only loopback addresses are used. Every launcher
and worker a test starts is killed by the ``launchers`` fixture, whatever happens.
"""

import json
import os
import re
import shlex
import signal
import socket
import string
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import inl.distributed
from inl.distributed import _worker_parser, worker_main
from inl.runlog import read_records
from inl._training import INLConfig, train

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(n_nodes=5, mode="tree", epochs=2, batch_size=64, latent_width=4, hidden_width=16, threads=1,
            beta_latent=1e-3, beta_gate=1e-2, dataset_params={"n_train": 256, "n_test": 128, "n_classes": 4})
#: Seconds a launcher may take (start-up of 5 workers importing torch on a busy 2-core machine).
LAUNCH_LIMIT = 240


def _documented_commands() -> list[str]:
    return [line.strip() for line in inl.distributed.__doc__.splitlines() if line.strip().startswith("torchrun ")]


def _command(node_rank: int | None) -> str:
    """The documented command for launcher ``node_rank`` (``None``: the one-machine command)."""
    commands = _documented_commands()
    if node_rank is None:
        (found,) = [c for c in commands if "--nnodes" not in c]
    else:
        (found,) = [c for c in commands if f"--node-rank {node_rank} " in c]
    return found


def _toml(config: dict) -> str:
    lines = [f"{k} = {json.dumps(v)}" for k, v in config.items() if k != "dataset_params"]
    lines += ["", "[dataset_params]", *(f"{k} = {v}" for k, v in config["dataset_params"].items())]
    return "\n".join(lines) + "\n"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- no process


def test_documented_commands_pass_through_torchrun_to_the_entry_point():
    from torch.distributed.run import get_args_parser

    commands = _documented_commands()
    assert len(commands) == 3  # one machine; two launchers
    for command in commands:
        argv = shlex.split(string.Template(command).substitute(HOST0="127.0.0.1", PORT="29400"))
        launcher = get_args_parser().parse_args(argv[1:])
        assert launcher.module and launcher.training_script == "inl.distributed"
        ours = _worker_parser().parse_args(launcher.training_script_args)
        assert ours.config == "run.toml" and ours.run_log == "runs.jsonl", command


def test_no_option_of_the_entry_point_collides_with_torchrun():
    """torchrun's parser matches abbreviations among the script's arguments too (``--log`` was ambiguous)."""
    from torch.distributed.run import get_args_parser

    theirs = {s for a in get_args_parser()._actions for s in a.option_strings}
    ours = {s for a in _worker_parser()._actions for s in a.option_strings} - {"-h", "--help"}
    assert ours and not [(o, t) for o in ours for t in theirs if t.startswith(o)]
    # and what the old documented command did fails in our parser too, with one line
    with pytest.raises(SystemExit, match="2"):
        _worker_parser().parse_args(["run.toml", "--log", "runs.jsonl"])


def test_readme_torchrun_commands_are_the_tested_ones():
    readme = ROOT / "README.md"
    lines = readme.read_text().splitlines() if readme.exists() else []
    shown = {re.sub(r"^\$\s+", "", line.strip()) for line in lines}
    shown = {line for line in shown if line.startswith("torchrun ")}
    assert shown <= set(_documented_commands()), shown - set(_documented_commands())


def test_worker_main_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    config = tmp_path / "run.toml"
    config.write_text(_toml(TINY))
    monkeypatch.setenv("RANK", "0")
    assert worker_main([str(config), "--run-log", str(tmp_path / "missing" / "runs.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run log directory" in err and "does not exist" in err
    config.write_text("n_nodes = [\n")
    assert worker_main([str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config" in err
    monkeypatch.delenv("RANK")
    config.write_text(_toml(TINY))
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert worker_main([str(config)]) == 2
    assert "RANK" in capsys.readouterr().err


# --------------------------------------------------------------------------- launchers


def _children(pid: int) -> set[int]:
    """Child process ids of ``pid`` (Linux ``/proc``), empty when it is gone."""
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.update(int(c) for c in (task / "children").read_text().split())
        except OSError:
            pass
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class _Launchers:
    """Starts documented torchrun commands; remembers every launcher and worker to kill them after."""

    def __init__(self, base: Path) -> None:
        self.base, self.procs, self.workers = base, [], set()
        self.env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
            self.env.pop(name, None)

    def machine(self, name: str, config: dict) -> Path:
        folder = self.base / name
        folder.mkdir()
        (folder / "run.toml").write_text(_toml(config))
        return folder

    def start(self, command: str, folder: Path, *extra: str, port: int | None = None) -> subprocess.Popen:
        line = string.Template(command).substitute(HOST0="127.0.0.1", PORT=str(port))
        argv = shlex.split(line) + list(extra)
        assert argv[0] == "torchrun" and (Path(sys.executable).parent / "torchrun").exists()
        with open(folder / "stdout", "w") as out, open(folder / "stderr", "w") as err:
            proc = subprocess.Popen(argv, cwd=folder, env=self.env, stdout=out, stderr=err,
                                    start_new_session=True)
        self.procs.append(proc)
        return proc

    def watch(self) -> None:
        """Remember the workers started so far."""
        for proc in self.procs:
            self.workers |= _children(proc.pid)

    def wait(self, *procs, limit: float = LAUNCH_LIMIT) -> list[int]:
        end = time.monotonic() + limit
        codes = []
        for proc in procs:
            while proc.poll() is None and time.monotonic() < end:
                self.watch()
                time.sleep(0.2)
            codes.append(proc.poll())
        return codes

    def close(self) -> None:
        self.watch()
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for pid in self.workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def launchers(tmp_path):
    handle = _Launchers(tmp_path)
    try:
        yield handle
    finally:
        handle.close()


def _read(folder: Path, name: str) -> str:
    return (folder / name).read_text(errors="replace")


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def _assert_same_record(remote: dict, local: dict) -> None:
    """As ``test_distributed``: the in-process record's fields, floats to rounding, plus ``distributed``."""
    assert set(remote) - set(local) == {"distributed"}
    for key, value in local.items():
        if isinstance(value, float):
            assert remote[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
        elif key not in ("gate_distortion", "context_pmf", "gate_rates", "exchange_per_edge"):
            assert remote[key] == value, key
    assert remote["context_pmf"] == pytest.approx(local["context_pmf"])


@pytest.fixture(scope="module")
def in_process():
    return train(INLConfig.from_dict(TINY), progress=False)


@pytest.mark.slow
def test_two_launchers_on_loopback_match_the_in_process_run(launchers, in_process):
    node0, node1 = launchers.machine("node0", TINY), launchers.machine("node1", TINY)
    port = _free_port()
    tic = time.monotonic()
    first = launchers.start(_command(0), node0, "--save-model", "model.pt", port=port)
    second = launchers.start(_command(1), node1, "--save-model", "model.pt", port=port)
    codes = launchers.wait(first, second)
    elapsed = time.monotonic() - tic
    assert codes == [0, 0], (_read(node0, "stderr")[-3000:], _read(node1, "stderr")[-3000:])
    print(f"two launchers: {elapsed:.1f} s")
    # one record, appended by rank 0 on node 0; the other machine writes nothing
    (record,) = read_records(node0 / "runs.jsonl")
    assert sorted(p.name for p in node1.iterdir()) == ["run.toml", "stderr", "stdout"]
    assert _read(node0, "stdout").count(record["run_id"]) == 1 and not _read(node1, "stdout")
    _assert_same_record(record, json.loads(json.dumps(in_process.record)))
    # parameters: every node's, rebuilt by rank 0, equal to the in-process training's
    state = torch.load(node0 / "model.pt", weights_only=True)
    assert _max_difference(state, in_process.model.state_dict()) <= 1e-6
    # bytes handed to gloo equal the trainer's accounting, in total and per edge
    traffic = record["distributed"]
    assert traffic["world_size"] == 5 and traffic["backend"] == "gloo"
    assert traffic["comm_bytes_total"] == in_process.exchange.bytes_total == record["exchange_bytes_total"]
    per_edge = {(u, v): b for u, v, b in traffic["comm_bytes_per_edge"]}
    n_samples = in_process.exchange.n_samples
    assert per_edge == {e: round(f * n_samples * 4) for e, f in in_process.exchange.per_edge.items()}


@pytest.mark.slow
def test_one_machine_command_matches_the_in_process_run(launchers, in_process):
    node0 = launchers.machine("node0", TINY)
    (code,) = launchers.wait(launchers.start(_command(None), node0, "--no-progress"))
    assert code == 0, _read(node0, "stderr")[-3000:]
    (record,) = read_records(node0 / "runs.jsonl")
    _assert_same_record(record, json.loads(json.dumps(in_process.record)))


def _started_training(folder: Path) -> bool:
    return "ce=" in _read(folder, "stderr")  # rank 0's progress bar shows the first epoch's loss


@pytest.mark.slow
@pytest.mark.parametrize("failure", ["kill launcher 1", "kill launcher 0", "freeze node 1"])
def test_a_lost_launcher_ends_the_run_with_a_clear_error(launchers, failure):
    """SIGKILL of a launcher (its workers follow it), or node 1's workers frozen: no hang, one line each."""
    config = {**TINY, "epochs": 400}
    node0, node1 = launchers.machine("node0", config), launchers.machine("node1", config)
    port, timeout = _free_port(), ("5" if failure.startswith("freeze") else "30")
    procs = [launchers.start(_command(r), folder, "--timeout", timeout, port=port)
             for r, folder in enumerate((node0, node1))]
    end = time.monotonic() + LAUNCH_LIMIT
    while not _started_training(node0) and time.monotonic() < end and all(p.poll() is None for p in procs):
        launchers.watch()
        time.sleep(0.2)
    assert _started_training(node0) and all(p.poll() is None for p in procs), _read(node0, "stderr")[-3000:]
    launchers.watch()
    victim = 1 if failure.endswith("1") else 0
    survivor, lost = procs[1 - victim], _children(procs[victim].pid)
    assert len(lost) == (2 if victim else 3)
    tic = time.monotonic()
    if failure.startswith("kill"):
        procs[victim].kill()
    else:
        for pid in lost:
            os.kill(pid, signal.SIGSTOP)
    (code,) = launchers.wait(survivor, limit=90)
    elapsed = time.monotonic() - tic
    print(f"{failure}: the other launcher exited {code} after {elapsed:.1f} s")
    assert code not in (0, None) and elapsed < 90
    folder = (node0, node1)[1 - victim]
    errors = re.findall(r"python -m inl\.distributed: rank \d+: [^\n\r]*", _read(folder, "stderr"))
    assert errors, _read(folder, "stderr")[-3000:]
    expected = "Timed out" if failure.startswith("freeze") else "failed"
    assert any(expected in e for e in errors), errors
    assert not (node0 / "runs.jsonl").exists()
    if failure.startswith("kill"):  # the killed launcher's workers did not stay behind
        time.sleep(1.0)
        assert not [pid for pid in lost if _alive(pid)]
