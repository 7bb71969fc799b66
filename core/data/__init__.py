"""Stage 1: load and preprocess the images.

    dataset.py   Dataset and DatasetRef (how to load it again), checks of raw arrays, the lab's scaling
    registry.py  built-in datasets by name, local files by path, a run's dataset from its reference
    files.py     readers for .npz, IDX and CIFAR files, checked from their headers
    archives.py  the one zip reader, with a budget for each kind of zip
    download.py  Keras' cache, hash-checked downloads, knowing when there is no network
    folders.py   a folder or zip of class folders as a dataset
    pictures.py  the one picture decoder, and a picture as a dataset made of image files holds it
    drawing.py   a drawing (or a photo of a digit) as MNIST-style input; how any picture reaches a model
    splits.py    the validation hold-out, the stratified split, fixed subsets
    stats.py     what the Data page shows: class counts, pixel statistics, class means
"""
