# Each target creates/reuses .venv and reinstalls `-e .[dev]` only when pyproject.toml changed since the last install.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lab docs export clean-nbs browser

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

## make demo: train a standard and a robust model on the built-in lesions, write a saliency report to demo_out/
demo: $(STAMP)
	$(BIN)/robust-saliency compare --out demo_out --overwrite --eval-attack autoattack-fast

## make test: export check, nbdev-test over every notebook, pytest tests/, one closing line "N passed, N failed"
test: $(STAMP) browser
	$(BIN)/python tools/run_tests.py

## make lab: JupyterLab on nbs/ (as root, e.g. in a container, with --allow-root)
lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=nbs $(if $(filter 0,$(shell id -u)),--allow-root)

## make docs: the documentation site in _docs/ (nbdev-docs with Quarto on PATH; offline Sphinx render without it)
docs: $(STAMP)
	@if command -v quarto >/dev/null 2>&1; then $(BIN)/nbdev-docs; else $(BIN)/python tools/docs.py build; fi
	@echo "open _docs/index.html"

export: $(STAMP)
	$(BIN)/nbdev-export

clean-nbs: $(STAMP)
	$(BIN)/nbdev-clean

# Debian's chromium for the JupyterLab browser test (Playwright drives /usr/bin/chromium; it never downloads one).
browser:
	@command -v chromium >/dev/null 2>&1 || { (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "warning: could not install chromium; the browser test will fail"; }
