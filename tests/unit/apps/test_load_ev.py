"""EV charging forecasting across operators: data, model, federated vs plain FedAvg, grid view."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import veil
from veil.apps import ev_data, load_ev
from veil.apps.ev_data import SLOTS, STATIONS
from veil.apps.load_ev import EVOptions, MultiLinearModel
from veil.core import wire
from veil.errors import ConfigError, DataError
from veil.fl.aggregation import Aggregation
from veil.runtime.context import Context
from veil.runtime.jobs import run_party
from veil.transport.memory import MemoryHub, MemoryLink

N_DAYS = 49
TEST_FROM, TEST_TO = "2016-02-05", "2016-02-18"


def write_profiles(path: Path, n_days: int = N_DAYS, seed: int = 1, dst: bool = False) -> Path:
    """A SimBench-format LoadProfile.csv with 15 synthetic EV stations (weekly patterns)."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2016-01-01T00:00")
    times = start + np.arange(n_days * SLOTS) * np.timedelta64(15, "m")
    labels = [str(t.astype("datetime64[m]")) for t in times]
    if dst:  # local clock with the spring-forward jump on 2016-03-27 (01:45 -> 03:00)
        jump = np.datetime64("2016-03-27T02:00")
        labels = [str((t + np.timedelta64(60, "m") if t >= jump else t).astype("datetime64[m]"))
                  for t in times]  # fmt: skip
    stamp = [dt.datetime.fromisoformat(s).strftime("%d.%m.%Y %H:%M") for s in labels]
    slot = np.arange(n_days * SLOTS) % SLOTS
    dow = (np.arange(n_days * SLOTS) // SLOTS + 4) % 7  # 2016-01-01 was a Friday
    cols = {"time": stamp, "G0-A_pload": rng.random(len(stamp))}
    for i, s in enumerate(STATIONS):
        peak = 40 + 3 * i
        shape = np.exp(-0.5 * ((slot - peak) / 6.0) ** 2) * (0.3 + 0.05 * (i % 5))
        weekly = np.where(dow >= 5, 0.5, 1.0)
        cols[f"{s}_pload"] = np.clip(shape * weekly + 0.03 * rng.standard_normal(len(stamp)), 0, 1)
    import pandas as pd

    pd.DataFrame(cols).to_csv(path, sep=";", index=False)
    return path


@pytest.fixture(scope="module")
def profile_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_profiles(tmp_path_factory.mktemp("ev") / "LoadProfile.csv")


def small_options(csv: Path, **changes: Any) -> EVOptions:
    base: dict[str, Any] = dict(test_from=TEST_FROM, test_to=TEST_TO, rounds=4, lr=0.05,
                                profile_csv=str(csv))  # fmt: skip
    return EVOptions(**(base | changes))


# ----------------------------------------------------------------------------- data
def test_easter_and_holidays_known_answers():
    assert ev_data.easter(2016) == dt.date(2016, 3, 27)
    assert ev_data.easter(2024) == dt.date(2024, 3, 31)
    assert ev_data.easter(2025) == dt.date(2025, 4, 20)
    hol = ev_data.german_holidays(2016)
    assert {dt.date(2016, 3, 25), dt.date(2016, 3, 28), dt.date(2016, 5, 5),
            dt.date(2016, 5, 16), dt.date(2016, 10, 3), dt.date(2016, 12, 26)} <= hol  # fmt: skip
    assert len(hol) == 9 and dt.date(2016, 3, 27) not in hol


def test_split_operators_partitions_deterministically():
    a = ev_data.split_operators(["x", "y", "z"], seed=3)
    assert a == ev_data.split_operators(["x", "y", "z"], seed=3)
    assert [len(v) for v in a.values()] == [5, 5, 5]
    assert sorted(s for v in a.values() for s in v) == sorted(STATIONS)
    assert a != ev_data.split_operators(["x", "y", "z"], seed=4)
    with pytest.raises(ConfigError):
        ev_data.split_operators(["x", "x"], seed=0)


def test_day_features_by_hand():
    hist = np.random.default_rng(0).random((7, SLOTS))
    day = dt.date(2016, 5, 16)  # Whit Monday
    f = ev_data.day_features(hist, day)
    assert f.shape == (ev_data.N_FEATURES,)
    np.testing.assert_allclose(f[:24], hist[-1].reshape(24, 4).mean(axis=1))
    np.testing.assert_allclose(f[24:48], hist.mean(axis=0).reshape(24, 4).mean(axis=1))
    np.testing.assert_allclose(f[48:72], hist[0].reshape(24, 4).mean(axis=1))
    assert f[72:79].tolist() == [1, 0, 0, 0, 0, 0, 0] and f[79] == 1.0


def test_load_profiles_and_windows(profile_csv: Path):
    p = ev_data.load_profiles(profile_csv)
    assert p.loads.shape == (15, N_DAYS, SLOTS) and p.days[0] == dt.date(2016, 1, 1)
    X, Y, days = ev_data.station_windows(p.station("HLS_A_3.7"), p.days, dt.date(2016, 1, 1),
                                         dt.date(2016, 1, 10))  # fmt: skip
    assert days[0] == dt.date(2016, 1, 8) and len(days) == 3  # 7 days of history first
    np.testing.assert_array_equal(Y[0], p.station("HLS_A_3.7")[7])
    split = ev_data.Split(dt.date.fromisoformat(TEST_FROM), dt.date.fromisoformat(TEST_TO))
    d = ev_data.operator_data(p, ["HLS_A_3.7", "APLS_A_50.0"], split)
    assert d.X_val.shape == (2 * 14, ev_data.N_FEATURES) and d.y_train.shape == (2 * 28, SLOTS)


def test_summer_time_labels_accepted(tmp_path: Path):
    csv = write_profiles(tmp_path / "dst.csv", n_days=95, dst=True)
    assert ev_data.load_profiles(csv).loads.shape == (15, 95, SLOTS)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda df: df.drop(columns=["HLS_B_3.7_pload"]), "no column"),
        (lambda df: df.assign(time=df["time"].where(df.index != 5, "soon")), "unparsable"),
        (lambda df: df.drop(index=[7]), "15-minute"),
        (
            lambda df: df.assign(
                **{"APLS_A_3.7_pload": df["APLS_A_3.7_pload"].where(df.index != 3)}
            ),
            "non-finite",
        ),
    ],
)
def test_bad_profile_file_names_it(profile_csv: Path, tmp_path: Path, mutate: Any, message: str):
    import pandas as pd

    bad = tmp_path / "bad.csv"
    mutate(pd.read_csv(profile_csv, sep=";")).to_csv(bad, sep=";", index=False)
    with pytest.raises(DataError, match=message) as ei:
        ev_data.load_profiles(bad)
    assert "bad.csv" in str(ei.value)


