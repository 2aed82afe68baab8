/*
 * test_tpl.c - the booking email templates (tpl_booking(), tpl_scheduling_link()): a table with
 * every kind, each rendered from one base context and built into a full message with
 * smtp_mime_build(); the text and HTML parts are decoded from quoted-printable and searched
 * for the texts, links and local times the kind must show (09:00Z is 10:00 in Europe/Berlin
 * for the customer and 04:00 in America/New_York for that trainer), and for what it must not
 * show. Then: HTML escaping of user text, single-line subjects, links that must not become
 * anchors, the calendar part (method REQUEST / CANCEL), fixed Message-IDs per dedupe key, the
 * customer's manage link, the intake notices (request_received, unmatched_request), and a
 * table of contexts that must be refused with GW_EINVAL.
 *
 * Entry point: main(). Threading: single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libical/ical.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/templates/tpl.h"
#include "gateway/templates/tpl_auth.h"
#include "gateway/templates/tpl_test.h"
#include "smtp/smtp.h"
#include "common/timefmt.h"
#include "common/tz.h"

#define MAX_WANT 10

/* Calendar parts as they stand in the JSON context (JSON escapes: CRLF line ends). */
#define ICS_HEAD "BEGIN:VCALENDAR\\r\\nVERSION:2.0\\r\\nPRODID:-//test//EN\\r\\n"
#define ICS_EVENT(seq)                                                                             \
	"BEGIN:VEVENT\\r\\nUID:b7@ordinatus\\r\\nSEQUENCE:" seq "\\r\\nEND:VEVENT\\r\\n"               \
	"END:VCALENDAR\\r\\n"
#define ICS_REQ ICS_HEAD "METHOD:REQUEST\\r\\n" ICS_EVENT("0")
#define ICS_CANCEL ICS_HEAD "METHOD:CANCEL\\r\\n" ICS_EVENT("1")

/* The context every case starts from: a 60-minute session at 09:00Z on 1 December 2026, a
 * customer, a trainer in New York, a priced session type and an http(s) join link. */
static const char base_ctx[] =
    "{\"booking\": {\"id\": 7, \"start\": \"2026-12-01T09:00:00Z\","
    "  \"end\": \"2026-12-01T10:00:00Z\", \"length_minutes\": 60, \"sequence\": 0,"
    "  \"session_link\": \"https://assist.example/join?s=1&t=2\"},"
    " \"customer\": {\"name\": \"Ada Lovelace\", \"email\": \"ada@example.com\"},"
    " \"trainer\": {\"id\": 3, \"name\": \"Tom Trainer\", \"email\": \"tom@example.com\","
    "  \"timezone\": \"America/New_York\"},"
    " \"session_type\": {\"name\": \"Coaching\", \"price_cents\": 5000, \"currency\": \"EUR\"}}";

#define BERLIN_START "Tuesday 1 December 2026, 10:00 (Europe/Berlin)"
#define BERLIN_RANGE "Tuesday 1 December 2026, 10:00 to 11:00 (Europe/Berlin)"
#define NY_START "Tuesday 1 December 2026, 04:00 (America/New_York)"
#define NY_RANGE "Tuesday 1 December 2026, 04:00 to 05:00 (America/New_York)"
#define JOIN_TEXT "https://assist.example/join?s=1&t=2"
#define JOIN_HREF "<a href=\"https://assist.example/join?s=1&amp;t=2\" "

/* A kind rendered from base_ctx with extra's keys replacing the base's. */
struct ok_case {
	const char *name;
	const char *kind;
	const char *extra;          /* JSON object merged over base_ctx (top-level keys) */
	const char *to;             /* to.address */
	const char *subject;        /* exact subject */
	const char *method;         /* text/calendar method, NULL: no calendar part */
	const char *text[MAX_WANT]; /* in the decoded text part */
	const char *html[MAX_WANT]; /* in the decoded HTML part */
	const char *absent[MAX_WANT]; /* in neither part */
};

static const struct ok_case ok_cases[] = {
    {"confirmation",
     "confirmation",
     "{\"ics\": \"" ICS_REQ "\", \"ics_method\": \"REQUEST\"}",
     "ada@example.com",
     "Your session is confirmed: " BERLIN_START,
     "REQUEST",
     {"Hello Ada Lovelace,", "Tom Trainer", "Coaching (60 minutes)", BERLIN_RANGE, "50.00 EUR",
      "Join: " JOIN_TEXT, "calendar invitation is attached", "Acme Training"},
     {"<title>Your session is confirmed: ", BERLIN_RANGE, JOIN_HREF, "50.00 EUR"},
     {"America/New_York", "04:00"}},
    {"confirmation, no invite, no link, no session type",
     "confirmation",
     "{\"booking\": {\"id\": 7, \"start\": \"2026-12-01T09:00:00Z\","
     " \"end\": \"2026-12-01T10:30:00Z\", \"sequence\": 0, \"session_link\": null},"
     " \"session_type\": null}",
     "ada@example.com",
     "Your session is confirmed: " BERLIN_START,
     NULL,
     {"Length: 90 minutes", "Tuesday 1 December 2026, 10:00 to 11:30 (Europe/Berlin)"},
     {">Length</th>", ">90 minutes</td>"},
     {"invitation", "Join", "EUR", "assist.example", "tpl-button"}},
    {"confirmation across midnight",
     "confirmation",
     "{\"booking\": {\"id\": 7, \"start\": \"2026-12-01T22:30:00Z\","
     " \"end\": \"2026-12-01T23:30:00Z\", \"length_minutes\": 60, \"sequence\": 0}}",
     "ada@example.com",
     "Your session is confirmed: Tuesday 1 December 2026, 23:30 (Europe/Berlin)",
     NULL,
     {"Tuesday 1 December 2026, 23:30 (Europe/Berlin) to Wednesday 2 December 2026, 00:30 "
      "(Europe/Berlin)"},
     {"Wednesday 2 December 2026, 00:30"},
     {"Join"}},
    {"confirmation in summer time",
     "confirmation",
     "{\"booking\": {\"id\": 7, \"start\": \"2026-07-01T09:00:00Z\","
     " \"end\": \"2026-07-01T10:00:00Z\", \"sequence\": 2}}",
     "ada@example.com",
     "Your session is confirmed: Wednesday 1 July 2026, 11:00 (Europe/Berlin)",
     NULL,
     {"Wednesday 1 July 2026, 11:00 to 12:00 (Europe/Berlin)", "Coaching (60 minutes)"},
     {"11:00 to 12:00"},
     {NULL}},
    {"trainer_confirmation",
     "trainer_confirmation",
     "{\"ics\": \"" ICS_REQ "\"}",
     "tom@example.com",
     "New booking: Ada Lovelace, " NY_START,
     "REQUEST",
     {"Hello Tom Trainer,", "Ada Lovelace (ada@example.com)", "Customer email: ada@example.com",
      NY_RANGE, "Coaching (60 minutes)", "Join: " JOIN_TEXT},
     {NY_RANGE, JOIN_HREF, "ada@example.com"},
     {"Europe/Berlin", "10:00", "EUR"}},
    {"trainer_confirmation, trainer without a zone",
     "trainer_confirmation",
     "{\"trainer\": {\"id\": 3, \"name\": \"Tom Trainer\", \"email\": \"tom@example.com\"}}",
     "tom@example.com",
     "New booking: Ada Lovelace, " BERLIN_START,
     NULL,
     {BERLIN_RANGE},
     {BERLIN_RANGE},
     {"America/New_York", "invitation"}},
    {"reminder 24 hours",
     "reminder",
     "{\"hours_before\": 24}",
     "ada@example.com",
     "Reminder: your session starts in 24 hours",
     NULL,
     {"your session with Tom Trainer starts in 24 hours.", BERLIN_RANGE, "Trainer: Tom Trainer",
      "Join: " JOIN_TEXT},
     {BERLIN_RANGE, JOIN_HREF},
     {"America/New_York", "EUR"}},
    {"confirmation with the manage link and its cutoff",
     "confirmation",
     "{\"manage_url\": \"https://book.example/b/tok_M1\","
     " \"change_until\": \"2026-11-30T09:00:00Z\"}",
     "ada@example.com",
     "Your session is confirmed: " BERLIN_START,
     NULL,
     {"You can cancel or move your session until Monday 30 November 2026, 10:00 "
      "(Europe/Berlin) here:\nhttps://book.example/b/tok_M1"},
     {"<a href=\"https://book.example/b/tok_M1\" class=\"tpl-button\" ",
      ">Manage your booking</a>",
      "Monday 30 November 2026, 10:00 (Europe/Berlin)"},
     {NULL}},
    {"reminder with the manage link, past the cutoff",
     "reminder",
     "{\"hours_before\": 2, \"manage_url\": \"https://book.example/b/tok_R2\"}",
     "ada@example.com",
     "Reminder: your session starts in 2 hours",
     NULL,
     {"Your booking, and whom to contact about it:\nhttps://book.example/b/tok_R2"},
     {"<a href=\"https://book.example/b/tok_R2\" "},
     {"cancel or move", "until"}},
    {"reminder 1 hour",
     "reminder",
     "{\"hours_before\": 1}",
     "ada@example.com",
     "Reminder: your session starts in 1 hour",
     NULL,
     {"starts in 1 hour.", BERLIN_RANGE},
     {"starts in 1 hour."},
     {"1 hours"}},
    {"reminder 0 hours",
     "reminder",
     "{\"hours_before\": 0}",
     "ada@example.com",
     "Reminder: your session is starting now",
     NULL,
     {"your session with Tom Trainer is starting now.", JOIN_TEXT},
     {JOIN_HREF},
     {"0 hours", "in 0"}},
    {"close_reminder",
     "close_reminder",
     "{\"complete_url\": \"https://book.example/bookings/7?a=1&b=2\"}",
     "tom@example.com",
     "Please close your session with Ada Lovelace",
     NULL,
     {"Hello Tom Trainer,", "has ended", "mark it complete", "no-show", NY_RANGE,
      "https://book.example/bookings/7?a=1&b=2"},
     {"<a href=\"https://book.example/bookings/7?a=1&amp;b=2\" class=\"tpl-button\" ",
      NY_RANGE},
     {"Europe/Berlin", JOIN_TEXT}},
    {"survey",
     "survey",
     "{\"survey_url\": \"https://book.example/survey/tok123\"}",
     "ada@example.com",
     "How was your session with Tom Trainer?",
     NULL,
     {"Thank you for your session with Tom Trainer on " BERLIN_START,
      "How was your session?", "https://book.example/survey/tok123", "When: " BERLIN_RANGE,
      "Session: Coaching (60 minutes)"},
     {"<a href=\"https://book.example/survey/tok123\" class=\"tpl-button\" "},
     {"America/New_York"}},
    {"no_show, no refund",
     "no_show",
     "{\"no_show_policy\": \"no_refund\"}",
     "ada@example.com",
     "You missed your session on " BERLIN_START,
     NULL,
     {"you missed your session with Tom Trainer", "No Refund", BERLIN_RANGE},
     {"No Refund"},
     {"Contact Support"}},
    {"no_show, contact support",
     "no_show",
     "{\"no_show_policy\": \"contact_support\"}",
     "ada@example.com",
     "You missed your session on " BERLIN_START,
     NULL,
     {"Contact Support", BERLIN_RANGE},
     {"Contact Support"},
     {"No Refund"}},
    {"cancellation with reason",
     "cancellation",
     "{\"ics\": \"" ICS_CANCEL "\", \"ics_method\": \"CANCEL\","
     " \"reason\": \"Trainer is ill & <away>\"}",
     "ada@example.com",
     "Your session on " BERLIN_START " is cancelled",
     "CANCEL",
     {"Your session with Tom Trainer on " BERLIN_RANGE " has been cancelled.",
      "Reason: Trainer is ill & <away>", "removes the session from your calendar",
      "Session: Coaching (60 minutes)", "Trainer: Tom Trainer"},
     {"Reason: Trainer is ill &amp; &lt;away&gt;"},
     {"America/New_York"}},
    {"cancellation, no reason, no invite",
     "cancellation",
     "{\"reason\": null}",
     "ada@example.com",
     "Your session on " BERLIN_START " is cancelled",
     NULL,
     {"has been cancelled."},
     {"has been cancelled."},
     {"Reason", "calendar"}},
};

