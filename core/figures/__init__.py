"""Plotly figures for every stage (the canvas's probability bars as HTML).

    base.py        shared layout, colours and the light figure type that redraws cheaply
    data.py        class counts and pixel histograms
    training.py    training and validation curves, live and compared, and the first layer's filters
    evaluation.py  confusion matrix, confidence histogram, probability bars
    explain.py     inside the network: feature maps, filters, weights, arithmetic, attributions, embeddings
"""
