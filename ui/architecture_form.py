"""The Architecture page's sliders, bound to session state.

The edited `Architecture` is kept in session state; the widgets are
(re)initialised from it, so a preset can fill them and a page switch does
not lose them. Augmentation is part of the architecture (layers after the
input) but a choice about the data: a preset keeps it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from core.errors import ConvLabError
from core.model.architecture import ACTIVATIONS, PADDINGS, POOLINGS, PRESETS, Architecture, ConvBlock, DenseLayer
from core.model.augment import ROTATION_MAX, SHIFT_MAX, ZOOM_MAX, Augmentation, augment_samples, digit_warning
from ui import state
from ui.widgets import choices_with, image_grid, show_error, upper

if TYPE_CHECKING:
    from core.data.dataset import Dataset

MAX_BLOCKS = 4
MAX_DENSE = 3
FILTER_CHOICES = (4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256)
UNIT_CHOICES = (8, 16, 32, 64, 100, 128, 256, 512, 1024)
KERNEL_CHOICES = (1, 2, 3, 5, 7)


KEYS = state.ArchitecturePage
PREVIEW_IMAGES, PREVIEW_COPIES = 4, 5


def _widget_values(arch: Architecture) -> dict[str, object]:
    values: dict[str, object] = {KEYS.BLOCKS: len(arch.conv_blocks), KEYS.DENSE: len(arch.dense_layers)}
    for i in range(max(MAX_BLOCKS, len(arch.conv_blocks))):
        block = arch.conv_blocks[i] if i < len(arch.conv_blocks) else ConvBlock(filters=min(32 * 2 ** i, 128))
        values.update({key: getattr(block, name) for name, key in KEYS.block(i).items()})
    for j in range(max(MAX_DENSE, len(arch.dense_layers))):
        layer = arch.dense_layers[j] if j < len(arch.dense_layers) else DenseLayer(units=128)
        values.update({key: getattr(layer, name) for name, key in KEYS.dense(j).items()})
    aug = arch.augmentation
    values.update({KEYS.AUGMENT[name]: getattr(aug, name) for name in ("horizontal_flip", "vertical_flip")})
    values.update({KEYS.AUGMENT[name]: float(getattr(aug, name)) for name in ("rotation", "zoom", "shift")})
    return values


def load_into_widgets(arch: Architecture, overwrite: bool) -> None:
    """Put `arch` into the widgets' session-state slots (all of them, or only the missing ones)."""
    for key, value in _widget_values(arch).items():
        if overwrite or key not in st.session_state:
            st.session_state[key] = value


def apply_preset(name: str) -> None:
    """Button callback: fill every slider from a preset.

    A preset that comes with augmentation (`fast`) brings it; the others keep the augmentation chosen for
    the data (flips for leaves, say).
    """
    preset = PRESETS[name]
    kept = st.session_state[state.ARCHITECTURE].augmentation
    arch = preset if preset.augmentation.enabled else replace(preset, augmentation=kept)
    st.session_state[state.ARCHITECTURE] = arch
    load_into_widgets(arch, overwrite=True)


def _name_for(arch: Architecture) -> str:
    for preset in PRESETS.values():
        if (preset.conv_blocks, preset.dense_layers) == (arch.conv_blocks, arch.dense_layers):
            return preset.name
    return "custom_cnn"


def _grid(count: int, per_row: int = 2) -> list:
    """`count` cells, `per_row` columns a row."""
    cells = []
    for start in range(0, count, per_row):
        cells.extend(st.columns(per_row)[: count - start])
    return cells


