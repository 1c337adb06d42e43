"""Autoencoder Lab: `streamlit run app.py`. Navigation over views/ and the shared sidebar.

The page files live in views/, not pages/: Streamlit serves a folder named pages/ on its own
until the entry point has run, so a shared link opened first would show a page without this
app's navigation, sidebar or URL state."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui.errors import page_failed
from ui.login import sign_in_screen
from ui.owners import must_sign_in, owner_id
from ui.sidebar import render_sidebar
from ui.state import PAGE_DATA_KEY, get_experiments, restart_notice
from ui.url_state import restore_from_url, start_run, url_notice, write_to_url

HERE = Path(__file__).parent

# section -> (file under views/, title, icon); the URL path is the file's name (data, train, ...).
SECTIONS = {
    "Learn": [
        ("lessons.py", "Lessons", ":material/school:"),
    ],
    "Prepare": [
        ("data.py", "Data", ":material/dataset:"),
        ("train.py", "Train", ":material/model_training:"),
        ("runs.py", "Runs", ":material/table_chart:"),
        ("experiments.py", "Experiments", ":material/science:"),
    ],
    "Inspect": [
        ("reconstructions.py", "Reconstructions", ":material/compare:"),
        ("noise.py", "Noise", ":material/grain:"),
        ("latent.py", "Latent space", ":material/scatter_plot:"),
        ("generate.py", "Generate", ":material/auto_awesome:"),
        ("classifier.py", "Classifier", ":material/category:"),
    ],
}

# A local file: a material-icon page_icon makes the browser fetch the favicon from fonts.gstatic.com,
# and the app must work offline.
st.set_page_config(page_title="Autoencoder Lab", page_icon=str(HERE / "ui" / "assets" / "icon.png"),
                   layout="wide")
# The URL's dataset, run and projector mode, before any page reads them (a reload, a shared link).
restore_from_url()
start_run()

# The first page is the default, which Streamlit serves at "/" and at no path of its own: a link to
# /lessons said "Page not found" over it. A hidden copy answers at /lessons (listed last, so page links and
# switch_page to the file find the visible one); the default's own url_path only has to differ.
DEFAULT_SECTION = next(iter(SECTIONS))
DEFAULT_FILE, DEFAULT_TITLE, DEFAULT_ICON = SECTIONS[DEFAULT_SECTION][0]
# A page whose file is not there (yet) is left out rather than breaking the whole app.
pages_by_file = {file[:-3]: st.Page(f"views/{file}", title=title, icon=icon,
                                    **({"url_path": "home", "default": True} if file == DEFAULT_FILE else {}))
                 for pages in SECTIONS.values() for file, title, icon in pages if (HERE / "views" / file).is_file()}
navigation = {
    section: [pages_by_file[file[:-3]] for file, _, _ in pages if file[:-3] in pages_by_file]
    for section, pages in SECTIONS.items()
}
navigation[DEFAULT_SECTION].append(st.Page(f"views/{DEFAULT_FILE}", title=DEFAULT_TITLE, icon=DEFAULT_ICON,
                                     url_path=DEFAULT_FILE[:-3], visibility="hidden"))
locked = must_sign_in()  # a server with a login (.streamlit/secrets.toml [auth]): nothing before signing in
page = st.navigation({section: pages for section, pages in navigation.items() if pages},
                     position="hidden" if locked else "sidebar")
if locked:
    sign_in_screen()
    st.stop()
owner_id()  # this browser's id for the jobs it starts (no login: kept in the URL across page switches)
restart_notice()
url_notice()  # which of the link's values could not be used, once
get_experiments()  # made once per server: continues the experiments a restart cut off
sidebar_slot = st.sidebar.container()
st.session_state.pop(PAGE_DATA_KEY, None)  # a page that works on its own dataset says so as it runs
try:
    page.run()
except Exception as exc:  # st.stop/st.rerun are not Exceptions: they pass through
    # A bug on a page: one sentence here, the traceback in the teacher's log (ui.errors).
    st.error(page_failed(exc, page.title), icon=":material/error:")
finally:
    render_sidebar(sidebar_slot)
    write_to_url()
