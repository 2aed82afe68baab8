/*
 * smtp_mime.c - the RFC 5322 message for an email payload (MIME: RFC 2045, 2046, 2047).
 *
 * Entry points: smtp_mime_build(), smtp_header_safe().
 *
 * Layout: header fields Message-ID, Date, From, To, Subject, MIME-Version, X-Ordinatus-Kind;
 * then multipart/alternative (text/plain + text/html, quoted-printable, UTF-8) or, when the
 * payload carries "ics", multipart/mixed holding that alternative and a base64 text/calendar
 * part (RFC 6047 iMIP: "method" parameter). A payload with only one of text/html gets that one
 * part instead of the alternative. Everything written is 7-bit ASCII with CRLF line ends, so no
 * relay needs 8BITMIME or SMTPUTF8.
 *
 * Header injection: every header value taken from the payload (addresses, names, subject,
 * message id, kind, method) is refused with GW_EINVAL when it holds CR, LF or NUL; non-ASCII
 * (or otherwise unsafe) text is RFC 2047 B-encoded, and long lines are folded (RFC 5322 2.2.3).
 *
 * Threading: reentrant, no shared state.
 */
#include "smtp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#define MIME_LINE_SOFT 78   /* RFC 5322 2.1.1: lines SHOULD be at most 78 characters */
#define QP_LINE 76          /* RFC 2045 6.7 (5): encoded lines at most 76 characters */
#define B64_CHUNK 57        /* 57 bytes -> 76 base64 characters per line */
#define EW_MAX_BYTES 45     /* 45 bytes -> 60 base64 + 12 = 72 <= 75 (RFC 2047 2) */
#define EW_OVERHEAD 12      /* "=?UTF-8?B?" + "?=" */
#define ADDR_MAX 254        /* RFC 5321 4.5.3.1.3 path, less the angle brackets */
#define MSGID_MAX 250
#define KIND_MAX 64
#define BOUNDARY_HEX 32
#define BOUNDARY_SIZE (6 + BOUNDARY_HEX + 1) /* "=_ord_" + hex + NUL */
#define LONG_WORD 60        /* an unbreakable run longer than this is encoded to fold it */

/* mbuf - a growing byte buffer that remembers its column (for header folding) */
struct mbuf {
	char *p;     /* from malloc(); NUL-terminated while !oom */
	size_t len;
	size_t cap;
	size_t col;  /* bytes since the last LF */
	int words;   /* tokens on the current header line */
	int oom;     /* sticky: an append failed */
};

/* email - the payload's fields, all borrowed from the json_t (or the caller's strings) */
struct email {
	const char *kind;
	const char *msgid;
	size_t msgid_len;
	time_t date;
	const char *from_addr;
	const char *from_name;
	size_t from_name_len;
	const char *to_addr;
	const char *to_name;
	size_t to_name_len;
	const char *subject;
	size_t subject_len;
	const char *text;
	size_t text_len;
	const char *html;
	size_t html_len;
	const char *ics;
	size_t ics_len;
	const char *method;
};

