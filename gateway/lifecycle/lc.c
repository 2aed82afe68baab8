/*
 * lc.c - request intake (the trainers' new_request emails, the customer's request_received and,
 * when no trainer matches, the admins' unmatched_request), the claim, the session-type change
 * and the cancel.
 *
 * Entry points: lc_request_guard(), lc_intake(), lc_claim(), lc_request_patch(),
 * lc_request_cancel(), lc_request_actions(), lc_tpl_env(), lc_enqueue(), lc_enqueue_email().
 * Threading: caller's connection.
 */
#include "lc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "gateway/delivery/dispatch.h"
#include "common/jsonv.h"
#include "gateway/templates/tpl.h"
#include "smtp/smtp.h"

/* lc_request_guard - the request guard table */
gw_rc lc_request_guard(enum lc_action action, const char *status, const struct lc_actor *actor,
                       int64_t claimer)
{
	switch(action) {
	case LC_CLAIM:
		/* Only the trainer role claims: an org admin without it gets 403. */
		if(!(actor->roles & ROLE_TRAINER))
			return GW_EFORBIDDEN;
		if(strcmp(status, "new") != 0)
			return GW_ECLAIMED;
		return GW_OK;
	case LC_CHANGE_SESSION_TYPE:
		if(!(actor->roles & ROLE_TRAINER) || claimer != actor->user_id)
			return GW_EFORBIDDEN;
		if(strcmp(status, "claimed") != 0)
			return GW_ESTATE;
		return GW_OK;
	case LC_CANCEL_REQUEST:
		/* an org admin, or the trainer holding the claim (not another trainer) */
		if(!(actor->roles & (ROLE_ORG_ADMIN | ROLE_PLATFORM_ADMIN)) &&
		   (!(actor->roles & ROLE_TRAINER) || !claimer || claimer != actor->user_id))
			return GW_EFORBIDDEN;
		if(strcmp(status, "new") != 0 && strcmp(status, "claimed") != 0 &&
		   strcmp(status, "scheduling") != 0)
			return GW_ESTATE;
		return GW_OK;
	case LC_ACTION_COUNT:
		break;
	}
	return GW_ESTATE;
}

/* lc_request_actions - the request guard table (and lc_link_send's rule) applied to req */
json_t *lc_request_actions(const json_t *req, const struct lc_actor *actor)
{
	const char *status = json_string_value(json_object_get(req, "status"));
	int64_t claimer = json_integer_value(json_object_get(req, "trainer_id"));
	json_t *list = json_array();
	int bad = 0;

	if(!list || !status)
		return list;
	if(lc_request_guard(LC_CLAIM, status, actor, claimer) == GW_OK)
		bad |= json_array_append_new(list, json_string("claim"));
	if(lc_request_guard(LC_CHANGE_SESSION_TYPE, status, actor, claimer) == GW_OK)
		bad |= json_array_append_new(list, json_string("session-type"));
	/* lc_link_send: the claiming trainer, while claimed or scheduling */
	if((actor->roles & ROLE_TRAINER) && claimer && claimer == actor->user_id &&
	   (strcmp(status, "claimed") == 0 || strcmp(status, "scheduling") == 0))
		bad |= json_array_append_new(list, json_string("scheduling-link"));
	if(lc_request_guard(LC_CANCEL_REQUEST, status, actor, claimer) == GW_OK)
		bad |= json_array_append_new(list, json_string("cancel"));
	if(bad) {
		json_decref(list);
		return NULL;
	}
	return list;
}

/* lc_tpl_env - the template environment of org: its name and zone, the public URL, the
 * clock, and this installation's id (made once, kept in the store's meta table) so that
 * Message-IDs differ between installations. *hold keeps the strings alive: caller decrefs. */
gw_rc lc_tpl_env(struct store *st, const struct lc_env *env, int64_t org, json_t **hold,
                 struct tpl_env *t)
{
	json_t *orgj = NULL, *install = NULL, *smtp = NULL;
	char fresh[CRYPTO_TOKEN_LEN];
	gw_rc rc;

	*hold = NULL;
	memset(t, 0, sizeof(*t));
	if((rc = store_org_get(st, org, &orgj)))
		return rc;
	rc = store_meta_get(st, "install_id", &install);
	if(rc == GW_ENOTFOUND) {
		/* a database made before install ids: make one now (inside the caller's write) */
		if((rc = crypto_token("", fresh, sizeof(fresh))) ||
		   (rc = store_meta_put(st, "install_id", fresh)))
			goto fail;
		install = json_string(fresh);
	}
	if(rc || !install)
		goto fail;
	json_object_set_new(orgj, "_install_id", install);
	/* the sender the organisation's SMTP settings name, chosen now: the message is rendered
	 * at enqueue and sent as it was recorded */
	rc = store_provider_get(st, org, "smtp", &smtp);
	if(rc == GW_OK) {
		json_object_set_new(orgj, "_smtp", smtp);
		t->from_address = provider_cfg_str(smtp, "from_address");
		t->from_name = provider_cfg_str(smtp, "from_name");
	} else if(rc != GW_ENOTFOUND) {
		goto fail;
	}
	rc = GW_OK;
	t->org_id = org;
	t->org_name = json_string_value(json_object_get(orgj, "name"));
	t->org_timezone = json_string_value(json_object_get(orgj, "timezone"));
	t->install_id = json_string_value(install);
	t->public_url = env->public_url;
	t->now = clock_now();
	*hold = orgj;
	return GW_OK;
fail:
	json_decref(orgj);
	return rc ? rc : GW_ENOMEM;
}

