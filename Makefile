# llama-variants: set up a machine, run the demo, test, lint.
PYTHON ?= python3
# pyproject.toml's requires-python: tarfile's data filter (builder/unpack.py) came with 3.11.4.
PYTHON_FLOOR := 3.11.4
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := git cmake ninja-build ccache pkg-config gcc g++ clang-19 libomp-19-dev \
                liburing-dev uftrace linux-perf fio libdmlc-dev libdlpack-dev clang-format-19 \
                redis-server shellcheck numactl libbpf-tools bpftrace strace
# The demo: a kernel patch series against the build it patches, measured in one interleaved run.
DEMO_BASE      := openmp-off-gcc
DEMO_CANDIDATE := futex-gcc
DEMO_REPORT    := report

.PHONY: setup python-floor demo test test-fast lint docs help clean

# Everything the builds and tests need: Debian packages, then this package in editable mode.
setup: python-floor
	@if command -v apt-get >/dev/null; then \
	    missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	    if [ -n "$$missing" ]; then \
	        echo "installing:" $$missing; \
	        $(SUDO) apt-get update -qq && \
	        DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	    fi; \
	else echo "no apt-get: install $(APT_PACKAGES) by hand (see: variant doctor)"; fi
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@# BPF profiles read a tracepoint (variant profile --tool bpf): tracefs, where a VM boots without it
	@if [ "$$(id -u)" = 0 ] && [ -d /sys/kernel/tracing ] && [ ! -d /sys/kernel/tracing/events ]; then \
	    mount -t tracefs nodev /sys/kernel/tracing && echo "mounted tracefs at /sys/kernel/tracing"; fi
	variant doctor

# Said before anything is installed, in words (pip would only say "requires a different Python").
python-floor:
	@$(PYTHON) -c 'import sys; floor = tuple(map(int, "$(PYTHON_FLOOR)".split("."))); \
	    sys.exit(None if sys.version_info >= floor else "llama-variants needs Python >= $(PYTHON_FLOOR) " \
	             f"(tarfile extraction filters); $(PYTHON) is {sys.version.split()[0]}: set PYTHON=...")'

# The main job on the embedded default: build the spin barrier (ggml's threadpool) and the same
# tree with the futex-yield-barrier series from the offline llama.cpp source, check that the
# patched build decodes exactly like its baseline, bench both interleaved (A B A B) at 2 threads
# and oversubscribed at 4, print the comparison and write the report with its plots.
demo: setup
	@echo "== 1/4 build: $(DEMO_BASE) (cold: several minutes on 2 cores), then $(DEMO_CANDIDATE) (a sibling, from ccache)"
	variant build --offline $(DEMO_BASE) $(DEMO_CANDIDATE)
	@echo "== 2/4 smoke: every binary runs; $(DEMO_CANDIDATE) must decode exactly like $(DEMO_BASE)"
	variant smoke $(DEMO_CANDIDATE) --baseline $(DEMO_BASE)
	@echo "== 3/4 bench: llama-bench prompt and generation tokens/s, interleaved, 3 repetitions"
	variant bench $(DEMO_CANDIDATE) --vs $(DEMO_BASE) --suite e2e --threads 2,4 --reps 3 --timeout 90
	@echo "== 4/4 report"
	variant report $(DEMO_BASE) $(DEMO_CANDIDATE) --out $(DEMO_REPORT)

# The whole suite, real llama.cpp builds included (they are marked slow; CI runs them).
test:
	$(PYTHON) -m pytest -q --durations=30

test-fast:
	$(PYTHON) -m pytest -q -m "not slow"

LINT_PATHS := builder tests benchmarks docs

lint:
	ruff check $(LINT_PATHS)
	ruff format --check $(LINT_PATHS)
	mypy

# The reference: docs/commands.md regenerated from the click commands (tests/test_docs.py fails when the
# committed one is stale), then the static site in site/, offline (mkdocs.yml: no theme asset from a CDN).
docs:
	$(PYTHON) docs/gen_commands.py
	$(PYTHON) -m mkdocs build --strict --quiet
	@echo "docs: site/index.html"

# For a contributor: what to run while working, fast to slow. The slow modules are listed as found.
help:
	@echo "llama-variants, while working on it (docs/contributing.md says more):"
	@echo "  make setup        once: the Debian packages, then pip install -e '.[dev]'"
	@echo "  make test-fast    the fast tests: real git, CMake, Ninja and gcc on a small fake upstream"
	@echo "  $(PYTHON) -m pytest -q -m 'not slow' tests/test_patches.py"
	@echo "                    the fast tests of one module"
	@echo "  the slow tests of one area (real llama.cpp and fork builds, minutes each):"
	@for f in $$(grep -l 'pytest.mark.slow' tests/test_*.py); do \
	    echo "    $(PYTHON) -m pytest -q -m slow $$f"; done
	@echo "    (add -k WORDS for some tests of one, e.g. -k wheel)"
	@echo "  make test         everything, slow tests included (what CI runs)"
	@echo "  make lint         ruff check, ruff format --check, mypy --strict ($(LINT_PATHS))"
	@echo "  make docs         regenerate docs/commands.md from the commands and build the site"

clean:
	rm -rf .variant dist site
