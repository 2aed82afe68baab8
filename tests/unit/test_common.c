/*
 * test_common.c - the shared helpers of common/: request JSON validation (jsonv.h), RFC 3339
 * times (timefmt.h), tokens, hashes and sealed secrets (crypto.h), and IANA time zones (tz.h).
 * Each is a table of inputs with the answer worked out by hand (hash vectors from FIPS 180-2,
 * instants from the 2026 European daylight-saving change).
 *
 * Entry point: main(). Threading: single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crypto.h"
#include "common/jsonv.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "common/tz.h"

#define CHECK(cond, ...)                                                                       \
	do {                                                                                       \
		if(!(cond))                                                                            \
			fail_msg(__VA_ARGS__);                                                             \
	} while(0)

#define CHECK_RC(got, want, name)                                                              \
	CHECK((got) == (want), "%s: rc %s, want %s", (name), gw_rc_name(got), gw_rc_name(want))

/* load - JSON text of a table (\u0000 allowed, to test embedded NULs) */
static json_t *load(const char *txt)
{
	json_error_t e;
	json_t *v = json_loads(txt, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);

	if(!v)
		fail_msg("bad JSON in a table: %s: %s", txt, e.text);
	return v;
}

/* ---- jsonv: jv_parse ---- */

struct parse_case {
	const char *body;
	gw_rc rc;
};

static const struct parse_case parse_cases[] = {
    {"{}", GW_OK},
    {"{\"a\": 1, \"b\": [true, null]}", GW_OK},
    {"  {\"a\": \"x\"}\n", GW_OK},
    {"[]", GW_EJSON},
    {"[{\"a\": 1}]", GW_EJSON},
    {"null", GW_EJSON},
    {"42", GW_EJSON},
    {"\"text\"", GW_EJSON},
    {"true", GW_EJSON},
    {"", GW_EJSON},
    {"garbage", GW_EJSON},
    {"{", GW_EJSON},
    {"{\"a\": }", GW_EJSON},
    {"{'a': 1}", GW_EJSON},
    {"{\"a\": 1} trailing", GW_EJSON},
    {"{\"a\": 1}{\"b\": 2}", GW_EJSON},
    {"{\"a\": 1, \"a\": 2}", GW_EJSON}, /* duplicate keys: which one would win? */
    {"{\"a\": \"\xff\xfe\"}", GW_EJSON}, /* not UTF-8 */
};

static void test_jv_parse(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		json_t *out = (json_t *)&i;
		struct gw_err err = {0};
		gw_rc rc = jv_parse(c->body, strlen(c->body), &out, &err);

		CHECK_RC(rc, c->rc, c->body);
		if(rc) {
			CHECK(out == NULL, "%s: *out set on failure", c->body);
			CHECK(err.message[0] != '\0', "%s: no message", c->body);
		} else {
			CHECK(json_is_object(out), "%s: not an object", c->body);
			json_decref(out);
		}
	}
	/* the length is the body's, not strlen's: a body that stops early is cut */
	{
		json_t *out = NULL;
		assert_int_equal(jv_parse("{\"a\": 1}", 4, &out, NULL), GW_EJSON);
		assert_null(out);
		assert_int_equal(jv_parse(NULL, 0, &out, NULL), GW_EJSON);
	}
}

/* ---- jsonv: jv_string ---- */

struct string_case {
	const char *name;
	const char *obj; /* JSON; the field is "f" */
	bool required;
	size_t min, max;
	int flags;
	gw_rc rc;
	bool present;
	const char *want;
};

static const struct string_case string_cases[] = {
    {"plain", "{\"f\": \"abc\"}", true, 1, 3, 0, GW_OK, true, "abc"},
    {"at the lower bound", "{\"f\": \"a\"}", true, 1, 3, 0, GW_OK, true, "a"},
    {"over the upper bound", "{\"f\": \"abcd\"}", true, 1, 3, 0, GW_EINVAL, false, NULL},
    {"under the lower bound", "{\"f\": \"\"}", true, 1, 3, 0, GW_EINVAL, false, NULL},
    {"empty allowed", "{\"f\": \"\"}", false, 0, 3, 0, GW_OK, true, ""},
    {"bounds are bytes, not characters", "{\"f\": \"\\u00fc\\u00fc\"}", true, 1, 3, 0, GW_EINVAL,
     false, NULL},
    {"UTF-8 within the bounds", "{\"f\": \"\\u00fcb\"}", true, 1, 3, 0, GW_OK, true,
     "\xc3\xbc" "b"},
    {"missing, required", "{\"g\": \"abc\"}", true, 1, 3, 0, GW_EINVAL, false, NULL},
    {"missing, optional", "{\"g\": \"abc\"}", false, 1, 3, 0, GW_OK, false, NULL},
    {"null, optional", "{\"f\": null}", false, 1, 3, 0, GW_OK, false, NULL},
    {"null, required", "{\"f\": null}", true, 1, 3, 0, GW_EINVAL, false, NULL},
    {"a number", "{\"f\": 12}", true, 1, 3, 0, GW_EINVAL, false, NULL},
    {"an array", "{\"f\": [\"a\"]}", true, 1, 3, 0, GW_EINVAL, false, NULL},
    {"newline refused", "{\"f\": \"a\\nb\"}", true, 1, 10, 0, GW_EINVAL, false, NULL},
    {"carriage return refused", "{\"f\": \"a\\rb\"}", true, 1, 10, 0, GW_EINVAL, false, NULL},
    {"tab refused", "{\"f\": \"a\\tb\"}", true, 1, 10, 0, GW_EINVAL, false, NULL},
    {"newline in multiline text", "{\"f\": \"a\\r\\nb\"}", true, 1, 10, JV_MULTILINE, GW_OK, true,
     "a\r\nb"},
    {"tab in multiline text", "{\"f\": \"a\\tb\"}", true, 1, 10, JV_MULTILINE, GW_OK, true,
     "a\tb"},
    {"other control character in multiline text", "{\"f\": \"a\\u0001b\"}", true, 1, 10,
     JV_MULTILINE, GW_EINVAL, false, NULL},
    {"escape character", "{\"f\": \"a\\u001b[2Jb\"}", true, 1, 10, 0, GW_EINVAL, false, NULL},
    {"DEL", "{\"f\": \"a\\u007f\"}", true, 1, 10, JV_MULTILINE, GW_EINVAL, false, NULL},
    {"embedded NUL", "{\"f\": \"a\\u0000b\"}", true, 1, 10, JV_MULTILINE, GW_EINVAL, false,
     NULL},
};