/* lc_email_message - the message of an email payload as it will be sent (smtp_mime_build: the
 * From is the payload's, which lc_tpl_env chose) and its recipient, into e; a payload the
 * builder refuses gets none (the sender then dead-letters the row with the reason).
 * *msg: malloc'd or NULL, caller frees. */
static gw_rc lc_email_message(json_t *payload, const char *kind, struct store_effect *e, char **msg)
{
	struct gw_err err = {{0}, {0}, {0}};
	gw_rc rc;

	*msg = NULL;
	e->message = e->rcpt = NULL;
	if(!json_is_object(payload))
		return GW_OK;
	if(!json_object_get(payload, "kind") && kind &&
	   json_object_set_new(payload, "kind", json_string(kind)))
		return GW_ENOMEM;
	rc = smtp_mime_build(payload, NULL, NULL, msg, NULL, &err);
	if(rc == GW_ENOMEM)
		return rc;
	if(rc)
		return GW_OK;
	e->message = *msg;
	e->rcpt = json_string_value(json_object_get(json_object_get(payload, "to"), "address"));
	return GW_OK;
}

/* lc_enqueue - one outbox row of any class (an email's message rendered now) */
gw_rc lc_enqueue(struct store *st, int64_t org, const char *kind, const char *pclass,
                 const char *dedupe_key, int64_t request, int64_t booking, json_t *payload,
                 time_t not_before, time_t deadline, bool *inserted, struct gw_err *err)
{
	struct store_effect e = {0};
	char *text = NULL, *msg = NULL;
	bool ins = false;
	gw_rc rc;

	if(payload && strcmp(pclass, "email") == 0 && lc_email_message(payload, kind, &e, &msg)) {
		json_decref(payload);
		return GW_ENOMEM;
	}
	/* the record of a rendered email: every field but the HTML alternative (the message has
	 * it until it is sent; the text says the same), so the row the outbox rewrites at every
	 * change of state stays small */
	if(msg)
		json_object_del(payload, "html");
	text = payload ? json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if(!text) {
		free(msg);
		json_decref(payload);
		return GW_ENOMEM;
	}
	e.org_id = org;
	e.kind = kind;
	e.provider_class = pclass;
	e.dedupe_key = dedupe_key;
	e.request_id = request;
	e.booking_id = booking;
	e.payload = text;
	e.not_before = not_before;
	e.deadline = deadline;
	rc = store_outbox_enqueue(st, &e, clock_now(), &ins, NULL);
	if(rc)
		gw_err_cause(err, "enqueue %s: %s", dedupe_key, store_errmsg(st));
	if(inserted)
		*inserted = ins;
	free(text);
	free(msg);
	json_decref(payload); /* after the message: e.rcpt is borrowed from it */
	return rc;
}

/* lc_enqueue_email - one email row */
gw_rc lc_enqueue_email(struct store *st, int64_t org, const char *kind, const char *dedupe_key,
                       int64_t request, int64_t booking, json_t *payload, time_t not_before,
                       time_t deadline, bool *inserted, struct gw_err *err)
{
	return lc_enqueue(st, org, kind, "email", dedupe_key, request, booking, payload, not_before,
	                  deadline, inserted, err);
}

static const char *const intake_keys[] = {"customer", "session_type_id", "skills", "answers",
                                          NULL};
static const char *const customer_keys[] = {"name", "email", "phone", NULL};

/* check_answers - answers: an object of up to 50 short scalar answers */
static gw_rc check_answers(json_t *answers, struct gw_err *err)
{
	const char *key;
	json_t *v;

	if(json_object_size(answers) > 50)
		return gw_err_set(err, GW_EINVAL, "answers", "answers takes at most 50 entries");
	json_object_foreach(answers, key, v) {
		if(strlen(key) < 1 || strlen(key) > 100 || !jv_check_text(key, 0))
			return gw_err_set(err, GW_EINVAL, "answers", "answer names are 1 to 100 characters");
		if(json_is_string(v)) {
			if(json_string_length(v) > 4000 || !jv_check_text(json_string_value(v), JV_MULTILINE))
				return gw_err_set(err, GW_EINVAL, "answers",
				                  "answer %s must be text of at most 4000 bytes", key);
		} else if(!json_is_number(v) && !json_is_boolean(v) && !json_is_null(v)) {
			return gw_err_set(err, GW_EINVAL, "answers",
			                  "answer %s must be a string, number or boolean", key);
		}
	}
	return GW_OK;
}

/* intake_notices - inside the intake's transaction: the customer's request_received email, and
 * when no trainer matched (matched trainers: 0) one unmatched_request email to each active org
 * admin, who alone can find someone for it */
static gw_rc intake_notices(struct store *st, const struct tpl_env *tenv, int64_t org,
                            int64_t id, const json_t *request, size_t matched,
                            struct gw_err *err)
{
	json_t *admins = NULL, *admin, *payload = NULL;
	char key[96];
	size_t i;
	gw_rc rc;

