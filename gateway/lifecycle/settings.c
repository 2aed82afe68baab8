/*
 * settings.c - organisation settings: one table of every setting with its type and bounds.
 *
 * Entry points: settings_defaults(), settings_effective(), settings_patch().
 * Threading: reentrant.
 */
#include "settings.h"

#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonv.h"

enum kind { K_BOOL, K_INT, K_ENUM, K_HOURS, K_CHECKIN };

struct setting {
	const char *name;
	enum kind kind;
	long long lo, hi;           /* K_INT bounds */
	const char *const *choices; /* K_ENUM, NULL-terminated */
	const char *def;            /* default as JSON text */
};

static const char *const no_show_policies[] = {"no_refund", "contact_support", NULL};
static const char *const completion_policies[] = {"trainer_must_close",
                                                  "reminder_then_auto_close", "auto_close", NULL};
static const char *const close_actions[] = {"complete", "cancel", NULL};
static const char *const delivery_methods[] = {"zoho_assist", "zoom",  "google_meet", "teams",
                                               "phone",       "manual", NULL};

#define MAX_REMINDERS 10
#define MAX_REMINDER_HOURS 720 /* 30 days */

static const struct setting table[] = {
    {"reminder_hours", K_HOURS, 0, MAX_REMINDER_HOURS, NULL, "[24]"},
    {"no_show_policy", K_ENUM, 0, 0, no_show_policies, "\"no_refund\""},
    {"completion_policy", K_ENUM, 0, 0, completion_policies, "\"trainer_must_close\""},
    {"close_reminder_after_minutes", K_INT, 0, 43200, NULL, "60"},
    {"auto_close_after_minutes", K_INT, 30, 43200, NULL, "1440"},
    {"auto_close_action", K_ENUM, 0, 0, close_actions, "\"complete\""},
    {"allow_undo_completion", K_BOOL, 0, 0, NULL, "false"},
    {"survey_enabled", K_BOOL, 0, 0, NULL, "true"},
    {"scheduling_link_ttl_hours", K_INT, 1, 720, NULL, "72"},
    {"delivery_method", K_ENUM, 0, 0, delivery_methods, "\"manual\""},
    {"checkin", K_CHECKIN, 0, 0, NULL,
     "{\"window_before_minutes\": 30, \"window_after_minutes\": 15,"
     " \"require_confirmation\": true, \"auto_log\": true}"},
    {"tick_minutes", K_INT, 1, 1440, NULL, "15"},
    /* customers may cancel or move their booking until this long before the start; 0: never */
    {"customer_change_cutoff_hours", K_INT, 0, 720, NULL, "24"},
    /* public intake: requests a minute from one client address, and into the organisation from
     * everyone (a burst of as many, then that rate); over either: 429 rate_limited */
    {"intake_per_address_per_minute", K_INT, 1, 1000, NULL, "5"},
    {"intake_per_org_per_minute", K_INT, 1, 10000, NULL, "60"},
};

/* defaults_build - the defaults parsed from the table; NULL when memory ran out */
static json_t *defaults_build(void)
{
	json_t *obj = json_object();
	size_t i;

	for(i = 0; obj && i < GW_ARRAY_LEN(table); i++)
		if(json_object_set_new(obj, table[i].name,
		                       json_loads(table[i].def, JSON_DECODE_ANY, NULL))) {
			json_decref(obj);
			return NULL;
		}
	return obj;
}

/* The defaults parsed once (every settings read took about 50k instructions to parse the
 * table's texts again: a twentieth of a reminder's cost in a due tick), then copied; never
 * changed, so threads share it. Made by the first caller; a failed attempt is not kept. */
static _Atomic(json_t *) defaults_cache;

/* settings_defaults - every default (a copy: the caller's to change) */
json_t *settings_defaults(void)
{
	json_t *d = atomic_load_explicit(&defaults_cache, memory_order_acquire), *none = NULL;

	if(!d) {
		if(!(d = defaults_build()))
			return NULL;
		if(!atomic_compare_exchange_strong(&defaults_cache, &none, d)) {
			json_decref(d); /* another thread's came first */
			d = none;
		}
	}
	return json_deep_copy(d);
}

/* settings_effective - defaults with stored values over them */
json_t *settings_effective(json_t *stored)
{
	json_t *obj = settings_defaults();
	const char *key;
	json_t *v, *c;

	if(!obj || !stored)
		return obj;
	json_object_foreach(stored, key, v) {
		if(strcmp(key, "checkin") == 0 && (c = json_object_get(obj, "checkin")))
			json_object_update(c, v);
		else
			json_object_set(obj, key, v);
	}
	return obj;
}

