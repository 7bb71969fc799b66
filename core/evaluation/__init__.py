"""Stage 4: estimate a trained model's performance on unseen test data, and classify single images.

    metrics.py    accuracy_score, loss, confusion matrix, per-class metrics, mistakes
    inference.py  fast single-image prediction for the canvas and pictures
"""
