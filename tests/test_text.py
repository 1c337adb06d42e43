"""ui.text: what a user, a file or a URL named is shown as text, never as Markdown or HTML. A
CommonMark parser (markdown-it-py) reads the result; tests/e2e/test_e2e_hostile_names.py checks
what Chromium draws of it."""
from __future__ import annotations

import re

import pytest

from apptest_helpers import HOSTILE_TEXT, markup_in, shown_text
from ui.text import SHOWN_CHARACTERS, md_message, md_text, plain_names, plain_text

HOSTILE = [
    HOSTILE_TEXT,
    "<img src=http://127.0.0.1:9/h.png> <b>bold</b> <http://127.0.0.1:9/a>",
    "https://example.com/a and www.example.com and WWW.Example.com and a@example.com",
    "_x_ __y__ *z* **w** ~s~ ~~t~~ `code`",
    "- a list", "1. a list", "# a heading", "> a quote", "***", "  + indented list",
    "[^1] [ref]: https://example.com",
    "&amp; &#65; \\*escaped\\*",
]
EVERY = [*HOSTILE, "data/uploads/cats_and-dogs (2)", "a_b AE_LAB_MAX_PIXELS: 40", "تصاویر گربه\u200cها",
         "naïve ☃ 猫"]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_text_alone(text):
    assert markup_in(text) or shown_text(text) != text, "the case must be markup, or the test proves nothing"
    assert markup_in(md_text(text)) == []
    # Inside the app's own prose, too.
    assert markup_in(f"**Dataset:** Image folder · {md_text(text)} · first 10 images") == ["strong_open"]


@pytest.mark.parametrize("text", EVERY)
def test_what_shows_is_the_text_itself(text):
    assert shown_text(md_text(text)) == plain_text(text).strip()  # HTML shows no edge spaces


def test_a_sentence_reads_the_same():
    sentence = "The folder data/no-such-folder does not exist (AE_LAB_MAX_IMAGES); pick 128 or less."
    assert md_text(sentence) == sentence


def test_streamlits_own_syntax_is_escaped():
    escaped = md_text(":smile: :material/warning: :red[red] :streamlit: $x^2$ -> a--b")
    # Streamlit reads these after unescaping, so the Chromium walk is their real test; here: each
    # colon and dollar escaped, the slash of :material/ too, and no arrow or dash pair left whole.
    assert not re.search(r"(?<!\\)[:$]", escaped) and ":material\\/" in escaped
    assert "->" not in escaped and "--" not in escaped


def test_control_and_invisible_characters_are_made_visible():
    shown = plain_text("evil\u202egnp.exe\u200b\x00\nnext\tcolumn")
    assert shown == "evil\ufffdgnp.exe\ufffd\ufffd next column"
    assert plain_text("ZWJ family 👨\u200d👩\u200d👧 stays") == "ZWJ family 👨\u200d👩\u200d👧 stays"


def test_names_for_charts_lose_their_bidi_characters_and_stay_distinct():
    assert plain_names(["a\u202e", "a\u200b", "b", "a\ufffd"]) == ["a\ufffd", "a\ufffd (2)", "b", "a\ufffd (3)"]


def test_a_long_value_is_cut():
    assert len(plain_text("x" * 40_000)) == SHOWN_CHARACTERS
    assert plain_text("x" * 40_000).endswith("…")
    assert len(md_message("x" * 40_000)) > SHOWN_CHARACTERS