def test_missing_simbench_gives_install_hint(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(ev_data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="pip install"):
        ev_data.load_profiles()


def test_forecast_metrics_known_values():
    actual = np.zeros((2, SLOTS))
    actual[0, 10], actual[1, 20] = 2.0, 1.0
    fc = actual.copy()
    fc[0, 10] = 1.0  # misses day 0's peak by 1
    fc[1, 0] = 0.5  # off-peak error on day 1
    m = ev_data.forecast_metrics(fc, actual)
    assert m["mae"] == pytest.approx(1.5 / (2 * SLOTS))
    assert m["rmse"] == pytest.approx(np.sqrt(1.25 / (2 * SLOTS)))
    assert m["peak_error"] == pytest.approx(0.5)


# ----------------------------------------------------------------------------- model
def test_multilinear_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    model = MultiLinearModel(5, 3, l2=0.1)
    X, Y = rng.standard_normal((20, 5)), rng.standard_normal((20, 3))
    w = rng.standard_normal(model.n_params)
    _, g = model.loss_grad(w, X, Y)
    eps = 1e-6
    num = np.array([(model.loss_grad(w + eps * e, X, Y)[0] - model.loss_grad(w - eps * e, X, Y)[0])
                    / (2 * eps) for e in np.eye(model.n_params)])  # fmt: skip
    np.testing.assert_allclose(g, num, atol=1e-6)


def test_multilinear_sgd_reaches_least_squares():
    rng = np.random.default_rng(1)
    model = MultiLinearModel(4, 6)
    X = rng.standard_normal((400, 4))
    W, b = rng.standard_normal((4, 6)), rng.standard_normal(6)
    Y = X @ W + b
    w, _ = model.fit_local(np.zeros(model.n_params), X, Y,
                           veil.fl.models.LocalTraining(epochs=60, batch_size=20, lr=0.05),
                           rng)  # fmt: skip
    np.testing.assert_allclose(model.predict(w, X), Y, atol=1e-6)
    with pytest.raises(DataError):
        model.check_data(X, Y[:, :5])


# ----------------------------------------------------------------------------- federated
def plain_fedavg(opts: EVOptions, data: dict[str, Any], seed: int) -> np.ndarray:
    """The textbook FedAvg loop in one process, same rounds, local SGD and client RNGs."""
    model = opts.model()
    params = model.init_params(np.random.default_rng([seed, 0xF1]))
    for r in range(1, opts.rounds + 1):
        total, rows = np.zeros_like(params), 0
        for op in opts.operators:
            d = data[op]
            rng = np.random.default_rng([seed, r, *op.encode()])
            new, _ = model.fit_local(params, d.X_train, d.y_train, opts.local(), rng)
            total += len(d.y_train) * (new - params)
            rows += len(d.y_train)
        params = params + total / rows
    return params


def test_federated_secure_matches_plain_fedavg_and_area_is_the_sum(profile_csv: Path):
    opts = small_options(profile_csv)
    split = opts.split()
    assign = ev_data.split_operators(opts.operators, opts.split_seed)
    prof = ev_data.load_profiles(profile_csv)
    data = {op: ev_data.operator_data(prof, st, split) for op, st in assign.items()}
    params: dict[str, Any] = {opts.utility: {"options": opts.to_params()}}
    params |= {op: {"options": opts.to_params(), "stations": assign[op]} for op in opts.operators}
    out = veil.simulate(load_ev.ev_job, [opts.utility, *opts.operators], params=params,
                        per_party_params=True, seed=7)  # fmt: skip
    got = np.asarray(out[opts.utility]["params"])
    want = plain_fedavg(opts, data, seed=7)
    # Secure aggregation rounds each client's weighted change to 2^-24 per coordinate; divided
    # by ~420 rows that is < 1e-9 per round, 4 rounds (measured: 6e-10).
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)
    assert np.abs(want).max() > 1e-2  # the model did learn something
    n = len(split.test_days)
    model = opts.model()
    area = np.asarray(out[opts.utility]["area_forecast"])
    plain = sum(load_ev.station_sum(model, got, d.X_val, n) for d in data.values())
    np.testing.assert_allclose(area, plain, atol=1e-5)
    assert all(set(out[op]) == {"seconds", "rounds_log"} for op in opts.operators)


