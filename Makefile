# Ordinatus gateway - build, run and test.
#
#   make            build build/ordinatus
#   make run        install what is missing, build, initialise ./var, serve on 127.0.0.1:8080
#   make check      install what is missing, build with -Werror, run every test, then again
#                   under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   make browser    the browser tests (tests/browser: headless Debian chromium, playwright-core)
#   make check-dates   make check with the date moved ahead 400 days, then to a DST night
#   make email-shots   every email kind rendered and screenshotted in chromium, light and dark,
#                   into build/artifacts/emails/ (make check runs it)
#   make install    the binary, ordinatus(8), the systemd unit and the sample configuration
#                   under PREFIX (/usr/local), staged under DESTDIR when given
#   make clean

CC      ?= cc
BUILD   ?= build
DATA    ?= var
LISTEN  ?= 127.0.0.1:8080
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= $(PREFIX)/etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
INSTALL_BIN ?= $(BUILD)/ordinatus
PKGS    := libmicrohttpd libcurl jansson sqlite3 libical openssl opendkim libpq

WARN := -std=c11 -Wall -Wextra -Wpedantic -Wformat=2 -Wshadow -Wpointer-arith -Wcast-qual \
	-Wwrite-strings -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition -Wvla \
	-Wimplicit-fallthrough -fno-common
ifeq ($(WERROR),1)
WARN += -Werror
endif
ifeq ($(FUZZ),1)
OPT := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer -g -O1
else ifeq ($(SAN),1)
OPT := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1
else
OPT := -O2 -g
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CPPFLAGS   += -D_GNU_SOURCE -I. $(PKG_CFLAGS)
CFLAGS     += $(WARN) $(OPT) -pthread -MMD -MP
LDFLAGS    += $(OPT) -pthread
LDLIBS     += $(PKG_LIBS) -lm