/* ---- decoding the built message ----------------------------------------------------------- */

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

/* qp_decode - quoted-printable (RFC 2045 6.7) with CRLF turned back into LF; caller frees */
static char *qp_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	size_t i, o = 0;

	assert_non_null(out);
	for(i = 0; i < n; i++) {
		if(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
			continue;
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
	return out;
}

/* b64_decode - base64 (RFC 2045 6.8), line breaks skipped; caller frees */
static char *b64_decode(const char *s, size_t n)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
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
	return out;
}

/* part_body - the raw body of the MIME part whose Content-Type starts with ctype (up to the
 * next boundary line), or NULL when the message has no such part. *n: its length. */
static const char *part_body(const char *msg, const char *ctype, size_t *n)
{
	char want[128];
	const char *h, *body, *end;

	snprintf(want, sizeof(want), "\r\nContent-Type: %s", ctype);
	h = strstr(msg, want);
	if(!h)
		return NULL;
	body = strstr(h, "\r\n\r\n");
	assert_non_null(body);
	body += 4;
	end = strstr(body, "\r\n--");
	assert_non_null(end);
	*n = (size_t)(end - body) + 2;
	return body;
}

/* decoded_part - the decoded text of a quoted-printable part; caller frees */
static char *decoded_part(const char *msg, const char *ctype)
{
	size_t n = 0;
	const char *body = part_body(msg, ctype, &n);

	if(!body)
		fail_msg("no %s part in the message", ctype);
	return qp_decode(body, n);
}

/* headers - a copy of the message's header section (up to the first blank line); caller frees */
static char *headers(const char *msg)
{
	const char *end = strstr(msg, "\r\n\r\n");
	char *h;

	assert_non_null(end);
	h = strndup(msg, (size_t)(end - msg) + 2);
	assert_non_null(h);
	return h;
}

/* ---- fixtures ----------------------------------------------------------------------------- */

/* test_env - the organisation every case renders for */
static struct tpl_env test_env(void)
{
	struct tpl_env env = {0};

	env.org_id = 42;
	env.org_name = "Acme Training";
	env.org_timezone = "Europe/Berlin";
	env.from_address = "bookings@acme.example";
	env.public_url = "https://book.example";
	assert_int_equal(timefmt_parse("2026-11-20T08:00:00Z", &env.now), GW_OK);
	return env;
}

/* make_ctx - base_ctx with extra's top-level keys replacing its own; new reference */
static json_t *make_ctx(const char *extra)
{
	json_error_t jerr;
	json_t *ctx = json_loads(base_ctx, 0, &jerr), *x;

	if(!ctx)
		fail_msg("base_ctx: %s", jerr.text);
	if(extra) {
		x = json_loads(extra, 0, &jerr);
		if(!x)
			fail_msg("extra %s: %s", extra, jerr.text);
		assert_int_equal(json_object_update(ctx, x), 0);
		json_decref(x);
	}
	return ctx;
}

/* build - the full message of a payload; caller frees */
static char *build(const json_t *payload)
{
	struct gw_err err = {{0}, {0}, {0}};
	char *msg = NULL;
	size_t len = 0;
	gw_rc rc = smtp_mime_build(payload, NULL, NULL, &msg, &len, &err);

	if(rc)
		fail_msg("smtp_mime_build: %s (%s: %s)", gw_rc_name(rc), err.field, err.message);
	assert_int_equal(strlen(msg), len);
	return msg;
}

/* str_of - payload string at a dotted path of at most two levels */
static const char *str_of(const json_t *payload, const char *k1, const char *k2)
{
	const json_t *v = json_object_get(payload, k1);

	if(k2)
		v = json_object_get(v, k2);
	return json_string_value(v);
}

/* ---- the table of kinds ------------------------------------------------------------------- */

/* check_case - render one case and check the payload and the built message */
static void check_case(const struct tpl_env *env, const struct ok_case *c)
{
	json_t *ctx = make_ctx(c->extra), *payload = NULL;
	char *msg, *text, *html, kind_hdr[96], ctype[96];
	const char *subj;
	size_t i;

	print_message("case: %s\n", c->name);
	assert_int_equal(tpl_booking(env, c->kind, "key:7:0", ctx, &payload), GW_OK);
	assert_non_null(payload);
	assert_string_equal(str_of(payload, "kind", NULL), c->kind);
	assert_string_equal(str_of(payload, "to", "address"), c->to);
	assert_string_equal(str_of(payload, "from", "address"), "bookings@acme.example");
	assert_string_equal(str_of(payload, "from", "name"), "Acme Training");
	assert_string_equal(str_of(payload, "date", NULL), "2026-11-20T08:00:00Z");
	subj = str_of(payload, "subject", NULL);
	assert_string_equal(subj, c->subject);

	msg = build(payload);
	snprintf(kind_hdr, sizeof(kind_hdr), "\r\nX-Ordinatus-Kind: %s\r\n", c->kind);
	assert_non_null(strstr(msg, kind_hdr));
	assert_non_null(strstr(msg, c->to));
	text = decoded_part(msg, "text/plain; charset=UTF-8");
	html = decoded_part(msg, "text/html; charset=UTF-8");
	assert_non_null(strstr(html, "<!DOCTYPE html>"));
	assert_non_null(strstr(html, "</body></html>"));
	assert_null(strstr(html, "<away>")); /* the one case with markup in user text */
	for(i = 0; i < MAX_WANT && c->text[i]; i++)
		if(!strstr(text, c->text[i]))
			fail_msg("%s: text part lacks \"%s\":\n%s", c->name, c->text[i], text);
	for(i = 0; i < MAX_WANT && c->html[i]; i++)
		if(!strstr(html, c->html[i]))
			fail_msg("%s: HTML part lacks \"%s\":\n%s", c->name, c->html[i], html);
	for(i = 0; i < MAX_WANT && c->absent[i]; i++)
		if(strstr(text, c->absent[i]) || strstr(html, c->absent[i]))
			fail_msg("%s: \"%s\" should not appear:\n%s\n%s", c->name, c->absent[i], text,
			         html);

	if(c->method) {
		size_t n = 0;
		const char *body;
		char *ics;

		assert_string_equal(str_of(payload, "ics_method", NULL), c->method);
		snprintf(ctype, sizeof(ctype), "text/calendar; charset=UTF-8; method=%s", c->method);
		body = part_body(msg, ctype, &n);
		if(!body)
			fail_msg("%s: no %s part", c->name, ctype);
		ics = b64_decode(body, n);
		assert_string_equal(ics, str_of(payload, "ics", NULL));
		free(ics);
	} else {
		assert_null(json_object_get(payload, "ics"));
		assert_null(json_object_get(payload, "ics_method"));
		assert_null(strstr(msg, "text/calendar"));
	}
	free(text);
	free(html);
	free(msg);
	json_decref(payload);
	json_decref(ctx);
}

