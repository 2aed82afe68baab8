/*
 * lc_schedule.c - the customer's side of a request: the scheduling link, the free slots behind
 * it, the booking of a slot and the payment call. Each write is one store transaction with its
 * outbox rows and their dedupe keys (docs/design.md rules 1 and 2).
 *
 * Entry points: lc_link_send(), lc_schedule_view(), lc_book(), lc_pay(), lc_booking_slots(),
 * lc_customer_slots().
 * Threading: the caller's store connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/jsonv.h"
#include "common/timefmt.h"
#include "gateway/delivery/dispatch.h"
#include "gateway/templates/tpl.h"
#include "lc.h"
#include "lc_slots.h"

#define SLOT_DAYS 14

static const char *const day_keys[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* only_session_type - the id of the organisation's only session type that fits skills (every
 * skill of the type is among them), or 0 when none or several do */
static gw_rc only_session_type(struct store *st, int64_t org, const json_t *skills,
                               int64_t *pick)
{
	json_t *types = NULL, *t, *k, *have;
	size_t i, j, m;
	int fits = 0;
	gw_rc rc;

	*pick = 0;
	if((rc = store_session_type_list(st, org, &types)))
		return rc;
	json_array_foreach(types, i, t) {
		bool all = true;
		json_array_foreach(json_object_get(t, "skills"), j, k) {
			bool found = false;
			json_array_foreach(skills, m, have) found |= json_equal(k, have);
			all &= found;
		}
		if(all) {
			fits++;
			*pick = json_integer_value(json_object_get(t, "id"));
		}
	}
	if(fits != 1)
		*pick = 0;
	json_decref(types);
	return GW_OK;
}

/* lc_link_send - send or resend the scheduling link */
gw_rc lc_link_send(struct store *st, const struct lc_env *env, int64_t org, int64_t request,
                   const struct lc_actor *actor, json_t **out, struct gw_err *err)
{
	json_t *req = NULL, *settings = NULL, *orgj = NULL, *payload = NULL;
	char token[64] = "", hash[CRYPTO_HASH_HEX], url[600], key[96], sent[TIMEFMT_LEN],
	     exp[TIMEFMT_LEN];
	struct tpl_env tenv;
	time_t now = clock_now(), expires;
	const char *status;
	int version = 0;
	gw_rc rc;

	*out = NULL;
	if(!(actor->roles & ROLE_TRAINER))
		return gw_err_set(err, GW_EFORBIDDEN, "", "only the claiming trainer sends the link");
	rc = store_begin(st);
	if(rc)
		return rc;
	if((rc = store_request_get(st, org, request, &req)))
		goto fail;
	if(json_integer_value(json_object_get(req, "trainer_id")) != actor->user_id) {
		rc = gw_err_set(err, GW_EFORBIDDEN, "", "only the claiming trainer sends the link");
		goto fail;
	}
	status = json_string_value(json_object_get(req, "status"));
	if(strcmp(status, "claimed") != 0 && strcmp(status, "scheduling") != 0) {
		rc = gw_err_set(err, GW_ESTATE, "", "a link can be sent only while the request is "
		                                    "claimed or scheduling (it is %s)", status);
		goto fail;
	}
	if(!json_is_object(json_object_get(req, "session_type"))) {
		/* the one session type that fits is the obvious choice; with several, the trainer
		 * picks (PATCH the request) */
		int64_t pick = 0;
		if((rc = only_session_type(st, org, json_object_get(req, "skills"), &pick)))
			goto fail;
		if(!pick) {
			rc = gw_err_set(err, GW_ESTATE, "session_type_id",
			                "choose the request's session type before sending the link");
			goto fail;
		}
		if((rc = store_request_set_session_type(st, org, request, actor->user_id, pick, now)))
			goto fail;
	}
	if((rc = lc_org_settings(st, org, &settings)))
		goto fail;
	expires = now + 3600 * json_integer_value(json_object_get(settings,
	                                                          "scheduling_link_ttl_hours"));
	if((rc = crypto_token("", token, sizeof(token))))
		goto fail;
	crypto_sha256_hex(token, strlen(token), hash);
	rc = store_request_link_set(st, org, request, actor->user_id, hash, now, expires, &version);
	if(rc)
		goto fail;
	/* an older link's email that has not gone yet would carry a dead link: expire it */
	if((rc = store_outbox_expire_request(st, request, "scheduling_link")))
		goto fail;
	json_decref(req);
	req = NULL;
	if((rc = store_request_get(st, org, request, &req)) ||
	   (rc = lc_tpl_env(st, env, org, &orgj, &tenv)))
		goto fail;
	snprintf(url, sizeof(url), "%s/s/%s", env->public_url, token);
	snprintf(key, sizeof(key), "scheduling_link:%lld:%d", (long long)request, version);
	if((rc = tpl_scheduling_link(&tenv, key, req, url, expires, &payload)))
		goto fail;
	rc = lc_enqueue_email(st, org, "scheduling_link", key, request, 0, payload, 0, expires, NULL,
	                      err);
	payload = NULL;
	if(rc)
		goto fail;
	if((rc = store_commit(st)))
		goto done;
	dispatch_wake();
	dispatch_busy_wake(actor->user_id); /* the customer is about to look: fresh busy times */
	timefmt_rfc3339(now, sent);
	timefmt_rfc3339(expires, exp);
	*out = json_pack("{s:s, s:s, s:s, s:i}", "status", "scheduling", "link_sent_at", sent,
	                 "link_expires_at", exp, "link_version", version);
	rc = *out ? GW_OK : GW_ENOMEM;
	goto done;
fail:
	store_rollback(st);
done:
	memset(token, 0, sizeof(token));
	json_decref(req);
	json_decref(settings);
	json_decref(orgj);
	json_decref(payload);
	return rc;
}

