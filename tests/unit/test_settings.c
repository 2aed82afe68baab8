/*
 * test_settings.c - organisation settings (gateway/lifecycle/settings.h): the defaults exactly
 * as the contract's "Settings" (docs/openapi.yaml) lists them, the effective settings (defaults
 * under what is stored), and a table of PATCH bodies, each accepted with the normalised object
 * to store, or refused with GW_EINVAL naming the field and storing nothing.
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

#include "gateway/lifecycle/settings.h"

#define CHECK(cond, ...)                                                                       \
	do {                                                                                       \
		if(!(cond))                                                                            \
			fail_msg(__VA_ARGS__);                                                             \
	} while(0)

/* the contract's "Settings", transcribed by hand: the defaults a fresh organisation has */
static const char api_defaults[] =
    "{\"reminder_hours\": [24],"
    " \"no_show_policy\": \"no_refund\","
    " \"completion_policy\": \"trainer_must_close\","
    " \"close_reminder_after_minutes\": 60,"
    " \"auto_close_after_minutes\": 1440,"
    " \"auto_close_action\": \"complete\","
    " \"allow_undo_completion\": false,"
    " \"survey_enabled\": true,"
    " \"scheduling_link_ttl_hours\": 72,"
    " \"delivery_method\": \"manual\","
    " \"checkin\": {\"window_before_minutes\": 30, \"window_after_minutes\": 15,"
    "  \"require_confirmation\": true, \"auto_log\": true},"
    " \"tick_minutes\": 15,"
    " \"customer_change_cutoff_hours\": 24,"
    " \"intake_per_address_per_minute\": 5,"
    " \"intake_per_org_per_minute\": 60}";

/* load - parse JSON text of the tables (fails the test on a typo in a table) */
static json_t *load(const char *txt)
{
	json_error_t e;
	json_t *v;

	if(!txt)
		return NULL;
	v = json_loads(txt, JSON_DECODE_ANY, &e);
	if(!v)
		fail_msg("bad JSON in a table: %s: %s", txt, e.text);
	return v;
}

/* dump - JSON text for messages (static buffer, single-threaded) */
static const char *dump(const json_t *v)
{
	static char buf[2][1024];
	static int k;
	char *s = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;

	k ^= 1;
	snprintf(buf[k], sizeof(buf[k]), "%s", s ? s : "(null)");
	free(s);
	return buf[k];
}

static void test_defaults(void **state)
{
	json_t *want = load(api_defaults), *got = settings_defaults(), *eff = settings_effective(NULL);

	(void)state;
	CHECK(json_equal(got, want), "defaults %s,\n want %s", dump(got), dump(want));
	CHECK(json_equal(eff, want), "effective of nothing stored %s", dump(eff));
	/* each call is a new object: changing one does not change the next */
	json_object_set_new(got, "tick_minutes", json_integer(1));
	json_decref(got);
	got = settings_defaults();
	CHECK(json_equal(got, want), "defaults changed by a caller: %s", dump(got));
	json_decref(got);
	json_decref(eff);
	json_decref(want);
}

struct effective_case {
	const char *name;
	const char *stored;
	const char *changed; /* the keys of the defaults that differ */
};

static const struct effective_case effective_cases[] = {
    {"nothing stored", "{}", "{}"},
    {"stored values win", "{\"tick_minutes\": 5, \"reminder_hours\": [48, 2]}",
     "{\"tick_minutes\": 5, \"reminder_hours\": [48, 2]}"},
    {"stored checkin is merged into the default checkin", "{\"checkin\": {\"auto_log\": false}}",
     "{\"checkin\": {\"window_before_minutes\": 30, \"window_after_minutes\": 15,"
     " \"require_confirmation\": true, \"auto_log\": false}}"},
};

static void test_effective(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(effective_cases); i++) {
		const struct effective_case *c = &effective_cases[i];
		json_t *stored = load(c->stored), *want = load(api_defaults), *copy, *got, *changed;

		print_message("case: %s\n", c->name);
		changed = load(c->changed);
		json_object_update(want, changed);
		json_decref(changed);
		copy = json_deep_copy(stored);
		got = settings_effective(stored);
		CHECK(json_equal(got, want), "%s: %s,\n want %s", c->name, dump(got), dump(want));
		CHECK(json_equal(stored, copy), "%s: the stored object was changed", c->name);
		json_decref(got);
		json_decref(copy);
		json_decref(want);
		json_decref(stored);
	}
}

struct patch_case {
	const char *name;
	const char *stored; /* what is stored before (NULL: nothing yet) */
	const char *patch;
	gw_rc rc;
	const char *field; /* GW_EINVAL: the field named */
	const char *want;  /* GW_OK: the whole object to store */
};

