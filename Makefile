# Every target installs what it needs: a fresh machine runs `make demo` or `make test` and nothing else.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test bench clean

install: $(STAMP)

# mysqlclient compiles against the MariaDB/MySQL client headers; fetch them only when pkg-config lacks them.
$(STAMP): pyproject.toml
	@if ! pkg-config --exists mysqlclient 2>/dev/null && ! pkg-config --exists mariadb 2>/dev/null; then \
	    echo "Installing the MariaDB client headers that mysqlclient builds against"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -q && $$SUDO apt-get install -y -q libmariadb-dev pkg-config build-essential; \
	fi
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[postgres,mysql,demo,test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/run_demo.py

test: $(STAMP)
	$(PY) -m pytest

# Not part of `make test`: timings on a shared machine are for ratios, never for assertions.
bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) examples/var .pytest_cache