static void test_jv_string(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(string_cases); i++) {
		const struct string_case *c = &string_cases[i];
		json_t *obj = load(c->obj);
		const char *out = "untouched";
		bool present = !c->present;
		struct gw_err err = {0};
		gw_rc rc = jv_string(obj, "f", c->required, c->min, c->max, c->flags, &out, &present,
		                     &err);

		CHECK_RC(rc, c->rc, c->name);
		if(rc) {
			CHECK(strcmp(err.field, "f") == 0, "%s: field '%s'", c->name, err.field);
		} else {
			CHECK(present == c->present, "%s: present %d", c->name, present);
			if(c->want)
				CHECK(strcmp(out, c->want) == 0, "%s: '%s'", c->name, out);
			else
				CHECK(strcmp(out, "untouched") == 0, "%s: value set when absent", c->name);
		}
		json_decref(obj);
	}
}

/* ---- jsonv: jv_int, jv_bool ---- */

struct int_case {
	const char *obj;
	bool required;
	long long lo, hi;
	gw_rc rc;
	long long want;
};

static const struct int_case int_cases[] = {
    {"{\"f\": 5}", true, 1, 10, GW_OK, 5},
    {"{\"f\": 1}", true, 1, 10, GW_OK, 1},
    {"{\"f\": 10}", true, 1, 10, GW_OK, 10},
    {"{\"f\": 0}", true, 1, 10, GW_EINVAL, 0},
    {"{\"f\": 11}", true, 1, 10, GW_EINVAL, 0},
    {"{\"f\": -5}", true, -10, 10, GW_OK, -5},
    {"{\"f\": 5.0}", true, 1, 10, GW_EINVAL, 0},
    {"{\"f\": \"5\"}", true, 1, 10, GW_EINVAL, 0},
    {"{\"f\": true}", true, 1, 10, GW_EINVAL, 0},
    {"{}", true, 1, 10, GW_EINVAL, 0},
    {"{}", false, 1, 10, GW_OK, 77},
    {"{\"f\": 9223372036854775807}", true, 1, 100, GW_EINVAL, 0},
};

struct bool_case {
	const char *obj;
	bool required;
	gw_rc rc;
	bool want;
};

static const struct bool_case bool_cases[] = {
    {"{\"f\": true}", true, GW_OK, true},     {"{\"f\": false}", true, GW_OK, false},
    {"{\"f\": 1}", true, GW_EINVAL, false},   {"{\"f\": \"true\"}", true, GW_EINVAL, false},
    {"{}", true, GW_EINVAL, false},           {"{\"f\": null}", false, GW_OK, true},
};

static void test_jv_int_bool(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(int_cases); i++) {
		const struct int_case *c = &int_cases[i];
		json_t *obj = load(c->obj);
		long long out = 77;
		struct gw_err err = {0};
		gw_rc rc = jv_int(obj, "f", c->required, c->lo, c->hi, &out, NULL, &err);

		CHECK_RC(rc, c->rc, c->obj);
		if(!rc)
			CHECK(out == c->want, "%s: %lld", c->obj, out);
		else
			CHECK(strcmp(err.field, "f") == 0, "%s: field '%s'", c->obj, err.field);
		json_decref(obj);
	}
	for(i = 0; i < GW_ARRAY_LEN(bool_cases); i++) {
		const struct bool_case *c = &bool_cases[i];
		json_t *obj = load(c->obj);
		bool out = true;
		gw_rc rc = jv_bool(obj, "f", c->required, &out, NULL, NULL);

		CHECK_RC(rc, c->rc, c->obj);
		if(!rc)
			CHECK(out == c->want, "%s: %d", c->obj, out);
		json_decref(obj);
	}
}

/* ---- jsonv: e-mail addresses ---- */

struct email_case {
	const char *addr;
	bool valid;
};