# Every object depends on a stamp of the flags it was built with: `make check` (-Werror) after a
# plain `make` rebuilds what was built without it, instead of proving nothing about it.
FLAGS_STAMP := $(BUILD)/flags.stamp
FLAGS_TEXT  := $(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $(LDLIBS)
$(shell mkdir -p $(BUILD) && (printf '%s\n' '$(FLAGS_TEXT)' | cmp -s - $(FLAGS_STAMP) || \
	printf '%s\n' '$(FLAGS_TEXT)' > $(FLAGS_STAMP)))

LIB_SRCS := $(sort $(wildcard common/*.c store/*.c smtp/*.c providers/*/*.c gateway/*.c gateway/*/*.c))
LIB_SRCS := $(filter-out gateway/main.c,$(LIB_SRCS))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/web_assets.o
# the pages and assets embedded into the binary; the list's stamp rebuilds the table when a file
# is added or removed, the files themselves when one changes
WEB_FILES := $(sort $(wildcard web/*.html web/static/*))
WEB_STAMP := $(BUILD)/web.stamp
$(shell mkdir -p $(BUILD) && (printf '%s\n' '$(WEB_FILES)' | cmp -s - $(WEB_STAMP) || \
	printf '%s\n' '$(WEB_FILES)' > $(WEB_STAMP)))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_NAMES := $(patsubst fuzz/fuzz_%.c,%,$(sort $(wildcard fuzz/fuzz_*.c)))
REPLAY_BINS := $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay_%)

.PHONY: all deps deps-run run check check-build unit integration browser check-asan check-dates bench fuzz \
	fuzz-replay email-shots clean install uninstall

all: $(BUILD)/ordinatus

deps:
	@sh scripts/deps.sh

# what make run needs: the build and the server, not the test tools
deps-run:
	@sh scripts/deps.sh run

$(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/web_assets.c: scripts/web_assets.sh $(WEB_FILES) $(WEB_STAMP)
	@mkdir -p $(dir $@)
	sh scripts/web_assets.sh web > $@.tmp && mv $@.tmp $@

$(BUILD)/web_assets.o: $(BUILD)/web_assets.c $(FLAGS_STAMP)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/libordinatus.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/ordinatus: $(BUILD)/gateway/main.o $(BUILD)/libordinatus.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libordinatus.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/libordinatus.a $(LDFLAGS) $(LDLIBS)

$(BUILD)/fuzz/replay_%: fuzz/fuzz_%.c fuzz/replay.c $(BUILD)/libordinatus.a $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< fuzz/replay.c $(BUILD)/libordinatus.a $(LDFLAGS) $(LDLIBS)

# the harnesses' shared headers (the .d files of a two-source link name only one source)
$(REPLAY_BINS) $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%): $(wildcard fuzz/*.h)

$(BUILD)/fuzz/fuzz_%: fuzz/fuzz_%.c $(BUILD)/libordinatus.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/libordinatus.a \
		$(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libordinatus.a $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/libordinatus.a $(LDFLAGS) $(LDLIBS) -lcmocka

$(BUILD)/email_shots/render_emails: tests/email_shots/render_emails.c $(BUILD)/libordinatus.a \
		$(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/libordinatus.a $(LDFLAGS) $(LDLIBS)

# every email kind's HTML part from the real templates, screenshotted light and dark
email-shots: $(BUILD)/email_shots/render_emails
	@/usr/bin/python3 tests/email_shots/test_email_shots.py $(BUILD)/email_shots/render_emails \
		$(BUILD)/artifacts/emails

run: deps-run
	@$(MAKE) --no-print-directory all
	@if [ ! -f $(DATA)/ordinatus.db ]; then \
		(umask 077; $(BUILD)/ordinatus init --data $(DATA) > $(DATA).token.json) && \
		echo "initialised $(DATA); platform admin token saved in $(DATA).token.json"; \
	fi
	$(BUILD)/ordinatus serve --data $(DATA) --listen $(LISTEN)

unit: $(UNIT_BINS) $(REPLAY_BINS)
	@sh tests/run_unit.sh $(UNIT_BINS)
	@$(MAKE) --no-print-directory fuzz-replay

# every saved fuzz input stays a regression test
fuzz-replay: $(REPLAY_BINS)
	@for n in $(FUZZ_NAMES); do $(BUILD)/fuzz/replay_$$n fuzz/corpus/$$n || exit 1; done

# search for new inputs with libFuzzer (clang); FUZZ_SECONDS per harness; finds go to the corpus
FUZZ_SECONDS ?= 60
fuzz:
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang FUZZ=1 \
		$(FUZZ_NAMES:%=build-fuzz/fuzz/fuzz_%)
	@for n in $(FUZZ_NAMES); do build-fuzz/fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) \
		fuzz/corpus/$$n || exit 1; done

integration: $(BUILD)/ordinatus
	@ORDINATUS_BIN=$(abspath $(BUILD)/ordinatus) sh tests/run_integration.sh

# the pages in headless chromium; make check runs them once, in the plain half only (the pages
# and the browser are the same under ASan, and the gateway code they reach is covered there by
# the integration tests)
browser: $(BUILD)/ordinatus
	@ORDINATUS_BIN=$(abspath $(BUILD)/ordinatus) sh tests/run_browser.sh

check-build:
	@$(MAKE) --no-print-directory WERROR=1 all $(UNIT_BINS) $(REPLAY_BINS) \
		$(BUILD)/email_shots/render_emails

check: deps
	@$(MAKE) --no-print-directory WERROR=1 check-build
	@$(MAKE) --no-print-directory WERROR=1 unit
	@$(MAKE) --no-print-directory WERROR=1 integration
	@$(MAKE) --no-print-directory WERROR=1 browser
	@$(MAKE) --no-print-directory WERROR=1 email-shots
	@$(MAKE) --no-print-directory check-asan

# ASAN_OPTIONS given by the caller are kept (check-dates needs verify_asan_link_order=0); the
# unit tests also look for a pointer to a stack frame used after its function returned
check-asan:
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 WERROR=1 check-build
	@ASAN_OPTIONS=$${ASAN_OPTIONS:+$$ASAN_OPTIONS:}detect_leaks=1:detect_stack_use_after_return=1 \
		$(MAKE) --no-print-directory BUILD=build-asan SAN=1 WERROR=1 unit
	@ASAN_OPTIONS=$${ASAN_OPTIONS:+$$ASAN_OPTIONS:}detect_leaks=0 \
		$(MAKE) --no-print-directory BUILD=build-asan SAN=1 WERROR=1 integration

# make check with the machine's date moved (libfaketime): 400 days ahead, and a DST night.
# faketime's library loads before ASan's runtime, so ASan must not insist on coming first.
check-dates: deps
	ASAN_OPTIONS=verify_asan_link_order=0 faketime -f '+400d' $(MAKE) --no-print-directory check
	ASAN_OPTIONS=verify_asan_link_order=0 faketime '2031-03-30 01:30:00' \
		$(MAKE) --no-print-directory check

bench: $(BUILD)/ordinatus
	@for b in bench/*.sh; do [ -f "$$b" ] && ORDINATUS_BIN=$(abspath $(BUILD)/ordinatus) sh "$$b"; done

# install - the paths in the unit and the man page are the ones installed to; an existing
# ordinatus.conf is never overwritten (the sample beside it always is). INSTALL_BIN: another
# built binary to install (tests/integration/test_install.py installs the one it tests).
install: $(INSTALL_BIN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/ordinatus
	install -m 0755 $(INSTALL_BIN) $(DESTDIR)$(BINDIR)/ordinatus
	sed -e 's|/usr/local/etc|$(SYSCONFDIR)|g' -e 's|/usr/local/lib/systemd/system|$(UNITDIR)|g' \
		docs/ordinatus.8 > $(DESTDIR)$(MANDIR)/man8/ordinatus.8
	chmod 0644 $(DESTDIR)$(MANDIR)/man8/ordinatus.8
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		contrib/ordinatus.service.in > $(DESTDIR)$(UNITDIR)/ordinatus.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/ordinatus.service
	install -m 0644 contrib/ordinatus.conf.sample \
		$(DESTDIR)$(SYSCONFDIR)/ordinatus/ordinatus.conf.sample
	[ -e $(DESTDIR)$(SYSCONFDIR)/ordinatus/ordinatus.conf ] || install -m 0644 \
		contrib/ordinatus.conf.sample $(DESTDIR)$(SYSCONFDIR)/ordinatus/ordinatus.conf

# uninstall - what install put there, except ordinatus.conf (the operator's) and any data
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ordinatus $(DESTDIR)$(MANDIR)/man8/ordinatus.8 \
		$(DESTDIR)$(UNITDIR)/ordinatus.service \
		$(DESTDIR)$(SYSCONFDIR)/ordinatus/ordinatus.conf.sample

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJS:.o=.d) $(BUILD)/gateway/main.d
