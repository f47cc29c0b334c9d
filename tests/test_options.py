"""Tests for ablation.engine.options: how a run runs, one checked value passed whole through the runner."""

from __future__ import annotations

import pytest

from ablation.engine import runner
from ablation import spec
from ablation.engine.options import RunOptions


@pytest.mark.parametrize("field, value, expected", [
    ("workers", -1, "a non-negative integer"),
    ("pack_size", 0, "a positive integer"),
    ("port", 70000, "an integer in [0, 65535]"),
    ("chief_timeout", 0, "a positive number of seconds"),
    ("heartbeat_grace", float("nan"), "a positive number of seconds"),
    ("recycle_mib", -5, "positive"),
    ("in_process", "yes", "True or False"),
    ("overrides", ["precision"], "a dict of settings"),
    ("progress", "loud", "True, False or a callable"),
])
def test_every_field_is_checked_where_it_is_made(field, value, expected):
    with pytest.raises(ValueError) as info:
        RunOptions(**{field: value})
    message = str(info.value)
    assert "\n" not in message and expected in message and f"Received: {field}=" in message


def test_in_process_needs_one_worker():
    with pytest.raises(ValueError, match=r"expected 1 when in_process=True\. Received: workers=2"):
        RunOptions(workers=2, in_process=True)


def test_replace_checks_again_and_names_an_unknown_field():
    opts = RunOptions(pack_size=4)
    assert opts.replace(pack_size=2).pack_size == 2 and opts.pack_size == 4
    with pytest.raises(ValueError, match="Received: pack_size=0"):
        opts.replace(pack_size=0)
    with pytest.raises(ValueError, match=r"fields of RunOptions \(workers, .*\)\. Received: options='pack_sise'"):
        opts.replace(pack_sise=2)


def test_overrides_are_copied():
    given = {"precision": "float32"}
    opts = RunOptions(overrides=given)
    given["precision"] = "mixed_bfloat16"
    assert opts.overrides == {"precision": "float32"}


TINY = """
[study]
name = "options_tiny"
seeds = [0]
[data]
name = "mnist1d"
num_samples = 200
[model]
name = "mlp"
hidden = [4]
[train]
epochs = 1
batch_size = 50
[grid]
dropout = [0.0]
"""


def test_worker_arguments_come_from_the_options(tmp_path):
    s = runner.with_backend(spec.loads(TINY))
    opts = RunOptions(overrides={"jit_compile": False, "precision": "float32"}, pack_size=3)
    args = runner._worker_args(s, tmp_path / s.run_name, opts)
    assert args[1:3] == ["--out", str(tmp_path)]
    assert "--no-xla" in args and args[args.index("--precision") + 1] == "float32"
    assert args[-2:] == ["--pack-size", "3"]


def test_run_takes_the_options_object_and_settings_on_top(tmp_path):
    """The options travel whole into run.json's invocation entry; settings given one by one win."""
    from ablation.base import files, rundir

    run_dir = runner.run(spec.loads(TINY), tmp_path, options=RunOptions(pack_size=3, in_process=True),
                         pack_size=1, command="ablation run tiny")
    entry = files.read_json(run_dir / rundir.RUN)["invocations"][-1]
    assert (entry["pack_size"], entry["in_process"], entry["workers"], entry["command"]) == (
        1, True, 1, "ablation run tiny")
    assert entry["exit"] == "completed"
