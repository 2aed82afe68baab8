/*
 * provider.h - the one table every delivery provider fills (struct provider_ops).
 *
 * Providers are pure I/O (docs/design.md rule 3): they take an effect's payload and return a
 * classified result. They never touch the store. What the lifecycle needs back (an event id, a
 * Zoho join link) is returned in res->out and handed to a result hook by the dispatcher.
 *
 * Threading: one provider context per dispatch worker; a context is never shared between threads.
 */
#ifndef PROVIDER_H
#define PROVIDER_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#include "gw.h"

enum provider_outcome {
	PROVIDER_SENT = 0,     /* delivered (or already there: a repeat the far side recognised) */
	PROVIDER_TRANSIENT,    /* try again later (4xx SMTP, 5xx/429 HTTP, connection failure) */
	PROVIDER_PERMANENT,    /* never going to work (5xx SMTP, HTTP 400/404): dead-letter */
	PROVIDER_AUTH,         /* credentials refused: refresh once, then as transient */
	PROVIDER_AUTH_REVOKED, /* OAuth invalid_grant: connection needs reconnecting; permanent */
};

struct provider_result {
	enum provider_outcome outcome;
	int retry_after;  /* seconds the far side asked us to wait, or -1 */
	char detail[512]; /* provider's own words: SMTP reply, HTTP status and error body. No
	                     secrets */
	json_t *out; /* new reference or NULL: values for the result hook (event_id, join_url) */
	/* the server itself failed, or its settings did, not this message (transient: no address,
	 * no connection, no TLS handshake, its greeting or a 421; permanent: credentials refused,
	 * AUTH or TLS required): the next message to it would fail the same way, so the
	 * dispatcher holds the organisation's other rows back for a while instead of trying (or
	 * dead-lettering) each (dispatch.c, "A server that is down") */
	bool unreachable;
};

struct provider_ops {
	const char *name; /* "maildir", "smtp", "google", "outlook", "caldav", "zoho" */
	/* open - make a context from the organisation's provider config (borrowed) and the data
	 * dir. *ctx is owned by the caller and freed with close(). */
	gw_rc (*open)(const json_t *config, const char *data_dir, void **ctx);
	/* send - deliver one effect. payload is borrowed. Fills res (res->out new reference). */
	void (*send)(void *ctx, const char *kind, const json_t *payload,
	             struct provider_result *res);
	/* send_message - email providers: deliver a message rendered at enqueue (RFC 5322 bytes
	 * with CRLF line ends, len bytes, as smtp_mime_build makes them) to the envelope
	 * recipient rcpt, unchanged but for a DKIM signature. NULL for other providers. */
	void (*send_message)(void *ctx, const char *rcpt, const char *msg, size_t len,
	                     struct provider_result *res);
	/* busy - the calendar's busy times in [from, to): *blocks a new JSON array of
	 * [start, end] (Unix seconds) pairs, clipped to the range, the gateway's own events
	 * left out where the far side names them. res->outcome PROVIDER_SENT when the list is
	 * complete; any other outcome leaves *blocks NULL (the caller keeps its last list).
	 * NULL for providers that have no calendar to read. */
	void (*busy)(void *ctx, time_t from, time_t to, json_t **blocks,
	             struct provider_result *res);
	/* close - free a context; accepts NULL. */
	void (*close)(void *ctx);
};

/* Small helpers every provider uses (provider.c). */

/* provider_str - the string member k of o, or NULL (borrowed). */
const char *provider_str(const json_t *o, const char *k);

/* provider_cfg_str - the non-empty string member k of a provider config, or NULL (borrowed). */
const char *provider_cfg_str(const json_t *c, const char *k);

/* provider_cfg_secs - the member k of a config as seconds in 1..3600, or def. */
long provider_cfg_secs(const json_t *c, const char *k, long def);

/* provider_set - fill res: outcome, retry_after (-1: none) and "what: detail", bounded. */
void provider_set(struct provider_result *res, enum provider_outcome o, int retry_after,
                  const char *what, const char *detail);

/* provider_wipe_free - wipe and free a malloc'd string holding a secret; accepts NULL. */
void provider_wipe_free(char *s);

#endif