/* mb_add - append n bytes, tracking the column */
static void mb_add(struct mbuf *b, const void *s, size_t n)
{
	const char *nl;

	if(b->oom)
		return;
	if(n >= SIZE_MAX / 2 - b->len) {
		b->oom = 1;
		return;
	}
	if(b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *np;

		while(cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if(!np) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	if(n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	nl = n ? memrchr(s, '\n', n) : NULL;
	if(nl)
		b->col = n - (size_t)(nl - (const char *)s) - 1;
	else
		b->col += n;
}

/* mb_str - append a C string */
static void mb_str(struct mbuf *b, const char *s)
{
	mb_add(b, s, strlen(s));
}

/* mb_fmt - append printf-style text */
static void mb_fmt(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mb_fmt(struct mbuf *b, const char *fmt, ...)
{
	char small[512];
	char *big = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if(n < 0) {
		b->oom = 1;
		return;
	}
	if((size_t)n < sizeof(small)) {
		mb_add(b, small, (size_t)n);
		return;
	}
	big = malloc((size_t)n + 1);
	if(!big) {
		b->oom = 1;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	mb_add(b, big, (size_t)n);
	free(big);
}

/* smtp_header_safe - true when s may stand in a header: no CR, LF or NUL */
int smtp_header_safe(const char *s)
{
	return s != NULL && strpbrk(s, "\r\n") == NULL;
}

/* hdr_begin - start a header field "Name:" */
static void hdr_begin(struct mbuf *b, const char *name)
{
	mb_str(b, name);
	mb_add(b, ":", 1);
	b->words = 0;
}

/* hdr_fold - fold here (RFC 5322 2.2.3): the next token brings its own white space */
static void hdr_fold(struct mbuf *b)
{
	mb_add(b, "\r\n", 2);
	b->words = 0;
}

/* hdr_word - append " word", folding first when the line would pass 78 columns */
static void hdr_word(struct mbuf *b, const char *w, size_t n)
{
	if(b->words && b->col + 1 + n > MIME_LINE_SOFT)
		hdr_fold(b);
	mb_add(b, " ", 1);
	mb_add(b, w, n);
	b->words++;
}

/* hdr_end - end the header field */
static void hdr_end(struct mbuf *b)
{
	mb_add(b, "\r\n", 2);
	b->words = 0;
}

/* needs_encoding - true when header text must become RFC 2047 encoded-words: non-ASCII or
 * control bytes, text that would read as an encoded-word ("=?"), or a run too long to fold */
static int needs_encoding(const char *s, size_t n)
{
	size_t i, run = 0;

	for(i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if((c < 0x20 && c != '\t') || c >= 0x7f)
			return 1;
		if(c == '=' && i + 1 < n && s[i + 1] == '?')
			return 1;
		run = (c == ' ' || c == '\t') ? 0 : run + 1;
		if(run > LONG_WORD)
			return 1;
	}
	return 0;
}

/* hdr_encoded - text as RFC 2047 B encoded-words of at most 75 characters (RFC 2047 2), split
 * only between UTF-8 characters (RFC 2047 5: a character is never split across words). White
 * space between adjacent encoded-words is ignored by decoders (RFC 2047 6.2), so folding
 * between them does not change the text. */
static void hdr_encoded(struct mbuf *b, const char *s, size_t n)
{
	unsigned char b64[EW_MAX_BYTES / 3 * 4 + 1];
	char word[EW_OVERHEAD + sizeof(b64)];
	size_t i = 0;

	while(i < n && !b->oom) {
		size_t room, max, take;
		int blen;

		room = b->col + 1 < MIME_LINE_SOFT ? MIME_LINE_SOFT - b->col - 1 : 0;
		if(b->words && room < EW_OVERHEAD + 8) {
			hdr_fold(b);
			room = MIME_LINE_SOFT - 1;
		}
		max = room > EW_OVERHEAD ? (room - EW_OVERHEAD) / 4 * 3 : 0;
		if(max > EW_MAX_BYTES)
			max = EW_MAX_BYTES;
		if(max < 4)
			max = 4; /* a header name past column 60: accept one long first line */
		take = n - i < max ? n - i : max;
		while(take > 0 && i + take < n && ((unsigned char)s[i + take] & 0xc0) == 0x80)
			take--;
		if(take == 0) /* not UTF-8: split anywhere rather than loop */
			take = n - i < max ? n - i : max;
		blen = EVP_EncodeBlock(b64, (const unsigned char *)s + i, (int)take);
		memcpy(word, "=?UTF-8?B?", 10);
		memcpy(word + 10, b64, (size_t)blen);
		memcpy(word + 10 + blen, "?=", 2);
		hdr_word(b, word, (size_t)blen + EW_OVERHEAD);
		i += take;
	}
}

/* hdr_unstructured - unstructured text (Subject, RFC 5322 3.2.5): printable ASCII is folded
 * before white space and keeps every space; anything else is encoded */
static void hdr_unstructured(struct mbuf *b, const char *s, size_t n)
{
	size_t i = 0;
	int first = 1;

	if(needs_encoding(s, n)) {
		hdr_encoded(b, s, n);
		return;
	}
	while(i < n) {
		size_t start = i, word;

		while(i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		word = i;
		while(i < n && s[i] != ' ' && s[i] != '\t')
			i++;
		if(first) {
			mb_add(b, " ", 1);
			first = 0;
		} else if(b->words && i > word && b->col + (i - start) > MIME_LINE_SOFT) {
			/* the segment starts with white space: folding before it is valid */
			mb_add(b, "\r\n", 2);
		}
		mb_add(b, s + start, i - start);
		b->words++;
	}
}

/* is_atext - RFC 5322 3.2.3 atext */
static int is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* hdr_phrase - a display name (RFC 5322 3.2.5 phrase): atoms as they are, other printable ASCII
 * as one quoted-string, and anything else (or a long quoted name) as encoded-words */
static void hdr_phrase(struct mbuf *b, const char *s, size_t n)
{
	struct mbuf q = {0};
	size_t i, start;
	int atoms = n > 0 && s[0] != ' ' && s[n - 1] != ' ';

	for(i = 0; atoms && i < n; i++)
		if(!is_atext((unsigned char)s[i]) && !(s[i] == ' ' && s[i + 1] != ' '))
			atoms = 0;
	if(needs_encoding(s, n) || (!atoms && n > LONG_WORD)) {
		hdr_encoded(b, s, n);
		return;
	}
	if(atoms) {
		for(i = 0; i < n; i = start) {
			start = i;
			while(start < n && s[start] != ' ')
				start++;
			hdr_word(b, s + i, start - i);
			if(start < n)
				start++;
		}
		return;
	}
	mb_add(&q, "\"", 1);
	for(i = 0; i < n; i++) {
		if(s[i] == '"' || s[i] == '\\')
			mb_add(&q, "\\", 1);
		mb_add(&q, s + i, 1);
	}
	mb_add(&q, "\"", 1);
	if(q.oom)
		b->oom = 1;
	else
		hdr_word(b, q.p, q.len);
	free(q.p);
}

/* hdr_address - "Name: phrase <addr>" or "Name: addr" */
static void hdr_address(struct mbuf *b, const char *name, const char *dname, size_t dlen,
                        const char *addr)
{
	char angle[ADDR_MAX + 3];
	int n;

	hdr_begin(b, name);
	if(dname && dlen) {
		hdr_phrase(b, dname, dlen);
		n = snprintf(angle, sizeof(angle), "<%s>", addr);
		hdr_word(b, angle, (size_t)n);
	} else {
		hdr_word(b, addr, strlen(addr));
	}
	hdr_end(b);
}

/* addr_valid - minimal addr-spec check: one '@' with text either side, printable ASCII without
 * white space or the characters that would end or extend an address list */
static int addr_valid(const char *s)
{
	size_t n = strlen(s), i;
	const char *at = strchr(s, '@');

	if(n < 3 || n > ADDR_MAX || !at || at == s || at[1] == '\0' || strchr(at + 1, '@'))
		return 0;
	if(at - s > 64) /* RFC 5321 4.5.3.1.1 */
		return 0;
	for(i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if(c <= 0x20 || c >= 0x7f || strchr("<>()[],;:\\\"", c))
			return 0;
	}
	return 1;
}

/* get_str - obj[key] as a string; field names it in errors. header: refuse CR, LF and NUL */
static gw_rc get_str(const json_t *obj, const char *key, const char *field, int required,
                     int header, const char **s, size_t *n, struct gw_err *err)
{
	const json_t *v = obj ? json_object_get(obj, key) : NULL;
	const char *str;
	size_t len;

	*s = NULL;
	if(n)
		*n = 0;
	if(!v || json_is_null(v)) {
		if(required)
			return gw_err_set(err, GW_EINVAL, field, "%s is required", field);
		return GW_OK;
	}
	if(!json_is_string(v))
		return gw_err_set(err, GW_EINVAL, field, "%s must be a string", field);
	str = json_string_value(v);
	len = json_string_length(v);
	if(header && (memchr(str, '\0', len) || !smtp_header_safe(str)))
		return gw_err_set(err, GW_EINVAL, field, "%s must not contain CR, LF or NUL",
		                  field);
	*s = str;
	if(n)
		*n = len;
	return GW_OK;
}

/* get_obj - obj[key] as an object or absent */
static gw_rc get_obj(const json_t *obj, const char *key, int required, const json_t **out,
                     struct gw_err *err)
{
	const json_t *v = json_object_get(obj, key);

	*out = NULL;
	if(!v || json_is_null(v)) {
		if(required)
			return gw_err_set(err, GW_EINVAL, key, "%s is required", key);
		return GW_OK;
	}
	if(!json_is_object(v))
		return gw_err_set(err, GW_EINVAL, key, "%s must be an object", key);
	*out = v;
	return GW_OK;
}

/* digits - n decimal digits at s into *v */
static int digits(const char *s, int n, int *v)
{
	int i;

	*v = 0;
	for(i = 0; i < n; i++) {
		if(s[i] < '0' || s[i] > '9')
			return 0;
		*v = *v * 10 + (s[i] - '0');
	}
	return 1;
}

/* parse_rfc3339 - RFC 3339 5.6 date-time into a time_t (leap second 60 read as 59) */
static int parse_rfc3339(const char *s, time_t *out)
{
	static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	struct tm tm;
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0, leap;
	time_t t;

	if(strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
	   s[7] != '-' || !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	   !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
	   !digits(s + 17, 2, &sec))
		return 0;
	s += 19;
	if(*s == '.') {
		s++;
		if(*s < '0' || *s > '9')
			return 0;
		while(*s >= '0' && *s <= '9')
			s++;
	}
	if(*s == 'Z' || *s == 'z') {
		s++;
	} else if(*s == '+' || *s == '-') {
		sign = *s == '-' ? -1 : 1;
		if(!digits(s + 1, 2, &oh) || s[3] != ':' || !digits(s + 4, 2, &om) || oh > 23 ||
		   om > 59)
			return 0;
		s += 6;
	} else {
		return 0;
	}
	if(*s != '\0')
		return 0;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if(y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	   (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 60)
		return 0;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec == 60 ? 59 : sec;
	t = timegm(&tm);
	if(t == (time_t)-1)
		return 0;
	*out = t - (time_t)sign * (oh * 3600 + om * 60);
	return 1;
}

/* token_valid - 1..max characters from a token alphabet (kind, method) */
static int token_valid(const char *s, size_t max)
{
	size_t n = strlen(s), i;

	if(n == 0 || n > max)
		return 0;
	for(i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if(!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		     c == '_' || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

/* msgid_valid - "<left@right>" (RFC 5322 3.6.4) or the same without brackets */
static int msgid_valid(const char *s, size_t n)
{
	size_t i, at = 0;
	int bracketed = n > 0 && s[0] == '<';

	if(n < 3 || n > MSGID_MAX)
		return 0;
	if(bracketed && s[n - 1] != '>')
		return 0;
	for(i = bracketed; i < n - (size_t)bracketed; i++) {
		unsigned char c = (unsigned char)s[i];

		if(c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == '\\')
			return 0;
		if(c == '@') {
			if(at)
				return 0;
			at = i;
		}
	}
	return at > (size_t)bracketed && at + 1 < n - (size_t)bracketed;
}

/* email_parse - read and check the payload's fields */
static gw_rc email_parse(const json_t *payload, const char *from_address, const char *from_name,
                         struct email *em, struct gw_err *err)
{
	gw_rc rc = GW_OK;
	const json_t *from = NULL, *to = NULL;
	const char *date = NULL, *addr = NULL;

	memset(em, 0, sizeof(*em));
	if(!json_is_object(payload))
		return gw_err_set(err, GW_EINVAL, "payload", "email payload must be an object");

	rc = get_str(payload, "kind", "kind", 1, 1, &em->kind, NULL, err);
	if(rc)
		goto out;
	if(!token_valid(em->kind, KIND_MAX)) {
		rc = gw_err_set(err, GW_EINVAL, "kind", "kind must be a short token");
		goto out;
	}
	rc = get_str(payload, "message_id", "message_id", 1, 1, &em->msgid, &em->msgid_len, err);
	if(rc)
		goto out;
	if(!msgid_valid(em->msgid, em->msgid_len)) {
		rc = gw_err_set(err, GW_EINVAL, "message_id",
		                "message_id must look like <id@host>");
		goto out;
	}
	rc = get_str(payload, "date", "date", 1, 1, &date, NULL, err);
	if(rc)
		goto out;
	if(!parse_rfc3339(date, &em->date)) {
		rc = gw_err_set(err, GW_EINVAL, "date", "date must be an RFC 3339 date-time");
		goto out;
	}

	/* From: the provider's configured sender wins over the payload's */
	rc = get_obj(payload, "from", from_address == NULL, &from, err);
	if(rc)
		goto out;
	rc = get_str(from, "address", "from.address", from_address == NULL, 1, &addr, NULL, err);
	if(rc)
		goto out;
	rc = get_str(from, "name", "from.name", 0, 1, &em->from_name, &em->from_name_len, err);
	if(rc)
		goto out;
	if(from_address) {
		if(!smtp_header_safe(from_address)) {
			rc = gw_err_set(err, GW_EINVAL, "from_address",
			                "from_address must not contain CR, LF or NUL");
			goto out;
		}
		addr = from_address;
	}
	if(!addr_valid(addr)) {
		rc = gw_err_set(err, GW_EINVAL, from_address ? "from_address" : "from.address",
		                "sender is not a valid e-mail address");
		goto out;
	}
	em->from_addr = addr;
	if(from_name) {
		if(!smtp_header_safe(from_name)) {
			rc = gw_err_set(err, GW_EINVAL, "from_name",
			                "from_name must not contain CR, LF or NUL");
			goto out;
		}
		em->from_name = from_name;
		em->from_name_len = strlen(from_name);
	}

	rc = get_obj(payload, "to", 1, &to, err);
	if(rc)
		goto out;
	rc = get_str(to, "address", "to.address", 1, 1, &em->to_addr, NULL, err);
	if(rc)
		goto out;
	if(!addr_valid(em->to_addr)) {
		rc = gw_err_set(err, GW_EINVAL, "to.address",
		                "to.address is not a valid e-mail address");
		goto out;
	}
	rc = get_str(to, "name", "to.name", 0, 1, &em->to_name, &em->to_name_len, err);
	if(rc)
		goto out;

	rc = get_str(payload, "subject", "subject", 1, 1, &em->subject, &em->subject_len, err);
	if(rc)
		goto out;
	rc = get_str(payload, "text", "text", 0, 0, &em->text, &em->text_len, err);
	if(rc)
		goto out;
	rc = get_str(payload, "html", "html", 0, 0, &em->html, &em->html_len, err);
	if(rc)
		goto out;
	if(!em->text && !em->html) {
		rc = gw_err_set(err, GW_EINVAL, "text", "text or html is required");
		goto out;
	}
	rc = get_str(payload, "ics", "ics", 0, 0, &em->ics, &em->ics_len, err);
	if(rc)
		goto out;
	rc = get_str(payload, "ics_method", "ics_method", 0, 1, &em->method, NULL, err);
	if(rc)
		goto out;
	if(em->ics && !em->method)
		em->method = "REQUEST";
	if(em->method && !token_valid(em->method, 32)) {
		rc = gw_err_set(err, GW_EINVAL, "ics_method", "ics_method must be a method name");
		goto out;
	}
out:
	return rc;
}

/* qp_literal - may byte k of line [.., end) stand as itself in quoted-printable at column col */
static int qp_literal(const unsigned char *s, size_t k, size_t end, size_t col)
{
	unsigned char c = s[k];

	/* a '.' or "From " opening a line is encoded so no dot-stuffing or mbox quoting applies */
	if(col == 0 && (c == '.' || (c == 'F' && end - k >= 5 && !memcmp(s + k, "From ", 5))))
		return 0;
	if(c >= 33 && c <= 126 && c != '=')
		return 1;
	/* RFC 2045 6.7 (3): white space may not end an encoded line */
	return (c == ' ' || c == '\t') && k + 1 < end;
}

/* qp_plain - 1: a byte that stands as itself anywhere but at a line's start ('.' and 'F' are
 * looked at there), 2: white space, itself unless it ends the line, 0: encoded */
static const unsigned char qp_plain[256] = {
    /* 0x00 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0,
    /* 0x10 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x20 */ 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x30 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1,
    /* 0x40 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x50 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x60 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x70 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,
};

/* qp_run - how many bytes from k of line [.., end) stand as themselves at column col, one after
 * another, with no soft break among them (0: byte k needs qp_literal's look); stop: a byte that
 * ends the run (a template's mark begins with it), or -1. The bytes most text is made of, taken
 * a run at a time by table instead of each through qp_literal and its checks, with the same
 * output (test_smtp_mime.c's test_bodies holds random texts to the rules). */
static size_t qp_run(const unsigned char *s, size_t k, size_t end, size_t col, int stop)
{
	size_t r = 0, lim = QP_LINE - 1 - col;

	if(col == 0 && (s[k] == '.' || s[k] == 'F'))
		return 0;
	if(lim > end - k)
		lim = end - k;
	while(r < lim) {
		unsigned char c = s[k + r], t = qp_plain[c];

		if(t == 1 && c != stop)
			r++;
		else if(t == 2 && k + r + 1 < end)
			r++;
		else
			break;
	}
	return r;
}

/* line_end - the first CR or LF in [i, n), or n; *lf: where the next LF is (n: none), kept
 * between calls (SIZE_MAX at first) so that a text of CR line ends is not searched to its end
 * for an LF at every line */
static size_t line_end(const unsigned char *s, size_t i, size_t n, size_t *lf)
{
	const unsigned char *p;

	if(*lf == SIZE_MAX || *lf < i) {
		p = memchr(s + i, '\n', n - i);
		*lf = p ? (size_t)(p - s) : n;
	}
	p = memchr(s + i, '\r', *lf - i);
	return p ? (size_t)(p - s) : *lf;
}

/* A template (smtp_mime_template) holds MARK_BYTE and a fill's index where each row's own text
 * goes: never in a message otherwise (the bodies are quoted-printable or base64, and a template
 * refuses header text that holds one). */
#define MARK_BYTE '\x1e'
enum { FILL_TO, FILL_MSGID, FILL_TEXT, FILL_HTML, FILL_COUNT };

/* qp_mark - where a template's mark goes in quoted-printable text: mark (mlen bytes, NULL:
 * none) is replaced by MARK_BYTE and idx on a line of its own, with a soft break before it
 * and the text after it starting a new line, so a fill of any length (qp_fragment) can take
 * its place */
struct qp_mark {
	const char *mark;
	size_t mlen;
	char idx;
};

/* qp_encode - quoted-printable body (RFC 2045 6.7): line breaks (CRLF, LF or CR) become CRLF,
 * lines at most 76 characters with soft breaks, every line ends with CRLF (with soft_end, the
 * last ends with a soft break instead: a fragment that text at column 0 follows). m: the
 * template's mark, or NULL */
static void qp_encode_m(struct mbuf *b, const char *text, size_t n, const struct qp_mark *m,
                        int soft_end)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)text;
	size_t i = 0, lf = SIZE_MAX;

	/* each output line is put together here and appended whole: one mb_add per line, not
	 * one per character (which was a sixth of the provider's CPU per message) */
	char line[QP_LINE + 8];

	while(i < n) {
		size_t end = line_end(s, i, n, &lf), next, k, col = 0;

		if(end + 1 < n && s[end] == '\r' && s[end + 1] == '\n')
			next = end + 2;
		else
			next = end < n ? end + 1 : end;
		for(k = i; k < end; k++) {
			size_t run = qp_run(s, k, end, col, m ? (unsigned char)m->mark[0] : -1);
			int lit;

			if(run) {
				memcpy(line + col, s + k, run);
				col += run;
				k += run - 1;
				continue;
			}
			if(m && s[k] == (unsigned char)m->mark[0] && end - k >= m->mlen &&
			   !memcmp(s + k, m->mark, m->mlen)) {
				if(col) {
					memcpy(line + col, "=\r\n", 3);
					mb_add(b, line, col + 3);
					col = 0;
				}
				line[0] = MARK_BYTE;
				line[1] = m->idx;
				mb_add(b, line, 2);
				k += m->mlen - 1;
				continue;
			}
			lit = qp_literal(s, k, end, col);
			if(col + (lit ? 1 : 3) > QP_LINE - 1) {
				memcpy(line + col, "=\r\n", 3);
				mb_add(b, line, col + 3);
				col = 0;
				lit = qp_literal(s, k, end, col);
			}
			if(lit) {
				line[col++] = (char)s[k];
			} else {
				line[col++] = '=';
				line[col++] = hex[s[k] >> 4];
				line[col++] = hex[s[k] & 15];
			}
		}
		if(soft_end && next >= n) {
			memcpy(line + col, "=\r\n", 3);
			mb_add(b, line, col + 3);
		} else {
			memcpy(line + col, "\r\n", 2);
			mb_add(b, line, col + 2);
		}
		i = next;
	}
}


/* b64_lines - base64 (RFC 2045 6.8) in lines of 76 characters, each ending with CRLF */
static void b64_lines(struct mbuf *b, const char *data, size_t n)
{
	unsigned char line[B64_CHUNK / 3 * 4 + 1];
	size_t i;

	for(i = 0; i < n; i += B64_CHUNK) {
		size_t take = n - i < B64_CHUNK ? n - i : B64_CHUNK;
		int len = EVP_EncodeBlock(line, (const unsigned char *)data + i, (int)take);

		mb_add(b, line, (size_t)len);
		mb_add(b, "\r\n", 2);
	}
}

/* crlf_normalize - text with every line break as CRLF (RFC 5545 3.1 wants CRLF) */
static void crlf_normalize(struct mbuf *b, const char *s, size_t n)
{
	size_t i, start = 0;

	for(i = 0; i < n; i++) {
		if(s[i] != '\r' && s[i] != '\n')
			continue;
		mb_add(b, s + start, i - start);
		mb_add(b, "\r\n", 2);
		if(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
			i++;
		start = i + 1;
	}
	mb_add(b, s + start, n - start);
}

/* make_boundary - "=_ord_" + 32 hex digits of SHA-256(message id, tag, counter): the first that
 * occurs in none of the bodies. "=_" never appears in quoted-printable or base64 output, so the
 * first candidate is taken; the check keeps it so whatever the encoders become. */
static gw_rc make_boundary(const struct email *em, const char *tag,
                           const struct mbuf *const *bodies, size_t nbodies,
                           char out[BOUNDARY_SIZE], struct gw_err *err)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	char seed[MSGID_MAX + 64];
	unsigned int mdlen, counter;
	size_t i;
	int n;

	for(counter = 0; counter < 1000; counter++) {
		int clash = 0;

		n = snprintf(seed, sizeof(seed), "%.*s|%s|%u", (int)em->msgid_len, em->msgid, tag,
		             counter);
		if(n < 0 || !EVP_Digest(seed, (size_t)n, md, &mdlen, EVP_sha256(), NULL))
			return gw_err_set(err, GW_ENOMEM, "", "cannot hash the boundary seed");
		memcpy(out, "=_ord_", 6);
		for(i = 0; i < BOUNDARY_HEX / 2; i++) {
			out[6 + 2 * i] = hex[md[i] >> 4];
			out[6 + 2 * i + 1] = hex[md[i] & 15];
		}
		out[BOUNDARY_SIZE - 1] = '\0';
		for(i = 0; i < nbodies && !clash; i++)
			if(bodies[i]->len &&
			   memmem(bodies[i]->p, bodies[i]->len, out, BOUNDARY_SIZE - 1))
				clash = 1;
		if(!clash)
			return GW_OK;
	}
	return gw_err_set(err, GW_EINVAL, "", "no MIME boundary free of the content");
}

/* put_leaf - one body part: its header lines, the blank line and the encoded body */
static void put_leaf(struct mbuf *m, const char *ctype, const char *cte, const char *extra,
                     const struct mbuf *body)
{
	mb_fmt(m, "Content-Type: %s\r\nContent-Transfer-Encoding: %s\r\n%s\r\n", ctype, cte,
	       extra ? extra : "");
	if(body->len)
		mb_add(m, body->p, body->len);
	else
		mb_add(m, "\r\n", 2);
}

/* put_alternative - the text entity: multipart/alternative (RFC 2046 5.1.4, plain first, the
 * preferred html last) or the one part the payload has */
static void put_alternative(struct mbuf *m, const struct email *em, const struct mbuf *text,
                            const struct mbuf *html, const char *bnd)
{
	static const char plain_type[] = "text/plain; charset=UTF-8";
	static const char html_type[] = "text/html; charset=UTF-8";

	if(em->text && em->html) {
		mb_fmt(m,
		       "Content-Type: multipart/alternative;\r\n boundary=\"%s\"\r\n\r\n--%s\r\n",
		       bnd, bnd);
		put_leaf(m, plain_type, "quoted-printable", NULL, text);
		mb_fmt(m, "--%s\r\n", bnd);
		put_leaf(m, html_type, "quoted-printable", NULL, html);
		mb_fmt(m, "--%s--\r\n", bnd);
	} else if(em->text) {
		put_leaf(m, plain_type, "quoted-printable", NULL, text);
	} else {
		put_leaf(m, html_type, "quoted-printable", NULL, html);
	}
}

/* put_date - "Date: Tue, 01 Dec 2026 09:00:00 +0000" (RFC 5322 3.3), always in UTC */
static gw_rc put_date(struct mbuf *m, time_t t, struct gw_err *err)
{
	static const char *const days[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;

	if(!gmtime_r(&t, &tm) || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
	   tm.tm_mon > 11)
		return gw_err_set(err, GW_EINVAL, "date", "date is out of range");
	mb_fmt(m, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday], tm.tm_mday,
	       months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return GW_OK;
}

/* build - the message of a payload; with marks (smtp_mime_template: [0] the text's, [1] the
 * HTML's), a template: To and Message-ID become marks, and so does each mark in the bodies */
static gw_rc build(const json_t *payload, const char *from_address, const char *from_name,
                   const struct qp_mark *marks, char **out, size_t *len, struct gw_err *err)
{
	gw_rc rc = GW_OK;
	struct email em;
	struct mbuf msg = {0}, text = {0}, html = {0}, ics = {0}, ics_crlf = {0};
	const struct mbuf *bodies[3];
	char alt_bnd[BOUNDARY_SIZE], mix_bnd[BOUNDARY_SIZE], method[33];
	size_t i;

	*out = NULL;
	if(len)
		*len = 0;
	rc = email_parse(payload, from_address, from_name, &em, err);
	if(rc)
		goto out;
	if(marks && (memchr(em.subject, MARK_BYTE, em.subject_len) ||
	             (em.from_name && memchr(em.from_name, MARK_BYTE, em.from_name_len)))) {
		rc = gw_err_set(err, GW_EINVAL, "subject", "the header text holds a template's mark");
		goto out;
	}

	/* bodies first: the boundaries are checked against them */
	if(em.text)
		qp_encode_m(&text, em.text, em.text_len, marks ? &marks[0] : NULL, 0);
	if(em.html)
		qp_encode_m(&html, em.html, em.html_len, marks ? &marks[1] : NULL, 0);
	if(em.ics) {
		crlf_normalize(&ics_crlf, em.ics, em.ics_len);
		if(!ics_crlf.oom)
			b64_lines(&ics, ics_crlf.p ? ics_crlf.p : "", ics_crlf.len);
	}
	if(text.oom || html.oom || ics.oom || ics_crlf.oom) {
		rc = gw_err_set(err, GW_ENOMEM, "", "out of memory building the message");
		goto out;
	}
	bodies[0] = &text;
	bodies[1] = &html;
	bodies[2] = &ics;
	rc = make_boundary(&em, "alternative", bodies, 3, alt_bnd, err);
	if(rc)
		goto out;
	rc = make_boundary(&em, "mixed", bodies, 3, mix_bnd, err);
	if(rc)
		goto out;

	/* RFC 5322 3.6: origination date, originator, destination, identification, subject */
	if(marks)
		mb_fmt(&msg, "%c%c", MARK_BYTE, '0' + FILL_MSGID);
	else if(em.msgid[0] == '<')
		mb_fmt(&msg, "Message-ID: %s\r\n", em.msgid);
	else
		mb_fmt(&msg, "Message-ID: <%s>\r\n", em.msgid);
	rc = put_date(&msg, em.date, err);
	if(rc)
		goto out;
	hdr_address(&msg, "From", em.from_name, em.from_name_len, em.from_addr);
	if(marks)
		mb_fmt(&msg, "%c%c", MARK_BYTE, '0' + FILL_TO);
	else
		hdr_address(&msg, "To", em.to_name, em.to_name_len, em.to_addr);
	hdr_begin(&msg, "Subject");
	hdr_unstructured(&msg, em.subject, em.subject_len);
	hdr_end(&msg);
	mb_str(&msg, "MIME-Version: 1.0\r\n");
	mb_fmt(&msg, "X-Ordinatus-Kind: %s\r\n", em.kind);

	if(em.ics) {
		for(i = 0; em.method[i] && i + 1 < sizeof(method); i++)
			method[i] = (char)(em.method[i] >= 'a' && em.method[i] <= 'z'
			                       ? em.method[i] - 'a' + 'A'
			                       : em.method[i]);
		method[i] = '\0';
		mb_fmt(&msg, "Content-Type: multipart/mixed;\r\n boundary=\"%s\"\r\n\r\n--%s\r\n",
		       mix_bnd, mix_bnd);
		put_alternative(&msg, &em, &text, &html, alt_bnd);
		mb_fmt(&msg, "--%s\r\n", mix_bnd);
		mb_fmt(&msg, "Content-Type: text/calendar; charset=UTF-8; method=%s\r\n"
		             "Content-Transfer-Encoding: base64\r\n"
		             "Content-Disposition: attachment; filename=\"invite.ics\"\r\n\r\n",
		       method);
		if(ics.len)
			mb_add(&msg, ics.p, ics.len);
		else
			mb_add(&msg, "\r\n", 2);
		mb_fmt(&msg, "--%s--\r\n", mix_bnd);
	} else {
		put_alternative(&msg, &em, &text, &html, alt_bnd);
	}
	if(msg.oom) {
		rc = gw_err_set(err, GW_ENOMEM, "", "out of memory building the message");
		goto out;
	}
	*out = msg.p;
	if(len)
		*len = msg.len;
	msg.p = NULL;
out:
	free(msg.p);
	free(text.p);
	free(html.p);
	free(ics.p);
	free(ics_crlf.p);
	return rc;
}

/* smtp_mime_build - the full RFC 5322 message for an email payload */
gw_rc smtp_mime_build(const json_t *payload, const char *from_address, const char *from_name,
                      char **out, size_t *len, struct gw_err *err)
{
	return build(payload, from_address, from_name, NULL, out, len, err);
}

/* smtp_mime_template - the message shared by a fan-out's rows, with marks for their fills */
gw_rc smtp_mime_template(const json_t *payload, const char *from_address, const char *from_name,
                         const char *text_mark, const char *html_mark, char **out, size_t *len,
                         struct gw_err *err)
{
	struct qp_mark marks[2] = {{text_mark, strlen(text_mark), '0' + FILL_TEXT},
	                           {html_mark, strlen(html_mark), '0' + FILL_HTML}};
	size_t i, n, seen = 0;
	gw_rc rc;

	if(!marks[0].mlen || !marks[1].mlen)
		return gw_err_set(err, GW_EINVAL, "", "a template needs its marks");
	rc = build(payload, from_address, from_name, marks, out, &n, err);
	if(rc)
		return rc;
	/* every MARK_BYTE is one this build put there, followed by a fill's index (a payload
	 * whose header text held one would make it ambiguous: refused) */
	for(i = 0; i < n; i++) {
		if((*out)[i] != MARK_BYTE)
			continue;
		if(i + 1 >= n || (*out)[i + 1] < '0' || (*out)[i + 1] >= '0' + FILL_COUNT) {
			free(*out);
			*out = NULL;
			return gw_err_set(err, GW_EINVAL, "", "the payload holds a template's mark");
		}
		seen |= 1u << ((*out)[i + 1] - '0');
		i++;
	}
	if(!(seen & (1u << FILL_TO)) || !(seen & (1u << FILL_MSGID))) {
		free(*out);
		*out = NULL;
		return gw_err_set(err, GW_EINVAL, "", "the template lacks its To or Message-ID");
	}
	if(len)
		*len = n;
	return GW_OK;
}

/* fill_add - one fill: its length in decimal, ':', its bytes */
static void fill_add(struct mbuf *f, const struct mbuf *v)
{
	mb_fmt(f, "%zu:", v->len);
	if(v->len)
		mb_add(f, v->p, v->len);
}

/* smtp_mime_fills - one row's fills of a template */
gw_rc smtp_mime_fills(const char *to_address, const char *to_name, const char *message_id,
                      const char *text_name, const char *html_name, char **out,
                      struct gw_err *err)
{
	struct mbuf v[FILL_COUNT] = {{0}}, f = {0};
	size_t nlen = to_name ? strlen(to_name) : 0;
	gw_rc rc = GW_OK;
	int k;

	*out = NULL;
	if(!to_address || !addr_valid(to_address))
		return gw_err_set(err, GW_EINVAL, "to.address", "to.address is not a valid e-mail "
		                  "address");
	if(to_name && !smtp_header_safe(to_name))
		return gw_err_set(err, GW_EINVAL, "to.name", "to.name must not contain CR, LF or "
		                  "NUL");
	if(!message_id || !msgid_valid(message_id, strlen(message_id)))
		return gw_err_set(err, GW_EINVAL, "message_id", "message_id must look like "
		                  "<id@host>");
	hdr_address(&v[FILL_TO], "To", to_name, nlen, to_address);
	mb_fmt(&v[FILL_MSGID], message_id[0] == '<' ? "Message-ID: %s\r\n" : "Message-ID: <%s>\r\n",
	       message_id);
	if(text_name && *text_name)
		qp_encode_m(&v[FILL_TEXT], text_name, strlen(text_name), NULL, 1);
	if(html_name && *html_name)
		qp_encode_m(&v[FILL_HTML], html_name, strlen(html_name), NULL, 1);
	for(k = 0; k < FILL_COUNT; k++)
		fill_add(&f, &v[k]);
	for(k = 0; k < FILL_COUNT; k++) {
		if(v[k].oom)
			f.oom = 1;
		free(v[k].p);
	}
	if(f.oom) {
		free(f.p);
		return gw_err_set(err, GW_ENOMEM, "", "out of memory building the fills");
	}
	*out = f.p;
	return rc;
}

/* smtp_mime_expand - a template with one row's fills in place of its marks */
gw_rc smtp_mime_expand(const char *tpl, const char *fills, char **out, size_t *len)
{
	const char *fp[FILL_COUNT], *p = fills, *m, *at;
	size_t fl[FILL_COUNT], total, tlen = strlen(tpl);
	char *o, *end;
	int k;

	*out = NULL;
	*len = 0;
	for(k = 0; k < FILL_COUNT; k++) {
		unsigned long long n;

		errno = 0;
		n = strtoull(p, &end, 10);
		if(errno || end == p || *end != ':' || n > strlen(end + 1))
			return GW_EINVAL;
		fp[k] = end + 1;
		fl[k] = (size_t)n;
		p = end + 1 + n;
	}
	if(*p)
		return GW_EINVAL;
	/* the length first: every mark is two bytes of the template */
	total = tlen;
	for(at = tpl; (m = memchr(at, MARK_BYTE, tlen - (size_t)(at - tpl))) != NULL; at = m + 2) {
		if(m + 1 >= tpl + tlen || m[1] < '0' || m[1] >= '0' + FILL_COUNT)
			return GW_EINVAL;
		total = total - 2 + fl[m[1] - '0'];
	}
	o = malloc(total + 1);
	if(!o)
		return GW_ENOMEM;
	*out = o;
	for(at = tpl; (m = memchr(at, MARK_BYTE, tlen - (size_t)(at - tpl))) != NULL; at = m + 2) {
		memcpy(o, at, (size_t)(m - at));
		o += m - at;
		memcpy(o, fp[m[1] - '0'], fl[m[1] - '0']);
		o += fl[m[1] - '0'];
	}
	memcpy(o, at, tlen - (size_t)(at - tpl));
	o += tlen - (size_t)(at - tpl);
	*o = '\0';
	*len = total;
	return GW_OK;
}