# ----------------------------------------------------------------------------- grid view
class RecordingLink(MemoryLink):
    """A memory link that keeps a copy of everything its party receives."""

    def __init__(self, hub: MemoryHub, party: str) -> None:
        super().__init__(hub, party)
        self.received: list[tuple[str, str, bytes | np.ndarray]] = []

    def recv_bytes(self, frm: str, key: str, timeout: float | None = None) -> bytes:
        data = super().recv_bytes(frm, key, timeout)
        self.received.append((frm, key, data))
        return data

    def recv_array(self, frm: str, key: str, timeout: float | None = None) -> np.ndarray:
        arr = super().recv_array(frm, key, timeout)
        self.received.append((frm, key, arr.copy()))
        return arr


def run_recorded(
    parties: list[str], job: Any, kwargs: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, RecordingLink], dict[str, Context]]:
    """Run ``job`` at every party in threads over recording memory links."""
    hub = MemoryHub(parties)
    links = {p: RecordingLink(hub, p) for p in parties}
    ctxs = {p: Context(p, links[p], seed=1) for p in parties}
    outcomes = {}

    def party(p: str) -> None:
        outcomes[p] = run_party(job, ctxs[p], kwargs[p])

    threads = [threading.Thread(target=party, args=(p,)) for p in parties]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for o in outcomes.values():
        assert o.ok, o.traceback
    return {p: o.result for p, o in outcomes.items()}, links, ctxs


