"""Prechelt's early-stopping criteria on hand-computed curves, and the Keras callback."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from ablation.train import stopping

# GL(t) = 100 (E_va(t) / E_opt(t) - 1): 0, 0, 0, 2.857, 7.143, 0, 15.94
GL_VAL = [1.0, 0.8, 0.7, 0.72, 0.75, 0.69, 0.8]

# Strip k = 2. GL at strip ends t = 2, 4, 6, 8: 0, 2.857, 8.571, 11.43.
# P_2(t) = 1000 (sum / (2 min) - 1): 500, 71.43, 7.8125, 0.0783.
# GL / P_2: 0, 0.040, 1.097, 146.
PQ_VAL = [1.0, 0.8, 0.7, 0.72, 0.75, 0.76, 0.77, 0.78]
PQ_TRAIN = [2.0, 1.0, 0.8, 0.7, 0.65, 0.64, 0.639, 0.6389]

# Strip k = 2, strip ends t = 2, 4, 6, 8, 10: 0.9, 0.85, 0.75, 0.82, 0.95.
# Rises at t = 8 (over t = 6) and t = 10 (over t = 8); the rise 0.8 -> 0.85 (t = 3 -> 4) is not
# across strip ends.
UP_VAL = [1.0, 0.9, 0.8, 0.85, 0.7, 0.75, 0.8, 0.82, 0.9, 0.95]


def test_generalization_loss_and_training_progress_values():
    np.testing.assert_allclose(stopping.generalization_loss(GL_VAL),
                               [0, 0, 0, 100 * (0.72 / 0.7 - 1), 100 * (0.75 / 0.7 - 1), 0, 100 * (0.8 / 0.69 - 1)])
    progress = stopping.training_progress(PQ_TRAIN, strip=2)
    assert math.isnan(progress[0])
    np.testing.assert_allclose(progress[[1, 3, 5]], [500.0, 1000 * (1.5 / 1.4 - 1), 7.8125])


@pytest.mark.parametrize("alpha, expected", [(2.0, 4), (5.0, 5), (10.0, 7), (20.0, None)])
def test_gl_stops_after_first_epoch_over_alpha(alpha, expected):
    assert stopping.gl_stop(GL_VAL, alpha) == expected
    assert stopping.stop_epoch("gl", GL_VAL, alpha=alpha) == expected


@pytest.mark.parametrize("alpha, expected", [(0.01, 4), (0.5, 6), (1.0, 6), (2.0, 8), (200.0, None)])
def test_pq_stops_only_at_strip_ends(alpha, expected):
    assert stopping.pq_stop(PQ_VAL, PQ_TRAIN, alpha, strip=2) == expected
    assert stopping.stop_epoch("pq", PQ_VAL, PQ_TRAIN, alpha=alpha, strip=2) == expected


@pytest.mark.parametrize("s, expected", [(1, 8), (2, 10), (3, None)])
def test_up_needs_s_successive_rising_strips(s, expected):
    assert stopping.up_stop(UP_VAL, s, strip=2) == expected


def test_up_with_default_strip_of_five():
    # strip ends 5, 10, 15, 20: 0.5, 0.6, 0.7, 0.8 -> UP_2 stops at 15, UP_3 at 20
    val = [1.0, 0.9, 0.8, 0.7, 0.5] + [0.3] * 4 + [0.6] + [0.2] * 4 + [0.7] + [0.1] * 4 + [0.8]
    assert stopping.up_stop(val, 2) == 15
    assert stopping.up_stop(val, 3) == 20


@pytest.mark.parametrize("curve, patience, min_delta", [
    ([1.0, 0.9, 0.95, 0.91, 0.92, 0.8, 0.85, 0.86, 0.87], 2, 0.0),
    ([1.0, 0.9, 0.95, 0.91, 0.92, 0.8, 0.85, 0.86, 0.87], 3, 0.0),
    ([1.0, 0.9, 0.88, 0.87, 0.86, 0.85, 0.849, 0.848], 2, 0.015),
    ([1.0, 1.1, 0.9, 0.8], 0, 0.0),
    ([1.0, 0.9, 0.8, 0.7], 1, 0.0),
])
def test_patience_agrees_with_keras_early_stopping(curve, patience, min_delta):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    keras_es = keras.callbacks.EarlyStopping(patience=patience, min_delta=min_delta)
    keras_es.set_model(model)
    model.stop_training = False
    keras_es.on_train_begin()
    keras_stop = None
    for epoch, value in enumerate(curve):
        keras_es.on_epoch_end(epoch, {"val_loss": value})
        if model.stop_training:
            keras_stop = epoch + 1
            break
    assert stopping.patience_stop(curve, patience, min_delta) == keras_stop


def test_hand_computed_patience_and_best_epoch():
    curve = [1.0, 0.9, 0.95, 0.91, 0.92, 0.8]
    assert stopping.patience_stop(curve, 2) == 4          # best at 2; epochs 3, 4 without progress
    assert stopping.patience_stop(curve, 4) is None
    assert stopping.best_epoch(curve) == 6 and stopping.best_epoch([0.5, 0.4, 0.4]) == 2


def test_nan_validation_loss_counts_as_divergence():
    assert stopping.gl_stop([1.0, 0.9, float("nan")], alpha=100.0) == 3
    assert stopping.patience_stop([1.0, float("nan"), float("nan")], patience=2) == 3


@pytest.mark.parametrize("criterion, params, match", [
    ("median", {}, "argument 'criterion'.*criterion='median'"),
    ("gl", {"patience": 3}, "argument 'params': expected parameters of criterion 'gl': alpha. Received: params='patience'"),
    ("gl", {"alpha": -1.0}, "argument 'alpha'.*alpha=-1.0"),
    ("pq", {"strip": 0}, "argument 'strip'.*strip=0"),
    ("up", {"s": 1.5}, "argument 's'"),
    ("patience", {"patience": -1}, "argument 'patience'"),
    ("patience", {"min_delta": -0.1}, "argument 'min_delta'"),
])
def test_bad_parameters_raise(criterion, params, match):
    with pytest.raises(ValueError, match=match):
        stopping.EarlyStopping(criterion, **params)


def test_pq_needs_training_loss():
    with pytest.raises(ValueError, match="argument 'train_loss'"):
        stopping.stop_epoch("pq", PQ_VAL, alpha=1.0, strip=2)


class _Script(keras.callbacks.Callback):
    """Overwrites the epoch logs with a scripted curve and snapshots the weights."""

    def __init__(self, val, train):
        super().__init__()
        self.val, self.train, self.weights = val, train, []

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"], logs["loss"] = self.val[epoch], self.train[epoch]
        self.weights.append([np.array(w) for w in self.model.get_weights()])


def _fit_scripted(stopper, val, train):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, y = np.random.default_rng(0).normal(size=(32, 3)).astype("float32"), np.ones((32, 2), "float32")
    script = _Script(val, train)
    history = model.fit(x, y, epochs=len(val), batch_size=8, verbose=0, callbacks=[script, stopper])
    return model, history, script


def test_callback_stops_fit_at_the_pq_epoch_and_keeps_the_best_weights():
    stopper = stopping.EarlyStopping("pq", alpha=1.0, strip=2)
    model, history, script = _fit_scripted(stopper, PQ_VAL, PQ_TRAIN)
    assert len(history.epoch) == 6 and stopper.stopped_epoch == 6
    assert stopper.best_epoch == 3 and stopper.best_value == 0.7
    for best, recorded in zip(stopper.best_weights, script.weights[2]):
        np.testing.assert_array_equal(best, recorded)
    assert not np.allclose(model.get_weights()[0], stopper.best_weights[0])   # not restored by default


def test_callback_gl_and_up_and_restore_best_weights():
    stopper = stopping.EarlyStopping("gl", alpha=5.0, restore_best_weights=True)
    model, history, script = _fit_scripted(stopper, GL_VAL, GL_VAL)
    assert len(history.epoch) == 5 and stopper.stopped_epoch == 5 and stopper.best_epoch == 3
    np.testing.assert_array_equal(model.get_weights()[0], script.weights[2][0])
    stopper = stopping.EarlyStopping("up", s=2, strip=2)
    _, history, _ = _fit_scripted(stopper, UP_VAL + [1.0, 1.1], UP_VAL + [1.0, 1.1])
    assert len(history.epoch) == 10 and stopper.stopped_epoch == 10 and stopper.best_epoch == 5


def test_callback_that_never_fires_runs_all_epochs():
    stopper = stopping.EarlyStopping("patience", patience=5)
    _, history, _ = _fit_scripted(stopper, [1.0, 0.9, 0.8], [1.0, 0.9, 0.8])
    assert len(history.epoch) == 3 and stopper.stopped_epoch is None and stopper.best_epoch == 3


def test_callback_without_validation_loss_says_so():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="needs 'val_loss' in the epoch logs"):
        model.fit(np.zeros((4, 3)), np.zeros((4, 2)), epochs=1, verbose=0,
                  callbacks=[stopping.EarlyStopping("gl")])
