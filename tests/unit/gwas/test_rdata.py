"""The XDR R-data reader on hand-built files (the real snpStats file is in a slow test)."""

from __future__ import annotations

import lzma
import struct
from pathlib import Path

import numpy as np
import pytest

from veil.errors import DataError
from veil.gwas.rdata import read_rdata


def i32(x: int) -> bytes:
    return struct.pack(">i", x)


def charsxp(text: str | None) -> bytes:
    if text is None:
        return i32(0x00000009) + i32(-1)
    raw = text.encode()
    return i32(0x00040009) + i32(len(raw)) + raw


def symbol(name: str) -> bytes:
    return i32(1) + charsxp(name)


def build() -> bytes:
    out = b"RDX2\nX\n" + i32(2) + i32(0x040201) + i32(0x020300)
    # m: a 2x3 raw matrix with a dim attribute
    out += i32(2 | 1 << 10) + symbol("m")
    out += i32(24 | 1 << 9) + i32(6) + bytes([0, 1, 2, 3, 1, 2])
    out += i32(2 | 1 << 10) + symbol("dim") + i32(13) + i32(2) + i32(2) + i32(3) + i32(254)
    # x: a character vector with an NA, then y: reals tagged by a reference to symbol "dim"
    out += i32(2 | 1 << 10) + symbol("x")
    out += i32(16) + i32(2) + charsxp("hello") + charsxp(None)
    out += i32(2 | 1 << 10) + i32(255 | 2 << 8)
    out += i32(14) + i32(2) + struct.pack(">dd", 1.5, -2.0)
    out += i32(254)
    return out


def test_reads_raw_matrix_strings_refs(tmp_path: Path) -> None:
    path = tmp_path / "t.RData"
    path.write_bytes(lzma.compress(build(), format=lzma.FORMAT_XZ))
    data = read_rdata(path)
    assert list(data) == ["m", "x", "dim"]
    np.testing.assert_array_equal(data["m"].value, [0, 1, 2, 3, 1, 2])
    np.testing.assert_array_equal(data["m"].attr("dim"), [2, 3])
    assert data["x"].value == ["hello", None]
    np.testing.assert_array_equal(data["dim"].value, [1.5, -2.0])


def test_refuses_code_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "code.RData"
    body = b"RDX2\nX\n" + i32(2) + i32(0) + i32(0)
    body += i32(2 | 1 << 10) + symbol("f") + i32(3)  # a closure
    path.write_bytes(body)
    with pytest.raises(DataError, match="unsupported R object type 3"):
        read_rdata(path)
    path.write_bytes(b"not R at all")
    with pytest.raises(DataError, match="not an R data file"):
        read_rdata(path)
    path.write_bytes(build()[:60])
    with pytest.raises(DataError, match="truncated"):
        read_rdata(path)


@pytest.mark.slow
def test_real_snpstats_for_exercise() -> None:
    """Downloads Debian's r-bioc-snpstats (GPL data, cached, never committed)."""
    from veil.errors import ConfigError
    from veil.gwas.demo_data import load_for_exercise

    try:
        study = load_for_exercise()
    except ConfigError as exc:
        pytest.skip(f"demo data unavailable: {exc}")
    assert study.genotypes.shape == (28501, 1000)
    assert (study.samples.pheno == 2).sum() == 500 and (study.samples.pheno == 1).sum() == 500
    assert set(np.unique(study.covariates)) == {0.0, 1.0}
    assert set(study.variants.chrom) == {"10"}
    assert 0.005 < (study.genotypes < 0).mean() < 0.02


def test_demo_fetch_uses_cache_and_explains_missing_apt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from veil.errors import ConfigError
    from veil.gwas import demo_data

    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError("must not run apt-get when the file is cached")

    monkeypatch.setattr(demo_data.subprocess, "run", no_subprocess)
    cached = tmp_path / "snpstats" / "extract" / "usr" / "data" / demo_data.RDATA_NAME
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert demo_data.fetch_snpstats(tmp_path) == cached
    monkeypatch.setattr(demo_data.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="'apt-get' is not available.*apt-get download"):
        demo_data.fetch_snpstats(tmp_path / "empty")
