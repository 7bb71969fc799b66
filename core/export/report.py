"""The run report: one self-contained HTML file of a run, to keep, send or print.

`run_report(store, run_id)` gathers the run's settings, its dataset, the architecture's layer table, the
training curves, the test metrics, the confusion matrix, the per-class metrics, the most confident mistakes
(as images) and the library versions into one page. plotly.js is inlined once and the images are data URIs:
the file opens in a browser with no network. Everything that comes from a user (labels, file and class
names, messages) is HTML-escaped. The dataset is loaded again for the test labels and images; when it cannot
be, the report says so and shows what the run store alone holds.
"""

from __future__ import annotations

import base64
import html
import io
import time
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from core.errors import ConvLabError
from core.runs.store import RunStore

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from core.data.dataset import Dataset
    from core.evaluation.metrics import Evaluation

MISTAKES_SHOWN = 24
IMAGE_PX = 72

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330; margin: 0 auto;
       max-width: 1000px; padding: 24px; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; } h2 { font-size: 1.25rem; border-bottom: 1px solid #dde1e8;
     padding-bottom: 4px; margin-top: 2rem; }
.meta { color: #5b6375; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 0.5rem 0; }
th, td { border: 1px solid #dde1e8; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f5f9; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
.metrics { display: flex; gap: 16px; flex-wrap: wrap; }
.metric { border: 1px solid #dde1e8; border-radius: 6px; padding: 8px 14px; min-width: 130px; }
.metric .value { font-size: 1.5rem; font-weight: 600; } .metric .name { color: #5b6375; font-size: 0.85rem; }
.mistakes { display: flex; flex-wrap: wrap; gap: 10px; }
.mistakes figure { margin: 0; text-align: center; font-size: 0.75rem; width: 92px; }
.mistakes img { image-rendering: pixelated; border: 1px solid #dde1e8; }
.note { background: #fff6e0; border-left: 4px solid #f0b400; padding: 6px 10px; }
.plot { break-inside: avoid; }
@page { size: A4; margin: 14mm; }
@media print { body { max-width: none; padding: 0; } section { break-inside: avoid; } }
"""


def run_report(store: RunStore, run_id: str, dataset: "Dataset | None" = None) -> str:
    """The report of run `run_id` as one HTML page (`dataset`: the run's, when the caller has it loaded)."""
    import plotly.offline

    from core.figures.training import history_curves
    from core.runs.spec import library_versions

    spec = store.spec(run_id)
    spec_file = store.spec_file(run_id)
    details = spec_file.get("details") if isinstance(spec_file.get("details"), dict) else {}
    status = store.status(run_id)
    snapshot = store.reader(run_id).snapshot()
    test = store.test_metrics(run_id)
    problem = ""
    if dataset is None:
        try:
            from core.data.registry import load_ref

            dataset = load_ref(spec.dataset, store.stored_dataset_path)
        except ConvLabError as error:
            problem = f"The run's dataset cannot be loaded again ({error}): the sections that need its test images " \
                      "are left out."
    evaluation = _evaluation(store, run_id, dataset) if dataset is not None else None
    label = spec.label or snapshot.label or run_id
    created = float(spec_file.get("created") or status.created or 0)
    sections = [
        f"<h1>{_e(label)}</h1>",
        f"<p class='meta'>ConvLab run <code>{_e(run_id)}</code> · {_e(status.state.value)}: {_e(status.message)} · "
        f"made {_e(time.strftime('%Y-%m-%d %H:%M', time.localtime(created)))} · report written "
        f"{_e(time.strftime('%Y-%m-%d %H:%M'))}</p>",
        f"<p class='note'>{_e(problem)}</p>" if problem else "",
        _summary(test, snapshot.history(), status.training_s, evaluation),
        _settings(spec),
        _dataset(spec, details, dataset),
        _architecture(store, run_id, spec, details, dataset),
    ]
    history = snapshot.history()
    if history:
        sections.append("<section><h2>Training and validation curves</h2>"
                        + _plot(history_curves(history, title="")) +
                        "<p>Training accuracy far above validation accuracy means over-fitting; curves still "
                        "climbing at the last epoch mean more epochs would help.</p></section>")
    if evaluation is not None:
        sections += [_confusion(evaluation), _per_class(evaluation), _mistakes(evaluation, dataset),
                     _confidence(evaluation)]
    sections.append(_versions(spec_file.get("versions"), library_versions()))
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{_e(label)} · ConvLab run report</title><style>{_STYLE}</style>"
            f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script></head><body>\n"
            + "\n".join(section for section in sections if section) + "\n</body></html>\n")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "<p>None.</p>"
    head = "".join(f"<th>{_e(key)}</th>" for key in rows[0])
    body = "".join("<tr>" + "".join(_cell(value) for value in row.values()) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"<td>{_e(value)}</td>"
    text = f"{value:,}" if isinstance(value, int) else f"{value:.4g}"
    return f"<td class='number'>{text}</td>"


def _plot(figure: "go.Figure") -> str:
    import plotly.io

    return "<div class='plot'>" + plotly.io.to_html(figure, full_html=False, include_plotlyjs=False,
                                                    config={"displaylogo": False, "responsive": True}) + "</div>"


def _evaluation(store: RunStore, run_id: str, dataset: "Dataset") -> "Evaluation | None":
    """The test-set evaluation from the probabilities the run kept (or its model, when it kept none)."""
    from core.evaluation.metrics import Evaluation, evaluate

    probabilities = store.test_probabilities(run_id)
    if probabilities is not None and probabilities.shape == (len(dataset.y_test), dataset.num_classes):
        return Evaluation(probabilities, np.asarray(dataset.y_test), dataset.class_names)
    if not store.has_model(run_id) or store.status(run_id).state.is_active:
        return None
    from core.model.files import load_model_file

    return evaluate(load_model_file(store.model_path(run_id)), dataset.x_test, dataset.y_test, dataset.class_names)


def _metric(name: str, value: str) -> str:
    return f"<div class='metric'><div class='value'>{_e(value)}</div><div class='name'>{_e(name)}</div></div>"


def _summary(test: dict | None, history: dict[str, list[float]], training_s: float | None,
             evaluation: "Evaluation | None") -> str:
    accuracy = evaluation.accuracy if evaluation is not None else (test or {}).get("accuracy")
    loss = evaluation.loss if evaluation is not None else (test or {}).get("loss")
    parts = [_metric("test accuracy (accuracy_score)", "—" if accuracy is None else f"{accuracy:.2%}"),
             _metric("test loss", "—" if loss is None else f"{loss:.4f}")]
    if history.get("val_accuracy"):
        parts.append(_metric("best validation accuracy", f"{max(history['val_accuracy']):.2%}"))
    parts.append(_metric("epochs trained", str(len(history.get("loss", [])))))
    if training_s:
        parts.append(_metric("training time", f"{training_s:.1f} s"))
    if evaluation is not None:
        parts.append(_metric("test images", f"{len(evaluation.y_true):,}"))
        parts.append(_metric("mistakes", f"{int((~evaluation.correct).sum()):,}"))
    return "<section><h2>Results on the test set</h2><div class='metrics'>" + "".join(parts) + "</div></section>"


def _settings(spec) -> str:
    recipe = f"<p>{_e(spec.training.describe())}</p>" if spec.training is not None else \
        "<p>An uploaded model: ConvLab did not train it.</p>"
    rows = [{"setting": key, "value": value} for key, value in spec.settings().items()]
    return f"<section><h2>Settings</h2>{recipe}{_table(rows)}</section>"


def _dataset(spec, details: dict, dataset: "Dataset | None") -> str:
    rows = [{"": "dataset", "value": details.get("dataset_name") or spec.dataset.describe()},
            {"": "source", "value": details.get("data_source") or (dataset.source if dataset else "")}]
    if dataset is not None:
        h, w, c = dataset.input_shape
        rows += [{"": "images", "value": f"{len(dataset.x_train):,} train / {len(dataset.x_test):,} test, "
                                         f"{h}x{w}x{c}"},
                 {"": "classes", "value": ", ".join(dataset.class_names)},
                 {"": "preprocessing", "value": "pixels scaled from 0..255 to [0, 1] (float32), channel axis added"}]
    return f"<section><h2>Dataset</h2>{_table(rows)}</section>"


def _architecture(store: RunStore, run_id: str, spec, details: dict, dataset: "Dataset | None") -> str:
    from core.model.architecture import layer_table

    shape = tuple(details.get("input_shape") or (dataset.input_shape if dataset is not None else ()))
    classes = details.get("num_classes") or (dataset.num_classes if dataset is not None else None)
    if spec.architecture is not None and len(shape) == 3 and classes:
        table = layer_table(spec.architecture, shape, int(classes))
        return (f"<section><h2>Architecture: {_e(spec.architecture.name)}</h2>{_table(table.as_records())}"
                f"<p>Total parameters: {table.total_params:,}.</p></section>")
    if not store.has_model(run_id):
        return ""
    from core.model.files import load_model_file

    model = load_model_file(store.model_path(run_id))
    rows = [{"layer": layer.name, "type": type(layer).__name__,
             "output shape": _output_shape(layer),
             "parameters": int(layer.count_params())} for layer in model.layers]
    return (f"<section><h2>Architecture: {_e(model.name)} (uploaded)</h2>{_table(rows)}"
            f"<p>Total parameters: {int(model.count_params()):,}.</p></section>")


def _output_shape(layer) -> str:
    try:
        return "(" + ", ".join(str(d) for d in layer.output.shape[1:]) + ")"
    except (AttributeError, ValueError):  # a layer used more than once, or never
        return ""


def _confusion(evaluation: "Evaluation") -> str:
    from core.figures.evaluation import confusion_heatmap

    figure = confusion_heatmap(evaluation.confusion(), evaluation.class_names, normalized=False)
    figure.data = figure.data[:1]  # the page's invisible click targets have no use here
    figure.update_layout(clickmode="none", title="")
    return ("<section><h2>Confusion matrix</h2>" + _plot(figure)
            + "<p>Row: the true class; column: the class predicted. The diagonal holds the right answers.</p>"
            "</section>")


def _per_class(evaluation: "Evaluation") -> str:
    return "<section><h2>Per-class precision, recall and F1</h2>" + _table(evaluation.per_class()) + "</section>"


def _png_uri(image: np.ndarray) -> str:
    from PIL import Image

    pixels = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    picture = Image.fromarray(np.rint(pixels * 255).astype(np.uint8))
    scale = max(1, IMAGE_PX // max(picture.size))
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _mistakes(evaluation: "Evaluation", dataset: "Dataset") -> str:
    wrong = evaluation.misclassified(limit=MISTAKES_SHOWN)
    if not len(wrong):
        return "<section><h2>The most confident mistakes</h2><p>No mistakes on the test set.</p></section>"
    names = evaluation.class_names
    figures = []
    for index in wrong:
        caption = (f"{names[evaluation.y_true[index]]} → {names[evaluation.y_pred[index]]} "
                   f"({evaluation.confidence[index]:.0%})")
        figures.append(f"<figure><img src='{_png_uri(dataset.x_test[index])}' alt='{_e(caption)}'>"
                       f"<figcaption>{_e(caption)}</figcaption></figure>")
    return ("<section><h2>The most confident mistakes</h2><p>True class → predicted class (confidence), the "
            f"{len(wrong)} test images the model got wrong most confidently.</p><div class='mistakes'>"
            + "".join(figures) + "</div></section>")


def _confidence(evaluation: "Evaluation") -> str:
    from core.figures.evaluation import confidence_histogram

    return "<section><h2>Confidence</h2>" + _plot(confidence_histogram(evaluation.confidence,
                                                                        evaluation.correct)) + "</section>"


def _versions(run_versions: object, here: dict[str, str]) -> str:
    run_versions = run_versions if isinstance(run_versions, dict) else {}
    names = list(dict.fromkeys([*run_versions, *here]))
    rows = [{"library": name, "the run": run_versions.get(name, "—"), "this report": here.get(name, "—")}
            for name in names]
    return f"<section><h2>Library versions</h2>{_table(rows)}</section>"
