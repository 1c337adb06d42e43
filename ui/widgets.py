"""Small Streamlit pieces several pages share."""
from __future__ import annotations

import io

import streamlit as st
from PIL import Image

from core import analysis  # its parts (PyTorch) load on first use: see core.analysis
from ui import projector
from ui.errors import error_text
from ui.state import SELECTED_RUN_KEY, get_run, run_mtime, saved_runs
from ui.text import md_text

TRAIN_PAGE = "views/train.py"


def need_a_run(what: str = "this page") -> None:
    """Say plainly that a trained run is needed, and link to Train."""
    st.info(f"No trained run yet: train one first to use {what}.")
    st.page_link(TRAIN_PAGE, label="Go to Train", icon=":material/model_training:")


def run_picker(label: str = "Run", key: str = "run_picker", runs: list[dict] | None = None):
    """A select box over the saved runs; returns the loaded Run, or None (with a message) when
    there is none or none is chosen. The choice is shared between pages through SELECTED_RUN_KEY.
    Until this browser chose one, it starts at its own newest run: a student opening the app
    does not inherit the teacher's (or anyone's) current run; with no run of its own, nothing."""
    from ui.my_runs import my_run_names

    runs = saved_runs() if runs is None else runs
    if not runs:
        need_a_run()
        return None
    names = [r["name"] for r in runs]
    mine = my_run_names(runs)
    current = st.session_state.get(SELECTED_RUN_KEY)
    if current is not None and current not in names:  # e.g. a link to a run deleted since
        st.warning(f"There is no saved run named {md_text(str(current))} (it may have been deleted or "
                   "renamed): pick one of the saved runs.", icon=":material/link_off:")
        st.session_state.pop(SELECTED_RUN_KEY, None)  # and the URL stops naming it
    if current not in names:
        current = next((n for n in names if n in mine), None)  # newest first
    name = st.selectbox(label, names, index=names.index(current) if current in names else None, key=key,
                        format_func=lambda n: f"{n} · yours" if n in mine else n,
                        placeholder="Choose a run (yours are marked)")
    if name is None:
        st.info("Choose a run above: none of the saved runs is yours yet (train one on the Train page), "
                "and every run of the class can be looked at.")
        return None
    st.session_state[SELECTED_RUN_KEY] = name
    try:
        return get_run(name, run_mtime(name))
    except Exception as exc:  # core's refusals as their sentence, a bug as one (ui.errors)
        st.error(error_text(exc))
        return None


def show_grid(images, caption: str | None = None, nrow: int = 8, scale: int = 1, same_as: tuple | None = None) -> None:
    """Images (float [0,1] or uint8, N×C×H×W) as one torchvision grid.

    same_as: a key that names these images for as long as the server runs (e.g. a job's id and
    epoch), for a grid a live view redraws on every poll: the picture is made once per key and
    scale, not once per poll and student."""
    # PNG: JPEG would blur 8×8 pixel art and the error maps (and Streamlit would re-encode bytes
    # as JPEG unless told they stay PNG).
    if same_as is not None:
        st.image(_grid_png(same_as, images, nrow, scale), caption=caption, output_format="PNG")
        return
    st.image(analysis.image_grid(images, nrow=nrow, scale=scale), caption=caption, output_format="PNG")


@st.cache_data(max_entries=512, show_spinner=False)
def _grid_png(same_as: tuple, _images, nrow: int, scale: int) -> bytes:
    """The grid as PNG bytes, cached by what names the images (`_images` itself is not hashed)."""
    buffer = io.BytesIO()
    Image.fromarray(analysis.image_grid(_images, nrow=nrow, scale=scale)).save(buffer, format="PNG")
    return buffer.getvalue()


def upscale_for(image_size: int) -> int:
    """Integer upscaling so tiny images (8×8 digits) are visible on screen, larger in projector
    mode (ui.projector)."""
    return projector.upscale_for(image_size)


def run_heading(name: str) -> None:
    """A run's name with its colour swatch (the run's colour on every chart)."""
    from ui.state import run_color_map

    color = run_color_map().get(name, "#000000")
    # The colour is ours (a hex code); the name is escaped, so no HTML or Markdown of it is read.
    st.markdown(f'<span style="color:{color}; font-size:1.3em">■</span> **{md_text(name)}**', unsafe_allow_html=True)


def side_by_side_runs(run, key: str, help_text: str = "") -> list:
    """A multiselect of other saved runs on the same data as `run` (same test images), kept in the
    URL as ?with=a,b; returns them loaded (the ones that fail to load are said and left out)."""
    from ui.url_state import url_widget

    same_data = [r["name"] for r in saved_runs()
                 if r["name"] != run.name and r.get("dataset") == run.config.data.dataset
                 and r.get("status") != "damaged"]
    if not same_data:
        return []
    url_widget(key, "with", [], valid=lambda names: all(n in same_data for n in names))
    # A run that was deleted (or is the main run now) drops out of the choice.
    st.session_state[key] = [n for n in st.session_state[key] if n in same_data]
    chosen = st.multiselect("Side by side with", same_data, key=key,
                            help=help_text or "Other runs on the same dataset: the same test images, "
                                              "one column per run.")
    loaded = []
    for name in chosen:
        try:
            other = get_run(name, run_mtime(name))
        except Exception as exc:  # core's refusals as their sentence, a bug as one (ui.errors)
            st.warning(error_text(exc))
            continue
        if other.config.data != run.config.data:
            st.warning(f"{md_text(name)} was trained on other data (another folder, size or split), so its test "
                       "images differ; it is left out.")
            continue
        loaded.append(other)
    return loaded