/* test_kinds - every row of ok_cases */
static void test_kinds(void **state)
{
	struct tpl_env env = test_env();
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(ok_cases); i++)
		check_case(&env, &ok_cases[i]);
}

/* ---- escaping, headers, links ------------------------------------------------------------- */

/* render_parts - render kind from ctx, build it, decode its parts (callers free all four) */
static json_t *render_parts(const struct tpl_env *env, const char *kind, const json_t *ctx,
                            char **msg, char **text, char **html)
{
	json_t *payload = NULL;

	assert_int_equal(tpl_booking(env, kind, "esc:7", ctx, &payload), GW_OK);
	*msg = build(payload);
	*text = decoded_part(*msg, "text/plain; charset=UTF-8");
	*html = decoded_part(*msg, "text/html; charset=UTF-8");
	return payload;
}

/* test_escaping - user text is escaped in HTML, kept as is in text, single-line in headers */
static void test_escaping(void **state)
{
	static const char *const kinds[] = {"confirmation", "trainer_confirmation", "reminder",
	                                    "close_reminder", "survey", "no_show", "cancellation"};
	struct tpl_env env = test_env();
	json_t *ctx = make_ctx(
	    "{\"customer\": {\"name\": \"<script>&\\\"\", \"email\": \"ada@example.com\"},"
	    " \"trainer\": {\"name\": \"O'Brien <b>\", \"email\": \"tom@example.com\","
	    "  \"timezone\": \"America/New_York\"},"
	    " \"session_type\": {\"name\": \"Yoga & <i>Core</i>\", \"price_cents\": 1999,"
	    "  \"currency\": \"USD\"},"
	    " \"hours_before\": 2, \"complete_url\": \"https://book.example/c?x=<1>\","
	    " \"survey_url\": \"https://book.example/s\", \"no_show_policy\": \"no_refund\","
	    " \"reason\": \"</p><script>alert(1)</script>\"}");
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(kinds); i++) {
		char *msg, *text, *html;
		json_t *payload = render_parts(&env, kinds[i], ctx, &msg, &text, &html);

		print_message("kind: %s\n", kinds[i]);
		if(strstr(html, "<script>") || strstr(html, "<b>") || strstr(html, "<i>"))
			fail_msg("%s: unescaped user text in HTML:\n%s", kinds[i], html);
		if(!strstr(html, "&lt;script&gt;&amp;&quot;") || !strstr(html, "O&#39;Brien &lt;b&gt;"))
			fail_msg("%s: escaped names missing:\n%s", kinds[i], html);
		if(!strstr(text, "<script>&\"") || !strstr(text, "O'Brien <b>"))
			fail_msg("%s: names missing from the text part:\n%s", kinds[i], text);
		free(msg);
		free(text);
		free(html);
		json_decref(payload);
	}
	{
		char *msg, *text, *html;
		json_t *payload = render_parts(&env, "confirmation", ctx, &msg, &text, &html);

		assert_non_null(strstr(html, "Yoga &amp; &lt;i&gt;Core&lt;/i&gt; (60 minutes)"));
		assert_non_null(strstr(html, "19.99 USD"));
		assert_non_null(strstr(html, "<title>Your session is confirmed:"));
		assert_non_null(strstr(text, "Session: Yoga & <i>Core</i> (60 minutes)"));
		free(msg);
		free(text);
		free(html);
		json_decref(payload);

		payload = render_parts(&env, "cancellation", ctx, &msg, &text, &html);
		assert_non_null(strstr(html, "Reason: &lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
		assert_non_null(strstr(text, "Reason: </p><script>alert(1)</script>"));
		free(msg);
		free(text);
		free(html);
		json_decref(payload);

		/* a URL with characters that do not belong in one is shown, not linked */
		payload = render_parts(&env, "close_reminder", ctx, &msg, &text, &html);
		assert_non_null(strstr(text, "https://book.example/c?x=<1>"));
		assert_non_null(strstr(html, "https://book.example/c?x=&lt;1&gt;"));
		assert_null(strstr(html, "<a href"));
		free(msg);
		free(text);
		free(html);
		json_decref(payload);
	}
	json_decref(ctx);
}

/* test_header_text - CR/LF in names never reach a header: the subject and display name are one
 * line and the message still builds */
static void test_header_text(void **state)
{
	struct tpl_env env = test_env();
	json_t *ctx = make_ctx("{\"customer\": {\"name\": \"Eve\\r\\nBcc: x@evil.example\","
	                       " \"email\": \"eve@example.com\"}, \"survey_url\": \"https://s\"}");
	json_t *payload = NULL;
	char *msg, *hdr;

	(void)state;
	assert_int_equal(tpl_booking(&env, "trainer_confirmation", "hdr:1", ctx, &payload), GW_OK);
	assert_null(strpbrk(str_of(payload, "subject", NULL), "\r\n"));
	assert_string_equal(str_of(payload, "subject", NULL),
	                    "New booking: Eve  Bcc: x@evil.example, " NY_START);
	msg = build(payload);
	hdr = headers(msg);
	assert_null(strstr(hdr, "\r\nBcc:"));
	assert_null(strstr(hdr, "\nBcc:"));
	free(hdr);
	free(msg);
	json_decref(payload);

	assert_int_equal(tpl_booking(&env, "survey", "hdr:2", ctx, &payload), GW_OK);
	assert_string_equal(str_of(payload, "to", "name"), "Eve  Bcc: x@evil.example");
	msg = build(payload);
	hdr = headers(msg);
	assert_null(strstr(hdr, "\r\nBcc:"));
	assert_null(strstr(hdr, "\nBcc:"));
	free(hdr);
	free(msg);
	json_decref(payload);
	json_decref(ctx);
}

/* only_calendar_hrefs - every href of html is an "Add to Google Calendar" or "Add to Outlook"
 * link, and there is no other anchor */
static void only_calendar_hrefs(const char *html)
{
	const char *p = html;
	size_t hrefs = 0, anchors = 0;

	while((p = strstr(p, "href=\""))) {
		p += 6;
		if(strncmp(p, "https://calendar.google.com/calendar/render?", 44) != 0 &&
		   strncmp(p, "https://outlook.live.com/calendar/0/deeplink/compose?", 53) != 0)
			fail_msg("a link that is not a calendar link: %.80s", p);
		hrefs++;
	}
	for(p = html; (p = strstr(p, "<a ")); p += 3)
		anchors++;
	assert_int_equal(hrefs, anchors);
}

/* test_links - only http(s) links become anchors */
static void test_links(void **state)
{
	static const struct {
		const char *link;
		int anchor;
	} cases[] = {
	    {"https://zoom.example/j/1", 1},
	    {"HTTP://meet.example/abc", 1},
	    {"javascript:alert(1)", 0},
	    {"data:text/html,<b>x</b>", 0},
	    {"Call +49 30 1234567", 0},
	    {"https://x.example/\" onmouseover=\"alert(1)", 0},
	};
	struct tpl_env env = test_env();
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(cases); i++) {
		json_t *ctx = make_ctx("{\"hours_before\": 3}"), *payload;
		char *msg, *text, *html, want[160];

		json_object_set_new(json_object_get(ctx, "booking"), "session_link",
		                    json_string(cases[i].link));
		payload = render_parts(&env, "reminder", ctx, &msg, &text, &html);
		snprintf(want, sizeof(want), "Join: %s\n", cases[i].link);
		assert_non_null(strstr(text, want));
		if(cases[i].anchor) {
			snprintf(want, sizeof(want), "<a href=\"%s\" ", cases[i].link);
			assert_non_null(strstr(html, want));
		} else {
			/* no link but the calendar ones: the session link is shown as text */
			only_calendar_hrefs(html);
		}
		free(msg);
		free(text);
		free(html);
		json_decref(payload);
		json_decref(ctx);
	}
}