/* link_lookup - the request behind a live link token; GW_EEXPIRED otherwise */
static gw_rc link_lookup(struct store *st, const char *token, json_t **req, struct gw_err *err)
{
	char hash[CRYPTO_HASH_HEX];
	size_t len = strlen(token);
	gw_rc rc;

	*req = NULL;
	if(len < 20 || len > 100)
		return gw_err_set(err, GW_EEXPIRED, "", "this link has expired or was replaced");
	crypto_sha256_hex(token, len, hash);
	rc = store_request_by_link(st, hash, req);
	if(rc == GW_ENOTFOUND)
		return gw_err_set(err, GW_EEXPIRED, "", "this link has expired or was replaced by a "
		                                        "newer one");
	if(rc)
		return rc;
	if(strcmp(json_string_value(json_object_get(*req, "status")), "cancelled") == 0) {
		json_decref(*req);
		*req = NULL;
		return gw_err_set(err, GW_EEXPIRED, "", "this request was cancelled");
	}
	if(clock_now() >= json_integer_value(json_object_get(*req, "link_expires_at"))) {
		json_decref(*req);
		*req = NULL;
		return gw_err_set(err, GW_EEXPIRED, "", "this link has expired");
	}
	return GW_OK;
}

/* parse_hhmm - "HH:MM" to minutes; 24:00 allowed as an end */
static int parse_hhmm(const char *s)
{
	if(!s || strlen(s) != 5 || s[2] != ':' || s[0] < '0' || s[0] > '2' || s[1] < '0' ||
	   s[1] > '9' || s[3] < '0' || s[3] > '5' || s[4] < '0' || s[4] > '9')
		return -1;
	return ((s[0] - '0') * 10 + (s[1] - '0')) * 60 + (s[3] - '0') * 10 + (s[4] - '0');
}

/* compute_slots - free slots of a trainer for a session type in [from, to); booking except
 * (0: none) does not count as busy */
