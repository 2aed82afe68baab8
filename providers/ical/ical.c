/*
 * ical.c - iCalendar objects (RFC 5545) and iTIP methods (RFC 5546) built with libical.
 *
 * Purpose: render the .ics attached to confirmation and cancellation emails, the body of a
 * CalDAV PUT and the trainer's feed. The text is produced by libical
 * (icalcomponent_as_ical_string_r), which escapes TEXT values (RFC 5545 3.3.11), quotes and
 * RFC 6868-encodes parameter values, folds lines at 75 octets without splitting a UTF-8
 * sequence (3.1) and ends every line with CRLF. Nothing here writes iCalendar text by hand.
 *
 * What libical does not protect is checked before anything is built: calendar addresses
 * (mailto: URIs) and common names go out verbatim, so a CR or LF there would inject a content
 * line; those are refused with GW_EINVAL and err->field naming the field.
 *
 * Entry points: ical_build(), ical_name_ok(), ical_email_ok(), ical_event_key().
 * Threading: reentrant; no state of its own. libical's UTC zone is a shared singleton that
 * tz_init() warms before threads start.
 */
#include "ical.h"

#include <libical/ical.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ICAL_PRODID "-//Ordinatus//Gateway//EN"

/* Latest instant accepted: 9999-12-31T23:59:59Z, the end of the four-digit years of RFC 5545. */
#define ICAL_MAX_TIME ((time_t)253402300799)

#define ICAL_MAX_EMAIL 254 /* RFC 5321 4.5.3.1.3 path limit less the angle brackets */

enum text_kind {
	TEXT_LINE,     /* one line: UID, names; no control characters at all */
	TEXT_MULTILINE /* SUMMARY, DESCRIPTION, LOCATION: TAB, CR and LF allowed (escaped) */
};