	snprintf(key, sizeof(key), "request_received:%lld", (long long)id);
	if((rc = tpl_request_received(tenv, key, request, &payload)) ||
	   (rc = lc_enqueue_email(st, org, "request_received", key, id, 0, payload, 0, 0, NULL,
	                          err)))
		return rc;
	if(matched)
		return GW_OK;
	if((rc = store_org_admins(st, org, &admins)))
		return rc;
	json_array_foreach(admins, i, admin) {
		snprintf(key, sizeof(key), "unmatched_request:%lld:%lld", (long long)id,
		         (long long)json_integer_value(json_object_get(admin, "id")));
		if((rc = tpl_unmatched_request(tenv, key, request, admin, &payload)) ||
		   (rc = lc_enqueue_email(st, org, "unmatched_request", key, id, 0, payload, 0, 0,
		                          NULL, err)))
			break;
	}
	json_decref(admins);
	return rc;
}

/* The fan-out's placeholders: a random token per intake (no customer can write it into the
 * body they influence) and one letter each for the trainer's name as text, as HTML, the
 * address and the Message-ID. */
enum { PH_NAME, PH_HTML, PH_ADDR, PH_MID, PH_COUNT };
#define PH_LEN (2 + 43 + 1 + 1)

/* replace_all - s with every from replaced by to (new string, caller frees), NULL: no memory */
static char *replace_all(const char *s, const char *from, const char *to)
{
	struct tpl_buf b = {0};
	size_t flen = strlen(from);
	const char *hit;
	char *piece;

	tpl_buf_add(&b, "");
	while((hit = strstr(s, from)) != NULL) {
		piece = strndup(s, (size_t)(hit - s));
		if(!piece) {
			tpl_buf_free(&b);
			return NULL;
		}
		tpl_buf_add(&b, piece);
		free(piece);
		tpl_buf_add(&b, to);
		s = hit + flen;
	}
	tpl_buf_add(&b, s);
	if(b.oom) {
		tpl_buf_free(&b);
		return NULL;
	}
	return b.p;
}

/* json_text - append s JSON-escaped (RFC 8259 7: quote, backslash and controls; UTF-8 kept)
 * as a quoted string */
static void json_text(struct tpl_buf *b, const char *s)
{
	char one[8];
	const char *run = s;

	tpl_buf_add(b, "\"");
	for(; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if(c >= 0x20 && c != '"' && c != '\\')
			continue;
		if(s > run) {
			char *piece = strndup(run, (size_t)(s - run));
			if(!piece) {
				b->oom = 1;
				return;
			}
			tpl_buf_add(b, piece);
			free(piece);
		}
		if(c == '"' || c == '\\')
			snprintf(one, sizeof(one), "\\%c", c);
		else
			snprintf(one, sizeof(one), "\\u%04x", c);
		tpl_buf_add(b, one);
		run = s + 1;
	}
	if(s && s > run)
		tpl_buf_add(b, run);
	tpl_buf_add(b, "\"");
}

/* The intake enqueues the rows of the first FANOUT_CHUNK matching trainers itself, FANOUT_SLICE
 * at a time (a slice is one store call, store_outbox_enqueue_set: one round trip on
 * PostgreSQL), and stops early once FANOUT_BUDGET_MS have gone (a database a round trip away),
 * never before its first slice; the rest of a larger fan-out is recorded (store_fanout_put:
 * where it stopped, the last trainer it matched, its token and body) and enqueued by
 * lc_fanout_step in chunks of FANOUT_CHUNK (also ended after FANOUT_BUDGET_MS), each its own
 * transaction (lc_fanout.c runs it in the background). An intake matching 10,000 trainers is
 * answered once its first rows and the record of the rest are committed; the write lock is
 * then held for one chunk at a time instead of the whole fan-out. */
#define FANOUT_CHUNK 1000
#define FANOUT_SLICE 100
#define FANOUT_BUDGET_MS 40

struct fanout {
	struct store *st;
	const struct tpl_env *tenv;
	int64_t org, id;
	const json_t *request;
	struct gw_err *err;
	char tok[CRYPTO_TOKEN_LEN]; /* the placeholders' token: one per intake */
	char ph[PH_COUNT][PH_LEN];
	struct store_effect e; /* the rows' common part; body_id 0 until the first trainer */
	bool templated;        /* the body has a message (smtp_mime_template): rows get fills */
	struct tpl_buf html, fills;
	char key[96], mid[128];
	time_t now;
	/* rows made, not yet enqueued (fanout_flush: a slice in one store call) */
	struct fanout_row {
		struct store_effect e; /* f->e with the strings below */
		char key[96];
		char *payload, *message, *rcpt; /* from malloc() */
	} rows[FANOUT_SLICE];
	int nrows;
};

/* fanout_template - the message of the body (placeholders in payload) with marks where each
 * trainer's name and fields go (smtp_mime_template); *msg NULL when a placeholder would be
 * left where no mark can take it: the rows are then built whole when sent */
