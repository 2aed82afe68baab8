/*
 * render_emails.c - writes the HTML part of every email kind, rendered by the real templates
 * from fixed sample data, as DIR/KIND.html (and the text part as DIR/KIND.txt), for the
 * screenshots that test_email_shots.py takes of them in Chromium.
 *
 * Entry point: main(): render_emails DIR. Exit 0 when every kind rendered, 1 otherwise.
 * Threading: single-threaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/timefmt.h"
#include "common/tz.h"
#include "gateway/templates/tpl.h"
#include "gateway/templates/tpl_auth.h"
#include "gateway/templates/tpl_test.h"

/* The booking every booking email is about: 09:00Z on 1 December 2026, an hour, paid. */
static const char booking_ctx[] =
        "{\"booking\": {\"id\": 7, \"start\": \"2026-12-01T09:00:00Z\","
        "  \"end\": \"2026-12-01T10:00:00Z\", \"length_minutes\": 60, \"sequence\": 0,"
        "  \"session_link\": \"https://assist.example/join?s=1&t=2\"},"
        " \"customer\": {\"name\": \"Ada Lovelace\", \"email\": \"ada@example.com\"},"
        " \"trainer\": {\"id\": 3, \"name\": \"Tom Trainer\", \"email\": \"tom@example.com\","
        "  \"timezone\": \"America/New_York\"},"
        " \"session_type\": {\"name\": \"Chess coaching\", \"price_cents\": 5000,"
        "  \"currency\": \"EUR\"},"
        " \"manage_url\": \"https://book.example/b/sample-manage-token-0123456789\","
        " \"change_until\": \"2026-11-30T09:00:00Z\","
        " \"survey_url\": \"https://book.example/survey/sample-survey-token-0123456789\","
        " \"complete_url\": \"https://book.example/dashboard\","
        " \"join_url\": \"https://assist.example/join?s=1&t=2\","
        " \"no_show_policy\": \"contact_support\", \"reason\": \"The trainer is ill.\","
        " \"hours_before\": 24,"
        " \"ics\": \"BEGIN:VCALENDAR\\r\\nEND:VCALENDAR\\r\\n\"}";

static const char request_json[] =
        "{\"id\": 5, \"status\": \"new\","
        " \"customer\": {\"name\": \"Ada Lovelace\", \"email\": \"ada@example.com\","
        "  \"phone\": \"+44 20 7946 0000\"},"
        " \"skills\": [\"chess\", \"endgames\"],"
        " \"session_type\": {\"id\": 2, \"name\": \"Chess coaching\", \"lengths\": [60, 90],"
        "  \"price_cents\": 5000, \"currency\": \"EUR\"},"
        " \"trainer\": {\"id\": 3, \"name\": \"Tom Trainer\"}}";

static const char *const booking_kinds[] = {
        "confirmation", "trainer_confirmation", "reminder",     "close_reminder",
        "survey",       "no_show",              "cancellation", "session_link",
};

/* save - DIR/KIND.html and DIR/KIND.txt from a payload; -1 on failure */
static int save(const char *dir, const char *kind, const json_t *payload)
{
	static const char *const parts[][2] = {{"html", "html"}, {"text", "txt"}};
	char path[1024];
	size_t i;

	for(i = 0; i < 2; i++) {
		const char *s = json_string_value(json_object_get(payload, parts[i][0]));
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s.%s", dir, kind, parts[i][1]);
		if(!s || !(f = fopen(path, "w"))) {
			fprintf(stderr, "render_emails: %s: cannot write %s\n", kind, path);
			return -1;
		}
		fputs(s, f);
		if(fclose(f))
			return -1;
	}
	return 0;
}

/* done - report a template that refused the sample, else save what it made; -1 on failure */
static int done(const char *dir, const char *kind, gw_rc rc, const json_t *payload)
{
	if(rc || !payload) {
		fprintf(stderr, "render_emails: %s: %s\n", kind, gw_rc_name(rc));
		return -1;
	}
	return save(dir, kind, payload);
}

int main(int argc, char **argv)
{
	struct tpl_env env = {0};
	json_t *ctx, *req, *trainer, *admin, *p;
	const char *dir;
	time_t expires;
	size_t i;
	gw_rc rc;
	int bad = 0;

	if(argc != 2) {
		fprintf(stderr, "usage: render_emails DIR\n");
		return 2;
	}
	dir = argv[1];
	tz_init();
	env.org_id = 1;
	env.org_name = "Northwind Coaching";
	env.org_timezone = "Europe/London";
	env.from_address = "bookings@northwind.example";
	env.install_id = "sample";
	env.public_url = "https://book.example";
	if(timefmt_parse("2026-11-20T08:00:00Z", &env.now) ||
	   timefmt_parse("2026-11-23T08:00:00Z", &expires))
		return 1;
	ctx = json_loads(booking_ctx, 0, NULL);
	req = json_loads(request_json, 0, NULL);
	trainer = json_pack("{s:i, s:s, s:s, s:s}", "id", 3, "email", "tom@example.com", "name",
	                    "Tom Trainer", "timezone", "America/New_York");
	admin = json_pack("{s:i, s:s, s:s}", "id", 9, "email", "olga@example.com", "name", "Olga");
	if(!ctx || !req || !trainer || !admin)
		return 1;

	for(i = 0; i < sizeof(booking_kinds) / sizeof(booking_kinds[0]); i++) {
		const char *k = booking_kinds[i];
		char key[64];

		snprintf(key, sizeof(key), "%s:7:0", k);
		/* the calendar part only where the kind carries one */
		if(strcmp(k, "confirmation") && strcmp(k, "trainer_confirmation") &&
		   strcmp(k, "cancellation"))
			json_object_del(ctx, "ics");
		else
			json_object_set_new(ctx, "ics", json_string("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"));
		p = NULL;
		rc = tpl_booking(&env, k, key, ctx, &p);
		bad |= done(dir, k, rc, p);
		json_decref(p);
	}
	p = NULL;
	rc = tpl_new_request(&env, "new_request:5:3", req, trainer, &p);
	bad |= done(dir, "new_request", rc, p);
	json_decref(p);
	p = NULL;
	rc = tpl_request_received(&env, "request_received:5", req, &p);
	bad |= done(dir, "request_received", rc, p);
	json_decref(p);
	p = NULL;
	rc = tpl_unmatched_request(&env, "unmatched_request:5:9", req, admin, &p);
	bad |= done(dir, "unmatched_request", rc, p);
	json_decref(p);
	p = NULL;
	rc = tpl_scheduling_link(&env, "scheduling_link:5:1", req,
	                         "https://book.example/s/sample-link-token-0123456789", expires, &p);
	bad |= done(dir, "scheduling_link", rc, p);
	json_decref(p);
	p = NULL;
	rc = tpl_calendar_reconnect(&env, "calendar_reconnect:3:1", trainer, "google",
	                            "invalid_grant: Token has been expired or revoked.", &p);
	bad |= done(dir, "calendar_reconnect", rc, p);
	json_decref(p);
	p = NULL;
	rc = tpl_sign_in(&env, "sign_in:3:1", trainer,
	                 "https://book.example/login/sample-sign-in-token-0123456789", env.now + 900,
	                 &p);
	bad |= done(dir, "sign_in", rc, p);
	json_decref(p);
	p = NULL;
	rc = tpl_test_email(&env, "test_email:1", admin, &p);
	bad |= done(dir, "test_email", rc, p);
	json_decref(p);

	json_decref(ctx);
	json_decref(req);
	json_decref(trainer);
	json_decref(admin);
	return bad ? 1 : 0;
}
