/*
 * tpl.c - email templates and the helpers they share.
 *
 * Entry points: tpl_message_id(), tpl_email(), tpl_new_request(), tpl_request_received(),
 * tpl_unmatched_request(), tpl_calendar_reconnect(), tpl_buf_*().
 * Threading: reentrant.
 */
#include "tpl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "common/timefmt.h"

/* tpl_buf_grow - make room for n more bytes */
static int tpl_buf_grow(struct tpl_buf *b, size_t n)
{
	size_t cap;
	char *p;

	if(b->oom)
		return -1;
	if(b->len + n + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while(cap < b->len + n + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if(!p) {
		b->oom = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

/* tpl_buf_add - append text */
void tpl_buf_add(struct tpl_buf *b, const char *s)
{
	size_t n = strlen(s);

	if(tpl_buf_grow(b, n))
		return;
	memcpy(b->p + b->len, s, n + 1);
	b->len += n;
}

/* tpl_buf_addf - append formatted text */
void tpl_buf_addf(struct tpl_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if(n < 0 || tpl_buf_grow(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* tpl_buf_html - append HTML-escaped text */
void tpl_buf_html(struct tpl_buf *b, const char *s)
{
	char one[2] = {0, 0};

	for(; s && *s; s++) {
		switch(*s) {
		case '&': tpl_buf_add(b, "&amp;"); break;
		case '<': tpl_buf_add(b, "&lt;"); break;
		case '>': tpl_buf_add(b, "&gt;"); break;
		case '"': tpl_buf_add(b, "&quot;"); break;
		case '\'': tpl_buf_add(b, "&#39;"); break;
		case '\n': tpl_buf_add(b, "<br>\n"); break;
		default:
			one[0] = *s;
			tpl_buf_add(b, one);
		}
	}
}

/* tpl_buf_free - release the buffer */
void tpl_buf_free(struct tpl_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* tpl_message_id - fixed Message-ID for (installation, org, dedupe key) */
void tpl_message_id(const struct tpl_env *env, const char *dedupe_key, char *buf, size_t n)
{
	char seed[700], hex[CRYPTO_HASH_HEX];
	const char *from = env->from_address ? env->from_address : TPL_DEFAULT_FROM;
	const char *domain = strrchr(from, '@');
	const char *kind_end = strchr(dedupe_key, ':');
	int klen = kind_end ? (int)(kind_end - dedupe_key) : (int)strlen(dedupe_key);

	snprintf(seed, sizeof(seed), "%s|%lld|%s", env->install_id ? env->install_id : "",
	         (long long)env->org_id, dedupe_key);
	crypto_sha256_hex(seed, strlen(seed), hex);
	snprintf(buf, n, "<%.32s.%.*s@%.64s>", hex, klen > 32 ? 32 : klen, dedupe_key,
	         domain ? domain + 1 : "ordinatus.localhost");
}

/* tpl_email - generic payload */
gw_rc tpl_email(const struct tpl_env *env, const char *kind, const char *dedupe_key,
                const char *to_address, const char *to_name, const char *subject,
                const char *text, const char *html, json_t **out)
{
	char mid[128], date[TIMEFMT_LEN];

	tpl_message_id(env, dedupe_key, mid, sizeof(mid));
	timefmt_rfc3339(env->now, date);
	*out = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:s, s:s, s:s}", "kind", kind,
	                 "message_id", mid, "date", date, "from", "address",
	                 env->from_address ? env->from_address : TPL_DEFAULT_FROM, "name",
	                 env->org_name, "to", "address", to_address, "name", to_name ? to_name : "",
	                 "subject", subject, "text", text, "html", html);
	return *out ? GW_OK : GW_ENOMEM;
}

/* tpl_html_open - the shared head of every HTML body */
void tpl_html_open(struct tpl_buf *h, const char *title)
{
	tpl_buf_add(h, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
	tpl_buf_html(h, title);
	tpl_buf_add(h, "</title></head>\n<body style=\"font-family:sans-serif\">\n");
}

/* skill_text - the request's skills as "a, b" into buf (n bytes) */
static void skill_text(const json_t *request, char *buf, size_t n)
{
	const json_t *sk;
	size_t i;

	buf[0] = '\0';
	json_array_foreach(json_object_get(request, "skills"), i, sk) {
		if(i)
			strncat(buf, ", ", n - strlen(buf) - 1);
		if(json_string_value(sk))
			strncat(buf, json_string_value(sk), n - strlen(buf) - 1);
	}
}

/* tpl_request_received - "We have your request" to the customer */
gw_rc tpl_request_received(const struct tpl_env *env, const char *dedupe_key,
                           const json_t *request, json_t **out)
{
	struct tpl_buf t = {0}, h = {0};
	const json_t *cust = json_object_get(request, "customer");
	const json_t *stype = json_object_get(request, "session_type");
	const char *cname = json_string_value(json_object_get(cust, "name"));
	const char *cemail = json_string_value(json_object_get(cust, "email"));
	const char *stname =
	        json_is_object(stype) ? json_string_value(json_object_get(stype, "name")) : NULL;
	char skills[512], subject[300];
	gw_rc rc;

	*out = NULL;
	if(!cemail || !env->org_name)
		return GW_EINVAL;
	skill_text(request, skills, sizeof(skills));
	snprintf(subject, sizeof(subject), "We have your request: %s", env->org_name);
	tpl_buf_addf(&t, "Hello %s,\n\nThank you: %s has your request. A trainer will contact you "
	                 "soon with a link to choose the time of your session.\n\n",
	             cname ? cname : "", env->org_name);
	if(stname)
		tpl_buf_addf(&t, "Session type: %s\n", stname);
	if(skills[0])
		tpl_buf_addf(&t, "Skills: %s\n", skills);
	tpl_buf_addf(&t, "%sThere is nothing more to do for now.\n\n%s\n",
	             stname || skills[0] ? "\n" : "", env->org_name);

	tpl_html_open(&h, subject);
	tpl_buf_add(&h, "<p>Hello ");
	tpl_buf_html(&h, cname);
	tpl_buf_add(&h, ",</p>\n<p>Thank you: ");
	tpl_buf_html(&h, env->org_name);
	tpl_buf_add(&h, " has your request. A trainer will contact you soon with a link to choose "
	                "the time of your session.</p>\n");
	if(stname || skills[0]) {
		tpl_buf_add(&h, "<ul>\n");
		if(stname) {
			tpl_buf_add(&h, "<li>Session type: ");
			tpl_buf_html(&h, stname);
			tpl_buf_add(&h, "</li>\n");
		}
		if(skills[0]) {
			tpl_buf_add(&h, "<li>Skills: ");
			tpl_buf_html(&h, skills);
			tpl_buf_add(&h, "</li>\n");
		}
		tpl_buf_add(&h, "</ul>\n");
	}
	tpl_buf_add(&h, "<p>There is nothing more to do for now.</p>\n<p>");
	tpl_buf_html(&h, env->org_name);
	tpl_buf_add(&h, "</p>\n</body></html>\n");
	if(t.oom || h.oom) {
		rc = GW_ENOMEM;
		goto out;
	}
	rc = tpl_email(env, "request_received", dedupe_key, cemail, cname, subject, t.p, h.p, out);
out:
	tpl_buf_free(&t);
	tpl_buf_free(&h);
	return rc;
}

/* tpl_unmatched_request - "No trainer matches a new request" to one org admin */
gw_rc tpl_unmatched_request(const struct tpl_env *env, const char *dedupe_key,
                            const json_t *request, const json_t *admin, json_t **out)
{
	struct tpl_buf t = {0}, h = {0};
	const json_t *cust = json_object_get(request, "customer");
	const char *aname = json_string_value(json_object_get(admin, "name"));
	const char *aemail = json_string_value(json_object_get(admin, "email"));
	const char *cname = json_string_value(json_object_get(cust, "name"));
	const char *cemail = json_string_value(json_object_get(cust, "email"));
	long long id = json_integer_value(json_object_get(request, "id"));
	char url[600], skills[512];
	gw_rc rc;

	*out = NULL;
	if(!aemail || !env->org_name)
		return GW_EINVAL;
	snprintf(url, sizeof(url), "%s/requests/%lld", env->public_url, id);
	skill_text(request, skills, sizeof(skills));
	tpl_buf_addf(&t, "Hello %s,\n\nA new request at %s matches no trainer: nobody was told "
	                 "about it.\n\n",
	             aname ? aname : "", env->org_name);
	tpl_buf_addf(&t, "Customer: %s <%s>\n", cname ? cname : "", cemail ? cemail : "");
	tpl_buf_addf(&t, "Skills asked: %s\n", skills[0] ? skills : "(none)");
	tpl_buf_addf(&t, "\nFind a trainer for it, or cancel it, here:\n%s\n", url);

	tpl_html_open(&h, "No trainer matches a new request");
	tpl_buf_add(&h, "<p>Hello ");
	tpl_buf_html(&h, aname);
	tpl_buf_add(&h, ",</p>\n<p>A new request at ");
	tpl_buf_html(&h, env->org_name);
	tpl_buf_add(&h, " matches no trainer: nobody was told about it.</p>\n<ul>\n<li>Customer: ");
	tpl_buf_html(&h, cname);
	tpl_buf_add(&h, " &lt;");
	tpl_buf_html(&h, cemail);
	tpl_buf_add(&h, "&gt;</li>\n<li>Skills asked: ");
	tpl_buf_html(&h, skills[0] ? skills : "(none)");
	tpl_buf_add(&h, "</li>\n</ul>\n<p><a href=\"");
	tpl_buf_html(&h, url);
	tpl_buf_add(&h, "\">Open the request</a></p>\n</body></html>\n");
	if(t.oom || h.oom) {
		rc = GW_ENOMEM;
		goto out;
	}
	rc = tpl_email(env, "unmatched_request", dedupe_key, aemail, aname,
	               "No trainer matches a new request", t.p, h.p, out);
out:
	tpl_buf_free(&t);
	tpl_buf_free(&h);
	return rc;
}

/* tpl_new_request - "New request available" for one trainer */
gw_rc tpl_new_request(const struct tpl_env *env, const char *dedupe_key, const json_t *request,
                      const json_t *trainer, json_t **out)
{
	struct tpl_buf t = {0}, h = {0};
	const json_t *cust = json_object_get(request, "customer");
	const json_t *stype = json_object_get(request, "session_type");
	const json_t *skills = json_object_get(request, "skills");
	const char *tname = json_string_value(json_object_get(trainer, "name"));
	const char *cname = json_string_value(json_object_get(cust, "name"));
	const char *stname = json_is_object(stype) ? json_string_value(json_object_get(stype, "name"))
	                                           : NULL;
	long long id = json_integer_value(json_object_get(request, "id"));
	char url[600], skill_list[512] = "";
	const json_t *sk;
	size_t i;
	gw_rc rc;

	snprintf(url, sizeof(url), "%s/requests/%lld", env->public_url, id);
	json_array_foreach(skills, i, sk) {
		if(i)
			strncat(skill_list, ", ", sizeof(skill_list) - strlen(skill_list) - 1);
		strncat(skill_list, json_string_value(sk), sizeof(skill_list) - strlen(skill_list) - 1);
	}

	tpl_buf_addf(&t, "Hello %s,\n\nA new request is available at %s.\n\n", tname ? tname : "",
	             env->org_name);
	tpl_buf_addf(&t, "Customer: %s\n", cname ? cname : "");
	if(stname)
		tpl_buf_addf(&t, "Session type: %s\n", stname);
	if(skill_list[0])
		tpl_buf_addf(&t, "Skills: %s\n", skill_list);
	tpl_buf_addf(&t, "\nThe first trainer to claim it gets it. Claim it here:\n%s\n", url);

	tpl_html_open(&h, "New request available");
	tpl_buf_add(&h, "<p>Hello ");
	tpl_buf_html(&h, tname);
	tpl_buf_add(&h, ",</p>\n<p>A new request is available at ");
	tpl_buf_html(&h, env->org_name);
	tpl_buf_add(&h, ".</p>\n<ul>\n<li>Customer: ");
	tpl_buf_html(&h, cname);
	tpl_buf_add(&h, "</li>\n");
	if(stname) {
		tpl_buf_add(&h, "<li>Session type: ");
		tpl_buf_html(&h, stname);
		tpl_buf_add(&h, "</li>\n");
	}
	if(skill_list[0]) {
		tpl_buf_add(&h, "<li>Skills: ");
		tpl_buf_html(&h, skill_list);
		tpl_buf_add(&h, "</li>\n");
	}
	tpl_buf_add(&h, "</ul>\n<p>The first trainer to claim it gets it.</p>\n<p><a href=\"");
	tpl_buf_html(&h, url);
	tpl_buf_add(&h, "\">Claim this request</a></p>\n</body></html>\n");

	if(t.oom || h.oom) {
		rc = GW_ENOMEM;
		goto out;
	}
	rc = tpl_email(env, "new_request", dedupe_key,
	               json_string_value(json_object_get(trainer, "email")), tname,
	               "New request available", t.p, h.p, out);
out:
	tpl_buf_free(&t);
	tpl_buf_free(&h);
	return rc;
}

/* tpl_calendar_reconnect - "Reconnect your calendar" to the trainer whose grant was revoked */
gw_rc tpl_calendar_reconnect(const struct tpl_env *env, const char *dedupe_key,
                             const json_t *trainer, const char *provider, const char *reason,
                             json_t **out)
{
	struct tpl_buf t = {0}, h = {0};
	const char *name = json_string_value(json_object_get(trainer, "name"));
	const char *email = json_string_value(json_object_get(trainer, "email"));
	const char *which = strcmp(provider, "outlook") == 0 ? "Outlook" : "Google";
	char url[1100];
	gw_rc rc;

	*out = NULL;
	if(!email || !env->org_name || !env->public_url)
		return GW_EINVAL;
	snprintf(url, sizeof(url), "%s/dashboard", env->public_url);
	tpl_buf_addf(&t,
	             "Hello %s,\n\n%s can no longer write your bookings into your %s calendar: "
	             "the calendar's permission was withdrawn or has expired.\n\n"
	             "Reconnect your calendar here:\n%s\n\n"
	             "Until you do, your new and changed bookings wait; they are written into the "
	             "calendar as soon as it is connected again. Nothing is lost.\n\n",
	             name ? name : "", env->org_name, which, url);
	if(reason && reason[0])
		tpl_buf_addf(&t, "What the calendar said: %.300s\n\n", reason);
	tpl_buf_addf(&t, "%s\n", env->org_name);

	tpl_html_open(&h, "Reconnect your calendar");
	tpl_buf_add(&h, "<p>Hello ");
	tpl_buf_html(&h, name);
	tpl_buf_add(&h, ",</p>\n<p>");
	tpl_buf_html(&h, env->org_name);
	tpl_buf_addf(&h, " can no longer write your bookings into your %s calendar: the calendar's "
	                 "permission was withdrawn or has expired.</p>\n<p><a href=\"",
	             which);
	tpl_buf_html(&h, url);
	tpl_buf_add(&h, "\">Reconnect your calendar</a></p>\n<p>Until you do, your new and changed "
	                "bookings wait; they are written into the calendar as soon as it is "
	                "connected again. Nothing is lost.</p>\n");
	if(reason && reason[0]) {
		tpl_buf_add(&h, "<p>What the calendar said: ");
		tpl_buf_html(&h, reason);
		tpl_buf_add(&h, "</p>\n");
	}
	tpl_buf_add(&h, "<p>");
	tpl_buf_html(&h, env->org_name);
	tpl_buf_add(&h, "</p>\n</body></html>\n");
	if(t.oom || h.oom) {
		rc = GW_ENOMEM;
		goto out;
	}
	rc = tpl_email(env, "calendar_reconnect", dedupe_key, email, name,
	               "Reconnect your calendar", t.p, h.p, out);
out:
	tpl_buf_free(&t);
	tpl_buf_free(&h);
	return rc;
}

/* Link paths whose next segment is a bearer token (crypto_token: 43 base64url characters) */
static const char *const token_paths[] = {"/s/", "/b/", "/survey/", "/login/"};
#define TOKEN_MIN 16 /* a shorter segment is not one of ours (/b/123 is a booking page) */

/* token_char - base64url (RFC 4648 5) */
static int token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* redact_string - s with every token after a token path replaced; new reference or NULL */
static json_t *redact_string(const char *s, size_t len)
{
	static const char mark[] = "redacted";
	char *out = malloc(len + 1);
	size_t i = 0, o = 0, k;
	json_t *j;

	if(!out)
		return NULL;
	while(i < len) {
		size_t plen = 0, t = 0;

		for(k = 0; k < GW_ARRAY_LEN(token_paths); k++) {
			plen = strlen(token_paths[k]);
			if(len - i >= plen && memcmp(s + i, token_paths[k], plen) == 0)
				break;
		}
		if(k < GW_ARRAY_LEN(token_paths)) {
			while(i + plen + t < len && token_char(s[i + plen + t]))
				t++;
			if(t >= TOKEN_MIN) {
				/* the mark is shorter than a token: out never outgrows len */
				memcpy(out + o, s + i, plen);
				o += plen;
				memcpy(out + o, mark, sizeof(mark) - 1);
				o += sizeof(mark) - 1;
				i += plen + t;
				continue;
			}
		}
		out[o++] = s[i++];
	}
	j = json_stringn(out, o);
	free(out);
	return j;
}

/* redact_value - every string inside v redacted in place; -1 when out of memory */
static int redact_value(json_t *v)
{
	const char *key;
	json_t *x, *n;
	size_t i;

	if(json_is_object(v)) {
		json_object_foreach(v, key, x)
		{
			if(json_is_string(x)) {
				n = redact_string(json_string_value(x), json_string_length(x));
				if(!n || json_object_set_new(v, key, n))
					return -1;
			} else if(redact_value(x)) {
				return -1;
			}
		}
	} else if(json_is_array(v)) {
		json_array_foreach(v, i, x)
		{
			if(json_is_string(x)) {
				n = redact_string(json_string_value(x), json_string_length(x));
				if(!n || json_array_set_new(v, i, n))
					return -1;
			} else if(redact_value(x)) {
				return -1;
			}
		}
	}
	return 0;
}

/* tpl_redact - the payload without its link tokens */
char *tpl_redact(const char *payload)
{
	json_t *p = json_loads(payload, 0, NULL);
	char *out;

	if(!p)
		return strdup("{\"redacted\": true}");
	if(redact_value(p)) {
		json_decref(p);
		return NULL;
	}
	out = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(p);
	return out;
}
