/*
 * jsonv.c - request field validation over jansson.
 *
 * Entry points: jv_parse(), jv_string(), jv_int(), jv_bool(), jv_time(), jv_email(), jv_skills(),
 * jv_only(), jv_check_text(), jv_email_valid(). Threading: reentrant.
 */
#include "jsonv.h"

#include <ctype.h>
#include <string.h>

#include "timefmt.h"

/* jv_parse - parse a body into an object */
gw_rc jv_parse(const char *body, size_t len, json_t **out, struct gw_err *err)
{
	json_error_t jerr;
	json_t *v;

	*out = NULL;
	if(!body || len == 0)
		return gw_err_set(err, GW_EJSON, "", "the request body must be a JSON object");
	v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if(!v)
		return gw_err_set(err, GW_EJSON, "", "invalid JSON at line %d column %d: %s",
		                  jerr.line, jerr.column, jerr.text);
	if(!json_is_object(v)) {
		json_decref(v);
		return gw_err_set(err, GW_EJSON, "", "the request body must be a JSON object");
	}
	*out = v;
	return GW_OK;
}

/* jv_check_text - no control characters */
bool jv_check_text(const char *s, int flags)
{
	const unsigned char *p;

	for(p = (const unsigned char *)s; *p; p++) {
		if(*p == 0x7f)
			return false;
		if(*p < 0x20) {
			if((flags & JV_MULTILINE) && (*p == '\n' || *p == '\r' || *p == '\t'))
				continue;
			return false;
		}
	}
	return true;
}

/* absent - handle a missing or null field */
static gw_rc absent(const char *field, bool required, bool *present, struct gw_err *err)
{
	if(present)
		*present = false;
	if(required)
		return gw_err_set(err, GW_EINVAL, field, "%s is required", field);
	return GW_OK;
}

/* jv_string - bounded string field */
gw_rc jv_string(const json_t *obj, const char *field, bool required, size_t minlen,
                size_t maxlen, int flags, const char **out, bool *present, struct gw_err *err)
{
	const json_t *v = json_object_get(obj, field);
	size_t len;

	if(!v || json_is_null(v))
		return absent(field, required, present, err);
	if(!json_is_string(v))
		return gw_err_set(err, GW_EINVAL, field, "%s must be a string", field);
	len = json_string_length(v);
	if(strlen(json_string_value(v)) != len)
		return gw_err_set(err, GW_EINVAL, field, "%s must not contain NUL", field);
	if(len < minlen || len > maxlen)
		return gw_err_set(err, GW_EINVAL, field, "%s must be %zu to %zu bytes long", field,
		                  minlen, maxlen);
	if(!jv_check_text(json_string_value(v), flags))
		return gw_err_set(err, GW_EINVAL, field, "%s must not contain control characters",
		                  field);
	*out = json_string_value(v);
	if(present)
		*present = true;
	return GW_OK;
}

/* jv_int - bounded integer field */
gw_rc jv_int(const json_t *obj, const char *field, bool required, long long lo, long long hi,
             long long *out, bool *present, struct gw_err *err)
{
	const json_t *v = json_object_get(obj, field);
	long long x;

	if(!v || json_is_null(v))
		return absent(field, required, present, err);
	if(!json_is_integer(v))
		return gw_err_set(err, GW_EINVAL, field, "%s must be an integer", field);
	x = json_integer_value(v);
	if(x < lo || x > hi)
		return gw_err_set(err, GW_EINVAL, field, "%s must be between %lld and %lld", field,
		                  lo, hi);
	*out = x;
	if(present)
		*present = true;
	return GW_OK;
}

/* jv_time - RFC 3339 instant field */
gw_rc jv_time(const json_t *obj, const char *field, bool required, time_t *out, bool *present,
              struct gw_err *err)
{
	const json_t *v = json_object_get(obj, field);

	if(!v || json_is_null(v))
		return absent(field, required, present, err);
	if(!json_is_string(v) || json_string_length(v) > 64 ||
	   timefmt_parse(json_string_value(v), out))
		return gw_err_set(err, GW_EINVAL, field, "%s must be " TIMEFMT_WANTED, field);
	if(present)
		*present = true;
	return GW_OK;
}

/* jv_bool - boolean field */
gw_rc jv_bool(const json_t *obj, const char *field, bool required, bool *out, bool *present,
              struct gw_err *err)
{
	const json_t *v = json_object_get(obj, field);

	if(!v || json_is_null(v))
		return absent(field, required, present, err);
	if(!json_is_boolean(v))
		return gw_err_set(err, GW_EINVAL, field, "%s must be true or false", field);
	*out = json_is_true(v);
	if(present)
		*present = true;
	return GW_OK;
}

