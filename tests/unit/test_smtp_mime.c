/*
 * test_smtp_mime.c - smtp_mime_build() and smtp_header_safe(): the built message is parsed back
 * (header fields unfolded, RFC 2047 words decoded, multipart split, quoted-printable and base64
 * decoded) and compared with the payload. Tables: header injection (CR, LF, CRLF, NUL in every
 * header field), invalid values, display names, dates, subjects, bodies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "smtp/smtp.h"

/* ---- parsing helpers ----------------------------------------------------------------- */

/* hex_val - value of a hex digit or -1 */
static int hex_val(char c)
{
	if(c >= '0' && c <= '9')
		return c - '0';
	if(c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if(c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* b64_decode - decode base64, skipping CR/LF; caller frees; *outlen set */
static char *b64_decode(const char *s, size_t n, size_t *outlen)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc(n + 1);
	unsigned acc = 0;
	int bits = 0;
	size_t i, o = 0;

	assert_non_null(out);
	for(i = 0; i < n; i++) {
		const char *p;

		if(s[i] == '\r' || s[i] == '\n' || s[i] == '=')
			continue;
		p = strchr(tbl, s[i]);
		if(!p || !*p)
			fail_msg("bad base64 character 0x%02x", (unsigned char)s[i]);
		acc = (acc << 6) | (unsigned)(p - tbl);
		bits += 6;
		if(bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	if(outlen)
		*outlen = o;
	return out;
}

/* qp_decode - decode quoted-printable (soft breaks removed); caller frees */
static char *qp_decode(const char *s, size_t n, size_t *outlen)
{
	char *out = malloc(n + 1);
	size_t i, o = 0;

	assert_non_null(out);
	for(i = 0; i < n; i++) {
		if(s[i] != '=') {
			out[o++] = s[i];
			continue;
		}
		if(i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
			i += 2;
			continue;
		}
		if(i + 2 >= n || hex_val(s[i + 1]) < 0 || hex_val(s[i + 2]) < 0)
			fail_msg("bad quoted-printable escape at %zu", i);
		out[o++] = (char)(hex_val(s[i + 1]) * 16 + hex_val(s[i + 2]));
		i += 2;
	}
	out[o] = '\0';
	if(outlen)
		*outlen = o;
	return out;
}

/* header_end - length of the header section (up to and including the blank line) */
static size_t header_end(const char *ent)
{
	const char *p = strstr(ent, "\r\n\r\n");

	assert_non_null(p);
	return (size_t)(p - ent) + 4;
}

/* header_get - the first field called name, unfolded (CRLF removed, RFC 5322 2.2.3) with
 * leading white space stripped; *count = how many fields have that name. NULL if none. */
static char *header_get(const char *ent, const char *name, int *count)
{
	size_t hlen = header_end(ent), nlen = strlen(name), i = 0;
	char *value = NULL;
	int cnt = 0;

	while(i < hlen - 2) {
		size_t start = i, end;

		/* one field: this line and its continuation lines */
		end = i;
		for(;;) {
			const char *crlf = strstr(ent + end, "\r\n");

			end = (size_t)(crlf - ent) + 2;
			if(ent[end] != ' ' && ent[end] != '\t')
				break;
		}
		if(end - start > nlen && !strncasecmp(ent + start, name, nlen) &&
		   ent[start + nlen] == ':') {
			cnt++;
			if(!value) {
				size_t o = 0, k = start + nlen + 1;

				value = malloc(end - start + 1);
				assert_non_null(value);
				while(k < end && (ent[k] == ' ' || ent[k] == '\t'))
					k++;
				for(; k < end; k++)
					if(ent[k] != '\r' && ent[k] != '\n')
						value[o++] = ent[k];
				value[o] = '\0';
			}
		}
		i = end;
	}
	if(count)
		*count = cnt;
	return value;
}

/* header_count - number of header fields in the section */
static int header_count(const char *ent)
{
	size_t hlen = header_end(ent), i;
	int n = 0;

	for(i = 0; i < hlen - 2; i++)
		if((i == 0 || ent[i - 1] == '\n') && ent[i] != ' ' && ent[i] != '\t')
			n++;
	return n;
}

/* ew_decode - decode RFC 2047 B words of value; white space between two words dropped */
static char *ew_decode(const char *v)
{
	size_t n = strlen(v), i = 0, o = 0;
	char *out = malloc(n + 1);
	int prev_ew = 0;

	assert_non_null(out);
	while(i < n) {
		if(!strncmp(v + i, "=?UTF-8?B?", 10)) {
			const char *end = strstr(v + i + 10, "?=");
			size_t dl;
			char *d;

			assert_non_null(end);
			assert_true(end - (v + i) + 2 <= 75); /* RFC 2047 2 */
			d = b64_decode(v + i + 10, (size_t)(end - (v + i + 10)), &dl);
			memcpy(out + o, d, dl);
			o += dl;
			free(d);
			i = (size_t)(end - v) + 2;
			prev_ew = 1;
			continue;
		}
		if(prev_ew && (v[i] == ' ' || v[i] == '\t')) {
			size_t j = i;

			while(j < n && (v[j] == ' ' || v[j] == '\t'))
				j++;
			if(!strncmp(v + j, "=?UTF-8?B?", 10)) {
				i = j;
				continue;
			}
		}
		prev_ew = 0;
		out[o++] = v[i++];
	}
	out[o] = '\0';
	return out;
}

/* param_get - a parameter of a Content-Type value (quotes removed); caller frees */
static char *param_get(const char *ctype, const char *param)
{
	char key[64];
	const char *p;
	size_t n;
	char *out;

	snprintf(key, sizeof(key), "%s=", param);
	p = strcasestr(ctype, key);
	if(!p)
		return NULL;
	p += strlen(key);
	if(*p == '"') {
		p++;
		n = strcspn(p, "\"");
	} else {
		n = strcspn(p, "; ");
	}
	out = strndup(p, n);
	assert_non_null(out);
	return out;
}

/* lines_ok - every line ends CRLF (no bare CR or LF) and is at most max characters */
static void lines_ok(const char *m, size_t len, size_t max)
{
	size_t i, col = 0;

	for(i = 0; i < len; i++) {
		if(m[i] == '\r') {
			assert_true(i + 1 < len && m[i + 1] == '\n');
			i++;
			col = 0;
			continue;
		}
		assert_int_not_equal(m[i], '\n');
		assert_true((unsigned char)m[i] < 0x80); /* 7-bit on the wire */
		col++;
		if(col > max)
			fail_msg("line longer than %zu at offset %zu", max, i);
	}
	assert_true(len >= 2 && m[len - 2] == '\r' && m[len - 1] == '\n');
}

#define MAX_PARTS 4

/* split_multipart - body parts of a multipart entity (each a strndup'd entity); returns count */
static int split_multipart(const char *ent, char *parts[MAX_PARTS])
{
	char *ctype = header_get(ent, "Content-Type", NULL);
	char *bnd, delim[128], close_delim[128];
	const char *body = ent + header_end(ent), *p, *next;
	int n = 0;

	assert_non_null(ctype);
	assert_true(strncasecmp(ctype, "multipart/", 10) == 0);
	bnd = param_get(ctype, "boundary");
	assert_non_null(bnd);
	snprintf(delim, sizeof(delim), "--%s\r\n", bnd);
	snprintf(close_delim, sizeof(close_delim), "\r\n--%s--\r\n", bnd);
	assert_true(strncmp(body, delim, strlen(delim)) == 0);
	p = body + strlen(delim);
	snprintf(delim, sizeof(delim), "\r\n--%s\r\n", bnd);
	for(;;) {
		next = strstr(p, delim);
		if(!next) {
			next = strstr(p, close_delim);
			assert_non_null(next);
			assert_true(n < MAX_PARTS);
			parts[n++] = strndup(p, (size_t)(next - p) + 2);
			break;
		}
		assert_true(n < MAX_PARTS);
		parts[n++] = strndup(p, (size_t)(next - p) + 2);
		p = next + strlen(delim);
	}
	free(bnd);
	free(ctype);
	return n;
}

/* free_parts - free what split_multipart returned */
static void free_parts(char *parts[], int n)
{
	int i;

	for(i = 0; i < n; i++)
		free(parts[i]);
}

/* part_content - decoded body of a leaf entity per its Content-Transfer-Encoding */
static char *part_content(const char *ent, size_t *outlen)
{
	char *cte = header_get(ent, "Content-Transfer-Encoding", NULL);
	const char *body = ent + header_end(ent);
	size_t blen = strlen(body);
	char *out = NULL;

	assert_non_null(cte);
	/* the CRLF before the next delimiter belongs to the delimiter (RFC 2046 5.1.1) */
	if(blen >= 2)
		blen -= 2;
	if(!strcasecmp(cte, "quoted-printable"))
		out = qp_decode(body, blen, outlen);
	else if(!strcasecmp(cte, "base64"))
		out = b64_decode(body, blen, outlen);
	else
		fail_msg("unexpected encoding %s", cte);
	free(cte);
	return out;
}

/* crlf - s with every LF as CRLF; caller frees */
static char *crlf(const char *s)
{
	size_t n = strlen(s), i, o = 0;
	char *out = malloc(2 * n + 1);

	assert_non_null(out);
	for(i = 0; i < n; i++) {
		if(s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = s[i];
	}
	out[o] = '\0';
	return out;
}

/* ---- payloads -------------------------------------------------------------------------- */

/* base_payload - a valid payload; new reference */
static json_t *base_payload(void)
{
	json_t *p = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:s, s:s, s:s}",
	                      "kind", "new_request", "message_id", "<0a1b2c.new_request@ordinatus>",
	                      "date", "2026-12-01T09:00:00Z", "from", "address", "org@example.com",
	                      "name", "Acme Training", "to", "address", "trainer@example.org",
	                      "name", "Customer Name", "subject", "New request available", "text",
	                      "A new request is waiting.\nClaim it here: https://x.example/r/1\n",
	                      "html", "<p>A new request is waiting.</p>");

	assert_non_null(p);
	return p;
}

/* build_ok - build and check line ends and lengths; caller frees */
static char *build_ok(const json_t *p, const char *from_address, const char *from_name)
{
	struct gw_err err;
	char *m = NULL;
	size_t len = 0;
	gw_rc rc;

	memset(&err, 0, sizeof(err));
	rc = smtp_mime_build(p, from_address, from_name, &m, &len, &err);
	if(rc)
		fail_msg("build failed: %s %s: %s", gw_rc_name(rc), err.field, err.message);
	assert_non_null(m);
	assert_int_equal(strlen(m), len);
	lines_ok(m, len, 78);
	return m;
}

/* expect_header - field name appears once with the (RFC 2047 decoded) value */
static void expect_header(const char *m, const char *name, const char *want)
{
	int count = 0;
	char *v = header_get(m, name, &count);
	char *d;

	if(!v)
		fail_msg("no %s header", name);
	assert_int_equal(count, 1);
	d = ew_decode(v);
	if(strcmp(d, want))
		fail_msg("%s: got [%s] want [%s]", name, d, want);
	free(d);
	free(v);
}

/* ---- tests ----------------------------------------------------------------------------- */

/* test_headers_and_parts - the full layout of a plain (no ics) email */
static void test_headers_and_parts(void **state)
{
	json_t *p = base_payload();
	char *m = build_ok(p, NULL, NULL), *parts[MAX_PARTS], *ct, *body, *want;
	size_t blen;
	int n;

	(void)state;
	expect_header(m, "Message-ID", "<0a1b2c.new_request@ordinatus>");
	expect_header(m, "Date", "Tue, 01 Dec 2026 09:00:00 +0000");
	expect_header(m, "From", "Acme Training <org@example.com>");
	expect_header(m, "To", "Customer Name <trainer@example.org>");
	expect_header(m, "Subject", "New request available");
	expect_header(m, "MIME-Version", "1.0");
	expect_header(m, "X-Ordinatus-Kind", "new_request");
	assert_int_equal(header_count(m), 8); /* the seven above + Content-Type */
	assert_true(strncmp(m, "Message-ID: ", 12) == 0);

	ct = header_get(m, "Content-Type", NULL);
	assert_true(strncmp(ct, "multipart/alternative;", 22) == 0);
	free(ct);
	n = split_multipart(m, parts);
	assert_int_equal(n, 2);
	expect_header(parts[0], "Content-Type", "text/plain; charset=UTF-8");
	expect_header(parts[0], "Content-Transfer-Encoding", "quoted-printable");
	expect_header(parts[1], "Content-Type", "text/html; charset=UTF-8");
	body = part_content(parts[0], &blen);
	want = crlf(json_string_value(json_object_get(p, "text")));
	/* the final line break of the text belongs to the delimiter */
	want[strlen(want) - 2] = '\0';
	assert_string_equal(body, want);
	free(body);
	free(want);
	body = part_content(parts[1], &blen);
	assert_string_equal(body, "<p>A new request is waiting.</p>");
	free(body);
	free_parts(parts, n);
	free(m);
	json_decref(p);
}

/* test_from_override - the provider's from_address/from_name replace the payload's From */
static void test_from_override(void **state)
{
	json_t *p = base_payload();
	char *m;

	(void)state;
	m = build_ok(p, "noreply@mail.example.net", "Acme Bookings");
	expect_header(m, "From", "Acme Bookings <noreply@mail.example.net>");
	free(m);
	m = build_ok(p, "noreply@mail.example.net", NULL); /* the payload's name stays */
	expect_header(m, "From", "Acme Training <noreply@mail.example.net>");
	free(m);
	json_object_del(p, "from"); /* not needed when the provider supplies one */
	m = build_ok(p, "noreply@mail.example.net", NULL);
	expect_header(m, "From", "noreply@mail.example.net");
	free(m);
	json_decref(p);
}

struct inj_case {
	const char *field;  /* err->field expected */
	const char *obj;    /* sub-object or NULL */
	const char *key;
	const char *value;  /* with the bad byte */
	size_t len;         /* value length (NUL cases) */
};

#define INJ(field, obj, key, s) {field, obj, key, s, sizeof(s) - 1}

/* test_header_injection - CR, LF, CRLF or NUL in any header value is refused (GW_EINVAL and the
 * field named): user text can never add a header */
static void test_header_injection(void **state)
{
	static const struct inj_case cases[] = {
	    INJ("subject", NULL, "subject", "Hello\r\nBcc: victim@example.com"),
	    INJ("subject", NULL, "subject", "Hello\nBcc: victim@example.com"),
	    INJ("subject", NULL, "subject", "Hello\rBcc: victim@example.com"),
	    INJ("subject", NULL, "subject", "Hello\0Bcc: victim@example.com"),
	    INJ("subject", NULL, "subject", "Grüße\r\n\r\n<html>body</html>"),
	    INJ("to.address", "to", "address", "a@example.com\r\nBcc: v@example.com"),
	    INJ("to.address", "to", "address", "a@example.com\n"),
	    INJ("to.address", "to", "address", "a@example.com\0x"),
	    INJ("to.name", "to", "name", "Name\r\nBcc: v@example.com"),
	    INJ("to.name", "to", "name", "Name\n"),
	    INJ("to.name", "to", "name", "Na\0me"),
	    INJ("from.address", "from", "address", "org@example.com\r\nX-Evil: 1"),
	    INJ("from.name", "from", "name", "Org\rX-Evil: 1"),
	    INJ("from.name", "from", "name", "Org\0"),
	    INJ("message_id", NULL, "message_id", "<a@b>\r\nBcc: v@example.com"),
	    INJ("message_id", NULL, "message_id", "<a@b>\0"),
	    INJ("kind", NULL, "kind", "reminder\r\nBcc: v@example.com"),
	    INJ("kind", NULL, "kind", "reminder\n"),
	    INJ("date", NULL, "date", "2026-12-01T09:00:00Z\r\nBcc: v@example.com"),
	    INJ("ics_method", NULL, "ics_method", "REQUEST\r\nBcc: v@example.com"),
	};
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(cases); i++) {
		const struct inj_case *c = &cases[i];
		json_t *p = base_payload(), *target = p;
		struct gw_err err;
		char *m = NULL;
		size_t len = 99;
		gw_rc rc;

		if(c->obj)
			target = json_object_get(p, c->obj);
		json_object_set_new(target, c->key, json_stringn(c->value, c->len));
		json_object_set_new(p, "ics", json_string("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"));
		memset(&err, 0, sizeof(err));
		rc = smtp_mime_build(p, NULL, NULL, &m, &len, &err);
		if(rc != GW_EINVAL || strcmp(err.field, c->field))
			fail_msg("case %zu (%s): rc %s field [%s]", i, c->field, gw_rc_name(rc),
			         err.field);
		assert_null(m);
		assert_int_equal(len, 0);
		json_decref(p);
	}
}

/* test_injection_args - the provider's own From values are checked the same way */
static void test_injection_args(void **state)
{
	json_t *p = base_payload();
	struct gw_err err;
	char *m = NULL;
	size_t len;
	gw_rc rc;

	(void)state;
	memset(&err, 0, sizeof(err));
	rc = smtp_mime_build(p, "a@b.example\r\nBcc: v@x.example", NULL, &m, &len, &err);
	assert_int_equal(rc, GW_EINVAL);
	assert_string_equal(err.field, "from_address");
	assert_null(m);
	memset(&err, 0, sizeof(err));
	rc = smtp_mime_build(p, "a@b.example", "Name\nBcc: v@x.example", &m, &len, &err);
	assert_int_equal(rc, GW_EINVAL);
	assert_string_equal(err.field, "from_name");
	assert_null(m);
	json_decref(p);
}

/* test_body_cannot_add_headers - CR/LF in the body text stays in the body */
static void test_body_cannot_add_headers(void **state)
{
	json_t *p = base_payload();
	char *m, *parts[MAX_PARTS], *body;
	int n, count;

	(void)state;
	json_object_set_new(p, "text", json_string("\r\nBcc: victim@example.com\r\n\r\nhi"));
	json_object_set_new(p, "html", json_string("\nBcc: victim@example.com\n"));
	m = build_ok(p, NULL, NULL);
	assert_null(header_get(m, "Bcc", &count));
	assert_int_equal(count, 0);
	n = split_multipart(m, parts);
	assert_int_equal(n, 2);
	assert_int_equal(header_count(parts[0]), 2);
	body = part_content(parts[0], NULL);
	assert_string_equal(body, "\r\nBcc: victim@example.com\r\n\r\nhi");
	free(body);
	free_parts(parts, n);
	free(m);
	json_decref(p);
}

struct bad_case {
	const char *field;
	const char *json; /* top-level keys replace the base payload's; null deletes */
};

/* test_invalid_values - missing or malformed fields fail with GW_EINVAL and the field */
static void test_invalid_values(void **state)
{
	static const struct bad_case cases[] = {
	    {"to.address", "{\"to\": {\"address\": \"a b@example.com\"}}"},
	    {"to.address", "{\"to\": {\"address\": \"<a@example.com>\"}}"},
	    {"to.address", "{\"to\": {\"address\": \"a@b@example.com\"}}"},
	    {"to.address", "{\"to\": {\"address\": \"example.com\"}}"},
	    {"to.address", "{\"to\": {\"address\": \"a@example.com, b@example.com\"}}"},
	    {"to.address", "{\"to\": {\"address\": \"@example.com\"}}"},
	    {"to.address", "{\"to\": {\"address\": \"ä@example.com\"}}"},
	    {"to.address", "{\"to\": {\"name\": \"No Address\"}}"},
	    {"to.address", "{\"to\": {\"address\": 42}}"},
	    {"to", "{\"to\": \"a@example.com\"}"},
	    {"to", "{\"to\": null}"},
	    {"from.address", "{\"from\": {\"address\": \"a@b>x@c\"}}"},
	    {"from", "{\"from\": null}"},
	    {"date", "{\"date\": \"2026-12-01 09:00\"}"},
	    {"date", "{\"date\": \"2026-02-30T09:00:00Z\"}"},
	    {"date", "{\"date\": \"2026-12-01T09:00:00\"}"},
	    {"date", "{\"date\": \"2026-12-01T25:00:00Z\"}"},
	    {"date", "{\"date\": null}"},
	    {"message_id", "{\"message_id\": \"no-at-sign\"}"},
	    {"message_id", "{\"message_id\": \"<a@b\"}"},
	    {"message_id", "{\"message_id\": \"<a b@c>\"}"},
	    {"message_id", "{\"message_id\": null}"},
	    {"kind", "{\"kind\": \"new request\"}"},
	    {"kind", "{\"kind\": \"\"}"},
	    {"kind", "{\"kind\": null}"},
	    {"subject", "{\"subject\": null}"},
	    {"subject", "{\"subject\": [\"x\"]}"},
	    {"text", "{\"text\": null, \"html\": null}"},
	    {"ics_method", "{\"ics\": \"BEGIN:VCALENDAR\", \"ics_method\": \"REQ;UEST\"}"},
	};
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(cases); i++) {
		json_t *p = base_payload(), *patch = json_loads(cases[i].json, 0, NULL);
		struct gw_err err;
		char *m = NULL;
		size_t len;
		gw_rc rc;
		const char *k;
		json_t *v;

		assert_non_null(patch);
		json_object_foreach(patch, k, v)
		{
			if(json_is_null(v))
				json_object_del(p, k);
			else
				json_object_set(p, k, v);
		}
		memset(&err, 0, sizeof(err));
		rc = smtp_mime_build(p, NULL, NULL, &m, &len, &err);
		if(rc != GW_EINVAL || strcmp(err.field, cases[i].field))
			fail_msg("case %zu %s: rc %s field [%s]", i, cases[i].json, gw_rc_name(rc),
			         err.field);
		assert_null(m);
		json_decref(patch);
		json_decref(p);
	}
	assert_int_equal(smtp_mime_build(NULL, NULL, NULL, &(char *){NULL}, NULL, NULL), GW_EINVAL);
}

struct date_case {
	const char *in;
	const char *want;
};

/* test_dates - RFC 3339 in, RFC 5322 3.3 out, always UTC "+0000" */
static void test_dates(void **state)
{
	static const struct date_case cases[] = {
	    {"2026-12-01T09:00:00Z", "Tue, 01 Dec 2026 09:00:00 +0000"},
	    {"2026-12-01T10:00:00+01:00", "Tue, 01 Dec 2026 09:00:00 +0000"},
	    {"2026-12-01T00:30:00-05:30", "Tue, 01 Dec 2026 06:00:00 +0000"},
	    {"2026-12-31T23:59:59.999z", "Thu, 31 Dec 2026 23:59:59 +0000"},
	    {"2028-02-29t12:00:00Z", "Tue, 29 Feb 2028 12:00:00 +0000"},
	    {"2027-01-01T00:30:00+01:00", "Thu, 31 Dec 2026 23:30:00 +0000"},
	    {"1970-01-01T00:00:00Z", "Thu, 01 Jan 1970 00:00:00 +0000"},
	};
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(cases); i++) {
		json_t *p = base_payload();
		char *m;

		json_object_set_new(p, "date", json_string(cases[i].in));
		m = build_ok(p, NULL, NULL);
		expect_header(m, "Date", cases[i].want);
		free(m);
		json_decref(p);
	}
}

