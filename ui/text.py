"""What a user, a file or a URL named, shown as text and never as Markdown or HTML.

Streamlit renders Markdown (GitHub's, plus its own emoji, icon, colour and LaTeX syntax) in
st.markdown, captions, alerts, toasts, metrics, image captions, expander and tab labels, every
widget's label and help, radio and pills options, and page links. A folder, run, class or file name
put into one of those as is can show an external image (a tracking beacon) or a link that is not
ours: `?folder=![x](http://host/t.png) [Log in](https://evil.example)`. `md_text` makes such a name
a literal in any of those places; the prose around it stays Markdown.

Not for selectbox/multiselect options, text inputs, st.text, st.code or tables: those show text as
it is (a backslash added there would show). `plain_text` is for them: it only makes invisible and
control characters visible and shortens what is very long.
"""
from __future__ import annotations

import re
import unicodedata

SHOWN_CHARACTERS = 200  # a 40 KB URL value is shown as its first part, not as a 40 KB sidebar
MESSAGE_CHARACTERS = 1000  # a whole message (an error that quotes names) is longer than one name
REPLACEMENT = "\ufffd"  # what a control or invisible formatting character is shown as
# Joiners that scripts such as Persian and emoji sequences need; every other invisible
# formatting character (bidi overrides, zero-width spaces) could make a name read as another.
_KEPT_FORMAT = {"\u200c", "\u200d"}
_WORD_JOINER = "\u2060"  # invisible and unbreakable: splits a pattern without changing what shows
# Backslash-escaped wherever they are: code, links and images, HTML and autolinks, entities,
# emphasis with *, strikethrough, LaTeX, Streamlit's :emoji:, :material/icon: and :red[colour],
# and the backslash itself.
_ALWAYS = set("\\`*[]<>&~$:")
# Markup only at the start of a line (a heading, quote, list or rule): the text has no line breaks,
# so only at its start.
_STARTING = re.compile(r"^(\s*)([-+#>=|]|\d+(?=[.)]))")
# What the Markdown renderer rewrites in text it has already unescaped: GitHub's bare links
# (https://..., www...., a@b.c), Streamlit's typography (-> <- <-> -- >= <= ~=) and its logo
# (:streamlit:). A word joiner inside each keeps it literal.
_AFTER_PARSING = re.compile(r"(?<=:)(?=//)|(?i:(?<=www))(?=\.)|(?=@)|(?<=-)(?=[->])|(?<=<)(?=[-=])|(?<=[>~])(?==)"
                            r"|(?i:(?<=:)(?=streamlit:))")


def plain_text(value: object, limit: int = SHOWN_CHARACTERS) -> str:
    """str(value) with control and invisible formatting characters replaced (line breaks and tabs
    by a space, the others by U+FFFD) and cut to `limit` characters, marked with an ellipsis."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in "\t\n\r\v\f\u2028\u2029\x85":
            out.append(" ")
        elif category == "Cc" or (category == "Cf" and ch not in _KEPT_FORMAT):
            out.append(REPLACEMENT)
        else:
            out.append(ch)
    return "".join(out)


def plain_names(names: list[str]) -> list[str]:
    """plain_text of each name (class folders named with bidi overrides read reversed in charts,
    which draw text as it is), kept distinct: a name made equal to an earlier one gets " (2)"."""
    shown: list[str] = []
    for name in names:
        text, n = plain_text(name), 2
        while text in shown:
            text, n = f"{plain_text(name)} ({n})", n + 1
        shown.append(text)
    return shown


def md_text(value: object, limit: int = SHOWN_CHARACTERS) -> str:
    """Markdown that Streamlit shows as exactly plain_text(value). Only what can be markup is
    escaped, so a sentence reads the same in the page's source (and in tests): the characters of
    _ALWAYS; `_` unless inside a word (snake_case never makes emphasis); the `/` of `:material/`
    (Streamlit finds icons even with both colons escaped); a list, heading or quote marker at the start.
    A word joiner goes inside what is rewritten after unescaping (bare links, arrows)."""
    text = _AFTER_PARSING.sub(_WORD_JOINER, plain_text(value, limit))
    out = []
    for i, ch in enumerate(text):
        before = text[i - 1] if i else " "
        after = text[i + 1] if i + 1 < len(text) else " "
        if (ch in _ALWAYS or (ch == "_" and not (before.isalnum() and after.isalnum()))
                or (ch == "/" and text[max(i - 8, 0):i].lower() == "material")):  # :material/icon:
            out.append("\\")
        out.append(ch)
    escaped = "".join(out)
    start = _STARTING.match(escaped)
    if start:  # "- x" -> "\\- x", "# x" -> "\\# x", "1. x" -> "1\\. x"
        at = start.end() if start.group(2)[0].isdigit() else start.start(2)
        escaped = escaped[:at] + "\\" + escaped[at:]
    return escaped


def md_message(text: object) -> str:
    """A whole message shown as text (an error or a job's message, which may quote a folder, file,
    run or class name): md_text with room for a sentence or two."""
    return md_text(text, MESSAGE_CHARACTERS)
