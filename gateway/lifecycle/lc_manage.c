/*
 * lc_manage.c - the customer's own booking page behind the manage link of the confirmation and
 * reminders ({public_url}/b/{token}): what the booking is, what can still be changed and until
 * when, the free slots to move to, and the customer's cancel and reschedule.
 *
 * The customer's changes are the trainer's transitions (lc_booking_act) with an actor that is
 * the customer: the same guard table decides (the cutoff rule is its customer row), the same
 * transaction writes the change and its effects (calendar row, cancellation or updated invite,
 * reminders skipped), so nothing here writes on its own.
 *
 * Entry points: lc_manage_view(), lc_manage_act().
 * Threading: the caller's store connection.
 */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/timefmt.h"
#include "lc.h"
#include "lc_slots.h"

/* manage_lookup - the organisation and booking of a manage token; GW_ENOTFOUND otherwise */
static gw_rc manage_lookup(struct store *st, const char *token, int64_t *org, int64_t *booking,
                           struct gw_err *err)
{
	char hash[CRYPTO_HASH_HEX];
	size_t len = strlen(token);
	gw_rc rc;

	*org = 0;
	*booking = 0;
	if(len < 20 || len > 100)
		return gw_err_set(err, GW_ENOTFOUND, "", "no such booking link");
	crypto_sha256_hex(token, len, hash);
	rc = store_manage_lookup(st, hash, org, booking);
	if(rc == GW_ENOTFOUND)
		return gw_err_set(err, rc, "", "no such booking link");
	return rc;
}

/* slots_json - the free slots as [{start, end}] (new reference) */
static json_t *slots_json(const struct lc_slot *slots, size_t n)
{
	json_t *list = json_array();
	size_t i;

	/* the earliest LC_VIEW_SLOTS_MAX (one length: 14 days of a 5-minute grid are 4,032) */
	for(i = 0; list && i < n && i < LC_VIEW_SLOTS_MAX; i++) {
		char a[TIMEFMT_LEN], b[TIMEFMT_LEN];

		timefmt_rfc3339(slots[i].start, a);
		timefmt_rfc3339(slots[i].end, b);
		if(json_array_append_new(list, json_pack("{s:s, s:s}", "start", a, "end", b))) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

/* view_of - the customer's view of booking id of org (new reference in *out) */
static gw_rc view_of(struct store *st, int64_t org, int64_t id, json_t **out, struct gw_err *err)
{
	struct lc_actor customer = {0};
	struct lc_booking_facts f;
	struct lc_slot *slots = NULL;
	json_t *b = NULL, *settings = NULL, *list = NULL, *cut = NULL;
	const json_t *stype;
	char at[TIMEFMT_LEN];
	bool can_cancel, can_move, truncated;
	size_t n = 0;
	gw_rc rc;

	*out = NULL;
	customer.customer = true;
	if((rc = store_booking_get(st, org, id, &b)) || (rc = lc_org_settings(st, org, &settings)))
		goto out;
	lc_booking_facts_of(b, settings, clock_now(), &f);
	can_cancel = lc_booking_guard(LC_B_CANCEL, &f, &customer, NULL) == GW_OK;
	can_move = lc_booking_guard(LC_B_RESCHEDULE, &f, &customer, NULL) == GW_OK;
	if(can_move && (rc = lc_customer_slots(st, b, f.cutoff_hours, &slots, &n, err)))
		goto out;
	list = slots_json(slots, n);
	truncated = n > LC_VIEW_SLOTS_MAX;
	if(f.cutoff_hours > 0) {
		timefmt_rfc3339(lc_change_cutoff_at(f.start, f.cutoff_hours), at);
		cut = json_string(at);
	} else {
		cut = json_null(); /* the organisation takes no changes through the link */
	}
	stype = json_object_get(b, "session_type");
	*out = json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:{s:O}, s:o, s:b, s:b, s:o, s:o, s:b}",
	                 "booking_id", json_object_get(b, "id"), "status",
	                 json_object_get(b, "status"), "start", json_object_get(b, "start"), "end",
	                 json_object_get(b, "end"), "length_minutes",
	                 json_object_get(b, "length_minutes"), "sequence",
	                 json_object_get(b, "sequence"), "trainer", "name",
	                 json_object_get(json_object_get(b, "trainer"), "name"), "session_type",
	                 json_is_object(stype) ? json_pack("{s:O}", "name",
	                                                   json_object_get(stype, "name"))
	                                       : json_null(),
	                 "can_cancel", can_cancel, "can_reschedule", can_move, "change_cutoff_at",
	                 cut, "slots", list, "truncated", truncated);
	list = NULL;
	cut = NULL;
	if(!*out)
		rc = GW_ENOMEM;
out:
	free(slots);
	json_decref(b);
	json_decref(settings);
	json_decref(list);
	json_decref(cut);
	return rc;
}

/* lc_manage_view - GET /v1/manage/{token} */
gw_rc lc_manage_view(struct store *st, const char *token, json_t **out, struct gw_err *err)
{
	int64_t org, id;
	gw_rc rc;

	*out = NULL;
	if((rc = manage_lookup(st, token, &org, &id, err)))
		return rc;
	return view_of(st, org, id, out, err);
}

/* lc_manage_act - the customer's cancel or reschedule */
gw_rc lc_manage_act(struct store *st, const struct lc_env *env, const char *token,
                    const char *action, json_t *body, json_t **out, struct gw_err *err)
{
	struct lc_actor customer = {0};
	json_t *b = NULL;
	int64_t org, id;
	gw_rc rc;

	*out = NULL;
	if(strcmp(action, "cancel") != 0 && strcmp(action, "reschedule") != 0)
		return gw_err_set(err, GW_ENOTFOUND, "", "no such booking action");
	/* a token names one booking for good: its row never changes, so reading it before the
	 * transaction lc_booking_act opens is safe */
	if((rc = manage_lookup(st, token, &org, &id, err)))
		return rc;
	customer.customer = true;
	rc = lc_booking_act(st, env, org, id, action, &customer, body, &b, err);
	json_decref(b);
	if(rc)
		return rc;
	return view_of(st, org, id, out, err);
}