struct subject_case {
	const char *subject;
	int encoded;   /* RFC 2047 words expected */
	int min_lines; /* folded into at least this many lines */
};

/* test_subjects - ASCII stays readable and is folded at white space; non-ASCII, control
 * characters, "=?" and unbreakable runs are B-encoded; every form decodes to the original */
static void test_subjects(void **state)
{
	static const struct subject_case cases[] = {
	    {"New request available", 0, 1},
	    {"", 0, 1},
	    {"Reminder: your session with Dr. Anna Schmidt starts tomorrow at 10:00 in room 4 "
	     "(bring your notes, your laptop and the printed exercise sheet from last week)",
	     0, 2},
	    {"Spaces  kept \t exactly   as    given, even when the line is folded over the "
	     "seventy-eight column limit",
	     0, 2},
	    {"Buchung bestätigt", 1, 1},
	    {"Ihre Buchung ist bestätigt: Dienstag, 1. Dezember 2026, 10:00 (Europe/Berlin) — "
	     "Zoom-Link folgt ✓ 😀 日本語のテキスト",
	     1, 3},
	    {"Looks like an encoded word =?UTF-8?B?SGk=?= but is not", 1, 1},
	    {"tab\tand bell\a", 1, 1},
	    {"https://example.com/a/very/long/link/without/any/white/space/at/all/0123456789abcdef",
	     1, 2},
	};
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(cases); i++) {
		json_t *p = base_payload();
		char *m, *raw;
		const char *h, *e;
		int lines = 1;

		json_object_set_new(p, "subject", json_string(cases[i].subject));
		m = build_ok(p, NULL, NULL);
		expect_header(m, "Subject", cases[i].subject);
		raw = header_get(m, "Subject", NULL);
		assert_int_equal(strstr(raw, "=?UTF-8?B?") != NULL, cases[i].encoded);
		free(raw);
		h = strstr(m, "\r\nSubject:") + 2;
		e = strstr(h, "\r\nMIME-Version:");
		for(; h < e; h++)
			if(*h == '\n')
				lines++;
		if(lines < cases[i].min_lines)
			fail_msg("case %zu: %d lines, want at least %d", i, lines,
			         cases[i].min_lines);
		free(m);
		json_decref(p);
	}
}

