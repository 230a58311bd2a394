"""DriverReader: blocks equal to the plain h5py/numpy reads, carried days, summaries, fallback.

Expected values come from whole-array reads with h5py (or xarray for packed data)
and plain numpy (np.stack, min, max, comparisons), never from the reader.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from fluxbridge.inference.drivers import MAX_CARRY_DAYS, Carry, DriverReader, aligned_block

NAMES = ("a", "b", "c")
DAYS, CELLS = 61, 13
CHUNKS = (10, 4)  # days, cells


def _write(
    path: Path,
    values: dict[str, np.ndarray],
    chunks: tuple[int, int] | None,
    dims: tuple[str, str] = ("time", "cell"),
) -> None:
    """A drivers file as the canonical ones are stored (float32, NaN fill, gzip chunks)."""
    ds = xr.Dataset({n: (dims, v if dims[0] == "time" else v.T) for n, v in values.items()})
    encoding: dict[str, dict[str, object]] = {n: {"_FillValue": np.float32(np.nan)} for n in values}
    if chunks is not None:
        for enc in encoding.values():
            enc.update(zlib=True, complevel=1, chunksizes=chunks)
    ds.to_netcdf(path, engine="h5netcdf", encoding=encoding)


@pytest.fixture
def values() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        n: rng.normal(10.0 * k, 5.0, (DAYS, CELLS)).astype(np.float32) for k, n in enumerate(NAMES)
    }


def _expected(values: dict[str, np.ndarray], days: slice, cells: slice) -> np.ndarray:
    return np.stack([values[n][days, cells] for n in NAMES], axis=-1)


@pytest.mark.parametrize("chunks", [CHUNKS, None])
def test_blocks_read_in_turn_equal_the_stacked_arrays(
    tmp_path: Path, values: dict[str, np.ndarray], chunks: tuple[int, int] | None
) -> None:
    path = tmp_path / "drivers.nc"
    _write(path, values, chunks)
    # "years" ending mid-chunk (23: 7 days of the chunk 20..29 left over), on a chunk
    # boundary (50) and at the end of the file (61), as a forward run reads them
    years = [slice(0, 23), slice(23, 50), slice(50, 61)]
    carry = Carry()
    with DriverReader(path, NAMES, carry) as reader:
        for days in years:
            for start in range(0, CELLS, 8):
                cells = slice(start, min(start + 8, CELLS))
                out = np.full((days.stop - days.start, cells.stop - cells.start, 3), -1.0, "f4")
                reader.read(days, cells, out)
                np.testing.assert_array_equal(out, _expected(values, days, cells))
            if days.stop == 23:
                # 7 days × 13 cells × 3 drivers kept for the next year, only with chunks
                assert carry.nbytes == (7 * CELLS * 3 * 4 if chunks else 0)
    assert carry.nbytes == 0


def test_a_carry_is_used_only_for_the_days_and_cells_it_was_read_for(
    tmp_path: Path, values: dict[str, np.ndarray]
) -> None:
    path = tmp_path / "drivers.nc"
    _write(path, values, CHUNKS)
    carry = Carry()
    with DriverReader(path, NAMES, carry) as reader:
        reader.read(slice(0, 23), slice(0, 8), np.empty((23, 8, 3), "f4"))
        assert carry.nbytes == 7 * 8 * 3 * 4
        out = np.empty((27, 5, 3), "f4")  # other cells: read from the file
        reader.read(slice(23, 50), slice(8, 13), out)
        np.testing.assert_array_equal(out, _expected(values, slice(23, 50), slice(8, 13)))
        out = np.empty((10, 8, 3), "f4")  # a later year: the stale carry is dropped
        reader.read(slice(30, 40), slice(0, 8), out)
        np.testing.assert_array_equal(out, _expected(values, slice(30, 40), slice(0, 8)))
        assert carry.nbytes == 0


def test_a_short_last_year_comes_whole_from_the_carry(
    tmp_path: Path, values: dict[str, np.ndarray]
) -> None:
    path = tmp_path / "drivers.nc"
    _write(path, values, (30, 4))  # days 0..29, 30..59, 60: the file ends mid-chunk
    carry = Carry()
    with DriverReader(path, NAMES, carry) as reader:
        reader.read(slice(0, 55), slice(0, CELLS), np.empty((55, CELLS, 3), "f4"))
        assert carry.nbytes == 5 * CELLS * 3 * 4  # days 55..59
        out = np.empty((5, CELLS, 3), "f4")
        minimum, _, _ = reader.read(slice(55, 60), slice(0, CELLS), out)
    np.testing.assert_array_equal(out, _expected(values, slice(55, 60), slice(0, CELLS)))
    np.testing.assert_array_equal(
        minimum, _expected(values, slice(55, 60), slice(0, CELLS)).min(axis=(0, 1))
    )


def test_no_carry_past_the_limit(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    long = {n: rng.normal(size=(120, 3)).astype(np.float32) for n in NAMES}
    path = tmp_path / "drivers.nc"
    _write(path, long, (100, 3))
    carry = Carry()
    with DriverReader(path, NAMES, carry) as reader:
        out = np.empty((100 - MAX_CARRY_DAYS - 1, 3, 3), "f4")
        reader.read(slice(0, 100 - MAX_CARRY_DAYS - 1), slice(0, 3), out)
        assert carry.nbytes == 0  # 32 days left in the chunk: more than MAX_CARRY_DAYS
        out = np.empty((100 - MAX_CARRY_DAYS, 3, 3), "f4")
        reader.read(slice(0, 100 - MAX_CARRY_DAYS), slice(0, 3), out)
        assert carry.nbytes == MAX_CARRY_DAYS * 3 * 3 * 4


def test_summaries_equal_plain_numpy(tmp_path: Path, values: dict[str, np.ndarray]) -> None:
    path = tmp_path / "drivers.nc"
    _write(path, values, CHUNKS)
    low = np.array([-40.0, 12.0, np.float64(values["c"][25, 3])])  # c: a value at the bound
    high = np.array([40.0, 15.0, 1e9])
    carry = Carry()
    with DriverReader(path, NAMES, carry) as reader:
        reader.read(slice(0, 23), slice(0, CELLS), np.empty((23, CELLS, 3), "f4"))
        out = np.empty((27, CELLS, 3), "f4")
        minimum, maximum, outside = reader.read(slice(23, 50), slice(0, CELLS), out, (low, high))
    block = _expected(values, slice(23, 50), slice(0, CELLS)).astype(np.float64)
    np.testing.assert_array_equal(minimum, block.min(axis=(0, 1)))
    np.testing.assert_array_equal(maximum, block.max(axis=(0, 1)))
    want = ((block < low) | (block > high)).sum(axis=(0, 1))
    np.testing.assert_array_equal(outside, want)
    assert want[0] == 0 and want[1] > 0 and want[2] > 0


def test_nan_shows_in_the_minimum_and_maximum(
    tmp_path: Path, values: dict[str, np.ndarray]
) -> None:
    values["b"][24, 2] = np.nan  # in the carried days of the second year
    path = tmp_path / "drivers.nc"
    _write(path, values, CHUNKS)
    with DriverReader(path, NAMES) as reader:
        reader.read(slice(0, 23), slice(0, CELLS), np.empty((23, CELLS, 3), "f4"))
        minimum, maximum, _ = reader.read(
            slice(23, 50), slice(0, CELLS), np.empty((27, CELLS, 3), "f4")
        )
    assert np.isfinite(minimum).tolist() == [True, False, True]
    assert np.isfinite(maximum).tolist() == [True, False, True]


def test_packed_variable_is_read_decoded(tmp_path: Path, values: dict[str, np.ndarray]) -> None:
    """A CF-packed driver (int16 × scale_factor + add_offset) goes through xarray's decoding."""
    path = tmp_path / "drivers.nc"
    packed = {n: xr.Variable(("time", "cell"), v) for n, v in values.items()}
    ds = xr.Dataset(packed)
    encoding = {
        "a": {"dtype": "int16", "scale_factor": 0.01, "add_offset": 0.0, "_FillValue": -32768},
        "b": {"_FillValue": np.float32(np.nan)},
        "c": {"_FillValue": np.float32(np.nan)},
    }
    ds.to_netcdf(path, engine="h5netcdf", encoding=encoding)
    with xr.open_dataset(path, engine="h5netcdf") as back:
        want = np.stack([back[n].values[5:30, 2:9] for n in NAMES], axis=-1).astype(np.float32)
    assert not np.array_equal(want[..., 0], values["a"][5:30, 2:9])  # packing rounded it
    out = np.empty((25, 7, 3), "f4")
    with DriverReader(path, NAMES) as reader:
        reader.read(slice(5, 30), slice(2, 9), out)
    np.testing.assert_array_equal(out, want)


