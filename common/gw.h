/*
 * gw.h - the project-wide result code and error context.
 *
 * Every function that can fail returns a gw_rc (GW_OK = 0) and hands its results back through
 * pointers. The original cause (SQLite extended code, CURLcode plus HTTP status, SMTP reply,
 * libical error) is kept in a struct gw_err when the caller asks for it, logged once at the
 * boundary and stored on the delivery row.
 */
#ifndef GW_H
#define GW_H

#include <stddef.h>

typedef enum gw_rc {
	GW_OK = 0,
	GW_ENOMEM,     /* allocation failed: fails the one request */
	GW_EJSON,      /* body is not JSON */
	GW_EINVAL,     /* a field is missing or has a bad value */
	GW_EUNAUTH,    /* no or unknown token */
	GW_EFORBIDDEN, /* token lacks the role */
	GW_ENOTFOUND,  /* no such resource in this organisation */
	GW_ECLAIMED,   /* request already claimed */
	GW_ESTATE,     /* transition not allowed from the current state */
	GW_ESLOT,      /* slot overlaps a held booking */
	GW_EEXPIRED,   /* link expired or revoked */
	GW_ETOOLARGE,  /* body over the limit */
	GW_ERATE,      /* rate limited */
	GW_EEXISTS,    /* unique value already present (e.g. e-mail of a user) */
	GW_EDB,        /* the store failed */
	GW_EIO,        /* file or network I/O failed */
	GW_EBUSY,      /* the database stayed locked */
	GW_EVERSION,   /* database newer than this binary */
	GW_ECONFIG,    /* configuration missing or unusable */
	GW_EMETHOD,    /* the path exists, not for this method */
	GW_EMEDIA,     /* a body of another media type than application/json */
	GW_EURITOOLONG, /* request target over the limit */
	GW_EHEADERS,   /* request header fields over the limit */
	GW_EUNAVAIL,   /* the database cannot be reached (PostgreSQL down): try again */
	GW_RC_COUNT
} gw_rc;

/* gw_err - an error context: the field at fault and the original cause in words. */
struct gw_err {
	char field[64];    /* the request field at fault, or "" */
	char message[256]; /* human text, safe to show to the client */
	char cause[256];   /* original cause for the log: never secrets */
};

/* gw_rc_name - stable name of a result code (for logs). Borrowed static string. */
const char *gw_rc_name(gw_rc rc);

/* gw_err_set - fill err (may be NULL) with field and a printf-style message; returns rc. */
gw_rc gw_err_set(struct gw_err *err, gw_rc rc, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* gw_err_cause - record the original cause (for the log) in err (may be NULL). */
void gw_err_cause(struct gw_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* gw_enum_check - v must be one of choices (NULL-terminated): GW_OK, or GW_EINVAL in err
 * naming field and every choice. The one check of a value from a fixed list, for the API's
 * query parameters and the command line alike. */
gw_rc gw_enum_check(const char *v, const char *field, const char *const *choices,
                    struct gw_err *err);

#define GW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