struct name_case {
	const char *name;
	const char *raw_prefix; /* how the To field starts on the wire */
	const char *decoded;    /* the field after RFC 2047 decoding */
};

/* test_display_names - atoms bare, specials quoted (RFC 5322 3.2.4), the rest encoded */
static void test_display_names(void **state)
{
	static const struct name_case cases[] = {
	    {"Customer Name", "Customer Name <", "Customer Name <c@example.org>"},
	    {"Smith, John", "\"Smith, John\" <", "\"Smith, John\" <c@example.org>"},
	    {"Dr. A \"Doc\" B\\C", "\"Dr. A \\\"Doc\\\" B\\\\C\" <",
	     "\"Dr. A \\\"Doc\\\" B\\\\C\" <c@example.org>"},
	    {"evil@example.com <x@y>", "\"evil@example.com <x@y>\" <",
	     "\"evil@example.com <x@y>\" <c@example.org>"},
	    {"Jürgen Müller", "=?UTF-8?B?", "Jürgen Müller <c@example.org>"},
	    {"=?UTF-8?B?SGk=?=", "=?UTF-8?B?", "=?UTF-8?B?SGk=?= <c@example.org>"},
	    {"", "c@example.org", "c@example.org"},
	};
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(cases); i++) {
		json_t *p = base_payload();
		char *m, *raw;

		json_object_set_new(p, "to", json_pack("{s:s, s:s}", "address", "c@example.org",
		                                       "name", cases[i].name));
		m = build_ok(p, NULL, NULL);
		raw = header_get(m, "To", NULL);
		if(strncmp(raw, cases[i].raw_prefix, strlen(cases[i].raw_prefix)))
			fail_msg("case %zu: raw [%s]", i, raw);
		free(raw);
		expect_header(m, "To", cases[i].decoded);
		free(m);
		json_decref(p);
	}
}

