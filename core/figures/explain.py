"""Plotly figures for "look inside the network": feature maps, filters, weights, arithmetic, attributions.

Each figure renders a plain record from `core.explain` (a `NetworkTrace`,
`FilterImages`, `ConvArithmetic`, ...) and never calls the model. Many small
maps are tiled into one heatmap (one trace, one pair of axes) rather than one
subplot each, and figures with panels are built from one layout dict: plotly's
`make_subplots` and per-axis updates cost tens of milliseconds each, on a page
that redraws after every stroke.
"""

from __future__ import annotations

import base64
import io
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.colors import get_colorscale, qualitative

from core.explain.confusion import ConfusionOverEpochs
from core.explain.embedding import Embedding
from core.explain.images import mosaic, normalise_maps, overlay
from core.explain.network import Attribution, ConvArithmetic, FilterImages, NetworkTrace, WeightHistogram
from core.figures.base import TRAIN_COLOUR, FigureSpec, _layout
from core.figures.evaluation import confusion_heatmap

# colour scales as [position, colour] lists, not names: figures built without validation reach plotly.js as they
# are, and plotly.js knows neither "gray" nor the "_r" (reversed) names that plotly.py resolves
MAP_SCALE = get_colorscale("gray")  # feature maps: black is the map's lowest value, white its highest
WEIGHT_SCALE = get_colorscale("RdBu_r")  # weights and signed values: blue negative, white 0, red positive
HEAT_SCALE = get_colorscale("Hot")  # attribution maps, close to `core.explain.heat_colours`
PLOT_WIDTH = 640  # about the width a Streamlit column gives a figure, in pixels
CLASS_COLOURS = qualitative.D3 + qualitative.Alphabet  # D3 starts with figures.TRAIN_COLOUR
# each feature map's filter number: large enough to read at a glance, legible on white maps and black ones alike
MAP_NUMBER_FONT = dict(size=16, color="#ffd54f", weight="bold", shadow="1px 1px 2px #000000")


def _axis_id(index: int) -> str:
    return "" if index == 0 else str(index + 1)


def _panels(titles: Sequence[str], rows: int = 1, images: bool = True, hgap: float = 0.03,
            vgap: float = 0.12) -> dict:
    """Layout entries for a grid of panels (row-major), one title above each; images keep square pixels."""
    columns = -(-len(titles) // rows)
    width = (1 - hgap * (columns - 1)) / columns
    height = (1 - vgap * (rows - 1)) / rows
    layout: dict = {"annotations": [], "showlegend": False}
    for i, title in enumerate(titles):
        r, c = divmod(i, columns)
        s = _axis_id(i)
        x0, y1 = c * (width + hgap), 1 - r * (height + vgap)
        layout[f"xaxis{s}"] = dict(domain=[x0, x0 + width], anchor=f"y{s}", visible=not images)
        layout[f"yaxis{s}"] = dict(domain=[y1 - height, y1], anchor=f"x{s}", visible=not images)
        if images:
            layout[f"xaxis{s}"].update(constrain="domain")
            layout[f"yaxis{s}"].update(autorange="reversed", scaleanchor=f"x{s}", constrain="domain",
                                       constraintoward="top")
        layout["annotations"].append(dict(text=title, x=x0 + width / 2, y=y1, xref="paper", yref="paper",
                                          xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=11)))
    return layout


def _on(index: int) -> dict:
    """The axes keys that put a trace on panel `index`."""
    return dict(xaxis=f"x{_axis_id(index)}", yaxis=f"y{_axis_id(index)}")