static gw_rc compute_slots(struct store *st, const json_t *trainer, const json_t *stype,
                           time_t from, time_t to, int64_t except, struct lc_slot **slots,
                           size_t *n, struct gw_err *err)
{
	const json_t *avail = json_object_get(trainer, "availability");
	const json_t *weekly = json_object_get(avail, "weekly");
	const json_t *blk = json_object_get(avail, "blackouts");
	const json_t *lengths = json_object_get(stype, "lengths");
	struct lc_window *w = NULL;
	struct lc_range *bl = NULL, *busy = NULL;
	int *lens = NULL;
	json_t *busyj = NULL, *calj = NULL, *x;
	size_t i, nw = 0, nb = 0, nbusy = 0, nl = 0, d;
	gw_rc rc = GW_OK;

	*slots = NULL;
	*n = 0;
	w = calloc(json_array_size(weekly) + 1, sizeof(*w));
	bl = calloc(json_array_size(blk) + 1, sizeof(*bl));
	lens = calloc(json_array_size(lengths) + 1, sizeof(*lens));
	if(!w || !bl || !lens) {
		rc = GW_ENOMEM;
		goto out;
	}
	json_array_foreach(weekly, i, x) {
		const char *day = json_string_value(json_object_get(x, "day"));
		for(d = 0; day && d < 7; d++) {
			if(strcmp(day, day_keys[d]) == 0)
				break;
		}
		if(!day || d == 7)
			continue;
		w[nw].wday = (int)d;
		w[nw].start_min = parse_hhmm(json_string_value(json_object_get(x, "start")));
		w[nw].end_min = parse_hhmm(json_string_value(json_object_get(x, "end")));
		if(w[nw].start_min >= 0 && w[nw].end_min > w[nw].start_min)
			nw++;
	}
	json_array_foreach(blk, i, x) {
		time_t a, b;
		if(!timefmt_parse(json_string_value(json_object_get(x, "start")), &a) &&
		   !timefmt_parse(json_string_value(json_object_get(x, "end")), &b)) {
			bl[nb].start = a;
			bl[nb].end = b;
			nb++;
		}
	}
	json_array_foreach(lengths, i, x) lens[nl++] = (int)json_integer_value(x);
	rc = store_booking_busy(st, json_integer_value(json_object_get(trainer, "id")), from, to,
	                        except, &busyj);
	if(rc)
		goto out;
	/* the trainer's calendar, as the background fetch last stored it (never fetched here) */
	rc = store_busy_ranges(st, json_integer_value(json_object_get(trainer, "id")), from, to,
	                       &calj);
	if(rc)
		goto out;
	busy = calloc(json_array_size(busyj) + json_array_size(calj) + 1, sizeof(*busy));
	if(!busy) {
		rc = GW_ENOMEM;
		goto out;
	}
	json_array_foreach(busyj, i, x) {
		busy[nbusy].start = (time_t)json_integer_value(json_array_get(x, 0));
		busy[nbusy].end = (time_t)json_integer_value(json_array_get(x, 1));
		nbusy++;
	}
	json_array_foreach(calj, i, x) {
		busy[nbusy].start = (time_t)json_integer_value(json_array_get(x, 0));
		busy[nbusy].end = (time_t)json_integer_value(json_array_get(x, 1));
		nbusy++;
	}
	rc = lc_slots_compute(json_string_value(json_object_get(trainer, "timezone")), w, nw, bl, nb,
	                      busy, nbusy, lens, nl,
	                      (int)json_integer_value(json_object_get(stype, "step_minutes")), from,
	                      to, slots, n, err);
out:
	free(w);
	free(bl);
	free(busy);
	free(lens);
	json_decref(busyj);
	json_decref(calj);
	return rc;
}

/* first_slot_from - slots start at the next whole minute, never in the past */
static time_t first_slot_from(time_t now)
{
	return now - now % 60 + (now % 60 ? 60 : 0);
}

/* lc_schedule_view - the customer's view of a link */
gw_rc lc_schedule_view(struct store *st, const char *token, time_t after, json_t **out,
                       struct gw_err *err)
{
	json_t *req = NULL, *stype = NULL, *list = NULL, *bookings = NULL;
	struct lc_slot *slots = NULL;
	size_t n = 0, i, shown = 0;
	time_t next_from = 0, last_start = 0;
	size_t tail = 0; /* the listed slots of last_start, at the end of the list */
	time_t from = first_slot_from(clock_now());
	int64_t org;
	gw_rc rc;

