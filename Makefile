# llama-variants: set up a machine, run the demo, test, lint.
PYTHON ?= python3
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := git cmake ninja-build ccache pkg-config gcc g++ clang-19 libomp-19-dev \
                liburing-dev uftrace linux-perf fio
DEMO_VARIANTS := upstream-gcc openmp-off-gcc

.PHONY: setup demo test test-fast lint clean

# Everything the builds and tests need: Debian packages, then this package in editable mode.
setup:
	@if command -v apt-get >/dev/null; then \
	    missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	    if [ -n "$$missing" ]; then \
	        echo "installing:" $$missing; \
	        $(SUDO) apt-get update -qq && \
	        DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	    fi; \
	else echo "no apt-get: install $(APT_PACKAGES) by hand (see: variant doctor)"; fi
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[dev]'
	variant doctor

# The main job on the embedded default: two variants from the offline llama.cpp source.
demo: setup
	variant build --offline $(DEMO_VARIANTS)
	variant list
	@for v in $(DEMO_VARIANTS); do echo "== dist/$$v/manifest.json"; cat dist/$$v/manifest.json; done

# The whole suite, real llama.cpp builds included (they are marked slow; CI runs them).
test:
	$(PYTHON) -m pytest -q

test-fast:
	$(PYTHON) -m pytest -q -m "not slow"

lint:
	ruff check builder tests benchmarks
	ruff format --check builder tests benchmarks
	mypy

clean:
	rm -rf .variant dist
