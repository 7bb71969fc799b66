"""Each idea the Inside page shows, explained in a sentence or two (plain text, read-only)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

EXPLANATIONS: Mapping[str, str] = MappingProxyType({
    "convolution": "A convolution slides a small grid of learned weights (a filter) over the image; at each "
    "position it multiplies the pixels under the filter by the weights and adds them up, plus a bias. "
    "The result is a feature map that is bright wherever the image looks like the filter.",
    "batch norm": "Batch normalisation rescales each feature map to a steady mean and spread learned during "
    "training, which makes the network train faster and more reliably.",
    "activation": "The activation function bends each value: ReLU keeps positive values and turns negative "
    "ones into 0, so only the places where a filter matched stay lit.",
    "pooling": "Pooling shrinks each feature map by keeping the largest (max) or the mean (average) value of "
    "every small window: the map gets coarser, cheaper to process, and less sensitive to small shifts.",
    "flatten": "Flatten lays every value of the last feature maps out in one long list, so ordinary dense "
    "layers can combine them.",
    "dense": "A dense layer multiplies every input by its own weight and adds them up, once per unit: each "
    "unit learns a combination of the features found so far.",
    "softmax": "Softmax turns the output layer's scores into probabilities: all positive, adding up to 1, "
    "the highest score getting the highest probability.",
    "filters": "The filters of the first convolution are small images the network learned: the patterns "
    "(edges, strokes, blobs) it looks for. All share one scale: red weights add, blue weights subtract, white "
    "is 0 (in colour, and on the Training page, mid-grey is 0).",
    "arithmetic": "Each value of a convolution's feature map is the input values under the filter, each "
    "multiplied by the filter's weight at that place, all added up, plus the filter's bias. With several input "
    "channels the sum runs over all of them. It starts where the filter's map is strongest; click the map, or "
    "change the row and column, to compute another value.",
    "weights": "A histogram of each layer's weights: training spreads them out from their random start; "
    "weights that stay near 0 do little.",
    "saliency": "A saliency map shows which pixels would change the class score most if they changed a "
    "little (the gradient of the score with respect to each pixel): bright pixels matter most.",
    "gradient x input": "Gradient times input weighs each pixel's gradient by the pixel's own value, so it "
    "highlights the ink that actually pushed the score, not blank paper that merely could have.",
    "grad-cam": "Grad-CAM weighs the last convolution's feature maps by how much each one raises the "
    "class score, adds them up and keeps the positive part: a coarse map of where the network looked. "
    "It is only as sharp as those maps, and on batch-normalised MNIST models it is often very coarse.",
    "embedding": "Each image becomes the list of numbers the last hidden layer computes for it; projecting "
    "those lists onto a flat plane (PCA or t-SNE) shows which images the network thinks are alike. "
    "Classes that form separate clusters are easy for the output layer to tell apart.",
    "confusion over epochs": "The same fixed set of validation images (at most 1,000) classified after every "
    "epoch: watch the counts gather on the diagonal as the network learns, and see which confusions last.",
})
