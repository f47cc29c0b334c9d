"""ablation.engine.tensorboard: HParams with the study file's types, and every session's end status."""

from __future__ import annotations

import pytest

from ablation import spec
from ablation.engine import tensorboard

from conftest import TINY_STUDY as TINY  # noqa: E402  (the shared tiny study)

pytest.importorskip("tensorboard")

TYPED = TINY.replace('dropout = [0.0, 0.5]', 'dropout = [0.0, 0.5]\nbatchnorm = [true, false]\nepochs = [1, 2]')


def session(folder):
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.hparams import metadata

    acc = event_accumulator.EventAccumulator(str(folder)).Reload()
    start = metadata.parse_session_start_info_plugin_data(
        acc.summary_metadata[metadata.SESSION_START_INFO_TAG].plugin_data.content)
    end = metadata.parse_session_end_info_plugin_data(
        acc.summary_metadata[metadata.SESSION_END_INFO_TAG].plugin_data.content)
    return start, end, acc


def test_hparams_keep_their_types(tmp_path):
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.hparams import metadata

    s = spec.loads(TYPED)
    from ablation.spec.axis import Axis

    assert tensorboard.typed_values(s.axis("dropout")) == [0.0, 0.5]       # numbers
    assert tensorboard.typed_values(s.axis("epochs")) == [1, 2]
    assert tensorboard.typed_values(Axis("x", (0, 0.5), ("0", "0.5"), "model")) == [0.0, 0.5]  # mixed: floats
    assert tensorboard.typed_values(s.axis("batchnorm")) == [True, False]  # booleans
    assert tensorboard.typed_values(s.axis("activation")) == ["relu", "tanh"]
    assert tensorboard.typed_values(Axis("hidden", ((8,), (8, 8)), ("8", "8-8"), "model")) == ["8", "8-8"]
    assert tensorboard.write_config(tmp_path, s)
    acc = event_accumulator.EventAccumulator(str(tmp_path / tensorboard.FOLDER)).Reload()
    experiment = metadata.parse_experiment_plugin_data(
        acc.summary_metadata[metadata.EXPERIMENT_TAG].plugin_data.content)
    kinds = {h.name: h.type for h in experiment.hparam_infos}
    from tensorboard.plugins.hparams import api_pb2

    assert kinds == {"activation": api_pb2.DATA_TYPE_STRING, "dropout": api_pb2.DATA_TYPE_FLOAT64,
                     "batchnorm": api_pb2.DATA_TYPE_BOOL, "epochs": api_pb2.DATA_TYPE_FLOAT64,
                     "seed": api_pb2.DATA_TYPE_FLOAT64}
    result = {"trial_id": "0003", "status": "completed", "seed": 1,
              "point": {"activation": "tanh", "dropout": "0.5", "batchnorm": "false", "epochs": "2"},
              "metrics": {"val_error": 0.25, "early_stopped": 1.0, "stopped_epoch": 2.0}}
    assert tensorboard.write_trial(tmp_path, s, result, {"epoch": [1, 2], "loss": [0.9, 0.8]})
    start, end, acc = session(tmp_path / tensorboard.FOLDER / "trial_0003")
    assert start.hparams["dropout"].number_value == 0.5 and start.hparams["batchnorm"].bool_value is False
    assert start.hparams["epochs"].number_value == 2
    assert start.hparams["activation"].string_value == "tanh" and start.hparams["seed"].number_value == 1
    assert end.status == api_pb2.STATUS_SUCCESS
    assert {"early_stopped", "stopped_epoch", "val_error"} <= set(acc.Tags()["tensors"])


@pytest.mark.parametrize("status, expected", [("failed", "STATUS_FAILURE"), ("diverged", "STATUS_FAILURE")])
def test_every_session_records_how_it_ended(tmp_path, status, expected):
    from tensorboard.plugins.hparams import api_pb2

    s = spec.loads(TINY)
    result = {"trial_id": "0001", "status": status, "seed": 0, "point": {"activation": "relu", "dropout": "0.0"},
              "metrics": {}}
    tensorboard.write_trial(tmp_path, s, result, {})
    _, end, _ = session(tmp_path / tensorboard.FOLDER / "trial_0001")
    assert end.status == api_pb2.Status.Value(expected) and end.end_time_secs > 0
