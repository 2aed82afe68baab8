/*
 * http_oauth.c - a trainer connects a calendar by the OAuth 2.0 authorization code grant with
 * PKCE (RFC 6749 4.1, RFC 7636 S256): GET /v1/orgs/{org}/users/{id}/calendar/connect?provider=
 * google|outlook sends the browser to the provider, and GET /oauth/callback brings it back.
 *
 * Entry points: http_calendar_connect(), http_oauth_callback().
 *
 * connect (that trainer, bearer token): a random state (stored as its SHA-256, single use,
 * bound to the organisation, the user and the provider, valid 10 minutes on clock_now()) and a
 * PKCE code_verifier (stored sealed: it is sent in the token exchange), then 302 to the
 * organisation's authorize_url with client_id, redirect_uri {public_url}/oauth/callback,
 * response_type=code, the scope, state, code_challenge and code_challenge_method=S256. Google
 * (developers.google.com/identity/protocols/oauth2/web-server, "Step 1: Set authorization
 * parameters") also gets access_type=offline (a refresh token), prompt=consent (a refresh token
 * again on a reconnect, when Google would otherwise skip it) and include_granted_scopes=true;
 * Microsoft (learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow, "Request an
 * authorization code") gets response_mode=query and the offline_access scope.
 *
 * callback (no auth: the browser coming back): the state is taken (deleted) first, so a used,
 * unknown or expired one is 400 invalid_field naming state and nothing is stored; a provider's
 * error (error=access_denied) is 400 with its words, bounded. Then the code is exchanged at the
 * token_url (oauth_exchange: the one outbound call a handler makes, since the browser waits for
 * it; 10 s to connect, 15 s in all): a refusal by the token endpoint is 400 naming code with
 * its error code (invalid_grant, ...), no answer at all 503 busy; neither stores anything. The
 * refresh token is sealed and becomes the user's connection (calendar_id "primary" for Google,
 * "" for Microsoft: the user's default calendar, as PUT stores it), connected, replacing any (a
 * needs_reconnect one too), and the trainer's held calendar rows are due at once, in one transaction; then 302
 * to {public_url}/dashboard.
 *
 * No state, code, verifier or token reaches a log or an answer.
 * Threading: MHD's threads, each with its own store connection.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/oauth.h"
#include "common/rest.h"
#include "gateway/delivery/dispatch.h"
#include "http_routes.h"

#define ADMINS     (ROLE_ORG_ADMIN | ROLE_PLATFORM_ADMIN)
#define STATE_SECS 600 /* an authorization request is good for 10 minutes */
#define PARAM_MAX  2048
#define GOOGLE_SCOPE                                       \
	"https://www.googleapis.com/auth/calendar.events " \
	"https://www.googleapis.com/auth/calendar.freebusy"
#define MICROSOFT_SCOPE "offline_access Calendars.ReadWrite"
#define SEALED          "sealed:"

static const char *const oauth_providers[] = {"google", "outlook", NULL};

