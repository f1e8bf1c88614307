# Opsflow: `make demo` runs every workflow on an embedded local AWS; `make test` runs the suite.
# Both install what they need into project-local virtual environments on first use.

PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
CHECKOV_VENV := .venv-checkov
PIP_FLAGS := --quiet --disable-pip-version-check
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

.PHONY: demo test lint format validate checkov build unit e2e bench clean lock spoke

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) pip==25.3
	$(PY) -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[dev]'
	touch $@

# aws-sam-cli pins an older boto3, so it lives in its own environment, with cfn-lint's serverless
# rules beside the cfn-lint it brings.
$(SAM_VENV)/.installed: constraints-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install $(PIP_FLAGS) pip==25.3
	$(SAM_VENV)/bin/pip install $(PIP_FLAGS) -c constraints-sam.txt aws-sam-cli==1.170.0 cfn-lint-serverless==0.3.6
	touch $@

# checkov pins an older boto3 (and networkx) too: its own environment as well.
$(CHECKOV_VENV)/.installed: constraints-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install $(PIP_FLAGS) pip==25.3
	$(CHECKOV_VENV)/bin/pip install $(PIP_FLAGS) -c constraints-checkov.txt checkov==3.3.30
	touch $@

demo: $(VENV)/.installed
	$(PY) -m opsflow_local.demo

test: lint validate checkov build
	$(PY) -m pytest -n auto --dist worksteal -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) spoke/generate.py --check

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

validate: $(SAM_VENV)/.installed
	$(SAM) validate --lint --template template.yaml
	$(SAM_VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml
	$(SAM) validate --lint --template spoke/template.yaml
	$(SAM_VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- spoke/template.yaml

# spoke/template.yaml is generated from the hub's statements; `lint` fails when it is out of date.
spoke: $(VENV)/.installed
	$(PY) spoke/generate.py

# Suppressions live in the template, each beside the resource it concerns and with its reason.
checkov: $(CHECKOV_VENV)/.installed
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download
	$(CHECKOV_VENV)/bin/checkov --file spoke/template.yaml --framework cloudformation --compact --quiet --skip-download

# The deployable artifacts, the layer built for arm64 (layers/opsflow/Makefile), in .aws-sam/.
build: $(SAM_VENV)/.installed
	$(SAM) build --template template.yaml

unit: $(VENV)/.installed
	$(PY) -m pytest -n auto -q tests/unit tests/local

e2e: $(VENV)/.installed
	$(PY) -m pytest -n auto -q tests/e2e

bench: $(VENV)/.installed
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Regenerate the pinned transitive versions after changing a direct pin.
lock:
	rm -rf /tmp/opsflow-lock && $(PYTHON) -m venv /tmp/opsflow-lock
	/tmp/opsflow-lock/bin/pip install $(PIP_FLAGS) '.[dev]' && /tmp/opsflow-lock/bin/pip freeze --exclude opsflow > constraints.txt
	rm -rf /tmp/opsflow-lock && $(PYTHON) -m venv /tmp/opsflow-lock
	/tmp/opsflow-lock/bin/pip install $(PIP_FLAGS) aws-sam-cli==1.170.0 cfn-lint-serverless==0.3.6 && /tmp/opsflow-lock/bin/pip freeze > constraints-sam.txt
	rm -rf /tmp/opsflow-lock && $(PYTHON) -m venv /tmp/opsflow-lock
	/tmp/opsflow-lock/bin/pip install $(PIP_FLAGS) checkov==3.3.30 && /tmp/opsflow-lock/bin/pip freeze > constraints-checkov.txt

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