/* ---- Message-ID --------------------------------------------------------------------------- */

/* test_message_id - the same dedupe key gives the same Message-ID, another key another one */
static void test_message_id(void **state)
{
	struct tpl_env env = test_env();
	json_t *ctx = make_ctx("{\"no_show_policy\": \"no_refund\"}");
	json_t *a = NULL, *b = NULL, *c = NULL, *d = NULL;
	char *msg;

	(void)state;
	env.install_id = "one-installation";
	assert_int_equal(tpl_booking(&env, "no_show", "no_show:7", ctx, &a), GW_OK);
	env.now += 3600; /* a retry an hour later */
	assert_int_equal(tpl_booking(&env, "no_show", "no_show:7", ctx, &b), GW_OK);
	assert_int_equal(tpl_booking(&env, "no_show", "no_show:8", ctx, &c), GW_OK);
	assert_string_equal(str_of(a, "message_id", NULL), str_of(b, "message_id", NULL));
	assert_string_not_equal(str_of(a, "message_id", NULL), str_of(c, "message_id", NULL));
	assert_non_null(strstr(str_of(a, "message_id", NULL), ".no_show@"));
	/* another installation never makes the same Message-ID for the same key */
	env.install_id = "another-installation";
	assert_int_equal(tpl_booking(&env, "no_show", "no_show:7", ctx, &d), GW_OK);
	assert_string_not_equal(str_of(a, "message_id", NULL), str_of(d, "message_id", NULL));
	json_decref(d);
	msg = build(a);
	assert_non_null(strstr(msg, "Message-ID: "));
	assert_non_null(strstr(msg, str_of(a, "message_id", NULL)));
	free(msg);
	json_decref(a);
	json_decref(b);
	json_decref(c);
	json_decref(ctx);
}

/* ---- scheduling link ---------------------------------------------------------------------- */

static const char sched_request[] =
    "{\"id\": 5, \"status\": \"claimed\","
    " \"customer\": {\"name\": \"Ada <Lovelace>\", \"email\": \"ada@example.com\","
    "  \"phone\": \"\"},"
    " \"session_type_id\": 2,"
    " \"session_type\": {\"id\": 2, \"name\": \"Coaching\", \"lengths\": [60, 90, 120],"
    "  \"price_cents\": 5000, \"currency\": \"EUR\"},"
    " \"trainer_id\": 3, \"trainer\": {\"id\": 3, \"name\": \"Tom Trainer\"}}";

/* test_scheduling_link - trainer, session type, lengths, price, link and expiry (org zone) */
static void test_scheduling_link(void **state)
{
	struct tpl_env env = test_env();
	json_t *req = json_loads(sched_request, 0, NULL), *p1 = NULL, *p2 = NULL, *p3 = NULL;
	const char *link = "https://book.example/s/tok_ABC?x=1&y=2";
	char *msg, *text, *html;
	time_t exp;

	(void)state;
	assert_non_null(req);
	assert_int_equal(timefmt_parse("2026-11-23T08:00:00Z", &exp), GW_OK);
	assert_int_equal(tpl_scheduling_link(&env, "scheduling_link:5:1", req, link, exp, &p1),
	                 GW_OK);
	assert_string_equal(str_of(p1, "kind", NULL), "scheduling_link");
	assert_string_equal(str_of(p1, "to", "address"), "ada@example.com");
	assert_string_equal(str_of(p1, "to", "name"), "Ada <Lovelace>");
	assert_string_equal(str_of(p1, "subject", NULL), "Choose a time for your session with "
	                                                 "Tom Trainer");
	assert_null(json_object_get(p1, "ics"));
	msg = build(p1);
	assert_non_null(strstr(msg, "\r\nX-Ordinatus-Kind: scheduling_link\r\n"));
	text = decoded_part(msg, "text/plain; charset=UTF-8");
	html = decoded_part(msg, "text/html; charset=UTF-8");
	assert_non_null(strstr(text, "Hello Ada <Lovelace>,"));
	assert_non_null(strstr(text, "Tom Trainer"));
	assert_non_null(strstr(text, "Session: Coaching"));
	assert_non_null(strstr(text, "Length: 60, 90 or 120 minutes"));
	assert_non_null(strstr(text, "Price: 50.00 EUR"));
	assert_non_null(strstr(text, link));
	assert_non_null(strstr(text, "Monday 23 November 2026, 09:00 (Europe/Berlin)"));
	assert_non_null(strstr(html, "Hello Ada &lt;Lovelace&gt;,"));
	assert_non_null(strstr(html, "<a href=\"https://book.example/s/tok_ABC?x=1&amp;y=2\" "));
	assert_non_null(strstr(html, "Monday 23 November 2026, 09:00 (Europe/Berlin)"));
	assert_non_null(strstr(html, "50.00 EUR"));
	assert_null(strstr(html, "<Lovelace>"));
	free(msg);
	free(text);
	free(html);

	/* a resend (new link version) gets its own Message-ID; the same key keeps it */
	assert_int_equal(tpl_scheduling_link(&env, "scheduling_link:5:1", req, link, exp, &p2),
	                 GW_OK);
	assert_int_equal(tpl_scheduling_link(&env, "scheduling_link:5:2", req, link, exp, &p3),
	                 GW_OK);
	assert_string_equal(str_of(p1, "message_id", NULL), str_of(p2, "message_id", NULL));
	assert_string_not_equal(str_of(p1, "message_id", NULL), str_of(p3, "message_id", NULL));
	json_decref(p1);
	json_decref(p2);
	json_decref(p3);

	/* no session type yet: the email still goes out, without those lines */
	json_object_set_new(req, "session_type", json_null());
	p1 = NULL;
	assert_int_equal(tpl_scheduling_link(&env, "scheduling_link:5:3", req, link, exp, &p1),
	                 GW_OK);
	assert_null(strstr(str_of(p1, "text", NULL), "Price"));
	assert_null(strstr(str_of(p1, "text", NULL), "Length"));
	json_decref(p1);
	json_decref(req);
}

/* test_redact - the link tokens of a payload replaced, the rest kept; the text-only redaction
 * (what a worker stores as it records a row sent) gives the same strings as the JSON one */
static void test_redact(void **state)
{
	struct tpl_env env = test_env();
	json_t *req = json_loads(sched_request, 0, NULL), *p = NULL, *a, *b;
	const char *link = "https://book.example/s/Zk3_q-9xYwLmN0pQrStUvW12";
	char *text, *r1, *r2;
	time_t exp;

	(void)state;
	assert_non_null(req);
	assert_int_equal(timefmt_parse("2026-11-23T08:00:00Z", &exp), GW_OK);
	assert_int_equal(tpl_scheduling_link(&env, "scheduling_link:5:1", req, link, exp, &p),
	                 GW_OK);
	/* beside the link: a manage link, a booking page (too short to be a token) and a name
	 * with characters JSON escapes */
	json_object_set_new(p, "note", json_string("\"Q\" /b/AbCdEfGhIjKlMnOpQrSt and /b/123 \\"
	                                           " \xc3\xa9 /survey/short"));
	text = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(text);
	assert_non_null(strstr(text, "Zk3_q-9xYwLmN0pQrStUvW12"));
	r1 = tpl_redact(text);
	r2 = tpl_redact_text(text);
	assert_non_null(r1);
	assert_non_null(r2);
	assert_null(strstr(r2, "Zk3_q-9xYwLmN0pQrStUvW12"));
	assert_null(strstr(r2, "AbCdEfGhIjKlMnOpQrSt"));
	assert_non_null(strstr(r2, "https://book.example/s/redacted"));
	assert_non_null(strstr(r2, "/b/redacted and /b/123"));
	assert_non_null(strstr(r2, "/survey/short"));
	a = json_loads(r1, 0, NULL);
	b = json_loads(r2, 0, NULL);
	assert_non_null(a);
	assert_non_null(b);
	assert_true(json_equal(a, b));
	assert_string_equal(str_of(b, "to", "address"), "ada@example.com");
	assert_string_equal(str_of(b, "subject", NULL), str_of(p, "subject", NULL));
	json_decref(a);
	json_decref(b);
	free(r1);
	free(r2);
	free(text);
	json_decref(p);
	json_decref(req);
}