/* utf8_ok - is s well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF) */
static bool utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while(*p) {
		unsigned c = *p;
		unsigned cp;
		int n, i;

		if(c < 0x80) {
			p++;
			continue;
		}
		if(c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if(c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if(c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		for(i = 1; i <= n; i++) {
			if((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		   (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += n + 1;
	}
	return true;
}

/* text_ok - may s go into a TEXT value of the given kind (UTF-8, no stray control characters) */
static bool text_ok(const char *s, enum text_kind kind)
{
	const unsigned char *p;

	for(p = (const unsigned char *)s; *p; p++) {
		if(*p == 0x7f)
			return false;
		if(*p >= 0x20)
			continue;
		if(kind == TEXT_MULTILINE && (*p == '\t' || *p == '\n' || *p == '\r'))
			continue;
		return false;
	}
	return utf8_ok(s);
}

/* ical_name_ok - may s be a CN parameter value */
bool ical_name_ok(const char *s)
{
	const char *p;

	if(!s || !*s || !text_ok(s, TEXT_LINE))
		return false;
	/* libical 3.0 writes DQUOTE as ^' (RFC 6868) but leaves '^' itself alone, so "^n", "^'"
	 * and "^^" in a name would be read back as something else. */
	for(p = strchr(s, '^'); p; p = strchr(p + 1, '^'))
		if(p[1] == 'n' || p[1] == 'N' || p[1] == '\'' || p[1] == '^')
			return false;
	return true;
}

/* ical_email_ok - may s follow "mailto:" in a CAL-ADDRESS (RFC 5322 dot-atom@dot-atom) */
bool ical_email_ok(const char *s)
{
	const char *at;
	const unsigned char *p;
	size_t len;

	if(!s)
		return false;
	len = strlen(s);
	at = strchr(s, '@');
	if(len == 0 || len > ICAL_MAX_EMAIL || !at || at == s || at[1] == '\0' ||
	   strchr(at + 1, '@'))
		return false;
	for(p = (const unsigned char *)s; *p; p++) {
		/* atext of RFC 5322 3.2.3 plus '.' and '@': no space, control or specials */
		if(*p <= 0x20 || *p >= 0x7f || strchr("\"(),:;<>[\\]", *p))
			return false;
	}
	return true;
}

/* utc_time - libical UTC date-time of t (written with a trailing Z) */
static struct icaltimetype utc_time(time_t t)
{
	return icaltime_from_timet_with_zone(t, 0, icaltimezone_get_utc_timezone());
}

/* add_prop - add p to c, or report that libical could not allocate it */
static gw_rc add_prop(icalcomponent *c, icalproperty *p, struct gw_err *err)
{
	if(!p)
		return gw_err_set(err, GW_ENOMEM, "", "out of memory building iCalendar");
	icalcomponent_add_property(c, p);
	return GW_OK;
}

/* add_param - add a to p; on failure frees p (nothing else owns it yet) */
static gw_rc add_param(icalproperty **p, icalparameter *a, struct gw_err *err)
{
	if(!*p) {
		if(a)
			icalparameter_free(a);
		return GW_OK; /* add_prop reports the missing property */
	}
	if(!a) {
		icalproperty_free(*p);
		*p = NULL;
		return gw_err_set(err, GW_ENOMEM, "", "out of memory building iCalendar");
	}
	icalproperty_add_parameter(*p, a);
	return GW_OK;
}

/* cal_address - "mailto:" email into a malloc'd string, or NULL */
static char *cal_address(const char *email)
{
	static const char scheme[] = "mailto:";
	size_t n = strlen(email);
	char *s = malloc(sizeof(scheme) + n);

	if(!s)
		return NULL;
	memcpy(s, scheme, sizeof(scheme) - 1);
	memcpy(s + sizeof(scheme) - 1, email, n + 1);
	return s;
}

/* check_event - refuse what libical would not escape or what RFC 5545 does not allow */
static gw_rc check_event(const struct ical_event *ev, size_t i, struct gw_err *err)
{
	if(!ev->uid || !*ev->uid || !text_ok(ev->uid, TEXT_LINE))
		return gw_err_set(err, GW_EINVAL, "uid", "event %zu: missing or bad UID", i);
	if(ev->sequence < 0)
		return gw_err_set(err, GW_EINVAL, "sequence", "event %zu: negative SEQUENCE", i);
	if(ev->start < 0 || ev->start > ICAL_MAX_TIME || ev->end < 0 || ev->end > ICAL_MAX_TIME ||
	   ev->end <= ev->start)
		return gw_err_set(err, GW_EINVAL, "start", "event %zu: end must follow start", i);
	if(ev->dtstamp < 0 || ev->dtstamp > ICAL_MAX_TIME)
		return gw_err_set(err, GW_EINVAL, "dtstamp", "event %zu: bad DTSTAMP", i);
	if(!ev->summary || !text_ok(ev->summary, TEXT_MULTILINE))
		return gw_err_set(err, GW_EINVAL, "summary", "event %zu: missing or bad summary", i);
	if(ev->description && !text_ok(ev->description, TEXT_MULTILINE))
		return gw_err_set(err, GW_EINVAL, "description", "event %zu: bad description", i);
	if(ev->location && !text_ok(ev->location, TEXT_MULTILINE))
		return gw_err_set(err, GW_EINVAL, "location", "event %zu: bad location", i);
	if(!ical_email_ok(ev->organizer_email))
		return gw_err_set(err, GW_EINVAL, "organizer_email",
		                  "event %zu: organizer e-mail is not a plain address", i);
	if(ev->organizer_name && *ev->organizer_name && !ical_name_ok(ev->organizer_name))
		return gw_err_set(err, GW_EINVAL, "organizer_name",
		                  "event %zu: organizer name has control characters", i);
	if(ev->attendee_email && !ical_email_ok(ev->attendee_email))
		return gw_err_set(err, GW_EINVAL, "attendee_email",
		                  "event %zu: attendee e-mail is not a plain address", i);
	if(ev->attendee_name && *ev->attendee_name && !ical_name_ok(ev->attendee_name))
		return gw_err_set(err, GW_EINVAL, "attendee_name",
		                  "event %zu: attendee name has control characters", i);
	return GW_OK;
}

/* add_person - ORGANIZER or ATTENDEE: mailto: value, CN when named, iTIP parameters for one */
static gw_rc add_person(icalcomponent *ve, bool attendee, const char *email, const char *name,
                        struct gw_err *err)
{
	gw_rc rc = GW_OK;
	char *addr = NULL;
	icalproperty *p = NULL;

	addr = cal_address(email);
	if(!addr) {
		rc = gw_err_set(err, GW_ENOMEM, "", "out of memory building iCalendar");
		goto out;
	}
	p = attendee ? icalproperty_new_attendee(addr) : icalproperty_new_organizer(addr);
	if(name && *name) {
		rc = add_param(&p, icalparameter_new_cn(name), err);
		if(rc)
			goto out;
	}
	if(attendee) {
		/* RFC 5546 3.2.2: the customer is a required participant who has not answered; no
		 * reply is wanted, the booking is already settled. */
		rc = add_param(&p, icalparameter_new_role(ICAL_ROLE_REQPARTICIPANT), err);
		if(rc)
			goto out;
		rc = add_param(&p, icalparameter_new_partstat(ICAL_PARTSTAT_NEEDSACTION), err);
		if(rc)
			goto out;
		rc = add_param(&p, icalparameter_new_rsvp(ICAL_RSVP_FALSE), err);
		if(rc)
			goto out;
	}
	rc = add_prop(ve, p, err);
out:
	free(addr);
	return rc;
}

/* add_event - one VEVENT (RFC 5545 3.6.1) into cal */
static gw_rc add_event(icalcomponent *cal, const struct ical_event *ev, bool cancel,
                       struct gw_err *err)
{
	gw_rc rc = GW_OK;
	icalcomponent *ve = NULL;

	ve = icalcomponent_new_vevent();
	if(!ve) {
		rc = gw_err_set(err, GW_ENOMEM, "", "out of memory building iCalendar");
		goto out;
	}
	rc = add_prop(ve, icalproperty_new_uid(ev->uid), err);
	if(rc)
		goto out;
	rc = add_prop(ve, icalproperty_new_sequence(ev->sequence), err);
	if(rc)
		goto out;
	rc = add_prop(ve, icalproperty_new_dtstamp(utc_time(ev->dtstamp)), err);
	if(rc)
		goto out;
	rc = add_prop(ve, icalproperty_new_dtstart(utc_time(ev->start)), err);
	if(rc)
		goto out;
	rc = add_prop(ve, icalproperty_new_dtend(utc_time(ev->end)), err);
	if(rc)
		goto out;
	rc = add_prop(ve, icalproperty_new_summary(ev->summary), err);
	if(rc)
		goto out;
	if(ev->description) {
		rc = add_prop(ve, icalproperty_new_description(ev->description), err);
		if(rc)
			goto out;
	}
	if(ev->location && *ev->location) {
		rc = add_prop(ve, icalproperty_new_location(ev->location), err);
		if(rc)
			goto out;
	}
	rc = add_person(ve, false, ev->organizer_email, ev->organizer_name, err);
	if(rc)
		goto out;
	if(ev->attendee_email) {
		rc = add_person(ve, true, ev->attendee_email, ev->attendee_name, err);
		if(rc)
			goto out;
	}
	/* RFC 5546 3.2.5: a CANCEL carries STATUS:CANCELLED */
	rc = add_prop(ve,
	              icalproperty_new_status(cancel || ev->cancelled ? ICAL_STATUS_CANCELLED
	                                                              : ICAL_STATUS_CONFIRMED),
	              err);
	if(rc)
		goto out;
	icalcomponent_add_component(cal, ve);
	ve = NULL;
out:
	if(ve)
		icalcomponent_free(ve);
	return rc;
}

/* ical_build - VCALENDAR with METHOD and n VEVENTs, as CRLF text */
gw_rc ical_build(const struct ical_event *events, size_t n, const char *method, char **out,
                 struct gw_err *err)
{
	gw_rc rc = GW_OK;
	icalcomponent *cal = NULL;
	char *text = NULL;
	icalproperty_method m = ICAL_METHOD_NONE;
	size_t i;

	if(!out)
		return gw_err_set(err, GW_EINVAL, "", "no output pointer");
	*out = NULL;
	if(n && !events)
		return gw_err_set(err, GW_EINVAL, "events", "no events");
	if(method) {
		if(strcmp(method, "REQUEST") == 0)
			m = ICAL_METHOD_REQUEST;
		else if(strcmp(method, "CANCEL") == 0)
			m = ICAL_METHOD_CANCEL;
		else if(strcmp(method, "PUBLISH") == 0)
			m = ICAL_METHOD_PUBLISH;
		else
			return gw_err_set(err, GW_EINVAL, "method", "unsupported iTIP method");
	}
	for(i = 0; i < n; i++) {
		rc = check_event(&events[i], i, err);
		if(rc)
			goto out;
	}

	cal = icalcomponent_new_vcalendar();
	if(!cal) {
		rc = gw_err_set(err, GW_ENOMEM, "", "out of memory building iCalendar");
		goto out;
	}
	rc = add_prop(cal, icalproperty_new_prodid(ICAL_PRODID), err);
	if(rc)
		goto out;
	rc = add_prop(cal, icalproperty_new_version("2.0"), err);
	if(rc)
		goto out;
	rc = add_prop(cal, icalproperty_new_calscale("GREGORIAN"), err);
	if(rc)
		goto out;
	if(m != ICAL_METHOD_NONE) {
		rc = add_prop(cal, icalproperty_new_method(m), err);
		if(rc)
			goto out;
	}
	for(i = 0; i < n; i++) {
		rc = add_event(cal, &events[i], m == ICAL_METHOD_CANCEL, err);
		if(rc)
			goto out;
	}

	text = icalcomponent_as_ical_string_r(cal);
	if(!text) {
		rc = gw_err_set(err, GW_ENOMEM, "", "out of memory building iCalendar");
		gw_err_cause(err, "libical: %s", icalerror_strerror(icalerrno));
		goto out;
	}
	/* Hand back memory from our own malloc, whatever allocator libical was built with. */
	*out = strdup(text);
	if(!*out)
		rc = gw_err_set(err, GW_ENOMEM, "", "out of memory building iCalendar");
out:
	if(text)
		icalmemory_free_buffer(text);
	if(cal)
		icalcomponent_free(cal);
	return rc;
}

/* ical_event_key - base32hex of SHA-256("ordinatus-gcal:org:booking:uid") */
void ical_event_key(int64_t org, int64_t booking, const char *uid, char out[ICAL_EVENT_KEY_LEN])
{
	static const char b32hex[] = "0123456789abcdefghijklmnopqrstuv";
	unsigned char md[32];
	unsigned int mdlen = 0;
	char in[400];
	int n, bits = 0, k = 0;
	unsigned int acc = 0;
	size_t i;

	n = snprintf(in, sizeof(in), "ordinatus-gcal:%lld:%lld:%s", (long long)org,
	             (long long)booking, uid ? uid : "");
	if(n < 0 || (size_t)n >= sizeof(in))
		n = (int)strlen(in);
	EVP_Digest(in, (size_t)n, md, &mdlen, EVP_sha256(), NULL);
	for(i = 0; i < sizeof(md); i++) {
		acc = (acc << 8) | md[i];
		bits += 8;
		while(bits >= 5) {
			out[k++] = b32hex[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if(bits > 0)
		out[k++] = b32hex[(acc << (5 - bits)) & 31];
	out[k] = '\0';
}
