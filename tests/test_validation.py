"""core.validation: every type and range rule in one place, each violation one plain sentence that
names the setting and says what to use; the form, the CLI, the run files and the experiment specs
refuse the same value with the same sentence."""
from __future__ import annotations

import io
from dataclasses import replace

import pytest

from core.analysis import ProbeConfig
from core.cli import main
from core.config import ConfigError, DataConfig, ModelConfig, RunConfig, TrainConfig
from core.experiments import ExperimentConfig
from core.validation import check_section, problems, setting_problem

from apptest_helpers import open_app_page


def one_sentence(text: str) -> str:
    assert "\n" not in text and text.endswith(".") and text[0].isupper(), text
    assert text.replace("e.g. ", "").count(". ") == 0, text  # one sentence, not two
    return text


def run_with(**sections) -> RunConfig:
    cfg = RunConfig()
    for name, settings in sections.items():
        setattr(cfg, name, replace(getattr(cfg, name), **settings))
    return cfg


@pytest.mark.parametrize("sections, words", [
    ({"model": {"dropout": 1.5}}, "Dropout must be at least 0 and below 1 (got 1.5); try 0 or 0.5."),
    ({"model": {"latent": 0}}, "The latent size must be at least 1 (got 0)"),
    ({"model": {"activation": "gelu"}}, "Unknown activation 'gelu'; choose one of relu, leaky_relu, sigmoid, tanh."),
    ({"model": {"family": "rnn"}}, "Unknown model family 'rnn'; choose one of conv, spatial, dense."),
    ({"model": {"family": "spatial", "vae": True}}, "The spatial family has no VAE: "),
    ({"model": {"family": "dense", "hidden": []}}, "The dense model needs at least one hidden layer size"),
    ({"model": {"family": "conv", "preset": "huge"}}, "Unknown conv preset 'huge'; choose one of small, large"),
    ({"train": {"optimizer": "lbfgs"}}, "Unknown optimiser 'lbfgs'"),
    ({"train": {"lr": -1.0}}, "The learning rate must be a number of at least 0 (got -1.0); try 0.002."),
    ({"train": {"epochs": 0}}, "Epochs must be at least 1 (got 0)"),
    ({"train": {"loss": "bce"}, "model": {"output_activation": "none"}},
     "The BCE loss needs outputs in [0, 1]; set the output activation to sigmoid or pick MSE or MAE."),
    ({"data": {"val_fraction": 0.6, "test_fraction": 0.5}}, "The validation and test fractions add up to 1 or more"),
    ({"data": {"limit": -3}}, "The image limit cannot be negative (got -3); use 0 for all images."),
])
def test_each_kind_of_violation_is_one_sentence_naming_the_setting(sections, words):
    cfg = run_with(**sections)
    (problem,) = problems(cfg)
    assert problem.startswith(words) or words in problem
    one_sentence(problem)
    with pytest.raises(ConfigError) as info:  # a run file with it is refused with the same sentence
        RunConfig.from_dict(cfg.to_dict())
    assert str(info.value) == problem


def test_a_value_of_the_wrong_type_in_a_file_names_the_setting():
    d = RunConfig().to_dict()
    d["train"]["epochs"] = "10"
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(d)
    assert info.value.reason == 'the setting train.epochs must be a whole number, not "10"'
    one_sentence(str(info.value))


def test_every_violation_is_listed_for_the_form():
    cfg = run_with(model={"dropout": 2.0, "latent": 0}, train={"batch_size": 0})
    assert [p.split(" must")[0] for p in problems(cfg)] == ["The latent size", "Dropout", "The batch size"]


def test_the_probe_and_single_settings_use_the_same_rules():
    with pytest.raises(ConfigError, match=r"^The classifier's learning rate must be above 0 \(got 0.0\)"):
        check_section(ProbeConfig(lr=0.0), "probe")
    assert setting_problem("model.dropout", 0.95) is None
    assert setting_problem("model.dropout", 1.0) == "Dropout must be at least 0 and below 1 (got 1.0); try 0 or 0.5."


BCE_WITHOUT_SIGMOID = "The BCE loss needs outputs in [0, 1]; set the output activation to sigmoid or pick MSE or MAE."


def test_the_form_the_cli_the_run_files_and_the_experiments_refuse_the_same_value(no_runs, tmp_path):
    """The BCE loss with a linear output: the Train form says it and keeps Start disabled, the CLI
    exits with it before reading any data, a config.json with it does not load, and an experiment
    whose grid makes it is refused, all with the same sentence."""
    at = open_app_page("views/train.py", {"cfg_loss": "bce", "cfg_output_activation": "none"},
                       errors=["The BCE loss needs outputs in"])
    assert [e.value.replace("\\", "") for e in at.error] == [BCE_WITHOUT_SIGMOID]  # as shown (escaped Markdown)
    assert at.button(key="start_job").disabled

    out, err = io.StringIO(), io.StringIO()
    code = main(["train", "--dataset", "folder", "--folder", str(tmp_path / "none"), "--model", "conv-small",
                 "--loss", "bce", "--output-activation", "none", "--out", str(tmp_path)], out=out, err=err)
    assert code == 2 and err.getvalue().strip().splitlines()[-1] == f"error: {BCE_WITHOUT_SIGMOID}"

    cfg = RunConfig(model=ModelConfig(output_activation="none"), train=TrainConfig(loss="bce"))
    with pytest.raises(ConfigError) as info:
        RunConfig.from_json(cfg.to_json())
    assert str(info.value) == BCE_WITHOUT_SIGMOID

    exp = ExperimentConfig(name="losses", base=RunConfig(model=ModelConfig(output_activation="none"),
                                                          data=DataConfig(dataset="digits")),
                           grid={"train.loss": ["mse", "bce"]})
    with pytest.raises(ConfigError) as info:
        exp.check()
    assert str(info.value) == f"Variant 2 (loss bce): {BCE_WITHOUT_SIGMOID}"