def run_grid_view(mode: Aggregation) -> tuple[dict[str, np.ndarray], Any, RecordingLink, Context]:
    ops = ["cpo1", "cpo2", "cpo3"]
    n_days = 3
    rng = np.random.default_rng(5)
    forecasts = {op: rng.random((n_days, SLOTS)) for op in ops}

    def job(ctx: Context) -> Any:
        return load_ev.grid_view(ctx, "utility", ops, forecasts.get(ctx.party), n_days,
                                 aggregation=mode, timeout=20)  # fmt: skip

    results, links, ctxs = run_recorded(["utility", *ops], job, {p: {} for p in ["utility", *ops]})
    return forecasts, results, links["utility"], ctxs["utility"]


def leaked(received: list[tuple[str, str, Any]], secret: np.ndarray) -> bool:
    """Does any received message carry ``secret`` in the clear?

    Looks for its first four values as float64, float32 or 24-bit fixed point (the secure
    aggregation encoding, unmasked) bytes in every message, and for the whole vector as an array.
    """
    flat = secret.ravel()
    head = flat[:4]
    needles = [head.tobytes(), head.astype(np.float32).tobytes(),
               np.round(head * 2**24).astype(np.int64).tobytes()]  # fmt: skip
    for _, _, msg in received:
        arrays = [msg] if isinstance(msg, np.ndarray) else []
        if isinstance(msg, bytes):
            with contextlib.suppress(Exception):  # not an array frame
                arrays.append(wire.decode_array(msg))
        blobs = [msg] if isinstance(msg, bytes) else []
        blobs += [np.ascontiguousarray(a).tobytes() for a in arrays]
        if any(n in b for n in needles for b in blobs):
            return True
        for a in arrays:
            a = np.asarray(a).ravel()
            if a.dtype.kind == "f" and a.size == flat.size and np.allclose(a, flat, atol=1e-6):
                return True
    return False


def test_utility_receives_only_the_sum():
    forecasts, results, link, ctx = run_grid_view(Aggregation.SECURE)
    total = sum(forecasts.values())
    np.testing.assert_allclose(results["utility"], total, atol=1e-6)
    assert all(results[op] is None for op in forecasts)
    assert link.received, "the utility received nothing"
    for op, f in forecasts.items():
        assert not leaked(link.received, f), f"{op}'s own forecast reached the utility in clear"
    entries = [e for e in ctx.ledger.entries() if e.get("tag") == load_ev.GRID_TAG]
    assert len(entries) == 1
    assert entries[0]["to"] == ["utility"] and entries[0]["value"]["kind"] == "secagg"


def test_leak_detector_catches_plain_uploads():
    """The negative control: with plain (insecure) aggregation the same check finds them."""
    forecasts, results, link, _ = run_grid_view(Aggregation.PLAIN)
    np.testing.assert_allclose(results["utility"], sum(forecasts.values()), atol=1e-12)
    assert all(leaked(link.received, f) for f in forecasts.values())


