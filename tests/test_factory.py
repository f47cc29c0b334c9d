"""ablation.trials.factory: your model function found without running it, imported, checked against its signature, called."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from ablation.trials import factory
from ablation.engine import preflight
from ablation import spec
from ablation.spec import SpecError

MODEL = """
import keras
from helpers import WIDTH          # a sibling module: the file's folder is on the import path

def build(input_shape, num_classes, width=WIDTH, dropout=0.0, named=True):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(width, name="dense_1" if named else "hidden")(x)
    x = keras.layers.Activation("relu", name="act_1" if named else "relu")(x)
    if dropout > 0.9:
        raise ValueError("dropout too high for this net")
    return keras.Model(inputs, keras.layers.Dense(num_classes, name="logits")(x))

def wide(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    return keras.Model(inputs, keras.layers.Dense(num_classes + 1)(keras.layers.Flatten()(inputs)))

def needs(input_shape, depth):
    raise AssertionError("never called")

def anything(num_classes, **kwargs):
    return keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(num_classes)])

NOT_A_FUNCTION = 3
"""

STUDY = """
[study]
name = "f"
seeds = [0]

[data]
path = "d.npz"

[model]
factory = "m.py:build"

[train]
epochs = 1

[grid]
dropout = [0.0, 0.5]
"""


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "m.py").write_text(MODEL)
    (tmp_path / "helpers.py").write_text("WIDTH = 8\n")
    x = np.random.default_rng(0).random((30, 2, 2), dtype=np.float32)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(30) % 3, x_test=x[:6], y_test=np.arange(6) % 3)
    yield tmp_path
    for name in [m for m in sys.modules if m in ("helpers", "own_pkg", "own_pkg.nets")]:
        del sys.modules[name]


def load(folder: Path, text: str = STUDY) -> spec.StudySpec:
    (folder / "s.toml").write_text(text)
    return spec.load(folder / "s.toml")


def test_loads_a_file_with_its_folder_on_the_import_path(folder):
    s = load(folder)
    fn = factory.load(s.model.factory)
    assert fn.__name__ == "build" and factory.load(s.model.factory) is fn  # imported once
    model = factory.call(s.model.factory, {"width": 4}, (2, 2), 3)
    assert model.output.shape[-1] == 3 and model.get_layer("dense_1").units == 4


def test_a_module_reference_is_imported_from_the_study_folder(folder):
    (folder / "own_pkg").mkdir()
    (folder / "own_pkg" / "__init__.py").write_text("")
    (folder / "own_pkg" / "nets.py").write_text(MODEL.replace("from helpers import WIDTH", "WIDTH = 5"))
    s = load(folder, STUDY.replace('"m.py:build"', '"own_pkg.nets:build"'))
    assert s.model.factory.source == str(folder / "own_pkg" / "nets.py")
    assert factory.call(s.model.factory, {}, (2, 2), 3).get_layer("dense_1").units == 5


@pytest.mark.parametrize("name, match", [
    ("missing", r"^model\.factory: .*m\.py has no 'missing'$"),
    ("NOT_A_FUNCTION", r"^model\.factory: NOT_A_FUNCTION in .*m\.py is not a function: int$"),
])
def test_names_that_are_not_functions(folder, name, match):
    s = load(folder, STUDY.replace("m.py:build", f"m.py:{name}"))
    with pytest.raises(SpecError, match=match):
        factory.load(s.model.factory)


def test_a_module_that_raises_on_import_is_one_line(folder):
    (folder / "m.py").write_text("x = 1 / 0\n" + MODEL)
    s = load(folder)
    with pytest.raises(SpecError, match=r"^model\.factory: importing .*m\.py raised ZeroDivisionError: division by "
                                        r"zero$"):
        preflight.check_factory(s)


@pytest.mark.parametrize("edits, match", [
    (("dropout = [0.0, 0.5]", "dropuot = [0.0, 0.5]"), r"^grid\.dropuot: unknown argument of build\(\) of m\.py; its "
                                                       r"parameters: input_shape, num_classes, width, dropout, named$"),
    (("[train]", "colour = 3\n[train]"), r"^model\.colour: unknown argument of build\(\) of m\.py"),
    (("dropout = [0.0, 0.5]", "config = { a = {}, b = { depth = 2 } }"),
     r"^grid\.config\.b\.depth: unknown argument of build\(\) of m\.py"),
    (("m.py:build", "m.py:needs", "dropout = [0.0, 0.5]", "train_size = [10]"),
     r"^model\.factory: needs\(\) of m\.py needs depth \(no default\); set it in \[model\] or as grid axes$"),
])
def test_preflight_checks_the_signature(folder, edits, match):
    text = STUDY
    for old, new in zip(edits[::2], edits[1::2]):
        text = text.replace(old, new)
    s = load(folder, text)
    with pytest.raises(SpecError, match=match):
        preflight.check_factory(s)


def test_what_a_function_returns_is_checked_before_the_run(folder):
    s = load(folder, STUDY.replace("m.py:build", "m.py:wide").replace("dropout = [0.0, 0.5]", "train_size = [10]"))
    with pytest.raises(SpecError, match=r"^model\.factory: wide\(\) returned a model whose output has shape "
                                        r"\(None, 4\); this study needs \(batch, 3\)"):
        preflight.check_recipes(s)


def test_preflight_accepts_kwargs_and_refuses_a_function_that_raises_for_a_grid_value(folder):
    preflight.check_factory(load(folder, STUDY.replace("m.py:build", "m.py:anything").replace("dropout", "whatever")))
    s = load(folder, STUDY.replace("[0.0, 0.5]", "[0.0, 0.95]"))
    preflight.check_factory(s)  # the signature is fine; building the 0.95 recipe raises
    with pytest.raises(SpecError, match=r"^model\.factory: building the model with build\(\) at the grid point "
                                        r"dropout=0\.95 raised ValueError: dropout too high for this net$"):
        preflight.check_recipes(s)


def test_a_misspelled_function_name_gets_a_did_you_mean(folder):
    s = load(folder, STUDY.replace("m.py:build", "m.py:biuld"))
    with pytest.raises(SpecError, match=r"^model\.factory: .*m\.py has no 'biuld'; did you mean 'build'\?$"):
        factory.load(s.model.factory)


def test_layer_probes_need_the_zoo_layer_names(folder):
    text = STUDY.replace("seeds = [0]", 'seeds = [0]\nprobes = ["activations"]')
    preflight.check_layer_names(load(folder, text))
    with pytest.raises(SpecError, match=r"^study\.probes: the activations probe needs the zoo's layer names \(act_1, "
                                        r"dense_1, \.\.\. and logits; docs/internals\.md section 1\), and build\(\) "
                                        r"builds layers named .*hidden, relu, logits; name your layers so, or drop"):
        preflight.check_layer_names(load(folder, text.replace("[model]", "[model]\nnamed = false")))
    preflight.check_layer_names(load(folder, STUDY.replace("seeds = [0]", 'seeds = [0]\nprobes = ["timing"]')
                                .replace("[model]", "[model]\nnamed = false")))  # not a layer probe


def test_what_a_function_returns_is_checked(folder):
    f = load(folder).model.factory
    seq = factory.call(load(folder, STUDY.replace("m.py:build", "m.py:anything")).model.factory, {}, (2, 2), 3)
    assert isinstance(seq, keras.Sequential) and seq.inputs  # built for the data's input shape

    class Sub(keras.Model):
        def call(self, x):
            return x

    cases = [(lambda **k: None, r"^f\(\) returned NoneType; expected a keras.Model$"),
             (lambda **k: Sub(), r"^f\(\) returned a subclassed keras.Model; return a functional or Sequential"),
             (lambda **k: keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)]),
              r"^f\(\) returned a model whose input has shape \(3,\); the data's examples have shape \(2, 2\)")]
    for fn, match in cases:
        g = factory.of_function(fn)
        g = type(g)(reference="x:f", digest=g.digest, function=fn)
        with pytest.raises((TypeError, ValueError), match=match):
            factory.call(g, {}, (2, 2), 3)
    assert f.function is None


def test_a_function_object_is_named_and_hashed_by_its_source_file():
    def build(input_shape, num_classes):
        return None

    f = factory.of_function(build)
    assert f.reference == f"{__name__}:test_a_function_object_is_named_and_hashed_by_its_source_file.<locals>.build"
    assert f.source == str(Path(__file__).resolve()) and f.function is build
    assert f.digest == factory.digest_file(__file__)
    lam = factory.of_function(eval("lambda **k: None"))  # no source file: hashed by its code
    assert lam.source is None and len(lam.digest) == 64
    with pytest.raises(SpecError, match=r"^model\.factory: expected a function that returns a keras\.Model"):
        factory.of_function(keras.Model)


def test_in_memory_objects_run_in_this_process_only():
    import ablation

    x = np.zeros((10, 2), np.float32)
    y = np.arange(10) % 2
    s = ablation.Study("mem", model=lambda input_shape, num_classes: None, data=(x, y, x, y), grid={"train_size": [4]})
    assert s.in_memory == [f"the model function {s.model.factory.reference}", "the data arrays"]
    with pytest.raises(SpecError, match=r"^workers: the model function .* and the data arrays exist only in this "
                                        r"Python process, so the study runs in it \(workers=1\)"):
        preflight.check_factory(s, workers=2)


def test_the_search_path_is_study_folder_then_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = factory.search_path(tmp_path / "study")
    assert path[:2] == [(tmp_path / "study").resolve(), tmp_path.resolve()]
    assert textwrap.dedent(factory.FORMS) == '"package.module:function" or "path/to/file.py:function"'


def test_an_edited_file_is_imported_again(folder):
    (folder / "own_pkg").mkdir()
    (folder / "own_pkg" / "__init__.py").write_text("")
    nets = folder / "own_pkg" / "nets.py"
    for width in (5, 7):  # a notebook session: run, edit the file, run again
        nets.write_text(MODEL.replace("from helpers import WIDTH", f"WIDTH = {width}"))
        s = load(folder, STUDY.replace('"m.py:build"', '"own_pkg.nets:build"'))
        assert factory.call(s.model.factory, {}, (2, 2), 3).get_layer("dense_1").units == width
        (folder / "m.py").write_text(MODEL.replace("width=WIDTH", f"width={width}"))  # a file reference too
        assert factory.call(load(folder).model.factory, {}, (2, 2), 3).get_layer("dense_1").units == width


def test_a_module_imported_before_the_study_is_not_imported_again(folder):
    """``ablation.zoo.variants:srivastava2014_mnist`` (a zoo model as a factory): reloading the module
    would register every zoo variant again (a warning each) and replace the registry's functions."""
    import warnings

    import ablation.zoo.variants as before

    s = load(folder, STUDY.replace('"m.py:build"', '"ablation.zoo.variants:srivastava2014_mnist"'))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fn = factory.load(s.model.factory)
    assert sys.modules["ablation.zoo.variants"] is before and fn is before.srivastava2014_mnist
