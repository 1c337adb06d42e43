"""core.data: every dataset through its real loader, offline and small.

torchvision's own MNIST / FashionMNIST / CIFAR10 classes read tiny files the tests write in
their exact on-disk formats (tests/idx_helpers.py); the image folder is generated with every
kind of file a student's folder may hold."""
from __future__ import annotations

import http.server
import io
import math
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import core.data as data_module
from core.config import DataConfig, ModelConfig
from core.data import (DATASETS, OFFLINE_DATASETS, SHAPE_NAMES, DataError, balanced_sample_weights,
                       fill_model_shape, load_dataset)
from idx_helpers import CIFAR10_CLASSES, trust_cifar_files, write_cifar10, write_image_folder, write_mnist


def _split_sets(ds) -> dict[str, set[int]]:
    return {name: set(idx.tolist()) for name, idx in ds.splits.items()}


def _rows(images: torch.Tensor | np.ndarray) -> list[bytes]:
    """Each image as bytes, sorted: compares two image collections regardless of their order."""
    array = images.numpy() if isinstance(images, torch.Tensor) else images
    return sorted(bytes(a.tobytes()) for a in array)


def _one_sentence(message: str) -> None:
    assert "\n" not in message and "Traceback" not in message
    assert message.rstrip().endswith(".") and message.count(". ") == 0, message


# ---------------------------------------------------------------- digits, splits, limit

def test_digits_loads_every_image_with_classes_and_seeded_splits():
    ds = load_dataset(DataConfig(dataset="digits", seed=0))
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (1797, 1, 8, 8)
    assert ds.labels.dtype == torch.int64 and ds.labels.shape == (1797,)
    assert ds.class_names == [str(d) for d in range(10)] and ds.num_classes == 10
    assert ds.shape == (1, 8, 8)
    assert int(ds.images.max()) == 255 and int(ds.images.min()) == 0  # 0..16 scaled to the full range
    sets = _split_sets(ds)
    assert sum(len(s) for s in sets.values()) == 1797
    assert set.union(*sets.values()) == set(range(1797))
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"])
    assert len(sets["val"]) == len(sets["test"]) == 180  # round(1797 * 0.1)
    counts = ds.class_counts()
    assert sum(counts.values()) == 1797 and set(counts) == set(ds.class_names)
    assert sum(ds.class_counts("test").values()) == 180
    images, labels = ds.split("val")
    assert torch.equal(images, ds.images[ds.splits["val"]]) and torch.equal(labels, ds.labels[ds.splits["val"]])
    with pytest.raises(DataError, match="no 'nope' split"):
        ds.split("nope")


def test_splits_are_deterministic_for_a_seed_and_change_with_it():
    a = load_dataset(DataConfig(dataset="digits", seed=3))
    b = load_dataset(DataConfig(dataset="digits", seed=3))
    c = load_dataset(DataConfig(dataset="digits", seed=4))
    for name in ("train", "val", "test"):
        assert torch.equal(a.splits[name], b.splits[name])
    assert not torch.equal(a.splits["test"], c.splits["test"])


def test_fractions_set_split_sizes():
    ds = load_dataset(DataConfig(dataset="digits", val_fraction=0.2, test_fraction=0.3))
    sizes = {k: len(v) for k, v in ds.splits.items()}
    assert sizes == {"test": round(1797 * 0.3), "val": round(1797 * 0.2), "train": 1797 - 539 - 359}


def test_limit_keeps_only_the_images_used_proportionally():
    full = load_dataset(DataConfig(dataset="digits", seed=1))
    ds = load_dataset(DataConfig(dataset="digits", seed=1, limit=200))
    assert len(ds.images) == len(ds.labels) == 200
    sizes = {k: len(v) for k, v in ds.splits.items()}
    assert sizes == {"train": 160, "val": 20, "test": 20}
    assert set.union(*_split_sets(ds).values()) == set(range(200))
    # the kept images are real digits of the full set, with their own labels
    full_rows = {bytes(img.numpy().tobytes()): int(lab) for img, lab in zip(full.images, full.labels)}
    for img, lab in zip(ds.images, ds.labels):
        assert full_rows[bytes(img.numpy().tobytes())] == int(lab)
    assert sum(ds.class_counts().values()) == 200


