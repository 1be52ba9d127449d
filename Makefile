# bligate: build, run and test (README.md). Every target installs what is missing first
# (scripts/bootstrap), so a fresh Debian machine needs only `make run` or `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := build

JOBS ?= 2
CTEST_ARGS ?=

.PHONY: bootstrap build release run test docker-check bench stop status clean distclean

bootstrap:
	@scripts/bootstrap

# The tests' build: Debug, AddressSanitizer + UndefinedBehaviorSanitizer, -Werror.
build: bootstrap
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Debug -DBLIGATE_SANITIZE=ON -DBLIGATE_WERROR=ON
	cmake --build build -j$(JOBS)

# What `make run` and `make bench` use: optimised, no sanitizers.
release: bootstrap
	cmake -S . -B build-release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBLIGATE_SANITIZE=OFF -DBLIGATE_WERROR=ON
	cmake --build build-release -j$(JOBS)

# Starts PostgreSQL, the services and the gateway under var/, seeds the demo accounts and
# stays in the foreground until Ctrl-C, which stops everything.
run: release
	scripts/stack run

# Unit, integration and contract tests; the integration fixtures start their own stack.
test: build
	ctest --test-dir build --output-on-failure $(CTEST_ARGS)

# Only the container checks (compose validation, the Dockerfiles' build steps outside Docker,
# the compose and Kubernetes manifests): docker/README.md, last section.
docker-check: build
	ctest --test-dir build -L docker --output-on-failure $(CTEST_ARGS)

bench: release
	@if [ -x bench/run ]; then bench/run; else echo "make bench: bench/run does not exist yet" >&2; exit 1; fi

stop:
	scripts/stack stop

status:
	scripts/stack status

clean:
	rm -rf build build-release

# Also forgets the development stack: database, PKI, demo certificates, secrets.
distclean: clean
	scripts/stack stop
	rm -rf var
