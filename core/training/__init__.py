"""Stage 3: train the CNN.

    config.py     the recipe (optimizer, learning rate, batch, epochs, split, seed) and its presets
    loop.py       one training in the calling thread (`train`)
    callbacks.py  Keras callbacks: metrics to a sink, the confusion matrix per epoch, the first layer's filters
    progress.py   what a training reports, to whom, and the history it leaves
"""
