"""Ablate any Keras model: components found, variants without them, the generated study, the CLI errors."""

from __future__ import annotations

import textwrap

import keras
import numpy as np
import pytest

from ablation.engine import autostudy
from ablation import cli
from ablation.zoo import parts
from ablation.spec import SpecError
from ablation.spec import load as load_spec

MODEL = textwrap.dedent('''
    import keras

    def build(input_shape, num_classes):
        inputs = keras.Input(shape=input_shape)
        x = keras.layers.Dense(8, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-2))(inputs)
        x = keras.layers.Dropout(0.3)(x)
        x = keras.layers.Dense(8, activation="relu")(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Dropout(0.2)(x)
        return keras.Model(inputs, keras.layers.Dense(num_classes)(x))

    def plain(input_shape, num_classes):
        inputs = keras.Input(shape=input_shape)
        return keras.Model(inputs, keras.layers.Dense(num_classes)(keras.layers.Dense(4)(inputs)))

    class Sub(keras.Model):
        def __init__(self, num_classes):
            super().__init__()
            self.dense = keras.layers.Dense(num_classes)

        def call(self, x):
            return self.dense(x)

    def subclassed(input_shape, num_classes):
        return Sub(num_classes)

    def clash(input_shape, num_classes, ablate=False):
        inputs = keras.Input(shape=input_shape)
        return keras.Model(inputs, keras.layers.Dense(num_classes)(keras.layers.Dropout(0.1)(inputs)))
''')
IDS = ["dense.kernel_regularizer", "dropout", "batch_normalization", "dropout_1"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0)
    np.savez(tmp_path / "tiny.npz", x_train=x[:90], y_train=y[:90], x_test=x[90:], y_test=y[90:])
    (tmp_path / "model.py").write_text(MODEL)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _build():
    inputs = keras.Input(shape=(6,))
    x = keras.layers.Dense(8, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-2))(inputs)
    x = keras.layers.Dropout(0.3)(x)
    h = keras.layers.Dense(8, activation="relu")(x)
    h = keras.layers.BatchNormalization()(h)
    x = keras.layers.Add()([h, x])
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dropout(0.2)(x)))


def test_discover_finds_each_kind_with_ids_independent_of_the_session_counter():
    keras.layers.Dropout(0.1)  # bumps Keras' name counter: ids must not move
    found = parts.discover(_build())
    assert [(c.id, c.kind) for c in found] == [("dense.kernel_regularizer", "regularizer"), ("dropout", "dropout"),
                                              ("batch_normalization", "normalization"), ("add", "residual"),
                                              ("dropout_1", "dropout")]
    activations = [c.id for c in parts.discover(_build(), ["activation"])]
    assert activations == ["dense.activation", "dense_1.activation"]  # the output layer's is left alone


@pytest.mark.parametrize("cid", ["dense.kernel_regularizer", "dropout", "batch_normalization", "add", "dropout_1"])
def test_each_variant_lacks_its_component_and_keeps_the_others(cid):
    full = _build()
    variant = parts.apply(full, f"-{cid}")
    kinds = {type(l).__name__ for l in variant.layers}
    left = [c.kind for c in parts.discover(variant)]
    assert len(left) == 4
    if cid == "dense.kernel_regularizer":
        assert variant.losses == [] and len(parts.apply(full, "full").losses) == 1
    elif cid == "batch_normalization":
        assert "BatchNormalization" not in kinds and len(variant.losses) == 1
    elif cid == "add":
        assert "Add" not in kinds
    else:
        assert [type(l).__name__ for l in variant.layers].count("Dropout") == 1
    assert variant.output.shape == full.output.shape
    variant.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    variant.fit(np.zeros((4, 6), "float32"), np.zeros(4, "int64"), verbose=0)  # it trains


def test_bare_and_add_one_and_sequential():
    full = _build()
    assert parts.discover(parts.apply(full, "bare")) == []
    assert [c.id for c in parts.discover(parts.apply(full, "+batch_normalization"))] == ["batch_normalization"]
    seq = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, kernel_constraint="max_norm"),
                            keras.layers.Dropout(0.5), keras.layers.Dense(3)])
    assert [c.kind for c in parts.discover(seq)] == ["constraint", "dropout"]
    bare = parts.apply(seq, "bare")
    assert "Dropout" not in {type(l).__name__ for l in bare.layers} and bare.layers[0].kernel_constraint is None


