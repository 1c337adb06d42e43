"""The Generate page in AppTest, on the tiny digits runs: prior samples of a VAE, fitted-Gaussian
and N(0, I) samples of a plain AE, and a conditional run's every-label and wrong-label decodings."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from core.analysis import image_grid
from core.checkpoints import save_run
from core.train import train
from ui.state import SELECTED_RUN_KEY
from ui.widgets import upscale_for

from apptest_helpers import open_app_page
from tiny_runs import tiny_config

PAGE = "views/generate.py"
DIGIT_SIZE = 8  # the built-in digits are 8×8 grey


@pytest.fixture
def media(monkeypatch) -> dict[str, bytes]:
    """The bytes of every image the app sends, by file id: AppTest itself keeps only their URLs."""
    stored: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def recording(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        stored[file_id] = self.get_file(file_id).content
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recording)
    return stored


def pixels(media: dict[str, bytes], url: str) -> np.ndarray:
    file_id = url.rsplit("/", 1)[-1].split(".")[0]
    return np.asarray(Image.open(io.BytesIO(media[file_id])))


def grid_shape(count: int, nrow: int = 8) -> tuple[int, int]:
    """Height and width of the grid the page should draw for `count` digits."""
    grid = image_grid(torch.zeros(count, 1, DIGIT_SIZE, DIGIT_SIZE), nrow=nrow,
                      scale=upscale_for(DIGIT_SIZE))
    return grid.shape[0], grid.shape[1]


def open_page(run_name: str | None) -> AppTest:
    return open_app_page(PAGE, {SELECTED_RUN_KEY: run_name} if run_name else {})


def image_with_caption(at: AppTest, text: str):
    matches = [im for im in at.get("image") if any(text in c for c in im.captions)]
    assert len(matches) == 1, [im.captions for im in at.get("image")]
    return matches[0]


def test_vae_shows_prior_samples_of_the_chosen_count(app_runs, media):
    at = open_page("tiny-vae")
    assert any("prior" in h.value for h in at.subheader)
    prior = image_with_caption(at, "N(0, I)")
    grid = pixels(media, prior.value[0])
    assert grid.shape[:2] == grid_shape(32)
    assert grid.std() > 0, "the samples are one flat colour"
    assert not [im for im in at.get("image") if any("Fitted Gaussian" in c for c in im.captions)]
    assert any("KL term" in m.value for m in at.markdown)

    at.number_input(key="generate_samples").set_value(12).run()
    assert grid_shape(12) != grid_shape(32)
    assert pixels(media, image_with_caption(at, "N(0, I)").value[0]).shape[:2] == grid_shape(12)


def test_a_vae_whose_samples_are_one_blob_says_so_and_a_learnt_one_does_not(app_runs, digits):
    """The 2-epoch tiny VAE has not learnt yet: its prior samples are about one image, and the page
    must not let the explanation below claim they look like the data. A VAE trained with the Train
    page's defaults (22 epochs of 64) draws varied samples and gets no warning."""
    at = open_page("tiny-vae")
    assert [w.value for w in at.warning if "barely differ" in w.value]
    cfg = tiny_config("tiny-vae")
    cfg.model.hidden, cfg.train.epochs, cfg.name = [256, 128], 22, "learnt-vae"
    save_run(app_runs, "learnt-vae", cfg, train(cfg, digits))
    at = open_page("learnt-vae")
    assert any("KL term" in m.value for m in at.markdown)
    assert not [w.value for w in at.warning if "barely differ" in w.value]


def test_plain_ae_shows_fitted_gaussian_beside_standard_normal(app_runs, media):
    at = open_page("tiny-conv")
    fitted = pixels(media, image_with_caption(at, "Fitted Gaussian").value[0])
    prior = pixels(media, image_with_caption(at, "N(0, I): what a VAE would sample").value[0])
    assert fitted.shape[:2] == prior.shape[:2] == grid_shape(32)
    assert not np.array_equal(fitted, prior)
    # A different seed draws different codes.
    at.number_input(key="generate_seed").set_value(7).run()
    reseeded = pixels(media, image_with_caption(at, "Fitted Gaussian").value[0])
    assert not np.array_equal(fitted, reseeded)
    assert any("conditional" in i.value for i in at.info)