	*out = NULL;
	if((rc = link_lookup(st, token, &req, err)))
		return rc;
	org = json_integer_value(json_object_get(req, "org_id"));
	rc = store_session_type_get(st, org, json_integer_value(json_object_get(req,
	                                                                        "session_type_id")),
	                            &stype);
	if(rc)
		goto out;
	list = json_array();
	if(!list) {
		rc = GW_ENOMEM;
		goto out;
	}
	if(strcmp(json_string_value(json_object_get(req, "status")), "scheduling") == 0) {
		rc = compute_slots(st, json_object_get(req, "trainer"), stype, from,
		                   from + SLOT_DAYS * 86400, 0, &slots, &n, err);
		if(rc)
			goto out;
		for(i = 0; i < n; i++) {
			char a[TIMEFMT_LEN], b[TIMEFMT_LEN];
			if(slots[i].start < after)
				continue;
			if(shown == LC_VIEW_SLOTS_MAX) {
				next_from = slots[i].start;
				/* the page ends where a start time ends: the lengths of the start it cut
				 * into move to the next page, which begins with them (?from=next_from),
				 * instead of showing twice */
				if(last_start == next_from && tail < shown)
					for(; tail > 0; tail--)
						json_array_remove(list, json_array_size(list) - 1);
				break;
			}
			tail = slots[i].start == last_start ? tail + 1 : 1;
			last_start = slots[i].start;
			shown++;
			timefmt_rfc3339(slots[i].start, a);
			timefmt_rfc3339(slots[i].end, b);
			json_array_append_new(list, json_pack("{s:s, s:s, s:i}", "start", a, "end", b,
			                                      "length_minutes", slots[i].length_min));
		}
	}
	rc = store_booking_list_for_request(st, json_integer_value(json_object_get(req, "id")),
	                                    &bookings);
	if(rc)
		goto out;
	*out = json_pack("{s:O, s:{s:O}, s:{s:O, s:O, s:O, s:O}, s:O, s:o, s:o}", "request_id",
	                 json_object_get(req, "id"), "trainer", "name",
	                 json_object_get(json_object_get(req, "trainer"), "name"), "session_type",
	                 "name", json_object_get(stype, "name"), "lengths",
	                 json_object_get(stype, "lengths"), "price_cents",
	                 json_object_get(stype, "price_cents"), "currency",
	                 json_object_get(stype, "currency"), "status",
	                 json_object_get(req, "status"), "slots", list, "bookings", bookings);
	list = NULL;
	bookings = NULL;
	if(!*out) {
		rc = GW_ENOMEM;
		goto out;
	}
	json_object_set_new(*out, "truncated", json_boolean(next_from != 0));
	if(next_from) {
		char nf[TIMEFMT_LEN];

		timefmt_rfc3339(next_from, nf);
		json_object_set_new(*out, "next_from", json_string(nf));
	}
out:
	free(slots);
	json_decref(req);
	json_decref(stype);
	json_decref(list);
	json_decref(bookings);
	return rc;
}

/* lc_book - the customer takes a slot */
gw_rc lc_book(struct store *st, const char *token, json_t *body, json_t **out,
              struct gw_err *err)
{
	static const char *const keys[] = {"start", "length_minutes", NULL};
	struct store_booking_new nb = {0};
	json_t *req = NULL, *stype = NULL, *x;
	struct lc_slot *slots = NULL;
	long long len = 0;
	time_t start, now = clock_now();
	char uid[80], raw[CRYPTO_TOKEN_LEN];
	size_t n = 0, i;
	int64_t org, id = 0;
	bool offered = false, length_ok = false;
	gw_rc rc;