static const struct email_case email_cases[] = {
    {"a@b.cd", true},
    {"carla@example.com", true},
    {"First.Last+tag@mail.example.co.uk", true},
    {"x_y-z@sub-domain.example.org", true},
    {"o'brien@example.ie", true},
    {"a@b", false},                       /* no dot in the domain */
    {"a b@c.d", false},                   /* space */
    {"<a@b.c>", false},                   /* angle brackets: a display form, not an addr-spec */
    {"Carla <a@b.c>", false},
    {"a@b.c\r\nBcc: x@y.z", false},       /* header injection */
    {"a@b.c\nBcc: x@y.z", false},
    {"a@b.c\r", false},
    {"a@b.c,x@y.z", false},               /* two addresses */
    {"a@b.c;x@y.z", false},
    {"\"a\"@b.cd", false},
    {"a(comment)@b.cd", false},
    {"a@[127.0.0.1]", false},
    {"", false},
    {"@b.cd", false},
    {"a@", false},
    {"a@.b.cd", false},
    {"a@b.cd.", false},
    {"a@@b.cd", false},
    {"a@b@c.de", false},
    {"abc", false},
    {"a\tb@c.de", false},
    {"\xc3\xa4@b.cd", false}, /* non-ASCII local part: not plausible for a header */
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@b.cd", true}, /* 64 */
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@b.cd", false}, /* 65 */
};

static void test_jv_email(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(email_cases); i++) {
		const struct email_case *c = &email_cases[i];
		json_t *obj = json_pack("{s:s}", "email", c->addr);
		const char *out = NULL;
		bool present = false;
		struct gw_err err = {0};
		gw_rc rc;

		CHECK(jv_email_valid(c->addr) == c->valid, "jv_email_valid(\"%s\") = %d", c->addr,
		      !c->valid);
		rc = jv_email(obj, "email", true, &out, &present, &err);
		CHECK(rc == (c->valid ? GW_OK : GW_EINVAL), "jv_email(\"%s\"): %s", c->addr,
		      gw_rc_name(rc));
		if(c->valid) {
			CHECK(present && out && strcmp(out, c->addr) == 0, "jv_email(\"%s\") value",
			      c->addr);
		} else {
			CHECK(strcmp(err.field, "email") == 0, "jv_email(\"%s\") field '%s'", c->addr,
			      err.field);
		}
		json_decref(obj);
	}
	/* absent: fine when optional, refused when required */
	{
		json_t *obj = load("{}");
		const char *out = NULL;
		bool present = true;
		assert_int_equal(jv_email(obj, "email", false, &out, &present, NULL), GW_OK);
		assert_false(present);
		assert_null(out);
		assert_int_equal(jv_email(obj, "email", true, &out, &present, NULL), GW_EINVAL);
		json_decref(obj);
	}
	/* too long as a whole (RFC 5321 4.5.3.1.3: 254 octets in a path) */
	{
		char addr[300];
		memset(addr, 'd', sizeof(addr));
		memcpy(addr, "a@", 2);
		memcpy(addr + 251, ".de", 4); /* 254 characters */
		assert_true(jv_email_valid(addr));
		addr[251] = 'd';
		memcpy(addr + 252, ".de", 4); /* 255 */
		assert_false(jv_email_valid(addr));
	}
}

/* ---- jsonv: skills ---- */

struct skills_case {
	const char *name;
	const char *obj; /* field "skills" */
	size_t max;
	gw_rc rc;
	const char *want; /* JSON array */
};

#define A64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const struct skills_case skills_cases[] = {
    {"lower-cased, duplicates dropped, sorted", "{\"skills\": [\"Yoga\", \"yoga\", \"Pilates\"]}",
     5, GW_OK, "[\"pilates\", \"yoga\"]"},
    {"sorted", "{\"skills\": [\"c\", \"b\", \"a\", \"b\"]}", 5, GW_OK, "[\"a\", \"b\", \"c\"]"},
    {"allowed punctuation and spaces",
     "{\"skills\": [\"Strength Training\", \"c++\", \"first-aid\", \"level_2.5\"]}", 5, GW_OK,
     "[\"c++\", \"first-aid\", \"level_2.5\", \"strength training\"]"},
    {"empty list", "{\"skills\": []}", 5, GW_OK, "[]"},
    {"as many as allowed", "{\"skills\": [\"a\", \"b\", \"c\"]}", 3, GW_OK,
     "[\"a\", \"b\", \"c\"]"},
    {"one too many", "{\"skills\": [\"a\", \"b\", \"c\", \"d\"]}", 3, GW_EINVAL, NULL},
    {"64 characters", "{\"skills\": [\"" A64 "\"]}", 5, GW_OK, "[\"" A64 "\"]"},
    {"65 characters", "{\"skills\": [\"" A64 "a\"]}", 5, GW_EINVAL, NULL},
    {"empty name", "{\"skills\": [\"\"]}", 5, GW_EINVAL, NULL},
    {"slash", "{\"skills\": [\"a/b\"]}", 5, GW_EINVAL, NULL},
    {"markup", "{\"skills\": [\"<b>yoga</b>\"]}", 5, GW_EINVAL, NULL},
    {"comma", "{\"skills\": [\"yoga,pilates\"]}", 5, GW_EINVAL, NULL},
    {"quote", "{\"skills\": [\"yoga\\\"\"]}", 5, GW_EINVAL, NULL},
    {"newline", "{\"skills\": [\"yo\\nga\"]}", 5, GW_EINVAL, NULL},
    {"non-ASCII", "{\"skills\": [\"\\u00fcbung\"]}", 5, GW_EINVAL, NULL},
    {"embedded NUL", "{\"skills\": [\"yo\\u0000ga\"]}", 5, GW_EINVAL, NULL},
    {"not strings", "{\"skills\": [1]}", 5, GW_EINVAL, NULL},
    {"not an array", "{\"skills\": \"yoga\"}", 5, GW_EINVAL, NULL},
    {"an object", "{\"skills\": {\"yoga\": true}}", 5, GW_EINVAL, NULL},
};

