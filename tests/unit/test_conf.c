/*
 * test_conf.c - the configuration file of `serve --config` (gateway/conf.h): a table of file
 * texts, each parsed into the serve options it stands for (in file order, "option=value" or a
 * bare "option" for a flag set to true), or refused with the line at fault and the reason.
 *
 * Entry point: main(). Threading: single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/conf.h"

/* serve's options as gateway/main.c hands them over */
static const struct conf_key keys[] = {
        {"data", CONF_VALUE},
        {"listen", CONF_VALUE},
        {"public-url", CONF_VALUE},
        {"workers", CONF_VALUE},
        {"log-level", CONF_VALUE},
        {"trust-proxy", CONF_LIST},
        {"allow-outbound", CONF_LIST},
        {"allow-plain-auth", CONF_FLAG},
        {"retention-days", CONF_VALUE},
        {"token-route-limit", CONF_VALUE},
        {"max-connections-per-address", CONF_VALUE},
        {"header-timeout", CONF_VALUE},
        {"test-clock", CONF_FLAG},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const struct {
	const char *name;
	const char *text;
	const char *want; /* accepted: the entries joined by '|'; refused: NULL */
	int line;         /* refused: the line named */
	const char *why;  /* refused: a part of the message */
} cases[] = {
        {"empty file", "", "", 0, NULL},
        {"comments and blank lines", "# a comment\n\n   # indented\n\t\n", "", 0, NULL},
        {"every key",
         "data = /var/lib/ordinatus\nlisten = 127.0.0.1:8080\n"
         "public_url = https://book.example.com\nworkers = 4\nlog_level = warn\n"
         "trust_proxy = 10.0.0.0/8\nallow_outbound = 192.168.1.0/24\nallow_plain_auth = false\n"
         "retention_days = 90\ntoken_route_limit = 300\nmax_connections_per_address = 32\n"
         "header_timeout = 5\ntest_clock = no\n",
         "data=/var/lib/ordinatus|listen=127.0.0.1:8080|public-url=https://book.example.com|"
         "workers=4|log-level=warn|trust-proxy=10.0.0.0/8|allow-outbound=192.168.1.0/24|"
         "retention-days=90|token-route-limit=300|max-connections-per-address=32|header-timeout=5",
         0, NULL},
        {"repeatable keys keep every line in order",
         "trust_proxy = 10.0.0.0/8\ntrust_proxy = 172.16.0.0/12\nallow_outbound = ::1/128\n",
         "trust-proxy=10.0.0.0/8|trust-proxy=172.16.0.0/12|allow-outbound=::1/128", 0, NULL},
        {"flags true", "test_clock = true\nallow_plain_auth = yes\n", "test-clock|allow-plain-auth",
         0, NULL},
        {"blanks around key and value, CRLF line ends, no final newline",
         "  workers\t=\t3  \r\nlisten=127.0.0.1:9\r\ndata = d",
         "workers=3|listen=127.0.0.1:9|data=d", 0, NULL},
        {"a comment after a value", "workers = 2   # per provider class\n", "workers=2", 0, NULL},
        {"a '#' inside a value stays", "data = /srv/a#b\n", "data=/srv/a#b", 0, NULL},
        {"quoted value keeps blanks and '#'", "data = \"/srv/my data #1 \"  # where\n",
         "data=/srv/my data #1 ", 0, NULL},
        {"hyphens in keys", "public-url = http://x.example\n", "public-url=http://x.example", 0,
         NULL},
        {"'=' inside a value", "data = a=b\n", "data=a=b", 0, NULL},
        {"unknown key", "workers = 2\nworker = 3\n", NULL, 2, "unknown key 'worker'"},
        {"config inside a config", "config = other.conf\n", NULL, 1, "unknown key 'config'"},
        {"no '='", "\n\nlisten 127.0.0.1:8080\n", NULL, 3, "expected 'key = value'"},
        {"no key", "= 4\n", NULL, 1, "expected 'key = value'"},
        {"empty value", "workers =\n", NULL, 1, "workers has no value"},
        {"only a comment as value", "workers = # none\n", NULL, 1, "workers has no value"},
        {"empty quotes", "data = \"\"\n", NULL, 1, "data has no value"},
        {"unclosed quote", "data = \"/srv\n", NULL, 1, "closing"},
        {"text after quotes", "data = \"/srv\" x\n", NULL, 1, "after the quoted value"},
        {"a scalar twice", "listen = 127.0.0.1:1\n# x\nlisten = 127.0.0.1:2\n", NULL, 3,
         "set twice (first on line 1)"},
        {"a scalar twice, spelt both ways", "log_level = info\nlog-level = warn\n", NULL, 2,
         "set twice"},
        {"a flag that is not true or false", "test_clock = maybe\n", NULL, 1, "true or false"},
        {"a control character", "data = /srv\x01x\n", NULL, 1, "control character"},
        {"a NUL byte", "workers = 2\ndata = a\0b\n", NULL, 2, "control character"},
        {"a line too long", NULL, NULL, 2, "longer than"},
};

/* joined - the entries of c as "option=value|option" */
static void joined(const struct conf *c, char *buf, size_t n)
{
	size_t i, w = 0;

	buf[0] = '\0';
	for(i = 0; i < c->n && w < n; i++)
		w += (size_t)snprintf(buf + w, n - w, "%s%s%s%s", i ? "|" : "", c->v[i].option,
		                      c->v[i].value ? "=" : "", c->v[i].value ? c->v[i].value : "");
}

/* test_table - every case */
static void test_table(void **state)
{
	char got[2048], *longtext;
	size_t i;

	(void)state;
	longtext = malloc(CONF_LINE_MAX + 40);
	assert_non_null(longtext);
	memcpy(longtext, "workers = 1\ndata = ", 19);
	memset(longtext + 19, 'x', CONF_LINE_MAX);
	longtext[19 + CONF_LINE_MAX] = '\n';
	for(i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf c;
		struct gw_err err = {0};
		const char *text = cases[i].text ? cases[i].text : longtext;
		size_t len = cases[i].text ? strlen(text) : 20 + CONF_LINE_MAX;
		int line = -1;
		gw_rc rc;

		/* the NUL case: the text runs past its NUL */
		if(strcmp(cases[i].name, "a NUL byte") == 0)
			len = sizeof("workers = 2\ndata = a\0b\n") - 1;
		rc = conf_parse(text, len, keys, NKEYS, &c, &line, &err);
		if(cases[i].want) {
			if(rc)
				fail_msg("%s: refused at line %d: %s", cases[i].name, line,
				         err.message);
			joined(&c, got, sizeof(got));
			if(strcmp(got, cases[i].want) != 0)
				fail_msg("%s: got '%s', want '%s'", cases[i].name, got,
				         cases[i].want);
			assert_int_equal(line, 0);
		} else {
			if(rc != GW_EINVAL)
				fail_msg("%s: accepted (rc %d)", cases[i].name, (int)rc);
			if(line != cases[i].line)
				fail_msg("%s: line %d named, want %d", cases[i].name, line,
				         cases[i].line);
			if(!strstr(err.message, cases[i].why))
				fail_msg("%s: message '%s' lacks '%s'", cases[i].name, err.message,
				         cases[i].why);
		}
		conf_free(&c);
	}
	free(longtext);
}

/* test_load - a file on disk, and one that cannot be read (line 0) */
static void test_load(void **state)
{
	char dir[] = "/tmp/test_conf.XXXXXX", path[64];
	struct conf c;
	struct gw_err err = {0};
	FILE *f;
	int line = -1;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/o.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("# sample\nlisten = 127.0.0.1:8081\ntrust_proxy = 10.0.0.0/8\n", f);
	fclose(f);
	assert_int_equal(conf_load(path, keys, NKEYS, &c, &line, &err), GW_OK);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.v[1].option, "trust-proxy");
	assert_int_equal(c.v[1].line, 3);
	conf_free(&c);
	unlink(path);
	assert_int_equal(conf_load(path, keys, NKEYS, &c, &line, &err), GW_EIO);
	assert_int_equal(line, 0);
	assert_non_null(strstr(err.message, "cannot read"));
	conf_free(&c);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_table),
	        cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
