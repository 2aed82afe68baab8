/*
 * conf.c - the configuration file of `ordinatus serve --config FILE`: `key = value` lines
 * turned into the serve options they stand for (conf.h says the syntax).
 *
 * Entry points: conf_parse(), conf_load(), conf_free().
 * Threading: reentrant.
 */
#include "conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* conf_free - free every entry */
void conf_free(struct conf *c)
{
	size_t i;

	if(!c)
		return;
	for(i = 0; i < c->n; i++)
		free(c->v[i].value);
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

/* is_space - a blank of a line */
static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* trim - [*s, *e) without the blanks around it */
static void trim(const char **s, const char **e)
{
	while(*s < *e && is_space(**s))
		(*s)++;
	while(*e > *s && is_space((*e)[-1]))
		(*e)--;
}

/* flag_value - true/false and their usual spellings; -1 for anything else */
static int flag_value(const char *v, size_t n)
{
	static const char *const yes[] = {"true", "yes", "on", "1", NULL};
	static const char *const no[] = {"false", "no", "off", "0", NULL};
	size_t i;

	for(i = 0; yes[i]; i++)
		if(strlen(yes[i]) == n && strncmp(v, yes[i], n) == 0)
			return 1;
	for(i = 0; no[i]; i++)
		if(strlen(no[i]) == n && strncmp(v, no[i], n) == 0)
			return 0;
	return -1;
}

/* add - append an entry for option and value (n bytes, or NULL) */
static gw_rc add(struct conf *c, const char *option, const char *value, size_t n, int line)
{
	struct conf_entry *v = realloc(c->v, (c->n + 1) * sizeof(*v));
	struct conf_entry *e;
	size_t i;

	if(!v)
		return GW_ENOMEM;
	c->v = v;
	e = &c->v[c->n];
	memset(e, 0, sizeof(*e));
	for(i = 0; option[i] && i + 1 < sizeof(e->option); i++)
		e->option[i] = option[i];
	e->line = line;
	if(value) {
		e->value = strndup(value, n);
		if(!e->value)
			return GW_ENOMEM;
	}
	c->n++;
	return GW_OK;
}

/* parse_line - one line [s, e) (its end of line removed) */
static gw_rc parse_line(struct conf *c, const struct conf_key *keys, size_t nkeys, const char *s,
                        const char *e, int line, int seen[], struct gw_err *err)
{
	const char *eq, *ks, *ke, *vs, *ve, *p;
	char key[CONF_KEY_MAX], option[CONF_KEY_MAX];
	size_t i, k = nkeys;
	int flag;

	for(p = s; p < e; p++) {
		if((unsigned char)*p < 0x20 && *p != '\t')
			return gw_err_set(err, GW_EINVAL, "", "a control character (byte 0x%02x)",
			                  (unsigned char)*p);
		if(*p == 0x7f)
			return gw_err_set(err, GW_EINVAL, "", "a control character (byte 0x7f)");
	}
	trim(&s, &e);
	if(s == e || *s == '#')
		return GW_OK;
	eq = memchr(s, '=', (size_t)(e - s));
	if(!eq)
		return gw_err_set(err, GW_EINVAL, "", "expected 'key = value'");
	ks = s;
	ke = eq;
	trim(&ks, &ke);
	if(ke == ks || (size_t)(ke - ks) >= sizeof(key))
		return gw_err_set(err, GW_EINVAL, "", "expected 'key = value'");
	/* the key as the documentation writes it ('_'), and the option it stands for ('-') */
	for(i = 0; ks + i < ke; i++) {
		key[i] = ks[i] == '-' ? '_' : ks[i];
		option[i] = ks[i] == '_' ? '-' : ks[i];
	}
	key[i] = option[i] = '\0';
	for(i = 0; i < nkeys; i++)
		if(strcmp(keys[i].option, option) == 0)
			k = i;
	if(k == nkeys)
		return gw_err_set(err, GW_EINVAL, "", "unknown key '%s'", key);
	vs = eq + 1;
	ve = e;
	trim(&vs, &ve);
	if(vs < ve && *vs == '"') {
		/* quoted: kept as written up to the closing quote; only blanks or a comment after
		 */
		const char *q = memchr(vs + 1, '"', (size_t)(ve - vs - 1));
		if(!q)
			return gw_err_set(err, GW_EINVAL, "",
			                  "%s: the value's closing '\"' is missing", key);
		for(p = q + 1; p < ve && is_space(*p); p++)
			;
		if(p < ve && *p != '#')
			return gw_err_set(err, GW_EINVAL, "", "%s: text after the quoted value",
			                  key);
		vs++;
		ve = q;
	} else {
		/* a comment starts at a '#' after a blank (or right after the '=') */
		for(p = vs; p < ve; p++) {
			if(*p == '#' && (p == vs || is_space(p[-1]))) {
				ve = p;
				trim(&vs, &ve);
				break;
			}
		}
	}
	if(vs == ve)
		return gw_err_set(err, GW_EINVAL, "", "%s has no value", key);
	if(keys[k].kind != CONF_LIST && seen[k])
		return gw_err_set(err, GW_EINVAL, "", "%s is set twice (first on line %d)", key,
		                  seen[k]);
	seen[k] = line;
	if(keys[k].kind == CONF_FLAG) {
		flag = flag_value(vs, (size_t)(ve - vs));
		if(flag < 0)
			return gw_err_set(err, GW_EINVAL, "", "%s must be true or false", key);
		return flag ? add(c, option, NULL, 0, line) : GW_OK;
	}
	return add(c, option, vs, (size_t)(ve - vs), line);
}

/* conf_parse - every line of text */
gw_rc conf_parse(const char *text, size_t len, const struct conf_key *keys, size_t nkeys,
                 struct conf *out, int *line, struct gw_err *err)
{
	int seen[CONF_KEYS_MAX] = {0};
	const char *s = text, *end = text + len;
	gw_rc rc = GW_OK;

	memset(out, 0, sizeof(*out));
	*line = 0;
	if(nkeys > CONF_KEYS_MAX)
		return gw_err_set(err, GW_EINVAL, "", "too many keys");
	while(s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *e = nl ? nl : end;

		(*line)++;
		if((size_t)(e - s) + 1 > CONF_LINE_MAX) {
			rc = gw_err_set(err, GW_EINVAL, "", "the line is longer than %d bytes",
			                CONF_LINE_MAX - 1);
			goto out;
		}
		if(e > s && e[-1] == '\r')
			e--;
		rc = parse_line(out, keys, nkeys, s, e, *line, seen, err);
		if(rc)
			goto out;
		s = nl ? nl + 1 : end;
	}
	*line = 0;
out:
	return rc;
}

/* conf_load - read and parse the file */
gw_rc conf_load(const char *path, const struct conf_key *keys, size_t nkeys, struct conf *out,
                int *line, struct gw_err *err)
{
	FILE *f = NULL;
	char *buf = NULL;
	size_t n = 0;
	gw_rc rc = GW_OK;

	memset(out, 0, sizeof(*out));
	*line = 0;
	f = fopen(path, "rb");
	if(!f) {
		rc = gw_err_set(err, GW_EIO, "", "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	buf = malloc(CONF_FILE_MAX + 1);
	if(!buf) {
		rc = GW_ENOMEM;
		goto out;
	}
	n = fread(buf, 1, CONF_FILE_MAX + 1, f);
	if(ferror(f)) {
		rc = gw_err_set(err, GW_EIO, "", "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if(n > CONF_FILE_MAX) {
		rc = gw_err_set(err, GW_EINVAL, "", "%s is larger than %d bytes", path,
		                CONF_FILE_MAX);
		goto out;
	}
	rc = conf_parse(buf, n, keys, nkeys, out, line, err);
out:
	free(buf);
	if(f)
		fclose(f);
	return rc;
}