#define OK(name, stored, patch, want) {name, stored, patch, GW_OK, NULL, want}
#define BAD(name, stored, patch, field) {name, stored, patch, GW_EINVAL, field, NULL}

#define CHECKIN_45 \
	"{\"checkin\": {\"window_before_minutes\": 45, \"window_after_minutes\": 10," \
	" \"require_confirmation\": true, \"auto_log\": true}}"

static const struct patch_case patch_cases[] = {
    /* reminder_hours: an array, or a string like "24, 1"; [] or "" disables */
    OK("reminder_hours as a string", NULL, "{\"reminder_hours\": \"24, 1\"}",
       "{\"reminder_hours\": [24, 1]}"),
    OK("reminder_hours string without spaces", NULL, "{\"reminder_hours\": \"48,2\"}",
       "{\"reminder_hours\": [48, 2]}"),
    OK("reminder_hours single number as a string", NULL, "{\"reminder_hours\": \"12\"}",
       "{\"reminder_hours\": [12]}"),
    OK("reminder_hours empty string disables", NULL, "{\"reminder_hours\": \"\"}",
       "{\"reminder_hours\": []}"),
    OK("reminder_hours empty array disables", NULL, "{\"reminder_hours\": []}",
       "{\"reminder_hours\": []}"),
    OK("reminder_hours array", NULL, "{\"reminder_hours\": [72, 24, 1]}",
       "{\"reminder_hours\": [72, 24, 1]}"),
    OK("reminder_hours duplicates dropped", NULL, "{\"reminder_hours\": \"24, 24, 1\"}",
       "{\"reminder_hours\": [24, 1]}"),
    OK("reminder_hours replaces what was stored", "{\"reminder_hours\": [24]}",
       "{\"reminder_hours\": \"2\"}", "{\"reminder_hours\": [2]}"),
    OK("reminder_hours upper bound", NULL, "{\"reminder_hours\": [720]}",
       "{\"reminder_hours\": [720]}"),
    BAD("reminder_hours semicolons", NULL, "{\"reminder_hours\": \"24; 1\"}", "reminder_hours"),
    BAD("reminder_hours words", NULL, "{\"reminder_hours\": \"a day\"}", "reminder_hours"),
    BAD("reminder_hours numbers without comma", NULL, "{\"reminder_hours\": \"24 1\"}",
        "reminder_hours"),
    BAD("reminder_hours negative string", NULL, "{\"reminder_hours\": \"-1\"}",
        "reminder_hours"),
    BAD("reminder_hours negative", NULL, "{\"reminder_hours\": [-1]}", "reminder_hours"),
    BAD("reminder_hours over 30 days", NULL, "{\"reminder_hours\": [721]}", "reminder_hours"),
    BAD("reminder_hours over 30 days as a string", NULL, "{\"reminder_hours\": \"721\"}",
        "reminder_hours"),
    BAD("reminder_hours fraction", NULL, "{\"reminder_hours\": [24.5]}", "reminder_hours"),
    BAD("reminder_hours strings in the array", NULL, "{\"reminder_hours\": [\"24\"]}",
        "reminder_hours"),
    BAD("reminder_hours a number", NULL, "{\"reminder_hours\": 24}", "reminder_hours"),
    BAD("reminder_hours an object", NULL, "{\"reminder_hours\": {\"h\": 24}}", "reminder_hours"),
    BAD("reminder_hours too many", NULL, "{\"reminder_hours\": [1,2,3,4,5,6,7,8,9,10,11]}",
        "reminder_hours"),
    BAD("reminder_hours too many as a string", NULL,
        "{\"reminder_hours\": \"1,2,3,4,5,6,7,8,9,10,11\"}", "reminder_hours"),

    /* the enums */
    OK("no_show_policy", NULL, "{\"no_show_policy\": \"contact_support\"}",
       "{\"no_show_policy\": \"contact_support\"}"),
    BAD("no_show_policy unknown", NULL, "{\"no_show_policy\": \"refund\"}", "no_show_policy"),
    BAD("no_show_policy not a string", NULL, "{\"no_show_policy\": 1}", "no_show_policy"),
    OK("completion_policy auto_close", NULL, "{\"completion_policy\": \"auto_close\"}",
       "{\"completion_policy\": \"auto_close\"}"),
    OK("completion_policy reminder_then_auto_close", NULL,
       "{\"completion_policy\": \"reminder_then_auto_close\"}",
       "{\"completion_policy\": \"reminder_then_auto_close\"}"),
    BAD("completion_policy is case-sensitive", NULL, "{\"completion_policy\": \"Auto_Close\"}",
        "completion_policy"),
    BAD("completion_policy empty", NULL, "{\"completion_policy\": \"\"}", "completion_policy"),
    OK("auto_close_action cancel", NULL, "{\"auto_close_action\": \"cancel\"}",
       "{\"auto_close_action\": \"cancel\"}"),
    BAD("auto_close_action unknown", NULL, "{\"auto_close_action\": \"delete\"}",
        "auto_close_action"),
    OK("delivery_method zoho_assist", NULL, "{\"delivery_method\": \"zoho_assist\"}",
       "{\"delivery_method\": \"zoho_assist\"}"),
    OK("delivery_method teams", NULL, "{\"delivery_method\": \"teams\"}",
       "{\"delivery_method\": \"teams\"}"),
    BAD("delivery_method unknown", NULL, "{\"delivery_method\": \"skype\"}", "delivery_method"),
    BAD("delivery_method an array", NULL, "{\"delivery_method\": [\"zoom\"]}", "delivery_method"),

    /* the bounded integers */
    OK("auto_close_after_minutes lower bound", NULL, "{\"auto_close_after_minutes\": 30}",
       "{\"auto_close_after_minutes\": 30}"),
    OK("auto_close_after_minutes upper bound", NULL, "{\"auto_close_after_minutes\": 43200}",
       "{\"auto_close_after_minutes\": 43200}"),
    BAD("auto_close_after_minutes 29", NULL, "{\"auto_close_after_minutes\": 29}",
        "auto_close_after_minutes"),
    BAD("auto_close_after_minutes 43201", NULL, "{\"auto_close_after_minutes\": 43201}",
        "auto_close_after_minutes"),
    BAD("auto_close_after_minutes as a string", NULL, "{\"auto_close_after_minutes\": \"60\"}",
        "auto_close_after_minutes"),
    BAD("auto_close_after_minutes fraction", NULL, "{\"auto_close_after_minutes\": 60.5}",
        "auto_close_after_minutes"),
    BAD("auto_close_after_minutes boolean", NULL, "{\"auto_close_after_minutes\": true}",
        "auto_close_after_minutes"),
    OK("close_reminder_after_minutes zero", NULL, "{\"close_reminder_after_minutes\": 0}",
       "{\"close_reminder_after_minutes\": 0}"),
    BAD("close_reminder_after_minutes negative", NULL, "{\"close_reminder_after_minutes\": -1}",
        "close_reminder_after_minutes"),
    OK("scheduling_link_ttl_hours", NULL, "{\"scheduling_link_ttl_hours\": 24}",
       "{\"scheduling_link_ttl_hours\": 24}"),
    BAD("scheduling_link_ttl_hours zero", NULL, "{\"scheduling_link_ttl_hours\": 0}",
        "scheduling_link_ttl_hours"),
    OK("tick_minutes", NULL, "{\"tick_minutes\": 1}", "{\"tick_minutes\": 1}"),
    BAD("tick_minutes zero", NULL, "{\"tick_minutes\": 0}", "tick_minutes"),
    BAD("tick_minutes null", NULL, "{\"tick_minutes\": null}", "tick_minutes"),
    /* customer_change_cutoff_hours: whole hours 0..720; 0 turns customer changes off */
    OK("customer_change_cutoff_hours zero disables", NULL,
       "{\"customer_change_cutoff_hours\": 0}", "{\"customer_change_cutoff_hours\": 0}"),
    OK("customer_change_cutoff_hours 48", "{\"tick_minutes\": 5}",
       "{\"customer_change_cutoff_hours\": 48}",
       "{\"tick_minutes\": 5, \"customer_change_cutoff_hours\": 48}"),
    OK("customer_change_cutoff_hours upper bound", NULL,
       "{\"customer_change_cutoff_hours\": 720}", "{\"customer_change_cutoff_hours\": 720}"),
    /* the public intake limits: 1..1000 a minute per address, 1..10000 per organisation */
    OK("intake per address 1", NULL, "{\"intake_per_address_per_minute\": 1}",
       "{\"intake_per_address_per_minute\": 1}"),
    OK("intake per org 10000", NULL, "{\"intake_per_org_per_minute\": 10000}",
       "{\"intake_per_org_per_minute\": 10000}"),
    BAD("intake per address 0", NULL, "{\"intake_per_address_per_minute\": 0}",
        "intake_per_address_per_minute"),
    BAD("intake per address 1001", NULL, "{\"intake_per_address_per_minute\": 1001}",
        "intake_per_address_per_minute"),
    BAD("intake per org 0", NULL, "{\"intake_per_org_per_minute\": 0}",
        "intake_per_org_per_minute"),
    BAD("intake per org as a string", NULL, "{\"intake_per_org_per_minute\": \"60\"}",
        "intake_per_org_per_minute"),
    BAD("customer_change_cutoff_hours 721", NULL, "{\"customer_change_cutoff_hours\": 721}",
        "customer_change_cutoff_hours"),
    BAD("customer_change_cutoff_hours negative", NULL, "{\"customer_change_cutoff_hours\": -1}",
        "customer_change_cutoff_hours"),
    BAD("customer_change_cutoff_hours as a string", NULL,
        "{\"customer_change_cutoff_hours\": \"24\"}", "customer_change_cutoff_hours"),
    BAD("customer_change_cutoff_hours fraction", NULL,
        "{\"customer_change_cutoff_hours\": 1.5}", "customer_change_cutoff_hours"),
    BAD("customer_change_cutoff_hours null", NULL, "{\"customer_change_cutoff_hours\": null}",
        "customer_change_cutoff_hours"),
    BAD("customer_change_cutoff_hours boolean", NULL,
        "{\"customer_change_cutoff_hours\": false}", "customer_change_cutoff_hours"),

    /* the booleans */
    OK("allow_undo_completion", NULL, "{\"allow_undo_completion\": true}",
       "{\"allow_undo_completion\": true}"),
    OK("survey_enabled", NULL, "{\"survey_enabled\": false}", "{\"survey_enabled\": false}"),
    BAD("allow_undo_completion as a string", NULL, "{\"allow_undo_completion\": \"true\"}",
        "allow_undo_completion"),
    BAD("survey_enabled as a number", NULL, "{\"survey_enabled\": 1}", "survey_enabled"),

    /* unknown keys */
    BAD("unknown setting", NULL, "{\"colour\": \"blue\"}", "colour"),
    BAD("misspelt setting", NULL, "{\"reminderHours\": [24]}", "reminderHours"),

    /* checkin: an object whose sub-fields merge into what is there */
    OK("checkin one sub-field over the defaults", NULL, "{\"checkin\": {\"auto_log\": false}}",
       "{\"checkin\": {\"window_before_minutes\": 30, \"window_after_minutes\": 15,"
       " \"require_confirmation\": true, \"auto_log\": false}}"),
    OK("checkin one sub-field over stored ones", CHECKIN_45,
       "{\"checkin\": {\"require_confirmation\": false}}",
       "{\"checkin\": {\"window_before_minutes\": 45, \"window_after_minutes\": 10,"
       " \"require_confirmation\": false, \"auto_log\": true}}"),
    OK("checkin two sub-fields", CHECKIN_45,
       "{\"checkin\": {\"window_before_minutes\": 0, \"window_after_minutes\": 1440}}",
       "{\"checkin\": {\"window_before_minutes\": 0, \"window_after_minutes\": 1440,"
       " \"require_confirmation\": true, \"auto_log\": true}}"),
    BAD("checkin not an object", NULL, "{\"checkin\": \"on\"}", "checkin"),
    BAD("checkin negative window", NULL, "{\"checkin\": {\"window_before_minutes\": -1}}",
        "checkin.window_before_minutes"),
    BAD("checkin window over a day", CHECKIN_45, "{\"checkin\": {\"window_after_minutes\": 1441}}",
        "checkin.window_after_minutes"),
    BAD("checkin auto_log as a string", NULL, "{\"checkin\": {\"auto_log\": \"yes\"}}",
        "checkin.auto_log"),
    BAD("checkin require_confirmation as a number", NULL,
        "{\"checkin\": {\"require_confirmation\": 1}}", "checkin.require_confirmation"),
    BAD("checkin unknown sub-field", NULL, "{\"checkin\": {\"auto_log\": true, \"colour\": 1}}",
        "checkin.colour"),

    /* whole patches */
    OK("an empty patch changes nothing", "{\"tick_minutes\": 5}", "{}", "{\"tick_minutes\": 5}"),
    OK("other stored settings are kept", "{\"tick_minutes\": 5, \"no_show_policy\": "
                                         "\"contact_support\"}",
       "{\"survey_enabled\": false}",
       "{\"tick_minutes\": 5, \"no_show_policy\": \"contact_support\", \"survey_enabled\": "
       "false}"),
    OK("several settings at once", NULL,
       "{\"completion_policy\": \"reminder_then_auto_close\", \"close_reminder_after_minutes\":"
       " 120, \"auto_close_after_minutes\": 2880, \"reminder_hours\": \"48, 2\"}",
       "{\"completion_policy\": \"reminder_then_auto_close\", \"close_reminder_after_minutes\":"
       " 120, \"auto_close_after_minutes\": 2880, \"reminder_hours\": [48, 2]}"),
    BAD("one bad value refuses the whole patch", "{\"tick_minutes\": 5}",
        "{\"survey_enabled\": false, \"tick_minutes\": 0, \"reminder_hours\": [1]}",
        "tick_minutes"),
};