def test_whole_job_never_shows_the_utility_an_operator_forecast_or_profile(profile_csv: Path):
    opts = small_options(profile_csv, rounds=2)
    assign = ev_data.split_operators(opts.operators, opts.split_seed)
    prof = ev_data.load_profiles(profile_csv)
    parties = [opts.utility, *opts.operators]
    kwargs: dict[str, dict[str, Any]] = {opts.utility: {"options": opts.to_params()}}
    kwargs |= {op: {"options": opts.to_params(), "stations": assign[op]} for op in opts.operators}
    results, links, _ = run_recorded(parties, load_ev.ev_job, kwargs)
    got = links[opts.utility].received
    params = np.asarray(results[opts.utility]["params"])
    n = len(opts.split().test_days)
    for op, stations in assign.items():
        d = ev_data.operator_data(prof, stations, opts.split())
        assert not leaked(got, load_ev.station_sum(opts.model(), params, d.X_val, n)), op
        for s in stations:  # a busy stretch of each station's raw profile, never sent
            loads = prof.station(s).ravel()
            start = int(np.argmax(np.convolve(loads > 0, np.ones(4), "valid")))
            assert loads[start : start + 4].all()
            assert not leaked(got, loads[start : start + 4]), (op, s)


# ----------------------------------------------------------------------------- runner
def test_run_ev_report(profile_csv: Path, tmp_path: Path):
    rep = load_ev.run_ev(tmp_path, "memory", options=small_options(profile_csv, rounds=20, lr=0.1))
    on_disk = json.loads((tmp_path / "report.json").read_text())
    ev = on_disk["ev"]
    assert set(ev["models"]) == {"federated_secure", "pooled_plaintext", "local"}
    assert set(ev["models"]["local"]) == {"cpo1", "cpo2", "cpo3"}
    for m in [ev["models"]["federated_secure"], ev["models"]["pooled_plaintext"],
              *ev["models"]["local"].values(), ev["aggregate"]]:  # fmt: skip
        assert set(m) >= {"mae", "rmse", "peak_error"}
    fed, pooled = ev["models"]["federated_secure"], ev["models"]["pooled_plaintext"]
    # Collaboration helps every operator; FedAvg takes fewer SGD steps than the pooled check.
    assert fed["rmse"] < min(m["rmse"] for m in ev["models"]["local"].values())
    assert pooled["rmse"] <= fed["rmse"] < 1.5 * pooled["rmse"]
    agg = ev["aggregate"]
    assert agg["max_abs_diff_vs_plaintext_sum"] < 1e-5
    assert agg["rmse"] < agg["operators_alone"]["rmse"]
    assert set(agg["pooled_plaintext"]) == {"mae", "rmse", "peak_error"}
    assert set(ev["bytes_sent"]) == {"utility", "cpo1", "cpo2", "cpo3"}
    assert {"data", "federated", "fl_train", "grid_view", "checks"} <= set(ev["seconds"])
    assert any(e.get("tag") == load_ev.GRID_TAG for e in ev["ledger"])
    assert "<img" in (tmp_path / "report.html").read_text()
    assert rep["ev"]["models"]["local"]["cpo1"] == ev["models"]["local"]["cpo1"]


def test_options_are_validated(profile_csv: Path):
    with pytest.raises(ConfigError):
        EVOptions(operators=("solo",))
    with pytest.raises(ConfigError):
        EVOptions(operators=("utility", "b"))
    with pytest.raises(ConfigError):
        EVOptions(test_from="2016-13-01")
    with pytest.raises(ConfigError, match="secure"):
        EVOptions(aggregation="median")
    with pytest.raises(ConfigError, match="unknown EV option"):
        EVOptions.from_params({"rounds": 3, "epoch": 2})
    assert EVOptions.from_params(EVOptions(rounds=3).to_params()) == EVOptions(rounds=3)
    with pytest.raises(DataError, match="test window"):
        load_ev.run_ev(Path("/nonexistent"), "memory",
                       options=small_options(profile_csv, test_to="2016-03-30"))  # fmt: skip


@pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("simbench") is None,
    reason="SimBench profiles not installed (pip install --no-deps simbench)",
)
def test_installed_simbench_profiles():
    p = ev_data.load_profiles()
    assert p.loads.shape == (15, 366, SLOTS)  # 2016: a leap year, summer-time labels
    assert p.days[0] == dt.date(2016, 1, 1) and p.days[-1] == dt.date(2016, 12, 31)
    # Per-unit of each station's rating (SimBench stores a few -1e-5 rounding residues).
    assert p.loads.min() > -1e-3 and p.loads.max() <= 1 and p.loads.mean() > 0
