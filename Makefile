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

.PHONY: run prod test test-miniprogram fuzz lint setup bench bench-webhook bench-fanout bench-leaderboard bench-quiz bench-checkin bench-screening bench-development bench-report bench-api clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Browser tests drive Debian's Chromium; the font keeps Chinese readable in failure screenshots. The
# deployment guide's nginx configuration is run by its test (tests/test_deployment.py). LibreOffice
# opens the report's .docx in its test, as a secretary's computer would (tests/test_report.py).
SYSTEM_DEPS := /usr/bin/chromium /usr/share/fonts/truetype/wqy/wqy-microhei.ttc /usr/sbin/nginx /usr/bin/soffice
$(SYSTEM_DEPS):
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-microhei nginx \
		libreoffice-writer-nogui; \
	else echo "测试需要 Debian 的 chromium、fonts-wqy-microhei、nginx 和 libreoffice-writer-nogui：sudo apt-get install chromium fonts-wqy-microhei nginx libreoffice-writer-nogui"; \
	exit 1; fi

setup: $(VENV)/.runtime
	$(FLASK) db upgrade
	$(FLASK) demo load --if-safe

run: setup
	$(FLASK) urls --host $(HOST)
	$(BIN)/gunicorn -c gunicorn.conf.py -b $(HOST):$(PORT) 'wxbot.wsgi:app'

# The production set on this machine: gunicorn (4 workers), one scheduler, two delivery workers, on
# PostgreSQL and Redis (docs/部署.md). The database is created when missing; still the sandbox.
PROD_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/wxbot_prod
PROD_REDIS_URL ?= redis://127.0.0.1:6379/0
prod: $(VENV)/.runtime
	$(BIN)/python -m wxbot.prodsetup "$(PROD_DATABASE_URL)" "$(PROD_REDIS_URL)"
	rm -rf instance/metrics/prod && mkdir -p instance/metrics/prod
	WXBOT_DATABASE_URL="$(PROD_DATABASE_URL)" WXBOT_REDIS_URL="$(PROD_REDIS_URL)" WXBOT_REDIS_PREFIX=wxbot-prod \
	WEB_BIND=$(HOST):$(PORT) WEB_CONCURRENCY=4 PROMETHEUS_MULTIPROC_DIR=instance/metrics/prod \
	sh -c '$(FLASK) db upgrade && $(FLASK) demo load --if-safe && $(FLASK) urls --host $(HOST) && \
	exec $(BIN)/honcho start -c web=1,scheduler=1,worker=2'

test: $(VENV)/.dev $(SYSTEM_DEPS)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(MAKE) test-miniprogram

# The mini-program's pages rendered with miniprogram-simulate under jest, against the real backend
# started in sandbox mode (miniprogram/tests/backend.js); Node packages from the lock file.
test-miniprogram: $(VENV)/.dev miniprogram/node_modules/.installed
	cd miniprogram && npm test

miniprogram/node_modules/.installed: miniprogram/package-lock.json
	cd miniprogram && npm ci --no-audit --no-fund
	touch $@

# The nightly profile of the webhook fuzz: 10,000 cases per property (make test runs 300).
fuzz: $(VENV)/.dev
	HYPOTHESIS_PROFILE=nightly $(BIN)/python -m pytest -q tests/test_fuzz.py

lint: $(VENV)/.dev
	$(BIN)/ruff check .

bench: bench-webhook bench-fanout bench-leaderboard bench-quiz bench-checkin bench-screening bench-development bench-report bench-api

bench-webhook: $(VENV)/.dev
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/webhook.py

bench-fanout: $(VENV)/.dev
	$(BIN)/python bench/fanout.py

bench-leaderboard: $(VENV)/.dev
	$(BIN)/python bench/leaderboard.py

bench-quiz: $(VENV)/.dev
	$(BIN)/python bench/quiz.py

bench-checkin: $(VENV)/.dev
	$(BIN)/python bench/checkin.py

bench-screening: $(VENV)/.dev
	$(BIN)/python bench/screening.py

bench-development: $(VENV)/.dev
	$(BIN)/python bench/development.py

bench-report: $(VENV)/.dev
	$(BIN)/python bench/report.py

bench-api: $(VENV)/.dev
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) instance .pytest_cache
