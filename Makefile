# The README's two commands, and the chores around them.
#
#   make run    install what is missing, build, start the gateway with its defaults
#   make test   install what is missing, run every test (plain and sanitized builds)

BUILD      ?= build
ASAN_BUILD ?= build-asan

.PHONY: run test deps build format format-check clean

run: deps build
	./$(BUILD)/gateway/gateway

test: deps
	scripts/test.sh

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
