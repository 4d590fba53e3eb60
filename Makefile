# The two commands: `make run` and `make test`. Both set everything up on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
# Links in messages and the simulator point here; override for a real deployment.
WXBOT_SERVER__PUBLIC_URL ?= http://$(HOST):$(PORT)
export WXBOT_SERVER__PUBLIC_URL
FLASK := $(BIN)/flask --app wxbot

.PHONY: run test setup bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime
	$(FLASK) db upgrade
	$(FLASK) demo load

run: setup
	$(FLASK) urls
	$(BIN)/gunicorn -c gunicorn.conf.py -b $(HOST):$(PORT) 'wxbot.wsgi:app'

test: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.dev
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/webhook.py

clean:
	rm -rf $(VENV) instance .pytest_cache