def architecture_form() -> Architecture:
    """Draw the sliders and return the Architecture they describe (also saved in session state)."""
    load_into_widgets(st.session_state[state.ARCHITECTURE], overwrite=False)
    n_blocks = st.slider("Convolution blocks", 1, int(upper(MAX_BLOCKS, KEYS.BLOCKS)), key=KEYS.BLOCKS)
    blocks = []
    for i, column in enumerate(_grid(n_blocks)):
        keys = KEYS.block(i)
        with column.container(border=True):
            st.markdown(f"**Conv block {i + 1}**")
            blocks.append(ConvBlock(
                filters=st.select_slider("Filters", choices_with(FILTER_CHOICES, keys["filters"]), key=keys["filters"]),
                kernel_size=st.select_slider("Kernel size", choices_with(KERNEL_CHOICES, keys["kernel_size"]),
                                             key=keys["kernel_size"],
                                             format_func=lambda k: f"{k}x{k}"),
                activation=st.selectbox("Activation", ACTIVATIONS, key=keys["activation"]),
                pooling=st.selectbox("Pooling (2x2)", POOLINGS, key=keys["pooling"]),
                padding=st.selectbox("Padding", PADDINGS, key=keys["padding"]),
                batch_norm=st.checkbox("Batch normalisation", key=keys["batch_norm"]),
                dropout=st.slider("Dropout", 0.0, upper(0.7, keys["dropout"]), step=0.05, key=keys["dropout"]),
            ))
    n_dense = st.slider("Dense layers before the softmax output", 0, int(upper(MAX_DENSE, KEYS.DENSE)),
                        key=KEYS.DENSE)
    layers = []
    for j, column in enumerate(_grid(n_dense)):
        keys = KEYS.dense(j)
        with column.container(border=True):
            st.markdown(f"**Dense layer {j + 1}** (ReLU)")
            layers.append(DenseLayer(
                units=st.select_slider("Units", choices_with(UNIT_CHOICES, keys["units"]), key=keys["units"]),
                dropout=st.slider("Dropout", 0.0, upper(0.7, keys["dropout"]), step=0.05, key=keys["dropout"]),
            ))
    augmentation = augmentation_form(state.dataset())
    arch = Architecture(conv_blocks=tuple(blocks), dense_layers=tuple(layers), augmentation=augmentation)
    arch = replace(arch, name=_name_for(arch))
    st.session_state[state.ARCHITECTURE] = arch
    return arch


def is_digits(dataset: "Dataset | None") -> bool:
    """Handwritten digits, or images whose classes are the ten digits (your own digit folders)."""
    return dataset is not None and (dataset.handwritten_digits or dataset.class_names == tuple("0123456789"))


def augmentation_form(dataset: "Dataset | None") -> Augmentation:
    """The Augmentation box: flips, rotation, zoom, shift; a preview of a few training images augmented."""
    keys = KEYS.AUGMENT
    with st.container(border=True):
        st.markdown("**Augmentation** (training only: random changes to each batch, none when predicting)")
        flips, amounts = st.columns([1, 2])
        horizontal = flips.checkbox("Flip left-right", key=keys["horizontal_flip"])
        vertical = flips.checkbox("Flip up-down", key=keys["vertical_flip"])
        rotation = amounts.slider("Rotation (fraction of a turn, either way)", 0.0, ROTATION_MAX, step=0.01,
                                  key=keys["rotation"], help="0.05 is up to 18°.")
        zoom = amounts.slider("Zoom (in or out)", 0.0, ZOOM_MAX, step=0.05, key=keys["zoom"], format="%.2f")
        shift = amounts.slider("Shift (fraction of the size)", 0.0, SHIFT_MAX, step=0.05, key=keys["shift"],
                               format="%.2f")
        augmentation = Augmentation(horizontal_flip=horizontal, vertical_flip=vertical, rotation=float(rotation),
                                    zoom=float(zoom), shift=float(shift))
        if not augmentation.enabled:
            st.caption("Off. It helps small datasets of photos and shapes; presets keep what you choose here.")
            return augmentation
        warning = digit_warning(augmentation) if is_digits(dataset) else None
        if warning:
            st.warning(warning, icon=":material/warning:")
        if dataset is not None:
            show_augmented(dataset, augmentation)
    return augmentation


def show_augmented(dataset: "Dataset", augmentation: Augmentation) -> None:
    """A few training images, each beside random augmented copies (computed once per setting)."""
    key = (augmentation, dataset.name, dataset.ref, len(dataset.x_train))
    cached = st.session_state.get(KEYS.AUGMENT_PREVIEW)
    if cached is None or cached[0] != key:
        count = min(PREVIEW_IMAGES, len(dataset.x_train))
        picks = np.random.default_rng(0).choice(len(dataset.x_train), count, replace=False)
        originals = dataset.x_train[np.sort(picks)]
        try:
            with st.spinner("Augmenting a few training images…"):
                samples = augment_samples(originals, augmentation, copies=PREVIEW_COPIES)
        except ConvLabError as error:
            show_error(error)
            return
        cached = st.session_state[KEYS.AUGMENT_PREVIEW] = (key, (originals, samples))
    originals, samples = cached[1]
    images, captions = [], []
    for original, copies in zip(originals, samples):
        images += [original, *copies]
        captions += ["original", *[f"#{i + 1}" for i in range(len(copies))]]
    st.caption(f"{len(originals)} training images, each with {PREVIEW_COPIES} random augmented copies:")
    image_grid(images, captions, size=72, per_row=PREVIEW_COPIES + 1)
