"""Broken scenarios: every problem is one InputError line naming the file and the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dlora_sim.errors import InputError
from dlora_sim.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
DEFAULT = SCENARIOS / "paper-default.toml"


def _in_section(section: str, line: str):
    """An edit that adds ``line`` right after the ``[section]`` header."""
    return lambda text: text.replace(f"{section}\n", f"{section}\n{line}\n", 1)


def _replace(old: str, new: str):
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


# (case id, edit of paper-default's text, field path the message must name, words it must hold)
BROKEN = [
    ("malformed-toml", _replace("[cloud]", "[cloud"), None, "malformed TOML"),
    ("unknown-key", _in_section("[job]", "learning_rate = 0.1"), "job.learning_rate", "unknown key"),
    ("unknown-section", lambda t: t + "\n[gpu]\ncount = 1\n", "gpu", "unknown key"),
    ("wrong-type", _replace("steps = 1000", 'steps = "many"'), "job.steps", "integer"),
    ("negative-bandwidth", _replace('link = "wifi"', "link = { up_bps = -5e6, down_bps = 1e7, rtt_s = 0.02 }"),
     "fleet.groups.1.link.up_bps", "greater than or equal to 1"),
    ("negative-capacity", lambda t: t + "\n[network]\naccess_capacity_bps = -1\n",
     "network.access_capacity_bps", "greater than or equal to 1"),
    ("budget-above-module-count", _replace("budget = 16 ", "budget = 200 "), "job.budget", "128"),
    ("zero-budget", _replace("budget = 16 ", "budget = 0 "), "job.budget", "greater than 0"),
    ("missing-profile", lambda t: re.sub(r'profile = "[^"]*"', 'profile = "no-such-profile.json"', t),
     "job.profile", "not found"),
    ("unknown-device", _replace('device = "laptop"', 'device = "toaster"'), "fleet.groups.1.device", "allowed"),
    ("unknown-link", _replace('link = "5g"', 'link = "6g"'), "fleet.groups.0.link", "allowed"),
    ("unknown-model", _replace('model = "llama-7b"', 'model = "gpt-5"'), "job.model", "allowed"),
    ("unknown-target", _replace('targets = ["q", "k", "v", "o"]', 'targets = ["q", "x"]'), "job.targets", "allowed"),
    ("unknown-strategy", _replace('"cloud-only"]', '"federated"]'), "run.strategies", "allowed"),
    ("unknown-gpu", _replace('gpu = "a100"', 'gpu = "tpu-v5"'), "cloud.gpu", "allowed"),
    ("bad-granularity", _replace('granularity = "step"', 'granularity = "event"'), "run.granularity", "module"),
    ("no-steps-nor-target", lambda t: re.sub(r"\nsteps = 1000 [^\n]*\n", "\n", t), "job.steps", "exactly one"),
    ("both-steps-and-target", _in_section("[job]", "target_accuracy = 0.5"), "job.steps", "exactly one"),
    ("unreachable-accuracy", lambda t: re.sub(r"\nsteps = 1000 [^\n]*\n", "\ntarget_accuracy = 1.0\n", t),
     "job.target_accuracy", "never reached"),
    ("duplicate-group", _replace('name = "laptops-wifi"', 'name = "phones-5g"'), "fleet.groups.1.name", "repeats"),
    ("zero-count", _replace("count = 8\ndevice = \"laptop\"", "count = 0\ndevice = \"laptop\""),
     "fleet.groups.1.count", "greater than 0"),
    ("spread-too-large", _replace("compute_spread = 0.2", "compute_spread = 1.5"), "fleet.groups.0.compute_spread", "less than 1"),
    ("markov-missing-mean", _in_section("[[fleet.groups]]", 'availability = { kind = "markov", mean_online_s = 60 }'),
     "fleet.groups.0.availability.mean_offline_s", "missing"),
    ("unknown-availability", _in_section("[[fleet.groups]]", 'availability = { kind = "sometimes" }'),
     "fleet.groups.0.availability", "always"),
    ("missing-trace", _in_section("[[fleet.groups]]", 'availability = { kind = "trace", file = "none.csv" }'),
     "fleet.groups.0.availability.file", "not found"),
    ("missing-graphml", lambda t: t + '\n[network]\ngraphml = "none.graphml"\n', "network.graphml", "not found"),
    ("graphml-and-tiers", lambda t: t + f'\n[network]\ngraphml = "{SCENARIOS / "flaky-topology.graphml"}"\n'
     "region_capacity_bps = 1e9\n", "network.region_capacity_bps", "either"),
    ("graphml-unknown-access", lambda t: t + f'\n[network]\ngraphml = "{SCENARIOS / "flaky-topology.graphml"}"\n',
     "fleet.groups.0.access", "not in the GraphML"),
    ("nan-horizon", _replace("horizon_s = 1209600", "horizon_s = nan"), "run.horizon_s", "finite"),
    ("negative-seed", _replace("seed = 0", "seed = -1"), "run.seed", "greater than or equal to 0"),
]


@pytest.fixture
def write_variant(tmp_path):
    """Write an edited copy of paper-default (profile path made absolute) and return its path."""
    profile = load_scenario(DEFAULT).job.profile
    base = re.sub(r'profile = "[^"]*"', f'profile = "{profile}"', DEFAULT.read_text())

    def write(edit) -> Path:
        path = tmp_path / "broken.toml"
        path.write_text(edit(base))
        return path

    return write


@pytest.mark.parametrize(("case", "edit", "field", "words"), BROKEN, ids=[case[0] for case in BROKEN])
def test_broken_scenario_names_file_and_field(write_variant, case, edit, field, words):
    """Each broken kind raises InputError: one line, '<file>: <field>: <problem>'."""
    path = write_variant(edit)
    with pytest.raises(InputError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    if field is not None:
        assert message.startswith(f"{path}: {field}: "), message
    assert words in message, message


def test_missing_scenario_file(tmp_path):
    """A scenario path that does not exist is one line naming it."""
    with pytest.raises(InputError, match="scenario file not found"):
        load_scenario(tmp_path / "nope.toml")


def test_corrupt_profile_is_reported_under_job_profile(write_variant, tmp_path):
    """A truncated profile JSON fails as job.profile with the profile's own reason."""
    profile = load_scenario(DEFAULT).job.profile
    broken = tmp_path / "truncated.json"
    broken.write_text(profile.read_text()[:200])
    path = write_variant(lambda t: re.sub(r'profile = "[^"]*"', f'profile = "{broken}"', t))
    with pytest.raises(InputError, match=r"broken\.toml: job\.profile: .*truncated\.json: .*JSON"):
        load_scenario(path)


@pytest.mark.parametrize(
    ("rows", "words"),
    [
        ("start_s,end_s\n5,1\n", "start_s < end_s"),
        ("start_s,end_s\n0,10\n5,20\n", "overlap"),
        ("begin,end\n0,1\n", "header"),
        ("start_s,end_s\nx,1\n", "numbers"),
        ("start_s,end_s\n", "no intervals"),
    ],
)
def test_bad_trace_files_are_refused(write_variant, tmp_path, rows, words):
    """Trace CSVs must have start_s,end_s, numeric, ordered, non-overlapping intervals."""
    trace = tmp_path / "trace.csv"
    trace.write_text(rows)
    path = write_variant(_in_section("[[fleet.groups]]", f'availability = {{ kind = "trace", file = "{trace}" }}'))
    with pytest.raises(InputError, match=r"fleet\.groups\.0\.availability\.file: ") as caught:
        load_scenario(path)
    assert words in str(caught.value)