@pytest.mark.parametrize("settings, words", [
    ({"val_fraction": 0.6, "test_fraction": 0.5}, "add up to 1 or more"),
    ({"val_fraction": 1.5}, "between 0 and 1"),
    ({"limit": -1}, "cannot be negative"),
    ({"limit": 2}, "too few"),
    ({"dataset": "imagenet"}, "Unknown dataset 'imagenet'"),
])
def test_bad_data_settings_are_refused_in_one_sentence(settings, words):
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(**{"dataset": "digits", **settings}))
    assert words in str(info.value)
    _one_sentence(str(info.value))


def test_balanced_sample_weights_are_inverse_class_frequency():
    labels = torch.tensor([0, 0, 0, 1, 2, 2])
    weights = balanced_sample_weights(labels)
    assert torch.allclose(weights, torch.tensor([1 / 3, 1 / 3, 1 / 3, 1.0, 0.5, 0.5]))
    per_class = torch.zeros(3).index_add_(0, labels, weights)
    assert torch.allclose(per_class, torch.ones(3))  # every class gets the same total weight
    assert balanced_sample_weights(torch.tensor([], dtype=torch.long)).numel() == 0


def test_fill_model_shape_copies_the_data_shape():
    ds = load_dataset(DataConfig(dataset="shapes", image_size=16, shapes_count=40))
    cfg = fill_model_shape(ModelConfig(in_channels=1, image_size=28, num_classes=10), ds)
    assert (cfg.in_channels, cfg.image_size, cfg.num_classes) == (3, 16, len(SHAPE_NAMES))


def test_every_listed_dataset_has_a_description_and_offline_ones_load():
    assert set(DATASETS) == {"digits", "shapes", "styles", "mnist", "fashion-mnist", "cifar10", "folder"}
    assert set(OFFLINE_DATASETS) <= set(DATASETS) and "styles" in OFFLINE_DATASETS


def test_styles_draw_the_same_contents_in_every_style_seeded():
    """The colour style-transfer dataset: the class is the style, and every style draws the same
    kinds of content (all five shapes, anywhere), so the content is not a clue to the class."""
    from core.data import STYLE_NAMES

    cfg = DataConfig(dataset="styles", image_size=24, shapes_count=600, seed=2)
    a, b = load_dataset(cfg), load_dataset(cfg)
    assert a.images.shape[1:] == (3, 24, 24) and torch.equal(a.images, b.images)
    assert not torch.equal(a.images, load_dataset(DataConfig(dataset="styles", image_size=24, shapes_count=600,
                                                            seed=3)).images)
    assert a.class_names == list(STYLE_NAMES) and len(STYLE_NAMES) == 6
    assert set(a.class_counts().values()) == {100}  # every style equally often
    assert set(a.factors) == {"shape", "x", "y", "size", "rotation"}
    labels = a.labels.numpy()
    for style in range(6):  # every style draws every shape
        assert set(a.factors["shape"][labels == style]) == set(range(len(SHAPE_NAMES)))
    # The styles look different: their mean colours lie apart (a colour lesson, not six greys).
    means = torch.stack([a.images[a.labels == c].float().mean(dim=(0, 2, 3)) for c in range(6)])
    distances = torch.cdist(means, means) + torch.eye(6) * 1e9
    assert distances.min() > 20
    with pytest.raises(DataError, match="too few"):
        load_dataset(DataConfig(dataset="styles", shapes_count=5))


# ---------------------------------------------------------------- a folder's own split

