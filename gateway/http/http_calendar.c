/*
 * http_calendar.c - a trainer's calendar connection: PUT and DELETE
 * /v1/orgs/{org}/users/{id}/calendar (that trainer, or an org admin).
 *
 * Entry points: http_calendar_put(), http_calendar_delete(), http_calendar_list().
 *
 * PUT connects (or reconnects, replacing the connection: a needs_reconnect status goes back to
 * connected):
 *   {provider: "google", calendar_id, refresh_token}: calendar_id defaults to "primary"
 *       (Google's word for the user's main calendar);
 *   {provider: "outlook", calendar_id, refresh_token}: Microsoft Graph; without calendar_id the
 *       user's default calendar (stored as "");
 *   {provider: "caldav", url, username, password}: the calendar collection's URL (https, or
 *       http on loopback, no credentials, query or fragment; at most 1024 bytes) is stored as the
 *       connection's calendar; username (no ':', RFC 7617) and password go sealed together as
 *       {"username", "password"}.
 * The secret (refresh token, or the CalDAV credentials) is sealed with AES-256-GCM under the
 * master key before it is stored, like the provider secrets (http_providers.c), and never comes
 * back: the user's "calendar" member has the provider, the calendar (for CalDAV its url), the
 * status, the last error and when it was connected. Every field is checked before anything is
 * stored; a bad one is a 400 naming it.
 *
 * A reconnect makes the trainer's held calendar rows (held while the grant was revoked) due at
 * once, in the transaction that stores the connection, and wakes the dispatcher. The OAuth
 * consent flow that gets the refresh token itself is http_oauth.c. GET
 * /v1/orgs/{org}/calendar-connections lists every connection of the organisation for its admins
 * (never a secret).
 *
 * Threading: MHD's threads, each with its own store connection.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/jsonv.h"
#include "common/log.h"
#include "gateway/delivery/dispatch.h"
#include "http_routes.h"

#define ADMINS            (ROLE_ORG_ADMIN | ROLE_PLATFORM_ADMIN)
/* a calendar id is an address, "primary", or ...@group.calendar.google.com */
#define CALENDAR_ID_MAX   254
#define REFRESH_TOKEN_MAX 2048
#define CALDAV_URL_MAX      1024
#define CALDAV_USER_MAX     256
#define CALDAV_PASSWORD_MAX 1024

/* self_or_admin - the user named in the path, or an admin of the organisation */
static gw_rc self_or_admin(struct http_req *r)
{
	gw_rc rc = http_require_org(r, r->id[0], ADMINS | ROLE_TRAINER);

	if(rc)
		return rc;
	if(!(r->user.roles & ADMINS) && r->user.id != r->id[1])
		return gw_err_set(&r->err, GW_EFORBIDDEN, "", "only that trainer or an org admin");
	return GW_OK;
}