	*out = NULL;
	if((rc = jv_only(body, keys, err)) ||
	   (rc = jv_time(body, "start", true, &start, NULL, err)) ||
	   (rc = jv_int(body, "length_minutes", true, 1, 1440, &len, NULL, err)))
		return rc;
	rc = store_begin(st);
	if(rc)
		return rc;
	if((rc = link_lookup(st, token, &req, err)))
		goto fail;
	if(strcmp(json_string_value(json_object_get(req, "status")), "scheduling") != 0) {
		rc = gw_err_set(err, GW_ESTATE, "", "this request already has a booking");
		goto fail;
	}
	org = json_integer_value(json_object_get(req, "org_id"));
	if((rc = store_session_type_get(st, org,
	                                json_integer_value(json_object_get(req, "session_type_id")),
	                                &stype)))
		goto fail;
	json_array_foreach(json_object_get(stype, "lengths"), i, x) length_ok |=
	    json_integer_value(x) == len;
	if(!length_ok) {
		rc = gw_err_set(err, GW_EINVAL, "length_minutes",
		                "length_minutes must be one of the session type's lengths");
		goto fail;
	}
	if(start < now) {
		rc = gw_err_set(err, GW_EINVAL, "start", "start is in the past");
		goto fail;
	}
	/* the slot must be one the link offers: inside availability, on the grid, free */
	rc = compute_slots(st, json_object_get(req, "trainer"), stype, first_slot_from(now),
	                   first_slot_from(now) + SLOT_DAYS * 86400, 0, &slots, &n, err);
	if(rc)
		goto fail;
	for(i = 0; i < n; i++)
		offered |= slots[i].start == start && slots[i].length_min == len;
	nb.org_id = org;
	nb.request_id = json_integer_value(json_object_get(req, "id"));
	nb.trainer_id = json_integer_value(json_object_get(json_object_get(req, "trainer"), "id"));
	nb.start = start;
	nb.end = start + len * 60;
	nb.length_minutes = (int)len;
	nb.price_cents = json_integer_value(json_object_get(stype, "price_cents"));
	nb.currency = json_string_value(json_object_get(stype, "currency"));
	nb.hold_expires_at = json_integer_value(json_object_get(req, "link_expires_at"));
	if((rc = crypto_token("", raw, sizeof(raw))))
		goto fail;
	snprintf(uid, sizeof(uid), "%.32s@ordinatus", raw);
	nb.uid = uid;
	if(!offered) {
		/* not offered: busy in the trainer's calendar, taken (by an overlapping hold) or
		 * never available */
		json_t *cal = NULL;
		if((rc = store_busy_ranges(st, nb.trainer_id, nb.start, nb.end, &cal)))
			goto fail;
		if(json_array_size(cal) > 0) {
			json_decref(cal);
			rc = gw_err_set(err, GW_ESLOT, "", "that slot is no longer free: the trainer's "
			                                   "calendar is busy then");
			goto fail;
		}
		json_decref(cal);
		rc = store_booking_create(st, &nb, now, &id);
		if(rc == GW_ESLOT)
			gw_err_set(err, rc, "", "that slot is no longer free");
		else
			rc = gw_err_set(err, GW_EINVAL, "start", "start is not one of the offered slots");
		goto fail;
	}
	rc = store_booking_create(st, &nb, now, &id);
	if(rc == GW_ESLOT)
		gw_err_set(err, rc, "", "that slot is no longer free");
	if(rc)
		goto fail;
	if((rc = store_request_set_status(st, nb.request_id, "scheduling", "booked", now)))
		goto fail;
	if((rc = store_commit(st)))
		goto done;
	*out = json_pack("{s:I, s:s}", "booking_id", (json_int_t)id, "status", "pending_payment");
	rc = *out ? GW_OK : GW_ENOMEM;
	goto done;
fail:
	store_rollback(st);
done:
	free(slots);
	json_decref(req);
	json_decref(stype);
	return rc;
}

/* lc_pay - the customer's payment call */
gw_rc lc_pay(struct store *st, const char *token, json_t *body, json_t **out,
             struct gw_err *err)
{
	static const char *const keys[] = {"reference", NULL};
	struct store_booking_set set = {0};
	json_t *req = NULL, *list = NULL, *b, *booking = NULL;
	const char *ref;
	time_t now = clock_now();
	int64_t org, id;
	char paid[TIMEFMT_LEN];
	gw_rc rc;