def test_a_folder_with_train_and_val_folders_is_one_dataset_with_that_split(tmp_path):
    """Issue 21: the common train/ + val/ layout (e.g. ants and bees) showed as two datasets and its
    own split was ignored. It is one dataset now; val/ is the validation split, the test split is cut
    from train/, and the source says so."""
    write_image_folder(tmp_path / "bees" / "train", classes=("ants", "bees"), per_class=20, size=12)
    write_image_folder(tmp_path / "bees" / "val", classes=("ants", "bees"), per_class=5, size=12, seed=1)
    ds = load_dataset(DataConfig(dataset="folder", folder=str(tmp_path / "bees"), image_size=8, test_fraction=0.1))
    assert ds.class_names == ["ants", "bees"] and len(ds.labels) == 50
    sizes = {name: len(index) for name, index in ds.splits.items()}
    assert sizes == {"train": 36, "val": 10, "test": 4}
    assert "its own split: train/, val/" in ds.source and "test split cut from train/" in ds.source
    # The validation images are exactly the val/ folder's (its images differ from train/'s seed).
    from core.imagecache import read_image

    val_files = sorted((tmp_path / "bees" / "val").rglob("*.png"))
    val_images = {read_image(p, 8, 3).tobytes() for p in val_files}
    shown = {ds.images[i].permute(1, 2, 0).numpy().tobytes() for i in ds.splits["val"].tolist()}
    assert shown == val_images
    # train/, val/ and test/: each is kept; an image limit keeps a share of each.
    write_image_folder(tmp_path / "bees" / "test", classes=("ants", "bees"), per_class=4, size=12, seed=2)
    ds = load_dataset(DataConfig(dataset="folder", folder=str(tmp_path / "bees"), image_size=8))
    assert {name: len(index) for name, index in ds.splits.items()} == {"train": 40, "val": 10, "test": 8}
    limited = load_dataset(DataConfig(dataset="folder", folder=str(tmp_path / "bees"), image_size=8, limit=29))
    assert {name: len(index) for name, index in limited.splits.items()} == {"train": 20, "val": 5, "test": 4}


# ---------------------------------------------------------------- shapes

def test_shapes_are_deterministic_and_keep_their_factors():
    cfg = DataConfig(dataset="shapes", image_size=24, shapes_count=60, seed=5)
    a, b = load_dataset(cfg), load_dataset(cfg)
    other = load_dataset(DataConfig(dataset="shapes", image_size=24, shapes_count=60, seed=6))
    assert a.images.shape == (60, 3, 24, 24) and a.images.dtype == torch.uint8
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, other.images)
    assert a.class_names == list(SHAPE_NAMES)
    assert set(a.factors) == {"shape", "x", "y", "size", "rotation", "hue"}
    for name, values in a.factors.items():
        assert len(values) == 60, name
        np.testing.assert_array_equal(values, b.factors[name])
    np.testing.assert_array_equal(a.factors["shape"], a.labels.numpy())
    assert ((a.factors["x"] > 0) & (a.factors["x"] < 1)).all() and ((a.factors["hue"] >= 0) & (a.factors["hue"] < 1)).all()


def test_shape_factors_describe_the_drawn_picture():
    ds = load_dataset(DataConfig(dataset="shapes", image_size=48, shapes_count=40, seed=2))
    for i in range(len(ds.labels)):
        image = ds.images[i].float()
        mask = (image.max(dim=0).values > 128).numpy()  # the shape is bright, the background dark (16)
        ys, xs = np.nonzero(mask)
        # every shape is point-symmetric or regular: its centroid is its centre
        assert abs((xs.mean() + 0.5) / 48 - ds.factors["x"][i]) < 0.04
        assert abs((ys.mean() + 0.5) / 48 - ds.factors["y"][i]) < 0.04
        if SHAPE_NAMES[int(ds.labels[i])] == "circle":
            radius = ds.factors["size"][i] / 2
            assert abs(mask.mean() - math.pi * radius ** 2) < 0.03
        brightest = image[:, ys[0], xs[0]] / 255
        import colorsys
        hue = colorsys.rgb_to_hsv(*brightest.tolist())[0]
        assert min(abs(hue - ds.factors["hue"][i]), 1 - abs(hue - ds.factors["hue"][i])) < 0.03


def test_shapes_limit_keeps_factors_aligned_with_images():
    ds = load_dataset(DataConfig(dataset="shapes", image_size=16, shapes_count=100, limit=30, seed=1))
    assert len(ds.images) == 30
    assert all(len(v) == 30 for v in ds.factors.values())
    np.testing.assert_array_equal(ds.factors["shape"], ds.labels.numpy())


