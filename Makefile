# tidepool: `make test` (quick profile) and `make perf` (full profile, reports).
# Both install what a fresh Debian machine lacks: Chromium (apt) and cargo-nextest.

SHELL := /bin/bash
.DEFAULT_GOAL := test
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
REPORTS := target/tidepool/reports

.PHONY: deps test perf scenario bench lint pr-check pr-check-selftest

## deps: install Chromium (unless $CHROME names one) and cargo-nextest if missing
deps:
	@if [ ! -x "$${CHROME:-}" ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
		echo "tidepool: installing Chromium with apt"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi
	@if ! cargo nextest --version >/dev/null 2>&1; then \
		echo "tidepool: installing cargo-nextest"; \
		cargo install cargo-nextest --locked; \
	fi

## test: every suite at quick iteration counts, plus the doc examples; like everything
##   here it builds the measurement build (the dev profile is release plus line tables)
test: deps
	cargo nextest run --profile default
	cargo test --doc --quiet
	cargo test --manifest-path examples/embed/Cargo.toml --locked --target-dir target/embed --test cdp_client -- --test-threads 1

## perf: every suite at full iteration counts; reports in target/tidepool/reports, with
##   index.html (every report, plotted; written even when a suite fails) and its screenshot
perf: deps
	@status=0; cargo nextest run --profile perf || status=$$?; \
	cargo run --quiet -- report $(REPORTS)/*.json --format html \
		--output $(REPORTS)/index.html --screenshot $(REPORTS)/index.png || { [ $$status -ne 0 ] || status=1; }; \
	echo "reports: $(REPORTS)/ (open $(REPORTS)/index.html)"; ls -1 $(REPORTS); exit $$status

## scenario NAME=x: one scenario's contract test at full iterations
scenario: deps
	@if [ -z "$(NAME)" ]; then echo "usage: make scenario NAME=<scenario> (see perf-contract.toml)"; exit 2; fi
	cargo nextest run --profile perf -E 'test(/^$(NAME)_meets_its_contract$$/)'
	@echo "report: $(REPORTS)/$(NAME).json"

## bench: every scenario through the CLI at full iterations, one combined results file
bench: deps
	cargo run --release -- validate --output target/tidepool/results.json --format table

## lint: formatting, clippy of all three crates (and of the library without its WASM pool, and
##   of examples/embed, the crate a service writes), rustdoc without warnings, the library's
##   package as crates.io would take it, and the GitHub workflows (actionlint), as CI expects them
lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p tidepool-pools --no-default-features -- -D warnings
	cargo clippy --manifest-path examples/embed/Cargo.toml --locked --target-dir target/embed --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
	cargo package -p tidepool-pools --locked --offline --allow-dirty --no-verify --quiet
	.ci/actionlint

## pr-check BASE=<git ref>: this tree against BASE in interleaved rounds (tidepool ab);
##   ITERATIONS (default 20), ROUNDS (default 12), SCENARIOS (default all); exit 1 on a regression
pr-check: deps
	@if [ -z "$(BASE)" ]; then echo "usage: make pr-check BASE=<git ref> [ROUNDS=12] [ITERATIONS=20] [SCENARIOS='cdp_pool ...']"; exit 2; fi
	ITERATIONS=$(ITERATIONS) ROUNDS=$(ROUNDS) SCENARIOS="$(SCENARIOS)" .ci/pr-check $(BASE)

## pr-check-selftest: measures the check: graded slowdowns (SIZES, default "5 10 20") in
##   three places (PLACES, default "cdp acquire wasm_hot") and A/A runs, CHECKS times each
##   (in a temporary clone; AA_CHECKS and WHOLE_AA for more A/A runs)
pr-check-selftest: deps
	CHECKS=$(CHECKS) AA_CHECKS=$(AA_CHECKS) WHOLE_AA=$(WHOLE_AA) SIZES="$(SIZES)" PLACES="$(PLACES)" .ci/pr-check-selftest