struct body_case {
	const char *text;
};

/* body_check - a text body through the builder: quoted-printable round trip; lines at most 76;
 * '.' and "From " at a line start encoded; trailing white space encoded; the boundary text not
 * in the body (i: the case, for the failure message) */
static void body_check(const char *text, size_t i)
{
	json_t *p = base_payload();
	char *m, *parts[MAX_PARTS], *got, *want, *bnd, *ct;
	const char *body;
	size_t k, col = 0;
	int n;

	json_object_set_new(p, "text", json_string(text));
	m = build_ok(p, NULL, NULL);
	ct = header_get(m, "Content-Type", NULL);
	bnd = param_get(ct, "boundary");
	n = split_multipart(m, parts);
	assert_int_equal(n, 2);
	body = parts[0] + header_end(parts[0]);
	assert_null(strstr(body, bnd));
	for(k = 0; body[k]; k++) {
		if(body[k] == '\r')
			col = 0;
		else if(body[k] != '\n' && ++col > 76)
			fail_msg("case %zu: encoded line over 76", i);
		if(k == 0 || body[k - 1] == '\n') {
			assert_int_not_equal(body[k], '.');
			assert_false(strncmp(body + k, "From ", 5) == 0);
		}
		if(body[k] == '\r' && k > 0)
			assert_true(body[k - 1] != ' ' && body[k - 1] != '\t');
	}
	got = part_content(parts[0], NULL);
	want = crlf(text);
	/* lone CR is a line break too */
	for(k = 0; want[k]; k++)
		if(want[k] == '\r' && want[k + 1] != '\n') {
			char *w2 = malloc(strlen(want) + 2);

			memcpy(w2, want, k + 1);
			w2[k + 1] = '\n';
			memcpy(w2 + k + 2, want + k + 1, strlen(want + k + 1) + 1);
			free(want);
			want = w2;
		}
	if(strlen(want) >= 2 && !strcmp(want + strlen(want) - 2, "\r\n"))
		want[strlen(want) - 2] = '\0';
	if(strcmp(got, want))
		fail_msg("case %zu: got [%s] want [%s]", i, got, want);
	free(got);
	free(want);
	free(bnd);
	free(ct);
	free_parts(parts, n);
	free(m);
	json_decref(p);
}