static gw_rc fanout_template(struct fanout *f, const json_t *payload, char **msg)
{
	struct gw_err err = {{0}, {0}, {0}};
	char mid[PH_LEN + 32];
	json_t *copy = json_deep_copy(payload);
	size_t len = 0;
	gw_rc rc;
	int k;

	*msg = NULL;
	if(!copy)
		return GW_ENOMEM;
	/* a stand-in recipient the builder accepts; the template has marks in their place */
	snprintf(mid, sizeof(mid), "<%s@template.invalid>", f->ph[PH_MID]);
	if(json_object_set_new(copy, "message_id", json_string(mid)) ||
	   json_object_set_new(copy, "to", json_pack("{s:s, s:s}", "address",
	                                             "recipient@template.invalid", "name", "")) ||
	   (!json_object_get(copy, "kind") &&
	    json_object_set_new(copy, "kind", json_string("new_request")))) {
		json_decref(copy);
		return GW_ENOMEM;
	}
	rc = smtp_mime_template(copy, NULL, NULL, f->ph[PH_NAME], f->ph[PH_HTML], msg, &len, &err);
	json_decref(copy);
	if(rc == GW_ENOMEM)
		return rc;
	for(k = 0; !rc && k < PH_COUNT; k++)
		if(memmem(*msg, len, f->ph[k], strlen(f->ph[k])))
			rc = GW_EINVAL;
	if(rc) {
		free(*msg);
		*msg = NULL;
	}
	return GW_OK;
}

/* fanout_placeholders - f->ph from f->tok */
static void fanout_placeholders(struct fanout *f)
{
	static const char letters[PH_COUNT] = {'n', 'h', 'a', 'm'};
	int k;

	for(k = 0; k < PH_COUNT; k++)
		snprintf(f->ph[k], sizeof(f->ph[k]), "zz%.43s%c", f->tok, letters[k]);
}

/* fanout_body - render the email once, for a trainer made of placeholders, and store it */
static gw_rc fanout_body(struct fanout *f)
{
	json_t *fake = NULL, *payload = NULL;
	char *body = NULL, *h = NULL, *msg = NULL;
	gw_rc rc;

	fake = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)0, "email", f->ph[PH_ADDR],
	                 "name", f->ph[PH_NAME], "timezone", "UTC");
	if(!fake) {
		rc = GW_ENOMEM;
		goto out;
	}
	snprintf(f->key, sizeof(f->key), "new_request:%lld:0", (long long)f->id);
	if((rc = tpl_new_request(f->tenv, f->key, f->request, fake, &payload)))
		goto out;
	/* the HTML body has the name HTML-escaped: a placeholder of its own */
	h = replace_all(json_string_value(json_object_get(payload, "html")), f->ph[PH_NAME],
	                f->ph[PH_HTML]);
	if(!h || json_object_set_new(payload, "html", json_string(h)) ||
	   json_object_set_new(payload, "message_id", json_string(f->ph[PH_MID]))) {
		rc = GW_ENOMEM;
		goto out;
	}
	body = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
	if(!body) {
		rc = GW_ENOMEM;
		goto out;
	}
	if((rc = fanout_template(f, payload, &msg)))
		goto out;
	f->templated = msg != NULL;
	if((rc = store_outbox_body(f->st, f->org, body, msg, f->now, &f->e.body_id)))
		gw_err_cause(f->err, "fan-out body: %s", store_errmsg(f->st));
out:
	free(msg);
	free(h);
	free(body);
	json_decref(payload);
	json_decref(fake);
	return rc;
}

/* fanout_drop - forget the rows not yet enqueued */
static void fanout_drop(struct fanout *f)
{
	int i;

	for(i = 0; i < f->nrows; i++) {
		free(f->rows[i].payload);
		free(f->rows[i].message);
		free(f->rows[i].rcpt);
	}
	f->nrows = 0;
}

/* fanout_flush - enqueue the rows made so far, in one store call */
static gw_rc fanout_flush(struct fanout *f)
{
	struct store_effect e[FANOUT_SLICE];
	gw_rc rc;
	int i;

	if(f->nrows == 0)
		return GW_OK;
	for(i = 0; i < f->nrows; i++)
		e[i] = f->rows[i].e;
	rc = store_outbox_enqueue_set(f->st, e, f->nrows, f->now, NULL);
	if(rc)
		gw_err_cause(f->err, "enqueue %s and %d more: %s", f->rows[0].key, f->nrows - 1,
		             store_errmsg(f->st));
	fanout_drop(f);
	return rc;
}

/* fanout_push - one trainer's row to the rows not yet enqueued (payload and rcpt copied,
 * message taken over); a full slice goes at once */
static gw_rc fanout_push(struct fanout *f, const char *payload, char *message, const char *rcpt)
{
	struct fanout_row *r;

	if(f->nrows == FANOUT_SLICE) {
		gw_rc rc = fanout_flush(f);

		if(rc) {
			free(message);
			return rc;
		}
	}
	r = &f->rows[f->nrows];
	snprintf(r->key, sizeof(r->key), "%s", f->key);
	r->payload = strdup(payload);
	r->message = message;
	r->rcpt = message && rcpt ? strdup(rcpt) : NULL;
	f->nrows++;
	if(!r->payload || (message && rcpt && !r->rcpt))
		return GW_ENOMEM;
	r->e = f->e;
	r->e.dedupe_key = r->key;
	r->e.payload = r->payload;
	r->e.message = r->message;
	r->e.rcpt = r->rcpt;
	return GW_OK;
}

