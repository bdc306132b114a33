# The two commands a newcomer needs (see README.md):
#   make demo   install everything, run the default scenario, write its dashboard
#   make test   install everything, run the whole test suite
# Both build their own virtual environment in .venv. torch==2.13.0 (the CPU build) is installed
# explicitly before the package so that no multi-GB CUDA build is ever pulled.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[profile,scale,test,live]'
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium for the dashboard rendering test, and iproute2 (ip, tc) for the live runtime's
# link shaping; the tests skip with a reason if either is absent.
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
	  ( [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) ) || \
	  echo "chromium could not be installed: the browser test will be skipped"
	@command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1 || \
	  ( [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq iproute2 >/dev/null) ) || \
	  echo "iproute2 could not be installed: the link-shaping tests will be skipped"

demo: $(STAMP)
	$(BIN)/dlora-sim run scenarios/paper-default.toml -o results/paper-default
	$(BIN)/dlora-sim dashboard results/paper-default -o dashboards/paper-default.html

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