/* parse_hours - reminder_hours from an array or a "24, 1" string; new array or NULL */
static json_t *parse_hours(const json_t *v, struct gw_err *err)
{
	json_t *out = json_array();
	size_t i;
	json_t *x;

	if(!out)
		return NULL;
	if(json_is_array(v)) {
		if(json_array_size(v) > MAX_REMINDERS)
			goto bad;
		json_array_foreach(v, i, x) {
			if(!json_is_integer(x) || json_integer_value(x) < 0 ||
			   json_integer_value(x) > MAX_REMINDER_HOURS)
				goto bad;
			json_array_append_new(out, json_integer(json_integer_value(x)));
		}
	} else if(json_is_string(v)) {
		const char *p = json_string_value(v);
		while(*p) {
			char *end;
			long h;
			while(*p == ' ' || *p == ',')
				p++;
			if(!*p)
				break;
			if(!isdigit((unsigned char)*p))
				goto bad;
			errno = 0;
			h = strtol(p, &end, 10);
			if(errno || h > MAX_REMINDER_HOURS || json_array_size(out) >= MAX_REMINDERS)
				goto bad;
			json_array_append_new(out, json_integer(h));
			p = end;
			while(*p == ' ')
				p++;
			if(*p && *p != ',')
				goto bad;
		}
	} else {
		goto bad;
	}
	/* duplicates would send the same reminder twice under one key: drop them */
	for(i = 0; i < json_array_size(out); i++) {
		size_t j;
		for(j = i + 1; j < json_array_size(out);) {
			if(json_integer_value(json_array_get(out, i)) ==
			   json_integer_value(json_array_get(out, j)))
				json_array_remove(out, j);
			else
				j++;
		}
	}
	return out;
bad:
	json_decref(out);
	gw_err_set(err, GW_EINVAL, "reminder_hours",
	           "reminder_hours must be a list of up to %d whole hours from 0 to %d, as an array "
	           "or a string like \"24, 1\"",
	           MAX_REMINDERS, MAX_REMINDER_HOURS);
	return NULL;
}

/* parse_checkin - validate and merge the checkin object */
static json_t *parse_checkin(const json_t *cur, json_t *v, struct gw_err *err)
{
	static const char *const keys[] = {"window_before_minutes", "window_after_minutes",
	                                   "require_confirmation", "auto_log", NULL};
	json_t *out;
	long long n;
	bool b, here;

	if(!json_is_object(v)) {
		gw_err_set(err, GW_EINVAL, "checkin", "checkin must be an object");
		return NULL;
	}
	if(jv_only(v, keys, err)) {
		char sub[80];
		snprintf(sub, sizeof(sub), "checkin.%s", err ? err->field : "");
		if(err)
			snprintf(err->field, sizeof(err->field), "%.63s", sub);
		return NULL;
	}
	out = json_deep_copy(cur);
	if(!out)
		return NULL;
	if(jv_int(v, "window_before_minutes", false, 0, 1440, &n, &here, err))
		goto bad;
	if(here)
		json_object_set_new(out, "window_before_minutes", json_integer(n));
	if(jv_int(v, "window_after_minutes", false, 0, 1440, &n, &here, err))
		goto bad;
	if(here)
		json_object_set_new(out, "window_after_minutes", json_integer(n));
	if(jv_bool(v, "require_confirmation", false, &b, &here, err))
		goto bad;
	if(here)
		json_object_set_new(out, "require_confirmation", json_boolean(b));
	if(jv_bool(v, "auto_log", false, &b, &here, err))
		goto bad;
	if(here)
		json_object_set_new(out, "auto_log", json_boolean(b));
	return out;
bad:
	if(err) {
		char sub[80];
		snprintf(sub, sizeof(sub), "checkin.%s", err->field);
		snprintf(err->field, sizeof(err->field), "%.63s", sub);
	}
	json_decref(out);
	return NULL;
}

/* settings_patch - validate and merge a PATCH */
gw_rc settings_patch(json_t *stored, json_t *patch, json_t **out,
                     struct gw_err *err)
{
	json_t *res = NULL, *eff = NULL;
	const char *key;
	json_t *v;
	gw_rc rc = GW_OK;
	size_t i;

	*out = NULL;
	res = stored ? json_deep_copy(stored) : json_object();
	eff = settings_effective(stored);
	if(!res || !eff) {
		rc = GW_ENOMEM;
		goto out;
	}
	json_object_foreach(patch, key, v) {
		const struct setting *s = NULL;
		json_t *nv = NULL;

		for(i = 0; i < GW_ARRAY_LEN(table); i++) {
			if(strcmp(table[i].name, key) == 0)
				s = &table[i];
		}
		if(!s) {
			rc = gw_err_set(err, GW_EINVAL, key, "unknown setting %s", key);
			goto out;
		}
		switch(s->kind) {
		case K_BOOL:
			if(!json_is_boolean(v)) {
				rc = gw_err_set(err, GW_EINVAL, key, "%s must be true or false", key);
				goto out;
			}
			nv = json_incref(v);
			break;
		case K_INT:
			if(!json_is_integer(v) || json_integer_value(v) < s->lo ||
			   json_integer_value(v) > s->hi) {
				rc = gw_err_set(err, GW_EINVAL, key, "%s must be a whole number from %lld to %lld",
				                key, s->lo, s->hi);
				goto out;
			}
			nv = json_incref(v);
			break;
		case K_ENUM: {
			int ok = 0;
			for(i = 0; json_is_string(v) && s->choices[i]; i++) {
				if(strcmp(s->choices[i], json_string_value(v)) == 0)
					ok = 1;
			}
			if(!ok) {
				char list[256] = "";
				for(i = 0; s->choices[i]; i++) {
					strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
					strncat(list, s->choices[i], sizeof(list) - strlen(list) - 1);
				}
				rc = gw_err_set(err, GW_EINVAL, key, "%s must be one of %s", key, list);
				goto out;
			}
			nv = json_incref(v);
			break;
		}
		case K_HOURS:
			nv = parse_hours(v, err);
			if(!nv) {
				rc = GW_EINVAL;
				goto out;
			}
			break;
		case K_CHECKIN:
			nv = parse_checkin(json_object_get(eff, "checkin"), v, err);
			if(!nv) {
				rc = GW_EINVAL;
				goto out;
			}
			break;
		}
		json_object_set_new(res, key, nv);
	}
	*out = res;
	res = NULL;
out:
	json_decref(res);
	json_decref(eff);
	return rc;
}