def test_shapes_progress_reaches_the_total():
    calls = []
    load_dataset(DataConfig(dataset="shapes", image_size=8, shapes_count=250), progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (250, 250)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and all(t == 250 for _, t in calls)
    assert len(calls) <= 101  # a progress bar needs no message per image


# ---------------------------------------------------------------- torchvision: MNIST, Fashion-MNIST, CIFAR-10

@pytest.mark.parametrize("dataset, folder, first_class", [
    ("mnist", "MNIST", "0 - zero"), ("fashion-mnist", "FashionMNIST", "T-shirt/top")])
def test_mnist_layouts_load_through_torchvision_with_the_official_test_split(tmp_path, dataset, folder, first_class):
    written = write_mnist(tmp_path, n_train=50, n_test=20, folder=folder)
    ds = load_dataset(DataConfig(dataset=dataset, data_root=str(tmp_path), val_fraction=0.1, seed=0))
    assert ds.images.shape == (70, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert ds.class_names[0] == first_class and ds.num_classes == 10
    sizes = {k: len(v) for k, v in ds.splits.items()}
    assert sizes == {"train": 45, "val": 5, "test": 20}
    test_images, test_labels = ds.split("test")
    assert _rows(test_images) == _rows(written.test_images)  # "test" is exactly the official test file
    assert sorted(test_labels.tolist()) == sorted(written.test_labels.tolist())
    train_val = torch.cat([ds.split("train")[0], ds.split("val")[0]])
    assert _rows(train_val) == _rows(written.train_images)
    assert str(tmp_path / folder / "raw") in ds.source


def test_mnist_limit_takes_both_official_parts_proportionally(tmp_path):
    write_mnist(tmp_path, n_train=50, n_test=20)
    ds = load_dataset(DataConfig(dataset="mnist", data_root=str(tmp_path), limit=35, val_fraction=0.2))
    assert len(ds.images) == 35
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 20, "val": 5, "test": 10}


def test_cifar10_loads_through_torchvision(tmp_path, monkeypatch):
    written = write_cifar10(tmp_path, n_train=50, n_test=20)
    trust_cifar_files(monkeypatch)  # generated files cannot match the md5 sums of the real download
    ds = load_dataset(DataConfig(dataset="cifar10", data_root=str(tmp_path), val_fraction=0.2))
    assert ds.images.shape == (70, 3, 32, 32) and ds.images.dtype == torch.uint8
    assert ds.class_names == CIFAR10_CLASSES  # read from batches.meta
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 40, "val": 10, "test": 20}
    assert _rows(ds.split("test")[0]) == _rows(written.test_images)  # channels in the right order
    assert _rows(torch.cat([ds.split("train")[0], ds.split("val")[0]])) == _rows(written.train_images)


def test_cifar10_files_that_fail_torchvisions_checksums_are_refused(tmp_path):
    # CIFAR-10's batches are pickles: torchvision's md5 check is what keeps a foreign file (which
    # could carry code) from being unpickled, so core.data keeps that check and says what it found.
    write_cifar10(tmp_path, n_train=10, n_test=5)
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(dataset="cifar10", data_root=str(tmp_path)))
    message = str(info.value)
    assert "CIFAR-10 was not found (or is damaged)" in message and str(tmp_path / "cifar-10-batches-py") in message
    _one_sentence(message)


def test_a_damaged_mnist_file_is_a_data_error_not_a_crash(tmp_path):
    write_mnist(tmp_path, n_train=20, n_test=10)
    images = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])  # truncated: the header promises 20 images
    with pytest.raises(DataError, match="not found \\(or is damaged\\)"):
        load_dataset(DataConfig(dataset="mnist", data_root=str(tmp_path)))
    images.write_bytes(b"\x00\x00\x00\x00garbage")  # not an IDX file at all
    with pytest.raises(DataError, match="not found \\(or is damaged\\)"):
        load_dataset(DataConfig(dataset="mnist", data_root=str(tmp_path)))


@pytest.mark.parametrize("dataset, title, folder", [
    ("mnist", "MNIST", "MNIST/raw"), ("fashion-mnist", "Fashion-MNIST", "FashionMNIST/raw"),
    ("cifar10", "CIFAR-10", "cifar-10-batches-py")])
