/*
 * jsonv.h - validation of JSON request fields (jansson), naming the field at fault.
 *
 * Every getter takes the object (borrowed), the field name, whether it is required, and the
 * bounds; it returns GW_OK with the value (absent optional field: *present = false, value
 * untouched), or GW_EINVAL with err naming the field. Strings are checked to be valid UTF-8
 * (jansson guarantees it) and free of control characters unless allowed.
 * Threading: reentrant.
 */
#ifndef JSONV_H
#define JSONV_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "gw.h"

#define JV_MULTILINE 1 /* allow CR, LF and TAB in the string (free text, never headers) */

/* jv_parse - parse a request body; GW_EJSON (with message) unless it is a JSON object.
 * *out: new reference. */
gw_rc jv_parse(const char *body, size_t len, json_t **out, struct gw_err *err);

/* jv_string - string field of length minlen..maxlen bytes; *out borrowed from obj. */
gw_rc jv_string(const json_t *obj, const char *field, bool required, size_t minlen,
                size_t maxlen, int flags, const char **out, bool *present, struct gw_err *err);

/* jv_int - integer field in lo..hi. */
gw_rc jv_int(const json_t *obj, const char *field, bool required, long long lo, long long hi,
             long long *out, bool *present, struct gw_err *err);

/* jv_bool - boolean field. */
gw_rc jv_bool(const json_t *obj, const char *field, bool required, bool *out, bool *present,
              struct gw_err *err);

/* jv_time - string field that is an RFC 3339 instant (timefmt_parse) into *out; the error
 * says which format is wanted, with an example. */
gw_rc jv_time(const json_t *obj, const char *field, bool required, time_t *out, bool *present,
              struct gw_err *err);

/* jv_email - string field that is a plausible addr-spec (RFC 5322 3.4.1, no display name). */
gw_rc jv_email(const json_t *obj, const char *field, bool required, const char **out,
               bool *present, struct gw_err *err);

/* jv_check_text - is s free of control characters (except CR/LF/TAB with JV_MULTILINE). */
bool jv_check_text(const char *s, int flags);

/* jv_email_valid - is s a plausible addr-spec */
bool jv_email_valid(const char *s);

/* jv_skills - array of 0..max skill names (1..64 chars each after trimming spaces, [a-z0-9 _.+#-],
 * case folded to lower case, duplicates dropped). *out: new reference to a sorted JSON array
 * of strings. */
gw_rc jv_skills(const json_t *obj, const char *field, bool required, size_t max, json_t **out,
                bool *present, struct gw_err *err);

/* jv_only - GW_EINVAL naming the first key of obj not in the NULL-terminated list allowed. */
gw_rc jv_only(json_t *obj, const char *const *allowed, struct gw_err *err);

#endif
