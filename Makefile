# restoreops.dr — every entry point. Run as root on a Debian 12 machine; each target installs what it needs.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT      := $(CURDIR)
# One venv per controller line, each from its own pinned requirements file: ansible-core 2.19 here (requirements.txt),
# ansible-core 2.21 in the Debian 13 controller container (requirements-2.21.txt, tests/controller-2.21.sh).
VENV      ?= $(ROOT)/.venv
REQUIREMENTS ?= requirements.txt
PYTHON_VERSION ?= 3.11
BIN       := $(VENV)/bin
PY        := $(BIN)/python
STAMP     := $(VENV)/.installed
# The collection as Ansible and pytest see it: .cache/collections/ansible_collections/restoreops/dr -> this tree.
COLL_PATH := $(ROOT)/.cache/collections
TREE_LINK := $(COLL_PATH)/ansible_collections/restoreops/dr
# ansible-test wants a real copy (it refuses paths outside the collection root).
ATROOT    ?= $(ROOT)/.cache/ansible-test
TEST_TREE := $(ATROOT)/ansible_collections/restoreops/dr
LAB       := $(ROOT)/tests/lab/lab
TARGETS   ?=
SCENARIOS ?=

export ANSIBLE_COLLECTIONS_PATH := $(COLL_PATH)
# Molecule and ansible-lint install the collection being tested into a cache (ANSIBLE_HOME/collections, first in their
# search path): one per checkout, so that they always see this tree, never a copy another checkout left behind.
export ANSIBLE_HOME := $(ROOT)/.cache/ansible-home
export ANSIBLE_LOCALHOST_WARNING := False
export ANSIBLE_INVENTORY_UNPARSED_WARNING := False
export PATH := $(BIN):$(PATH)
export PYTHONPATH := $(COLL_PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup deps tree test-tree test demo unit sanity lint ruff integration molecule bench docs docs-check \
        build clean changelog-lint test-2.21

help:
	@echo "make demo         the DR drill on the built-in lab (installs what it needs): Debian 13, over SSH, from S3"
	@echo "                  DRILL_TOOL=borg, DRILL_BACKEND=rest, DRILL_OS=debian12 choose another restore"
	@echo "make test         everything: ruff, unit, sanity, lint, integration, molecule, drill, and the"
	@echo "                  ansible-core 2.21 line in its controller container (make test-2.21 alone)"
	@echo "make unit|sanity|lint|integration|molecule|bench|docs|build|clean"
	@echo "  TARGETS='borg_repo' narrows integration; SCENARIOS='backup_tools' narrows molecule"

# --- toolchain -------------------------------------------------------------------------------------------------
$(STAMP): $(REQUIREMENTS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r $(REQUIREMENTS)
	touch $@

setup: $(STAMP) deps tree

deps:
	$(LAB) deps

tree: $(STAMP)
	mkdir -p $(dir $(TREE_LINK))
	ln -sfn $(ROOT) $(TREE_LINK)

test-tree: tree
	rm -rf $(ATROOT)
	mkdir -p $(TEST_TREE)
	git ls-files -z --cached --others --exclude-standard | rsync -a --from0 --files-from=- ./ $(TEST_TREE)/
	rm -rf $(TEST_TREE)/.git
	git -C $(TEST_TREE) init -q  # ansible-test lists files with git; without this it sees the parent repo

# --- checks ----------------------------------------------------------------------------------------------------
ruff: $(STAMP)
	$(BIN)/ruff check plugins tests benchmarks

unit: tree
	@# pytest exits 5 when it collects nothing: here that means the suite broke, so it fails loudly.
	$(BIN)/pytest -q tests/unit; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "unit: pytest collected no tests; that is a failure"; exit 1; fi; exit $$rc

sanity: test-tree
	$(ROOT)/tests/sanity-bootstrap.sh
	cd $(TEST_TREE) && $(BIN)/ansible-test sanity --local --python $(PYTHON_VERSION) --color no
	@for f in tests/sanity/ignore-*.txt; do test ! -s "$$f" || { echo "$$f is not empty"; exit 1; }; done

lint: tree
	$(BIN)/ansible-lint

docs: tree
	$(PY) tests/tools/role_readme.py --write

docs-check: tree
	$(PY) tests/tools/role_readme.py --check

integration: setup test-tree
	$(LAB) deps
	cd $(TEST_TREE) && $(BIN)/ansible-test integration --local --python $(PYTHON_VERSION) --color no --continue-on-error $(TARGETS)

molecule: setup
	$(LAB) with-lab $(ROOT)/tests/molecule.sh $(SCENARIOS)

build: $(STAMP)
	rm -rf build && mkdir -p build
	$(BIN)/ansible-galaxy collection build --force --output-path build .
	$(ROOT)/tests/install-check.sh build

bench: setup
	$(LAB) with-lab $(ROOT)/benchmarks/run.sh

# The drill builds the images it needs itself (Debian 13 by default), so with-lab builds none.
demo: setup
	LAB_IMAGES= $(LAB) with-lab $(ROOT)/tests/lab/drill.sh

# The ansible-core 2.21 line alone: unit, sanity, integration (Debian 13's tools) and a small drill, in the container.
test-2.21: setup
	LAB_IMAGES= $(LAB) with-lab $(ROOT)/tests/controller-2.21.sh

test: setup
	$(ROOT)/tests/run-all.sh

changelog-lint: $(STAMP)
	$(BIN)/antsibull-changelog lint

clean:
	rm -rf .cache build tests/output benchmarks/results
	$(LAB) clean
