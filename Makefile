# The README's two commands, and the chores around them.
#
#   make run      install what is missing, build, start the gateway with its defaults
#   make test     install what is missing (chromium and Node.js too), run every test (plain
#                 and sanitized builds, the browser test included)
#   make install  build, then install visavis-gateway, gwsh and gwbench into
#                 $(PREFIX)/bin (PREFIX=/usr/local by default; DESTDIR is honoured)

BUILD      ?= build
ASAN_BUILD ?= build-asan
PREFIX     ?= /usr/local

.PHONY: run test deps test-deps build install format format-check clean

run: deps build
	./$(BUILD)/gateway/visavis-gateway

# meson install of the programs only (install tag "runtime"), at the prefix
# asked for now, whatever the build directory was set up with (meson install
# reconfigures and rebuilds first, so the new prefix is the one used).
install: deps build
	meson configure $(BUILD) --prefix=$(abspath $(PREFIX)) >/dev/null
	meson install -C $(BUILD) --tags runtime

test: test-deps
	scripts/test.sh

# What only the tests need: Debian packages (chromium, Node.js), then the
# browser test's npm packages as its lock pins them (never committed).
test-deps:
	@scripts/install-deps.sh --test
	@[ tests/browser/node_modules/.package-lock.json -nt tests/browser/package-lock.json ] || \
		(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

deps:
	@scripts/install-deps.sh

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	meson setup $(BUILD)

SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

format:
	clang-format -i $(SOURCES)

format-check:
	@scripts/install-deps.sh clang-format
	clang-format --dry-run --Werror $(SOURCES)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-release