def _image_figure(data: list, layout: dict, title: str, rows: int = 1, columns: int = 1, aspect: float = 1.0,
                  extra: int = 0) -> go.Figure:
    """A figure of image tiles about PLOT_WIDTH wide, built from plain dicts without plotly's validation.

    Building and validating a `go.Figure` costs 30-60 ms on this project's 2-core machine, and the page
    that shows these redraws four of them after every stroke; so every key here is written in plotly's
    canonical form (a title is {"text": ...}, a colour scale a list) and the page tests check that each
    figure the page sends is valid and canonical.
    """
    height = max(160, min(900, 70 + extra + int(rows * aspect * PLOT_WIDTH / columns)))
    layout = dict(layout, title=dict(text=title), height=height, margin=dict(l=40, r=10, b=10, t=50 + extra))
    return _Spec({"data": data, "layout": layout})


class _Spec(FigureSpec):
    """A `FigureSpec`: handed to Streamlit as a plain dict, never validated, with its numeric arrays as plotly.js
    typed arrays (base64; the JSON is a third of a list of numbers' and plotly.js reads it faster). Its
    graph-object attributes (`.data`, `.layout`) read a validated copy, built on first use: for tests and
    scripts, not for the page."""

    def to_dict(self) -> dict:
        return _typed(self._spec)

    def to_plotly_json(self) -> dict:
        return _typed(self._spec)

    @property
    def data(self):  # noqa: ANN201 - as plotly's
        return self._graph().data

    @property
    def layout(self):  # noqa: ANN201 - as plotly's
        return self._graph().layout

    def _graph(self) -> go.Figure:
        if "_validated" not in self.__dict__:
            self.__dict__["_validated"] = go.Figure(self._spec)
        return self.__dict__["_validated"]


_TYPED_ARRAYS = {"u": ("u1", np.uint8), "b": ("u1", np.uint8), "i": ("i4", np.int32), "f": ("f4", np.float32)}


def _typed(value):
    """`value` with every 1-D or 2-D numeric numpy array as a plotly.js typed-array spec, other arrays as lists."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_typed(item) for item in value]
    if not isinstance(value, np.ndarray):
        return value
    if value.ndim > 2 or value.dtype.kind not in _TYPED_ARRAYS or (value.dtype.kind in "ui" and value.dtype != np.uint8
                                                                   and abs(value).max(initial=0) >= 2 ** 31):
        return value.tolist()
    code, dtype = _TYPED_ARRAYS[value.dtype.kind] if value.dtype != np.uint8 else ("u1", np.uint8)
    array = np.ascontiguousarray(value, dtype=dtype)
    spec = {"dtype": code, "bdata": base64.b64encode(array.tobytes()).decode("ascii")}
    if array.ndim == 2:
        spec["shape"] = f"{array.shape[0]}, {array.shape[1]}"
    return spec


def _png(rgb: np.ndarray) -> str:
    """An (H, W, 3) uint8 image as a PNG data URI: an image trace's `source`, far lighter than its pixels as `z`."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _single_image(**more) -> dict:
    """Layout of one image panel: no axes, square pixels, row 0 at the top."""
    return dict(xaxis=dict(visible=False, constrain="domain"),
                yaxis=dict(visible=False, autorange="reversed", scaleanchor="x", constrain="domain"), **more)


def _rgb_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 from a grey or colour float image in [0, 1]."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8)


