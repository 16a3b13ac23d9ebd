"""align_file: CSV/Parquet in and out, every bad input, atomic output."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from psi_harness import RecordingLink, run_ok, run_parties

from veil.errors import DataError, PeerError
from veil.psi import PsiOptions, PsiResult, align_file
from veil.psi.align import write_atomic
from veil.transport.base import Link


def _write(path: Path, ids: list[str], extra: dict[str, list[object]] | None = None) -> Path:
    cols: dict[str, list[object]] = {"id": list(ids), **(extra or {})}
    df = pd.DataFrame(cols)
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path


def _align(
    files: dict[str, Path], out: Path, options: PsiOptions | None = None, key: str = "id"
) -> tuple[dict[str, PsiResult], dict[str, BaseException]]:
    parties = list(files)

    def fn(link: Link, p: str) -> PsiResult:
        suffix = ".parquet" if files[p].suffix == ".parquet" else ".csv"
        return align_file(link, "job", p, parties, files[p], key, out / f"{p}{suffix}", options)

    return run_parties(parties, fn)


def test_csv_alignment_keeps_values_exactly(tmp_path: Path) -> None:
    a = _write(
        tmp_path / "a.csv",
        ["007", "x1", "x2", "x3"],
        {"score": ["1.50", "2", "", "0003"], "name": ["a,b", 'q"t', "c", "d"]},
    )
    b = _write(tmp_path / "b.csv", ["x3", "007", "zz", "x2"], {"y": [1, 0, 1, 1]})
    res, err = _align({"a": a, "b": b}, tmp_path / "out")
    assert not err
    oa = pd.read_csv(tmp_path / "out/a.csv", dtype=str, keep_default_na=False)
    ob = pd.read_csv(tmp_path / "out/b.csv", dtype=str, keep_default_na=False)
    assert oa["id"].tolist() == ob["id"].tolist()
    assert sorted(oa["id"]) == ["007", "x2", "x3"]
    row = oa.set_index("id").loc["007"]
    assert (row["score"], row["name"]) == ("1.50", "a,b")
    assert oa.set_index("id").loc["x2", "score"] == ""
    assert ob.set_index("id").loc["x3", "y"] == "1"
    assert res["a"].n_input == 4 and res["a"].n_intersection == 3
    assert res["a"].bytes_sent > 0 and res["b"].bytes_received == res["a"].bytes_sent
    assert res["a"].out_path == tmp_path / "out/a.csv"
    assert res["a"].summary()["n_intersection"] == 3


def test_parquet_and_three_parties(tmp_path: Path, rng: np.random.Generator) -> None:
    ids = [f"c{i}" for i in range(300)]
    files = {}
    for k, p in enumerate(["bank", "ext1", "ext2"]):
        mine = [ids[i] for i in rng.permutation(300)[: 150 + 40 * k]]
        path = tmp_path / (f"{p}.parquet" if k != 1 else f"{p}.csv")
        files[p] = _write(path, mine, {f"f_{p}": list(range(len(mine)))})
    res, err = _align(files, tmp_path / "out")
    assert not err
    outs = {
        p: (
            pd.read_parquet(tmp_path / f"out/{p}.parquet")
            if p != "ext1"
            else pd.read_csv(tmp_path / "out/ext1.csv", dtype={"id": str})
        )
        for p in files
    }
    sets = [
        set(pd.read_parquet(f)["id"])
        if f.suffix == ".parquet"
        else set(pd.read_csv(f, dtype=str)["id"])
        for f in files.values()
    ]
    expect = set.intersection(*sets)
    assert set(outs["bank"]["id"]) == expect
    assert all(o["id"].tolist() == outs["bank"]["id"].tolist() for o in outs.values())
    assert outs["bank"]["f_bank"].dtype == np.int64  # Parquet keeps types
    assert {r.n_intersection for r in res.values()} == {len(expect)}


def test_receiver_only_writes_only_the_leader(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.csv", ["1", "2", "3"])
    b = _write(tmp_path / "b.csv", ["3", "2", "9"])
    res, err = _align({"a": a, "b": b}, tmp_path / "out", PsiOptions(receiver_only=True))
    assert not err
    assert res["b"].out_path is None and res["b"].n_intersection is None
    assert not (tmp_path / "out/b.csv").exists()
    assert sorted(pd.read_csv(tmp_path / "out/a.csv", dtype=str)["id"]) == ["2", "3"]


def test_dedupe_option(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.csv", ["1", "2", "1"], {"v": ["first", "x", "second"]})
    b = _write(tmp_path / "b.csv", ["1", "5"])
    res, err = _align({"a": a, "b": b}, tmp_path / "out", PsiOptions(dedupe=True))
    assert not err and res["a"].n_duplicates_dropped == 1
    assert pd.read_csv(tmp_path / "out/a.csv", dtype=str)["v"].tolist() == ["first"]


def _error_of(tmp_path: Path, bad: Path, key: str = "id") -> str:
    good = _write(tmp_path / "good.csv", ["1", "2"])
    res, err = _align({"alice": bad, "bob": good}, tmp_path / "out", key=key)
    assert isinstance(err.get("alice"), DataError), err
    assert isinstance(err.get("bob"), PeerError)  # woken, not left waiting
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    return str(err["alice"])


def test_missing_key_column(tmp_path: Path) -> None:
    bad = tmp_path / "a.csv"
    bad.write_text("cust,amount\n1,2\n")
    msg = _error_of(tmp_path, bad)
    assert "party 'alice'" in msg and str(bad) in msg and "['cust', 'amount']" in msg


def test_duplicate_ids_show_examples(tmp_path: Path) -> None:
    bad = _write(tmp_path / "a.csv", ["u1", "u2", "u1", "u3", "u2"])
    msg = _error_of(tmp_path, bad)
    assert "2 duplicate" in msg and "'u1'" in msg and "'u2'" in msg and "dedupe" in msg


def test_empty_inputs(tmp_path: Path) -> None:
    header_only = tmp_path / "h.csv"
    header_only.write_text("id,x\n")
    assert "no rows" in _error_of(tmp_path, header_only)
    empty = tmp_path / "e.csv"
    empty.write_text("")
    assert "cannot be read as CSV" in _error_of(tmp_path, empty)
    blank_ids = tmp_path / "b.csv"
    blank_ids.write_text('id,x\n1,2\n"",3\n')
    assert "empty or missing id" in _error_of(tmp_path, blank_ids)


def test_unreadable_and_malformed(tmp_path: Path) -> None:
    assert "file not found" in _error_of(tmp_path, tmp_path / "nope.csv")
    assert "is a directory" in _error_of(tmp_path, tmp_path)
    ragged = tmp_path / "r.csv"
    ragged.write_text("id,x\n1,2\n3,4,5,6\n")
    assert "malformed CSV" in _error_of(tmp_path, ragged) or "cannot be read" in _error_of(
        tmp_path, ragged
    )
    fake = tmp_path / "f.parquet"
    fake.write_bytes(b"not a parquet file at all")
    assert "cannot be read as Parquet" in _error_of(tmp_path, fake)


def test_output_is_atomic(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_text("old content\n")

    class Boom(Exception):
        pass

    class BadTable:
        """Writing it fails halfway (after the temp file exists)."""

        num_rows = 1

        def __getattr__(self, name: str) -> object:
            raise Boom(name)

    with pytest.raises(Exception):  # noqa: B017 - pyarrow wraps the failure in its own type
        write_atomic(BadTable(), out)  # type: ignore[arg-type]
    assert out.read_text() == "old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_peer_failure_leaves_no_output(tmp_path: Path) -> None:
    """A party whose peer dies mid-protocol writes nothing and leaves no temp file."""
    files = {
        "a": _write(tmp_path / "a.csv", [str(i) for i in range(50)]),
        "b": _write(tmp_path / "b.csv", [str(i) for i in range(25, 90)]),
    }
    parties = ["a", "b"]

    class Dying(RecordingLink):
        def send_array(self, to: str, key: str, arr: np.ndarray) -> None:
            if key.endswith("/answers"):
                raise RuntimeError("disk on fire")
            super().send_array(to, key, arr)

    def fn(link: Link, p: str) -> PsiResult:
        if p == "b":
            link = Dying(link, [], threading.Lock())
        opts = PsiOptions(chunk_rows=8)
        return align_file(link, "job", p, parties, files[p], "id", tmp_path / "out" / p, opts)

    _, err = run_parties(parties, fn)
    assert isinstance(err["a"], PeerError) and "disk on fire" in str(err["a"])
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_run_ok_helper_reports(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.csv", ["1"])
    b = _write(tmp_path / "b.csv", ["1"])
    parties = ["a", "b"]
    files = {"a": a, "b": b}

    def fn(link: Link, p: str) -> PsiResult:
        return align_file(link, "j", p, parties, files[p], "id", tmp_path / f"{p}.out.csv")

    res = run_ok(parties, fn)
    assert res["a"].n_intersection == 1
