# Entry points, all idempotent: `make demo`, `make test` and `make docs`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: demo test docs install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo_long_tailed_digits.py

# The tests marked float_path (pins, trained accuracies, choices) run a second
# time on torch's scalar kernels: a result that holds on one processor's float
# path only fails here instead of on a user's machine; that run collects only
# the files that use the mark (collecting scikit-learn's checks alone costs
# each worker seconds). worksteal: an idle worker takes tests queued for the
# other, so a few long tests near the end do not leave one core idle. Both
# runs may write bytecode (to the ignored __pycache__), so the second one does
# not compile and assertion-rewrite every module again where the environment
# sets PYTHONDONTWRITEBYTECODE.
FLOAT_PATH_TESTS = $(shell grep -l float_path tests/test_*.py)
PYTEST := env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -n 2 --dist worksteal

test: $(STAMP)
	$(PYTEST) sklearn_clmle tests
	ATEN_CPU_CAPABILITY=default $(PYTEST) -m float_path $(FLOAT_PATH_TESTS)

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[docs]"
	touch $(DOCS_STAMP)

# Sphinx HTML in docs/_build/html, warnings as errors; runs the plot_* examples.
docs: $(DOCS_STAMP)
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) build *.egg-info docs/_build docs/generated docs/auto_examples
