"""A model given as a Hugging Face config.json prices the same as its catalogue twin (issue 16),
and the catalogues' newer models and GPUs carry their sources."""

import json
from pathlib import Path

import numpy as np
import pytest

from dlora_sim.cost import GPUS, MODELS, STRATEGIES, CostModel, job_totals
from dlora_sim.errors import InputError
from dlora_sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "scenarios" / "paper-default.toml"
TWIN = "models/llama-7b.config.json"  # relative to the scenario file


def test_config_json_prices_like_the_catalogue_entry():
    catalogue = load_scenario(PAPER).job.to_job_spec()
    from_file = load_scenario(PAPER, {"job.model": TWIN}).job.to_job_spec()
    assert from_file.shape == catalogue.shape  # name and every number
    for strategy in STRATEGIES:
        assert job_totals(from_file, strategy) == job_totals(catalogue, strategy), strategy
    a = CostModel(catalogue).evaluate(budget=np.arange(1, 129))
    b = CostModel(from_file).evaluate(budget=np.arange(1, 129))
    for strategy in STRATEGIES:
        for key, value in a.values[strategy].items():
            np.testing.assert_array_equal(b.values[strategy][key], value, err_msg=f"{strategy} {key}")


def test_config_path_is_resolved_against_the_scenario_and_kept_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not where the scenario is
    scenario = load_scenario(PAPER, {"job.model": TWIN})
    assert Path(scenario.job.model).is_absolute() and Path(scenario.job.model).is_file()
    assert scenario.to_resolved_dict()["job"]["model"] == scenario.job.model


@pytest.mark.parametrize("config, message", [
    ({"model_type": "llama", "hidden_size": 4096}, "num_attention_heads: missing"),
    ({"model_type": "gpt-neox"}, "model_type: 'gpt-neox' is not supported"),
    ({"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32, "num_hidden_layers": "32",
      "intermediate_size": 11008, "vocab_size": 32000}, "num_hidden_layers: must be a positive integer"),
    ({"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 30, "num_hidden_layers": 32,
      "intermediate_size": 11008, "vocab_size": 32000}, "do not divide"),
    ([1, 2], "not a JSON object"),
])
def test_bad_config_is_one_line_naming_file_and_key(tmp_path, config, message):
    path = tmp_path / "m.config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(InputError) as error:
        load_scenario(PAPER, {"job.model": str(path)})
    text = str(error.value)
    assert "job.model" in text and str(path) in text and message in text and "\n" not in text


def test_missing_or_malformed_config(tmp_path):
    with pytest.raises(InputError, match="job.model: file not found"):
        load_scenario(PAPER, {"job.model": str(tmp_path / "none.json")})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not JSON"):
        load_scenario(PAPER, {"job.model": str(bad)})


@pytest.mark.parametrize("name, kv, vocab", [("llama-3-8b", 8, 128256), ("mistral-7b", 8, 32000),
                                             ("qwen2.5-7b", 4, 152064)])
def test_open_models_are_grouped_query(name, kv, vocab):
    shape = MODELS[name]
    assert shape.n_kv_heads == kv and shape.vocab == vocab and shape.source
    assert shape.d_kv < shape.d_model  # k and v projections are narrower than q under GQA


def test_gpus_have_sources_and_sane_numbers():
    for name in ("a100", "h100", "h200", "l40s", "l4"):
        gpu = GPUS[name]
        assert gpu.source and gpu.usd_per_hour > 0 and gpu.memory_bytes > 16e9 and gpu.flops_per_s > 1e13
