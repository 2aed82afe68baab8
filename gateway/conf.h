/*
 * conf.h - the configuration file of `ordinatus serve --config FILE` (README "Configuration
 * file", contrib/ordinatus.conf.sample).
 *
 * One setting a line, `key = value`; blank lines and lines starting with '#' are ignored, and
 * in an unquoted value a '#' after white space starts a comment. A value may be put in double
 * quotes (kept as written, '#' included; no escapes). The caller names the keys: serve's long
 * options, written with '_' for '-' (listen, public_url, trust_proxy, ...; '-' is accepted
 * too). A list key may repeat, any other appears once; a flag takes true or false. The file
 * only turns into options: serve checks their values as it checks the command line's, and an
 * option given on the command line wins (a repeatable one given there replaces every line of
 * the file for it).
 *
 * Threading: reentrant.
 */
#ifndef CONF_H
#define CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "common/gw.h"

#define CONF_LINE_MAX 1024 /* bytes of one line, its end included */
#define CONF_FILE_MAX (256 * 1024)
#define CONF_KEY_MAX  40
#define CONF_KEYS_MAX 64

enum conf_kind {
	CONF_VALUE, /* key = value, once */
	CONF_LIST,  /* key = value, repeatable */
	CONF_FLAG,  /* key = true | false, once */
};

/* A key a file may hold: the long option it stands for ("trust-proxy"). */
struct conf_key {
	const char *option;
	enum conf_kind kind;
};

/* One setting of the file, as the serve option it stands for. */
struct conf_entry {
	char option[CONF_KEY_MAX]; /* the long option: "trust-proxy" */
	char *value;               /* malloc'd; NULL for a flag set to true */
	int line;                  /* 1-based line in the file */
};

/* A parsed file: the entries in file order (a flag set to false has none). */
struct conf {
	struct conf_entry *v; /* malloc'd array of n */
	size_t n;
};

/* conf_parse - parse len bytes of text into *out with the nkeys keys allowed (borrowed; at most
 * CONF_KEYS_MAX). Caller frees *out with conf_free, also after a failure. GW_EINVAL with *line
 * the 1-based line at fault and err->message saying what is wrong with it (an unknown key, a
 * line without '=', an empty value, a repeated key, a flag that is not true or false, a
 * control character, a line over CONF_LINE_MAX). */
gw_rc conf_parse(const char *text, size_t len, const struct conf_key *keys, size_t nkeys,
                 struct conf *out, int *line, struct gw_err *err);

/* conf_load - read the file at path (at most CONF_FILE_MAX bytes) and conf_parse it; GW_EIO
 * when it cannot be read (*line 0). */
gw_rc conf_load(const char *path, const struct conf_key *keys, size_t nkeys, struct conf *out,
                int *line, struct gw_err *err);

/* conf_free - free the entries; accepts an empty or zeroed conf. */
void conf_free(struct conf *c);

#endif