static void test_patch_table(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(patch_cases); i++) {
		const struct patch_case *c = &patch_cases[i];
		json_t *stored = load(c->stored), *patch = load(c->patch), *want = load(c->want);
		json_t *before = stored ? json_deep_copy(stored) : NULL;
		json_t *sentinel = json_object();
		json_t *out = sentinel;
		struct gw_err err;
		gw_rc rc;

		print_message("case: %s\n", c->name);
		memset(&err, 0, sizeof(err));
		rc = settings_patch(stored, patch, &out, &err);
		CHECK(rc == c->rc, "%s: rc %s, want %s (field '%s': %s)", c->name, gw_rc_name(rc),
		      gw_rc_name(c->rc), err.field, err.message);
		CHECK(json_equal(stored, before) || (!stored && !before),
		      "%s: the stored object was changed in place: %s", c->name, dump(stored));
		if(c->rc == GW_OK) {
			CHECK(json_equal(out, want), "%s: stores %s,\n want %s", c->name, dump(out),
			      dump(want));
			CHECK(out != stored, "%s: returned the borrowed object", c->name);
			json_decref(out);
		} else {
			CHECK(out == NULL, "%s: *out not NULL after a refusal", c->name);
			CHECK(strcmp(err.field, c->field) == 0, "%s: field '%s', want '%s'", c->name,
			      err.field, c->field);
			CHECK(err.message[0] != '\0', "%s: no message", c->name);
			/* no error context is fine too */
			out = sentinel;
			rc = settings_patch(stored, patch, &out, NULL);
			CHECK(rc == c->rc && out == NULL, "%s: without err: rc %s", c->name,
			      gw_rc_name(rc));
		}
		json_decref(sentinel);
		json_decref(before);
		json_decref(want);
		json_decref(patch);
		json_decref(stored);
	}
}