static void test_jv_skills(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(skills_cases); i++) {
		const struct skills_case *c = &skills_cases[i];
		json_t *obj = load(c->obj), *out = (json_t *)&i, *want;
		bool present = false;
		struct gw_err err = {0};
		gw_rc rc = jv_skills(obj, "skills", true, c->max, &out, &present, &err);

		CHECK_RC(rc, c->rc, c->name);
		if(rc) {
			CHECK(out == NULL, "%s: *out set", c->name);
			CHECK(strcmp(err.field, "skills") == 0, "%s: field '%s'", c->name, err.field);
		} else {
			char *got = json_dumps(out, JSON_COMPACT);
			want = load(c->want);
			CHECK(present, "%s: not present", c->name);
			CHECK(json_equal(out, want), "%s: %s, want %s", c->name, got, c->want);
			free(got);
			json_decref(want);
			json_decref(out);
		}
		json_decref(obj);
	}
	/* absent */
	{
		json_t *obj = load("{}"), *out = NULL;
		bool present = true;
		assert_int_equal(jv_skills(obj, "skills", false, 5, &out, &present, NULL), GW_OK);
		assert_false(present);
		assert_null(out);
		assert_int_equal(jv_skills(obj, "skills", true, 5, &out, &present, NULL), GW_EINVAL);
		json_decref(obj);
	}
}

/* ---- jsonv: jv_only ---- */

struct only_case {
	const char *obj;
	gw_rc rc;
	const char *field;
};

static const char *const only_allowed[] = {"name", "email", "phone", NULL};

static const struct only_case only_cases[] = {
    {"{}", GW_OK, ""},
    {"{\"name\": 1, \"email\": 2, \"phone\": 3}", GW_OK, ""},
    {"{\"name\": 1, \"fax\": 2}", GW_EINVAL, "fax"},
    {"{\"Name\": 1}", GW_EINVAL, "Name"},
    {"{\"name \": 1}", GW_EINVAL, "name "},
    {"{\"\": 1}", GW_EINVAL, ""},
};

static void test_jv_only(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(only_cases); i++) {
		const struct only_case *c = &only_cases[i];
		json_t *obj = load(c->obj);
		struct gw_err err;
		gw_rc rc;

		memset(&err, 0, sizeof(err));
		snprintf(err.field, sizeof(err.field), "unset");
		rc = jv_only(obj, only_allowed, &err);
		CHECK_RC(rc, c->rc, c->obj);
		if(rc)
			CHECK(strcmp(err.field, c->field) == 0, "%s: field '%s'", c->obj, err.field);
		json_decref(obj);
	}
}

/* ---- timefmt ---- */

struct fmt_case {
	time_t t;
	const char *text;
};

static const struct fmt_case fmt_cases[] = {
    {0, "1970-01-01T00:00:00Z"},
    {951827696, "2000-02-29T12:34:56Z"},
    {1709164800, "2024-02-29T00:00:00Z"},
    {1796115600, "2026-12-01T09:00:00Z"},
    {1798761599, "2026-12-31T23:59:59Z"},
    {4102444799, "2099-12-31T23:59:59Z"},
};

static void test_timefmt_round_trip(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(fmt_cases); i++) {
		const struct fmt_case *c = &fmt_cases[i];
		char buf[TIMEFMT_LEN];
		time_t back = -1;

		timefmt_rfc3339(c->t, buf);
		CHECK(strcmp(buf, c->text) == 0, "%lld: '%s', want '%s'", (long long)c->t, buf, c->text);
		CHECK(timefmt_parse(buf, &back) == GW_OK && back == c->t, "%s: parsed as %lld", buf,
		      (long long)back);
	}
}

struct parse_time_case {
	const char *text;
	gw_rc rc;
	time_t want;
};

