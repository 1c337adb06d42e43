"""What lesson text may hold, since it reaches a student's browser: Markdown without HTML (it would
be shown as text), without images (a browser would fetch them from elsewhere), and links only to
http(s) and mailto. A file that holds more is refused with the line and what to write instead."""
from __future__ import annotations

from markdown_it import MarkdownIt

_LINK_SCHEMES = ("http://", "https://", "mailto:")
MARKDOWN_INSTEAD = "write Markdown instead (**bold**, lists, [a link](https://...))"

# Every link becomes a token (markdown-it would turn a javascript: link into text, hiding it from the check).
CHECKER = MarkdownIt("commonmark").enable("table")
CHECKER.validateLink = lambda url: True


class LessonFileError(ValueError):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


def check_markdown(text: str, first_line: int, where: str) -> None:
    """LessonFileError for what must not reach a browser from a lesson file: HTML, images, links
    other than http(s)/mailto."""
    if not text:
        return
    for token in CHECKER.parse(text):
        line = first_line + (token.map[0] if token.map else 0)
        if token.type == "html_block":
            raise LessonFileError(line, f"{where} holds HTML ({_snippet(token.content)}), which is shown to "
                                        f"students as plain text; {MARKDOWN_INSTEAD}")
        for child in token.children or []:
            if child.type == "html_inline":
                raise LessonFileError(line, f"{where} holds HTML ({_snippet(child.content)}), which is shown "
                                            f"to students as plain text; {MARKDOWN_INSTEAD}")
            if child.type == "image":
                raise LessonFileError(line, f"{where} holds an image, which a student's browser would fetch from "
                                            "elsewhere; describe it in words or link to it: [text](https://...)")
            if child.type == "link_open":
                href = str(child.attrs.get("href", ""))
                if not href.lower().startswith(_LINK_SCHEMES):
                    raise LessonFileError(line, f"{where} links to {_snippet(href)}; link only to http(s) or "
                                                "mailto addresses, e.g. [text](https://...)")


def _snippet(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= 40 else text[:39] + "…"


def yaml_hint(problem: str) -> str:
    if "mapping values are not allowed" in problem:
        return 'put text that holds ": " in quotes, e.g. look_for: "Notice: the gap"'
    return "write one key: value per line"