	*out = NULL;
	if((rc = jv_only(body, keys, err)) ||
	   (rc = jv_string(body, "reference", true, 1, 200, 0, &ref, NULL, err)))
		return rc;
	rc = store_begin(st);
	if(rc)
		return rc;
	if((rc = link_lookup(st, token, &req, err)))
		goto fail;
	org = json_integer_value(json_object_get(req, "org_id"));
	if((rc = store_booking_list_for_request(st, json_integer_value(json_object_get(req, "id")),
	                                        &list)))
		goto fail;
	b = json_array_get(list, 0);
	if(!b || strcmp(json_string_value(json_object_get(b, "status")), "pending_payment") != 0) {
		rc = gw_err_set(err, GW_ESTATE, "", "there is no booking awaiting payment");
		goto fail;
	}
	id = json_integer_value(json_object_get(b, "booking_id"));
	if((rc = store_booking_get(st, org, id, &booking)))
		goto fail;
	if(json_is_string(json_object_get(booking, "payment_reference"))) {
		/* a repeated call (a double click) with the same reference is the same payment */
		if(strcmp(json_string_value(json_object_get(booking, "payment_reference")), ref) != 0) {
			rc = gw_err_set(err, GW_ESTATE, "", "this booking is already paid");
			goto fail;
		}
		store_rollback(st);
		*out = json_pack("{s:I, s:O}", "booking_id", (json_int_t)id, "paid_at",
		                 json_object_get(booking, "paid_at"));
		rc = *out ? GW_OK : GW_ENOMEM;
		goto done;
	}
	set.paid_at = now;
	set.payment_reference = ref;
	if((rc = store_booking_transition(st, org, id, "pending_payment", &set, now)))
		goto fail;
	if((rc = store_commit(st)))
		goto done;
	timefmt_rfc3339(now, paid);
	*out = json_pack("{s:I, s:s}", "booking_id", (json_int_t)id, "paid_at", paid);
	rc = *out ? GW_OK : GW_ENOMEM;
	goto done;
fail:
	store_rollback(st);
done:
	json_decref(req);
	json_decref(list);
	json_decref(booking);
	return rc;
}


/* lc_booking_slots - where a booking can move to: the link's slot rule for one length */
gw_rc lc_booking_slots(struct store *st, const json_t *b, struct lc_slot **slots, size_t *n,
                       struct gw_err *err)
{
	int64_t org = json_integer_value(json_object_get(b, "org_id"));
	const json_t *tr = json_object_get(b, "trainer");
	json_t *req = NULL, *stype = NULL, *avail = NULL, *trainer = NULL, *one = NULL;
	time_t from = first_slot_from(clock_now());
	gw_rc rc;

	*slots = NULL;
	*n = 0;
	if((rc = store_request_get(st, org, json_integer_value(json_object_get(b, "request_id")),
	                           &req)) ||
	   (rc = store_session_type_get(st, org,
	                                json_integer_value(json_object_get(req, "session_type_id")),
	                                &stype)) ||
	   (rc = store_user_availability(st, org, json_integer_value(json_object_get(tr, "id")),
	                                 &avail)))
		goto out;
	/* the trainer as compute_slots reads it; the session type cut to the booking's length */
	trainer = json_pack("{s:O, s:O, s:O}", "id", json_object_get(tr, "id"), "timezone",
	                    json_object_get(tr, "timezone"), "availability", avail);
	one = json_pack("{s:[O], s:O}", "lengths", json_object_get(b, "length_minutes"),
	                "step_minutes", json_object_get(stype, "step_minutes"));
	if(!trainer || !one) {
		rc = GW_ENOMEM;
		goto out;
	}
	rc = compute_slots(st, trainer, one, from, from + SLOT_DAYS * 86400,
	                   json_integer_value(json_object_get(b, "id")), slots, n, err);
out:
	json_decref(req);
	json_decref(stype);
	json_decref(avail);
	json_decref(trainer);
	json_decref(one);
	return rc;
}

/* lc_customer_slots - lc_booking_slots less the slots inside the change cutoff from now */
gw_rc lc_customer_slots(struct store *st, const json_t *b, int cutoff_hours,
                        struct lc_slot **slots, size_t *n, struct gw_err *err)
{
	time_t first = clock_now() + (time_t)(cutoff_hours > 0 ? cutoff_hours : 0) * 3600;
	size_t i, k = 0;
	gw_rc rc = lc_booking_slots(st, b, slots, n, err);

	if(rc)
		return rc;
	for(i = 0; i < *n; i++)
		if((*slots)[i].start >= first)
			(*slots)[k++] = (*slots)[i];
	*n = k;
	return GW_OK;
}
