/*
 * tpl.h - email templates: render an effect's payload at enqueue time (what is sent is what
 * was recorded). User text is HTML-escaped in the HTML part; header fields are refused later by
 * the MIME builder if they hold CR/LF, and validated at intake so they never do.
 * Threading: reentrant.
 */
#ifndef TPL_H
#define TPL_H

#include <jansson.h>
#include <stdint.h>
#include <time.h>

#include "common/gw.h"

#define TPL_DEFAULT_FROM "noreply@ordinatus.localhost"

/* The addressing and identity every email shares. */
struct tpl_env {
	int64_t org_id;
	const char *org_name;
	const char *org_timezone;
	const char *from_address; /* NULL: TPL_DEFAULT_FROM */
	const char *from_name;    /* NULL: org_name */
	const char *install_id;   /* this installation's random id (Message-ID uniqueness) */
	const char *public_url;   /* no trailing slash */
	time_t now;
};

/* tpl_message_id - the fixed Message-ID of one delivery (RFC 5322 3.6.4), derived from
 * (installation, org, dedupe key): a retry, a crash and a re-lease all send the same one, and
 * two installations never make the same one. The right side is the sender's domain.
 * buf: at least 128 bytes. */
void tpl_message_id(const struct tpl_env *env, const char *dedupe_key, char *buf, size_t n);

/* tpl_new_request - "New request available" to one trainer. request: as store_request_get
 * shows it; trainer: {id, email, name, timezone}. *out new reference. */
gw_rc tpl_new_request(const struct tpl_env *env, const char *dedupe_key, const json_t *request,
                      const json_t *trainer, json_t **out);

/* tpl_request_received - "We have your request" to the customer on intake: a trainer will
 * contact them. request: as store_request_get shows it. *out new reference. */
gw_rc tpl_request_received(const struct tpl_env *env, const char *dedupe_key,
                           const json_t *request, json_t **out);

/* tpl_unmatched_request - "No trainer matches a new request" to one org admin: the customer,
 * the skills asked and the link {public_url}/requests/{id}. admin: {id, email, name}.
 * *out new reference. */
gw_rc tpl_unmatched_request(const struct tpl_env *env, const char *dedupe_key,
                            const json_t *request, const json_t *admin, json_t **out);

/* tpl_calendar_reconnect - "Reconnect your calendar" to the trainer ({id, email, name}) whose
 * calendar grant was revoked: the link {public_url}/dashboard, what waits meanwhile, and the
 * provider's reason (bounded; may be NULL). provider: "google" or "outlook". *out new
 * reference. */
gw_rc tpl_calendar_reconnect(const struct tpl_env *env, const char *dedupe_key,
                             const json_t *trainer, const char *provider, const char *reason,
                             json_t **out);

/* tpl_email - the generic builder the specific templates use: payload with kind, message id,
 * date, from, to, subject, text, html. An html that tpl_layout did not make (a body written by
 * hand, a fragment) is laid out by it here: its body becomes the layout's body, the subject its
 * heading, the text part's first paragraph after the greeting its preheader, and its first
 * http(s) link the button (taking the place of that link's paragraph when the link stands alone
 * in one). So every kind looks the same. *out new reference. */
gw_rc tpl_email(const struct tpl_env *env, const char *kind, const char *dedupe_key,
                const char *to_address, const char *to_name, const char *subject,
                const char *text, const char *html, json_t **out);

