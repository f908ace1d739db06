"""The HyperThumb web app's page: one module per tab, the browser sessions' files and the errors.

The app calls the `hyperthumb` library and formats what it returns; the library never imports it.
`app.py` builds the page from these modules (`build_demo`) and serves it (`launch`).
"""
