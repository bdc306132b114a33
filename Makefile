# The two commands a newcomer needs (see README.md):
#   make demo   install everything, run the default scenario, write its dashboard
#   make test   install everything, run the whole test suite
# Both build their own virtual environment in .venv. torch==2.13.0 (the CPU build) is installed
# explicitly before the package so that no multi-GB CUDA build is ever pulled.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install system clean

# pip prints a line per package it collects (no --quiet): the two installs take minutes, and a
# silent terminal looks hung.
$(STAMP): pyproject.toml
	@echo "[1/4] creating the virtual environment $(VENV)"
	$(PYTHON) -m venv $(VENV)
	@echo "[2/4] upgrading pip"
	$(BIN)/pip install --quiet --upgrade pip
	@echo "[3/4] installing torch==2.13.0, the CPU build (a download of a few hundred MB; minutes)"
	$(BIN)/pip install --progress-bar off torch==2.13.0
	@echo "[4/4] installing dlora-sim with its extras profile, scale, test, live (minutes)"
	$(BIN)/pip install --progress-bar off -e '.[profile,scale,test,live]'
	touch $(STAMP)
	@echo "installed: $(BIN)/dlora-sim"

install: $(STAMP)

# Debian packages the suite uses: headless Chromium for the dashboard rendering test, iproute2
# (ip, tc) for the live runtime's link shaping, WordNet 3.0 for the task-rebuild test. Installed
# when root (CI), waiting for the dpkg lock; without them those tests skip, and under CI=true fail.
SYSTEM_PACKAGES := chromium chromium-driver iproute2 wordnet-base
system:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v tc >/dev/null \
	    && [ -f /usr/share/wordnet/data.noun ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing $(SYSTEM_PACKAGES) (apt-get)"; \
	  apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	else echo "not root: $(SYSTEM_PACKAGES) not installed; the tests that need them will be skipped (under CI=true: fail)"; fi

demo: $(STAMP)
	$(BIN)/dlora-sim run scenarios/paper-default.toml -o results/paper-default
	$(BIN)/dlora-sim dashboard results/paper-default -o dashboards/paper-default.html

# -rs lists every skipped test with its reason (pytest -q alone shows an "s" and a count); under
# CI=true tests/conftest.py turns any skip into a failed run, so a green CI ran every test.
test: $(STAMP) system
	$(BIN)/python -m pytest -q -rs

clean:
	rm -rf $(VENV) .pytest_cache
