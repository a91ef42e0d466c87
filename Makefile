# hooknb: two commands on a fresh Debian machine (as root): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES ?= prosody
SERVER ?= prosody

.PHONY: setup demo test unit test-ejabberd bench docs notebooks clean

$(STAMP): pyproject.toml
	@command -v prosody >/dev/null || { echo "installing Prosody (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) -m hooknb.frontends.demo

# The browser test: JupyterLab and Playwright from PyPI, Debian's Chromium (no browser download).
$(VENV)/.installed-browser: $(STAMP)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  echo "installing Chromium (apt-get)"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }
	$(PY) -m pip install -q -e '.[test,browser]'
	@touch $@

test: setup $(VENV)/.installed-browser
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

# The unit layer alone: no server, no network, no kernel (seconds).
unit: setup
	$(PY) -m pytest -q -m "not integration"

test-ejabberd: setup
	@command -v ejabberdctl >/dev/null || test -x /usr/sbin/ejabberdctl || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ejabberd >/dev/null; }
	$(PY) -m pytest -q --server ejabberd tests/test_client.py tests/test_engine.py \
	  tests/test_reliability.py tests/test_phases.py tests/test_security.py tests/test_magics.py \
	  tests/test_widgets.py tests/test_server.py tests/test_tls.py tests/test_cli.py tests/test_nodes.py \
	  tests/test_delivery.py tests/test_publishers.py tests/test_payload_size.py tests/test_new_hooks.py \
	  tests/test_accounts.py tests/test_handover.py tests/test_manifest.py tests/test_libervia.py tests/test_cli_surface.py \
	  tests/test_resumption.py tests/test_poison.py

bench: setup
	$(PY) benchmarks/bench.py

$(VENV)/.installed-docs: $(STAMP)
	$(PY) -m pip install -q -e '.[docs]'
	@touch $@

docs: $(VENV)/.installed-docs
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

# Run every notebook top to bottom and commit it with its outputs (tests/test_notebooks.py checks
# that the committed outputs are those of such a run).
notebooks: setup
	$(PY) tests/test_notebooks.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .import_linter_cache docs/_build