def test_cell_by_time_layout_is_read_by_dimension_name(
    tmp_path: Path, values: dict[str, np.ndarray]
) -> None:
    path = tmp_path / "drivers.nc"
    _write(path, values, (4, 10), dims=("cell", "time"))
    carry = Carry()
    with DriverReader(path, NAMES, carry) as reader:
        for days in (slice(0, 23), slice(23, 50)):
            out = np.empty((days.stop - days.start, 5, 3), "f4")
            reader.read(days, slice(3, 8), out)
            np.testing.assert_array_equal(out, _expected(values, days, slice(3, 8)))
    assert carry.nbytes == 0  # chunks along (cell, time): nothing is carried
    assert aligned_block(path, NAMES, 10) == 10


def test_wrong_output_shape_is_refused(tmp_path: Path, values: dict[str, np.ndarray]) -> None:
    path = tmp_path / "drivers.nc"
    _write(path, values, CHUNKS)
    with DriverReader(path, NAMES) as reader, pytest.raises(ValueError, match=r"\(5, 4, 3\)"):
        reader.read(slice(0, 5), slice(0, 4), np.empty((5, 4, 2), "f4"))


def test_block_aligned_to_the_cell_chunks(tmp_path: Path, values: dict[str, np.ndarray]) -> None:
    chunked, plain = tmp_path / "chunked.nc", tmp_path / "plain.nc"
    _write(chunked, values, CHUNKS)
    _write(plain, values, None)
    assert aligned_block(chunked, NAMES, 4096) == 4096  # 1024 chunks of 4 cells
    assert aligned_block(chunked, NAMES, 10) == 12  # 2.5 chunks → 3 chunks
    assert aligned_block(chunked, NAMES, 8) == 8
    assert aligned_block(chunked, NAMES, 1) == 4  # at least one chunk
    assert aligned_block(plain, NAMES, 10) == 10


def test_a_pickled_carry_is_empty() -> None:
    carry = Carry()
    carry.put(0, slice(0, 4), 23, np.ones((7, 4), "f4"))
    assert carry.nbytes == 7 * 4 * 4
    assert pickle.loads(pickle.dumps(carry)).nbytes == 0
    assert carry.nbytes == 7 * 4 * 4