/* visible_ascii - every byte in lo..0x7e (RFC 6749 A.17: a refresh token is 1*VSCHAR) */
static bool visible_ascii(const char *s, unsigned char lo)
{
	for(; *s; s++)
		if((unsigned char)*s < lo || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

/* oauth_fields - google and outlook: {calendar_id, refresh_token}; *secret the token (borrowed) */
static gw_rc oauth_fields(struct http_req *r, const char *provider, const char **calendar_id,
                          const char **secret)
{
	static const char *const keys[] = {"provider", "calendar_id", "refresh_token", NULL};
	bool google = strcmp(provider, "google") == 0;
	gw_rc rc;

	/* Google's word for the main calendar; Outlook's default calendar is /me/events: "" */
	*calendar_id = google ? "primary" : "";
	if((rc = jv_only(r->body, keys, &r->err)) ||
	   (rc = jv_string(r->body, "calendar_id", false, 1, CALENDAR_ID_MAX, 0, calendar_id, NULL,
	                   &r->err)))
		return rc;
	if((*calendar_id)[0] && !visible_ascii(*calendar_id, 0x21))
		return gw_err_set(
		        &r->err, GW_EINVAL, "calendar_id",
		        "calendar_id must be 1 to %d visible ASCII characters, such as %s",
		        CALENDAR_ID_MAX,
		        google ? "primary or name@example.com" : "the id Graph gives a calendar");
	if((rc = jv_string(r->body, "refresh_token", true, 1, REFRESH_TOKEN_MAX, 0, secret, NULL,
	                   &r->err)))
		return rc;
	if(!visible_ascii(*secret, 0x20))
		return gw_err_set(&r->err, GW_EINVAL, "refresh_token",
		                  "refresh_token must be 1 to %d printable ASCII characters",
		                  REFRESH_TOKEN_MAX);
	return GW_OK;
}

/* caldav_fields - {url, username, password}; *secret the JSON text of the credentials (malloc'd,
 * the caller wipes and frees it) */
static gw_rc caldav_fields(struct http_req *r, const char **url, char **secret)
{
	static const char *const keys[] = {"provider", "url", "username", "password", NULL};
	const char *user, *pass;
	json_t *cred;
	gw_rc rc;

	*secret = NULL;
	if((rc = jv_only(r->body, keys, &r->err)) ||
	   (rc = jv_string(r->body, "url", true, 1, CALDAV_URL_MAX, 0, url, NULL, &r->err)))
		return rc;
	if(!http_url_ok(*url))
		return gw_err_set(&r->err, GW_EINVAL, "url",
		                  "url must be the calendar collection's https URL without "
		                  "credentials, query or fragment, at most %d bytes (http only on "
		                  "127.0.0.1 or localhost)",
		                  CALDAV_URL_MAX);
	if(strchr(*url, '?'))
		return gw_err_set(&r->err, GW_EINVAL, "url",
		                  "url must be the calendar collection itself, without a query");
	if((rc = jv_string(r->body, "username", true, 1, CALDAV_USER_MAX, 0, &user, NULL, &r->err)))
		return rc;
	if(strchr(user, ':'))
		/* RFC 7617 2: a user-id containing a colon cannot be sent with Basic */
		return gw_err_set(&r->err, GW_EINVAL, "username",
		                  "username cannot contain ':' (HTTP Basic authentication)");
	if((rc = jv_string(r->body, "password", true, 1, CALDAV_PASSWORD_MAX, 0, &pass, NULL,
	                   &r->err)))
		return rc;
	cred = json_pack("{s:s, s:s}", "username", user, "password", pass);
	*secret = cred ? json_dumps(cred, JSON_COMPACT) : NULL;
	json_decref(cred);
	return *secret ? GW_OK : GW_ENOMEM;
}

/* http_calendar_put - PUT /v1/orgs/{org}/users/{id}/calendar */
gw_rc http_calendar_put(struct http_req *r, json_t **out)
{
	const char *provider, *calendar_id = "", *token = NULL;
	char *sealed = NULL, *stored = NULL, *cred = NULL;
	json_t *user = NULL;
	size_t n;
	gw_rc rc;

	if((rc = self_or_admin(r)) ||
	   (rc = jv_string(r->body, "provider", true, 1, 32, 0, &provider, NULL, &r->err)))
		return rc;
	if(strcmp(provider, "google") == 0 || strcmp(provider, "outlook") == 0) {
		rc = oauth_fields(r, provider, &calendar_id, &token);
	} else if(strcmp(provider, "caldav") == 0) {
		/* the collection URL is the connection's calendar; username and password are
		 * sealed together */
		rc = caldav_fields(r, &calendar_id, &cred);
		token = cred;
	} else {
		rc = gw_err_set(&r->err, GW_EINVAL, "provider",
		                "provider must be \"google\", \"outlook\" or \"caldav\"");
	}
	if(rc)
		goto out;
	/* the user must exist in this organisation before anything is sealed or stored */
	if((rc = store_user_get(r->st, r->id[0], r->id[1], &user))) {
		if(rc == GW_ENOTFOUND)
			rc = gw_err_set(&r->err, rc, "", "no such user");
		goto out;
	}
	json_decref(user);
	user = NULL;
	if((rc = crypto_seal(r->cfg->master_key, token, &sealed)))
		goto out;
	n = strlen(sealed) + 8;
	stored = malloc(n);
	if(!stored) {
		rc = GW_ENOMEM;
		goto out;
	}
	snprintf(stored, n, "sealed:%s", sealed);
	if((rc = store_begin(r->st)))
		goto out;
	rc = store_calendar_put(r->st, r->id[0], r->id[1], provider, calendar_id, stored,
	                        clock_now());
	if(rc) {
		store_rollback(r->st);
		goto out;
	}
	if((rc = store_commit(r->st)))
		goto out;
	dispatch_wake(); /* the rows held while it needed reconnecting are due */
	log_event("info", "calendar_connected",
	          json_pack("{s:I, s:I, s:s, s:I}", "org", (json_int_t)r->id[0], "user",
	                    (json_int_t)r->id[1], "provider", provider, "by",
	                    (json_int_t)r->user.id));
	rc = store_user_get(r->st, r->id[0], r->id[1], out);
out:
	if(sealed) {
		OPENSSL_cleanse(sealed, strlen(sealed));
		free(sealed);
	}
	if(stored) {
		OPENSSL_cleanse(stored, strlen(stored));
		free(stored);
	}
	if(cred) {
		OPENSSL_cleanse(cred, strlen(cred));
		free(cred);
	}
	return rc;
}

/* http_calendar_delete - DELETE /v1/orgs/{org}/users/{id}/calendar: the user, disconnected */
gw_rc http_calendar_delete(struct http_req *r, json_t **out)
{
	gw_rc rc = self_or_admin(r);

	if(rc)
		return rc;
	if((rc = store_begin(r->st)))
		return rc;
	rc = store_calendar_delete(r->st, r->id[0], r->id[1], clock_now());
	if(rc) {
		store_rollback(r->st);
		if(rc == GW_ENOTFOUND)
			return gw_err_set(&r->err, rc, "", "no calendar is connected for this user");
		return rc;
	}
	if((rc = store_commit(r->st)))
		return rc;
	dispatch_wake(); /* held rows, if any, are finished as skipped */
	log_event("info", "calendar_disconnected",
	          json_pack("{s:I, s:I, s:I}", "org", (json_int_t)r->id[0], "user",
	                    (json_int_t)r->id[1], "by", (json_int_t)r->user.id));
	return store_user_get(r->st, r->id[0], r->id[1], out);
}

/* http_calendar_list - GET /v1/orgs/{org}/calendar-connections (org admins) */
gw_rc http_calendar_list(struct http_req *r, json_t **out)
{
	gw_rc rc = http_require_org(r, r->id[0], ADMINS);

	if(rc)
		return rc;
	return store_calendar_list(r->st, r->id[0], out);
}
