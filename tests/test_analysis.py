"""core.analysis on the tiny digits runs (8×8 grey, 10 classes) and on small synthetic codes."""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness
from sklearn.metrics import adjusted_rand_score

from core import analysis
from core.checkpoints import load_run
from core.train import evaluate

RUN_NAMES = ("tiny-conv", "tiny-vae", "tiny-cond")


@pytest.fixture(scope="module")
def runs(trained_runs):
    return {name: load_run(trained_runs, name) for name in RUN_NAMES}


@pytest.fixture(scope="module")
def test_images(digits):
    images, labels = digits.split("test")
    return images[:100], labels[:100]


def labels_for(run, labels):
    return labels if run.config.model.conditional else None


def clusters(seed=0, per_cluster=100, dims=16, spread=0.3):
    """Three well-separated Gaussian blobs in `dims` dimensions, and which blob each point is from."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=10.0, size=(3, dims))
    truth = np.repeat(np.arange(3), per_cluster)
    return (centres[truth] + rng.normal(scale=spread, size=(len(truth), dims))).astype(np.float32), truth


# ----------------------------------------------------------------------------- encode / reconstruct


@pytest.mark.parametrize("name", RUN_NAMES)
def test_shapes_and_dtypes_of_every_inference_function(runs, test_images, name):
    run = runs[name]
    model, latent = run.model, run.config.model.latent
    images, labels = test_images
    y = labels_for(run, labels)

    codes = analysis.encode(model, images, y, batch_size=32)
    assert codes.shape == (100, latent) and codes.dtype == np.float32 and np.isfinite(codes).all()
    noisy, recon = analysis.reconstruct(model, images, y, noise=0.3)
    assert noisy.shape == recon.shape == (100, 1, 8, 8) and recon.dtype == torch.float32
    assert 0 <= float(noisy.min()) and float(noisy.max()) <= 1
    errors = analysis.per_image_errors(model, images, y)
    assert errors.shape == (100,) and (errors >= 0).all()
    decoded = analysis.decode(model, codes[:5], None if y is None else y[:5])
    assert decoded.shape == (5, 1, 8, 8) and decoded.dtype == torch.float32
    grid = analysis.manifold_grid(model, codes[0], 0, 1, span=1.0, steps=3, label=0 if y is not None else None)
    assert grid.shape == (9, 1, 8, 8)
    fit = None if run.config.model.vae else codes
    assert analysis.sample(model, 6, fit).shape == (6, 1, 8, 8)
    path = analysis.interpolate(model, images[0], images[1], 4,
                                *(() if y is None else (int(y[0]), int(y[1]))))
    assert path.shape == (4, 1, 8, 8)


def test_conditional_model_without_labels_says_so_in_one_sentence(runs, test_images):
    with pytest.raises(ValueError, match="conditional") as caught:
        analysis.encode(runs["tiny-cond"].model, test_images[0])
    assert "\n" not in str(caught.value) and str(caught.value).endswith(".")


def test_reconstruct_without_noise_is_the_models_output(runs, test_images):
    model = runs["tiny-conv"].model
    images = test_images[0]
    noisy, recon = analysis.reconstruct(model, images, noise=0.0, batch_size=16)
    x = images.float() / 255
    with torch.no_grad():
        expected = model(x).recon
    assert torch.equal(noisy, x)
    assert torch.allclose(recon, expected, atol=1e-6)
    assert model.training is False


def test_reconstruct_noise_is_deterministic_per_seed(runs, test_images):
    model = runs["tiny-conv"].model
    images = test_images[0]
    first = analysis.reconstruct(model, images, noise=0.5, seed=3)
    again = analysis.reconstruct(model, images, noise=0.5, seed=3, batch_size=7)
    other = analysis.reconstruct(model, images, noise=0.5, seed=4)
    clean = analysis.reconstruct(model, images, noise=0.0)
    assert torch.equal(first[0], again[0]) and torch.allclose(first[1], again[1], atol=1e-6)
    assert not torch.equal(first[0], other[0]) and not torch.allclose(first[1], other[1])
    assert not torch.allclose(first[1], clean[1])


def test_per_image_errors_average_to_the_test_mse(runs, test_images):
    model = runs["tiny-conv"].model
    errors = analysis.per_image_errors(model, test_images[0], batch_size=30)
    assert errors.mean() == pytest.approx(evaluate(model, test_images[0], None, "cpu")["mse"], rel=1e-5)
    assert errors.std() > 0  # some digits are reconstructed better than others


def test_noise_sweep_rises_with_noise_and_matches_reconstruct(runs, digits):
    model = runs["tiny-conv"].model
    images, _ = digits.split("test")
    sweep = analysis.noise_sweep(model, images, seed=1, batch_size=64)
    assert len(sweep) == 11
    assert [row["noise"] for row in sweep] == pytest.approx(np.linspace(0, 1, 11).tolist())
    mse = [row["mse"] for row in sweep]
    assert mse[0] == pytest.approx(evaluate(model, images, None, "cpu")["mse"], rel=1e-5)
    assert mse[0] < mse[5] < mse[10]
    assert all(row["mae"] > 0 for row in sweep)
    # A sweep point is exactly what the noise slider shows at that factor and seed.
    _, recon = analysis.reconstruct(model, images, noise=0.5, seed=1)
    assert float(((recon - images.float() / 255) ** 2).mean()) == pytest.approx(mse[5], rel=1e-5)


def test_noise_sweep_needs_labels_for_a_conditional_model(runs, test_images):
    model = runs["tiny-cond"].model
    images, labels = test_images
    rows = analysis.noise_sweep(model, images, labels, levels=[0.0, 1.0])
    assert len(rows) == 2 and rows[0]["mse"] < rows[1]["mse"]
    with pytest.raises(ValueError, match="labels"):
        analysis.noise_sweep(model, images)


# ----------------------------------------------------------------------------- projections and clusters


def test_raw_projection_is_the_first_two_coordinates():
    codes, _ = clusters()
    assert np.array_equal(analysis.project(codes, "raw"), codes[:, :2])
    one_d = analysis.project(codes[:, :1], "pca")
    assert np.array_equal(one_d[:, 0], codes[:, 0]) and not one_d[:, 1].any()


def test_pca_projection_matches_scikit_learn():
    codes, _ = clusters(seed=1)
    ours = analysis.project(codes, "pca")
    theirs = PCA(n_components=2).fit_transform(codes)
    assert ours.shape == (300, 2) and ours.dtype == np.float32
    assert np.allclose(ours, theirs, atol=1e-3)


def test_tsne_keeps_well_separated_clusters_together():
    codes, truth = clusters(seed=2)
    embedding = analysis.project(codes, "tsne", seed=0, n_jobs=1)
    assert embedding.shape == (300, 2) and np.isfinite(embedding).all()
    assert trustworthiness(codes, embedding, n_neighbors=10) > 0.9
    # The three blobs stay apart: k-means on the 2-D picture finds them again.
    assert adjusted_rand_score(truth, analysis.kmeans_labels(embedding, 3)) == 1.0
    assert np.array_equal(embedding, analysis.project(codes, "tsne", seed=0, n_jobs=1))


def test_tsne_falls_back_to_scikit_learn_without_opentsne(monkeypatch):
    monkeypatch.setitem(sys.modules, "openTSNE", None)  # makes `import openTSNE` fail
    codes, _ = clusters(seed=3)
    embedding = analysis.project(codes, "tsne", seed=0, n_jobs=1)
    assert embedding.shape == (300, 2) and np.isfinite(embedding).all()
    assert trustworthiness(codes, embedding, n_neighbors=10) > 0.9


def test_unknown_projection_is_refused():
    with pytest.raises(ValueError, match="choose one of raw, pca, tsne"):
        analysis.project(np.zeros((5, 2)), "umap")


def test_kmeans_finds_well_separated_clusters():
    codes, truth = clusters(seed=5)
    found = analysis.kmeans_labels(codes, 3, seed=0)
    assert adjusted_rand_score(truth, found) == 1.0
    assert np.array_equal(found, analysis.kmeans_labels(codes, 3, seed=0))


# ----------------------------------------------------------------------------- decoding and generation


def test_manifold_grid_centre_is_the_base_code_and_axes_vary(runs, test_images):
    model = runs["tiny-conv"].model
    base = analysis.encode(model, test_images[0][:1])[0]
    grid = analysis.manifold_grid(model, base, 0, 1, span=2.0, steps=5)
    assert grid.shape == (25, 1, 8, 8)
    assert torch.allclose(grid[12], analysis.decode(model, base)[0], atol=1e-6)
    # Top-left is (-span along dim 0, +span along dim 1); the two opposite corners differ.
    expected = base.copy()
    expected[0] -= 2.0
    expected[1] += 2.0
    assert torch.allclose(grid[0], analysis.decode(model, expected)[0], atol=1e-6)
    assert not torch.allclose(grid[0], grid[24])


def test_interpolation_ends_decode_the_two_codes(runs, test_images):
    for name in ("tiny-conv", "tiny-cond"):
        model = runs[name].model
        images, labels = test_images
        y = labels[:2] if model.cfg.conditional else None
        codes = analysis.encode(model, images[:2], y)
        path = analysis.interpolate(model, images[0], images[1], 6,
                                    *(() if y is None else (int(y[0]), int(y[1]))))
        ends = analysis.decode(model, codes, y)
        assert path.shape == (6, 1, 8, 8)
        assert torch.allclose(path[0], ends[0], atol=1e-5) and torch.allclose(path[-1], ends[1], atol=1e-5)


def test_fitted_gaussian_samples_follow_the_codes(runs, digits):
    model = runs["tiny-conv"].model
    codes = analysis.encode(model, digits.split("train")[0])
    drawn = analysis.sample_codes(model, 4000, codes, seed=0)
    spread = codes.std(axis=0)
    assert np.all(np.abs(drawn.mean(axis=0) - codes.mean(axis=0)) < 0.1 * spread)
    assert np.allclose(np.cov(drawn, rowvar=False), np.cov(codes, rowvar=False), rtol=0.15, atol=0.05 * spread.max() ** 2)
    images = analysis.sample(model, 8, codes, seed=0)
    assert torch.equal(images, analysis.sample(model, 8, codes, seed=0))
    assert not torch.equal(images, analysis.sample(model, 8, codes, seed=1))
    with pytest.raises(ValueError, match="fit a Gaussian"):
        analysis.sample(model, 8)


def test_vae_samples_its_prior(runs):
    model = runs["tiny-vae"].model
    drawn = analysis.sample_codes(model, 4000, seed=0)
    assert np.abs(drawn.mean(axis=0)).max() < 0.1 and np.abs(drawn.std(axis=0) - 1).max() < 0.1
    images = analysis.sample(model, 5, seed=2)
    assert torch.allclose(images, analysis.decode(model, analysis.sample_codes(model, 5, seed=2)))


def test_conditional_samples_cycle_through_the_classes(runs, test_images):
    model = runs["tiny-cond"].model
    codes = analysis.encode(model, *test_images)
    images = analysis.sample(model, 12, codes, seed=0)
    expected = analysis.decode(model, analysis.sample_codes(model, 12, codes, seed=0), np.arange(12) % 10)
    assert torch.allclose(images, expected)


def test_decode_with_every_label_gives_one_distinct_image_per_class(runs, test_images):
    model = runs["tiny-cond"].model
    images, labels = test_images
    code = analysis.encode(model, images[:1], labels[:1])[0]
    styles = analysis.decode_with_every_label(model, code, 10)
    assert styles.shape == (10, 1, 8, 8)
    flat = styles.flatten(1)
    assert (torch.cdist(flat, flat) + torch.eye(10)).min() > 1e-4  # every pair differs
    assert torch.allclose(styles[int(labels[0])], analysis.decode(model, code, int(labels[0]))[0], atol=1e-6)
    with pytest.raises(ValueError, match="conditional"):
        analysis.decode_with_every_label(runs["tiny-conv"].model, code[:2], 10)


def test_image_grid_of_grey_digits_with_scale(digits):
    images = digits.images[:10]
    grid = analysis.image_grid(images, nrow=5, padding=2, scale=4)
    assert grid.shape == (2 * (32 + 2) + 2, 5 * (32 + 2) + 2, 3) and grid.dtype == np.uint8
    assert np.array_equal(grid[..., 0], grid[..., 2])  # grey stays grey
    # The first image sits after the padding, each pixel repeated 4×4.
    assert np.array_equal(grid[2:34:4, 2:34:4, 0], images[0, 0].numpy())
    assert np.array_equal(grid, analysis.image_grid(images.float() / 255, nrow=5, padding=2, scale=4))


# ----------------------------------------------------------------------------- classifier probe


def test_frozen_probe_beats_chance_and_reports_on_the_test_split(runs, digits):
    model = runs["tiny-conv"].model  # a 2-d code after 2 epochs: about 0.3 to 0.4 with a linear head
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    cfg = analysis.ProbeConfig(epochs=8, lr=3e-2, batch_size=64, seed=0)
    result = analysis.train_probe(model, digits, cfg, on_epoch=seen.append)
    test_count = len(digits.splits["test"])
    assert result.accuracy > 0.22  # chance is 0.1
    assert result.confusion.shape == (10, 10) and result.confusion.sum() == test_count
    assert result.accuracy == pytest.approx(np.trace(result.confusion) / test_count)
    assert list(result.per_class_accuracy) == digits.class_names
    assert [row["epoch"] for row in result.history] == list(range(1, 9)) and seen == result.history
    assert result.history[result.best_epoch - 1]["val_accuracy"] == max(r["val_accuracy"] for r in result.history)
    confidences = [m["confidence"] for m in result.most_confused]
    assert 0 < len(confidences) <= 16 and confidences == sorted(confidences, reverse=True)
    test_labels = digits.split("test")[1]
    for miss in result.most_confused:
        assert miss["true"] == digits.class_names[int(test_labels[miss["index"]])] != miss["pred"]
    again = analysis.train_probe(model, digits, cfg)
    assert again.accuracy == result.accuracy and np.array_equal(again.confusion, result.confusion)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_probe_on_a_conditional_model_needs_no_labels(runs, digits):
    # The encoder gets label 0 for every image (the true label would give the answer away).
    result = analysis.train_probe(runs["tiny-cond"].model, digits, analysis.ProbeConfig(epochs=2, hidden=16))
    assert result.confusion.sum() == len(digits.splits["test"]) and len(result.history) == 2
    assert result.confusion.shape == (10, 10)
    assert result.accuracy > 0.3  # ten classes: chance is 0.1 (measured: 0.52)


def test_fine_tuned_mlp_probe_leaves_the_model_untouched(runs, digits):
    model = runs["tiny-conv"].model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = analysis.ProbeConfig(epochs=2, lr=3e-3, batch_size=64, fine_tune=True, hidden=32, device="cpu")
    result = analysis.train_probe(model, digits, cfg)
    assert result.accuracy > 0.3 and len(result.history) == 2
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_stop_event_ends_the_probe_after_the_current_batch(runs, digits):
    stop = threading.Event()
    cfg = analysis.ProbeConfig(epochs=50, batch_size=32)
    result = analysis.train_probe(runs["tiny-conv"].model, digits, cfg,
                                  on_epoch=lambda row: stop.set(), stop_event=stop)
    assert result.stopped and len(result.history) == 1 and result.best_epoch == 1
    assert result.confusion.sum() == len(digits.splits["test"])


def test_error_maps_are_black_where_exact_and_white_at_the_largest_error():
    originals = torch.zeros(2, 1, 4, 4)
    reconstructions = originals.clone()
    reconstructions[1, 0, 2, 3] = 0.5
    heat, brightest = analysis.error_maps(originals, reconstructions)
    assert heat.shape == (2, 3, 4, 4) and brightest == pytest.approx(0.5)
    assert float(heat[0].max()) == 0.0  # a perfect reconstruction is all black
    assert heat[1, :, 2, 3].tolist() == [1.0, 1.0, 1.0]  # the largest error is white


def test_error_maps_run_black_red_yellow_white_over_the_channel_mean():
    # A colour image whose errors, averaged over R, G and B, are 0, 1/3, 2/3 and all of the largest.
    originals = torch.zeros(1, 3, 1, 4)
    reconstructions = torch.tensor([[0.0, 0.1, 0.2, 0.3], [0.0, 0.1, 0.2, 0.3], [0.0, 0.1, 0.2, 0.3]])[None, :, None]
    reconstructions[0, 0, 0, 1], reconstructions[0, 2, 0, 1] = 0.2, 0.0  # the same mean, 0.1, another mix
    heat, brightest = analysis.error_maps(originals, reconstructions)
    assert brightest == pytest.approx(0.3)
    colours = [[round(v, 4) for v in heat[0, :, 0, x].tolist()] for x in range(4)]
    assert colours == [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]  # black red yellow white
    # in between, a larger error is never darker in any channel (the map reads as "hotter")
    ramp = analysis.error_maps(torch.zeros(1, 1, 1, 31), torch.linspace(0, 1, 31).view(1, 1, 1, 31))[0][0, :, 0]
    assert (ramp.diff(dim=1) >= 0).all() and ramp[0, 5] > 0  # a small error already shows (red)


def test_image_grid_lays_out_a_list_of_batches_one_after_the_other(test_images):
    images, _ = test_images
    originals = images[:4]
    stacked = analysis.image_grid(torch.cat([analysis.to_float(originals), analysis.to_float(originals)]), nrow=4)
    assert np.array_equal(analysis.image_grid([originals, analysis.to_float(originals)], nrow=4), stacked)


def test_prior_samples_of_a_plain_autoencoder_are_standard_normal_codes(runs):
    model = runs["tiny-conv"].model
    codes = analysis.sample_codes(model, 4000, seed=3, prior=True)
    assert abs(codes.mean()) < 0.05 and abs(codes.std() - 1) < 0.05
    with pytest.raises(ValueError, match="no prior"):
        analysis.sample_codes(model, 4, seed=3)  # without prior=True it needs codes to fit
    assert torch.equal(analysis.sample(model, 4, seed=3, prior=True), analysis.decode(model, codes[:4]))


def test_code_at_inverts_the_projections():
    from core.analysis import code_at, project

    rng = np.random.default_rng(0)
    codes = rng.normal(size=(200, 2)).astype(np.float32) @ np.array([[2.0, 0.5, 0.0], [0.0, 1.0, 0.3]],
                                                                    dtype=np.float32)
    xy = project(codes, "pca")
    # On a code that lies in the PCA plane (rank 2 here), the inverse gives the code back.
    assert np.allclose(code_at(codes, "pca", xy[7]), codes[7], atol=1e-4)
    raw = code_at(codes, "raw", (1.5, -2.0))
    assert raw[:2].tolist() == [1.5, -2.0] and raw[2] == pytest.approx(codes[:, 2].mean(), abs=1e-5)
    with pytest.raises(ValueError, match="t-SNE has no inverse"):
        code_at(codes, "tsne", (0, 0))
