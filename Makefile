# tidepool: `make test` (quick profile) and `make perf` (full profile, reports).
# Both install what a fresh Debian machine lacks: Chromium (apt) and cargo-nextest.

SHELL := /bin/bash
.DEFAULT_GOAL := test
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
REPORTS := target/tidepool/reports

.PHONY: deps test perf scenario bench lint

## deps: install Chromium and cargo-nextest if missing
deps:
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
		echo "tidepool: installing Chromium with apt"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi
	@if ! cargo nextest --version >/dev/null 2>&1; then \
		echo "tidepool: installing cargo-nextest"; \
		cargo install cargo-nextest --locked; \
	fi

## test: every suite at quick iteration counts, plus the doc examples
test: deps
	cargo nextest run --profile default
	cargo test --doc --quiet

## perf: every suite at full iteration counts; reports in target/tidepool/reports
perf: deps
	cargo nextest run --profile perf
	@echo "reports: $(REPORTS)/"; ls -1 $(REPORTS)

## scenario NAME=x: one scenario's contract test at full iterations
scenario: deps
	@if [ -z "$(NAME)" ]; then echo "usage: make scenario NAME=<scenario> (see perf-contract.toml)"; exit 2; fi
	cargo nextest run --profile perf -E 'test(/^$(NAME)_meets_its_contract$$/)'
	@echo "report: $(REPORTS)/$(NAME).json"

## bench: every scenario through the CLI at full iterations, one combined results file
bench: deps
	cargo run --release -- validate --output target/tidepool/results.json --format table

## lint: formatting and clippy, as CI expects them
lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
