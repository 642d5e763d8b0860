# The two commands a newcomer needs: `make example` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACKHOP := $(VENV)/bin/stackhop

.PHONY: example test bench clean

# The example needs stackhop's base and scikit-learn only; the suite needs every SDK, moto, kfp ...
$(VENV)/.installed-examples: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[examples]'
	touch $@

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-examples

example: $(VENV)/.installed-examples
	$(STACKHOP) run examples/training_pipeline.py
	$(STACKHOP) run examples/training_pipeline.py -p min_accuracy=0.999
	@echo "Runs: $(STACKHOP) runs list    Details: $(STACKHOP) runs show <run id>"

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .stackhop compiled