def test_conditional_run_decodes_one_code_with_every_label(app_runs, media, digits):
    at = open_page("tiny-cond")
    names = [str(d) for d in range(10)]
    every = [im for im in at.get("image") if im.captions[0] in names]
    assert [im.captions[0] for im in every] == names
    decoded = [pixels(media, im.value[0]) for im in every]
    assert len({d.tobytes() for d in decoded}) > 1, "every label decoded to the same image"
    # The samples grid has one column per class.
    samples = pixels(media, image_with_caption(at, "Fitted Gaussian").value[0])
    assert samples.shape[:2] == grid_shape(32, nrow=10)


def test_conditional_run_shows_the_wrong_label_pair(app_runs, media, digits):
    test_labels = digits.split("test")[1]
    index = 5
    true_name = digits.class_names[int(test_labels[index])]
    wrong_name = digits.class_names[(int(test_labels[index]) + 3) % 10]

    at = open_page("tiny-cond")
    at.number_input(key="generate_image").set_value(index).run()
    box = at.selectbox(key="generate_wrong_label")
    assert true_name not in box.options and len(box.options) == 9
    box.select(wrong_name).run()
    captions = [f"Test image {index} ({true_name})", f"Decoded with its true label '{true_name}'",
                f"Decoded with the wrong label '{wrong_name}'"]
    original, with_true, with_wrong = (pixels(media, image_with_caption(at, c).value[0])
                                       for c in captions)
    assert original.shape == with_true.shape == with_wrong.shape
    assert not np.array_equal(with_true, with_wrong)


def test_no_runs_links_to_train(no_runs):
    at = open_page(None)
    assert any("No trained run yet" in i.value for i in at.info)
    assert [link.label for link in at.main.get("page_link")] == ["Go to Train"]
    assert not at.get("image")


def label_weights_scaled(app_runs, name: str, factor: float) -> str:
    """A copy of tiny-cond whose decoder weighs the label `factor` times (0: it ignores the label):
    the label's weights at the decoder's input and its per-label styles (core.models.label_style)."""
    from core.checkpoints import load_run
    from core.train import TrainResult

    run = load_run(app_runs, "tiny-cond")
    first = next(m for m in run.model.decoder if isinstance(m, torch.nn.Linear))
    with torch.no_grad():
        first.weight[:, run.config.model.latent:] *= factor
        for style in run.model.label_style.values():
            style.table *= factor
    cfg = run.config
    cfg.name = name
    result = TrainResult(model=run.model, status="finished", message="", history=[], batch_losses=[],
                         film_originals=run.film_originals, film=[], test_metrics=run.test_metrics, device="cpu")
    save_run(app_runs, name, cfg, result)
    return name


def test_the_guidance_says_what_the_label_does_as_measured(app_runs):
    """Issue 21: a green box said "each label should draw its own class" while every label drew the
    same blob. The page now measures how much one code's decodings differ across labels first."""
    ignoring = open_page(label_weights_scaled(app_runs, "cond-ignores-label", 0.0))
    assert not ignoring.success
    warning = " ".join(w.value for w in ignoring.warning)
    assert "barely changes the decoded image" in warning and "differ only 0%" in warning
    assert "latent of 2" in warning
    strong = open_page(label_weights_scaled(app_runs, "cond-strong-label", 25.0))
    assert any("each label draws something of its own" in s.value for s in strong.success)
    assert not [w for w in strong.warning if "barely changes" in w.value]


def test_the_every_label_grid_names_its_rows_and_columns(app_runs):
    """Issue 21: the "every class with every label" grid had no row or column labels."""
    at = open_page("tiny-cond")
    grid = at.main.get_by_key("label_grid")
    texts = [m.value for m in grid.get("markdown")]
    names = [str(d) for d in range(10)]
    assert texts[:12] == ["**test image's class**", "**original**", *[f"**{n}**" for n in names]]
    row_labels = texts[12:]
    assert row_labels == [f"**{n}**" for n in names]  # one row per class, each named
    assert len(grid.get("image")) == 10 * 11  # each row: the original and its 10 decodings


def test_conditional_lesson_explains_the_small_latent_and_sets_it_up(app_runs):
    at = open_page(label_weights_scaled(app_runs, "cond-ignores", 0.0))
    assert any("4 dimensions" in w.value and "latent of 2" in w.value for w in at.warning)
    assert any("What to look for" in i.value for i in at.info)
    at.button(key="generate_small_latent").click().run()
    form = at.session_state["train_form_config"]
    assert form.model.latent == 2 and form.model.conditional
    assert at.number_input(key="cfg_latent").value == 2 and at.checkbox(key="cfg_conditional").value
