"""Sphinx configuration of the admmnn API reference (``make docs``).

The pages are built from the numpydoc docstrings by autodoc + napoleon; nothing is
fetched from the network (no intersphinx), so the build works offline.
"""
import os
import sys

sys.path.insert(0, os.path.abspath(".."))  # this checkout's admmnn, not an installed one

import admmnn  # noqa: E402

project = "admmnn"
author = "the admmnn authors"
copyright = "admmnn authors"
version = release = admmnn.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc sections carry the types
autodoc_default_options = {"show-inheritance": True}
# scikit-learn's inherited methods (get_params, set_params, ...) are documented there
autodoc_inherit_docstrings = True

exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = []
