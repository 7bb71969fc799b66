"""Stage 2: define the CNN.

    architecture.py  the architecture as plain data: checks, layer table, presets, JSON
    augment.py       data augmentation as Keras layers at the model's front
    build.py         the architecture as a Keras model
    files.py         loading .keras files safely; checking an uploaded one
"""