/* fanout_whole - one trainer's row rendered whole, without the shared body: a trainer without
 * a name, whom the layout greets with "Hello," where a placeholder would leave "Hello ," */
static gw_rc fanout_whole(struct fanout *f, int64_t trainer, const char *email)
{
	json_t *t = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)trainer, "email",
	                      email ? email : "", "name", "", "timezone", "UTC");
	json_t *payload = NULL;
	int64_t body_id = f->e.body_id;
	char *text = NULL, *msg = NULL;
	bool ins;
	gw_rc rc;

	if(!t)
		return GW_ENOMEM;
	rc = tpl_new_request(f->tenv, f->key, f->request, t, &payload);
	if(rc)
		goto out;
	text = json_dumps(payload, JSON_COMPACT);
	if(!text) {
		rc = GW_ENOMEM;
		goto out;
	}
	if((rc = fanout_flush(f))) /* the rows before it go first */
		goto out;
	if((rc = lc_email_message(payload, "new_request", &f->e, &msg)))
		goto out;
	f->e.dedupe_key = f->key;
	f->e.payload = text;
	f->e.body_id = 0;
	rc = store_outbox_enqueue(f->st, &f->e, f->now, &ins, NULL);
	f->e.body_id = body_id;
	f->e.message = f->e.rcpt = NULL;
	if(rc)
		gw_err_cause(f->err, "enqueue %s: %s", f->key, store_errmsg(f->st));
out:
	free(msg);
	free(text);
	json_decref(payload);
	json_decref(t);
	return rc;
}

/* fanout_trainer - store_trainers_each callback: one trainer's row (the body first, once) */
static gw_rc fanout_trainer(void *arg, int64_t trainer, const char *email, const char *name)
{
	struct fanout *f = arg;
	const char *vals[PH_COUNT];
	char *mfills = NULL;
	gw_rc rc;
	int k;

	if(name && *name && !f->e.body_id && (rc = fanout_body(f)))
		return rc;
	snprintf(f->key, sizeof(f->key), "new_request:%lld:%lld", (long long)f->id,
	         (long long)trainer);
	if(!name || !*name)
		return fanout_whole(f, trainer, email);
	tpl_message_id(f->tenv, f->key, f->mid, sizeof(f->mid));
	f->html.len = 0;
	tpl_buf_add(&f->html, "");
	tpl_buf_html(&f->html, name);
	vals[PH_NAME] = name ? name : "";
	vals[PH_HTML] = f->html.p ? f->html.p : "";
	vals[PH_ADDR] = email ? email : "";
	vals[PH_MID] = f->mid;
	/* {"placeholder":"value",...}: written here, not through jansson (10,000 times) */
	f->fills.len = 0;
	for(k = 0; k < PH_COUNT; k++) {
		tpl_buf_add(&f->fills, k ? "," : "{");
		json_text(&f->fills, f->ph[k]);
		tpl_buf_add(&f->fills, ":");
		json_text(&f->fills, vals[k]);
	}
	tpl_buf_add(&f->fills, "}");
	if(f->fills.oom || f->html.oom)
		return GW_ENOMEM;
	/* the message's fills: the To and Message-ID fields and the name in either body; an
	 * address the builder refuses gets none (dead-lettered with the reason when sent) */
	if(f->templated) {
		struct gw_err merr = {{0}, {0}, {0}};

		rc = smtp_mime_fills(vals[PH_ADDR], name, f->mid, vals[PH_NAME], vals[PH_HTML],
		                     &mfills, &merr);
		if(rc == GW_ENOMEM)
			return rc;
	}
	return fanout_push(f, f->fills.p, mfills, vals[PH_ADDR]);
}

static size_t fanout_chunk(const struct lc_env *env)
{
	return env && env->fanout_chunk ? env->fanout_chunk : FANOUT_CHUNK;
}

/* fanout_init - the rows' common part */
static void fanout_init(struct fanout *f, struct store *st, const struct tpl_env *tenv,
                        int64_t org, int64_t id, const json_t *request, struct gw_err *err)
{
	memset(f, 0, sizeof(*f));
	f->st = st;
	f->tenv = tenv;
	f->org = org;
	f->id = id;
	f->request = request;
	f->err = err;
	f->now = clock_now();
	f->e.org_id = org;
	f->e.kind = "new_request";
	f->e.provider_class = "email";
	f->e.request_id = id;
}

/* fanout_slices - the rows of the matching trainers with ids in (after, upto] (upto 0: no
 * bound), FANOUT_SLICE at a time, until a chunk is done or FANOUT_BUDGET_MS have gone (after
 * the first slice): one transaction's share, so that a database a round trip away
 * (PostgreSQL) holds the write lock that long and no longer. *n: rows handed over; *last:
 * the last trainer's id; *full: stopped with trainers possibly left. */