/* A growable text buffer: tpl_buf_add appends, tpl_buf_html appends HTML-escaped text. */
struct tpl_buf {
	char *p;    /* malloc'd, NUL-terminated */
	size_t len;
	size_t cap;
	int oom;    /* set when an append failed */
};
void tpl_buf_add(struct tpl_buf *b, const char *s);
void tpl_buf_addf(struct tpl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tpl_buf_html(struct tpl_buf *b, const char *s);
void tpl_buf_free(struct tpl_buf *b);
/* tpl_html_open - the <html><head><title> opening of an HTML body written by hand; tpl_email
 * lays such a body out like every other email (tpl_layout). */
void tpl_html_open(struct tpl_buf *h, const char *title);

/* The one layout of every HTML part: the organisation's name at the top, a heading, the body,
 * the one action as a bulletproof button (a table cell with its own background colour around a
 * padded link, which Outlook's Word engine draws too), what comes after it, and the
 * organisation's name at the foot. Table layout, inline CSS, at most 600px wide; the only
 * <style> is the dark-mode block (prefers-color-scheme, and Outlook.com's data-ogsc/ogsb
 * attributes), with the color-scheme meta tags. Every element that sets a text colour sets its
 * background colour too, so a client that recolours one for dark mode never leaves dark text on a
 * dark background. Nothing is loaded from outside: no images, fonts or stylesheets. All fields
 * borrowed; body and after are HTML already escaped, the others plain text. */
struct tpl_layout {
	const char *title;        /* heading and <title> */
	const char *preheader;    /* the inbox preview line, hidden in the body; NULL: none */
	const char *body;         /* HTML above the button */
	const char *action_url;   /* the button's link; NULL or not http(s): no button */
	const char *action_label; /* the button's words */
	const char *after;        /* HTML below the button; NULL: none */
};
/* tpl_layout - append the whole HTML document of l to out (out->oom on failure) */
void tpl_layout(const struct tpl_env *env, const struct tpl_layout *l, struct tpl_buf *out);

/* Pieces of a body, styled for tpl_layout (text escaped here). tpl_html_p - one paragraph;
 * tpl_html_muted - one paragraph in the secondary colour; tpl_html_link - a link in the body's
 * link colour (escaped text instead when url is not http(s)); tpl_html_link_p - a paragraph of
 * intro, then that link on a line of its own; tpl_facts_open/close - the short
 * table of facts; tpl_fact - one row of it; tpl_fact_link - one row whose value is a link. */
void tpl_html_p(struct tpl_buf *h, const char *text);
void tpl_html_muted(struct tpl_buf *h, const char *text);
void tpl_html_link(struct tpl_buf *h, const char *url, const char *label);
void tpl_html_link_p(struct tpl_buf *h, const char *intro, const char *url, const char *label);
void tpl_facts_open(struct tpl_buf *h);
void tpl_fact(struct tpl_buf *h, const char *label, const char *value);
void tpl_fact_link(struct tpl_buf *h, const char *label, const char *url, const char *text);
void tpl_facts_close(struct tpl_buf *h);

/* tpl_is_web_url - an http(s) URL without white space, quotes or angle brackets: only these
 * become links (no javascript: or data: links in a mail client) */
int tpl_is_web_url(const char *s);


/* tpl_scheduling_link - the scheduling link email to the customer. request: as
 * store_request_get shows it (customer, session_type, trainer); link_url: {public_url}/s/{token};
 * expires_at: when the link stops working (shown in the organisation's zone). */
gw_rc tpl_scheduling_link(const struct tpl_env *env, const char *dedupe_key,
                          const json_t *request, const char *link_url, time_t expires_at,
                          json_t **out);

/* tpl_booking - every booking email. kind is one of "confirmation", "trainer_confirmation",
 * "reminder", "close_reminder", "survey", "no_show", "cancellation", "session_link". ctx
 * (borrowed); a booking's session_join_url, when set, is the link customer emails show:
 *   { "booking":  {id, start, end (RFC 3339), length_minutes, sequence, session_link|null},
 *     "customer": {name, email},
 *     "trainer":  {id, name, email, timezone},
 *     "session_type": {name, price_cents, currency} | null,
 *     "survey_url": "...",          (survey)
 *     "no_show_policy": "no_refund" | "contact_support",   (no_show)
 *     "reason": "...",              (cancellation, optional)
 *     "hours_before": 24,           (reminder)
 *     "join_url": "...",            (session_link: the customer's Zoho Assist join URL)
 *     "complete_url": "...",        (close_reminder: where the trainer closes the booking)
 *     "manage_url": "...",          (confirmation, reminder, optional: the customer's own
 *                                   {public_url}/b/{token} page)
 *     "change_until": RFC 3339,     (with manage_url, optional: the customer's last moment to
 *                                   cancel or move the booking there)
 *     "ics": "BEGIN:VCALENDAR...", "ics_method": "REQUEST" | "CANCEL"  (confirmation,
 *                                   cancellation, trainer_confirmation: attached as is) }
 * Customer emails show times in the organisation's zone (env->org_timezone), trainer emails in
 * the trainer's. Recipients: customer for confirmation, reminder, survey, no_show,
 * cancellation; trainer for trainer_confirmation and close_reminder. *out new reference. */
gw_rc tpl_booking(const struct tpl_env *env, const char *kind, const char *dedupe_key,
                  const json_t *ctx, json_t **out);

/* tpl_redact - an email payload (JSON text) with the secret tokens of its links replaced by
 * "redacted": the scheduling link /s/, the manage link /b/, the survey link /survey/ and the
 * sign-in link /login/, in every string of the payload (text, html, ics). The rest is kept
 * (who, what, when), so the outbox still says what was sent. Pure; malloc'd (caller frees),
 * NULL when out of memory; a payload that is not JSON comes back as {"redacted": true}. */
char *tpl_redact(const char *payload);

/* tpl_redact_text - the same without parsing the JSON (what a dispatch worker stores with a row
 * it records sent): for JSON text as the gateway writes it (jansson), the same strings as
 * tpl_redact; a payload that is not JSON has its tokens replaced as text. Malloc'd, NULL when
 * out of memory. */
char *tpl_redact_text(const char *payload);

#endif