static const struct parse_time_case time_cases[] = {
    {"2026-12-01T09:00:00Z", GW_OK, 1796115600},
    {"2026-12-01t09:00:00z", GW_OK, 1796115600}, /* RFC 3339 5.6 NOTE: lower case allowed */
    {"2026-12-01T11:00:00+02:00", GW_OK, 1796115600},
    {"2026-12-01T04:00:00-05:00", GW_OK, 1796115600},
    {"2026-12-01T09:00:00+00:00", GW_OK, 1796115600},
    {"2026-12-01T09:00:00-00:00", GW_OK, 1796115600},
    {"2026-12-01T09:00:00+05:30", GW_OK, 1796095800},
    {"2026-12-01T00:30:00+01:00", GW_OK, 1796115600 - 9 * 3600 - 30 * 60},
    {"2026-12-01T09:00:00.123Z", GW_OK, 1796115600},
    {"2026-12-01T09:00:00.999999+01:00", GW_OK, 1796112000},
    {"2026-12-01T09:00:00.5-00:30", GW_OK, 1796115600 + 1800},
    {"2024-02-29T00:00:00Z", GW_OK, 1709164800},
    {"2000-02-29T12:34:56Z", GW_OK, 951827696},
    {"2026-12-31T23:59:60Z", GW_OK, 1798761599}, /* a leap second: the second before */
    {"2026-02-30T09:00:00Z", GW_EINVAL, 0},
    {"2026-02-29T09:00:00Z", GW_EINVAL, 0},
    {"2100-02-29T09:00:00Z", GW_EINVAL, 0},
    {"2026-04-31T09:00:00Z", GW_EINVAL, 0},
    {"2026-13-01T09:00:00Z", GW_EINVAL, 0},
    {"2026-00-01T09:00:00Z", GW_EINVAL, 0},
    {"2026-12-00T09:00:00Z", GW_EINVAL, 0},
    {"2026-12-01T24:00:00Z", GW_EINVAL, 0},
    {"2026-12-01T09:60:00Z", GW_EINVAL, 0},
    {"2026-12-01T09:00:61Z", GW_EINVAL, 0},
    {"2026-12-01T09:00:00", GW_EINVAL, 0},        /* no zone: ambiguous */
    {"2026-12-01T09:00:00.5", GW_EINVAL, 0},
    {"2026-12-01T09:00Z", GW_EINVAL, 0},
    {"2026-12-01", GW_EINVAL, 0},
    {"2026-12-01 09:00:00Z", GW_EINVAL, 0},
    {"2026-12-01T09:00:00+0200", GW_EINVAL, 0},
    {"2026-12-01T09:00:00+02", GW_EINVAL, 0},
    {"2026-12-01T09:00:00+24:00", GW_EINVAL, 0},
    {"2026-12-01T09:00:00+02:60", GW_EINVAL, 0},
    {"2026-12-01T09:00:00.Z", GW_EINVAL, 0},
    {"2026-12-01T09:00:00ZZ", GW_EINVAL, 0},
    {"2026-12-01T09:00:00Z ", GW_EINVAL, 0},
    {" 2026-12-01T09:00:00Z", GW_EINVAL, 0},
    {"2026/12/01T09:00:00Z", GW_EINVAL, 0},
    {"+026-12-01T09:00:00Z", GW_EINVAL, 0},
    {"2026-1-01T09:00:00Z", GW_EINVAL, 0},
    {"tomorrow at nine", GW_EINVAL, 0},
    {"", GW_EINVAL, 0},
};

static void test_timefmt_parse(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(time_cases); i++) {
		const struct parse_time_case *c = &time_cases[i];
		time_t got = 12345;
		gw_rc rc = timefmt_parse(c->text, &got);

		CHECK_RC(rc, c->rc, c->text);
		if(!rc)
			CHECK(got == c->want, "%s: %lld, want %lld", c->text, (long long)got,
			      (long long)c->want);
	}
	{
		time_t got = 0;
		assert_int_equal(timefmt_parse(NULL, &got), GW_EINVAL);
	}
}

/* ---- crypto ---- */

static bool b64url_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '_';
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

struct token_case {
	const char *prefix;
	size_t bufsize;
	gw_rc rc;
};

static const struct token_case token_cases[] = {
    {"", CRYPTO_TOKEN_LEN, GW_OK},
    {"ot_", CRYPTO_TOKEN_LEN + 3, GW_OK},
    {"ot_", CRYPTO_TOKEN_LEN + 2, GW_EINVAL}, /* does not fit: refused, not cut short */
    {"", CRYPTO_TOKEN_LEN - 1, GW_EINVAL},
};

#define N_TOKENS 2000

static void test_crypto_tokens(void **state)
{
	static char toks[N_TOKENS][CRYPTO_TOKEN_LEN];
	size_t i, j;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(token_cases); i++) {
		const struct token_case *c = &token_cases[i];
		char buf[128];
		gw_rc rc;

		memset(buf, 0, sizeof(buf));
		rc = crypto_token(c->prefix, buf, c->bufsize);
		CHECK_RC(rc, c->rc, c->prefix);
		CHECK(strlen(buf) < c->bufsize, "'%s': wrote past its buffer", c->prefix);
		if(rc)
			continue;
		CHECK(strlen(buf) == strlen(c->prefix) + 43, "'%s': length %zu", c->prefix,
		      strlen(buf));
		CHECK(strncmp(buf, c->prefix, strlen(c->prefix)) == 0, "'%s': prefix", c->prefix);
		for(j = strlen(c->prefix); buf[j]; j++)
			CHECK(b64url_char(buf[j]), "'%s': character '%c' outside base64url", buf, buf[j]);
	}
	/* 2000 tokens: all different, and every base64url character turns up somewhere */
	for(i = 0; i < N_TOKENS; i++)
		assert_int_equal(crypto_token("", toks[i], sizeof(toks[i])), GW_OK);
	qsort(toks, N_TOKENS, sizeof(toks[0]), cmp_str);
	for(i = 1; i < N_TOKENS; i++)
		CHECK(strcmp(toks[i - 1], toks[i]) != 0, "token repeated: %s", toks[i]);
	{
		static const char alphabet[] =
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		for(j = 0; alphabet[j]; j++) {
			bool seen = false;
			for(i = 0; i < N_TOKENS && !seen; i++)
				seen = strchr(toks[i], alphabet[j]) != NULL;
			CHECK(seen, "'%c' never appears in %d tokens", alphabet[j], N_TOKENS);
		}
	}
}

struct sha_case {
	const char *in;
	const char *hex;
};

/* FIPS 180-2 appendix B and the empty string */
static const struct sha_case sha_cases[] = {
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
};