static gw_rc fanout_slices(struct fanout *f, const struct lc_env *env, const json_t *skills,
                           int64_t after, int64_t upto, size_t *n, int64_t *last, bool *full)
{
	size_t chunk = fanout_chunk(env), slice = chunk < FANOUT_SLICE ? chunk : FANOUT_SLICE, k;
	int64_t t0 = clock_mono_ms();
	gw_rc rc;

	*n = 0;
	*last = after;
	*full = false;
	for(;;) {
		rc = store_trainers_each(f->st, f->org, skills, *last, upto, slice, fanout_trainer, f,
		                         &k, last);
		if(!rc)
			rc = fanout_flush(f);
		fanout_drop(f); /* what a failure left */
		*n += k;
		if(rc || k < slice || (upto > 0 && *last >= upto))
			return rc; /* every matching trainer of the range has its row */
		if(*n >= chunk || clock_mono_ms() - t0 >= FANOUT_BUDGET_MS) {
			*full = true;
			return GW_OK;
		}
	}
}

/* fanout - inside the intake's transaction: the new_request email of every trainer matching
 * skills (*matched: how many). The email is rendered once (tpl_new_request for a trainer made
 * of placeholders) and stored once (store_outbox_body) when the first trainer is read; each
 * trainer's row holds only its fills: the name (as text and HTML-escaped, as the template
 * writes it), the address and the Message-ID of its own dedupe key. A leased row is the body
 * with its fills in place, the same payload tpl_new_request makes for that trainer
 * (tests/unit/test_lc.c compares them). Per trainer: no JSON, two row inserts (row, dedupe key)
 * of about 300 bytes, where a render and a 1 KB row each took 3x as long (bench/fanout.sh).
 * Beyond the first chunk (fanout_slices) the rest is recorded (*deferred true). */
static gw_rc fanout(struct store *st, const struct lc_env *env, const struct tpl_env *tenv,
                    int64_t org, int64_t id, const json_t *request, const json_t *skills,
                    size_t *matched, bool *deferred, struct gw_err *err)
{
	struct store_fanout rest = {0};
	struct fanout f;
	size_t more = 0;
	int64_t last = 0, max_id = 0;
	bool full = false;
	gw_rc rc;

	*matched = 0;
	*deferred = false;
	fanout_init(&f, st, tenv, org, id, request, err);
	if((rc = crypto_token("", f.tok, sizeof(f.tok))))
		return rc;
	fanout_placeholders(&f);
	rc = fanout_slices(&f, env, skills, 0, 0, matched, &last, &full);
	if(!rc && full)
		rc = store_trainers_count(st, org, skills, last, &more, &max_id);
	if(!rc && more) {
		rest.request_id = id;
		rest.org_id = org;
		rest.body_id = f.e.body_id;
		snprintf(rest.token, sizeof(rest.token), "%s", f.tok);
		rest.templated = f.templated;
		rest.after_id = last;
		rest.last_id = max_id;
		rc = store_fanout_put(st, &rest, f.now);
		*matched += more;
		*deferred = !rc;
	}
	tpl_buf_free(&f.html);
	tpl_buf_free(&f.fills);
	return rc;
}

/* lc_fanout_step - the next chunk of the oldest recorded fan-out after a request id, in one
 * transaction */
gw_rc lc_fanout_step(struct store *st, const struct lc_env *env, int64_t after, int64_t *request_id,
                     bool *more, struct gw_err *err)
{
	struct store_fanout rest;
	struct tpl_env tenv = {0};
	json_t *request = NULL, *orgj = NULL;
	const char *status;
	struct fanout f;
	bool found = false, full = false;
	size_t n = 0;
	int64_t last = 0;
	gw_rc rc;

	*more = false;
	*request_id = 0;
	if((rc = store_begin(st)))
		return rc;
	if((rc = store_fanout_next(st, after, &rest, &found)) || !found)
		goto out;
	*more = true;
	*request_id = rest.request_id;
	rc = store_request_get(st, rest.org_id, rest.request_id, &request);
	if(rc == GW_ENOTFOUND)
		goto done;
	if(rc)
		goto out;
	/* claimed or cancelled meanwhile: its other trainers' emails are worthless now (the claim
	 * expired the rows already enqueued) */
	status = json_string_value(json_object_get(request, "status"));
	if(!status || strcmp(status, "new") != 0)
		goto done;
	if((rc = lc_tpl_env(st, env, rest.org_id, &orgj, &tenv)))
		goto out;
	fanout_init(&f, st, &tenv, rest.org_id, rest.request_id, request, err);
	snprintf(f.tok, sizeof(f.tok), "%.43s", rest.token);
	fanout_placeholders(&f);
	f.e.body_id = rest.body_id;
	f.templated = rest.templated;
	rc = fanout_slices(&f, env, json_object_get(request, "skills"), rest.after_id,
	                   rest.last_id, &n, &last, &full);
	tpl_buf_free(&f.html);
	tpl_buf_free(&f.fills);
	if(rc)
		goto out;
	if(full && last < rest.last_id) {
		rest.after_id = last;
		rest.body_id = f.e.body_id;
		rest.templated = f.templated;
		rc = store_fanout_put(st, &rest, f.now);
		goto out;
	}
done:
	rc = store_fanout_done(st, rest.request_id);
out:
	if(!rc)
		rc = store_commit(st);
	else
		store_rollback(st);
	if(!rc && n)
		dispatch_wake();
	json_decref(request);
	json_decref(orgj);
	return rc;
}

