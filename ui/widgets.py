"""Small rendering helpers shared by pages."""

from __future__ import annotations

import base64
import html
import io
import re
from typing import Sequence

import numpy as np
import streamlit as st
from PIL import Image

from core.errors import ConvLabError


def upscale(image: np.ndarray, size: int = 84) -> np.ndarray:
    """Fit an image in a size x size square: nearest-neighbour, so small pixels show as crisp blocks."""
    image = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    height, width = image.shape[:2]
    side = max(height, width)
    square = np.zeros((side, side, *image.shape[2:]), dtype=np.float32)
    top, left = (side - height) // 2, (side - width) // 2
    square[top: top + height, left: left + width] = image
    picture = Image.fromarray(np.rint(square * 255).astype(np.uint8))
    return np.asarray(picture.resize((size, size), Image.Resampling.NEAREST), dtype=np.float32) / 255.0


def image_grid(images: Sequence[np.ndarray], captions: Sequence[str], size: int = 84, per_row: int = 10) -> None:
    """Rows of equally sized small images with captions.

    Each row is one `st.image` holding its images (not a column per image): a page of 40 pictures is
    4 elements for the browser to lay out, not 80.
    """
    if len(images) == 0:
        st.caption("No images to show.")
        return
    for start in range(0, len(images), per_row):
        st.image([upscale(image, size) for image in images[start:start + per_row]],
                 caption=list(captions[start:start + per_row]), width=size, clamp=True)


def inline_image_row(images: Sequence[np.ndarray], captions: Sequence[str], size: int = 112) -> None:
    """A row of small captioned images sent inside the page itself (PNG data URIs in one HTML block).

    For images redrawn on every stroke: `st.image` would make the browser fetch each one from the server
    after the page has changed, one more round trip before the user sees them.
    """
    figures = []
    for image, caption in zip(images, captions):
        buffer = io.BytesIO()
        Image.fromarray(np.rint(upscale(image, size) * 255).astype(np.uint8)).save(buffer, format="PNG")
        source = base64.b64encode(buffer.getvalue()).decode("ascii")
        figures.append(
            f'<figure style="margin:0;width:{size}px;text-align:center">'
            f'<img src="data:image/png;base64,{source}" width="{size}" height="{size}" alt="{html.escape(caption)}" '
            'style="image-rendering:pixelated;display:block">'
            f'<figcaption style="font-size:13px;opacity:0.7;margin-top:4px">{html.escape(caption)}</figcaption>'
            "</figure>")
    st.html(f'<div style="display:flex;flex-wrap:wrap;gap:8px">{"".join(figures)}</div>')


ANSWER_ELEMENTS_READY = "answer-elements-ready"  # the hidden container's key (its CSS class: st-key-<key>)


def answer_elements_ready() -> None:
    """An invisible metric and HTML block, drawn while nothing is answered yet.

    The browser loads the code of each kind of element the first time a page shows one (Streamlit's metric
    and HTML blocks: a round trip and a parse, 0.2-0.3 s here). Drawn before the first stroke, they are
    loaded by the time its answer (a metric and an HTML block) arrives, which then shows as fast as the next.
    """
    with st.container(key=ANSWER_ELEMENTS_READY):
        st.html(f"<style>.st-key-{ANSWER_ELEMENTS_READY}{{display:none}}</style>")
        st.metric("ready", "0")


def progress_bar(fraction: float, text: str) -> None:
    """A progress bar with its line of text, as plain HTML.

    For bars that move every second: `st.progress` animates each change, which costs a headless Chromium on
    this 2-core machine about 0.05 of a core per bar, taken from the training beside it.
    """
    percent = max(0.0, min(1.0, float(fraction))) * 100
    label = html.escape(text)
    st.html(
        f'<div role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="{percent:.0f}" '
        f'aria-label="{label}"><div style="font-size:14px;margin-bottom:6px">{label}</div>'
        '<div style="height:8px;border-radius:4px;background:rgba(151,166,195,0.25)">'
        f'<div style="width:{percent:.1f}%;height:100%;border-radius:4px;background:#ff4b4b"></div></div></div>')


_MARKDOWN_ACTIVE = re.compile(r"([\\`\[\]<>$@])|(?<=[A-Za-z]):(?=//)|(?<=\bwww)\.", re.IGNORECASE)


def md(text: object) -> str:
    """`text` from a user, a URL or a file, made inert inside Markdown: no link, image, HTML or LaTeX.

    Streamlit renders Markdown (and LaTeX between $ signs) in every message, caption and toast. A backslash
    (a CommonMark escape) goes before what could start a link or an image ([ ]), an HTML tag (< >), LaTeX ($),
    code (`), an e-mail address (@) or a bare web address (http://, www.), and newlines become spaces, so
    the text shows as it is and nothing in it can make the visitor's browser fetch or open anything.
    """
    return _MARKDOWN_ACTIVE.sub(lambda match: "\\" + match.group(0), str(text)).replace("\n", " ")


def code(text: object) -> str:
    """`text` as an inline code span that no backtick inside it can close early (so nothing in it renders)."""
    text = str(text).replace("\n", " ")
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""  # (CommonMark strips one space each side)
    return f"{fence}{pad}{text}{pad}{fence}"


def show_error(error: ConvLabError | Exception, prefix: str = "") -> None:
    """A user-facing error: the message (which may quote a file's name or contents) made literal, never a traceback."""
    st.error(f"{prefix}{md(error)}", icon=":material/error:")


def duration(seconds: float | None) -> str:
    """'42s', '3m 05s', or '?' when unknown."""
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def seconds(value: float | None) -> str:
    """'1.4 s' under ten seconds, '42 s' under a minute, else as `duration` ('3m 05s'); '?' when unknown."""
    if value is None:
        return "?"
    if value < 9.95:
        return f"{value:.1f} s"
    return f"{value:.0f} s" if value < 59.5 else duration(value)


def choices_with(choices: Sequence, key: str) -> tuple:
    """`choices`, plus the widget's current value if it is not one of them (a run's setting made elsewhere)."""
    current = st.session_state.get(key)
    if current is None or current in choices:
        return tuple(choices)
    return tuple(sorted((*choices, current)))


def upper(bound: float, key: str) -> float:
    """A slider's maximum: `bound`, or the current value when a run's setting goes beyond it."""
    current = st.session_state.get(key)
    return max(bound, current) if isinstance(current, (int, float)) else bound


def lower(bound: float, key: str) -> float:
    """A number input's minimum: `bound`, or the current value when a run's setting goes below it."""
    current = st.session_state.get(key)
    return min(bound, current) if isinstance(current, (int, float)) else bound