/* test_bodies - body_check of texts made to hit each rule, then of random texts made of the
 * pieces the rules look at (white space before a line break, a dot or "From " at a line start,
 * '=', lone CR, non-ASCII, runs long enough to need soft breaks) */
static void test_bodies(void **state)
{
	static const struct body_case cases[] = {
	    {"plain"},
	    {""},
	    {".\n..leading dots\nFrom the start\n"},
	    {"trailing space \ntrailing tab\t\nequals = sign =3D\n"},
	    {"€ ünïcödé ✓ 😀\n"},
	    {"a very long line: Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do "
	     "eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, "
	     "quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat."},
	    {"old mac line ends\rand windows\r\nand unix\n\n\nblank lines"},
	    {"--=_ord_0123\n=_ord_ boundary look-alikes --\n"},
	};
	static const char *const pieces[] = {"a", "word", " ", "\t", ".", "F", "From ", "=", "\r",
	                                     "\n", "\r\n", "\xc3\xa9", "~", "x=3D", "  ",
	                                     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"};
	unsigned seed = 12345;
	char text[2048];
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(cases); i++)
		body_check(cases[i].text, i);
	for(i = 0; i < 400; i++) {
		size_t len = 0, want = (size_t)(rand_r(&seed) % 1500);

		while(len < want) {
			const char *piece = pieces[rand_r(&seed) % GW_ARRAY_LEN(pieces)];
			size_t pl = strlen(piece);

			memcpy(text + len, piece, pl);
			len += pl;
		}
		text[len] = '\0';
		body_check(text, GW_ARRAY_LEN(cases) + i);
	}
}