/* test_intake_notices - request_received to the customer, unmatched_request to an admin */
static void test_intake_notices(void **state)
{
	struct tpl_env env = test_env();
	json_t *req = json_loads(sched_request, 0, NULL), *admin, *p = NULL;
	char *msg, *text, *html;

	(void)state;
	assert_non_null(req);
	json_object_set_new(req, "skills", json_pack("[s, s]", "chess", "go"));
	admin = json_pack("{s:i, s:s, s:s}", "id", 9, "email", "olga@acme.example", "name",
	                  "Olga <Admin>");
	assert_int_equal(tpl_request_received(&env, "request_received:5", req, &p), GW_OK);
	assert_string_equal(str_of(p, "kind", NULL), "request_received");
	assert_string_equal(str_of(p, "to", "address"), "ada@example.com");
	assert_string_equal(str_of(p, "subject", NULL), "We have your request: Acme Training");
	msg = build(p);
	assert_non_null(strstr(msg, "\r\nX-Ordinatus-Kind: request_received\r\n"));
	text = decoded_part(msg, "text/plain; charset=UTF-8");
	html = decoded_part(msg, "text/html; charset=UTF-8");
	assert_non_null(strstr(text, "Hello Ada <Lovelace>,"));
	assert_non_null(strstr(text, "A trainer will contact you"));
	assert_non_null(strstr(text, "Session type: Coaching"));
	assert_non_null(strstr(text, "Skills: chess, go"));
	assert_non_null(strstr(html, "Hello Ada &lt;Lovelace&gt;,"));
	assert_null(strstr(html, "<Lovelace>"));
	free(msg);
	free(text);
	free(html);
	json_decref(p);
	p = NULL;

	assert_int_equal(tpl_unmatched_request(&env, "unmatched_request:5:9", req, admin, &p),
	                 GW_OK);
	assert_string_equal(str_of(p, "kind", NULL), "unmatched_request");
	assert_string_equal(str_of(p, "to", "address"), "olga@acme.example");
	assert_string_equal(str_of(p, "subject", NULL), "No trainer matches a new request");
	msg = build(p);
	assert_non_null(strstr(msg, "\r\nX-Ordinatus-Kind: unmatched_request\r\n"));
	text = decoded_part(msg, "text/plain; charset=UTF-8");
	html = decoded_part(msg, "text/html; charset=UTF-8");
	assert_non_null(strstr(text, "Customer: Ada <Lovelace> <ada@example.com>"));
	assert_non_null(strstr(text, "Skills asked: chess, go"));
	assert_non_null(strstr(text, "https://book.example/requests/5"));
	assert_non_null(strstr(html, "<a href=\"https://book.example/requests/5\" "));
	assert_non_null(strstr(html, "Hello Olga &lt;Admin&gt;,"));
	assert_null(strstr(html, "<Admin>"));
	free(msg);
	free(text);
	free(html);
	json_decref(p);
	p = NULL;

	/* no address: refused, never an email without a recipient */
	json_object_del(admin, "email");
	assert_int_equal(tpl_unmatched_request(&env, "unmatched_request:5:9", req, admin, &p),
	                 GW_EINVAL);
	assert_null(p);
	json_object_del(json_object_get(req, "customer"), "email");
	assert_int_equal(tpl_request_received(&env, "request_received:5", req, &p), GW_EINVAL);
	assert_null(p);
	json_decref(admin);
	json_decref(req);
}

/* test_scheduling_link_invalid - what the scheduling link email cannot do without */
static void test_scheduling_link_invalid(void **state)
{
	static const struct {
		const char *name;
		const char *request;
		const char *link;
		const char *key;
	} cases[] = {
	    {"no trainer", "{\"customer\": {\"name\": \"A\", \"email\": \"a@b.example\"},"
	                   " \"trainer\": null}", "https://x/s/1", "k"},
	    {"no customer email", "{\"customer\": {\"name\": \"A\"}, \"trainer\": {\"name\": \"T\"}}",
	     "https://x/s/1", "k"},
	    {"no link", "{\"customer\": {\"name\": \"A\", \"email\": \"a@b.example\"},"
	                " \"trainer\": {\"name\": \"T\"}}", NULL, "k"},
	    {"empty link", "{\"customer\": {\"name\": \"A\", \"email\": \"a@b.example\"},"
	                   " \"trainer\": {\"name\": \"T\"}}", "", "k"},
	    {"no dedupe key", "{\"customer\": {\"name\": \"A\", \"email\": \"a@b.example\"},"
	                      " \"trainer\": {\"name\": \"T\"}}", "https://x/s/1", NULL},
	    {"not an object", "[1, 2]", "https://x/s/1", "k"},
	};
	struct tpl_env env = test_env();
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(cases); i++) {
		json_t *req = json_loads(cases[i].request, 0, NULL), *p = json_null();

		print_message("case: %s\n", cases[i].name);
		assert_non_null(req);
		assert_int_equal(tpl_scheduling_link(&env, cases[i].key, req, cases[i].link, env.now,
		                                     &p),
		                 GW_EINVAL);
		assert_null(p);
		json_decref(req);
	}
}

/* ---- refused contexts --------------------------------------------------------------------- */

struct bad_case {
	const char *name;
	const char *kind;
	const char *extra; /* merged over base_ctx; "null" as the whole ctx: pass NULL */
};

static const struct bad_case bad_cases[] = {
    {"unknown kind", "invoice", NULL},
    {"kind of another template", "new_request", NULL},
    {"no ctx", "confirmation", "null"},
    {"no booking", "confirmation", "{\"booking\": null}"},
    {"booking not an object", "confirmation", "{\"booking\": \"7\"}"},
    {"no start", "confirmation", "{\"booking\": {\"end\": \"2026-12-01T10:00:00Z\"}}"},
    {"bad start", "confirmation",
     "{\"booking\": {\"start\": \"2026-13-01T09:00:00Z\", \"end\": \"2026-12-01T10:00:00Z\"}}"},
    {"end before start", "confirmation",
     "{\"booking\": {\"start\": \"2026-12-01T10:00:00Z\", \"end\": \"2026-12-01T09:00:00Z\"}}"},
    {"length not a number", "confirmation",
     "{\"booking\": {\"start\": \"2026-12-01T09:00:00Z\", \"end\": \"2026-12-01T10:00:00Z\","
     " \"length_minutes\": \"60\"}}"},
    {"session_link not a string", "confirmation",
     "{\"booking\": {\"start\": \"2026-12-01T09:00:00Z\", \"end\": \"2026-12-01T10:00:00Z\","
     " \"session_link\": 5}}"},
    {"no customer", "confirmation", "{\"customer\": null}"},
    {"no customer email", "survey", "{\"customer\": {\"name\": \"A\"},"
                                    " \"survey_url\": \"https://s\"}"},
    {"no customer name", "trainer_confirmation", "{\"customer\": {\"email\": \"a@b.example\"}}"},
    {"no trainer", "confirmation", "{\"trainer\": null}"},
    {"no trainer email", "trainer_confirmation",
     "{\"trainer\": {\"name\": \"T\", \"timezone\": \"UTC\"}}"},
    {"no trainer email, close", "close_reminder",
     "{\"trainer\": {\"name\": \"T\"}, \"complete_url\": \"https://c\"}"},
    {"session type not an object", "confirmation", "{\"session_type\": \"Coaching\"}"},
    {"reminder without hours", "reminder", NULL},
    {"reminder with negative hours", "reminder", "{\"hours_before\": -1}"},
    {"reminder with hours as text", "reminder", "{\"hours_before\": \"24\"}"},
    {"close_reminder without url", "close_reminder", NULL},
    {"survey without url", "survey", NULL},
    {"survey with empty url", "survey", "{\"survey_url\": \"\"}"},
    {"no_show without policy", "no_show", NULL},
    {"no_show with unknown policy", "no_show", "{\"no_show_policy\": \"refund_half\"}"},
    {"cancellation reason not text", "cancellation", "{\"reason\": 42}"},
    {"confirmation with a CANCEL invite", "confirmation",
     "{\"ics\": \"BEGIN:VCALENDAR\", \"ics_method\": \"CANCEL\"}"},
    {"cancellation with a REQUEST invite", "cancellation",
     "{\"ics\": \"BEGIN:VCALENDAR\", \"ics_method\": \"REQUEST\"}"},
    {"ics not text", "confirmation", "{\"ics\": {\"a\": 1}}"},
    {"empty ics", "confirmation", "{\"ics\": \"\"}"},
};

/* test_invalid - every bad_cases row is GW_EINVAL with *out NULL; NULL arguments too */
static void test_invalid(void **state)
{
	struct tpl_env env = test_env();
	json_t *ctx, *p;
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		int null_ctx = c->extra && strcmp(c->extra, "null") == 0;

		print_message("case: %s\n", c->name);
		ctx = null_ctx ? NULL : make_ctx(c->extra);
		p = json_null();
		assert_int_equal(tpl_booking(&env, c->kind, "bad:1", ctx, &p), GW_EINVAL);
		assert_null(p);
		json_decref(ctx);
	}

	ctx = make_ctx("{\"hours_before\": 24}");
	p = json_null();
	assert_int_equal(tpl_booking(&env, NULL, "bad:1", ctx, &p), GW_EINVAL);
	assert_null(p);
	assert_int_equal(tpl_booking(&env, "reminder", NULL, ctx, &p), GW_EINVAL);
	assert_int_equal(tpl_booking(&env, "reminder", "", ctx, &p), GW_EINVAL);
	assert_int_equal(tpl_booking(&env, "reminder", "bad:1", ctx, NULL), GW_EINVAL);
	env.org_timezone = "Mars/Olympus_Mons";
	assert_int_equal(tpl_booking(&env, "reminder", "bad:1", ctx, &p), GW_EINVAL);
	assert_null(p);
	env.org_timezone = NULL;
	assert_int_equal(tpl_booking(&env, "reminder", "bad:1", ctx, &p), GW_EINVAL);
	assert_null(p);

	/* a trainer's unknown zone falls back to the organisation's instead of failing */
	env = test_env();
	json_object_set_new(json_object_get(ctx, "trainer"), "timezone", json_string("Nowhere/X"));
	assert_int_equal(tpl_booking(&env, "trainer_confirmation", "ok:1", ctx, &p), GW_OK);
	assert_non_null(strstr(str_of(p, "subject", NULL), BERLIN_START));
	json_decref(p);
	json_decref(ctx);
}

