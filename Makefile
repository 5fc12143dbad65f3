# The two commands of the README. Both install whatever is missing first.
.PHONY: dev test bootstrap lint bench quickstart

bootstrap:
	./scripts/bootstrap.sh

dev: bootstrap
	.venv/bin/python scripts/dev.py

test: bootstrap
	./scripts/test.sh

lint: bootstrap
	./scripts/lint.sh

# The README's first ten minutes (examples/quickstart.ts), against a running `make dev`.
quickstart: bootstrap
	node_modules/.bin/tsc -p examples && node .cache/examples/examples/quickstart.js

# Every benchmark module (bench/README.md); add yours to the list. Not part of `make test`.
BENCHES = near_search fanout_throughput fanout_cost fanout_memory webhook cold_start callable_overhead chat_latency chat_cost viewing_booking photo_processing offer_accept erasure observability moderation

bench: bootstrap
	@for name in $(BENCHES); do .venv/bin/python -m bench.$$name || exit 1; done
