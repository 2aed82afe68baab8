/*
 * tpl.c - email templates and the helpers they share.
 *
 * Entry points: tpl_message_id(), tpl_email(), tpl_layout() and the body pieces it styles
 * (tpl_html_p(), tpl_html_muted(), tpl_html_link(), tpl_fact*()), tpl_new_request(),
 * tpl_request_received(), tpl_unmatched_request(), tpl_calendar_reconnect(), tpl_buf_*(),
 * tpl_redact().
 *
 * Every HTML part goes through tpl_layout(): the kinds here and in tpl_booking.c call it with
 * their body and button; any other html given to tpl_email() is laid out there (lay_out()).
 * Threading: reentrant.
 */
#include "tpl.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* tpl_buf_html - append HTML-escaped text; runs of plain characters are copied at once */
void tpl_buf_html(struct tpl_buf *b, const char *s)
{
	size_t run;

	while(s && *s) {
		run = strcspn(s, "&<>\"'\n");
		if(run) {
			if(tpl_buf_grow(b, run))
				return;
			memcpy(b->p + b->len, s, run);
			b->len += run;
			b->p[b->len] = '\0';
			s += run;
			continue;
		}
		switch(*s) {
		case '&': tpl_buf_add(b, "&amp;"); break;
		case '<': tpl_buf_add(b, "&lt;"); break;
		case '>': tpl_buf_add(b, "&gt;"); break;
		case '"': tpl_buf_add(b, "&quot;"); break;
		case '\'': tpl_buf_add(b, "&#39;"); break;
		default: tpl_buf_add(b, "<br>\n"); break; /* '\n' */
		}
		s++;
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

/* ---- the layout ------------------------------------------------------------------------ */

/* Colours, light and dark, each pair at least 4.5:1 (WCAG 2.1 1.4.3, AA for body text):
 * text #1f2937 on #ffffff 14.7:1, muted #4b5563 on #ffffff 7.6:1, links #1d4ed8 on #ffffff
 * 6.7:1, #ffffff on the header #1e3a8a 10.4:1 and on the button #1d4ed8 6.7:1; dark: text
 * #e5e7eb on #161b22 14.2:1, muted #aeb6c2 on #161b22 8.7:1, links #93c5fd on #161b22 9.9:1. */
#define TPL_FONT                                                                                   \
	"font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"
#define TPL_TEXT "color:#1f2937;background-color:#ffffff"
#define TPL_MUTED "color:#4b5563;background-color:#ffffff"
#define TPL_LINK "color:#1d4ed8;background-color:#ffffff"
#define TPL_P_STYLE TPL_FONT ";font-size:16px;line-height:24px;margin:0 0 16px;"
#define TPL_LAYOUT_MARK "<!--ordinatus-layout-->"

/* The dark-mode block: Apple Mail and the clients that honour prefers-color-scheme, and
 * Outlook.com, which marks what it recolours with data-ogsc (text) and data-ogsb
 * (backgrounds). Each rule sets a background and a text colour together. */
static const char dark_css[] =
        ":root{color-scheme:light dark;supported-color-schemes:light dark}\n"
        "@media (prefers-color-scheme: dark){\n"
        ".tpl-bg{background-color:#0b0f14 !important;color:#e5e7eb !important}\n"
        ".tpl-card,.tpl-text{background-color:#161b22 !important;color:#e5e7eb !important}\n"
        ".tpl-muted{background-color:#161b22 !important;color:#aeb6c2 !important}\n"
        ".tpl-link{background-color:#161b22 !important;color:#93c5fd !important}\n"
        ".tpl-line{border-color:#30363d !important}\n"
        "}\n"
        "[data-ogsb] .tpl-bg{background-color:#0b0f14 !important;color:#e5e7eb !important}\n"
        "[data-ogsc] .tpl-card,[data-ogsc] .tpl-text{background-color:#161b22 !important;"
        "color:#e5e7eb !important}\n"
        "[data-ogsc] .tpl-muted{background-color:#161b22 !important;color:#aeb6c2 !important}\n"
        "[data-ogsc] .tpl-link{background-color:#161b22 !important;color:#93c5fd !important}\n";

/* tpl_is_web_url - http(s), and nothing that could leave an attribute */
int tpl_is_web_url(const char *s)
{
	const char *p;

	if(!s || (strncasecmp(s, "https://", 8) != 0 && strncasecmp(s, "http://", 7) != 0))
		return 0;
	for(p = s; *p; p++)
		if((unsigned char)*p <= 0x20 || *p == 0x7f || strchr("\"'<>\\`", *p))
			return 0;
	return 1;
}

/* tpl_html_p - one paragraph of body text */
void tpl_html_p(struct tpl_buf *h, const char *text)
{
	tpl_buf_add(h, "<p class=\"tpl-text\" style=\"" TPL_P_STYLE TPL_TEXT "\">");
	tpl_buf_html(h, text);
	tpl_buf_add(h, "</p>\n");
}

/* tpl_html_muted - one paragraph in the secondary colour */
void tpl_html_muted(struct tpl_buf *h, const char *text)
{
	tpl_buf_add(h, "<p class=\"tpl-muted\" style=\"" TPL_FONT
	               ";font-size:14px;line-height:20px;margin:0 0 12px;" TPL_MUTED "\">");
	tpl_buf_html(h, text);
	tpl_buf_add(h, "</p>\n");
}

/* tpl_html_link - a link, or escaped text when url is not http(s) */
void tpl_html_link(struct tpl_buf *h, const char *url, const char *label)
{
	if(!tpl_is_web_url(url)) {
		tpl_buf_html(h, url);
		return;
	}
	tpl_buf_add(h, "<a href=\"");
	tpl_buf_html(h, url);
	tpl_buf_add(h, "\" class=\"tpl-link\" style=\"" TPL_LINK
	               ";text-decoration:underline;word-break:break-word\">");
	tpl_buf_html(h, label ? label : url);
	tpl_buf_add(h, "</a>");
}

/* tpl_html_link_p - a paragraph: intro, then the link on a line of its own */
void tpl_html_link_p(struct tpl_buf *h, const char *intro, const char *url, const char *label)
{
	tpl_buf_add(h, "<p class=\"tpl-text\" style=\"" TPL_P_STYLE TPL_TEXT "\">");
	tpl_buf_html(h, intro);
	tpl_buf_add(h, "<br>\n");
	tpl_html_link(h, url, label);
	tpl_buf_add(h, "</p>\n");
}

/* tpl_facts_open - start the table of facts */
void tpl_facts_open(struct tpl_buf *h)
{
	/* a data table (row headers), unlike the layout's tables: no role="presentation" */
	tpl_buf_add(h, "<table class=\"tpl-facts\" width=\"100%\" "
	               "border=\"0\" cellspacing=\"0\" cellpadding=\"0\" style=\"width:100%;margin:0 0 20px;"
	               "border-collapse:collapse\">\n");
}

/* fact_label - the label cell of one row */
static void fact_label(struct tpl_buf *h, const char *label)
{
	tpl_buf_add(h, "<tr><th scope=\"row\" align=\"left\" valign=\"top\" "
	               "class=\"tpl-muted tpl-line\" style=\"" TPL_FONT ";font-size:14px;line-height:20px;font-weight:normal;"
	               "text-align:left;padding:8px 12px 8px 0;width:30%;"
	               "border-bottom:1px solid #e5e7eb;" TPL_MUTED "\">");
	tpl_buf_html(h, label);
	tpl_buf_add(h, "</th><td valign=\"top\" class=\"tpl-text tpl-line\" style=\"" TPL_FONT
	               ";font-size:15px;line-height:22px;padding:8px 0;"
	               "border-bottom:1px solid #e5e7eb;" TPL_TEXT "\">");
}

/* tpl_fact - one row: label, escaped value */
void tpl_fact(struct tpl_buf *h, const char *label, const char *value)
{
	fact_label(h, label);
	tpl_buf_html(h, value);
	tpl_buf_add(h, "</td></tr>\n");
}

/* tpl_fact_link - one row whose value is a link (escaped text when not http(s)) */
void tpl_fact_link(struct tpl_buf *h, const char *label, const char *url, const char *text)
{
	fact_label(h, label);
	tpl_html_link(h, url, text);
	tpl_buf_add(h, "</td></tr>\n");
}

/* tpl_facts_close - end the table of facts */
void tpl_facts_close(struct tpl_buf *h)
{
	tpl_buf_add(h, "</table>\n");
}

/* button - the bulletproof button: the cell carries the colour (bgcolor for Outlook's Word
 * engine, which ignores padding on links), the link its padding (the whole button is
 * clickable everywhere else) */
static void button(struct tpl_buf *h, const char *url, const char *label)
{
	tpl_buf_add(h, "<table role=\"presentation\" border=\"0\" cellspacing=\"0\" "
	               "cellpadding=\"0\" style=\"margin:8px 0 24px\"><tr>\n<td class=\"tpl-btn\" align=\"center\" "
	               "bgcolor=\"#1d4ed8\" style=\"border-radius:6px;color:#ffffff;"
	               "background-color:#1d4ed8\">");
	tpl_buf_add(h, "<a href=\"");
	tpl_buf_html(h, url);
	tpl_buf_add(h, "\" class=\"tpl-button\" style=\"display:inline-block;padding:14px 28px;"
	               TPL_FONT ";font-size:16px;line-height:20px;font-weight:bold;text-decoration:none;"
	               "border-radius:6px;color:#ffffff;background-color:#1d4ed8\">");
	tpl_buf_html(h, label);
	tpl_buf_add(h, "</a></td></tr></table>\n");
}

/* tpl_layout - the one HTML layout of every email */
void tpl_layout(const struct tpl_env *env, const struct tpl_layout *l, struct tpl_buf *h)
{
	const char *org = env->org_name ? env->org_name : "";
	int i;

	tpl_buf_add(h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	               TPL_LAYOUT_MARK "\n"
	               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	               "<meta name=\"x-apple-disable-message-reformatting\">\n"
	               "<meta name=\"color-scheme\" content=\"light dark\">\n"
	               "<meta name=\"supported-color-schemes\" content=\"light dark\">\n<title>");
	tpl_buf_html(h, l->title);
	tpl_buf_add(h, "</title>\n<style>\n");
	tpl_buf_add(h, dark_css);
	tpl_buf_add(h, "</style>\n</head>\n<body class=\"tpl-bg\" style=\"margin:0;padding:0;"
	               "width:100%;color:#1f2937;background-color:#f3f4f6\">\n");
	if(l->preheader && *l->preheader) {
		/* the preview line: hidden everywhere (mso-hide for Outlook), read by the inbox */
		tpl_buf_add(h, "<div style=\"display:none;max-height:0;max-width:0;overflow:hidden;"
		               "opacity:0;mso-hide:all;font-size:1px;line-height:1px;"
		               "color:#f3f4f6;background-color:#f3f4f6\">");
		tpl_buf_html(h, l->preheader);
		/* zero-width non-joiners and spaces after it: the inbox shows them, not the body's
		 * first words, after the preview line */
		for(i = 0; i < 60; i++)
			tpl_buf_add(h, "&zwnj;&nbsp;");
		tpl_buf_add(h, "</div>\n");
	}
	tpl_buf_add(h, "<table role=\"presentation\" class=\"tpl-bg\" width=\"100%\" border=\"0\" "
	               "cellspacing=\"0\" cellpadding=\"0\" bgcolor=\"#f3f4f6\" style=\"width:100%;"
	               "color:#1f2937;background-color:#f3f4f6\"><tr><td align=\"center\" "
	               "style=\"padding:24px 12px\">\n"
	               "<!--[if mso]><table role=\"presentation\" width=\"600\" border=\"0\" "
	               "cellspacing=\"0\" cellpadding=\"0\"><tr><td><![endif]-->\n"
	               "<table role=\"presentation\" class=\"tpl-card\" width=\"100%\" "
	               "border=\"0\" cellspacing=\"0\" cellpadding=\"0\" bgcolor=\"#ffffff\" "
	               "style=\"width:100%;max-width:600px;border-radius:8px;color:#1f2937;"
	               "background-color:#ffffff\">\n"
	               "<tr><td class=\"tpl-head\" bgcolor=\"#1e3a8a\" style=\"padding:16px 24px;"
	               "border-radius:8px 8px 0 0;" TPL_FONT ";font-size:18px;line-height:24px;"
	               "font-weight:bold;color:#ffffff;background-color:#1e3a8a\">");
	tpl_buf_html(h, org);
	tpl_buf_add(h, "</td></tr>\n<tr><td class=\"tpl-card\" style=\"padding:24px;" TPL_FONT
	               ";font-size:16px;line-height:24px;" TPL_TEXT "\">\n"
	               "<h1 class=\"tpl-text\" style=\"" TPL_FONT
	               ";font-size:20px;line-height:28px;font-weight:bold;margin:0 0 16px;" TPL_TEXT "\">");
	tpl_buf_html(h, l->title);
	tpl_buf_add(h, "</h1>\n");
	tpl_buf_add(h, l->body ? l->body : "");
	if(l->action_url && tpl_is_web_url(l->action_url) && l->action_label)
		button(h, l->action_url, l->action_label);
	tpl_buf_add(h, l->after ? l->after : "");
	tpl_buf_add(h, "</td></tr>\n<tr><td class=\"tpl-muted tpl-line\" style=\"padding:16px 24px;"
	               "border-top:1px solid #e5e7eb;border-radius:0 0 8px 8px;" TPL_FONT
	               ";font-size:13px;line-height:18px;" TPL_MUTED "\">");
	tpl_buf_html(h, org);
	tpl_buf_add(h, "</td></tr>\n</table>\n<!--[if mso]></td></tr></table><![endif]-->\n"
	               "</td></tr></table>\n</body></html>\n");
}

/* html_unescape - s (n bytes) with the five entities tpl_buf_html writes turned back; caller
 * frees; NULL when out of memory */
static char *html_unescape(const char *s, size_t n)
{
	static const struct {
		const char *ent;
		char c;
	} ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&#39;", '\''}};
	char *out = malloc(n + 1);
	size_t i = 0, o = 0, k;

	if(!out)
		return NULL;
	while(i < n) {
		for(k = 0; k < GW_ARRAY_LEN(ents); k++) {
			size_t el = strlen(ents[k].ent);

			if(n - i >= el && memcmp(s + i, ents[k].ent, el) == 0)
				break;
		}
		if(k < GW_ARRAY_LEN(ents)) {
			out[o++] = ents[k].c;
			i += strlen(ents[k].ent);
		} else {
			out[o++] = s[i++];
		}
	}
	out[o] = '\0';
	return out;
}

/* strip_tags - the text of an HTML fragment (n bytes), tags dropped; caller frees */
static char *strip_tags(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	size_t i, o = 0;
	int in_tag = 0;

	if(!out)
		return NULL;
	for(i = 0; i < n; i++) {
		if(s[i] == '<')
			in_tag = 1;
		else if(s[i] == '>')
			in_tag = 0;
		else if(!in_tag)
			out[o++] = s[i];
	}
	out[o] = '\0';
	return out;
}

/* preheader_of - the first paragraph of a text part that is not the greeting, up to a link on a
 * line of its own, at most ~140 characters cut at a space, one line; into buf (n bytes) */
static void preheader_of(const char *text, char *buf, size_t n)
{
	const char *p = text, *end;
	size_t len, i;

	buf[0] = '\0';
	while(p && *p) {
		while(*p == '\n')
			p++;
		const char *url;

		end = strstr(p, "\n\n");
		len = end ? (size_t)(end - p) : strlen(p);
		/* the words only: a link on a line of its own stays out of the preview */
		url = strstr(p, "\nhttp");
		if(url && (size_t)(url - p) < len)
			len = (size_t)(url - p);
		if(len && strncmp(p, "Hello", 5) != 0 && strncmp(p, "Hi ", 3) != 0) {
			if(len > 140) {
				len = 140;
				while(len > 60 && p[len] != ' ')
					len--;
			}
			while(len && (p[len - 1] == '\n' || p[len - 1] == ' '))
				len--;
			if(len >= n)
				len = n - 1;
			memcpy(buf, p, len);
			buf[len] = '\0';
			for(i = 0; i < len; i++)
				if(buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t')
					buf[i] = ' ';
			return;
		}
		p = end;
	}
}

/* add_styled - n bytes of a hand-written body, each bare <p> given the layout's paragraph
 * style (Outlook's Word engine does not pass a cell's font on to a paragraph) */
static void add_styled(struct tpl_buf *b, const char *s, size_t n)
{
	const char *end = s + n, *p;

	while(s < end) {
		p = memmem(s, (size_t)(end - s), "<p>", 3);
		if(!p) {
			tpl_buf_addf(b, "%.*s", (int)(end - s), s);
			return;
		}
		tpl_buf_addf(b, "%.*s", (int)(p - s), s);
		tpl_buf_add(b, "<p class=\"tpl-text\" style=\"" TPL_P_STYLE TPL_TEXT "\">");
		s = p + 3;
	}
}

/* sign_off_len - n less a closing paragraph that holds only the organisation's name (with the
 * white space after it): the layout's foot says it already */
static size_t sign_off_len(const struct tpl_env *env, const char *s, size_t n)
{
	struct tpl_buf want = {0};
	size_t m = n, w;

	while(m && (s[m - 1] == '\n' || s[m - 1] == ' ' || s[m - 1] == '\t' || s[m - 1] == '\r'))
		m--;
	tpl_buf_add(&want, "<p>");
	tpl_buf_html(&want, env->org_name);
	tpl_buf_add(&want, "</p>");
	w = want.p ? want.len : 0;
	if(w && m >= w && memcmp(s + m - w, want.p, w) == 0)
		n = m - w;
	tpl_buf_free(&want);
	return n;
}

/* lay_out - html that tpl_layout did not make, laid out by it (see tpl_email); *out caller
 * frees */
static gw_rc lay_out(const struct tpl_env *env, const char *subject, const char *text,
                     const char *html, char **out)
{
	struct tpl_buf body = {0}, after = {0}, doc = {0};
	struct tpl_layout l = {0};
	const char *b = html, *e, *a, *href, *hend = NULL, *lend = NULL;
	char *url = NULL, *label = NULL, pre[200];
	gw_rc rc = GW_OK;

	*out = NULL;
	/* the inside of <body ...>...</body> when there is one */
	if((a = strstr(html, "<body"))) {
		b = strchr(a, '>');
		b = b ? b + 1 : html;
	}
	e = strstr(b, "</body>");
	if(!e)
		e = b + strlen(b);
	/* the first http(s) link: the button */
	a = b;
	while((a = strstr(a, "<a href=\"")) && a < e) {
		href = a + 9;
		hend = strchr(href, '"');
		lend = hend ? strstr(hend, "</a>") : NULL;
		if(!hend || !lend || lend > e)
			break;
		free(url);
		url = html_unescape(href, (size_t)(hend - href));
		if(url && tpl_is_web_url(url)) {
			const char *lab = strchr(hend, '>');

			char *words = NULL;

			/* the link's words as text: tags dropped, entities undone (the button
			 * escapes them again) */
			if(lab && lab < lend)
				words = strip_tags(lab + 1, (size_t)(lend - lab - 1));
			if(words)
				label = html_unescape(words, strlen(words));
			free(words);
			break;
		}
		a = hend;
	}
	if(env->org_name)
		e = b + sign_off_len(env, b, (size_t)(e - b));
	if(url && label && a && a < e) {
		/* a link alone in its paragraph gives its place to the button */
		size_t plen = strlen("<p>");
		const char *close = lend + 4;

		if((size_t)(a - b) >= plen && memcmp(a - plen, "<p>", plen) == 0 &&
		   strncmp(close, "</p>", 4) == 0) {
			add_styled(&body, b, (size_t)(a - plen - b));
			close += 4;
			add_styled(&after, close, (size_t)(e - close));
		} else {
			add_styled(&body, b, (size_t)(e - b));
		}
		l.action_url = url;
		l.action_label = label;
	} else {
		add_styled(&body, b, (size_t)(e - b));
	}
	preheader_of(text, pre, sizeof(pre));
	l.title = subject;
	l.preheader = pre;
	l.body = body.p ? body.p : "";
	l.after = after.p;
	tpl_layout(env, &l, &doc);
	if(body.oom || after.oom || doc.oom) {
		rc = GW_ENOMEM;
		goto out;
	}
	*out = doc.p;
	doc.p = NULL;
out:
	free(url);
	free(label);
	tpl_buf_free(&body);
	tpl_buf_free(&after);
	tpl_buf_free(&doc);
	return rc;
}

/* body_string - a JSON string of an email's text or HTML: made without jansson's byte by byte
 * UTF-8 check when every byte is ASCII (the templates' markup and words, and most names; an
 * ASCII text is UTF-8), that check being most of the cost of a reminder's payload; anything
 * else is checked as ever (NULL when not UTF-8, or for NULL: json_pack then fails, as with "s") */
static json_t *body_string(const char *s)
{
	size_t n, i;

	if(!s)
		return NULL;
	n = strlen(s);
	for(i = 0; i + 8 <= n; i += 8) {
		uint64_t w;

		memcpy(&w, s + i, sizeof(w));
		if(w & 0x8080808080808080ULL)
			return json_string(s);
	}
	for(; i < n; i++)
		if((unsigned char)s[i] & 0x80)
			return json_string(s);
	return json_stringn_nocheck(s, n);
}

/* tpl_email - generic payload; the HTML laid out unless it already is */
gw_rc tpl_email(const struct tpl_env *env, const char *kind, const char *dedupe_key,
                const char *to_address, const char *to_name, const char *subject,
                const char *text, const char *html, json_t **out)
{
	char mid[128], date[TIMEFMT_LEN], *laid = NULL;
	gw_rc rc = GW_OK;

	*out = NULL;
	if(html && !strstr(html, TPL_LAYOUT_MARK)) {
		rc = lay_out(env, subject ? subject : "", text ? text : "", html, &laid);
		if(rc)
			goto out;
		html = laid;
	}
	tpl_message_id(env, dedupe_key, mid, sizeof(mid));
	timefmt_rfc3339(env->now, date);
	/* "o": the two strings are taken over, also when json_pack fails (jansson 2.13 on) */
	*out = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:s, s:o, s:o}", "kind", kind,
	                 "message_id", mid, "date", date, "from", "address",
	                 env->from_address ? env->from_address : TPL_DEFAULT_FROM, "name",
	                 env->from_name ? env->from_name : env->org_name, "to", "address", to_address, "name", to_name ? to_name : "",
	                 "subject", subject, "text", body_string(text), "html",
	                 body_string(html));
	if(!*out)
		rc = GW_ENOMEM;
out:
	free(laid);
	return rc;
}

/* tpl_html_open - the head of an HTML body written by hand (tpl_email lays it out) */
void tpl_html_open(struct tpl_buf *h, const char *title)
{
	tpl_buf_add(h, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
	tpl_buf_html(h, title);
	tpl_buf_add(h, "</title></head>\n<body>\n");
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

/* send_laid_out - the payload of a kind whose body (h) tpl_layout lays out under subject, with
 * preheader and the button (url, label; NULL: none); frees nothing */
static gw_rc send_laid_out(const struct tpl_env *env, const char *kind, const char *dedupe_key,
                           const char *to_address, const char *to_name, const char *subject,
                           const char *preheader, struct tpl_buf *t, struct tpl_buf *h,
                           const char *url, const char *label, struct tpl_buf *after,
                           json_t **out)
{
	struct tpl_buf doc = {0};
	struct tpl_layout l = {0};
	gw_rc rc;

	l.title = subject;
	l.preheader = preheader;
	l.body = h->p ? h->p : "";
	l.action_url = url;
	l.action_label = label;
	l.after = after ? after->p : NULL;
	tpl_layout(env, &l, &doc);
	if(t->oom || h->oom || doc.oom || (after && after->oom) || !t->p) {
		rc = GW_ENOMEM;
		goto out;
	}
	rc = tpl_email(env, kind, dedupe_key, to_address, to_name, subject, t->p, doc.p, out);
out:
	tpl_buf_free(&doc);
	return rc;
}

/* greeting - "Hello NAME," in the HTML (escaped) */
static void greeting(struct tpl_buf *h, const char *name)
{
	struct tpl_buf g = {0};

	tpl_buf_add(&g, "Hello");
	if(name && *name) {
		tpl_buf_add(&g, " ");
		tpl_buf_add(&g, name);
	}
	tpl_buf_add(&g, ",");
	if(g.oom) {
		h->oom = 1;
		return;
	}
	tpl_html_p(h, g.p);
	tpl_buf_free(&g);
}

/* tpl_request_received - "We have your request" to the customer: nothing to act on yet, so no
 * button, only what was asked and what happens next */
gw_rc tpl_request_received(const struct tpl_env *env, const char *dedupe_key,
                           const json_t *request, json_t **out)
{
	struct tpl_buf t = {0}, h = {0}, line = {0};
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

	greeting(&h, cname);
	tpl_buf_addf(&line, "Thank you: %s has your request. A trainer will contact you soon with "
	                    "a link to choose the time of your session.",
	             env->org_name);
	tpl_html_p(&h, line.p ? line.p : "");
	if(stname || skills[0]) {
		tpl_facts_open(&h);
		if(stname)
			tpl_fact(&h, "Session type", stname);
		if(skills[0])
			tpl_fact(&h, "Skills", skills);
		tpl_facts_close(&h);
	}
	tpl_html_muted(&h, "There is nothing more to do for now.");
	if(line.oom) {
		rc = GW_ENOMEM;
		goto out;
	}
	rc = send_laid_out(env, "request_received", dedupe_key, cemail, cname, subject,
	                   "A trainer will contact you soon with a link to choose your time.", &t,
	                   &h, NULL, NULL, NULL, out);
out:
	tpl_buf_free(&t);
	tpl_buf_free(&h);
	tpl_buf_free(&line);
	return rc;
}

/* tpl_unmatched_request - "No trainer matches a new request" to one org admin */
gw_rc tpl_unmatched_request(const struct tpl_env *env, const char *dedupe_key,
                            const json_t *request, const json_t *admin, json_t **out)
{
	struct tpl_buf t = {0}, h = {0}, line = {0};
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
	tpl_buf_addf(&t, "Hello%s%s,\n\nA new request at %s matches no trainer: nobody was told "
	                 "about it.\n\n",
	             aname && *aname ? " " : "", aname ? aname : "", env->org_name);
	tpl_buf_addf(&t, "Customer: %s <%s>\n", cname ? cname : "", cemail ? cemail : "");
	tpl_buf_addf(&t, "Skills asked: %s\n", skills[0] ? skills : "(none)");
	tpl_buf_addf(&t, "\nFind a trainer for it, or cancel it, here:\n%s\n", url);

	greeting(&h, aname);
	tpl_buf_addf(&line, "A new request at %s matches no trainer: nobody was told about it.",
	             env->org_name);
	tpl_html_p(&h, line.p ? line.p : "");
	tpl_facts_open(&h);
	tpl_fact(&h, "Customer", cname ? cname : "");
	tpl_fact(&h, "Email", cemail ? cemail : "");
	tpl_fact(&h, "Skills asked", skills[0] ? skills : "(none)");
	tpl_facts_close(&h);
	tpl_html_p(&h, "Find a trainer for it, or cancel it.");
	if(line.oom) {
		rc = GW_ENOMEM;
		goto out;
	}
	rc = send_laid_out(env, "unmatched_request", dedupe_key, aemail, aname,
	                   "No trainer matches a new request",
	                   "Nobody was told about it: find a trainer for it, or cancel it.", &t, &h,
	                   url, "Open the request", NULL, out);
out:
	tpl_buf_free(&t);
	tpl_buf_free(&h);
	tpl_buf_free(&line);
	return rc;
}

/* tpl_new_request - "New request available" for one trainer */
gw_rc tpl_new_request(const struct tpl_env *env, const char *dedupe_key, const json_t *request,
                      const json_t *trainer, json_t **out)
{
	struct tpl_buf t = {0}, h = {0}, line = {0};
	const json_t *cust = json_object_get(request, "customer");
	const json_t *stype = json_object_get(request, "session_type");
	const char *tname = json_string_value(json_object_get(trainer, "name"));
	const char *cname = json_string_value(json_object_get(cust, "name"));
	const char *stname = json_is_object(stype) ? json_string_value(json_object_get(stype, "name"))
	                                           : NULL;
	long long id = json_integer_value(json_object_get(request, "id"));
	char url[600], skill_list[512];
	gw_rc rc;

	*out = NULL;
	if(!env->org_name)
		return GW_EINVAL;
	snprintf(url, sizeof(url), "%s/requests/%lld", env->public_url, id);
	skill_text(request, skill_list, sizeof(skill_list));

	tpl_buf_addf(&t, "Hello%s%s,\n\nA new request is available at %s.\n\n",
	             tname && *tname ? " " : "", tname ? tname : "", env->org_name);
	tpl_buf_addf(&t, "Customer: %s\n", cname ? cname : "");
	if(stname)
		tpl_buf_addf(&t, "Session type: %s\n", stname);
	if(skill_list[0])
		tpl_buf_addf(&t, "Skills: %s\n", skill_list);
	tpl_buf_addf(&t, "\nThe first trainer to claim it gets it. Claim it here:\n%s\n", url);

	greeting(&h, tname);
	tpl_buf_addf(&line, "A new request is available at %s. The first trainer to claim it gets "
	                    "it.",
	             env->org_name);
	tpl_html_p(&h, line.p ? line.p : "");
	tpl_facts_open(&h);
	tpl_fact(&h, "Customer", cname ? cname : "");
	if(stname)
		tpl_fact(&h, "Session type", stname);
	if(skill_list[0])
		tpl_fact(&h, "Skills", skill_list);
	tpl_facts_close(&h);
	if(line.oom) {
		rc = GW_ENOMEM;
		goto out;
	}
	rc = send_laid_out(env, "new_request", dedupe_key,
	                   json_string_value(json_object_get(trainer, "email")), tname,
	                   "New request available", "The first trainer to claim it gets it.", &t, &h,
	                   url, "Claim This Request", NULL, out);
out:
	tpl_buf_free(&t);
	tpl_buf_free(&h);
	tpl_buf_free(&line);
	return rc;
}

/* tpl_calendar_reconnect - "Reconnect your calendar" to the trainer whose grant was revoked */
gw_rc tpl_calendar_reconnect(const struct tpl_env *env, const char *dedupe_key,
                             const json_t *trainer, const char *provider, const char *reason,
                             json_t **out)
{
	struct tpl_buf t = {0}, h = {0}, line = {0}, after = {0};
	const char *name = json_string_value(json_object_get(trainer, "name"));
	const char *email = json_string_value(json_object_get(trainer, "email"));
	const char *which = strcmp(provider, "outlook") == 0 ? "Outlook" : "Google";
	char url[1100], said[320];
	gw_rc rc;

	*out = NULL;
	if(!email || !env->org_name || !env->public_url)
		return GW_EINVAL;
	snprintf(url, sizeof(url), "%s/dashboard", env->public_url);
	tpl_buf_addf(&t,
	             "Hello%s%s,\n\n%s can no longer write your bookings into your %s calendar: "
	             "the calendar's permission was withdrawn or has expired.\n\n"
	             "Reconnect your calendar here:\n%s\n\n"
	             "Until you do, your new and changed bookings wait; they are written into the "
	             "calendar as soon as it is connected again. Nothing is lost.\n\n",
	             name && *name ? " " : "", name ? name : "", env->org_name, which, url);
	if(reason && reason[0])
		tpl_buf_addf(&t, "What the calendar said: %.300s\n\n", reason);
	tpl_buf_addf(&t, "%s\n", env->org_name);

	greeting(&h, name);
	tpl_buf_addf(&line, "%s can no longer write your bookings into your %s calendar: the "
	                    "calendar's permission was withdrawn or has expired.",
	             env->org_name, which);
	tpl_html_p(&h, line.p ? line.p : "");
	tpl_facts_open(&h);
	tpl_fact(&h, "Calendar", which);
	if(reason && reason[0]) {
		snprintf(said, sizeof(said), "%.300s", reason);
		tpl_fact(&h, "What the calendar said", said);
	}
	tpl_facts_close(&h);
	tpl_html_muted(&after, "Until you do, your new and changed bookings wait; they are written "
	                       "into the calendar as soon as it is connected again. Nothing is "
	                       "lost.");
	if(line.oom) {
		rc = GW_ENOMEM;
		goto out;
	}
	rc = send_laid_out(env, "calendar_reconnect", dedupe_key, email, name,
	                   "Reconnect your calendar",
	                   "Your bookings wait until your calendar is connected again.", &t, &h, url,
	                   "Reconnect your calendar", &after, out);
out:
	tpl_buf_free(&t);
	tpl_buf_free(&h);
	tpl_buf_free(&line);
	tpl_buf_free(&after);
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

/* redact_into - s (len bytes) into out (room for len) with every token after a token path
 * replaced by the mark; the bytes written. Every token path starts with '/': what lies between
 * two slashes is copied whole (a payload is mostly text without one). */
static size_t redact_into(const char *s, size_t len, char *out)
{
	static const char mark[] = "redacted";
	size_t i = 0, o = 0, k;

	while(i < len) {
		const char *slash = memchr(s + i, '/', len - i);
		size_t run = slash ? (size_t)(slash - (s + i)) : len - i, plen = 0, t = 0;

		memcpy(out + o, s + i, run);
		o += run;
		i += run;
		if(i >= len)
			break;
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
	return o;
}

/* redact_string - s with every token after a token path replaced; new reference or NULL */
static json_t *redact_string(const char *s, size_t len)
{
	char *out = malloc(len + 1);
	json_t *j;

	if(!out)
		return NULL;
	j = json_stringn(out, redact_into(s, len, out));
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

/* tpl_redact_text - tpl_redact on the JSON text itself: a token is base64url, which JSON never
 * escapes, and a token path is written as it is (jansson escapes no '/'), so the strings come
 * out as tpl_redact has them; an object key that held a token would lose it too */
char *tpl_redact_text(const char *payload)
{
	size_t len = strlen(payload);
	char *out = malloc(len + 1);

	if(out)
		out[redact_into(payload, len, out)] = '\0';
	return out;
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