/* ---- the layout every kind shares --------------------------------------------------------- */

/* html_unescape_n - the five entities the templates write, turned back; caller frees */
static char *html_unescape_n(const char *s, size_t n)
{
	static const char *const ent[][2] = {
	        {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}};
	char *out = malloc(n + 1);
	size_t i = 0, o = 0, k;

	assert_non_null(out);
	while(i < n) {
		for(k = 0; k < GW_ARRAY_LEN(ent); k++)
			if(n - i >= strlen(ent[k][0]) &&
			   memcmp(s + i, ent[k][0], strlen(ent[k][0])) == 0)
				break;
		if(k < GW_ARRAY_LEN(ent)) {
			out[o++] = ent[k][1][0];
			i += strlen(ent[k][0]);
		} else {
			out[o++] = s[i++];
		}
	}
	out[o] = '\0';
	return out;
}

/* pct_decode - RFC 3986 percent-decoding of n bytes; caller frees */
static char *pct_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	size_t i, o = 0;

	assert_non_null(out);
	for(i = 0; i < n; i++) {
		if(s[i] == '%' && i + 2 < n && hex_val(s[i + 1]) >= 0 && hex_val(s[i + 2]) >= 0) {
			out[o++] = (char)(hex_val(s[i + 1]) * 16 + hex_val(s[i + 2]));
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

/* query_param - the decoded value of name in url's query; caller frees; NULL when absent */
static char *query_param(const char *url, const char *name)
{
	const char *q = strchr(url, '?'), *end;
	size_t nl = strlen(name);

	if(!q)
		return NULL;
	for(q++; *q; q = *end ? end + 1 : end) {
		end = strchr(q, '&');
		if(!end)
			end = q + strlen(q);
		if((size_t)(end - q) > nl && strncmp(q, name, nl) == 0 && q[nl] == '=')
			return pct_decode(q + nl + 1, (size_t)(end - q - nl - 1));
	}
	return NULL;
}

/* href_starting - the unescaped value of the first href that starts with prefix; caller frees;
 * NULL when there is none */
static char *href_starting(const char *html, const char *prefix)
{
	const char *p = html, *end;

	while((p = strstr(p, "href=\""))) {
		p += 6;
		end = strchr(p, '"');
		assert_non_null(end);
		if(strncmp(p, prefix, strlen(prefix)) == 0)
			return html_unescape_n(p, (size_t)(end - p));
	}
	return NULL;
}

/* luminance_at - the #rrggbb after key in style (n bytes) as its WCAG 2.1 relative luminance;
 * -1 when absent. Only the colour itself: "background-color:" does not
 * count as "color:". */
static double luminance_at(const char *style, size_t n, const char *key)
{
	const char *p = style;
	size_t kl = strlen(key);
	double c[3];
	int i;

	for(; (p = strstr(p, key)) && (size_t)(p - style) < n; p += kl) {
		if(strcmp(key, "color:") == 0 && p > style && p[-1] == '-')
			continue;
		p += kl;
		if(*p != '#')
			return -1;
		for(i = 0; i < 3; i++) {
			int v = hex_val(p[1 + 2 * i]) * 16 + hex_val(p[2 + 2 * i]);
			double x = v / 255.0;

			c[i] = x <= 0.03928 ? x / 12.92 : pow((x + 0.055) / 1.055, 2.4);
		}
		return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
	}
	return -1;
}

/* contrast - WCAG 2.1 contrast ratio of two luminances */
static double contrast(double a, double b)
{
	return a > b ? (a + 0.05) / (b + 0.05) : (b + 0.05) / (a + 0.05);
}

/* check_colours - every declaration block in [s, s+n) (style attributes, or the rules of the
 * dark-mode block) that sets a text colour sets a background colour too, and the two are at
 * least 4.5:1 apart; hidden blocks (the preheader) are skipped. open/close: the block's
 * delimiters. Returns how many blocks were checked. */
static int check_colours(const char *name, const char *s, const char *open, const char *close)
{
	const char *p = s, *end;
	int checked = 0;

	while((p = strstr(p, open))) {
		size_t n;
		double fg, bg;

		p += strlen(open);
		end = strstr(p, close);
		assert_non_null(end);
		n = (size_t)(end - p);
		fg = luminance_at(p, n, "color:");
		bg = luminance_at(p, n, "background-color:");
		if(memmem(p, n, "display:none", 12)) {
			p = end;
			continue;
		}
		if(fg >= 0 && bg < 0)
			fail_msg("%s: a text colour without a background colour: %.*s", name,
			         (int)n, p);
		if(fg >= 0 && contrast(fg, bg) < 4.5)
			fail_msg("%s: contrast %.2f below 4.5: %.*s", name, contrast(fg, bg),
			         (int)n, p);
		checked += fg >= 0;
		p = end;
	}
	return checked;
}

/* A kind with the link of its one button (NULL: nothing to act on, no button). */
struct layout_case {
	const char *kind;
	const char *action; /* the button's href, unescaped */
	const char *label;  /* the button's words */
};

#define SAMPLE_JOIN   "https://assist.example/join?s=1&t=2"
#define SAMPLE_MANAGE "https://book.example/b/tok_manage"
#define SAMPLE_SCHED  "https://book.example/s/tok_sched?x=1&y=2"

static const struct layout_case layout_cases[] = {
        {"new_request", "https://book.example/requests/5", "Claim This Request"},
        {"request_received", NULL, NULL},
        {"unmatched_request", "https://book.example/requests/5", "Open the request"},
        {"scheduling_link", SAMPLE_SCHED, "Choose a time"},
        {"confirmation", SAMPLE_MANAGE, "Manage your booking"},
        {"trainer_confirmation", "https://book.example/dashboard", "Open your dashboard"},
        {"reminder", SAMPLE_JOIN, "Join the session"},
        {"close_reminder", "https://book.example/bookings/7", "Mark complete or no-show"},
        {"survey", "https://book.example/survey/tok_survey", "Rate your session"},
        {"no_show", NULL, NULL},
        {"cancellation", NULL, NULL},
        {"session_link", SAMPLE_JOIN, "Join the session"},
        {"calendar_reconnect", "https://book.example/dashboard", "Reconnect your calendar"},
        {"hand_written", "https://book.example/login/tok_login?a=1&b=2", "Sign in"},
    {"sign_in", "https://book.example/login/tok_sign_in", "Sign in to Acme Training"},
    {"test_email", NULL, NULL},
};

/* Names with markup and quotes everywhere a person's name or a session type goes. */
#define EVIL_CUSTOMER      "Eve <script>\"x'"
#define EVIL_CUSTOMER_HTML "Eve &lt;script&gt;&quot;x&#39;"
#define EVIL_TRAINER       "O'Brien & <b>Co</b>"
#define EVIL_TRAINER_HTML  "O&#39;Brien &amp; &lt;b&gt;Co&lt;/b&gt;"

/* render_kind - one kind rendered with the evil names: *text and *html decoded from the built
 * message (caller frees both); the payload new reference */
static json_t *render_kind(const struct tpl_env *env, const char *kind, char **text, char **html)
{
	json_t *ctx = make_ctx("{\"manage_url\": \"" SAMPLE_MANAGE "\","
	                       " \"change_until\": \"2026-11-30T09:00:00Z\","
	                       " \"survey_url\": \"https://book.example/survey/tok_survey\","
	                       " \"complete_url\": \"https://book.example/bookings/7\","
	                       " \"join_url\": \"" SAMPLE_JOIN "\", \"hours_before\": 24,"
	                       " \"no_show_policy\": \"no_refund\", \"reason\": \"ill\"}");
	json_t *req = json_loads(sched_request, 0, NULL), *person, *payload = NULL;
	gw_rc rc;
	char *msg;

	assert_non_null(req);
	json_object_set_new(json_object_get(ctx, "customer"), "name", json_string(EVIL_CUSTOMER));
	json_object_set_new(json_object_get(ctx, "trainer"), "name", json_string(EVIL_TRAINER));
	json_object_set_new(json_object_get(req, "customer"), "name", json_string(EVIL_CUSTOMER));
	json_object_set_new(json_object_get(req, "trainer"), "name", json_string(EVIL_TRAINER));
	json_object_set_new(req, "skills", json_pack("[s]", "<chess>"));
	person = json_pack("{s:i, s:s, s:s, s:s}", "id", 3, "email", "tom@example.com", "name",
	                   EVIL_TRAINER, "timezone", "America/New_York");
	if(strcmp(kind, "new_request") == 0)
		rc = tpl_new_request(env, "new_request:5:3", req, person, &payload);
	else if(strcmp(kind, "request_received") == 0)
		rc = tpl_request_received(env, "request_received:5", req, &payload);
	else if(strcmp(kind, "unmatched_request") == 0)
		rc = tpl_unmatched_request(env, "unmatched_request:5:3", req, person, &payload);
	else if(strcmp(kind, "scheduling_link") == 0)
		rc = tpl_scheduling_link(env, "scheduling_link:5:1", req, SAMPLE_SCHED, env->now,
		                         &payload);
	else if(strcmp(kind, "calendar_reconnect") == 0)
		rc = tpl_calendar_reconnect(env, "calendar_reconnect:3:1", person, "google",
		                            "invalid_grant <revoked>", &payload);
	else if(strcmp(kind, "sign_in") == 0)
		rc = tpl_sign_in(env, "sign_in:3:1", person, "https://book.example/login/tok_sign_in",
		                 env->now + 900, &payload);
	else if(strcmp(kind, "test_email") == 0)
		rc = tpl_test_email(env, "test_email:1", person, &payload);
	else if(strcmp(kind, "hand_written") == 0)
		/* an HTML body written by hand, as a template outside this directory may write it:
		 * laid out by tpl_email like every other */
		rc = tpl_email(
		        env, "sign_in", "sign_in:1", "tom@example.com", EVIL_TRAINER,
		        "Your sign-in link",
		        "Hello O'Brien,\n\nUse this link within 15 minutes to sign in.\n\n"
		        "https://book.example/login/tok_login?a=1&b=2\n",
		        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Your sign-in "
		        "link</title></head>\n<body>\n<p>Hello " EVIL_TRAINER_HTML ",</p>\n"
		        "<p>Use this link within 15 minutes to sign in.</p>\n"
		        "<p><a href=\"https://book.example/login/tok_login?a=1&amp;b=2\">Sign "
		        "in</a></p>\n<p>Acme Training</p>\n</body></html>\n",
		        &payload);
	else
		rc = tpl_booking(env, kind, "layout:7", ctx, &payload);
	if(rc)
		fail_msg("%s: %s", kind, gw_rc_name(rc));
	msg = build(payload);
	*text = decoded_part(msg, "text/plain; charset=UTF-8");
	*html = decoded_part(msg, "text/html; charset=UTF-8");
	free(msg);
	json_decref(person);
	json_decref(req);
	json_decref(ctx);
	return payload;
}

/* check_hrefs - every link is our own page, the button's, the join link or a calendar link;
 * nothing is loaded from outside */
static void check_hrefs(const char *kind, const char *html, const char *action)
{
	static const char *const bad[] = {"src=",    "SRC=",   "<link",   "<img",
	                                  "@import", "url(",   "<script", "<iframe",
	                                  "<object", "<video", "<audio"};
	const char *p = html, *end;
	size_t i;

	for(i = 0; i < GW_ARRAY_LEN(bad); i++)
		if(strstr(html, bad[i]))
			fail_msg("%s: \"%s\" in the HTML part", kind, bad[i]);
	while((p = strstr(p, "href=\""))) {
		char *url;

		p += 6;
		end = strchr(p, '"');
		assert_non_null(end);
		url = html_unescape_n(p, (size_t)(end - p));
		if(!(action && strcmp(url, action) == 0) && strcmp(url, SAMPLE_JOIN) != 0 &&
		   strncmp(url, "https://book.example/", 21) != 0 &&
		   strncmp(url, "https://calendar.google.com/calendar/render?", 44) != 0 &&
		   strncmp(url, "https://outlook.live.com/calendar/0/deeplink/compose?", 53) != 0)
			fail_msg("%s: a link to elsewhere: %s", kind, url);
		free(url);
		p = end;
	}
}

/* test_layout - every kind: the organisation's name at the top, exactly one button whose href
 * is the action link (which the text part has too) or none where there is nothing to do,
 * nothing loaded from outside, user text escaped, the dark-mode block and its meta tags, a
 * background colour beside every text colour with enough contrast, light and dark, at most
 * 600px wide, a hidden preheader */
static void test_layout(void **state)
{
	struct tpl_env env = test_env();
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(layout_cases); i++) {
		const struct layout_case *c = &layout_cases[i];
		char *text, *html, *href, *css;
		json_t *payload = render_kind(&env, c->kind, &text, &html);
		const char *p, *head_end = strstr(html, "</head>"), *btn;
		size_t buttons = 0;
		int n;

		print_message("kind: %s\n", c->kind);
		/* the organisation's name heads the email */
		p = strstr(html, "class=\"tpl-head\"");
		assert_non_null(p);
		p = strchr(p, '>');
		assert_non_null(p);
		assert_int_equal(strncmp(p + 1, "Acme Training</td>", 18), 0);
		/* one button, or none */
		for(p = html; (p = strstr(p, "class=\"tpl-button\"")); p++)
			buttons++;
		assert_int_equal(buttons, c->action ? 1 : 0);
		if(c->action) {
			btn = strstr(html, "class=\"tpl-button\"");
			p = btn;
			while(p > html && strncmp(p, "<a href=\"", 9) != 0)
				p--;
			href = html_unescape_n(p + 9, (size_t)(strchr(p + 9, '"') - p - 9));
			assert_string_equal(href, c->action);
			assert_non_null(strstr(text, c->action));
			p = strchr(btn, '>');
			assert_int_equal(strncmp(p + 1, c->label, strlen(c->label)), 0);
			assert_int_equal(strncmp(p + 1 + strlen(c->label), "</a>", 4), 0);
			/* Outlook's button: the cell carries the colour */
			assert_non_null(strstr(html, "<td class=\"tpl-btn\" align=\"center\" "
			                             "bgcolor=\"#1d4ed8\""));
			free(href);
		}
		check_hrefs(c->kind, html, c->action);
		/* user text escaped */
		if(strstr(html, "<script") || strstr(html, "<b>") || strstr(html, "<chess>"))
			fail_msg("%s: unescaped user text:\n%s", c->kind, html);
		if(!strstr(html, EVIL_CUSTOMER_HTML) && !strstr(html, EVIL_TRAINER_HTML))
			fail_msg("%s: the escaped names are missing:\n%s", c->kind, html);
		/* dark mode: the block in the head, the meta tags, the colours */
		assert_non_null(head_end);
		p = strstr(html, "<style>");
		assert_true(p && p < head_end);
		assert_null(strstr(p + 1, "<style"));
		assert_non_null(strstr(html, "@media (prefers-color-scheme: dark)"));
		assert_non_null(
		        strstr(html, "<meta name=\"color-scheme\" content=\"light dark\">"));
		assert_non_null(strstr(
		        html, "<meta name=\"supported-color-schemes\" content=\"light dark\">"));
		n = check_colours(c->kind, head_end, "style=\"", "\"");
		assert_true(n >= 5);
		p = strstr(html, "<style>");
		css = strndup(p, (size_t)(strstr(p, "</style>") - p));
		assert_non_null(css);
		n = check_colours(c->kind, css, "{", "}");
		assert_true(n >= 5);
		free(css);
		/* width and preview line */
		assert_non_null(strstr(html, "max-width:600px"));
		p = strstr(html, "<div style=\"display:none;");
		assert_non_null(p);
		p = strchr(p, '>');
		assert_true(p[1] != '<');
		free(text);
		free(html);
		json_decref(payload);
	}
}

/* test_calendar_links - the confirmation's Add to Google Calendar and Add to Outlook links
 * decode to the booking's start and end in UTC and its title, with & and + in the names
 * encoded, not taken for separators; the reminder has them too, the cancellation not */
static void test_calendar_links(void **state)
{
	struct tpl_env env = test_env();
	json_t *ctx = make_ctx(
	        "{\"customer\": {\"name\": \"Ann & Bob+Co\", \"email\": \"ann@example.com\"},"
	        " \"trainer\": {\"id\": 3, \"name\": \"Tom & Jerry+Co\", \"email\": "
	        "\"tom@example.com\","
	        "  \"timezone\": \"America/New_York\"},"
	        " \"session_type\": {\"name\": \"Chess & Go = 100%\", \"price_cents\": 5000,"
	        "  \"currency\": \"EUR\"}, \"hours_before\": 24}");
	static const char *const kinds[] = {"confirmation", "reminder"};
	json_t *payload;
	char *msg, *text, *html, *g, *o, *v;
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(kinds); i++) {
		print_message("kind: %s\n", kinds[i]);
		payload = render_parts(&env, kinds[i], ctx, &msg, &text, &html);
		g = href_starting(html, "https://calendar.google.com/calendar/render?");
		o = href_starting(html, "https://outlook.live.com/calendar/0/deeplink/compose?");
		assert_non_null(g);
		assert_non_null(o);
		/* the same links in the text part */
		assert_non_null(strstr(text, g));
		assert_non_null(strstr(text, o));
		/* & and + encoded: decoding sees one parameter each, not two */
		assert_non_null(strstr(g, "Ann%20%26%20Bob%2BCo"));
		assert_non_null(strstr(o, "Tom%20%26%20Jerry%2BCo"));
		assert_null(strstr(g, "& ") ? strstr(g, "& ") : strstr(o, "& "));

		v = query_param(g, "action");
		assert_string_equal(v, "TEMPLATE");
		free(v);
		v = query_param(g, "text");
		assert_string_equal(v, "Chess & Go = 100% with Tom & Jerry+Co");
		free(v);
		v = query_param(g, "dates");
		assert_string_equal(v, "20261201T090000Z/20261201T100000Z");
		free(v);
		v = query_param(g, "details");
		assert_non_null(strstr(v, "Ann & Bob+Co"));
		assert_non_null(strstr(v, "Acme Training"));
		free(v);
		v = query_param(g, "location");
		assert_string_equal(v, JOIN_TEXT);
		free(v);

		v = query_param(o, "path");
		assert_string_equal(v, "/calendar/action/compose");
		free(v);
		v = query_param(o, "rru");
		assert_string_equal(v, "addevent");
		free(v);
		v = query_param(o, "subject");
		assert_string_equal(v, "Chess & Go = 100% with Tom & Jerry+Co");
		free(v);
		v = query_param(o, "startdt");
		assert_string_equal(v, "2026-12-01T09:00:00Z");
		free(v);
		v = query_param(o, "enddt");
		assert_string_equal(v, "2026-12-01T10:00:00Z");
		free(v);
		v = query_param(o, "body");
		assert_non_null(strstr(v, "Ann & Bob+Co"));
		free(v);
		/* the manage link's token is a secret: never handed to a calendar */
		assert_null(strstr(g, "/b/"));
		assert_null(strstr(o, "%2Fb%2F"));
		free(g);
		free(o);
		free(msg);
		free(text);
		free(html);
		json_decref(payload);
	}
	payload = render_parts(&env, "cancellation", ctx, &msg, &text, &html);
	assert_null(strstr(html, "calendar.google.com"));
	assert_null(strstr(html, "outlook.live.com"));
	free(msg);
	free(text);
	free(html);
	json_decref(payload);
	json_decref(ctx);
}

