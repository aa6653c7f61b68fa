# Every target installs what it needs: a fresh machine runs `make demo` or `make test` and nothing else.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
APPS_VENV  ?= .venv-apps
APPS_PY    := $(abspath $(APPS_VENV))/bin/python
APPS_STAMP := $(APPS_VENV)/.installed-stamp

.PHONY: install demo test test-apps bench bench-10x bench-all clean

install: $(STAMP)

# mysqlclient compiles against the MariaDB/MySQL client headers; fetch them only when pkg-config lacks them.
define CLIENT_HEADERS
	@if ! pkg-config --exists mysqlclient 2>/dev/null && ! pkg-config --exists mariadb 2>/dev/null; then \
	    echo "Installing the MariaDB client headers that mysqlclient builds against"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -q && $$SUDO apt-get install -y -q libmariadb-dev pkg-config build-essential; \
	fi
endef

$(STAMP): pyproject.toml
	$(CLIENT_HEADERS)
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[postgres,mysql,demo,test]'
	@touch $(STAMP)

# Real third-party apps (Wagtail, django-hashid-field) live in a venv of their own, so `make test`
# never depends on them: their Django pin may differ from ours.
$(APPS_STAMP): pyproject.toml tests/apps/requirements.txt
	$(CLIENT_HEADERS)
	@[ -x $(APPS_PY) ] || $(PYTHON) -m venv $(APPS_VENV)
	$(APPS_PY) -m pip install -q --upgrade pip
	$(APPS_PY) -m pip install -q -e '.[postgres,mysql,test]' -r tests/apps/requirements.txt
	@touch $(APPS_STAMP)

demo: $(STAMP)
	$(PY) examples/run_demo.py

test: $(STAMP)
	$(PY) -m pytest

# Not part of `make test` (about a minute once installed): a Wagtail site with its tutorial's blog,
# copied SQLite → PostgreSQL → MariaDB → SQLite, pages compared byte for byte.
test-apps: $(APPS_STAMP)
	cd tests/apps && $(APPS_PY) -m pytest

# Not part of `make test`: timings on a shared machine are for ratios, never for assertions.
# bench: dbcopy against pgloader, pgcopydb, mydumper and mysqldump on four vendor pairs (SCALE=0.1, a few
# minutes; REPEAT=3, PAIRS=pg-pg, DBCOPY_ARGS="--jobs 2" pass through); bench-10x: the same at SCALE=1;
# bench-all: every method of bench/run.py (dumpdata, the classic loop, export/import, sync…) at SCALE=0.05.
BENCH_PEERS := pgloader pgcopydb mydumper
define PEER_TOOLS
	@missing=$$(for tool in $(BENCH_PEERS); do command -v $$tool >/dev/null || echo $$tool; done); \
	if [ -n "$$missing" ]; then \
	    echo "Installing the tools the bench compares dbcopy with:" $$missing; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q $$missing; } \
	        || echo "Could not install" $$missing "- the bench reports them as not installed"; \
	fi
endef

bench: $(STAMP)
	$(PEER_TOOLS)
	$(PY) bench/run.py --methods peers --scale $(or $(SCALE),0.1)

bench-10x: $(STAMP)
	$(PEER_TOOLS)
	$(PY) bench/run.py --methods peers --scale 1

bench-all: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) $(APPS_VENV) examples/var .pytest_cache