def test_missing_torchvision_data_without_download_says_where_and_how(tmp_path, dataset, title, folder):
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(dataset=dataset, data_root=str(tmp_path / "nowhere"), download=False))
    message = str(info.value)
    assert message.startswith(f"{title} was not found")
    assert str(tmp_path / "nowhere" / folder) in message
    assert "turn on download" in message and "digits" in message and "shapes" in message
    _one_sentence(message)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.mark.parametrize("dataset, tv_name", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_download_without_network_fails_fast_naming_the_offline_datasets(tmp_path, monkeypatch, dataset, tv_name):
    from torchvision import datasets

    # The download host refuses connections, as an unplugged machine's does.
    monkeypatch.setattr(getattr(datasets, tv_name), "mirrors", [f"http://127.0.0.1:{_closed_port()}/"])
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(dataset=dataset, data_root=str(tmp_path), download=True))
    message = str(info.value)
    assert "no network connection" in message and "digits" in message and "shapes" in message
    _one_sentence(message)
    assert not list((tmp_path).rglob("*.gz"))  # nothing half-downloaded


def test_download_gives_up_within_seconds_when_the_name_lookup_hangs(tmp_path, monkeypatch):
    # Offline, a DNS lookup can hang far past any socket timeout; the check runs it in a thread
    # with a deadline. The hanging lookup is simulated; the deadline is the code under test.
    release = threading.Event()

    def hanging_connection(address, timeout=None, *args, **kwargs):
        release.wait(60)
        raise OSError("name lookup timed out")

    monkeypatch.setattr(socket, "create_connection", hanging_connection)
    started = time.monotonic()
    try:
        with pytest.raises(DataError, match="no network connection"):
            load_dataset(DataConfig(dataset="cifar10", data_root=str(tmp_path), download=True))
        # a deadline enforced by a thread join, not a speed measurement: safe on a busy machine
        assert time.monotonic() - started < 15
    finally:
        release.set()


def test_download_that_fails_on_a_reachable_host_is_one_sentence(tmp_path, monkeypatch):
    from torchvision import datasets

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(datasets.MNIST, "mirrors", [f"http://127.0.0.1:{server.server_address[1]}/"])
        with pytest.raises(DataError) as info:
            load_dataset(DataConfig(dataset="mnist", data_root=str(tmp_path), download=True))
    finally:
        server.shutdown()
        server.server_close()
    message = str(info.value)
    assert message.startswith("Could not download MNIST into") and "404" in message
    assert "\n" not in message and "digits" in message


def test_download_address_follows_the_url_scheme_and_port():
    from torchvision import datasets

    assert data_module._download_address(datasets.FashionMNIST)[1] == 80  # served over http only
    assert data_module._download_address(datasets.CIFAR10) == ("www.cs.toronto.edu", 443)

    class Custom:
        url = "http://example.org:8080/file.tar.gz"

    assert data_module._download_address(Custom) == ("example.org", 8080)


# ---------------------------------------------------------------- image folders

def _save(image: Image.Image, path: Path, fmt: str | None = None, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt, **kwargs)
    return path


@pytest.fixture
def messy_folder(tmp_path) -> tuple[Path, dict[str, str]]:
    """Two classes of real images in every mode and format, plus every kind of bad file.
    Returns the root and {file name: expected skip reason} for the files that must be skipped."""
    root = tmp_path / "photos"
    rng = np.random.default_rng(0)

    def noise_rgb(side=20):
        return Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8), "RGB")

    cats, dogs = root / "cats", root / "dogs"
    _save(noise_rgb(), cats / "rgb.png")
    _save(noise_rgb(30), cats / "photo.jpg", quality=90)
    _save(noise_rgb(), cats / "bitmap.bmp")
    _save(Image.new("L", (20, 20), 200), cats / "grey.png")
    _save(Image.new("RGBA", (20, 20), (255, 0, 0, 0)), cats / "transparent.png")  # fully transparent red
    palette = Image.new("RGB", (20, 20), (0, 0, 255)).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    _save(palette, cats / "palette.png")
    _save(noise_rgb(), cats / "nested" / "deeper.png")  # sub-folders of a class belong to it
    _save(noise_rgb(), cats / ".hidden.png")  # hidden: ignored, not even counted
    _save(Image.new("RGB", (40, 20), (0, 255, 0)), dogs / "wide.png")
    _save(noise_rgb(), dogs / "ok.jpeg")
    _save(Image.new("RGB", (20, 20), (255, 255, 0)), dogs / "animated.jpg", fmt="GIF")  # a real GIF, .jpg name
    (dogs / "notes.jpg").write_text("this is not a picture")
    (dogs / "empty.png").write_bytes(b"")
    (dogs / "corrupt.png").write_bytes(bytes(rng.integers(0, 256, 500, dtype=np.uint8)))
    full = io.BytesIO()
    noise_rgb(64).save(full, format="JPEG", quality=95)
    (dogs / "truncated.jpg").write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    (root / "README.txt").write_text("a file outside any class")
    (root / "empty_class").mkdir()
    skipped = {"notes.jpg": "not an image Pillow can read", "empty.png": "empty file",
               "corrupt.png": "not an image Pillow can read", "truncated.jpg": "the image data is truncated",
               "README.txt": "not inside a class sub-folder", "empty_class": "class folder without readable images"}
    return root, skipped


