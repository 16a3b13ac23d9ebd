"""Demand forecast job (`veil forecast`): alignment edge cases, accuracy vs pooled, bad inputs."""

import json

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from veil.apps.load_data import read_series
from veil.apps.load_demand_run import (
    DemandOptions,
    check_inputs,
    html_sections,
    read_forecast,
    run,
)
from veil.cli.forecast import forecast
from veil.errors import DataError

DAYS = 80


def synthetic(days=DAYS, seed=4, per_day=48):
    """Half-hourly demand driven by temperature (U-shaped, stronger in the afternoon)."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2015-03-02", periods=days * per_day, freq=f"{24 * 60 // per_day}min")
    hour = t.hour.to_numpy() + t.minute.to_numpy() / 60
    day = np.arange(len(t)) / per_day
    temp = 18 + 6 * np.sin(2 * np.pi * day / 9) + 5 * np.sin(2 * np.pi * (hour - 9) / 24)
    temp += np.cumsum(rng.normal(0, 0.3, len(t))) * 0.2
    work = (t.day_of_week.to_numpy() < 5).astype(int)
    profile = 1 + 0.3 * np.sin(2 * np.pi * (hour - 6) / 24) + 0.15 * work
    weather_load = 0.02 * (temp - 18) ** 2 * (1 + 0.5 * np.sin(2 * np.pi * (hour - 8) / 24))
    demand = 4 * profile + weather_load + rng.normal(0, 0.05, len(t))
    return pd.DataFrame({"time": t, "Demand": demand, "WorkDay": work, "Temperature": temp})


def write_files(folder, df=None):
    df = synthetic() if df is None else df
    folder.mkdir(parents=True, exist_ok=True)
    u = df[["time", "Demand", "WorkDay"]].copy()
    u["time"] = u["time"].dt.strftime("%Y-%m-%d %H:%M")
    w = df[["time", "Temperature"]].iloc[::-1].copy()  # newest first, day-first format
    w["time"] = w["time"].dt.strftime("%d/%m/%Y %H:%M")
    paths = {"utility": folder / "utility.csv", "weather": folder / "weather.csv"}
    u.to_csv(paths["utility"], index=False)
    w.to_csv(paths["weather"], index=False)
    return paths


OPTS = DemandOptions(time_col="time", target_party="utility", target="Demand",
                     test_from="2015-05-06")  # fmt: skip


# ------------------------------------------------------------------ alignment edge cases
def test_different_formats_and_orders_align(tmp_path):
    paths = write_files(tmp_path)
    s = check_inputs(paths, OPTS)
    np.testing.assert_array_equal(s["utility"].times_ns, s["weather"].times_ns)
    assert s["weather"].quality.step_minutes == 30 and s["weather"].quality.gaps == 0


def test_duplicates_unparsable_and_gaps_are_reported(tmp_path):
    df = pd.DataFrame({"t": ["2015-01-01 00:00", "2015-01-01 00:30", "2015-01-01 00:30",
                             "not a time", "2015-01-01 02:00", "2015-01-01 02:30", "2015-01-01 03:00"],
                       "x": [1.0, 2, 3, 4, 5, 6, 7]})  # fmt: skip
    df.to_csv(tmp_path / "a.csv", index=False)
    s = read_series(tmp_path / "a.csv", "weather", "t")
    q = s.quality
    assert (q.rows, q.unparsable, q.duplicated_rows, q.kept) == (7, 1, 2, 4)
    assert q.step_minutes == 30 and q.gaps == 1  # 00:00 → 02:00 skips three steps
    assert s.table["x"].tolist() == [1.0, 5, 6, 7]  # both rows of the duplicated time dropped


def test_offsets_become_naive_utc(tmp_path):
    pd.DataFrame({"t": ["2015-01-01T10:00:00+10:00", "2015-01-01T00:30:00Z"],
                  "x": [1, 2]}).to_csv(tmp_path / "a.csv", index=False)  # fmt: skip
    s = read_series(tmp_path / "a.csv", "weather", "t")
    assert s.times_ns.tolist() == [pd.Timestamp("2015-01-01 00:00").value,
                                   pd.Timestamp("2015-01-01 00:30").value]  # fmt: skip


def test_unreadable_time_column_names_party_and_file(tmp_path):
    pd.DataFrame({"t": ["a", "b", "c"], "x": [1, 2, 3]}).to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(DataError, match=r"'weather'.*a\.csv.*unreadable"):
        read_series(tmp_path / "a.csv", "weather", "t")


@pytest.mark.parametrize("labels", [["t1", "t2", "t100"], [1, 2, 3]])
def test_labels_and_row_numbers_are_not_read_as_dates(tmp_path, labels):
    # dateutil would read "t2" as a day of 2002 and 3 as 1970 + 3 ns
    pd.DataFrame({"t": labels, "x": [1, 2, 3]}).to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(DataError, match=r"'weather'.*a\.csv.*unreadable"):
        read_series(tmp_path / "a.csv", "weather", "t")


def test_compact_and_month_name_dates_are_read(tmp_path):
    for texts in (["20140101", "20140102"], ["Jan 3 2014 10:00", "Feb 4 2014 11:00"]):
        pd.DataFrame({"t": texts, "x": [1, 2]}).to_csv(tmp_path / "a.csv", index=False)
        assert read_series(tmp_path / "a.csv", "weather", "t").quality.kept == 2


# ------------------------------------------------------------------ the job
@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demand")
    paths = write_files(folder / "data")
    # a gap at the weather provider: those rows (and lags reaching them) drop out
    w = pd.read_csv(paths["weather"])
    w.drop(index=range(1000, 1010)).to_csv(paths["weather"], index=False)
    rep = run(paths, OPTS, folder / "out", transport="memory")
    return rep, folder / "out"


def test_joint_beats_utility_only_and_matches_pooled(report):
    rep, _ = report
    m = rep["models"]
    assert m["joint_secure"]["mape"] < m["utility_only"]["mape"] - 0.5
    assert abs(m["joint_secure"]["mape"] - m["pooled_plaintext"]["mape"]) < 0.1
    assert rep["joint_vs_pooled"]["max_abs_forecast_diff"] < 0.02
    assert rep["n_common"] == DAYS * 48 - 10
    assert rep["data_quality"]["weather"]["gaps"] == 1
    # the utility lacks the 7-day lag in the first week; its lags come from its own complete
    # series, so the weather provider's gap removes only the 10 missing times themselves
    assert rep["unusable_rows"] == {"utility": 7 * 48, "weather": 0}


def test_outputs_and_ledger(report):
    rep, out = report
    fc = pd.read_csv(out / "forecast.csv")
    assert list(fc.columns) == ["time", "actual", "forecast"] and len(fc) == rep["n_test"]
    assert fc["time"].iloc[0] == "2015-05-06T00:00:00"
    on_disk = json.loads((out / "report.json").read_text())
    for name in ("utility_only", "joint_secure", "pooled_plaintext"):
        assert set(on_disk["models"][name]) == {"mape", "rmse"}
    assert set(on_disk["bytes_sent"]) == {"utility", "weather", "dealer"}
    assert {"align", "secure_training", "secure_inference"} <= set(on_disk["seconds"])
    assert "<img" in (out / "report.html").read_text()
    back = read_forecast(out)
    np.testing.assert_allclose(back["forecast"], fc["forecast"])
    assert dict(html_sections(on_disk, back))["Stages (seconds)"].startswith("<table>")
    forecasts = [e for e in rep["ledger"] if e["tag"] == "forecast"]
    assert forecasts and all(e["to"] == ["utility"] for e in forecasts)
    assert {e["party"] for e in forecasts} == {"utility", "weather", "dealer"}
    # nothing of the weather provider's is ever opened: only bookkeeping and metrics
    tags = {e["tag"] for e in rep["ledger"]}
    assert tags <= {"data.quality", "psi.size", "data.rows", "data.split", "data.columns",
                    "forecast", "metrics.models"}  # fmt: skip


# ------------------------------------------------------------------ CLI failure cases
def _cli(paths, out, *extra, target="utility:Demand", test_from="2015-05-06"):
    app = typer.Typer()
    app.command()(forecast)
    args = ["--party", f"utility={paths['utility']}", "--party", f"weather={paths['weather']}",
            "--time", "time", "--target", target, "--test-from", test_from, "--out", str(out),
            "--transport", "memory", *extra]  # fmt: skip
    return CliRunner().invoke(app, args)


@pytest.fixture
def paths(tmp_path):
    return write_files(tmp_path / "data", synthetic(days=30))


def _fails(result, out, *needles):
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    for n in needles:
        assert n in text, text
    assert not out.exists()


def test_cli_no_common_timestamps(paths, tmp_path):
    w = pd.read_csv(paths["weather"])
    w["time"] = pd.to_datetime(w["time"], dayfirst=True) + pd.Timedelta("365D")
    w.to_csv(paths["weather"], index=False)
    out = tmp_path / "out"
    _fails(_cli(paths, out, test_from="2015-03-20"), out, "share 0 timestamps")


def test_cli_non_numeric_target(paths, tmp_path):
    u = pd.read_csv(paths["utility"])
    u["Demand"] = u["Demand"].astype(object)
    u.loc[5, "Demand"] = "high"
    u.to_csv(paths["utility"], index=False)
    out = tmp_path / "out"
    _fails(_cli(paths, out, test_from="2015-03-20"), out, "'utility'", "utility.csv",
           "'Demand'", "not numeric")  # fmt: skip


def test_cli_test_window_outside_data(paths, tmp_path):
    out = tmp_path / "out"
    _fails(_cli(paths, out, test_from="2016-01-01"), out, "'utility'", "utility.csv",
           "outside")  # fmt: skip


def test_cli_unreadable_time_column(paths, tmp_path):
    w = pd.read_csv(paths["weather"])
    w["time"] = "yesterday"
    w.to_csv(paths["weather"], index=False)
    out = tmp_path / "out"
    _fails(_cli(paths, out, test_from="2015-03-20"), out, "'weather'", "weather.csv",
           "unreadable")  # fmt: skip


def test_cli_bad_target_spec_and_model(paths, tmp_path):
    out = tmp_path / "out"
    _fails(_cli(paths, out, target="Demand"), out, "PARTY:COLUMN")
    _fails(_cli(paths, out, "--model", "forest"), out, "ridge, secureboost or both")
    _fails(_cli(paths, out, "--model", "secureboost", "--trees", "0"), out, "n_estimators")
    _fails(_cli(paths, out, target="nobody:Demand"), out, "nobody")


# ------------------------------------------------------------------ SecureBoost
def test_cli_secureboost_small_window(tmp_path):
    """``--model secureboost``: vertical SecureBoost (utility = label holder, weather = feature
    holder), the utility-only twin and the pooled xgboost check, same report and files."""
    pytest.importorskip("xgboost")
    paths = write_files(tmp_path / "data", synthetic(days=45))
    out = tmp_path / "out"
    res = _cli(paths, out, "--model", "secureboost", "--trees", "6", "--depth", "3",
               "--learning-rate", "0.5", "--test-to", "2015-04-12",
               test_from="2015-04-09")  # fmt: skip
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["model"] == "secureboost" and rep["parties"] == ["utility", "weather"]
    assert set(rep["bytes_sent"]) == {"utility", "weather"} and rep["n_test"] == 4 * 48
    assert rep["secureboost"]["n_trees"] == 6
    assert rep["features"]["utility"] == ["lag_1440min", "lag_10080min", "time_of_day",
                                          "day_of_week", "WorkDay"]  # fmt: skip
    assert rep["features"]["weather"] == ["Temperature"]
    m = rep["models"]
    assert m["joint_secure"]["mape"] < m["utility_only"]["mape"] - 0.5
    # xgboost on the pooled columns: the same trees up to its quantile sketch's cut values
    assert abs(m["joint_secure"]["mape"] - m["pooled_plaintext"]["mape"]) < 0.3
    # veil's own trainer on the pooled columns: the same model up to tie-breaking
    assert rep["joint_vs_pooled"]["veil_plaintext_twin"]["mape_diff_pp"] < 0.02
    fc = pd.read_csv(out / "forecast.csv")
    assert len(fc) == rep["n_test"] and fc["time"].iloc[-1] == "2015-04-12T23:30:00"
    forecasts = [e for e in rep["ledger"] if e["tag"] == "forecast"]
    assert forecasts and all(e["to"] == ["utility"] for e in forecasts)
    tags = {e["tag"] for e in rep["ledger"]}
    assert tags <= {"data.quality", "psi.size", "data.rows", "data.split", "data.columns",
                    "forecast", "metrics.models"}  # fmt: skip
    assert "SecureBoost" in (out / "report.html").read_text()


def test_secureboost_job_matches_its_plaintext_twin(tmp_path):
    """The joint model equals the same trainer on the pooled columns in plaintext (exact
    histogram sums), so the secure forecast is the pooled forecast of veil's own trees."""
    from veil.apps.load_demand import TreeSettings, utility_tree_raw, weather_raw
    from veil.ml.secureboost import BoostParams
    from veil.ml.secureboost.protocol import train_plaintext

    paths = write_files(tmp_path / "data", synthetic(days=30))
    settings = TreeSettings(n_estimators=3, max_depth=3, key_bits=1024, insecure=True)
    opts = DemandOptions(time_col="time", target_party="utility", target="Demand",
                         test_from="2015-03-25", model="secureboost", trees=settings)  # fmt: skip
    rep = run(paths, opts, tmp_path / "out", transport="memory")
    s = check_inputs(paths, opts)
    times = s["utility"].times_ns
    Xu, _, y, ok = utility_tree_raw(s["utility"], times, "Demand", 30 * 60 * 10**9,
                                    [86400 * 10**9, 7 * 86400 * 10**9])  # fmt: skip
    cols, _ = weather_raw(s["weather"], times)
    X = np.column_stack([Xu, cols["Temperature"]])
    train, test = opts.window().split(times, ok)
    twin = train_plaintext("utility", X[train], y[train], BoostParams(**settings.params()))
    assert rep["n_train"] == len(train) and rep["n_test"] == len(test)
    fc = pd.read_csv(tmp_path / "out" / "forecast.csv")["forecast"].to_numpy()
    # forecast.csv holds 6 significant digits. Where a node's training rows leave a bin empty,
    # equally good thresholds tie and the weather provider's secret shuffle of its candidates
    # picks one at random (the twin: the lowest), so a rare new row may differ.
    same = np.isclose(fc, twin.predict_own(X[test]), rtol=1e-5)
    assert same.mean() > 0.97, same.mean()


