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

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[profile,scale,test,live]'
	touch $(STAMP)

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
	else echo "not root: $(SYSTEM_PACKAGES) not installed; the tests that need them will be skipped"; fi

demo: $(STAMP)
	$(BIN)/dlora-sim run scenarios/paper-default.toml -o results/paper-default
	$(BIN)/dlora-sim dashboard results/paper-default -o dashboards/paper-default.html

test: $(STAMP) system
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