@pytest.mark.parametrize("channels", [1, 3])
def test_image_folder_reads_every_image_and_counts_the_rest(messy_folder, channels):
    root, expected_skips = messy_folder
    calls = []
    ds = load_dataset(DataConfig(dataset="folder", folder=str(root), image_size=16, channels=channels,
                                 val_fraction=0.2, test_fraction=0.2), progress=lambda d, t: calls.append((d, t)))
    assert ds.class_names == ["cats", "dogs"]  # the empty class folder is no class
    assert ds.images.shape == (10, channels, 16, 16) and ds.images.dtype == torch.uint8
    assert ds.class_counts() == {"cats": 7, "dogs": 3}  # the GIF behind a .jpg name is an image
    assert {Path(path).name: reason for path, reason in ds.skipped} == expected_skips
    assert ds.source == str(root)
    assert calls and calls[-1] == (14, 14)  # 7 cat and 7 dog files were tried (hidden ones are not)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_image_folder_modes_become_the_chosen_channels(messy_folder):
    root, _ = messy_folder
    grey = load_dataset(DataConfig(dataset="folder", folder=str(root), image_size=8, channels=1))
    colour = load_dataset(DataConfig(dataset="folder", folder=str(root), image_size=8, channels=3))

    def pixel_sets(ds) -> set[tuple[int, ...]]:
        return {tuple(int(v) for v in img[:, 4, 4]) for img in ds.images}

    # grey 200 -> (200, 200, 200); transparent red -> black; palette blue and GIF yellow keep their colour
    for colour_value in [(200, 200, 200), (0, 0, 0), (0, 0, 255), (255, 255, 0), (0, 255, 0)]:
        assert colour_value in pixel_sets(colour), colour_value
    assert (200,) in pixel_sets(grey) and (0,) in pixel_sets(grey)
    blue_as_grey = round(0.114 * 255)  # ITU-R 601-2 luma, what Pillow's "L" conversion uses
    assert any(abs(p[0] - blue_as_grey) <= 1 for p in pixel_sets(grey))


def test_image_folder_written_by_the_helper_splits_and_keeps_colour(tmp_path):
    root = write_image_folder(tmp_path / "figures", per_class=10, size=24)
    ds = load_dataset(DataConfig(dataset="folder", folder=str(root), image_size=24, channels=3, seed=1))
    assert ds.class_names == ["bars", "circles", "squares"] and ds.skipped == []
    assert sum(len(v) for v in ds.splits.values()) == 30
    # a 24-px PNG read at 24 px is unchanged
    original = np.asarray(Image.open(root / "circles" / "0.png")).transpose(2, 0, 1)
    assert any(np.array_equal(original, img.numpy()) for img in ds.images)


def test_image_folder_with_no_images_is_refused(tmp_path):
    for name in ("a", "b"):
        (tmp_path / "texts" / name).mkdir(parents=True)
        (tmp_path / "texts" / name / "note.jpg").write_text("no picture here")
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(dataset="folder", folder=str(tmp_path / "texts")))
    assert "No readable images were found" in str(info.value)
    _one_sentence(str(info.value))