def test_both_models_on_one_alignment(tmp_path):
    """``model="both"`` (the demo): ridge under MPC and SecureBoost on one PSI, ridge's keys
    unchanged, the trees' models, forecasts, stages and bytes beside them."""
    pytest.importorskip("xgboost")
    from veil.apps.load_demand import TreeSettings

    paths = write_files(tmp_path / "data", synthetic(days=45))
    settings = TreeSettings(n_estimators=6, max_depth=3, learning_rate=0.5, key_bits=1024,
                            insecure=True)  # fmt: skip
    opts = DemandOptions(time_col="time", target_party="utility", target="Demand",
                         test_from="2015-04-09", test_to="2015-04-12", model="both",
                         trees=settings)  # fmt: skip
    out = tmp_path / "out"
    rep = run(paths, opts, out, transport="memory")
    m = rep["models"]
    assert list(m) == ["utility_only", "joint_secure", "pooled_plaintext", "utility_only_trees",
                       "joint_secureboost", "pooled_plaintext_trees"]  # fmt: skip
    assert all(set(v) == {"mape", "rmse"} for v in m.values())
    assert rep["parties"] == ["utility", "weather", "dealer"] and rep["n_test"] == 4 * 48
    assert rep["protocol"] == "semi2k+secureboost-ou1024"
    # ridge as with model="ridge"; the trees as with model="secureboost"
    assert abs(m["joint_secure"]["mape"] - m["pooled_plaintext"]["mape"]) < 0.1
    assert rep["joint_vs_pooled"]["max_abs_forecast_diff"] < 0.02
    assert m["joint_secureboost"]["mape"] < m["utility_only_trees"]["mape"] - 0.5
    assert abs(m["joint_secureboost"]["mape"] - m["pooled_plaintext_trees"]["mape"]) < 0.3
    assert rep["joint_vs_pooled_trees"]["veil_plaintext_twin"]["mape_diff_pp"] < 0.02
    assert rep["secureboost"]["n_trees"] == 6 and rep["newton_schulz_steps"] > 0
    assert rep["features"]["secureboost"]["weather"] == ["Temperature"]
    assert len(rep["features"]["secure"]) == 36  # ridge's interactions
    # per-stage seconds and bytes: both models' stages, the bytes add up to each party's total
    sb = ["secureboost.features", "secureboost.secure_training",
          "secureboost.secure_inference", "secureboost.evaluation"]  # fmt: skip
    assert {"align", "secure_training", "pooled_check", "pooled_check_trees", *sb} <= set(
        rep["seconds"]
    )
    stages = rep["bytes_by_stage"]
    assert list(stages) == ["align", "features", "secure_features", "secure_training",
                            "secure_inference", "evaluation", *sb]  # fmt: skip
    for p, total in rep["bytes_sent"].items():
        assert sum(s[p] for s in stages.values()) == total, p
    # the dealer takes no part in SecureBoost; the utility sends one OU-1024 ciphertext (128
    # bytes) per training row and tree
    assert all(stages[s]["dealer"] == 0 for s in sb)
    assert stages["secureboost.secure_training"]["utility"] > 6 * rep["n_train"] * 128
    fc = pd.read_csv(out / "forecast.csv")
    assert list(fc.columns) == ["time", "actual", "forecast", "forecast_secureboost"]
    back = read_forecast(out)
    assert set(back) == {"time", "actual", "forecast", "forecast_secureboost"}
    assert m["joint_secureboost"]["mape"] == pytest.approx(
        100 * np.mean(np.abs(fc["forecast_secureboost"] - fc["actual"]) / fc["actual"]), rel=1e-4
    )
    html = (out / "report.html").read_text()
    assert "joint_secureboost" in html and "SecureBoost" in html and "ridge" in html
    forecasts = [e for e in rep["ledger"] if e["tag"] == "forecast"]
    assert len(forecasts) == 2 * 3 and all(e["to"] == ["utility"] for e in forecasts)
    tags = {e["tag"] for e in rep["ledger"]}
    assert tags <= {"data.quality", "psi.size", "data.rows", "data.split", "data.columns",
                    "forecast", "metrics.models"}  # fmt: skip


