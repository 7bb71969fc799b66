"""Streamlit-only helpers: session state, cached loaders, the sidebar, the canvas.

Everything that imports Streamlit lives here or in pages/; `core` never does.
"""
