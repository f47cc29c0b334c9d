"""The ablation command: list, dry run, and one-line errors with exit status 2."""

from __future__ import annotations

import pytest

from ablation.cli import main


def test_list(capsys):
    assert main(["list", "models"]) == 0
    models = capsys.readouterr().out.split()
    assert "mlp" in models and "srivastava2014_mnist" in models
    assert main(["list", "datasets"]) == 0
    assert set(capsys.readouterr().out.split()) == {"mnist", "fashion_mnist", "mnist1d", "digits"}
    assert main(["list", "studies"]) == 0
    assert "quickstart" in capsys.readouterr().out.split()


def test_dry_run_prints_grid_and_count(capsys, tmp_path):
    assert main(["run", "quickstart", "--dry-run", "--out", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "18 trials" in out and "activation" in out and "dropout" in out
    assert not (tmp_path / "runs").exists()
    assert main(["run", "quickstart", "--profile", "quick", "--dry-run"]) == 0
    assert "12 trials" in capsys.readouterr().out


@pytest.mark.parametrize("argv, text", [
    (["run", "no_such_study"], "no_such_study"),
    (["run", "quickstart", "--profile", "nope"], "nope"),
    (["report", "/nonexistent/run"], "run_dir"),
    (["run", "quickstart", "--workers", "0"], "workers"),
])
def test_errors_are_one_line_with_exit_2(capsys, tmp_path, argv, text):
    assert main(argv + (["--out", str(tmp_path / "r")] if argv[0] == "run" else [])) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and text in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["list", "widgets"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_a_bug_is_not_disguised_as_bad_input(monkeypatch):
    import ablation.spec

    def broken(*args, **kwargs):
        raise ValueError("The truth value of a Series is ambiguous")

    monkeypatch.setattr(ablation.spec, "list_studies", broken)
    with pytest.raises(ValueError, match="ambiguous"):
        main(["list", "studies"])
