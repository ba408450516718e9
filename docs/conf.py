"""Sphinx configuration: ``make docs`` builds the HTML with warnings as errors."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The gallery runs the examples in this process: one torch thread each, a
# non-interactive matplotlib backend.
os.environ.setdefault("MPLBACKEND", "Agg")

import sklearn_clmle  # noqa: E402

project = "sklearn-clmle"
author = "sklearn-clmle contributors"
copyright = "sklearn-clmle contributors; BSD-3-Clause"
release = version = sklearn_clmle.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# The Markdown pages use $...$ / $$...$$ maths and link to each other as
# `name.md`; myst turns such links into cross-references.
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# API reference: one page per public name, taken from each module's __all__.
autosummary_generate = True
autosummary_ignore_module_all = False
autosummary_imported_members = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-clmle {release}"
html_theme_options = {"navigation_with_keys": False}

# The examples: only plot_*.py run; the dask example needs `distributed` and
# starts worker processes, so it is shown un-run, like the demo script.
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_(?!grid_search_dask)",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "reset_modules": ("matplotlib", "seaborn"),
    "remove_config_comments": True,
}


def _skip_foreign_members(app, what, name, obj, skip, options):
    # Document the methods this package writes; those inherited from
    # scikit-learn (get_params, set_output, metadata routing, ...) and torch
    # (Module.train, hooks, ...) are documented by those projects.
    if what == "class" and not skip:
        module = getattr(obj, "__module__", None) or ""
        if callable(obj) and not module.startswith("sklearn_clmle"):
            return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
