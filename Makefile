# Talaria: `make run` sets up and launches the app, `make test` sets up and runs every test,
# `make package` builds the .deb (target/release/bundle/deb/).
# Every step is idempotent: stamps under .make/ skip work whose inputs did not change.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := run

APP_BIN := target/debug/talaria
STANDIN_BIN := target/debug/examples/standin
STAMPS := .make
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
RELEASE_BIN := target/release/talaria
DEB := target/release/bundle/deb/talaria_$(VERSION)_amd64.deb
TAURI := ui/node_modules/.bin/tauri
# The UI is built by the ui/dist rule below, not by tauri's beforeBuildCommand (which runs in
# the folder above the repository when tauri.conf.json sits at its root).
TAURI_FLAGS := --ci --config '{"build":{"beforeBuildCommand":null}}'

export CARGO_TERM_COLOR ?= never

.PHONY: run test demo deps ui-deps ui-build build package lint ui-check rust-test e2e clean-stamps

$(STAMPS):
	@mkdir -p $(STAMPS)

## --- set-up -----------------------------------------------------------------
$(STAMPS)/system-deps: scripts/install-deps.sh | $(STAMPS)
	scripts/install-deps.sh
	@touch $@

$(STAMPS)/tauri-driver: scripts/install-tauri-driver.sh | $(STAMPS)
	scripts/install-tauri-driver.sh
	@touch $@

ui/node_modules/.package-lock.json: ui/package.json ui/package-lock.json $(STAMPS)/system-deps
	cd ui && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# MCP servers nobody here wrote, for the Rust tests (tests/mcp.rs): pinned, never npx at test time.
tests/mcp_everything/node_modules/.package-lock.json: tests/mcp_everything/package.json tests/mcp_everything/package-lock.json $(STAMPS)/system-deps
	cd tests/mcp_everything && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

deps: $(STAMPS)/system-deps ui/node_modules/.package-lock.json tests/mcp_everything/node_modules/.package-lock.json

## --- build ------------------------------------------------------------------
UI_SOURCES := $(shell find ui/src ui/index.html ui/vite.config.* ui/tsconfig*.json ui/svelte.config.* -type f 2>/dev/null)

ui/dist/index.html: $(UI_SOURCES) ui/node_modules/.package-lock.json
	cd ui && npm run --silent build
	@touch $@

ui-build: ui/dist/index.html

# The app binary that serves ui/dist (what `tauri build --no-bundle` makes), plus the
# stand-in LLM server; cargo decides what is stale.
build: deps ui-build
	cargo build --bin talaria --example standin --example mcp_test_server

## --- package ----------------------------------------------------------------
# `make package`: target/release/bundle/deb/talaria_<version>_amd64.deb. Only the .deb: the
# AppImage bundler downloads linuxdeploy while it runs, which an offline build cannot do.
RELEASE_INPUTS := $(shell find src-tauri -type f 2>/dev/null) Cargo.toml Cargo.lock tauri.conf.json $(wildcard icons/*)
PACKAGE_INPUTS := packaging/talaria.desktop docs/cli.md docs/session-format.md scripts/deb-depends.sh

$(RELEASE_BIN): $(RELEASE_INPUTS) ui/dist/index.html ui/node_modules/.package-lock.json
	$(TAURI) build --no-bundle $(TAURI_FLAGS)
	@touch $@

# Depends: what dpkg-shlibdeps finds the release binary links, with the versions it needs.
$(DEB): $(RELEASE_BIN) $(PACKAGE_INPUTS)
	depends=$$(scripts/deb-depends.sh $(RELEASE_BIN)) && \
	  $(TAURI) bundle --bundles deb $(TAURI_FLAGS) \
	    --config "{\"bundle\":{\"linux\":{\"deb\":{\"depends\":$$depends}}}}"
	@test -f $@ || { echo "make package: tauri did not write $@" >&2; exit 1; }
	@touch $@

package: deps $(DEB)
	@echo "make package: $(DEB)"

## --- run --------------------------------------------------------------------
run: build
	@if [[ -z "$${DISPLAY:-}" && -z "$${WAYLAND_DISPLAY:-}" ]]; then \
	  echo "make run: no display; opening the window in a virtual X server (Xvfb)"; \
	  xvfb-run -a -s "-screen 0 1280x800x24" $(APP_BIN); \
	else \
	  $(APP_BIN); \
	fi

# The stand-in LLM server plays a short scripted conversation; no key needed.
demo: build
	scripts/demo.sh $(APP_BIN) $(STANDIN_BIN)

## --- test -------------------------------------------------------------------
lint: deps ui-build
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

ui-check: deps
	cd ui && npm run --silent check
	cd ui && npm run --silent test

# The in-repo MCP server the tests drive is an example; built first (the tests would build it
# themselves, but one cargo at a time is kinder to the machine).
rust-test: deps ui-build
	cargo build --example mcp_test_server
	cargo test --test all --lib

# The end-to-end tests drive the release binary, the one the .deb installs: what users run, and
# what the window's timings mean (the debug backend competing for this machine's two cores made
# most of the long frames a long reply showed). They include the installed-app smoke test, so
# they need the .deb.
e2e: build $(STAMPS)/tauri-driver $(DEB)
	@mkdir -p tests/e2e/out
	TALARIA_APP=$(CURDIR)/$(RELEASE_BIN) STANDIN_BIN=$(CURDIR)/$(STANDIN_BIN) TALARIA_BIN=$(CURDIR)/$(RELEASE_BIN) \
	  TALARIA_DEB=$(CURDIR)/$(DEB) \
	  xvfb-run -a -s "-screen 0 1280x800x24" node --test --test-concurrency=1 tests/e2e/

test: lint ui-check rust-test e2e
	@echo "make test: every suite passed"

clean-stamps:
	rm -rf $(STAMPS)