/* test_hand_written - HTML that tpl_layout did not make is laid out by tpl_email: the link alone
 * in its paragraph becomes the button in its place; a fragment without a link gets none */
/* test_body_strings - an email's text and HTML into the payload whole: ASCII, UTF-8 (the
 * non-ASCII byte at every place of an 8-byte word) and, refused, bytes that are not UTF-8 */
static void test_body_strings(void **state)
{
	struct tpl_env env = test_env();
	char text[64];
	json_t *p = NULL;
	size_t at;

	(void)state;
	for(at = 0; at < 17; at++) {
		snprintf(text, sizeof(text), "%.*sZo\xc3\xab and %s", (int)at, "abcdefghijklmnopq",
		         "more words here");
		assert_int_equal(tpl_email(&env, "sign_in", "sign_in:5", "a@example.com", "A", "Hi",
		                           text, "<p>html</p>", &p),
		                 GW_OK);
		assert_string_equal(json_string_value(json_object_get(p, "text")), text);
		json_decref(p);
		p = NULL;
		text[at + 3] = '\xff'; /* the second byte of the \xc3\xab pair */
		assert_int_not_equal(tpl_email(&env, "sign_in", "sign_in:5", "a@example.com", "A",
		                               "Hi", text, "<p>html</p>", &p),
		                     GW_OK);
		assert_null(p);
	}
	assert_int_equal(tpl_email(&env, "sign_in", "sign_in:6", "a@example.com", "A", "Hi",
	                           "plain ASCII text, longer than a word or two", "<p>h</p>", &p),
	                 GW_OK);
	assert_string_equal(json_string_value(json_object_get(p, "text")),
	                    "plain ASCII text, longer than a word or two");
	json_decref(p);
}