static void test_crypto_sha256(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(sha_cases); i++) {
		char out[CRYPTO_HASH_HEX + 8];
		memset(out, 'X', sizeof(out));
		crypto_sha256_hex(sha_cases[i].in, strlen(sha_cases[i].in), out);
		CHECK(strcmp(out, sha_cases[i].hex) == 0, "sha256(\"%s\") = %s", sha_cases[i].in, out);
		CHECK(out[CRYPTO_HASH_HEX] == 'X', "wrote past 65 bytes");
	}
}

static const unsigned char key_a[CRYPTO_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const unsigned char key_b[CRYPTO_KEY_LEN] = "0123456789abcdef0123456789abcdeF";

static void test_crypto_seal_round_trip(void **state)
{
	static const char *const plains[] = {
	    "", "s", "refresh-token-1//0gABCDEF", "p\xc3\xa4ssw\xc3\xb6rd with spaces\n",
	    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
	    "-----END PRIVATE KEY-----\n",
	};
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(plains); i++) {
		char *s1 = NULL, *s2 = NULL, *back = NULL;

		assert_int_equal(crypto_seal(key_a, plains[i], &s1), GW_OK);
		assert_int_equal(crypto_seal(key_a, plains[i], &s2), GW_OK);
		CHECK(strcmp(s1, s2) != 0, "\"%s\": two seals are equal (nonce reused?)", plains[i]);
		CHECK(strlen(plains[i]) < 8 || strstr(s1, plains[i]) == NULL, "\"%s\": in clear",
		      plains[i]);
		assert_int_equal(crypto_open(key_a, s1, &back), GW_OK);
		CHECK(strcmp(back, plains[i]) == 0, "\"%s\": opened as \"%s\"", plains[i], back);
		free(back);
		back = NULL;
		assert_int_equal(crypto_open(key_a, s2, &back), GW_OK);
		CHECK(strcmp(back, plains[i]) == 0, "\"%s\": opened as \"%s\"", plains[i], back);
		free(back);
		back = (char *)&i;
		CHECK(crypto_open(key_b, s1, &back) != GW_OK, "\"%s\": opened with the wrong key",
		      plains[i]);
		CHECK(back == NULL, "\"%s\": output with the wrong key", plains[i]);
		free(s1);
		free(s2);
	}
	/* a long secret */
	{
		char *big = malloc(10001), *s = NULL, *back = NULL;
		assert_non_null(big);
		memset(big, 'k', 10000);
		big[10000] = '\0';
		assert_int_equal(crypto_seal(key_a, big, &s), GW_OK);
		assert_int_equal(crypto_open(key_a, s, &back), GW_OK);
		assert_string_equal(back, big);
		free(back);
		free(s);
		free(big);
	}
}

/* where a stored secret is damaged: a base64 character replaced at an offset from the start
 * (>= 0) or the end (< 0, before any padding) */
struct tamper_case {
	const char *name;
	int at;
};

static const struct tamper_case tamper_cases[] = {
    {"nonce", 2},
    {"ciphertext", 20},
    {"tag", -6},
};

static char swap_b64(char ch)
{
	return ch == 'A' ? 'B' : 'A';
}