/* test_single_part - only text, or only html: one part, no multipart */
static void test_single_part(void **state)
{
	json_t *p = base_payload();
	char *m, *body;

	(void)state;
	json_object_del(p, "html");
	m = build_ok(p, NULL, NULL);
	expect_header(m, "Content-Type", "text/plain; charset=UTF-8");
	body = part_content(m, NULL);
	assert_true(strncmp(body, "A new request is waiting.", 25) == 0);
	free(body);
	free(m);
	json_object_set_new(p, "html", json_string("<b>only html</b>"));
	json_object_del(p, "text");
	m = build_ok(p, NULL, NULL);
	expect_header(m, "Content-Type", "text/html; charset=UTF-8");
	free(m);
	json_decref(p);
}

struct ics_case {
	const char *method_in; /* NULL: absent */
	const char *method_out;
};

/* test_ics - multipart/mixed: the alternative, then text/calendar with the method */
static void test_ics(void **state)
{
	static const struct ics_case cases[] = {
	    {"REQUEST", "REQUEST"},
	    {"CANCEL", "CANCEL"},
	    {"cancel", "CANCEL"},
	    {NULL, "REQUEST"},
	};
	static const char ics[] = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Ordinatus//EN\n"
	                          "METHOD:REQUEST\nBEGIN:VEVENT\nUID:b-1@ordinatus\nSEQUENCE:0\n"
	                          "SUMMARY:Séance ✓\nEND:VEVENT\nEND:VCALENDAR\n";
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(cases); i++) {
		json_t *p = base_payload();
		char *m, *parts[MAX_PARTS], *alt[MAX_PARTS], *ct, *want, *got, *method;
		int n, na;

		json_object_set_new(p, "kind", json_string("confirmation"));
		json_object_set_new(p, "ics", json_string(ics));
		if(cases[i].method_in)
			json_object_set_new(p, "ics_method", json_string(cases[i].method_in));
		m = build_ok(p, NULL, NULL);
		ct = header_get(m, "Content-Type", NULL);
		assert_true(strncmp(ct, "multipart/mixed;", 16) == 0);
		free(ct);
		n = split_multipart(m, parts);
		assert_int_equal(n, 2);
		ct = header_get(parts[0], "Content-Type", NULL);
		assert_true(strncmp(ct, "multipart/alternative;", 22) == 0);
		free(ct);
		na = split_multipart(parts[0], alt);
		assert_int_equal(na, 2);
		free_parts(alt, na);
		ct = header_get(parts[1], "Content-Type", NULL);
		assert_true(strncmp(ct, "text/calendar;", 14) == 0);
		method = param_get(ct, "method");
		assert_string_equal(method, cases[i].method_out);
		free(method);
		method = param_get(ct, "charset");
		assert_string_equal(method, "UTF-8");
		free(method);
		free(ct);
		expect_header(parts[1], "Content-Transfer-Encoding", "base64");
		got = part_content(parts[1], NULL);
		want = crlf(ics);
		assert_string_equal(got, want);
		free(got);
		free(want);
		free_parts(parts, n);
		free(m);
		json_decref(p);
	}
}