def test_unknown_id_and_subclassed_model_are_one_line_errors():
    with pytest.raises(ValueError, match=r"components.*dense\.kernel_regularizer, .*dropout_1\)\. Received: components='nope'"):
        parts.apply(_build(), "-nope")

    class Sub(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(parts.NotRebuildable, match="subclassed"):
        parts.discover(Sub())


def test_generated_study_has_full_plus_one_arm_per_component(project):
    doc, found = autostudy.generate("model.py:build", "tiny.npz", seeds=2, epochs=1, base=project)
    assert [c.id for c in found] == IDS
    assert doc["grid"]["ablate"] == ["full", *(f"-{i}" for i in IDS)]
    assert doc["model"] == {"factory": "model.py:build"} and doc["data"] == {"path": "tiny.npz"}
    assert [c["expect"] for c in doc["claims"]] == ["higher"] * 4
    path = autostudy.write(doc, found, project / "ablate.toml")
    spec = load_spec(path)
    assert len(spec.trials()) == 10
    add_one, _ = autostudy.generate("model.py:build", "tiny.npz", mode="add-one", components=["dropout"], base=project)
    assert add_one["grid"]["ablate"] == ["bare", "+dropout"]


def test_ablate_runs_ranks_and_the_study_file_resumes(project, capsys):
    assert cli.main(["ablate", "model.py:build", "--data", "tiny.npz", "--seeds", "2", "--epochs", "1",
                     "--study-file", "ablate.toml", "--out", "runs", "--quiet"]) == 0
    runs = list((project / "runs").iterdir())
    assert len(runs) == 1
    from ablation.stats.records import load
    from ablation import stats

    rec = load(runs[0])
    assert len(rec.trials) == 10 and set(rec.trials["status"]) == {"completed"}
    table = stats.component_effects(rec.trials, "test_error")
    assert sorted(table["component"]) == sorted(IDS) and (table["n_pairs"] == 2).all()
    html = (runs[0] / "report.html").read_text()
    assert html.index('id="components"') < html.index('id="claims"')
    # the same seed gives the full model and each variant the same data order: the trials share their seed's split
    by_seed = rec.trials.groupby("seed")["ablate"].nunique()
    assert (by_seed == 5).all()
    assert cli.main(["run", "ablate.toml", "--out", "runs", "--quiet", "--no-report"]) == 0
    assert list((project / "runs").iterdir()) == runs  # resumed: the same run folder, nothing new to train


ERRORS = [
    (["model.py:plain"], "no component to ablate"),
    (["model.py:build", "--components", "dropout,nope"], "Received: components='nope'"),
    (["model.py:subclassed"], "returned a subclassed keras.Model"),
    (["model.py:biuld"], "error: model.factory: "),  # one error, not wrapped in "model: building biuld() failed"
    (["model.py:biuld"], "model.py has no 'biuld'; did you mean 'build'?"),
    (["model.py:clash"], "without a parameter named 'ablate' (the reserved axis"),
]


@pytest.mark.parametrize("command, argv, message", [("ablate", *e) for e in ERRORS] +
                         [("components", *e) for e in ERRORS[2:]])  # components lists "no component" and has no ids
def test_cli_errors_exit_2_before_training(project, capsys, command, argv, message):
    assert cli.main([command, *argv, "--data", "tiny.npz", *(["--out", "runs"] if command == "ablate" else [])]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (project / "runs").exists() and not list(project.glob("*.toml"))


def test_a_written_study_passing_ablate_to_a_function_that_takes_it_is_refused(project, capsys):
    (project / "own.toml").write_text('[study]\nname = "own"\nseeds = [0]\n[data]\npath = "tiny.npz"\n'
                                      '[model]\nfactory = "model.py:clash"\n[grid]\nablate = [true, false]\n')
    assert cli.main(["run", "own.toml", "--out", "runs", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "parameter named 'ablate'" in err and "clash() of model.py" in err and len(err.strip().splitlines()) == 1


def test_components_command_prints_the_table(project, capsys):
    assert cli.main(["components", "model.py:build", "--data", "tiny.npz"]) == 0
    out = capsys.readouterr().out
    assert all(i in out for i in IDS) and "kernel_regularizer set to None" in out


# --------------------------------------------------------------------------- width (halved), an optional kind


def _wide():
    """Conv1D -> Dense -> Dense head + softmax: the head (only an Activation after it) is the output layer."""
    inputs = keras.Input(shape=(6, 2))
    x = keras.layers.Conv1D(5, 3, activation="relu")(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(9, activation="relu")(x)
    x = keras.layers.Dropout(0.1)(x)
    x = keras.layers.Dense(1, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax")(keras.layers.Dense(3)(x)))


def _wide_sequential():
    return keras.Sequential([keras.Input((5, 5, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                             keras.layers.Dense(7), keras.layers.Dense(3)])


def _widths(model):
    return {l.name: getattr(l, "units", None) or getattr(l, "filters") for l in model.layers
            if hasattr(l, "units") or hasattr(l, "filters")}


def test_width_is_optional_and_offered_for_hidden_dense_and_conv_layers_only():
    assert [c.kind for c in parts.discover(_wide())] == ["dropout"]  # not a default kind
    found = parts.discover(_wide(), ["width"])
    assert [(c.id, c.detail) for c in found] == [
        ("conv1d.width", "Conv1D(filters=5)"), ("dense.width", "Dense(units=9)"),
        ("dense_1.width", "Dense(units=1)")]  # dense_2 (then only the softmax) is the output layer
    assert [c.id for c in parts.discover(_wide_sequential(), ["width"])] == ["conv2d.width", "dense.width"]
    assert found[0].removal == "units/filters halved (rounded up)"


@pytest.mark.parametrize("build, cid, key, want", [
    (_wide, "conv1d.width", "filters", 3), (_wide, "dense.width", "units", 5), (_wide, "dense_1.width", "units", 1),
    (_wide_sequential, "conv2d.width", "filters", 2), (_wide_sequential, "dense.width", "units", 4)])
def test_each_width_variant_halves_its_layer_builds_trains_saves_and_loads(tmp_path, build, cid, key, want):
    full = build()
    layer = next(c.layer for c in parts.discover(full, ["width"]) if c.id == cid)
    variant = parts.apply(full, f"-{cid}")
    assert getattr(variant.get_layer(layer), key) == want
    assert _widths(variant) == {**_widths(full), layer: want}  # that layer halved, every other width kept
    assert (variant.count_params() < full.count_params()) is (want < _widths(full)[layer])  # 1 unit stays 1
    x = np.random.default_rng(0).normal(size=(4, *full.inputs[0].shape[1:])).astype("float32")
    variant.compile("adam", "sparse_categorical_crossentropy")
    variant.fit(x, np.array([0, 1, 2, 0]), epochs=1, verbose=0)  # the graph was rebuilt for the new widths
    assert variant.predict(x, verbose=0).shape == (4, 3)
    variant.save(tmp_path / "v.keras")
    loaded = keras.models.load_model(tmp_path / "v.keras")
    assert getattr(loaded.get_layer(layer), key) == want
    np.testing.assert_allclose(loaded.predict(x, verbose=0), variant.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_a_width_that_must_match_a_residual_branch_is_not_offered(project, capsys):
    (project / "res.py").write_text(textwrap.dedent('''
        import keras

        def build(input_shape, num_classes):
            inputs = keras.Input(shape=input_shape)
            x = keras.layers.Dense(8, activation="relu")(inputs)
            h = keras.layers.Dense(8, activation="relu")(x)
            y = keras.layers.Dense(6, activation="relu")(keras.layers.Add()([h, x]))
            return keras.Model(inputs, keras.layers.Dense(num_classes)(y))
    '''))
    assert [c.id for c in parts.discover(keras.models.clone_model(_residual_probe()), ["width"])] == \
        ["dense.width", "dense_1.width", "dense_2.width"]  # discover alone offers them ...
    found, _, _ = autostudy.find({"factory": "res.py:build"}, {"path": "tiny.npz"}, ["width"])
    assert [c.id for c in found] == ["dense_2.width"]  # ... the study only the one whose variant builds
    assert cli.main(["components", "res.py:build", "--data", "tiny.npz", "--include", "width"]) == 0
    out = capsys.readouterr().out
    assert "dense_2.width" in out and "dense_1.width" not in out


def _residual_probe():
    inputs = keras.Input(shape=(6,))
    x = keras.layers.Dense(8)(inputs)
    h = keras.layers.Dense(8)(x)
    y = keras.layers.Dense(6)(keras.layers.Add()([h, x]))
    return keras.Model(inputs, keras.layers.Dense(3)(y))


def test_ablate_with_include_width_generates_one_arm_per_width(project):
    doc, found = autostudy.generate("model.py:build", "tiny.npz", seeds=1, epochs=1, include=["width"], base=project)
    assert [c.id for c in found if c.kind == "width"] == ["dense.width", "dense_1.width"]
    assert "-dense_1.width" in doc["grid"]["ablate"] and len(doc["claims"]) == len(found) == 6
    with pytest.raises(SpecError, match=r"mode='add-one'.*Received: include=\['width'\]"):
        autostudy.generate("model.py:build", "tiny.npz", mode="add-one", include=["width"], base=project)


# --------------------------------------------------------------------------- data order of the arms


def _two_dropouts(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Dropout(0.2)(keras.layers.Dense(4, activation="relu")(inputs))
    return keras.Model(inputs, keras.layers.Dense(num_classes)(keras.layers.Dropout(0.2)(x)))


def test_each_arm_trains_on_the_same_batches_in_the_same_order_as_the_full_model_of_its_seed(tmp_path, monkeypatch):
    """Through the real training path (``ablation.ablate`` -> runner -> packs -> ``Batches``): every batch
    each member is given, by (arm, seed) and (epoch, step); an arm of a seed must see exactly the full
    model's batches of that seed, and another seed other batches."""
    from ablation import ablate
    from ablation.trials import batches

    seen: dict[tuple, dict[tuple, tuple]] = {}
    original = batches.Batches.__getitem__

    def record(self, item):
        xs, ys = original(self, item)
        for r, m in enumerate(self.members):
            arm = (m.cfg.model_args[parts.AXIS], m.cfg.seed)
            seen.setdefault(arm, {})[(self.epoch, item)] = (np.array(xs[f"x{r}"]), np.array(ys[f"m{r}"]))
        return xs, ys

    monkeypatch.setattr(batches.Batches, "__getitem__", record)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    result = ablate(_two_dropouts, (x[:40], y[:40], x[40:], y[40:]), seeds=[0, 1], epochs=2, out=tmp_path,
                    report=False, progress=False, train={"batch_size": 16})
    assert set(result.trials["status"]) == {"completed"} and len(result.trials) == 6
    arms = ["full", "-dropout", "-dropout_1"]
    assert set(seen) == {(a, s) for a in arms for s in (0, 1)}
    for seed in (0, 1):
        full = seen[("full", seed)]
        epochs = sorted({e for e, _ in full})[-2:]  # the two training epochs (Keras peeks at batches before)
        assert [sorted(len(full[(e, i)][1]) for i in range(3)) for e in epochs] == [[8, 16, 16]] * 2
        assert sorted(np.concatenate([full[(epochs[0], i)][0] for i in range(3)]).tolist()) == sorted(x[:40].tolist())
        for arm in arms[1:]:
            other = seen[(arm, seed)]
            assert sorted(other) == sorted(full)
            for step, (bx, by) in full.items():
                np.testing.assert_array_equal(other[step][0], bx, err_msg=f"{arm} seed {seed} step {step}")
                np.testing.assert_array_equal(other[step][1], by)
    assert not all(np.array_equal(seen[("full", 0)][s][0], seen[("full", 1)][s][0]) for s in seen[("full", 0)])
    assert not np.array_equal(seen[("full", 0)][(epochs[0], 0)][0], seen[("full", 0)][(epochs[1], 0)][0])  # new each epoch


@pytest.mark.parametrize("command", ["components", "ablate"])
def test_a_built_in_data_set_that_cannot_load_is_one_line(project, capsys, monkeypatch, command):
    """Offline without ABLATION_MNIST_DIR, Keras' download fails: one line naming the data set, exit 2."""
    from ablation import data

    def offline(*args, **kwargs):
        raise RuntimeError("Could not load mnist with keras.datasets.mnist.load_data() (URL fetch failure).\nmore")

    monkeypatch.setattr(data, "load_spec", offline)
    assert cli.main([command, "model.py:build", "--data", "mnist", *(["--out", "runs"] if command == "ablate" else [])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: data.mnist: Could not load mnist") and len(err.strip().splitlines()) == 1
    assert not (project / "runs").exists() and not list(project.glob("*.toml"))