# ------------------------------------------------------------------ aby3, horizon, policy
def test_aby3_and_a_longer_horizon(tmp_path):
    paths = write_files(tmp_path / "data", synthetic(days=40))
    opts = DemandOptions(time_col="time", target_party="utility", target="Demand",
                         test_from="2015-04-01", test_to="2015-04-05", horizon="36h",
                         protocol="aby3")  # fmt: skip
    rep = run(paths, opts, tmp_path / "out", transport="memory")
    assert rep["parties"] == ["utility", "weather", "helper"] and rep["n_test"] == 5 * 48
    assert rep["features"]["utility"][:2] == ["lag_2880min", "lag_10080min"]  # ≥ 36 h
    m = rep["models"]
    assert abs(m["joint_secure"]["mape"] - m["pooled_plaintext"]["mape"]) < 0.1
    assert m["joint_secure"]["mape"] < m["utility_only"]["mape"]


def test_forecast_refused_by_policy_opens_nothing(tmp_path):
    from veil.apps.load_data import parse_date
    from veil.apps.load_demand import demand_job, policy_rules
    from veil.errors import PartyFailed
    from veil.runtime.policy import RevealPolicy
    from veil.runtime.simulate import simulate_detailed

    paths = write_files(tmp_path / "data", synthetic(days=30, per_day=24))  # hourly
    rules = [r for r in policy_rules("utility") if r["tag"] != "forecast"]
    policy = RevealPolicy.from_mapping({"default": "deny", "rule": rules})
    common = {"utility": "utility", "weather": "weather", "third": "dealer", "time_col": "time",
              "target": "Demand", "test_from": parse_date("2015-03-25", "x"),
              "fourier_k": 1}  # fmt: skip
    params = {p: common | {"csv": str(paths.get(p, ""))} for p in ("utility", "weather", "dealer")}
    with pytest.raises(PartyFailed) as ei:
        simulate_detailed(demand_job, ["utility", "weather", "dealer"], params=params,
                          per_party_params=True, policy=policy)  # fmt: skip
    assert ei.value.error_type == "RevealDenied" and "forecast" in ei.value.error