/* lc_intake - a public request and its new_request emails, in one transaction */
gw_rc lc_intake(struct store *st, const struct lc_env *env, int64_t org, json_t *body,
                json_t **out, struct gw_err *err)
{
	struct store_request_new rq = {0};
	json_t *cust, *skills = NULL, *answers, *stype = NULL, *request = NULL;
	json_t *orgj = NULL, *empty;
	long long stid = 0;
	bool here, began = false;
	struct tpl_env tenv = {0};
	size_t matched = 0;
	bool deferred = false;
	gw_rc rc = GW_OK;
	int64_t id = 0;

	*out = NULL;
	rc = jv_only(body, intake_keys, err);
	if(rc)
		goto out;
	cust = json_object_get(body, "customer");
	if(!json_is_object(cust)) {
		rc = gw_err_set(err, GW_EINVAL, "customer", "customer must be an object with name, "
		                                            "email and phone");
		goto out;
	}
	if((rc = jv_only(cust, customer_keys, err)) ||
	   (rc = jv_string(cust, "name", true, 1, 200, 0, &rq.customer_name, NULL, err)) ||
	   (rc = jv_email(cust, "email", true, &rq.customer_email, NULL, err)) ||
	   (rc = jv_string(cust, "phone", false, 0, 40, 0, &rq.customer_phone, NULL, err))) {
		if(rc == GW_EINVAL && err && strncmp(err->field, "customer.", 9) != 0) {
			char f[80];
			snprintf(f, sizeof(f), "customer.%s", err->field);
			snprintf(err->field, sizeof(err->field), "%.63s", f);
		}
		goto out;
	}
	if((rc = jv_int(body, "session_type_id", false, 1, INT64_MAX, &stid, &here, err)))
		goto out;
	if((rc = jv_skills(body, "skills", false, 20, &skills, &here, err)))
		goto out;
	answers = json_object_get(body, "answers");
	if(answers && !json_is_null(answers)) {
		if(!json_is_object(answers)) {
			rc = gw_err_set(err, GW_EINVAL, "answers", "answers must be an object");
			goto out;
		}
		if((rc = check_answers(answers, err)))
			goto out;
	} else {
		answers = NULL;
	}

	rc = store_begin(st);
	if(rc)
		goto out;
	began = true;
	rc = store_org_get(st, org, &orgj);
	if(rc)
		goto out;
	if(stid) {
		rc = store_session_type_get(st, org, stid, &stype);
		if(rc == GW_ENOTFOUND) {
			rc = gw_err_set(err, GW_EINVAL, "session_type_id", "no such session type");
			goto out;
		}
		if(rc)
			goto out;
	}
	/* A request's skills are its own, or else its session type's. */
	if(!skills || json_array_size(skills) == 0) {
		json_decref(skills);
		skills = stype ? json_incref(json_object_get(stype, "skills")) : json_array();
	}
	rq.session_type_id = stid;
	rq.skills = skills;
	empty = answers ? NULL : json_object();
	rq.answers = answers ? answers : empty;
	rc = store_request_create(st, org, &rq, clock_now(), &id);
	json_decref(empty);
	if(rc)
		goto out;
	rc = store_request_get(st, org, id, &request);
	if(rc)
		goto out;
	json_decref(orgj);
	orgj = NULL;
	if((rc = lc_tpl_env(st, env, org, &orgj, &tenv)))
		goto out;
	if((rc = fanout(st, env, &tenv, org, id, request, skills, &matched, &deferred, err)))
		goto out;
	if((rc = intake_notices(st, &tenv, org, id, request, matched, err)))
		goto out;
	rc = store_commit(st);
	began = false;
	if(rc)
		goto out;
	dispatch_wake();
	if(deferred)
		lc_fanout_wake();
	*out = json_pack("{s:I, s:s, s:I}", "id", (json_int_t)id, "status", "new",
	                 "matched_trainers", (json_int_t)matched);
	if(!*out)
		rc = GW_ENOMEM;
out:
	if(began)
		store_rollback(st);
	json_decref(skills);
	json_decref(stype);
	json_decref(request);
	json_decref(orgj);
	return rc;
}