/* every default is a value a PATCH accepts, and the result stored as it was */
static void test_defaults_patch_round_trip(void **state)
{
	json_t *defs = settings_defaults(), *out = NULL, *eff;
	struct gw_err err = {0};

	(void)state;
	assert_int_equal(settings_patch(NULL, defs, &out, &err), GW_OK);
	CHECK(json_equal(out, defs), "%s", dump(out));
	eff = settings_effective(out);
	CHECK(json_equal(eff, defs), "%s", dump(eff));
	json_decref(eff);
	json_decref(out);
	json_decref(defs);
}

/* two PATCHes in a row: the second sees what the first stored (as the HTTP layer chains them) */
static void test_patch_chain(void **state)
{
	json_t *p1 = load("{\"checkin\": {\"window_before_minutes\": 60}}");
	json_t *p2 = load("{\"checkin\": {\"auto_log\": false}, \"reminder_hours\": \"\"}");
	json_t *want = load("{\"checkin\": {\"window_before_minutes\": 60, \"window_after_minutes\":"
	                    " 15, \"require_confirmation\": true, \"auto_log\": false},"
	                    " \"reminder_hours\": []}");
	json_t *s1 = NULL, *s2 = NULL, *eff;
	struct gw_err err = {0};

	(void)state;
	assert_int_equal(settings_patch(NULL, p1, &s1, &err), GW_OK);
	assert_int_equal(settings_patch(s1, p2, &s2, &err), GW_OK);
	CHECK(json_equal(s2, want), "%s", dump(s2));
	eff = settings_effective(s2);
	CHECK(json_equal(json_object_get(eff, "checkin"), json_object_get(want, "checkin")),
	      "effective checkin %s", dump(json_object_get(eff, "checkin")));
	CHECK(json_array_size(json_object_get(eff, "reminder_hours")) == 0, "reminders %s",
	      dump(json_object_get(eff, "reminder_hours")));
	json_decref(eff);
	json_decref(s1);
	json_decref(s2);
	json_decref(want);
	json_decref(p1);
	json_decref(p2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_effective),
	    cmocka_unit_test(test_patch_table),
	    cmocka_unit_test(test_defaults_patch_round_trip),
	    cmocka_unit_test(test_patch_chain),
	};

	return cmocka_run_group_tests_name("settings", tests, NULL, NULL);
}