def test_a_gap_at_the_utility_makes_rows_with_lags_into_it_unusable(tmp_path):
    from veil.apps.load_demand import utility_raw
    from veil.ml import features as ft

    df = synthetic(days=12)
    gap = 8 * 48 + 16  # day 9, 08:00: after the first week
    u = df.drop(index=gap)[["time", "Demand", "WorkDay"]]
    u.to_csv(tmp_path / "u.csv", index=False)
    s = read_series(tmp_path / "u.csv", "utility", "time")
    assert s.quality.gaps == 1 and s.quality.kept == 12 * 48 - 1
    lags = ft.lags_for_horizon(ft.NS_PER_DAY)
    _, _, _, ok = utility_raw(s, s.times_ns, "Demand", 30 * ft.NS_PER_MINUTE, lags)
    bad = set(pd.to_datetime(s.times_ns[~ok]))
    first_week = set(df["time"].iloc[: 7 * 48])
    one_day_later = df["time"].iloc[gap] + pd.Timedelta("1D")
    assert bad == first_week | {one_day_later}  # not filled, not shifted: just unusable


def test_ambiguous_day_month_order_refused(tmp_path):
    t = pd.date_range("2015-01-01", periods=5, freq="1D").strftime("%d/%m/%Y %H:%M")
    pd.DataFrame({"t": t, "x": range(5)}).to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(DataError, match=r"'weather'.*day-first and month-first"):
        read_series(tmp_path / "a.csv", "weather", "t")


def test_cli_constant_weather_column(paths, tmp_path):
    w = pd.read_csv(paths["weather"])
    w["Temperature"] = 20.0
    w.to_csv(paths["weather"], index=False)
    out = tmp_path / "out"
    _fails(_cli(paths, out, test_from="2015-03-20"), out, "'weather'", "weather.csv", "constant")
