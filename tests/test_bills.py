"""The dominant bills (issue 16): GPUs rented for the run, their utilisation, mobile data in dollars.

Hand-computed from the catalogue: the A100 at $4.10 an hour, cellular data at $6.00 per GB
(Cable.co.uk 2023, US average), Wi-Fi flat-rate.
"""

from __future__ import annotations

import pytest

from _sim_scenarios import small
from dlora_sim.cost import CostModel, JobSpec, PeftSpec, get_device, get_gpu, get_link, job_totals, priced
from dlora_sim.errors import InputError
from dlora_sim.scenario import scenario_from_dict
from dlora_sim.sim import simulate

A100_USD_PER_S = 4.10 / 3600
CELLULAR_USD_PER_BYTE = 6.00e-9


def _job() -> JobSpec:
    return JobSpec(model="minilm-l6", peft=PeftSpec(method="lora", rank=8), batch=4, seq_len=64, steps=40,
                   budget=3)


def test_cost_model_prices_mobile_data_per_gb_of_the_link():
    job = _job()
    table = CostModel(job, device="phone-mid", gpu="a100").evaluate(link=["lte", "wifi"])
    for strategy in ("dlora-all", "dlora-kr", "cloud-only"):
        usd, moved = (table.values[strategy][f"job_{m}"] for m in ("data_usd", "bytes_total"))
        assert usd[0] == pytest.approx(moved[0] * CELLULAR_USD_PER_BYTE)  # LTE
        assert usd[1] == 0.0 and moved[1] == moved[0]  # Wi-Fi is flat-rate, same bytes
        lte = usd
        totals = job_totals(job, strategy)
        plain = priced(totals, get_device("phone-mid"), get_link("lte"), get_gpu("a100"))
        assert plain["data_usd"] == pytest.approx((totals["bytes_up"] + totals["bytes_down"]) * 6.00e-9)
        assert plain["data_usd"] == pytest.approx(lte[0])


@pytest.fixture(scope="module")
def cut_off():
    groups = [{"name": "fast", "count": 2, "device": "laptop", "link": "wifi"},
              {"name": "slow", "count": 2, "device": "phone-low", "link": "3g"}]
    return simulate(small({"run.horizon_s": 600.0}, groups=groups))


def test_each_device_pays_its_own_links_price_for_data(cut_off):
    for name, block in cut_off.summary["strategies"].items():
        rows = [r for r in cut_off.devices if r["strategy"] == name]
        for row in rows:
            price = CELLULAR_USD_PER_BYTE if row["group"] == "slow" else 0.0
            assert row["data_usd"] == pytest.approx((row["bytes_up"] + row["bytes_down"]) * price)
        assert block["data_usd"] == pytest.approx(sum(r["data_usd"] for r in rows))
        assert block["data_usd"] > 0


def test_a_cut_off_run_rents_the_pool_to_the_horizon(cut_off):
    for block in cut_off.summary["strategies"].values():
        assert block["provisioned_gpu_s"] == 600.0  # 1 GPU, some devices never finished
        assert block["provisioned_usd"] == pytest.approx(600.0 * A100_USD_PER_S)
        assert block["money_usd"] == pytest.approx(block["cloud_gpu_s"] * A100_USD_PER_S)
        assert block["gpu_utilisation"] == pytest.approx(block["cloud_gpu_s"] / 600.0)
        assert block["cloud_wait_per_step_s"] == pytest.approx(block["cloud_wait_s"] / block["steps_done"])


def test_a_finished_run_rents_its_gpus_until_the_last_device_is_done():
    result = simulate(small({"cloud.count": 2}))
    for block in result.summary["strategies"].values():
        assert block["finished_fraction"] == 1.0 and not any(block["censored"].values())
        assert block["provisioned_usd"] == pytest.approx(2 * block["makespan_s"] * A100_USD_PER_S)
        assert 0 < block["gpu_utilisation"] < 1


def _scenario_with_link(link: object):
    import copy

    from _sim_scenarios import BASE

    raw = copy.deepcopy(BASE)
    raw["fleet"]["groups"][0]["link"] = link
    return scenario_from_dict(raw, source="s.toml")


def test_a_link_table_naming_the_catalogue_changes_only_its_price():
    group = _scenario_with_link({"name": "lte", "data_usd_per_gb": 2.5}).fleet.groups[0]
    lte = get_link("lte")
    assert (group.link.up_bps, group.link.down_bps, group.link.rtt_s) == (lte.up_bps, lte.down_bps, lte.rtt_s)
    assert group.link.data_usd_per_gb == 2.5
    assert _scenario_with_link("lte").fleet.groups[0].link.data_usd_per_gb == 6.0
    inline = {"name": "mine", "up_bps": 1e6, "down_bps": 1e6, "rtt_s": 0.1}
    assert _scenario_with_link(inline).fleet.groups[0].link.data_usd_per_gb == 0.0


def test_a_negative_data_price_is_one_error_naming_the_field():
    with pytest.raises(InputError) as error:
        _scenario_with_link({"name": "lte", "data_usd_per_gb": -1})
    message = str(error.value)
    assert "s.toml" in message and "fleet.groups.0.link.data_usd_per_gb" in message and "\n" not in message


def test_cost_prints_the_users_data_bill(capsys):
    """`dlora-sim cost --json` prices each level's traffic at the link's $/GB; Wi-Fi costs nothing."""
    import json

    from dlora_sim.cli import main

    def run(link: str) -> dict:
        try:
            main(["cost", "--model", "minilm-l6", "--budget", "3", "--link", link, "--json"])
        except SystemExit as done:
            assert done.code in (0, None)
        return json.loads(capsys.readouterr().out)["strategies"]["dlora-kr"]

    lte, wifi = run("lte"), run("wifi")
    for level in ("step", "epoch", "job"):
        assert lte[level]["data_usd"] == pytest.approx(lte[level]["bytes_total"] * CELLULAR_USD_PER_BYTE)
        assert wifi[level]["data_usd"] == 0.0