static void test_crypto_tamper(void **state)
{
	static const char *const bad[] = {"", "AAAA", "not base64 at all!!!", "QUJD",
	                                  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
	char *sealed = NULL;
	size_t i, len;

	(void)state;
	assert_int_equal(crypto_seal(key_a, "the client secret", &sealed), GW_OK);
	len = strlen(sealed);
	for(i = 0; i < GW_ARRAY_LEN(tamper_cases); i++) {
		const struct tamper_case *c = &tamper_cases[i];
		char *copy = strdup(sealed), *back = (char *)&i;
		size_t pad = 0, pos;

		assert_non_null(copy);
		while(pad < len && copy[len - 1 - pad] == '=')
			pad++;
		pos = c->at >= 0 ? (size_t)c->at : len - pad + (size_t)(ptrdiff_t)c->at;
		copy[pos] = swap_b64(copy[pos]);
		CHECK(crypto_open(key_a, copy, &back) != GW_OK, "%s changed: still opens", c->name);
		CHECK(back == NULL, "%s changed: output", c->name);
		free(copy);
	}
	/* cut short: the tag is gone */
	{
		char *copy = strdup(sealed), *back = NULL;
		assert_non_null(copy);
		copy[len - 8] = '\0';
		assert_true(crypto_open(key_a, copy, &back) != GW_OK);
		assert_null(back);
		free(copy);
	}
	for(i = 0; i < GW_ARRAY_LEN(bad); i++) {
		char *back = NULL;
		CHECK(crypto_open(key_a, bad[i], &back) != GW_OK, "\"%s\" opened", bad[i]);
		assert_null(back);
	}
	free(sealed);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* the master key file: made once, mode 0600, never overwritten */
static void test_crypto_key_file(void **state)
{
	char dir[] = "/tmp/test_common.XXXXXX", path[64], shortp[64];
	unsigned char k1[CRYPTO_KEY_LEN], k2[CRYPTO_KEY_LEN];
	struct gw_err err = {0};
	struct stat sb;
	FILE *fp;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/master.key", dir);
	snprintf(shortp, sizeof(shortp), "%s/short.key", dir);
	assert_int_equal(crypto_key_create(path, &err), GW_OK);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(sb.st_size, CRYPTO_KEY_LEN);
	assert_int_equal(crypto_key_load(path, k1, &err), GW_OK);
	assert_int_equal(crypto_key_create(path, &err), GW_EIO); /* exists: not replaced */
	assert_int_equal(crypto_key_load(path, k2, &err), GW_OK);
	assert_memory_equal(k1, k2, CRYPTO_KEY_LEN);
	fp = fopen(shortp, "w");
	assert_non_null(fp);
	fputs("short", fp);
	fclose(fp);
	assert_int_equal(crypto_key_load(shortp, k2, &err), GW_EIO);
	assert_int_equal(nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
	assert_int_equal(crypto_key_load(path, k2, &err), GW_EIO);
}

/* ---- tz ---- */

struct tz_valid_case {
	const char *tzid;
	bool valid;
};

static const struct tz_valid_case tz_valid_cases[] = {
    {"UTC", true},
    {"Etc/UTC", true},
    {"Europe/Berlin", true},
    {"America/New_York", true},
    {"Asia/Kolkata", true},
    {"Australia/Lord_Howe", true},
    {"Mars/Olympus_Mons", false},
    {"Europe/Berlin/", false},
    {"Berlin", false},
    {"", false},
    {NULL, false},
    {"../../../etc/passwd", false},
    {"Europe/Berlin\nX-Injected: 1", false},
    {"Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Bbbb", false},
};

static void test_tz_valid(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(tz_valid_cases); i++) {
		const struct tz_valid_case *c = &tz_valid_cases[i];
		CHECK(tz_valid(c->tzid) == c->valid, "tz_valid(%s) = %d", c->tzid ? c->tzid : "NULL",
		      !c->valid);
	}
}

struct tz_local_case {
	const char *tzid;
	int y, m, d, h, mi;
	gw_rc rc;
	const char *utc;
};

static const struct tz_local_case tz_local_cases[] = {
    /* Berlin moves from CET (+01) to CEST (+02) on Sunday 2026-03-29 */
    {"Europe/Berlin", 2026, 3, 27, 9, 0, GW_OK, "2026-03-27T08:00:00Z"},
    {"Europe/Berlin", 2026, 3, 30, 9, 0, GW_OK, "2026-03-30T07:00:00Z"},
    {"Europe/Berlin", 2026, 12, 1, 10, 0, GW_OK, "2026-12-01T09:00:00Z"},
    {"UTC", 2026, 3, 27, 9, 0, GW_OK, "2026-03-27T09:00:00Z"},
    {"America/New_York", 2026, 7, 4, 12, 30, GW_OK, "2026-07-04T16:30:00Z"},
    {"Asia/Kolkata", 2026, 1, 1, 5, 30, GW_OK, "2026-01-01T00:00:00Z"},
    {"Mars/Olympus_Mons", 2026, 3, 27, 9, 0, GW_EINVAL, NULL},
};

struct tz_format_case {
	const char *tzid;
	const char *utc;
	gw_rc rc;
	const char *text;
};

static const struct tz_format_case tz_format_cases[] = {
    {"Europe/Berlin", "2026-12-01T09:00:00Z", GW_OK,
     "Tuesday 1 December 2026, 10:00 (Europe/Berlin)"},
    {"Europe/Berlin", "2026-03-27T08:00:00Z", GW_OK,
     "Friday 27 March 2026, 09:00 (Europe/Berlin)"},
    {"Europe/Berlin", "2026-03-30T07:00:00Z", GW_OK,
     "Monday 30 March 2026, 09:00 (Europe/Berlin)"},
    {"UTC", "2026-03-27T08:05:00Z", GW_OK, "Friday 27 March 2026, 08:05 (UTC)"},
    {"America/New_York", "2026-07-04T16:30:00Z", GW_OK,
     "Saturday 4 July 2026, 12:30 (America/New_York)"},
    {"America/New_York", "2026-01-01T03:00:00Z", GW_OK,
     "Wednesday 31 December 2025, 22:00 (America/New_York)"},
    {"Asia/Kolkata", "2026-01-01T00:00:00Z", GW_OK,
     "Thursday 1 January 2026, 05:30 (Asia/Kolkata)"},
    {"Mars/Olympus_Mons", "2026-01-01T00:00:00Z", GW_EINVAL, NULL},
};

static void test_tz_convert(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(tz_local_cases); i++) {
		const struct tz_local_case *c = &tz_local_cases[i];
		time_t got = 0, want = 0;
		char buf[TIMEFMT_LEN];
		gw_rc rc = tz_local_to_utc(c->tzid, c->y, c->m, c->d, c->h, c->mi, &got);

		CHECK_RC(rc, c->rc, c->tzid);
		if(rc)
			continue;
		assert_int_equal(timefmt_parse(c->utc, &want), GW_OK);
		timefmt_rfc3339(got, buf);
		CHECK(got == want, "%s %04d-%02d-%02d %02d:%02d: %s, want %s", c->tzid, c->y, c->m,
		      c->d, c->h, c->mi, buf, c->utc);
	}
	for(i = 0; i < GW_ARRAY_LEN(tz_format_cases); i++) {
		const struct tz_format_case *c = &tz_format_cases[i];
		char buf[128];
		time_t t = 0;
		gw_rc rc;

		assert_int_equal(timefmt_parse(c->utc, &t), GW_OK);
		memset(buf, 0, sizeof(buf));
		rc = tz_format(c->tzid, t, buf, sizeof(buf));
		CHECK_RC(rc, c->rc, c->tzid);
		if(!rc)
			CHECK(strcmp(buf, c->text) == 0, "%s in %s: '%s', want '%s'", c->utc, c->tzid, buf,
			      c->text);
	}
	/* a small buffer is cut, never overrun */
	{
		char small[12];
		time_t t = 0;
		memset(small, 'Z', sizeof(small));
		assert_int_equal(timefmt_parse("2026-12-01T09:00:00Z", &t), GW_OK);
		assert_int_equal(tz_format("Europe/Berlin", t, small, 8), GW_OK);
		assert_int_equal(strlen(small), 7);
		assert_int_equal(small[8], 'Z');
	}
}

/* captured - what fn wrote to stderr, one buffer (stderr goes to a temp file meanwhile) */
static void captured(void (*fn)(void), char *buf, size_t n)
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t got;

	assert_non_null(tmp);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	fn();
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(tmp);
	got = fread(buf, 1, n - 1, tmp);
	buf[got] = '\0';
	fclose(tmp);
}

