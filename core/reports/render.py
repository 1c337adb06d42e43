"""A Figure as a PNG, offline: Altair charts through vl-convert (the converter Altair's own `save`
uses: Vega runs in an embedded engine, nothing is fetched), image grids through Pillow."""
from __future__ import annotations

import io

from core.analysis import image_grid
from core.charts.style import styled
from core.reports.figures import Figure

MIN_IMAGE_PIXELS = 64  # every small image at least this many pixels in a report (8×8 digits become 64)
CHART_WIDTH = 640  # a chart whose width is left to the page (the container's) gets this in a report
CHART_SCALE = 1.5  # the PNG's pixels per chart pixel: sharp when printed or zoomed


def figure_png(figure: Figure) -> bytes | None:
    """The figure's PNG bytes (None for a figure that is only a sentence)."""
    if figure.chart is not None:
        return chart_png(figure.chart)
    if figure.images is not None:
        return images_png(figure.images, figure.nrow, figure.side)
    return None


def chart_png(chart) -> bytes:
    import vl_convert

    spec = styled(chart).to_dict(validate=False)  # built by core.charts: validated by its tests, not per report
    _fix_widths(spec)
    return vl_convert.vegalite_to_png(spec, scale=CHART_SCALE)


def _fix_widths(spec: dict) -> None:
    """Charts on the page take the container's width; a PNG has no container, so give them one."""
    if "facet" in spec or "hconcat" in spec or "vconcat" in spec or "concat" in spec:
        return
    if spec.get("width") in (None, "container"):
        spec["width"] = CHART_WIDTH


def images_png(images, nrow: int, side: int) -> bytes:
    from PIL import Image

    scale = max(1, -(-MIN_IMAGE_PIXELS // max(side, 1)))
    buffer = io.BytesIO()
    Image.fromarray(image_grid(images, nrow=nrow, scale=scale)).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def show(figures) -> None:
    """Draw figures in a Jupyter notebook (a lesson's notebook calls it): each its title, caption and PNG."""
    from IPython.display import Image, Markdown, display

    for figure in figures:
        display(Markdown(f"**{figure.title}** {figure.caption}"))
        png = figure_png(figure)
        if png:
            display(Image(data=png, format="png"))