static void test_hand_written(void **state)
{
	struct tpl_env env = test_env();
	json_t *p = NULL;
	const char *html;

	(void)state;
	assert_int_equal(
	        tpl_email(&env, "sign_in", "sign_in:1", "a@example.com", "A", "Sign in",
	                  "Hello A,\n\nUse this link to sign in.\n",
	                  "<p>Hello A,</p>\n<p>Use <a href=\"https://book.example/login/x\">"
	                  "this link</a> to sign in.</p>",
	                  &p),
	        GW_OK);
	html = json_string_value(json_object_get(p, "html"));
	/* the link inside a sentence stays; the button follows the body */
	assert_non_null(
	        strstr(html, "\">Use <a href=\"https://book.example/login/x\">this link</a>"));
	/* its paragraphs styled like the layout's own */
	assert_null(strstr(html, "<p>"));
	assert_non_null(strstr(html, "<p class=\"tpl-text\" style=\"font-family:"));
	assert_non_null(strstr(html, "class=\"tpl-button\""));
	assert_non_null(strstr(html, ">this link</a></td>"));
	/* the preheader: the text's first paragraph after the greeting */
	assert_non_null(strstr(html, ">Use this link to sign in.&zwnj;"));
	json_decref(p);
	p = NULL;
	/* the words of a link alone in its paragraph, escaped once on the button */
	assert_int_equal(tpl_email(&env, "sign_in", "sign_in:4", "a@example.com", "A", "Sign in",
	                           "Sign in.\n",
	                           "<body><p><a href=\"https://book.example/login/y\">Sign in to "
	                           "<b>O&#39;Brien &amp; Co</b></a></p></body>",
	                           &p),
	                 GW_OK);
	html = json_string_value(json_object_get(p, "html"));
	assert_non_null(strstr(html, ">Sign in to O&#39;Brien &amp; Co</a></td>"));
	assert_null(strstr(html, "&amp;amp;"));
	assert_null(strstr(html, "&amp;#39;"));
	json_decref(p);
	p = NULL;
	/* the preview line without the link that stands on a line of its own */
	assert_int_equal(
	        tpl_email(&env, "sign_in", "sign_in:3", "a@example.com", "A", "Sign in",
	                  "Hello A,\n\nSign in to Acme here:\nhttps://book.example/login/t\n",
	                  "<p>x</p>", &p),
	        GW_OK);
	html = json_string_value(json_object_get(p, "html"));
	assert_non_null(strstr(html, ">Sign in to Acme here:&zwnj;"));
	json_decref(p);
	p = NULL;
	assert_int_equal(tpl_email(&env, "sign_in", "sign_in:2", "a@example.com", "A", "Hi", "text",
	                           "<p>html</p>", &p),
	                 GW_OK);
	html = json_string_value(json_object_get(p, "html"));
	assert_non_null(strstr(html, "\">html</p>"));
	assert_non_null(strstr(html, "Acme Training</td>"));
	assert_null(strstr(html, "tpl-button"));
	json_decref(p);
	/* the hand-written link's paragraph gave its place to the button: one link, not two */
	p = NULL;
	{
		char *text, *h;
		const char *q;
		size_t links = 0;

		p = render_kind(&env, "hand_written", &text, &h);
		for(q = h; (q = strstr(q, "tok_login")); q++)
			links++;
		assert_int_equal(links, 1);
		/* its closing "Acme Training" gave way to the layout's foot */
		for(links = 0, q = h; (q = strstr(q, "Acme Training")); q++)
			links++;
		assert_int_equal(links, 2);
		free(text);
		free(h);
	}
	json_decref(p);
}

/* teardown_all - drop libical's process-wide caches so LeakSanitizer sees only our memory */
static int teardown_all(void **state)
{
	(void)state;
	icaltimezone_free_builtin_timezones();
	icalmemory_free_ring();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kinds),
	    cmocka_unit_test(test_escaping),
	    cmocka_unit_test(test_header_text),
	    cmocka_unit_test(test_links),
	    cmocka_unit_test(test_message_id),
	    cmocka_unit_test(test_scheduling_link),
	    cmocka_unit_test(test_scheduling_link_invalid),
	    cmocka_unit_test(test_redact),
	    cmocka_unit_test(test_intake_notices),
	    cmocka_unit_test(test_invalid),
	    cmocka_unit_test(test_layout),
	    cmocka_unit_test(test_calendar_links),
	    cmocka_unit_test(test_hand_written),
	    cmocka_unit_test(test_body_strings),
	};

	tz_init();
	return cmocka_run_group_tests_name("tpl", tests, NULL, teardown_all);
}