/* test_boundaries - fixed per message id (a retry builds the same bytes), distinct per message
 * and per level */
static void test_boundaries(void **state)
{
	json_t *p = base_payload();
	char *a, *b, *c, *ct, *b1, *b2;

	(void)state;
	json_object_set_new(p, "ics", json_string("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"));
	a = build_ok(p, NULL, NULL);
	b = build_ok(p, NULL, NULL);
	assert_string_equal(a, b);
	json_object_set_new(p, "message_id", json_string("<other@ordinatus>"));
	c = build_ok(p, NULL, NULL);
	ct = header_get(a, "Content-Type", NULL);
	b1 = param_get(ct, "boundary");
	free(ct);
	ct = header_get(c, "Content-Type", NULL);
	b2 = param_get(ct, "boundary");
	free(ct);
	assert_string_not_equal(b1, b2);
	assert_true(strlen(b1) >= 30);
	free(b1);
	free(b2);
	free(a);
	free(b);
	free(c);
	json_decref(p);
}

struct safe_case {
	const char *s;
	int safe;
};

/* test_header_safe - CR or LF anywhere makes a value unsafe; NULL is unsafe */
static void test_header_safe(void **state)
{
	static const struct safe_case cases[] = {
	    {"plain", 1}, {"", 1},        {"tab\there", 1}, {"ü", 1},
	    {"a\rb", 0},  {"a\nb", 0},    {"\r\n", 0},      {"end\n", 0},
	    {NULL, 0},
	};
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(cases); i++)
		assert_int_equal(smtp_header_safe(cases[i].s) != 0, cases[i].safe);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_headers_and_parts),
	    cmocka_unit_test(test_from_override),
	    cmocka_unit_test(test_header_injection),
	    cmocka_unit_test(test_injection_args),
	    cmocka_unit_test(test_body_cannot_add_headers),
	    cmocka_unit_test(test_invalid_values),
	    cmocka_unit_test(test_dates),
	    cmocka_unit_test(test_subjects),
	    cmocka_unit_test(test_display_names),
	    cmocka_unit_test(test_bodies),
	    cmocka_unit_test(test_single_part),
	    cmocka_unit_test(test_ics),
	    cmocka_unit_test(test_boundaries),
	    cmocka_unit_test(test_header_safe),
	};

	return cmocka_run_group_tests_name("smtp_mime", tests, NULL, NULL);
}
