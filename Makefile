# The two commands of the README. Both install whatever is missing first.
.PHONY: dev test bootstrap lint

bootstrap:
	./scripts/bootstrap.sh

dev: bootstrap
	.venv/bin/python scripts/dev.py

test: bootstrap
	./scripts/test.sh

lint: bootstrap
	./scripts/lint.sh
