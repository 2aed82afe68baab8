/*
 * tpl_booking.c - the customer's scheduling link email and every booking email (confirmation,
 * trainer confirmation, reminder, close reminder, survey, no-show notice, cancellation).
 *
 * Entry points: tpl_scheduling_link(), tpl_booking().
 *
 * Each kind is one row of a table: who receives it, which iTIP method its calendar part must
 * carry (RFC 5546 3.2: REQUEST adds or updates, CANCEL removes), and the function that writes
 * its subject, text part and HTML part. Text and HTML are written side by side through small
 * helpers that HTML-escape everything they put in the HTML part, so no user string (names,
 * reasons, session types, links) reaches it unescaped. Links stand as they are in the text part
 * and as <a href> in the HTML part, but only http(s) links become anchors: a session link typed
 * by hand ("call 555-0100", "javascript:...") is shown as escaped text instead. CR, LF and TAB
 * in user text are turned into spaces before it reaches the Subject or the To display name, so
 * a bad name never sends the delivery to the dead letters at the MIME builder.
 *
 * Times: customer emails in the organisation's zone, trainer emails in the trainer's (the
 * organisation's when the trainer has no valid zone: an email in the wrong zone, clearly
 * labelled, beats a confirmation that cannot be enqueued).
 *
 * Threading: reentrant (tz_* serialise on their own lock).
 */
#include "tpl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/rest.h"
#include "common/timefmt.h"
#include "common/tz.h"

#define WHEN_LEN 192  /* tz_format: "Wednesday 30 September 2026, 10:00 (" + zone (<= 64) + ")" */
#define RANGE_LEN 400 /* two of them and " to " */
#define PRICE_LEN 96

enum rcpt { TO_CUSTOMER, TO_TRAINER };

/* out - one email being written: subject, text part, preheader, and the HTML body in two
 * halves around the button (tpl_layout adds the rest at the end) */
struct out {
	struct tpl_buf s, t, h, a, pre;
	struct tpl_buf *cur;      /* where HTML goes now: &h, then &a once the button is placed */
	const char *action_url;   /* the button; borrowed from ctx or url_buf; NULL: none */
	char url_buf[1100];       /* a button's URL made here (the dashboard's): it outlives the
	                           * render function, as action_url is read by out_email */
	const char *action_label; /* a string literal */
	int oom;                  /* a formatting allocation failed */
};

/* bk - the ctx of a booking email, read once. Strings borrowed from ctx; never NULL except
 * where marked. */
struct bk {
	const char *cname, *cemail;
	const char *tname, *temail; /* temail: NULL when not given */
	const char *stname;         /* NULL: no session type */
	const char *session_link;   /* NULL: none */
	const char *zone;           /* the zone the recipient reads times in */
	long long length;           /* minutes */
	time_t start, end;
	int ics;                    /* a calendar part is attached */
	char when[WHEN_LEN];        /* start, in zone */
	char was[WHEN_LEN];         /* a moved booking's old start (ctx moved_from), in zone; "" */
	char range[RANGE_LEN];      /* start to end, in zone */
	char price[PRICE_LEN];      /* "" when there is no session type or no price */
};

/* kind_def - one booking email kind */
struct kind_def {
	const char *kind;
	enum rcpt to;
	const char *method; /* iTIP method of an attached calendar part; NULL: never attached */
	gw_rc (*render)(const struct tpl_env *env, const json_t *ctx, const struct bk *b,
	                struct out *o);
};

/* ---- small helpers ----------------------------------------------------------------------- */

/* str_at - obj[key] when it is a non-empty string, else NULL (obj may be NULL) */
static const char *str_at(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s && *s ? s : NULL;
}

/* one_line - CR, LF and TAB become spaces (text bound for a header field) */
static void one_line(char *s)
{
	for(; s && *s; s++)
		if(*s == '\r' || *s == '\n' || *s == '\t')
			*s = ' ';
}