def feature_maps_figure(trace: NetworkTrace, layer_name: str, max_maps: int = 64, columns: int | None = None
                        ) -> go.Figure:
    """One layer's feature maps tiled left to right, top to bottom, each scaled to its own range; 4 a row up to
    16 maps (each map large enough to see), else 8. Hover shows the raw value.
    """
    info = trace.layer(layer_name)
    maps = trace.feature_maps[layer_name][:, :, :max_maps]
    height, width, count = maps.shape
    columns = max(1, min(columns or (4 if count <= 16 else 8), count))
    # 2-D float32 arrays travel base64-encoded; a 3-D customdata (map number too) would triple the JSON
    heatmap = dict(type="heatmap", z=mosaic(normalise_maps(maps), columns), customdata=mosaic(maps, columns),
                   colorscale=MAP_SCALE, showscale=False, hoverongaps=False,
                   hovertemplate="value %{customdata:.3f}<extra></extra>")
    total = trace.feature_maps[layer_name].shape[2]
    shown = f"{count} of {total}" if count < total else f"{count}"
    title = f"{layer_name} ({info.kind}): {shown} maps of {height}x{width}"
    # each map's filter number in its top-left corner: one text trace (annotations cost plotly.js far more)
    labels = dict(type="scatter", mode="text", x=np.arange(count) % columns * (width + 1) - 0.5,
                  y=np.arange(count) // columns * (height + 1) - 0.5, text=[str(c) for c in range(count)],
                  textposition="bottom right", textfont=MAP_NUMBER_FONT, hoverinfo="skip",
                  showlegend=False)
    return _image_figure([heatmap, labels], _single_image(), title, -(-count // columns), columns,
                         (height + 1) / (width + 1))


def network_overview_figure(trace: NetworkTrace, maps_per_layer: int = 6) -> go.Figure:
    """CNN Explainer's overview: the input, then a column of the first maps of every layer."""
    columns = [("input", trace.image)] + [(info.name, trace.feature_maps[info.name]) for info in trace.layers]
    data = []
    for i, (name, maps) in enumerate(columns):
        if name == "input" and maps.shape[2] == 3:
            data.append(dict(type="image", z=_rgb_uint8(maps), hoverinfo="skip", **_on(i)))
        else:
            column = mosaic(normalise_maps(maps[:, :, :maps_per_layer]), 1)
            data.append(dict(type="heatmap", z=column, colorscale=MAP_SCALE, showscale=False, hoverinfo="skip",
                             **_on(i)))
    layout = _panels([name for name, _ in columns], hgap=0.01)
    title = f"Predicted class {trace.predicted_class} ({trace.probabilities[trace.predicted_class]:.0%})"
    return _image_figure(data, layout, title, maps_per_layer, len(columns), extra=20)


def filters_figure(filters: FilterImages, channel: int | None = None, columns: int = 8) -> go.Figure:
    """The kernels, labelled by filter number: RGB for a colour input, else one input channel in blue-red."""
    n, k_h, k_w, c_in = filters.weights.shape
    columns = max(1, min(columns, n))
    as_rgb = c_in == 3 and channel is None
    channel = 0 if channel is None else channel
    if not 0 <= channel < c_in:
        raise ValueError(f"channel == {channel}, must be in 0..{c_in - 1}.")
    # a 2-pixel band above each row of tiles holds the filter numbers
    if as_rgb:
        planes = [mosaic(filters.images[..., i].transpose(1, 2, 0), columns, gap=2, fill=1.0) for i in range(3)]
        tiles = np.pad(np.stack(planes, axis=-1), ((2, 0), (0, 0), (0, 0)), constant_values=1.0)
        trace = dict(type="image", z=_rgb_uint8(tiles), hoverinfo="skip")
    else:
        weights = filters.weights[..., channel].transpose(1, 2, 0)
        tiles = np.pad(mosaic(weights, columns, gap=2), ((2, 0), (0, 0)), constant_values=np.nan)
        trace = dict(type="heatmap", z=tiles, colorscale=WEIGHT_SCALE, zmid=0, zmin=-filters.scale,
                     zmax=filters.scale, hovertemplate="weight %{z:.3f}<extra></extra>", hoverongaps=False,
                     colorbar=dict(title=dict(text="weight"), thickness=12))
    labels = [dict(x=c * (k_w + 2) + (k_w - 1) / 2, y=r * (k_h + 2) + 0.5, text=str(i), showarrow=False,
                   font=dict(size=10)) for i, (r, c) in enumerate(divmod(i, columns) for i in range(n))]
    what = "RGB" if as_rgb else (f"input channel {channel}" if c_in > 1 else "weights")
    return _image_figure([trace], _single_image(annotations=labels),
                         f"{filters.layer}: {n} filters of {k_h}x{k_w} ({what})", -(-n // columns), columns,
                         (k_h + 2) / (k_w + 2))


def weight_histograms_figure(histograms: Sequence[WeightHistogram], columns: int = 3) -> go.Figure:
    """One small histogram of kernel weights per layer."""
    columns = max(1, min(columns, len(histograms)))
    rows = max(1, -(-len(histograms) // columns))
    layout = _panels([f"{h.layer} ({h.size:,} weights)" for h in histograms], rows=rows, images=False,
                     hgap=0.06, vgap=0.3 / rows)
    data = []
    for i, h in enumerate(histograms):
        data.append(dict(type="bar", x=(h.edges[:-1] + h.edges[1:]) / 2, y=h.counts, width=np.diff(h.edges),
                         marker=dict(color=TRAIN_COLOUR), hovertemplate="%{x:.3f}: %{y}<extra></extra>", **_on(i)))
    fig = _layout(go.Figure(data=data, layout=layout), "Kernel weights of each layer", height=90 + 200 * rows)
    return fig.update_layout(margin=dict(b=30))


def conv_arithmetic_figure(arith: ConvArithmetic, channel: int = 0) -> go.Figure:
    """Input patch, kernel and their products for one input channel, with the numbers in the cells."""
    c_in = arith.patch.shape[2]
    if not 0 <= channel < c_in:
        raise ValueError(f"channel == {channel}, must be in 0..{c_in - 1}.")
    patch, kernel, products = (a[:, :, channel] for a in (arith.patch, arith.kernel, arith.products))
    patch_text = np.where(arith.padding_mask, "pad 0", np.char.mod("%.2f", patch))
    k_bound = float(max(np.abs(kernel).max(), 1e-12))
    p_bound = float(max(np.abs(products).max(), 1e-12))
    data = [
        dict(type="heatmap", z=patch, text=patch_text, texttemplate="%{text}", colorscale=MAP_SCALE,
             showscale=False, hoverinfo="skip", **_on(0)),
        dict(type="heatmap", z=kernel, texttemplate="%{z:.2f}", colorscale=WEIGHT_SCALE, zmid=0, zmin=-k_bound,
             zmax=k_bound, showscale=False, hoverinfo="skip", **_on(1)),
        dict(type="heatmap", z=products, texttemplate="%{z:.2f}", colorscale=WEIGHT_SCALE, zmid=0, zmin=-p_bound,
             zmax=p_bound, showscale=False, hoverinfo="skip", **_on(2)),
    ]
    layout = _panels(["input patch", f"kernel of filter {arith.filter_index}", "products"], hgap=0.06)
    part = f"channel {channel} of {c_in}: {float(products.sum()):.3f}; " if c_in > 1 else ""
    activation = f" -> {arith.activation} -> {arith.result:.3f}" if arith.activation != "linear" else ""
    title = (f"{arith.layer}[{arith.row}, {arith.col}, {arith.filter_index}]: {part}sum {arith.total:.3f} "
             f"+ bias {arith.bias:.3f} = {arith.pre_activation:.3f}{activation}")
    return _image_figure(data, layout, title, 1, 3, extra=30)


def conv_location_figure(trace: NetworkTrace, arith: ConvArithmetic, channel: int = 0) -> go.Figure:
    """Where `arith` happens: the convolution's input (one channel) with the kernel's window outlined, and the
    filter's output map with the chosen value outlined.

    Invisible markers sit on the output map's cells (heatmaps send no click selections, markers do): a click
    selects a cell, whose (x, y) are its (column, row).
    """
    source = trace.conv_inputs[arith.layer][:, :, channel]
    output = trace.feature_maps[arith.layer][:, :, arith.filter_index]
    k_h, k_w = arith.padding_mask.shape
    (top, left), (height, width) = arith.origin, output.shape
    rows, cols = np.indices(output.shape)
    data = [
        dict(type="heatmap", z=source, colorscale=MAP_SCALE, showscale=False,
             hovertemplate="row %{y}, column %{x}: %{z:.3f}<extra></extra>", **_on(0)),
        dict(type="heatmap", z=output, colorscale=MAP_SCALE, showscale=False, hoverinfo="skip", **_on(1)),
        dict(type="scatter", x=cols.ravel(), y=rows.ravel(), customdata=output.ravel(), mode="markers",
             marker=dict(symbol="square", size=max(4, int(0.45 * PLOT_WIDTH / max(width, height))), opacity=0),
             unselected=dict(marker=dict(opacity=0)), selected=dict(marker=dict(opacity=0.4, color="#ff7f0e")),
             hovertemplate="row %{y}, column %{x}: %{customdata:.3f}<extra>click for its arithmetic</extra>",
             **_on(1)),
    ]
    outline = dict(type="rect", line=dict(color="#ff7f0e", width=3))
    shapes = [dict(outline, xref="x", yref="y", x0=left - 0.5, x1=left + k_w - 0.5, y0=top - 0.5,
                   y1=top + k_h - 0.5),
              dict(outline, xref="x2", yref="y2", x0=arith.col - 0.5, x1=arith.col + 0.5, y0=arith.row - 0.5,
                   y1=arith.row + 0.5)]
    c_in = trace.conv_inputs[arith.layer].shape[2]
    what = f"channel {channel} of {c_in}" if c_in > 1 else "input"
    layout = _panels([f"{arith.layer}'s {what} ({source.shape[0]}x{source.shape[1]})",
                      f"filter {arith.filter_index}'s map ({height}x{width}): click a value"], hgap=0.08)
    # the map's axes fixed to its cells (autorange would pad for the markers): a click maps to a cell
    layout["xaxis2"].update(range=[-0.5, width - 0.5], autorange=False)
    layout["yaxis2"].update(range=[height - 0.5, -0.5], autorange=False)
    layout.update(shapes=shapes, clickmode="event+select", dragmode=False)
    title = f"Row {arith.row}, column {arith.col} of filter {arith.filter_index}: the {k_h}x{k_w} window it reads"
    return _image_figure(data, layout, title, 1, 2, extra=30)


def attributions_figure(image: np.ndarray, attributions: Sequence[Attribution], alpha: float = 0.7) -> go.Figure:
    """The input, then each attribution map laid over it, side by side (hover shows the map's value)."""
    pictures = [_rgb_uint8(image)] + [_rgb_uint8(overlay(image, a.map, alpha)) for a in attributions]
    data = [dict(type="image", source=_png(picture), hoverinfo="skip", **_on(i)) for i, picture in enumerate(pictures)]
    titles = ["input"] + [a.method + (f" ({a.layer})" if a.layer else "") for a in attributions]
    first = attributions[0]
    title = f"Class {first.class_index} ({first.probability:.0%}): which pixels raised its {first.score_kind}"
    return _image_figure(data, _panels(titles), title, 1, len(titles), extra=30)


def confusion_at_epoch_figure(over: ConfusionOverEpochs, epoch: int, class_names: Sequence[str],
                              normalized: bool = False) -> go.Figure:
    """The fixed validation subset's confusion matrix as it was after `epoch` (clickable cells)."""
    counts = over.at(epoch)
    matrix = counts
    if normalized:
        totals = counts.sum(axis=1, keepdims=True)
        matrix = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float), where=totals > 0)
    fig = confusion_heatmap(matrix, class_names, normalized)
    return fig.update_layout(title=f"Confusion matrix after epoch {epoch} ({int(counts.sum()):,} validation images)")


BETTER_WORSE_SCALE = get_colorscale("RdBu")  # worse red, no change white, better blue (safe for red-green blindness)


def confusion_change_figure(over: ConfusionOverEpochs, a: int, b: int, class_names: Sequence[str]) -> go.Figure:
    """Epoch b's counts minus epoch a's, each cell written as its change (+3, -2) and coloured by what it means:
    blue where the model got better (more images on the diagonal, fewer mistakes off it), red where worse."""
    diff = over.at(b) - over.at(a)
    better = over.improvement(a, b)
    names = [str(n) for n in class_names]
    bound = max(int(np.abs(diff).max()), 1)
    text = [[f"{value:+d}" if value else "0" for value in row] for row in diff.tolist()]
    layout = dict(yaxis=dict(autorange="reversed", title=dict(text="true class"), type="category"),
                  xaxis=dict(title=dict(text="predicted class"), type="category"))
    heatmap = dict(type="heatmap", z=better, x=names, y=names, text=text, texttemplate="%{text}",
                   colorscale=BETTER_WORSE_SCALE, zmid=0, zmin=-bound, zmax=bound,
                   colorbar=dict(title=dict(text="the change is"), tickvals=[-bound, 0, bound],
                                 ticktext=["worse", "nothing", "better"], thickness=14, len=0.8),
                   hovertemplate="true %{y}, predicted %{x}: %{text} images<extra></extra>")
    return _layout(go.Figure(data=[heatmap], layout=layout),
                   f"Change from epoch {a} to epoch {b}: blue better, red worse", height=480)


def embedding_figure(embedding: Embedding, class_names: Sequence[str]) -> go.Figure:
    """One WebGL trace per class; misclassified images are crosses; customdata[0] is the image index."""
    data = []
    for cls, name in enumerate(class_names):
        rows = np.flatnonzero(embedding.labels == cls)
        if not rows.size:
            continue
        rows = rows[np.argsort(embedding.predicted[rows] != cls, kind="stable")]  # the legend shows the first marker
        wrong = embedding.predicted[rows] != cls
        data.append(dict(
            type="scattergl", x=embedding.points[rows, 0], y=embedding.points[rows, 1], mode="markers",
            name=str(name), customdata=np.column_stack([embedding.indices[rows], embedding.predicted[rows]]),
            marker=dict(color=CLASS_COLOURS[cls % len(CLASS_COLOURS)], size=np.where(wrong, 8, 5), opacity=0.75,
                        symbol=np.where(wrong, "x", "circle")),
            hovertemplate=f"image %{{customdata[0]}}<br>true {name}, predicted class %{{customdata[1]}}<extra></extra>",
        ))
    if embedding.method == "pca" and embedding.explained_variance:
        v1, v2 = embedding.explained_variance
        axes = dict(xaxis=dict(title=dict(text=f"PC 1 ({v1:.0%} of variance)")),
                    yaxis=dict(title=dict(text=f"PC 2 ({v2:.0%} of variance)")))
    else:
        axes = dict(xaxis=dict(title=dict(text="t-SNE 1"), showticklabels=False),
                    yaxis=dict(title=dict(text="t-SNE 2"), showticklabels=False))
    method = "PCA" if embedding.method == "pca" else "t-SNE"
    title = f"{len(embedding.indices):,} images by their {embedding.feature_layer} activations ({method})"
    return _layout(go.Figure(data=data, layout=dict(axes, clickmode="event+select", dragmode="lasso")), title,
                   height=520)


def attribution_figure(image: np.ndarray, attribution: Attribution, alpha: float = 0.6) -> go.Figure:
    """The input, the attribution map and the map laid over the input."""
    data = [
        dict(type="image", z=_rgb_uint8(image), hoverinfo="skip", **_on(0)),
        dict(type="heatmap", z=attribution.map, colorscale=HEAT_SCALE, zmin=0, zmax=1, showscale=False,
             hovertemplate="%{z:.2f}<extra></extra>", **_on(1)),
        dict(type="image", z=_rgb_uint8(overlay(image, attribution.map, alpha)), hoverinfo="skip", **_on(2)),
    ]
    layout = _panels(["input", attribution.method, "overlay"])
    title = f"Class {attribution.class_index} ({attribution.probability:.0%}): what raised its {attribution.score_kind}"
    return _image_figure(data, layout, title, 1, 3, extra=30)