/* lc_claim - one trainer wins */
gw_rc lc_claim(struct store *st, int64_t org, int64_t request, const struct lc_actor *actor,
               json_t **out, struct gw_err *err)
{
	json_t *req = NULL;
	bool match = false;
	gw_rc rc;

	*out = NULL;
	if(!(actor->roles & ROLE_TRAINER))
		return gw_err_set(err, GW_EFORBIDDEN, "", "only a trainer can claim a request");
	rc = store_begin(st);
	if(rc)
		return rc;
	rc = store_request_get(st, org, request, &req);
	if(rc)
		goto fail;
	rc = store_trainer_matches(st, org, request, actor->user_id, &match);
	if(rc)
		goto fail;
	if(!match) {
		rc = gw_err_set(err, GW_EFORBIDDEN, "", "your skills do not match this request");
		goto fail;
	}
	rc = lc_request_guard(LC_CLAIM, json_string_value(json_object_get(req, "status")), actor,
	                      0);
	if(!rc)
		rc = store_request_claim(st, org, request, actor->user_id, clock_now());
	if(rc == GW_ECLAIMED) {
		/* the contract's words for a lost claim; the holder's own repeat is still 409, but
		 * told the truth: the request is theirs (req was read in this write transaction) */
		if(json_integer_value(json_object_get(req, "trainer_id")) == actor->user_id)
			gw_err_set(err, rc, "", "You have already claimed this request; it is yours.");
		else
			gw_err_set(err, rc, "",
			           "This request has already been claimed by another trainer.");
		goto fail;
	}
	if(rc)
		goto fail;
	/* the other trainers' emails are worthless now: expire what has not gone yet */
	rc = store_outbox_expire_request(st, request, "new_request");
	if(rc)
		goto fail;
	rc = store_commit(st);
	if(rc)
		goto done;
	*out = json_pack("{s:s, s:I}", "status", "claimed", "trainer_id", (json_int_t)actor->user_id);
	if(!*out)
		rc = GW_ENOMEM;
	goto done;
fail:
	store_rollback(st);
done:
	json_decref(req);
	return rc;
}

/* lc_request_patch - change the session type while claimed */
gw_rc lc_request_patch(struct store *st, int64_t org, int64_t request,
                       const struct lc_actor *actor, json_t *body, json_t **out,
                       struct gw_err *err)
{
	static const char *const keys[] = {"session_type_id", NULL};
	json_t *req = NULL, *stype = NULL;
	long long stid = 0;
	gw_rc rc;

	*out = NULL;
	if((rc = jv_only(body, keys, err)) ||
	   (rc = jv_int(body, "session_type_id", true, 1, INT64_MAX, &stid, NULL, err)))
		return rc;
	rc = store_begin(st);
	if(rc)
		return rc;
	rc = store_request_get(st, org, request, &req);
	if(rc)
		goto fail;
	rc = lc_request_guard(LC_CHANGE_SESSION_TYPE,
	                      json_string_value(json_object_get(req, "status")), actor,
	                      json_integer_value(json_object_get(req, "trainer_id")));
	if(rc) {
		gw_err_set(err, rc, "",
		           rc == GW_EFORBIDDEN ? "only the claiming trainer can change the request"
		                               : "the session type can change only while claimed");
		goto fail;
	}
	rc = store_session_type_get(st, org, stid, &stype);
	if(rc == GW_ENOTFOUND) {
		rc = gw_err_set(err, GW_EINVAL, "session_type_id", "no such session type");
		goto fail;
	}
	if(rc)
		goto fail;
	rc = store_request_set_session_type(st, org, request, actor->user_id, stid, clock_now());
	if(rc)
		goto fail;
	json_decref(req);
	req = NULL;
	rc = store_request_get(st, org, request, &req);
	if(rc)
		goto fail;
	rc = store_commit(st);
	if(!rc) {
		*out = req;
		req = NULL;
	}
	goto done;
fail:
	store_rollback(st);
done:
	json_decref(req);
	json_decref(stype);
	return rc;
}

/* lc_request_cancel - an admin or the claimer cancels an open request */
gw_rc lc_request_cancel(struct store *st, int64_t org, int64_t request,
                        const struct lc_actor *actor, json_t *body, json_t **out,
                        struct gw_err *err)
{
	static const char *const keys[] = {"reason", NULL};
	static const char *const unsent[] = {"new_request", "scheduling_link"};
	json_t *req = NULL;
	const char *reason = NULL, *status;
	size_t i;
	gw_rc rc;

	*out = NULL;
	if(body && ((rc = jv_only(body, keys, err)) ||
	            (rc = jv_string(body, "reason", false, 0, 1000, JV_MULTILINE, &reason, NULL,
	                            err))))
		return rc;
	if(reason && !*reason)
		reason = NULL;
	if((rc = store_begin(st)))
		return rc;
	if((rc = store_request_get(st, org, request, &req)))
		goto fail;
	status = json_string_value(json_object_get(req, "status"));
	rc = lc_request_guard(LC_CANCEL_REQUEST, status, actor,
	                      json_integer_value(json_object_get(req, "trainer_id")));
	if(rc == GW_EFORBIDDEN) {
		gw_err_set(err, rc, "",
		           "only an org admin or the claiming trainer can cancel a request");
		goto fail;
	}
	if(rc) {
		gw_err_set(err, rc, "", "a %s request cannot be cancelled (only new, claimed or "
		                        "scheduling ones)", status);
		goto fail;
	}
	if((rc = store_request_cancel(st, org, request, reason, clock_now()))) {
		if(rc == GW_ESTATE)
			gw_err_set(err, rc, "", "the request changed meanwhile; reload it");
		goto fail;
	}
	/* emails not gone yet would offer a claim or a link that no longer work */
	for(i = 0; i < GW_ARRAY_LEN(unsent); i++)
		if((rc = store_outbox_expire_request(st, request, unsent[i])))
			goto fail;
	json_decref(req);
	req = NULL;
	if((rc = store_request_get(st, org, request, &req)))
		goto fail;
	if((rc = store_commit(st)))
		goto done;
	*out = req;
	req = NULL;
	goto done;
fail:
	store_rollback(st);
done:
	json_decref(req);
	return rc;
}