/* vfmt - printf into a new string; NULL when out of memory. Caller frees. */
static char *vfmt(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static char *vfmt(const char *fmt, va_list ap)
{
	va_list cp;
	char *s;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if(n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if(s)
		vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

/* fmt_price - "50.00 EUR" from cents and a currency code */
static void fmt_price(long long cents, const char *currency, char *buf, size_t n)
{
	unsigned long long a = cents < 0 ? 0ULL - (unsigned long long)cents : (unsigned long long)cents;

	snprintf(buf, n, "%s%llu.%02llu%s%.16s", cents < 0 ? "-" : "", a / 100, a % 100,
	         currency ? " " : "", currency ? currency : "");
}

/* fmt_range - "Tuesday 1 December 2026, 10:00 to 11:00 (Europe/Berlin)"; both ends in full
 * when they fall on different local days */
static gw_rc fmt_range(const char *zone, time_t start, time_t end, char *buf, size_t n)
{
	char a[WHEN_LEN], b[WHEN_LEN], suffix[WHEN_LEN];
	struct tm ls, le;
	size_t alen, slen;
	gw_rc rc = GW_OK;

	if((rc = tz_format(zone, start, a, sizeof(a))) || (rc = tz_format(zone, end, b, sizeof(b))) ||
	   (rc = tz_utc_to_local(zone, start, &ls)) || (rc = tz_utc_to_local(zone, end, &le)))
		goto out;
	snprintf(suffix, sizeof(suffix), " (%s)", zone);
	alen = strlen(a);
	slen = strlen(suffix);
	if(ls.tm_year == le.tm_year && ls.tm_yday == le.tm_yday && alen > slen &&
	   strcmp(a + alen - slen, suffix) == 0)
		snprintf(buf, n, "%.*s to %02d:%02d%s", (int)(alen - slen), a, le.tm_hour, le.tm_min,
		         suffix);
	else
		snprintf(buf, n, "%s to %s", a, b);
out:
	return rc;
}

/* ---- writing text and HTML side by side -------------------------------------------------- */

/* add_v - append the formatted text to b (o->oom on failure) */
static void add_v(struct out *o, struct tpl_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void add_v(struct out *o, struct tpl_buf *b, const char *fmt, va_list ap)
{
	char *s = vfmt(fmt, ap);

	if(!s) {
		o->oom = 1;
		return;
	}
	tpl_buf_add(b, s);
	free(s);
}

/* subject - append to the subject */
static void subject(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void subject(struct out *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_v(o, &o->s, fmt, ap);
	va_end(ap);
}

/* html - where the HTML goes now */
static struct tpl_buf *html(struct out *o)
{
	return o->cur ? o->cur : &o->h;
}

/* preheader - the inbox preview line */
static void preheader(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void preheader(struct out *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_v(o, &o->pre, fmt, ap);
	va_end(ap);
}

/* para - one paragraph: as is in the text, escaped in a <p> in the HTML */
static void para(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void para(struct out *o, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = vfmt(fmt, ap);
	va_end(ap);
	if(!s) {
		o->oom = 1;
		return;
	}
	tpl_buf_add(&o->t, s);
	tpl_buf_add(&o->t, "\n\n");
	tpl_html_p(html(o), s);
	free(s);
}

/* note - a paragraph in the secondary colour (HTML); a paragraph of the text part */
static void note(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct out *o, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = vfmt(fmt, ap);
	va_end(ap);
	if(!s) {
		o->oom = 1;
		return;
	}
	tpl_buf_add(&o->t, s);
	tpl_buf_add(&o->t, "\n\n");
	tpl_html_muted(html(o), s);
	free(s);
}

/* link_para - "intro" then the link on its own line (text), or a <p> with the link (HTML) */
static void link_para(struct out *o, const char *intro, const char *url, const char *label)
{
	struct tpl_buf *h = html(o);

	tpl_buf_addf(&o->t, "%s\n%s\n\n", intro, url);
	tpl_html_link_p(h, intro, url, label);
}

/* action - the email's one action: "intro" and the link in the text part; the button in the
 * HTML, after which the HTML goes below it. A link that is not http(s) is no button: its intro
 * and the link as escaped text stand instead. */
static void action(struct out *o, const char *intro, const char *url, const char *label)
{
	if(o->action_url || !tpl_is_web_url(url)) {
		link_para(o, intro, url, label);
		return;
	}
	tpl_buf_addf(&o->t, "%s\n%s\n\n", intro, url);
	tpl_html_p(html(o), intro);
	o->action_url = url;
	o->action_label = label;
	o->cur = &o->a;
}

/* button_only - url as the button, when the text part already shows it elsewhere; false when
 * there is a button already or url is not http(s) */
static int button_only(struct out *o, const char *url, const char *label)
{
	if(o->action_url || !url || !tpl_is_web_url(url))
		return 0;
	o->action_url = url;
	o->action_label = label;
	o->cur = &o->a;
	return 1;
}

/* list_open - start the table of facts */
static void list_open(struct out *o)
{
	tpl_facts_open(html(o));
}

/* list_close - end the table of facts */
static void list_close(struct out *o)
{
	tpl_buf_add(&o->t, "\n");
	tpl_facts_close(html(o));
}

/* item - "Label: value" */
static void item(struct out *o, const char *label, const char *value)
{
	tpl_buf_addf(&o->t, "%s: %s\n", label, value);
	tpl_fact(html(o), label, value);
}

/* item_link - "Label: url", the url a link in the HTML */
static void item_link(struct out *o, const char *label, const char *url)
{
	tpl_buf_addf(&o->t, "%s: %s\n", label, url);
	tpl_fact_link(html(o), label, url, url);
}

/* sign_off - the organisation's name closing the text part (the layout's foot in the HTML) */
static void sign_off(const struct tpl_env *env, struct out *o)
{
	tpl_buf_addf(&o->t, "%s\n", env->org_name);
}

/* out_free - release an email being written */
static void out_free(struct out *o)
{
	tpl_buf_free(&o->s);
	tpl_buf_free(&o->t);
	tpl_buf_free(&o->h);
	tpl_buf_free(&o->a);
	tpl_buf_free(&o->pre);
}

/* out_email - the payload from what was written: the HTML laid out (tpl_layout), the subject
 * and the display name made single-line. *payload new reference. */
static gw_rc out_email(const struct tpl_env *env, const char *kind, const char *dedupe_key,
                       const char *to_address, const char *to_name, struct out *o,
                       json_t **payload)
{
	struct tpl_buf h = {0}, name = {0};
	struct tpl_layout l = {0};
	gw_rc rc = GW_OK;

	tpl_buf_add(&name, to_name ? to_name : "");
	one_line(o->s.p);
	one_line(name.p);
	one_line(o->pre.p);
	l.title = o->s.p ? o->s.p : "";
	l.preheader = o->pre.p;
	l.body = o->h.p ? o->h.p : "";
	l.action_url = o->action_url;
	l.action_label = o->action_label;
	l.after = o->a.p;
	tpl_layout(env, &l, &h);
	if(o->oom || o->s.oom || o->t.oom || o->h.oom || o->a.oom || o->pre.oom || h.oom ||
	   name.oom || !o->s.p || !o->t.p) {
		rc = GW_ENOMEM;
		goto out;
	}
	rc = tpl_email(env, kind, dedupe_key, to_address, name.p ? name.p : "", o->s.p, o->t.p, h.p,
	               payload);
out:
	tpl_buf_free(&h);
	tpl_buf_free(&name);
	return rc;
}

/* env_ok - the env fields every email needs */
static int env_ok(const struct tpl_env *env, const char *dedupe_key)
{
	return env && env->org_name && env->org_timezone && dedupe_key && *dedupe_key;
}

/* ---- scheduling link ---------------------------------------------------------------------- */

/* fmt_lengths - "60 or 90 minutes" from a JSON array of minutes; nothing for an empty one */
static void fmt_lengths(const json_t *lengths, struct tpl_buf *b)
{
	size_t i, n = json_array_size(lengths), shown = 0;

	for(i = 0; i < n; i++) {
		const json_t *v = json_array_get(lengths, i);

		if(!json_is_integer(v))
			continue;
		if(shown)
			tpl_buf_add(b, i + 1 == n ? " or " : ", ");
		tpl_buf_addf(b, "%lld", (long long)json_integer_value(v));
		shown++;
	}
	if(shown)
		tpl_buf_add(b, " minutes");
}

/* tpl_scheduling_link - "Choose a time for your session with {trainer}" to the customer */
gw_rc tpl_scheduling_link(const struct tpl_env *env, const char *dedupe_key,
                          const json_t *request, const char *link_url, time_t expires_at,
                          json_t **out)
{
	gw_rc rc = GW_OK;
	struct out o = {0};
	struct tpl_buf lens = {0};
	const json_t *cust = json_object_get(request, "customer");
	const json_t *stype = json_object_get(request, "session_type");
	const char *cname = str_at(cust, "name");
	const char *cemail = str_at(cust, "email");
	const char *tname = str_at(json_object_get(request, "trainer"), "name");
	const char *stname = str_at(stype, "name");
	const json_t *cents = json_object_get(stype, "price_cents");
	char expires[WHEN_LEN], price[PRICE_LEN] = "";

	if(out)
		*out = NULL;
	if(!out || !env_ok(env, dedupe_key) || !cemail || !tname || !link_url || !*link_url) {
		rc = GW_EINVAL;
		goto out;
	}
	rc = tz_format(env->org_timezone, expires_at, expires, sizeof(expires));
	if(rc)
		goto out;
	if(json_is_integer(cents))
		fmt_price(json_integer_value(cents), str_at(stype, "currency"), price, sizeof(price));
	fmt_lengths(json_object_get(stype, "lengths"), &lens);

	subject(&o, "Choose a time for your session with %s", tname);
	preheader(&o, "Pick the time that suits you best; the link works until %s.", expires);
	para(&o, "Hello%s%s,", cname ? " " : "", cname ? cname : "");
	para(&o, "%s will be your trainer. Pick the time that suits you best, then confirm the "
	         "booking and pay.", tname);
	list_open(&o);
	item(&o, "Trainer", tname);
	if(stname)
		item(&o, "Session", stname);
	if(lens.p)
		item(&o, "Length", lens.p);
	if(price[0])
		item(&o, "Price", price);
	list_close(&o);
	action(&o, "Choose your time here:", link_url, "Choose a time");
	note(&o, "This link works until %s. If it has expired, ask %s for a new one.", expires,
	     tname);
	sign_off(env, &o);
	if(lens.oom) {
		rc = GW_ENOMEM;
		goto out;
	}
	rc = out_email(env, "scheduling_link", dedupe_key, cemail, cname, &o, out);
out:
	tpl_buf_free(&lens);
	out_free(&o);
	return rc;
}

/* ---- booking emails ----------------------------------------------------------------------- */

/* details - the lines every booking email shows about the session */
static void details(struct out *o, const struct bk *b, int show_trainer, int show_customer,
                    int show_price, int show_link)
{
	char session[640]; /* a session type name (intake bounds it) and its length */

	list_open(o);
	if(b->stname) {
		if(b->length > 0) {
			snprintf(session, sizeof(session), "%s (%lld minutes)", b->stname,
			         b->length);
			item(o, "Session", session);
		} else {
			item(o, "Session", b->stname);
		}
	} else if(b->length > 0) {
		snprintf(session, sizeof(session), "%lld minutes", b->length);
		item(o, "Length", session);
	}
	item(o, "When", b->range);
	if(show_trainer)
		item(o, "Trainer", b->tname);
	if(show_customer) {
		item(o, "Customer", b->cname);
		item(o, "Customer email", b->cemail);
	}
	if(show_price && b->price[0])
		item(o, "Price", b->price);
	if(show_link && b->session_link)
		item_link(o, "Join", b->session_link);
	list_close(o);
}

/* manage_para - the customer's own link (manage_url), with the last moment to change the
 * booking there (change_until) when there is one: the button when primary and there is none
 * yet, else a link */
static void manage_para(const struct tpl_env *env, const json_t *ctx, struct out *o, int primary)
{
	const char *url = str_at(ctx, "manage_url"), *until = str_at(ctx, "change_until");
	char when[WHEN_LEN], intro[WHEN_LEN + 96];
	time_t t;

	if(!url)
		return;
	if(until && !timefmt_parse(until, &t) &&
	   !tz_format(env->org_timezone, t, when, sizeof(when)))
		snprintf(intro, sizeof(intro), "You can cancel or move your session until %s here:",
		         when);
	else
		snprintf(intro, sizeof(intro), "Your booking, and whom to contact about it:");
	if(primary)
		action(o, intro, url, "Manage your booking");
	else
		link_para(o, intro, url, "Manage your booking");
}

/* utc_compact - "20261201T090000Z" (Google Calendar's dates) from "2026-12-01T09:00:00Z" */
static void utc_compact(const char *rfc3339, char *buf, size_t n)
{
	size_t o = 0;

	for(; *rfc3339 && o + 1 < n; rfc3339++)
		if(*rfc3339 != '-' && *rfc3339 != ':')
			buf[o++] = *rfc3339;
	buf[o] = '\0';
}

/* add_param - "&name=" and value percent-encoded (RFC 3986 2.1: every byte but the unreserved
 * ones, so '&', '+', '=' and '#' in a name cannot end or change the parameter) */
static void add_param(struct tpl_buf *u, const char *name, const char *value, int *bad)
{
	size_t n = strlen(value) * 3 + 1;
	char *enc = malloc(n);

	if(!enc || rest_escape(value, enc, n)) {
		*bad = 1;
		free(enc);
		return;
	}
	tpl_buf_addf(u, "&%s=%s", name, enc);
	free(enc);
}

/* calendar_links - "Add to Google Calendar" and "Add to Outlook" beside the attached .ics: the
 * event's title, its start and end in UTC, a line about it (trainer, customer, organisation),
 * and the join link as its location.
 * Google: calendar/render?action=TEMPLATE with dates=START/END in UTC basic format; Outlook on
 * the web: calendar/0/deeplink/compose with path=/calendar/action/compose, rru=addevent and
 * startdt/enddt in UTC ISO 8601. Neither carries the manage link (its token is a secret). */
static void calendar_links(const struct tpl_env *env, const struct bk *b, struct out *o)
{
	struct tpl_buf g = {0}, ol = {0}, title = {0}, about = {0};
	char start[TIMEFMT_LEN], end[TIMEFMT_LEN], gs[TIMEFMT_LEN], ge[TIMEFMT_LEN];
	char dates[2 * TIMEFMT_LEN + 2];
	const char *where = b->session_link && tpl_is_web_url(b->session_link) ? b->session_link
	                                                                       : NULL;
	struct tpl_buf *h = html(o);
	int bad = 0;

	timefmt_rfc3339(b->start, start);
	timefmt_rfc3339(b->end, end);
	utc_compact(start, gs, sizeof(gs));
	utc_compact(end, ge, sizeof(ge));
	snprintf(dates, sizeof(dates), "%s/%s", gs, ge);
	tpl_buf_addf(&title, "%s with %s", b->stname ? b->stname : "Session", b->tname);
	tpl_buf_addf(&about, "Session with %s for %s, booked with %s.", b->tname, b->cname,
	             env->org_name);
	if(where)
		tpl_buf_addf(&about, " Join: %s", where);
	if(title.oom || about.oom) {
		o->oom = 1;
		goto out;
	}
	tpl_buf_add(&g, "https://calendar.google.com/calendar/render?action=TEMPLATE");
	add_param(&g, "text", title.p, &bad);
	add_param(&g, "dates", dates, &bad);
	add_param(&g, "details", about.p, &bad);
	if(where)
		add_param(&g, "location", where, &bad);
	tpl_buf_add(&ol, "https://outlook.live.com/calendar/0/deeplink/compose?"
	                 "path=%2Fcalendar%2Faction%2Fcompose&rru=addevent");
	add_param(&ol, "subject", title.p, &bad);
	add_param(&ol, "startdt", start, &bad);
	add_param(&ol, "enddt", end, &bad);
	add_param(&ol, "body", about.p, &bad);
	if(where)
		add_param(&ol, "location", where, &bad);
	if(bad || g.oom || ol.oom) {
		o->oom = 1;
		goto out;
	}
	tpl_buf_addf(&o->t, "Add to Google Calendar: %s\nAdd to Outlook: %s\n\n", g.p, ol.p);
	tpl_buf_add(h, "<p class=\"tpl-muted\" style=\"margin:0 0 12px;font-size:14px;"
	               "line-height:20px;color:#4b5563;background-color:#ffffff\">");
	tpl_html_link(h, g.p, "Add to Google Calendar");
	tpl_buf_add(h, " &nbsp;&middot;&nbsp; ");
	tpl_html_link(h, ol.p, "Add to Outlook");
	tpl_buf_add(h, "</p>\n");
out:
	tpl_buf_free(&g);
	tpl_buf_free(&ol);
	tpl_buf_free(&title);
	tpl_buf_free(&about);
}

/* r_confirmation - "Your session is confirmed: {date}" to the customer, or after a
 * reschedule "Your session has moved: {date}"; the button is the manage link (else the join
 * link) */
static gw_rc r_confirmation(const struct tpl_env *env, const json_t *ctx, const struct bk *b,
                            struct out *o)
{
	if(b->was[0]) {
		subject(o, "Your session has moved: %s", b->when);
		preheader(o, "%s with %s, now %s.", b->stname ? b->stname : "Your session",
		          b->tname, b->range);
		para(o, "Hello %s,", b->cname);
		para(o, "Your session with %s has moved from %s to the time below.", b->tname,
		     b->was);
	} else {
		subject(o, "Your session is confirmed: %s", b->when);
		preheader(o, "%s with %s, %s.", b->stname ? b->stname : "Your session", b->tname,
		          b->range);
		para(o, "Hello %s,", b->cname);
		para(o, "Thank you: your session with %s is confirmed.", b->tname);
	}
	details(o, b, 1, 0, 1, 1);
	if(b->session_link)
		para(o, "Use the join link above at the start time.");
	manage_para(env, ctx, o, 1);
	button_only(o, b->session_link, "Join the session");
	calendar_links(env, b, o);
	if(b->ics)
		note(o, "The calendar invitation is attached: open it to add the session to your "
		        "calendar.");
	sign_off(env, o);
	return GW_OK;
}

/* dashboard - {public_url}/dashboard into buf (n bytes); "" without a public URL */
static const char *dashboard(const struct tpl_env *env, char *buf, size_t n)
{
	buf[0] = '\0';
	if(env->public_url && *env->public_url)
		snprintf(buf, n, "%s/dashboard", env->public_url);
	return buf;
}

/* r_trainer_confirmation - "New booking: {customer}, {date}" to the trainer, or after a
 * reschedule "Booking moved: {customer}, {date}"; the button opens the dashboard (My Upcoming
 * Sessions) */
static gw_rc r_trainer_confirmation(const struct tpl_env *env, const json_t *ctx,
                                    const struct bk *b, struct out *o)
{
	(void)ctx;
	if(b->was[0]) {
		subject(o, "Booking moved: %s, %s", b->cname, b->when);
		preheader(o, "Your session with %s is now %s.", b->cname, b->range);
		para(o, "Hello %s,", b->tname);
		para(o, "Your session with %s (%s) has moved from %s to the time below.", b->cname,
		     b->cemail, b->was);
	} else {
		subject(o, "New booking: %s, %s", b->cname, b->when);
		preheader(o, "%s has booked %s; the payment is confirmed.", b->cname, b->range);
		para(o, "Hello %s,", b->tname);
		para(o, "%s (%s) has booked a session with you, and the payment is confirmed.",
		     b->cname, b->cemail);
	}
	details(o, b, 0, 1, 0, 1);
	if(dashboard(env, o->url_buf, sizeof(o->url_buf))[0])
		action(o, "Your upcoming sessions:", o->url_buf, "Open your dashboard");
	if(b->ics)
		note(o, "The calendar invitation is attached.");
	sign_off(env, o);
	return GW_OK;
}

/* r_reminder - "Reminder: your session starts in {N} hours" to the customer; the button is the
 * join link (else the manage link) */
static gw_rc r_reminder(const struct tpl_env *env, const json_t *ctx, const struct bk *b,
                        struct out *o)
{
	const json_t *hv = json_object_get(ctx, "hours_before");
	long long hours;
	char in[64];

	if(!json_is_integer(hv) || json_integer_value(hv) < 0)
		return GW_EINVAL;
	hours = json_integer_value(hv);
	if(hours == 0)
		snprintf(in, sizeof(in), "is starting now");
	else
		snprintf(in, sizeof(in), "starts in %lld hour%s", hours, hours == 1 ? "" : "s");
	subject(o, "Reminder: your session %s", in);
	preheader(o, "With %s, %s.", b->tname, b->range);
	para(o, "Hello %s,", b->cname);
	para(o, "This is a reminder: your session with %s %s.", b->tname, in);
	details(o, b, 1, 0, 0, 1);
	button_only(o, b->session_link, "Join the session");
	manage_para(env, ctx, o, 1);
	calendar_links(env, b, o);
	sign_off(env, o);
	return GW_OK;
}

/* r_close_reminder - "Please close your session with {customer}" to the trainer */
static gw_rc r_close_reminder(const struct tpl_env *env, const json_t *ctx, const struct bk *b,
                              struct out *o)
{
	const char *url = str_at(ctx, "complete_url");

	if(!url)
		return GW_EINVAL;
	subject(o, "Please close your session with %s", b->cname);
	preheader(o, "Mark it complete, or record a no-show.");
	para(o, "Hello %s,", b->tname);
	para(o, "Your session with %s has ended. Please mark it complete, or record a no-show if "
	        "the customer did not attend.", b->cname);
	details(o, b, 0, 1, 0, 0);
	action(o, "Close the session here:", url, "Mark complete or no-show");
	sign_off(env, o);
	return GW_OK;
}

/* r_survey - "How was your session with {trainer}?" to the customer */
static gw_rc r_survey(const struct tpl_env *env, const json_t *ctx, const struct bk *b,
                      struct out *o)
{
	const char *url = str_at(ctx, "survey_url");

	if(!url)
		return GW_EINVAL;
	subject(o, "How was your session with %s?", b->tname);
	preheader(o, "Tell us in a minute: rate your session from 1 to 5.");
	para(o, "Hello %s,", b->cname);
	para(o, "Thank you for your session with %s on %s.", b->tname, b->when);
	details(o, b, 1, 0, 0, 0);
	action(o, "How was your session? Tell us in a minute:", url, "Rate your session");
	sign_off(env, o);
	return GW_OK;
}

/* r_no_show - "You missed your session on {date}" to the customer, with the policy's words;
 * nothing to click: the customer answers by replying */
static gw_rc r_no_show(const struct tpl_env *env, const json_t *ctx, const struct bk *b,
                       struct out *o)
{
	const char *policy = str_at(ctx, "no_show_policy");
	const char *words;

	if(!policy)
		return GW_EINVAL;
	if(strcmp(policy, "no_refund") == 0)
		words = "Under our No Refund policy, a missed session is not refunded.";
	else if(strcmp(policy, "contact_support") == 0)
		words = "Please Contact Support to discuss a refund or a new time.";
	else
		return GW_EINVAL;
	subject(o, "You missed your session on %s", b->when);
	preheader(o, "%s", words);
	para(o, "Hello %s,", b->cname);
	para(o, "We are sorry we did not see you: you missed your session with %s.", b->tname);
	details(o, b, 1, 0, 1, 0);
	para(o, "%s", words);
	sign_off(env, o);
	return GW_OK;
}

/* r_cancellation - "Your session on {date} is cancelled" to the customer; nothing to click */
static gw_rc r_cancellation(const struct tpl_env *env, const json_t *ctx, const struct bk *b,
                            struct out *o)
{
	const json_t *rv = json_object_get(ctx, "reason");
	const char *reason = str_at(ctx, "reason");

	if(rv && !json_is_null(rv) && !json_is_string(rv))
		return GW_EINVAL;
	subject(o, "Your session on %s is cancelled", b->when);
	preheader(o, "Your session with %s on %s has been cancelled.", b->tname, b->range);
	para(o, "Hello %s,", b->cname);
	para(o, "Your session with %s on %s has been cancelled.", b->tname, b->range);
	if(reason)
		para(o, "Reason: %s", reason);
	details(o, b, 1, 0, 0, 0);
	if(b->ics)
		note(o, "The attached calendar update removes the session from your calendar.");
	sign_off(env, o);
	return GW_OK;
}

/* r_session_link - "Your session link: {date}" to the customer: the Zoho Assist join URL */
static gw_rc r_session_link(const struct tpl_env *env, const json_t *ctx, const struct bk *b,
                            struct out *o)
{
	const char *url = str_at(ctx, "join_url");

	if(!url)
		return GW_EINVAL;
	subject(o, "Your session link: %s", b->when);
	preheader(o, "At the start time, join your session with %s here.", b->tname);
	para(o, "Hello %s,", b->cname);
	para(o, "Your session with %s takes place in Zoho Assist, a remote support service.",
	     b->tname);
	details(o, b, 1, 0, 0, 0);
	action(o, "At the start time, join the session here:", url, "Join the session");
	note(o, "Your reminders will carry the same link.");
	sign_off(env, o);
	return GW_OK;
}

static const struct kind_def kinds[] = {
    {"session_link", TO_CUSTOMER, NULL, r_session_link},
    {"confirmation", TO_CUSTOMER, "REQUEST", r_confirmation},
    {"trainer_confirmation", TO_TRAINER, "REQUEST", r_trainer_confirmation},
    {"reminder", TO_CUSTOMER, NULL, r_reminder},
    {"close_reminder", TO_TRAINER, NULL, r_close_reminder},
    {"survey", TO_CUSTOMER, NULL, r_survey},
    {"no_show", TO_CUSTOMER, NULL, r_no_show},
    {"cancellation", TO_CUSTOMER, "CANCEL", r_cancellation},
};

/* bk_read - read and check the fields every booking email needs; pick the recipient's zone */
static gw_rc bk_read(const struct tpl_env *env, const json_t *ctx, enum rcpt to, struct bk *b)
{
	const json_t *booking = json_object_get(ctx, "booking");
	const json_t *cust = json_object_get(ctx, "customer");
	const json_t *trainer = json_object_get(ctx, "trainer");
	const json_t *stype = json_object_get(ctx, "session_type");
	const json_t *len = json_object_get(booking, "length_minutes");
	const json_t *link = json_object_get(booking, "session_link");
	const char *start = str_at(booking, "start"), *end = str_at(booking, "end");
	const char *ttz = str_at(trainer, "timezone");
	gw_rc rc = GW_OK;

	memset(b, 0, sizeof(*b));
	b->cname = str_at(cust, "name");
	b->cemail = str_at(cust, "email");
	b->tname = str_at(trainer, "name");
	b->temail = str_at(trainer, "email");
	if(!json_is_object(booking) || !start || !end || !b->cname || !b->cemail || !b->tname ||
	   (to == TO_TRAINER && !b->temail) || (link && !json_is_null(link) && !json_is_string(link)) ||
	   (stype && !json_is_null(stype) && !json_is_object(stype)) ||
	   (len && !json_is_null(len) && !json_is_integer(len))) {
		rc = GW_EINVAL;
		goto out;
	}
	if((rc = timefmt_parse(start, &b->start)) || (rc = timefmt_parse(end, &b->end)))
		goto out;
	if(b->end < b->start) {
		rc = GW_EINVAL;
		goto out;
	}
	b->length = json_is_integer(len) ? (long long)json_integer_value(len)
	                                  : (long long)(b->end - b->start) / 60;
	b->session_link = str_at(booking, "session_link");
	/* a Zoho Assist session: session_link is the technician's URL, the customer joins by
	 * session_join_url */
	if(to == TO_CUSTOMER && str_at(booking, "session_join_url"))
		b->session_link = str_at(booking, "session_join_url");
	b->stname = str_at(stype, "name");
	if(json_is_integer(json_object_get(stype, "price_cents")))
		fmt_price(json_integer_value(json_object_get(stype, "price_cents")),
		          str_at(stype, "currency"), b->price, sizeof(b->price));
	b->zone = env->org_timezone;
	if(to == TO_TRAINER && ttz && tz_valid(ttz))
		b->zone = ttz;
	if((rc = tz_format(b->zone, b->start, b->when, sizeof(b->when))))
		goto out;
	/* a rescheduled booking: its confirmations say it moved, and from when */
	if(str_at(ctx, "moved_from")) {
		time_t was;

		if((rc = timefmt_parse(str_at(ctx, "moved_from"), &was)) ||
		   (rc = tz_format(b->zone, was, b->was, sizeof(b->was))))
			goto out;
	}
	rc = fmt_range(b->zone, b->start, b->end, b->range, sizeof(b->range));
out:
	return rc;
}

/* ics_read - the calendar part to attach, if the kind carries one and ctx has it: its method
 * must be the kind's (a confirmation that said CANCEL would remove the event it announces) */
static gw_rc ics_read(const struct kind_def *k, const json_t *ctx, const char **ics)
{
	const json_t *iv = json_object_get(ctx, "ics");
	const json_t *mv = json_object_get(ctx, "ics_method");

	*ics = NULL;
	if(!k->method || !iv || json_is_null(iv))
		return GW_OK;
	if(!json_is_string(iv) || json_string_length(iv) == 0)
		return GW_EINVAL;
	if(mv && !json_is_null(mv) &&
	   (!json_is_string(mv) || strcasecmp(json_string_value(mv), k->method) != 0))
		return GW_EINVAL;
	*ics = json_string_value(iv);
	return GW_OK;
}

/* tpl_booking - every booking email */
gw_rc tpl_booking(const struct tpl_env *env, const char *kind, const char *dedupe_key,
                  const json_t *ctx, json_t **out)
{
	gw_rc rc = GW_OK;
	const struct kind_def *k = NULL;
	struct out o = {0};
	struct bk b;
	const char *ics = NULL;
	json_t *payload = NULL;
	size_t i;

	if(out)
		*out = NULL;
	if(!out || !kind || !env_ok(env, dedupe_key) || !json_is_object(ctx)) {
		rc = GW_EINVAL;
		goto out;
	}
	for(i = 0; i < GW_ARRAY_LEN(kinds) && !k; i++)
		if(strcmp(kinds[i].kind, kind) == 0)
			k = &kinds[i];
	if(!k) {
		rc = GW_EINVAL;
		goto out;
	}
	if((rc = bk_read(env, ctx, k->to, &b)) || (rc = ics_read(k, ctx, &ics)))
		goto out;
	b.ics = ics != NULL;
	rc = k->render(env, ctx, &b, &o);
	if(rc)
		goto out;
	rc = out_email(env, k->kind, dedupe_key, k->to == TO_TRAINER ? b.temail : b.cemail,
	               k->to == TO_TRAINER ? b.tname : b.cname, &o, &payload);
	if(rc)
		goto out;
	if(ics && (json_object_set_new(payload, "ics", json_string(ics)) ||
	           json_object_set_new(payload, "ics_method", json_string(k->method)))) {
		rc = GW_ENOMEM;
		goto out;
	}
	*out = payload;
	payload = NULL;
out:
	json_decref(payload);
	out_free(&o);
	return rc;
}