/* wipe_free - clear a secret and free it; accepts NULL */
static void wipe_free(char *s)
{
	if(s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* open_sealed - the plain text of a stored "sealed:..." value; *out caller wipes (wipe_free) */
static gw_rc open_sealed(struct http_req *r, const char *stored, char **out)
{
	*out = NULL;
	if(!stored || strncmp(stored, SEALED, strlen(SEALED)) != 0)
		return GW_ECONFIG;
	return crypto_open(r->cfg->master_key, stored + strlen(SEALED), out);
}

/* authorize_base - the authorization endpoint of the stored settings (settings stored before
 * authorize_url existed get the provider's default) into buf */
static void authorize_base(const char *provider, const json_t *cfg, char *buf, size_t n)
{
	const char *u = json_string_value(json_object_get(cfg, "authorize_url"));
	const char *tenant = json_string_value(json_object_get(cfg, "tenant"));

	if(u)
		snprintf(buf, n, "%s", u);
	else if(strcmp(provider, "google") == 0)
		snprintf(buf, n, "https://accounts.google.com/o/oauth2/v2/auth");
	else
		snprintf(buf, n, "https://login.microsoftonline.com/%s/oauth2/v2.0/authorize",
		         tenant ? tenant : "common");
}

/* provider_settings - the organisation's client settings for provider; 409 without them */
static gw_rc provider_settings(struct http_req *r, int64_t org, const char *provider, json_t **cfg)
{
	gw_rc rc = store_provider_get(r->st, org, provider, cfg);

	if(rc == GW_ENOTFOUND)
		return gw_err_set(&r->err, GW_ESTATE, "",
		                  "the organisation has no %s provider settings (client_id, "
		                  "client_secret): an org admin sets them with PUT "
		                  "/v1/orgs/%lld/providers/%s",
		                  provider, (long long)org, provider);
	return rc;
}

/* http_calendar_connect - GET /v1/orgs/{org}/users/{id}/calendar/connect?provider= */
gw_rc http_calendar_connect(struct http_req *r, json_t **out)
{
	char state[CRYPTO_TOKEN_LEN], hash[CRYPTO_HASH_HEX], verifier[OAUTH_VERIFIER_LEN];
	char challenge[OAUTH_CHALLENGE_LEN], base[2100], redirect[1100];
	char *sealed = NULL, *stored = NULL, *url = NULL;
	const char *provider = NULL, *client_id;
	json_t *cfg = NULL;
	time_t now = clock_now();
	size_t n;
	gw_rc rc;

	(void)out;
	if((rc = http_require_org(r, r->id[0], ADMINS | ROLE_TRAINER)))
		return rc;
	if(r->user.id != r->id[1])
		return gw_err_set(&r->err, GW_EFORBIDDEN, "",
		                  "only that trainer can connect their own calendar");
	if((rc = http_query_enum(r, "provider", oauth_providers, &provider)))
		return rc;
	if(!provider)
		return gw_err_set(&r->err, GW_EINVAL, "provider",
		                  "provider is required: google or outlook");
	if((rc = provider_settings(r, r->id[0], provider, &cfg)))
		goto out;
	client_id = json_string_value(json_object_get(cfg, "client_id"));
	if(!client_id) {
		rc = gw_err_set(&r->err, GW_ESTATE, "",
		                "the %s provider settings have no client_id", provider);
		goto out;
	}
	if((rc = crypto_token("", state, sizeof(state))) || (rc = oauth_pkce_verifier(verifier)))
		goto out;
	crypto_sha256_hex(state, strlen(state), hash);
	oauth_pkce_challenge(verifier, challenge);
	if((rc = crypto_seal(r->cfg->master_key, verifier, &sealed)))
		goto out;
	n = strlen(sealed) + sizeof(SEALED);
	stored = malloc(n);
	if(!stored) {
		rc = GW_ENOMEM;
		goto out;
	}
	snprintf(stored, n, "%s%s", SEALED, sealed);
	if((rc = store_begin(r->st)))
		goto out;
	rc = store_oauth_state_put(r->st, hash, r->id[0], r->id[1], provider, stored, now,
	                           now + STATE_SECS);
	if(rc) {
		store_rollback(r->st);
		if(rc == GW_ENOTFOUND)
			rc = gw_err_set(&r->err, rc, "", "no such user");
		goto out;
	}
	if((rc = store_commit(r->st)))
		goto out;
	snprintf(redirect, sizeof(redirect), "%s/oauth/callback", r->cfg->public_url);
	authorize_base(provider, cfg, base, sizeof(base));
	if(strcmp(provider, "google") == 0) {
		const char *const params[] = {"client_id",
		                              client_id,
		                              "redirect_uri",
		                              redirect,
		                              "response_type",
		                              "code",
		                              "scope",
		                              GOOGLE_SCOPE,
		                              "access_type",
		                              "offline",
		                              "prompt",
		                              "consent",
		                              "include_granted_scopes",
		                              "true",
		                              "state",
		                              state,
		                              "code_challenge",
		                              challenge,
		                              "code_challenge_method",
		                              "S256",
		                              NULL};
		rc = oauth_authorize_url(base, params, &url);
	} else {
		const char *const params[] = {"client_id",
		                              client_id,
		                              "response_type",
		                              "code",
		                              "redirect_uri",
		                              redirect,
		                              "response_mode",
		                              "query",
		                              "scope",
		                              MICROSOFT_SCOPE,
		                              "state",
		                              state,
		                              "code_challenge",
		                              challenge,
		                              "code_challenge_method",
		                              "S256",
		                              NULL};
		rc = oauth_authorize_url(base, params, &url);
	}
	if(rc)
		goto out;
	log_event("info", "calendar_connect_started",
	          json_pack("{s:I, s:I, s:s}", "org", (json_int_t)r->id[0], "user",
	                    (json_int_t)r->id[1], "provider", provider));
	r->status = 302;
	r->location = url;
	url = NULL;
out:
	OPENSSL_cleanse(verifier, sizeof(verifier));
	OPENSSL_cleanse(state, sizeof(state));
	wipe_free(sealed);
	wipe_free(stored);
	free(url);
	json_decref(cfg);
	return rc;
}

/* param_ok - a query value of 1..PARAM_MAX visible ASCII characters */
static bool param_ok(const char *s)
{
	size_t n = 0;

	if(!s)
		return false;
	for(; s[n]; n++)
		if((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] > 0x7e || n >= PARAM_MAX)
			return false;
	return n > 0;
}

/* cfg_ms - a timeout setting in seconds as milliseconds, at most max_ms; def when absent */
static long cfg_ms(const json_t *cfg, const char *key, long def, long max_ms)
{
	json_int_t s = json_integer_value(json_object_get(cfg, key));
	long ms = s > 0 ? (long)s * 1000 : def;

	return ms > max_ms ? max_ms : ms;
}

/* take_state - the state of the callback, taken once: *st {org_id, user_id, provider,
 * verifier} or a 400 naming state */
static gw_rc take_state(struct http_req *r, const char *state, json_t **st)
{
	char hash[CRYPTO_HASH_HEX];
	gw_rc rc, crc;

	*st = NULL;
	if(!param_ok(state))
		return gw_err_set(
		        &r->err, GW_EINVAL, "state",
		        "state is missing or malformed: start again from the connect link");
	crypto_sha256_hex(state, strlen(state), hash);
	if((rc = store_begin(r->st)))
		return rc;
	rc = store_oauth_state_take(r->st, hash, clock_now(), st);
	if(rc && rc != GW_ENOTFOUND && rc != GW_EEXPIRED) {
		store_rollback(r->st);
		return rc;
	}
	/* an expired state is taken too: it never works again */
	if((crc = store_commit(r->st))) {
		json_decref(*st);
		*st = NULL;
		return crc;
	}
	if(rc == GW_ENOTFOUND)
		return gw_err_set(
		        &r->err, GW_EINVAL, "state",
		        "unknown or already used state: start again from the connect link");
	if(rc == GW_EEXPIRED)
		return gw_err_set(&r->err, GW_EINVAL, "state",
		                  "this authorization request expired (it is good for %d minutes): "
		                  "start again from the connect link",
		                  STATE_SECS / 60);
	return GW_OK;
}

/* http_oauth_callback - GET /oauth/callback?code=&state= */
gw_rc http_oauth_callback(struct http_req *r, json_t **out)
{
	const char *error = http_query(r, "error"), *code = http_query(r, "code");
	const char *provider, *calendar_id;
	char detail[OAUTH_DETAIL_LEN], redirect[1100], words[300];
	char *secret = NULL, *verifier = NULL, *token = NULL, *sealed = NULL, *stored = NULL;
	struct oauth_exchange x = {0};
	struct netguard guard;
	json_t *st = NULL, *cfg = NULL;
	int64_t org, user;
	size_t n;
	gw_rc rc;

	(void)out;
	if((rc = take_state(r, http_query(r, "state"), &st)))
		goto out;
	org = json_integer_value(json_object_get(st, "org_id"));
	user = json_integer_value(json_object_get(st, "user_id"));
	provider = json_string_value(json_object_get(st, "provider"));
	if(error) {
		/* RFC 6749 4.1.2.1: the user said no, or the provider refused the request */
		const char *desc = http_query(r, "error_description");

		rest_clean(error, strlen(error), 60, words, sizeof(words));
		rest_clean(desc ? desc : "", desc ? strlen(desc) : 0, 200, detail, sizeof(detail));
		rc = gw_err_set(&r->err, GW_EINVAL, "error",
		                "the calendar was not connected: the provider answered %s%s%s",
		                words, detail[0] ? ": " : "", detail);
		goto out;
	}
	if(!param_ok(code)) {
		rc = gw_err_set(&r->err, GW_EINVAL, "code", "code is missing or malformed");
		goto out;
	}
	if((rc = provider_settings(r, org, provider, &cfg)))
		goto out;
	if((rc = open_sealed(r, json_string_value(json_object_get(cfg, "client_secret")),
	                     &secret)) ||
	   (rc = open_sealed(r, json_string_value(json_object_get(st, "verifier")), &verifier))) {
		rc = gw_err_set(&r->err, GW_ECONFIG, "",
		                "cannot decrypt the stored secrets (wrong master key?)");
		goto out;
	}
	snprintf(redirect, sizeof(redirect), "%s/oauth/callback", r->cfg->public_url);
	x.token_url = json_string_value(json_object_get(cfg, "token_url"));
	x.client_id = json_string_value(json_object_get(cfg, "client_id"));
	x.client_secret = secret;
	x.code = code;
	x.redirect_uri = redirect;
	x.code_verifier = verifier;
	x.scope = strcmp(provider, "outlook") == 0 ? MICROSOFT_SCOPE : NULL;
	x.connect_timeout_ms = cfg_ms(cfg, "connect_timeout", 10000, 10000);
	x.timeout_ms = cfg_ms(cfg, "timeout", 15000, 15000);
	/* the token endpoint is a tenant's setting: the same outbound guard as every provider */
	if(netguard_from_json(r->cfg->allow_outbound, &guard)) {
		rc = GW_ECONFIG;
		goto out;
	}
	x.guard = &guard;
	if(!x.token_url || !x.client_id) {
		rc = gw_err_set(&r->err, GW_ESTATE, "", "the %s provider settings are incomplete",
		                provider);
		goto out;
	}
	rc = oauth_exchange(&x, &token, detail);
	if(rc == GW_EINVAL) {
		rc = gw_err_set(&r->err, GW_EINVAL, "code",
		                "the provider refused the authorization code: %s", detail);
		goto out;
	}
	if(rc) {
		log_event("warn", "oauth_exchange_failed",
		          json_pack("{s:I, s:I, s:s, s:s}", "org", (json_int_t)org, "user",
		                    (json_int_t)user, "provider", provider, "detail", detail));
		rc = gw_err_set(&r->err, rc == GW_ENOMEM ? rc : GW_EBUSY, "",
		                "the provider's token endpoint did not answer (%s): connect again "
		                "later",
		                detail);
		goto out;
	}
	if((rc = crypto_seal(r->cfg->master_key, token, &sealed)))
		goto out;
	n = strlen(sealed) + sizeof(SEALED);
	stored = malloc(n);
	if(!stored) {
		rc = GW_ENOMEM;
		goto out;
	}
	snprintf(stored, n, "%s%s", SEALED, sealed);
	/* Graph's default calendar is "" (the PUT stores the same) */
	calendar_id = strcmp(provider, "google") == 0 ? "primary" : "";
	if((rc = store_begin(r->st)))
		goto out;
	rc = store_calendar_put(r->st, org, user, provider, calendar_id, stored, clock_now());
	if(rc) {
		store_rollback(r->st);
		if(rc == GW_ENOTFOUND)
			rc = gw_err_set(&r->err, rc, "", "the user no longer exists");
		goto out;
	}
	if((rc = store_commit(r->st)))
		goto out;
	dispatch_wake(); /* the rows held while it needed reconnecting are due */
	log_event("info", "calendar_connected",
	          json_pack("{s:I, s:I, s:s, s:s}", "org", (json_int_t)org, "user",
	                    (json_int_t)user, "provider", provider, "by", "oauth"));
	n = strlen(r->cfg->public_url) + sizeof("/dashboard");
	r->location = malloc(n);
	if(!r->location) {
		rc = GW_ENOMEM;
		goto out;
	}
	snprintf(r->location, n, "%s/dashboard", r->cfg->public_url);
	r->status = 302;
out:
	wipe_free(secret);
	wipe_free(verifier);
	wipe_free(token);
	wipe_free(sealed);
	wipe_free(stored);
	json_decref(cfg);
	json_decref(st);
	return rc;
}
