"""Inside the network: what a trained CNN computes, as plain records the views render.

    network.py    one forward pass as a NetworkTrace: feature maps, convolution arithmetic, filters, attributions
    embedding.py  the penultimate features of test images, projected to 2-D
    confusion.py  the confusion matrix over epochs
    images.py     display helpers: heat colours, overlays, mosaics, filter images
    glossary.py   each idea in a sentence or two, for the Inside page
"""
