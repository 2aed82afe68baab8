/*
 * gw.c - result code names and the error context.
 *
 * Entry points: gw_rc_name(), gw_err_set(), gw_err_cause(), gw_enum_check().
 * Thread-safe (no shared state).
 */
#include "gw.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const rc_names[GW_RC_COUNT] = {
    [GW_OK] = "ok",
    [GW_ENOMEM] = "out_of_memory",
    [GW_EJSON] = "invalid_json",
    [GW_EINVAL] = "invalid_field",
    [GW_EUNAUTH] = "unauthorized",
    [GW_EFORBIDDEN] = "forbidden",
    [GW_ENOTFOUND] = "not_found",
    [GW_ECLAIMED] = "already_claimed",
    [GW_ESTATE] = "invalid_state",
    [GW_ESLOT] = "slot_taken",
    [GW_EEXPIRED] = "link_expired",
    [GW_ETOOLARGE] = "too_large",
    [GW_ERATE] = "rate_limited",
    [GW_EEXISTS] = "conflict",
    [GW_EDB] = "database_error",
    [GW_EIO] = "io_error",
    [GW_EBUSY] = "busy",
    [GW_EVERSION] = "version_mismatch",
    [GW_ECONFIG] = "config_error",
    [GW_EMETHOD] = "method_not_allowed",
    [GW_EMEDIA] = "unsupported_media_type",
    [GW_EURITOOLONG] = "uri_too_long",
    [GW_EHEADERS] = "headers_too_large",
    [GW_EUNAVAIL] = "unavailable",
};

/* gw_rc_name - stable name of a result code */
const char *gw_rc_name(gw_rc rc)
{
	if((unsigned)rc >= GW_RC_COUNT || !rc_names[rc])
		return "unknown";
	return rc_names[rc];
}

/* gw_err_set - fill an error context and return rc */
gw_rc gw_err_set(struct gw_err *err, gw_rc rc, const char *field, const char *fmt, ...)
{
	va_list ap;

	if(!err)
		return rc;
	snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return rc;
}

/* gw_err_cause - record the original cause */
void gw_err_cause(struct gw_err *err, const char *fmt, ...)
{
	va_list ap;

	if(!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->cause, sizeof(err->cause), fmt, ap);
	va_end(ap);
}

/* gw_enum_check - a value from a fixed list */
gw_rc gw_enum_check(const char *v, const char *field, const char *const *choices,
                    struct gw_err *err)
{
	char list[256] = "";
	size_t i, used;

	for(i = 0; choices[i]; i++) {
		if(v && strcmp(v, choices[i]) == 0)
			return GW_OK;
		used = strlen(list);
		snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", choices[i]);
	}
	return gw_err_set(err, GW_EINVAL, field, "%s must be one of %s", field, list);
}
