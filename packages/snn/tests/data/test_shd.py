"""SHD/SSC HDF5 loader on small files written here (same layout as the Zenke datasets)."""

import numpy as np
import pytest
import torch

from neuronkit.snn.data.shd import SpikeFrames, load_shd

h5py = pytest.importorskip("h5py", reason="load_shd needs the hdf5 extra (h5py)")


def _write(path, times, units, labels):
    with h5py.File(path, "w") as f:
        vf = h5py.vlen_dtype(np.dtype("float32"))
        vu = h5py.vlen_dtype(np.dtype("uint16"))
        g = f.create_group("spikes")
        t = g.create_dataset("times", (len(times),), dtype=vf)
        u = g.create_dataset("units", (len(units),), dtype=vu)
        for i, (a, b) in enumerate(zip(times, units)):
            t[i] = np.asarray(a, dtype=np.float32)
            u[i] = np.asarray(b, dtype=np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))


@pytest.fixture
def shd_file(tmp_path):
    path = tmp_path / "shd_small.h5"
    times = [[0.001, 0.0105, 0.0109, 0.25], [0.3], []]
    units = [[0, 699, 699, 12], [5], []]
    _write(path, times, units, [3, 19, 0])
    return path


def test_binning_counts_and_labels(shd_file) -> None:
    d = load_shd(shd_file, dt=0.01)
    assert isinstance(d, SpikeFrames)
    assert d.x.shape == (31, 3, 700)  # latest spike 0.3 s -> bin 30
    assert d.y.tolist() == [3, 19, 0]
    assert d.y.dtype == torch.long
    assert d.x[0, 0, 0] == 1
    assert d.x[1, 0, 699] == 2
    assert d.x[25, 0, 12] == 1
    assert d.x[30, 1, 5] == 1
    assert d.x.sum().item() == 5
    assert d.x[:, 2].sum() == 0
    assert load_shd(shd_file, dt=0.01, binary=True).x[1, 0, 699] == 1


def test_duration_channel_bins_and_indices(shd_file) -> None:
    d = load_shd(shd_file, dt=0.01, duration=0.1, channel_bins=5, indices=[0, 2])
    assert d.x.shape == (10, 2, 140)
    assert d.x[1, 0, 139] == 2
    assert d.x.sum() == 3
    assert load_shd(shd_file, indices=slice(1, 2)).y.tolist() == [19]


def test_bad_inputs(shd_file, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="path"):
        load_shd(tmp_path / "missing.h5")
    with pytest.raises(ValueError, match="channel_bins"):
        load_shd(shd_file, channel_bins=3)
    with pytest.raises(ValueError, match="dt"):
        load_shd(shd_file, dt=0.0)
    with pytest.raises(ValueError, match="units must lie"):
        load_shd(shd_file, n_units=100)
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("labels", data=np.zeros(2))
    with pytest.raises(ValueError, match="spikes"):
        load_shd(bad)
    # unreadable files and malformed contents name the path
    for name, content in (("empty.h5", b""), ("text.h5", b"not hdf5")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=f"path .*{name}.* is not a readable HDF5 file"):
            load_shd(tmp_path / name)
    with h5py.File(bad, "w") as f:
        f.create_group("spikes")
        f.create_dataset("labels", data=np.zeros(2, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"bad\.h5.* has no 'spikes/times'"):
        load_shd(bad)
    # masks and fractional indices are not sample positions
    with pytest.raises(TypeError, match="indices must be integer"):
        load_shd(shd_file, indices=np.array([False, True, False]))
    with pytest.raises(TypeError, match="indices must be integer"):
        load_shd(shd_file, indices=[1.7])
    floats = tmp_path / "float_labels.h5"
    _write(floats, [[0.1]], [[0]], [1])
    with h5py.File(floats, "a") as f:
        del f["labels"]
        f.create_dataset("labels", data=np.array([1.7]))
    with pytest.raises(ValueError, match=r"labels must be \[N\] integers"):
        load_shd(floats)


def test_spikes_at_or_after_duration_are_dropped_in_a_partial_last_frame(tmp_path) -> None:
    path = tmp_path / "cut.h5"
    _write(path, [[0.021, 0.028]], [[1, 2]], [0])
    d = load_shd(path, dt=0.01, duration=0.025)  # 3 frames, the last one cut at 0.025
    assert d.x.shape[0] == 3
    assert float(d.x[2, 0, 1]) == 1.0  # 0.021 < duration
    assert float(d.x[2, 0, 2]) == 0.0  # 0.028 >= duration