/* jv_email_valid - plausible addr-spec: local@domain, printable, no specials that break headers */
bool jv_email_valid(const char *s)
{
	const char *at = strchr(s, '@');
	const char *p;
	size_t len = strlen(s);

	if(!at || at == s || strchr(at + 1, '@') || len > 254 || (size_t)(at - s) > 64)
		return false;
	if(!at[1] || !strchr(at + 1, '.') || at[1] == '.' || s[len - 1] == '.')
		return false;
	for(p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if(c <= 0x20 || c >= 0x7f || strchr("<>()[]\\,;:\"", c))
			return false;
	}
	return true;
}

/* jv_email - e-mail address field */
gw_rc jv_email(const json_t *obj, const char *field, bool required, const char **out,
               bool *present, struct gw_err *err)
{
	const char *s = NULL;
	bool here = false;
	gw_rc rc;

	rc = jv_string(obj, field, required, 3, 254, 0, &s, &here, err);
	if(rc || !here)
		goto out;
	if(!jv_email_valid(s))
		return gw_err_set(err, GW_EINVAL, field, "%s must be an e-mail address", field);
	*out = s;
out:
	if(present)
		*present = here;
	return rc;
}

/* jv_skills - normalised skill list */
gw_rc jv_skills(const json_t *obj, const char *field, bool required, size_t max, json_t **out,
                bool *present, struct gw_err *err)
{
	const json_t *v = json_object_get(obj, field);
	json_t *res = NULL, *item;
	size_t i, j, n;
	char buf[65];
	gw_rc rc = GW_OK;

	*out = NULL;
	if(!v || json_is_null(v))
		return absent(field, required, present, err);
	if(!json_is_array(v))
		return gw_err_set(err, GW_EINVAL, field, "%s must be an array of strings", field);
	if(json_array_size(v) > max)
		return gw_err_set(err, GW_EINVAL, field, "%s takes at most %zu entries", field, max);
	res = json_array();
	if(!res)
		return GW_ENOMEM;
	json_array_foreach(v, i, item) {
		const char *s;
		size_t len;
		int dup = 0;
		json_t *have;

		if(!json_is_string(item)) {
			rc = gw_err_set(err, GW_EINVAL, field, "%s must be an array of strings", field);
			goto out;
		}
		s = json_string_value(item);
		len = strlen(s);
		if(len != json_string_length(item))
			len = 0; /* an embedded NUL: refused below */
		/* " yoga" from a form is "yoga": trim the spaces around a name */
		while(len > 0 && *s == ' ') {
			s++;
			len--;
		}
		while(len > 0 && s[len - 1] == ' ')
			len--;
		if(len < 1 || len > 64) {
			rc = gw_err_set(err, GW_EINVAL, field, "each of %s must be 1 to 64 characters",
			                field);
			goto out;
		}
		for(j = 0; j < len; j++) {
			unsigned char c = (unsigned char)tolower((unsigned char)s[j]);
			if(!isalnum(c) && !strchr(" _.+-#", c)) {
				rc = gw_err_set(err, GW_EINVAL, field,
				                "%s may hold letters, digits, space and _.+-# only", field);
				goto out;
			}
			buf[j] = (char)c;
		}
		buf[len] = '\0';
		json_array_foreach(res, n, have) {
			if(strcmp(json_string_value(have), buf) == 0)
				dup = 1;
		}
		if(!dup && json_array_append_new(res, json_string(buf))) {
			rc = GW_ENOMEM;
			goto out;
		}
	}
	/* keep a canonical order so equal sets compare equal */
	n = json_array_size(res);
	for(i = 1; i < n; i++) {
		for(j = i; j > 0; j--) {
			json_t *a = json_array_get(res, j - 1), *b = json_array_get(res, j);
			if(strcmp(json_string_value(a), json_string_value(b)) <= 0)
				break;
			json_incref(a);
			json_array_set(res, j - 1, b);
			json_array_set_new(res, j, a);
		}
	}
	*out = res;
	res = NULL;
	if(present)
		*present = true;
out:
	json_decref(res);
	return rc;
}

/* jv_only - refuse unknown keys */
gw_rc jv_only(json_t *obj, const char *const *allowed, struct gw_err *err)
{
	const char *key;
	const json_t *v;
	size_t i;

	json_object_foreach(obj, key, v) {
		int ok = 0;
		(void)v;
		for(i = 0; allowed[i]; i++) {
			if(strcmp(key, allowed[i]) == 0) {
				ok = 1;
				break;
			}
		}
		if(!ok)
			return gw_err_set(err, GW_EINVAL, key, "unknown field %s", key);
	}
	return GW_OK;
}
