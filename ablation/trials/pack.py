"""Packs: several trials that share a training recipe train as members of one compiled Keras model.

A pack model has one input and one output per member; each member is the trial's own model, built
by the zoo exactly as it would be alone. The loss is the sum of the members' losses, so each
member's gradients are those of its own loss: members share the compiled step and nothing else.
Each keeps its own initialization (its trial seed), its own data order (a permutation per epoch
drawn from its seed), its own dropout masks (its layers' seed generators), its own optimizer state
(Keras optimizers keep slots per variable, and clip per variable), metrics, early stopping and
records. A member whose loss becomes NaN or infinite is recorded as diverged at that epoch and
its records stop there; a member that stops early has its weights kept from the epoch it stopped
(and its best epoch), as if it had trained alone; the other members go on unharmed. The pack
stops when no member is left. A trial trained alone is a pack of one: there is one training path.

Training runs in ``model.fit`` (backend-neutral: TensorFlow or JAX) on a generator of per-member
batches (``ablation.trials.batches``), on the path ``training.choose_path`` rules for the recipe (recorded
in each trial's ``train_path``): on the "scan" path the generator yields chunks of stacked batches
(an epoch, capped) and ``fit``'s train function runs a chunk's steps in one compiled program
(``scan_train_function`` of the backend: ``jax.lax.scan`` under JAX, a ``tf.range`` loop in one
``tf.function`` under TensorFlow, which needs every batch full); on the "keras" path Keras' own
``steps_per_execution``. Validation, test and the clean training-set evaluation run every member
at once through one compiled forward pass.

Losses and scores follow the study's task (``ablation.data.tasks``: cross-entropy, accuracy and error for
classification; mean squared error, RMSE and MAE for regression). Recorded losses are the data loss
everywhere; weight penalties are part of the training objective but never of a recorded loss. The
``train`` curves are Keras' running averages over each epoch with dropout on; ``train_loss`` /
``train_error`` of a trial are a clean pass over its whole training set with dropout off, at the
weights its test metrics use.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from keras import ops

from ablation.base import backend
from ablation.base.phases import Phases, split_fit
from ablation.data import evaluation, tasks
from ablation.train import stopping, training
from ablation.trials.batches import Batches, chunk_cap, steps_per_epoch, steps_per_execution
from ablation.train import probes as probes_module
from ablation.trials.trial import Member, TrialRecord, every_steps, new_result

EVAL_CHUNK = 8192


@dataclass
class _State:
    """What the pack keeps for one member while it trains."""

    member: Member
    result: dict[str, Any]
    probes: list[Any] = field(default_factory=list)
    stopper: stopping.Stopper | None = None
    history: dict[str, list] = field(default_factory=lambda: {"epoch": [], "step": [], "epoch_time_s": []})
    active: bool = True
    stop_weights: list[np.ndarray] | None = None   # weights at the epoch early stopping fired

    @property
    def model(self) -> keras.Model:
        return self.member.model


def recipe_key(cfg: Any) -> tuple:
    """What members of one pack must share: data and training-set size, and the training recipe
    (early stopping aside: it acts per member)."""
    import dataclasses

    from ablation.spec import canonical_json

    train = {k: v for k, v in dataclasses.asdict(cfg.train).items() if k != "early_stopping"}
    return (cfg.data_name, cfg.data.digest, canonical_json(cfg.data_options), cfg.validation_size, cfg.train_size,
            canonical_json(train))


# Packing rules. A pack pays off by sharing fixed costs: compilation, per-step dispatch, the
# evaluation passes. On a CPU the arithmetic of a member's step is not shared, so members are packed
# while the pack's training step stays small: at most CPU_STEP_FLOPS of arithmetic (about 1 ms on
# this project's 2 CPU cores, where a step's fixed cost is about 0.1 ms), GPU_STEP_FLOPS on a GPU
# (wide steps are cheap there), and never more than MAX_PACK members. Measured while choosing these
# (JAX, 2 cores): 8 quickstart MLPs (9 MFLOP per step each) step 1.5x faster per member packed; 5 MNIST
# 3 x 256 nets (200 MFLOP each) step 12% slower per member packed than alone. benchmarks/bench_training.py
# measures the pack of 8 quickstart MLPs against one alone.
MAX_PACK = 16
CPU_STEP_FLOPS = 200e6
GPU_STEP_FLOPS = 200e9


def allowed_limit(spec: Any, cfg: Any) -> int:
    """1 when a trial must train alone, else MAX_PACK.

    Alone: a study with ``pack = false``; wall-time probes (``timing``, ``speed``: a member's time
    would be the pack's); ``mixed_float16`` (the loss-scale optimizer skips a step for every member
    when any member overflows).
    """
    from ablation.train.probes import WALL_TIME_PROBES

    if not spec.pack or set(spec.probes) & set(WALL_TIME_PROBES) or cfg.train.precision == "mixed_float16":
        return 1
    return MAX_PACK


def default_limit(spec: Any, cfg: Any, params: int) -> int:
    """The pack size chosen from one member's parameter count (see CPU_STEP_FLOPS / GPU_STEP_FLOPS)."""
    budget = GPU_STEP_FLOPS if backend.current().gpus() else CPU_STEP_FLOPS
    fits = int(budget // max(1.0, training.step_flops(params, cfg.train.batch_size)))
    return max(1, min(MAX_PACK, fits, allowed_limit(spec, cfg)))


def _scores(s: _State, out: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """One member's scores on labelled data (``tasks.SCORES`` of its task)."""
    return tasks.score(s.member.cfg.task, out, y, s.member.probabilities)


class Pack:
    """The compiled pack model of some members, with the per-member bookkeeping around ``fit``.

    Args:
        spec: the study (probes, evaluations, sampling period).
        members: the trials to train together (same recipe, see :func:`recipe_key`).
        on_epoch: see :func:`train`.
        path: see :func:`train`.
    """

    def __init__(self, spec: Any, members: Sequence[Member],
                 on_epoch: Callable[[dict[str, Any]], None] | None = None, path: str | None = None) -> None:
        self.spec = spec
        self.on_epoch = on_epoch
        self.train = members[0].cfg.train
        keys = {recipe_key(m.cfg) for m in members}
        if len(keys) != 1:
            raise ValueError(f"Invalid value for argument 'members': expected trials with one training recipe. "
                             f"Received: {len(keys)} recipes")
        self.states = [_State(m, new_result(m.cfg, m.trial_id)) for m in members]
        self.task = members[0].cfg.task
        self.n = len(members[0].data.x_train)
        self.batch_size = min(self.train.batch_size, self.n)
        self.steps = steps_per_epoch(self.n, self.batch_size)
        self.every = every_steps(spec)
        with training.precision_policy(self.train.precision):
            for r, s in enumerate(self.states):
                s.model.name = f"m{r}"  # members are nested models: their names must differ
            inputs = {f"x{r}": keras.Input(s.model.inputs[0].shape[1:], name=f"x{r}") for r, s in enumerate(self.states)}
            self.model = keras.Model(inputs, {f"m{r}": s.model(inputs[f"x{r}"]) for r, s in enumerate(self.states)},
                                     name="pack")
            shared = keras.Input(self.states[0].model.inputs[0].shape[1:], name="x")
            self.eval_model = keras.Model(shared, [s.model(shared) for s in self.states], name="pack_eval")
            compiled = [tasks.compiled(self.task, s.member.probabilities) for s in self.states]
            losses = {f"m{r}": loss for r, (loss, _) in enumerate(compiled)}
            metrics = {f"m{r}": member_metrics for r, (_, member_metrics) in enumerate(compiled)}
            self.path = training.choose_path([s.model for s in self.states], self.train,
                                             full_batches=not self.n % self.batch_size, force=path)
            self.jit = self.path.xla
            scan = backend.current().scan_train_function if self.path.name == "scan" else None
            example_bytes = sum(s.member.data.x_train[:1].nbytes for s in self.states)
            spe = steps_per_execution(self.train, self.steps, self.every,
                                      cap=chunk_cap(example_bytes, self.batch_size) if scan else None)
            self.batches = Batches([s.member for s in self.states], self.batch_size, self.steps,
                                   chunk=spe if scan else None, every=self.every)
            self.model.compile(optimizer=training.make_optimizer(self.train), loss=losses, metrics=metrics,
                               jit_compile=self.jit, steps_per_execution=1 if scan else spe)
            if scan:
                # fit would build the compiled loss and metrics from its first item, here a chunk: build
                # them from the chunk's first step, then give fit the function that scans a chunk's steps
                first_step = keras.tree.map_structure(lambda a: a[0], self.batches[0])
                self.model._symbolic_build(data_batch=first_step)  # Keras internal (trainers/trainer.py)
                self.model.train_function = scan(self.model)
        self._probes()
        for s in self.states:
            if s.member.cfg.train.early_stopping:
                params = dict(s.member.cfg.train.early_stopping)
                s.stopper = stopping.Stopper(params.pop("criterion"), **params)

    # ------------------------------------------------------------------ probes
    def _probes(self) -> None:
        if not self.spec.probes:
            return
        xs, ys = [], []
        for s in self.states:
            data = s.member.data
            idx = np.random.default_rng(s.member.cfg.seed).permutation(len(data.x_train))[: self.spec.probe_size]
            xs.append(data.x_train[idx])
            ys.append(data.y_train[idx])
        built = probes_module.build(self.spec.probes, models=[s.model for s in self.states], probe_xs=xs,
                                    probe_ys=ys, every_steps=self.every,
                                    target_train_error=self.spec.evaluate.target_train_error,
                                    loss=tasks.probe_loss(self.task))
        for s, member_probes in zip(self.states, built):
            s.probes = member_probes

    # ------------------------------------------------------------------ evaluation
    def outputs(self, x: np.ndarray) -> list[np.ndarray]:
        """Every member's outputs on shared inputs ``x`` (inference mode)."""
        if len(x) == 0:
            return [np.zeros((0, 1)) for _ in self.states]
        chunks = [self.eval_model.predict_on_batch(x[i:i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)]
        chunks = [c if isinstance(c, (list, tuple)) else [c] for c in chunks]
        per_member = [[ops.convert_to_numpy(c[r]) for c in chunks] for r in range(len(self.states))]
        return [np.concatenate(parts, axis=0) for parts in per_member]

    def own_outputs(self, which: Callable[[_State], np.ndarray]) -> list[np.ndarray]:
        """Every member's outputs on its own inputs (e.g. its training set), in one compiled pass per chunk."""
        arrays = [which(s) for s in self.states]
        n = len(arrays[0])
        parts: list[list[np.ndarray]] = [[] for _ in self.states]
        for i in range(0, n, EVAL_CHUNK):
            out = self.model.predict_on_batch({f"x{r}": a[i:i + EVAL_CHUNK] for r, a in enumerate(arrays)})
            for r in range(len(self.states)):
                parts[r].append(ops.convert_to_numpy(out[f"m{r}"]))
        return [np.concatenate(p, axis=0) for p in parts]

    # ------------------------------------------------------------------ training
    def fit(self, phases: Phases | None = None) -> None:
        """Train every member for the recipe's epochs (or until every member stopped or diverged); the time
        goes to ``phases``' compile, train, evaluate (validation) and probes."""
        monitor = _Monitor(self)
        start = time.perf_counter()
        try:
            self.model.fit(self.batches, epochs=self.train.epochs, verbose=0, shuffle=False, callbacks=[monitor])
        finally:
            if phases is not None:
                inside = monitor.in_fit.seconds
                split = split_fit(time.perf_counter() - start, monitor.epoch_times, inside["evaluate"],
                                  inside["probes"])
                for name in ("evaluate", "probes"):
                    phases.add(name, inside[name])
                for name, seconds in split.items():
                    phases.add(name, seconds)

    def finish(self, wall_time: float) -> list[TrialRecord]:
        """Evaluate every member and return its record."""
        data = self.states[0].member.data
        alive = [s for s in self.states if s.result["status"] == "completed"]
        if alive:
            self._final_metrics(data)
        records = []
        for s in self.states:
            s.result["wall_time_s"] = wall_time
            s.result["pack_size"] = len(self.states)
            s.result["backend"] = backend.name()
            s.result["xla"] = bool(self.jit)
            s.result["train_path"], s.result["train_path_reason"] = self.path.name, self.path.reason
            s.result["train_size"] = int(self.n)
            s.result["task"] = self.task
            if self.task == tasks.CLASSIFICATION:
                s.result["num_classes"] = int(data.num_classes)
            s.result["test_size"] = int(len(data.y_test))  # the test set's binomial noise floor (stats.power)
            rows = probes_module.collect_rows(s.probes)
            if s.result["status"] == "completed":
                s.result["metrics"].update(probes_module.collect_summary(s.probes))
                s.result["evaluations"] = self._evaluations(s, data)
            records.append(TrialRecord(s.result, s.history, rows))
        return records

    def _final_metrics(self, data: Any) -> None:
        alive = [s.result["status"] == "completed" for s in self.states]
        stopped = [s.stopper is not None for s in self.states]
        if any(a and st for a, st in zip(alive, stopped)):
            for s in self.states:  # at the epoch each member stopped (its last one if it never did)
                if s.stop_weights is not None:
                    s.model.set_weights(s.stop_weights)
            for s, out in zip(self.states, self.outputs(data.x_test)):
                if s.stopper is not None and s.result["status"] == "completed":
                    scores = _scores(s, out, data.y_test)
                    s.result["metrics"].update({f"test_{k}_at_stop": v for k, v in scores.items()})
            for s in self.states:  # then the best validation epoch's weights
                if s.stopper is not None and s.stopper.best_weights is not None:
                    s.model.set_weights(s.stopper.best_weights)
        for s, out in zip(self.states, self.outputs(data.x_test)):
            if s.result["status"] == "completed":
                s.result["metrics"].update({f"test_{k}": v for k, v in _scores(s, out, data.y_test).items()})
        for s, out in zip(self.states, self.own_outputs(lambda st: st.member.data.x_train)):
            if s.result["status"] == "completed":
                scores = _scores(s, out, s.member.data.y_train)
                scores.pop("accuracy", None)  # classification: train_loss and train_error
                s.result["metrics"].update({f"train_{k}": v for k, v in scores.items()})
        primary = tasks.primary(self.task)
        for s in self.states:
            if s.result["status"] != "completed":
                continue
            m, h = s.result["metrics"], s.history
            if self.task == tasks.REGRESSION:
                y_train = s.member.data.y_train
                m["baseline_test_rmse"] = tasks.mean_baseline_rmse(y_train, data.y_test)
                m["baseline_train_rmse"] = tasks.mean_baseline_rmse(y_train, y_train)
            if s.stopper is not None:
                m["early_stopped"] = float(s.stopper.stopped_epoch is not None)
                m["stopped_epoch"] = float(s.stopper.stopped_epoch or len(h["epoch"]))
                m["best_epoch"] = float(s.stopper.best_epoch or len(h["epoch"]))
            val = _val_primary(h, self.task)
            if val:
                m.update({"val_loss": h["val_loss"][-1], f"val_{primary}": val[-1], f"best_val_{primary}": min(val),
                          "best_val_epoch": float(int(np.argmin(val)) + 1)})
            times = h["epoch_time_s"]
            if times:
                m["first_epoch_time_s"] = times[0]
                m["time_per_epoch_s"] = float(np.median(times[1:] if len(times) > 1 else times))

    def _evaluations(self, s: _State, data: Any) -> list[dict]:
        ev = self.spec.evaluate
        rows: list[dict] = []
        if ev.mc_dropout_k:
            rows += evaluation.weight_scaling(s.model, data.x_test, data.y_test)
            rows += evaluation.mc_dropout(s.model, data.x_test, data.y_test, ks=ev.mc_dropout_k,
                                          seed=s.member.cfg.seed)
        if ev.dropconnect_inference:
            rows += evaluation.dropconnect(s.model, data.x_test, data.y_test, modes=ev.dropconnect_inference,
                                           seed=s.member.cfg.seed)
        return rows


def _val_primary(history: dict[str, list], task: str) -> list[float]:
    """The per-epoch validation values of the task's primary metric (error from accuracy, or rmse)."""
    if task == tasks.REGRESSION:
        return list(history.get("val_rmse") or [])
    return [1.0 - a for a in history.get("val_accuracy") or []]


class _Monitor(keras.callbacks.Callback):
    """Per-member bookkeeping at every epoch end: history, divergence, validation, probes, early stopping."""

    def __init__(self, pack: Pack) -> None:
        super().__init__()
        self.pack = pack
        self._t0 = 0.0
        self._epoch = 0
        self.epoch_times: list[float] = []  # every epoch's seconds (compile's estimate: phases.split_fit)
        self.in_fit = Phases()  # the validation passes and probes timed inside fit

    def _step(self) -> int:
        backend.current().sync(self.pack.model)
        return int(ops.convert_to_numpy(self.pack.model.optimizer.iterations))

    def _probes(self, active_only: bool = True) -> list[Any]:
        return [p for s in self.pack.states if s.active or not active_only for p in s.probes]

    def on_train_begin(self, logs: dict | None = None) -> None:
        with self.in_fit.timed("probes"):
            for p in self._probes():
                p.clock.start()
                p.measure(0, 0)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._t0 = time.perf_counter()
        self._epoch = epoch + 1
        for p in self._probes():
            if isinstance(p, probes_module.TimingProbe):
                p.begin_epoch(self._step())

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        done = self.pack.batches.steps_done(batch)  # Keras passes the execution's last item
        if not self.pack.every or done >= self.pack.steps:
            return  # the epoch's last chunk: on_epoch_end samples this step (one full pass)
        step = (self._epoch - 1) * self.pack.steps + done  # the optimizer's iterations, without a sync
        due = [p for p in self._probes() if p.due(step)]
        if not due:
            return
        with self.in_fit.timed("probes"):
            backend.current().sync(self.pack.model)
            for p in due:
                p.measure(step, self._epoch, full=False)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        step, seconds, e = self._step(), time.perf_counter() - self._t0, epoch + 1
        self.epoch_times.append(seconds)
        pack = self.pack
        data = pack.states[0].member.data
        with self.in_fit.timed("evaluate"):
            val = pack.outputs(data.x_val) if data.x_val is not None and len(data.x_val) else None
        for r, s in enumerate(pack.states):
            if not s.active:
                continue
            running = tasks.epoch_logs(pack.task, logs, "" if len(pack.states) == 1 else f"m{r}_")
            loss = running["loss"]
            h = s.history
            h["epoch"].append(e)
            h["step"].append(step)
            h["epoch_time_s"].append(seconds)
            for key, value in running.items():
                h.setdefault(key, []).append(value)
            val_loss = None
            if val is not None:
                scores = _scores(s, val[r], data.y_val)
                val_loss = scores["loss"]
                for key in ("loss", *tasks.CURVE_METRICS[pack.task]):
                    h.setdefault(f"val_{key}", []).append(scores[key])
            if not math.isfinite(loss) or (val_loss is not None and not math.isfinite(val_loss)):
                what = f"training loss became {loss}" if not math.isfinite(loss) else f"validation loss became {val_loss}"
                s.result.update(status="diverged", reason=f"{what} in epoch {e}", failed_epoch=e)
                self._retire(s, e, step)
                continue
            with self.in_fit.timed("probes"):
                for p in s.probes:
                    if isinstance(p, probes_module.TimingProbe):
                        p.end_epoch(step, e)
                    else:
                        p.measure(step, e)
            if s.stopper is not None and s.stopper.update(val_loss, loss, s.model.get_weights):
                s.stop_weights = [np.array(w, copy=True) for w in s.model.get_weights()]
                self._retire(s, e, step)
        if not any(s.active for s in pack.states):
            self.model.stop_training = True
        if pack.on_epoch is not None:
            pack.on_epoch(self._note(e))

    def _note(self, epoch: int) -> dict[str, Any]:
        """How far the pack has got, for the progress line: the epoch and each member's latest errors."""
        members = []
        for s in self.pack.states:
            h = s.history
            val = _val_primary(h, self.pack.task)
            members.append({"trial": s.member.trial_id, "status": s.result["status"] if not s.active else "running",
                            "loss": h["loss"][-1] if h.get("loss") else None,
                            "val": val[-1] if val else None})
        return {"epoch": epoch, "epochs": self.pack.train.epochs, "time": time.time(),
                "metric": f"val_{tasks.primary(self.pack.task)}", "members": members}

    def _retire(self, s: _State, epoch: int, step: int) -> None:
        """A member stops here (stopped early or diverged): its records end at ``epoch``."""
        s.active = False
        s.result["epochs_run"], s.result["steps_run"] = epoch, step
        for p in s.probes:
            p.truncate(epoch)

    def on_train_end(self, logs: dict | None = None) -> None:
        step = self._step()
        for s in self.pack.states:
            if s.active:
                s.result["epochs_run"] = len(s.history["epoch"])
                s.result["steps_run"] = step
                s.active = False


def train(spec: Any, members: Sequence[Member],
          on_epoch: Callable[[dict[str, Any]], None] | None = None, path: str | None = None,
          phases: Phases | None = None) -> list[TrialRecord]:
    """Train the members of one pack and return one record per member (in order).

    A pack that cannot be built or trained (a user's model that raises, a bug) gives every member
    a ``failed`` record with the traceback, never an exception.

    Args:
        spec: the study.
        members: the trials (one recipe).
        on_epoch: called after every epoch with a note of how far the pack has got (the epoch, the
            epochs it will run, each member's latest training loss and validation error).
        path: a training path (``training.TRAIN_PATHS``) to take instead of the one
            ``training.choose_path`` rules (benchmarks and equivalence tests); None: the rule's.
        phases: where the pack's time goes (:mod:`ablation.base.phases`: build, compile, train, evaluate,
            probes); each member's result holds them as ``phases`` (the caller adds data and writes).
    """
    start = time.perf_counter()
    phases = phases if phases is not None else Phases()
    try:
        with phases.timed("build"):
            pack = Pack(spec, members, on_epoch=on_epoch, path=path)
        pack.fit(phases)
        with phases.timed("evaluate"):
            records = pack.finish(time.perf_counter() - start)
        for record in records:
            record.result["phases"] = phases.as_result()
        return records
    except Exception as exc:  # noqa: BLE001 - recorded per member; the study goes on
        text = "".join(traceback.format_exception(exc))
        out = []
        for m in members:
            result = new_result(m.cfg, m.trial_id)
            result.update(status="failed", reason=f"{type(exc).__name__}: {exc}", traceback=text,
                          wall_time_s=time.perf_counter() - start, pack_size=len(members))
            out.append(TrialRecord(result))
        return out