def test_image_folder_with_one_class_is_refused(tmp_path):
    root = write_image_folder(tmp_path / "one", classes=("only",), per_class=3)
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(dataset="folder", folder=str(root)))
    assert "only one class (only)" in str(info.value) and "add at least one more class" in str(info.value)
    _one_sentence(str(info.value))


@pytest.mark.parametrize("settings, words", [
    ({"folder": "/no/such/folder"}, "The folder /no/such/folder does not exist"),
    ({"folder": "  "}, "No image folder was chosen"),
    ({"channels": 2}, "not 2; pick 1 or 3"),
    ({"image_size": 4}, "Image size 4 is not supported"),
])
def test_bad_folder_settings_are_refused_in_one_sentence(tmp_path, settings, words):
    root = write_image_folder(tmp_path / "ok", per_class=2)
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(**{"dataset": "folder", "folder": str(root), **settings}))
    assert words in str(info.value)
    _one_sentence(str(info.value))


# ---------------------------------------------------------------- issue 9: bounded, plain folder reads

def test_a_file_given_as_the_folder_is_not_a_folder(tmp_path):
    (tmp_path / "photo.png").write_bytes(b"x")
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(dataset="folder", folder=str(tmp_path / "photo.png")))
    assert "is a file, not a folder" in str(info.value) and "does not exist" not in str(info.value)
    _one_sentence(str(info.value))


def test_a_decompression_bomb_is_a_skipped_file_not_a_warning(tmp_path, monkeypatch, recwarn):
    root = write_image_folder(tmp_path / "imgs", classes=("a", "b"), per_class=3, size=12)
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(root / "a" / "bomb.png")
    # 1,600 pixels sit between Pillow's limit and twice it: Pillow would only warn, on stderr.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    ds = load_dataset(DataConfig(dataset="folder", folder=str(root), image_size=8))
    assert (str(root / "a" / "bomb.png"), "the image is too large to open safely") in ds.skipped
    assert len(ds.labels) == 6
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_an_image_over_the_pixel_limit_is_skipped_with_the_reason(tmp_path):
    from core.serving.limits import WorkLimits

    root = write_image_folder(tmp_path / "imgs", classes=("a", "b"), per_class=3, size=12)
    Image.fromarray(np.zeros((40, 30, 3), np.uint8)).save(root / "b" / "big.png")
    ds = load_dataset(DataConfig(dataset="folder", folder=str(root), image_size=8),
                      limits=WorkLimits(max_image_pixels=1000))
    reasons = dict(ds.skipped)
    assert "30×40 pixels, above the limit" in reasons[str(root / "b" / "big.png")]


def test_folder_walks_stop_at_the_file_time_and_depth_limits(tmp_path):
    from core.serving.limits import WorkLimits

    root = write_image_folder(tmp_path / "imgs", classes=("a", "b"), per_class=4, size=12)
    cfg = DataConfig(dataset="folder", folder=str(root), image_size=8)
    with pytest.raises(DataError, match="more than 5 files") as info:
        load_dataset(cfg, limits=WorkLimits(max_images=5))
    _one_sentence(str(info.value))
    with pytest.raises(DataError, match="took longer than"):
        load_dataset(cfg, limits=WorkLimits(max_walk_seconds=1e-9))
    deep = root / "a" / "x" / "y"
    deep.mkdir(parents=True)
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(deep / "deep.png")
    ds = load_dataset(cfg, limits=WorkLimits(max_walk_depth=1))
    assert (str(root / "a" / "x" / "y"), "more than 1 folders deep, not searched") in ds.skipped
    assert len(ds.labels) == 8
    assert len(load_dataset(cfg).labels) == 9  # the default depth reaches it


def test_an_mnist_label_file_that_disagrees_with_the_images_is_refused(tmp_path):
    write_mnist(tmp_path, n_train=20, n_test=10)
    labels = tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    labels.write_bytes(struct.pack(">II", 2049, 15) + bytes(15))  # 15 labels for 20 images
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(dataset="mnist", data_root=str(tmp_path)))
    assert "20 images but 15 labels" in str(info.value)
    _one_sentence(str(info.value))