static void write_members(void)
{
	log_members("info", "delivery", "\"attempt\":2,\"kind\":\"reminder\",\"outbox_id\":41");
	log_members("debug", "delivery", "\"outbox_id\":42"); /* below the level: dropped */
}

static void write_long(void)
{
	char m[2000];

	memset(m, 'a', sizeof(m) - 1);
	m[sizeof(m) - 1] = '\0';
	m[0] = '"';
	m[10] = '"';
	m[11] = ':';
	m[12] = '"';
	m[sizeof(m) - 2] = '"';
	log_members("warn", "long", m);
}

/* log_members: one JSON line with ts, level, event and the members; dropped below the level;
 * never a line cut into bad JSON */
static void test_log_members(void **state)
{
	char buf[4096];
	json_t *line;
	json_error_t e;

	(void)state;
	assert_int_equal(log_set_level("info"), 0);
	captured(write_members, buf, sizeof(buf));
	assert_non_null(strchr(buf, '\n'));
	assert_null(strchr(strchr(buf, '\n') + 1, '\n'));
	line = json_loads(buf, JSON_DISABLE_EOF_CHECK, &e);
	assert_non_null(line);
	assert_string_equal(json_string_value(json_object_get(line, "event")), "delivery");
	assert_string_equal(json_string_value(json_object_get(line, "level")), "info");
	assert_string_equal(json_string_value(json_object_get(line, "kind")), "reminder");
	assert_int_equal(json_integer_value(json_object_get(line, "attempt")), 2);
	assert_int_equal(json_integer_value(json_object_get(line, "outbox_id")), 41);
	assert_int_equal(strlen(json_string_value(json_object_get(line, "ts"))), 20);
	json_decref(line);
	captured(write_long, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

/* log_buf: nothing written before the flush or a full buffer; then whole lines, each valid
 * JSON, in order, also past one buffer's worth */
static struct log_buf test_lb;
static int lb_seen_early; /* bytes on stderr before the flush */

static void write_buffered(void)
{
	char m[64];
	int i;

	memset(&test_lb, 0, sizeof(test_lb));
	for(i = 0; i < 3; i++) {
		snprintf(m, sizeof(m), "\"outbox_id\":%d", i);
		log_buf_members(&test_lb, "info", "delivery", m);
	}
	log_buf_members(&test_lb, "debug", "delivery", "\"outbox_id\":99"); /* dropped */
	lb_seen_early = (int)lseek(STDERR_FILENO, 0, SEEK_CUR);
	log_buf_flush(&test_lb);
	/* past one buffer: the first lines go when the next would not fit */
	for(i = 3; i < 100; i++) {
		snprintf(m, sizeof(m), "\"outbox_id\":%d", i);
		log_buf_members(&test_lb, "info", "delivery", m);
	}
	log_buf_flush(&test_lb);
}

static void test_log_buf(void **state)
{
	static char buf[65536];
	char *p, *nl;
	int i = 0;

	(void)state;
	assert_int_equal(log_set_level("info"), 0);
	captured(write_buffered, buf, sizeof(buf));
	assert_int_equal(lb_seen_early, 0);
	for(p = buf; (nl = strchr(p, '\n')) != NULL; p = nl + 1, i++) {
		json_error_t e;
		json_t *line = json_loadb(p, (size_t)(nl - p), 0, &e);

		assert_non_null(line);
		assert_int_equal(json_integer_value(json_object_get(line, "outbox_id")), i);
		assert_string_equal(json_string_value(json_object_get(line, "event")), "delivery");
		assert_int_equal(strlen(json_string_value(json_object_get(line, "ts"))), 20);
		json_decref(line);
	}
	assert_int_equal(i, 100);
	assert_string_equal(p, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jv_parse),
	    cmocka_unit_test(test_jv_string),
	    cmocka_unit_test(test_jv_int_bool),
	    cmocka_unit_test(test_jv_email),
	    cmocka_unit_test(test_jv_skills),
	    cmocka_unit_test(test_jv_only),
	    cmocka_unit_test(test_timefmt_round_trip),
	    cmocka_unit_test(test_timefmt_parse),
	    cmocka_unit_test(test_crypto_tokens),
	    cmocka_unit_test(test_crypto_sha256),
	    cmocka_unit_test(test_crypto_seal_round_trip),
	    cmocka_unit_test(test_crypto_tamper),
	    cmocka_unit_test(test_crypto_key_file),
	    cmocka_unit_test(test_tz_valid),
	    cmocka_unit_test(test_tz_convert),
	    cmocka_unit_test(test_log_members),
	    cmocka_unit_test(test_log_buf),
	};

	tz_init();
	return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
