/*
 * http_providers.c - provider settings of an organisation (the contract's "Providers"): the SMTP
 * server email goes through, and the Google, Microsoft (Outlook) and Zoho Assist credentials.
 *
 * Entry points: http_provider_put(), http_provider_list(), http_provider_delete().
 *
 * Every field is checked before anything is stored (a bad one is a 400 naming it, and nothing
 * of that PUT is kept). Each provider is one table of fields; the checks that join two fields
 * (a username needs a password, the default port follows the security, Microsoft's token URL
 * holds the tenant) follow the table.
 *
 * Secrets (password, client_secret, refresh_token, dkim.private_key_pem) are stored sealed,
 * "sealed:" + crypto_seal(master key, value) (AES-256-GCM), and the dispatcher opens them when it
 * opens a provider. They never come back: GET shows each as {"set": true|false}. A PUT may give a
 * secret as {"set": true} to keep the stored one, so an admin can change the host without typing
 * the password again (GET, edit, PUT back works).
 *
 * ca_pem holds the certificates themselves (checked with OpenSSL, at most CA_PEM_MAX bytes);
 * SMTP AUTH over security "none" is refused unless the operator allows plain relays (serve
 * --allow-plain-auth). Where a provider may connect is the outbound guard's business, at
 * connect time, after DNS (common/netguard.h), not a check of the names here.
 *
 * URLs must be https. The one exception is a loopback host (127.0.0.1, localhost, [::1]) over
 * http, where a test or a local proxy stands in for the provider: nothing leaves the machine.
 *
 * Threading: MHD's threads, each with its own store connection.
 */
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/crypto.h"
#include "http_routes.h"
#include "common/jsonv.h"
#include "common/log.h"
#include "gateway/delivery/dispatch.h"

#define ANY_ADMIN     (ROLE_ORG_ADMIN | ROLE_PLATFORM_ADMIN)
#define SEALED        "sealed:"
#define NAME_MAX_LEN  16
#define URL_MAX_LEN   2000
#define PEM_MAX_LEN   16384
#define CA_PEM_MAX    32768 /* a bundle of some twenty certificates; the body limit is 64 KiB */
#define DKIM_MIN_BITS 1024 /* RFC 8301 3.2: verifiers refuse less */
#define DKIM_MAX_BITS 8192

enum ftype {
	F_TEXT,   /* a short string without control characters */
	F_HEADER, /* text that will stand in a mail header (From display name) */
	F_SECRET, /* stored sealed; {"set": true} keeps the stored one */
	F_PEM,    /* a secret holding a PEM private key (newlines allowed) */
	F_EMAIL,  /* an addr-spec */
	F_HOST,   /* a host name or IP literal */
	F_PORT,   /* 1..65535 */
	F_SECS,   /* 1..3600 seconds */
	F_CONNS,  /* 1..64 connections */
	F_ENUM,   /* one of choices */
	F_URL,    /* https URL (http on loopback) */
	F_CAPEM,  /* PEM certificates, nothing else (used in memory: CURLOPT_CAINFO_BLOB) */
	F_LABEL,  /* DKIM selector, Microsoft tenant: letters, digits, '-', '_' and '.' */
	F_DKIM,   /* the nested dkim object */
};

struct pfield {
	const char *name;
	enum ftype type;
	bool required;
	const char *def;            /* default stored when absent (F_TEXT, F_URL, F_ENUM) */
	const char *const *choices; /* F_ENUM, NULL-terminated */
};

static const char *const security_choices[] = {"none", "starttls", "tls", NULL};

static const struct pfield dkim_fields[] = {
        {"domain", F_HOST, true, NULL, NULL},
        {"selector", F_LABEL, true, NULL, NULL},
        {"private_key_pem", F_PEM, true, NULL, NULL},
        {NULL, F_TEXT, false, NULL, NULL},
};

static const struct pfield smtp_fields[] = {
        {"host", F_HOST, true, NULL, NULL},
        {"port", F_PORT, false, NULL, NULL},
        {"security", F_ENUM, false, "starttls", security_choices},
        {"username", F_TEXT, false, NULL, NULL},
        {"password", F_SECRET, false, NULL, NULL},
        {"from_address", F_EMAIL, true, NULL, NULL},
        {"from_name", F_HEADER, false, NULL, NULL},
        {"ca_pem", F_CAPEM, false, NULL, NULL},
        {"dkim", F_DKIM, false, NULL, NULL},
        {"connect_timeout", F_SECS, false, NULL, NULL},
        {"timeout", F_SECS, false, NULL, NULL},
        {"max_connections", F_CONNS, false, NULL, NULL}, /* absent: 8 (gateway/delivery) */
        {NULL, F_TEXT, false, NULL, NULL},
};

/* Google: OAuth 2.0 authorization and token endpoints
 * (developers.google.com/identity/protocols/oauth2/web-server) and Calendar API v3
 * (developers.google.com/calendar) */
static const struct pfield google_fields[] = {
        {"client_id", F_TEXT, true, NULL, NULL},
        {"client_secret", F_SECRET, true, NULL, NULL},
        {"authorize_url", F_URL, false, "https://accounts.google.com/o/oauth2/v2/auth", NULL},
        {"token_url", F_URL, false, "https://oauth2.googleapis.com/token", NULL},
        {"api_base", F_URL, false, "https://www.googleapis.com/calendar/v3", NULL},
        {"connect_timeout", F_SECS, false, NULL, NULL},
        {"timeout", F_SECS, false, NULL, NULL},
        {NULL, F_TEXT, false, NULL, NULL},
};

/* Microsoft identity platform v2.0 authorization and token endpoints of the tenant
 * (learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow), and Microsoft Graph
 * v1.0 */
static const struct pfield outlook_fields[] = {
        {"tenant", F_LABEL, false, "common", NULL},
        {"client_id", F_TEXT, true, NULL, NULL},
        {"client_secret", F_SECRET, true, NULL, NULL},
        {"authorize_url", F_URL, false, NULL, NULL}, /* default made from the tenant */
        {"token_url", F_URL, false, NULL, NULL}, /* default made from the tenant */
        {"api_base", F_URL, false, "https://graph.microsoft.com/v1.0", NULL},
        {"connect_timeout", F_SECS, false, NULL, NULL},
        {"timeout", F_SECS, false, NULL, NULL},
        {NULL, F_TEXT, false, NULL, NULL},
};

/* Zoho: the accounts server of the data centre (US by default) and the Assist API v2 */
static const struct pfield zoho_fields[] = {
        {"client_id", F_TEXT, true, NULL, NULL},
        {"client_secret", F_SECRET, true, NULL, NULL},
        {"refresh_token", F_SECRET, true, NULL, NULL},
        {"accounts_url", F_URL, false, "https://accounts.zoho.com", NULL},
        {"api_base", F_URL, false, "https://assist.zoho.com/api/v2", NULL},
        {"department_id", F_TEXT, false, NULL, NULL},
        {"connect_timeout", F_SECS, false, NULL, NULL},
        {"timeout", F_SECS, false, NULL, NULL},
        {NULL, F_TEXT, false, NULL, NULL},
};

static const struct pdef {
	const char *name;
	const struct pfield *fields;
} providers[] = {
        {"smtp", smtp_fields},
        {"google", google_fields},
        {"outlook", outlook_fields},
        {"zoho", zoho_fields},
};

/* pdef_find - the provider named name, or NULL */
static const struct pdef *pdef_find(const char *name)
{
	size_t i;

	for(i = 0; i < GW_ARRAY_LEN(providers); i++)
		if(strcmp(providers[i].name, name) == 0)
			return &providers[i];
	return NULL;
}

/* host_ok - a DNS name (RFC 1123 labels) or an IPv4/IPv6 literal */
static bool host_ok(const char *s)
{
	size_t n = strlen(s), i, label = 0;
	bool colon = strchr(s, ':') != NULL;

	if(n == 0 || n > 253)
		return false;
	for(i = 0; i < n; i++) {
		char c = s[i];

		if(colon) {
			/* IPv6 literal: hex digits, ':' and '.' (an embedded IPv4) */
			if(!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F') || c == ':' || c == '.'))
				return false;
			continue;
		}
		if(c == '.') {
			if(label == 0)
				return false;
			label = 0;
			continue;
		}
		if(!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		     c == '-' || c == '_'))
			return false;
		if(c == '-' && label == 0)
			return false;
		if(++label > 63)
			return false;
	}
	return true;
}

/* label_ok - letters, digits, '-', '_', '.'; 1..100 */
static bool label_ok(const char *s)
{
	size_t n = strlen(s), i;

	if(n == 0 || n > 100)
		return false;
	for(i = 0; i < n; i++) {
		char c = s[i];
		if(!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		     c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

/* loopback - is the host part [h, h+n) a loopback name? */
static bool loopback(const char *h, size_t n)
{
	return (n == 9 && strncmp(h, "127.0.0.1", 9) == 0) ||
	       (n == 9 && strncasecmp(h, "localhost", 9) == 0) ||
	       (n == 5 && strncmp(h, "[::1]", 5) == 0);
}

/* http_url_ok - an absolute https URL (http only on loopback) without credentials or a
 * fragment, at most URL_MAX_LEN bytes */
bool http_url_ok(const char *u)
{
	const char *h, *end, *p;
	size_t n = strlen(u), hl;
	bool https;
	char host[256];

	if(n > URL_MAX_LEN)
		return false;
	for(p = u; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if(c <= 0x20 || c >= 0x7f || strchr("\"<>\\^`{|}#", c))
			return false;
	}
	if(strncmp(u, "https://", 8) == 0) {
		https = true;
		h = u + 8;
	} else if(strncmp(u, "http://", 7) == 0) {
		https = false;
		h = u + 7;
	} else {
		return false;
	}
	end = h + strcspn(h, "/?");
	if(memchr(h, '@', (size_t)(end - h)))
		return false; /* userinfo would carry credentials in the URL */
	if(*h == '[') {
		p = memchr(h, ']', (size_t)(end - h));
		if(!p)
			return false;
		hl = (size_t)(p - h) + 1;
	} else {
		p = memchr(h, ':', (size_t)(end - h));
		hl = p ? (size_t)(p - h) : (size_t)(end - h);
	}
	if(hl == 0 || hl >= sizeof(host))
		return false;
	if(h[hl] == ':') {
		/* a port: 1..5 digits */
		const char *d = h + hl + 1;
		size_t dl = (size_t)(end - d), i;
		if(dl == 0 || dl > 5)
			return false;
		for(i = 0; i < dl; i++)
			if(d[i] < '0' || d[i] > '9')
				return false;
	} else if(h + hl != end) {
		return false;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	if(host[0] != '[' && !host_ok(host))
		return false;
	return https || loopback(h, hl);
}

/* no_passphrase - PEM password callback: an encrypted key is refused, never prompted for */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

/* dkim_key_check - pem must be an unencrypted RSA private key of 1024..8192 bits; *record
 * (malloc'd, caller frees) is the DNS TXT value to publish (RFC 6376 3.6.1) */
static gw_rc dkim_key_check(const char *pem, char **record, struct gw_err *err)
{
	BIO *bio = NULL;
	EVP_PKEY *pk = NULL;
	unsigned char *der = NULL;
	char *b64 = NULL;
	int len, bits;
	gw_rc rc = GW_OK;

	*record = NULL;
	bio = BIO_new_mem_buf(pem, -1);
	if(!bio)
		return GW_ENOMEM;
	pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if(!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
		rc = gw_err_set(
		        err, GW_EINVAL, "dkim.private_key_pem",
		        "dkim.private_key_pem must be an unencrypted RSA private key in PEM form");
		goto out;
	}
	bits = EVP_PKEY_get_bits(pk);
	if(bits < DKIM_MIN_BITS || bits > DKIM_MAX_BITS) {
		rc = gw_err_set(err, GW_EINVAL, "dkim.private_key_pem",
		                "dkim.private_key_pem has %d bits: %d to %d are accepted", bits,
		                DKIM_MIN_BITS, DKIM_MAX_BITS);
		goto out;
	}
	len = i2d_PUBKEY(pk, &der);
	if(len <= 0) {
		rc = GW_ENOMEM;
		goto out;
	}
	b64 = malloc(4 * (((size_t)len + 2) / 3) + 32);
	if(!b64) {
		rc = GW_ENOMEM;
		goto out;
	}
	memcpy(b64, "v=DKIM1; k=rsa; p=", 18);
	EVP_EncodeBlock((unsigned char *)b64 + 18, der, len);
	*record = b64;
	b64 = NULL;
out:
	ERR_clear_error();
	free(b64);
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
	BIO_free(bio);
	return rc;
}

/* ca_pem_check - one or more PEM certificates (RFC 7468 "CERTIFICATE" blocks), each one
 * parsed by OpenSSL, and no other block: a private key pasted by mistake is refused, never
 * stored. Paths on the gateway's machine are the operator's business, not a tenant's. */
static gw_rc ca_pem_check(const char *pem, struct gw_err *err)
{
	BIO *bio = NULL;
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long len;
	int certs = 0;
	gw_rc rc = GW_OK;

	bio = BIO_new_mem_buf(pem, -1);
	if(!bio)
		return GW_ENOMEM;
	for(;;) {
		const unsigned char *p;
		X509 *cert;

		if(!PEM_read_bio(bio, &name, &header, &data, &len))
			break; /* no block left (or garbage after the last one: see below) */
		p = data;
		cert = strcmp(name, "CERTIFICATE") == 0 ? d2i_X509(NULL, &p, len) : NULL;
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_cleanse(data, (size_t)len);
		OPENSSL_free(data);
		name = header = NULL;
		data = NULL;
		if(!cert) {
			rc = gw_err_set(err, GW_EINVAL, "ca_pem",
			                "ca_pem must hold only PEM certificates (-----BEGIN "
			                "CERTIFICATE-----); block %d is something else",
			                certs + 1);
			goto out;
		}
		X509_free(cert);
		certs++;
	}
	if(certs == 0)
		rc = gw_err_set(err, GW_EINVAL, "ca_pem",
		                "ca_pem must hold at least one PEM certificate (-----BEGIN "
		                "CERTIFICATE-----)");
out:
	ERR_clear_error();
	BIO_free(bio);
	return rc;
}

/* fieldpath - "prefix" + "name" */
static void fieldpath(char *buf, size_t n, const char *prefix, const char *name)
{
	snprintf(buf, n, "%s%s", prefix, name);
}

/* take_secret - a secret field: a new value is sealed; {"set": true} keeps the stored one;
 * {"set": false} or absent: none. *out: new reference or NULL. */
static gw_rc take_secret(struct http_req *r, const json_t *v, const json_t *stored,
                         const char *path, size_t maxlen, int flags, json_t **out)
{
	char *sealed = NULL;
	const char *s;
	size_t len;
	gw_rc rc;

	*out = NULL;
	if(json_is_object(v)) {
		const json_t *set = json_object_get(v, "set");
		if(json_object_size(v) != 1 || !json_is_boolean(set))
			return gw_err_set(
			        &r->err, GW_EINVAL, path,
			        "%s must be a string, or {\"set\": true} to keep the stored one",
			        path);
		if(json_is_false(set))
			return GW_OK;
		if(!json_is_string(stored) ||
		   strncmp(json_string_value(stored), SEALED, strlen(SEALED)) != 0)
			return gw_err_set(&r->err, GW_EINVAL, path,
			                  "%s: there is no stored value to keep; give the value",
			                  path);
		*out = json_string(json_string_value(stored));
		return *out ? GW_OK : GW_ENOMEM;
	}
	if(!json_is_string(v))
		return gw_err_set(&r->err, GW_EINVAL, path, "%s must be a string", path);
	s = json_string_value(v);
	len = json_string_length(v);
	if(strlen(s) != len || len == 0 || len > maxlen || !jv_check_text(s, flags))
		return gw_err_set(&r->err, GW_EINVAL, path,
		                  "%s must be 1 to %zu bytes without control characters", path,
		                  maxlen);
	rc = crypto_seal(r->cfg->master_key, s, &sealed);
	if(rc)
		return rc;
	*out = json_pack("s++", SEALED, sealed, "");
	OPENSSL_cleanse(sealed, strlen(sealed));
	free(sealed);
	return *out ? GW_OK : GW_ENOMEM;
}

/* check_text - the checks of a present string field beyond its length */
static gw_rc check_text(struct http_req *r, const struct pfield *f, const char *path, const char *s)
{
	const char *const *c;

	switch(f->type) {
	case F_HOST:
		if(!host_ok(s))
			return gw_err_set(&r->err, GW_EINVAL, path,
			                  "%s must be a host name or IP address", path);
		break;
	case F_LABEL:
		if(!label_ok(s))
			return gw_err_set(&r->err, GW_EINVAL, path,
			                  "%s must be letters, digits, '-', '_' and '.' (1 to 100)",
			                  path);
		break;
	case F_URL:
		if(!http_url_ok(s))
			return gw_err_set(
			        &r->err, GW_EINVAL, path,
			        "%s must be an https URL without credentials (http only on "
			        "127.0.0.1 or localhost)",
			        path);
		break;
	case F_HEADER:
		/* jv_string refused CR and LF: it cannot add a header line */
		if(strlen(s) > 200)
			return gw_err_set(&r->err, GW_EINVAL, path, "%s must be at most 200 bytes",
			                  path);
		break;
	case F_CAPEM:
		return ca_pem_check(s, &r->err);
	case F_ENUM:
		for(c = f->choices; *c && strcmp(*c, s) != 0; c++)
			;
		if(!*c)
			return gw_err_set(&r->err, GW_EINVAL, path,
			                  "%s must be one of none, starttls, tls", path);
		break;
	default:
		break;
	}
	return GW_OK;
}

static gw_rc check_fields(struct http_req *r, const struct pfield *fields, const json_t *body,
                          const json_t *stored, const char *prefix, json_t *out);

/* check_dkim - the nested dkim object: its fields, then the key itself */
static gw_rc check_dkim(struct http_req *r, const json_t *v, const json_t *stored, json_t *out)
{
	json_t *d = json_object();
	char *record = NULL, *plain = NULL;
	const char *sealed;
	gw_rc rc;

	if(!d)
		return GW_ENOMEM;
	if(!json_is_object(v)) {
		rc = gw_err_set(
		        &r->err, GW_EINVAL, "dkim",
		        "dkim must be an object {domain, selector, private_key_pem} or null");
		goto out;
	}
	rc = check_fields(r, dkim_fields, v, json_is_object(stored) ? stored : NULL, "dkim.", d);
	if(rc)
		goto out;
	/* the key is checked in the clear (also a kept one: it might come from an older release) */
	sealed = json_string_value(json_object_get(d, "private_key_pem"));
	rc = crypto_open(r->cfg->master_key, sealed + strlen(SEALED), &plain);
	if(rc)
		goto out;
	rc = dkim_key_check(plain, &record, &r->err);
	if(rc)
		goto out;
	/* published beside the key: what the admin puts in DNS (public, not a secret) */
	json_object_set_new(
	        d, "dns_record",
	        json_pack("{s:s++, s:s}", "name", json_string_value(json_object_get(d, "selector")),
	                  "._domainkey.", json_string_value(json_object_get(d, "domain")), "value",
	                  record));
	rc = json_object_set_new(out, "dkim", d) ? GW_ENOMEM : GW_OK;
	d = NULL;
out:
	if(plain) {
		OPENSSL_cleanse(plain, strlen(plain));
		free(plain);
	}
	free(record);
	json_decref(d);
	return rc;
}

/* check_fields - validate body against fields (unknown keys refused), building out */
static gw_rc check_fields(struct http_req *r, const struct pfield *fields, const json_t *body,
                          const json_t *stored, const char *prefix, json_t *out)
{
	const struct pfield *f;
	const char *key;
	json_t *v;
	char path[96];
	gw_rc rc = GW_OK;

	json_object_foreach((json_t *)(uintptr_t)body, key, v)
	{
		for(f = fields; f->name && strcmp(f->name, key) != 0; f++)
			;
		if(!f->name) {
			fieldpath(path, sizeof(path), prefix, key);
			return gw_err_set(&r->err, GW_EINVAL, path,
			                  "%s is not a setting of this provider", path);
		}
	}
	for(f = fields; f->name; f++) {
		json_t *val = NULL;
		const char *s = NULL;
		long long n;
		bool here = false;

		fieldpath(path, sizeof(path), prefix, f->name);
		v = json_object_get(body, f->name);
		if(!v || json_is_null(v)) {
			if(f->required)
				return gw_err_set(&r->err, GW_EINVAL, path, "%s is required", path);
			if(f->def && json_object_set_new(out, f->name, json_string(f->def)))
				return GW_ENOMEM;
			continue;
		}
		switch(f->type) {
		case F_SECRET:
		case F_PEM:
			rc = take_secret(r, v, json_object_get(stored, f->name), path,
			                 f->type == F_PEM ? PEM_MAX_LEN : 1024,
			                 f->type == F_PEM ? JV_MULTILINE : 0, &val);
			if(!rc && !val && f->required)
				rc = gw_err_set(&r->err, GW_EINVAL, path, "%s is required", path);
			break;
		case F_PORT:
		case F_SECS:
		case F_CONNS:
			rc = jv_int(body, f->name, false, 1,
			            f->type == F_PORT ? 65535 : f->type == F_CONNS ? 64 : 3600, &n,
			            &here, &r->err);
			if(!rc)
				val = json_integer(n);
			break;
		case F_DKIM:
			rc = check_dkim(r, v, json_object_get(stored, "dkim"), out);
			if(rc)
				return rc;
			continue;
		case F_EMAIL:
			rc = jv_email(body, f->name, true, &s, &here, &r->err);
			if(!rc)
				val = json_string(s);
			break;
		default:
			rc = jv_string(body, f->name, true, 1,
			               f->type == F_URL     ? URL_MAX_LEN
			               : f->type == F_CAPEM ? CA_PEM_MAX
			                                    : 256,
			               f->type == F_CAPEM ? JV_MULTILINE : 0, &s, &here, &r->err);
			if(rc)
				break;
			rc = check_text(r, f, path, s);
			if(!rc) {
				size_t len = strlen(s);
				/* a base URL is stored without its trailing slash */
				while(f->type == F_URL && len > 8 && s[len - 1] == '/')
					len--;
				val = json_stringn(s, len);
			}
			break;
		}
		if(rc == GW_EINVAL && prefix[0] &&
		   strncmp(r->err.field, prefix, strlen(prefix)) != 0) {
			/* a jv_* check named the bare key: name the full path */
			char msg[sizeof(r->err.message)];
			snprintf(msg, sizeof(msg), "%s", r->err.message);
			gw_err_set(&r->err, GW_EINVAL, path, "%s%s", prefix, msg);
		}
		if(rc) {
			json_decref(val);
			return rc;
		}
		if(!val || json_object_set_new(out, f->name, val))
			return GW_ENOMEM;
	}
	return GW_OK;
}

/* cross_checks - what joins two fields, and the defaults that depend on another field */
static gw_rc cross_checks(struct http_req *r, const struct pdef *p, json_t *cfg)
{
	if(strcmp(p->name, "smtp") == 0) {
		const char *sec = json_string_value(json_object_get(cfg, "security"));
		bool user = json_object_get(cfg, "username") != NULL;
		bool pass = json_object_get(cfg, "password") != NULL;

		if(user && !pass)
			return gw_err_set(&r->err, GW_EINVAL, "password",
			                  "password is required with a username (SMTP AUTH)");
		if(pass && !user)
			return gw_err_set(&r->err, GW_EINVAL, "username",
			                  "username is required with a password (SMTP AUTH)");
		/* RFC 4954 4: AUTH PLAIN/LOGIN over a plain connection gives the password to
		 * everyone on the path; only the operator may allow it (a relay on its network) */
		if(user && strcmp(sec, "none") == 0 && !r->cfg->allow_plain_auth)
			return gw_err_set(&r->err, GW_EINVAL, "security",
			                  "security \"none\" with a username would send the credentials "
			                  "in clear: use starttls or tls (the operator may allow plain "
			                  "relays with serve --allow-plain-auth)");
		if(!json_object_get(cfg, "port"))
			/* RFC 8314 (465 implicit TLS), RFC 6409 (587 submission), RFC 5321 (25) */
			json_object_set_new(cfg, "port",
			                    json_integer(strcmp(sec, "tls") == 0        ? 465
			                                 : strcmp(sec, "starttls") == 0 ? 587
			                                                                : 25));
	} else if(strcmp(p->name, "outlook") == 0) {
		const char *tenant = json_string_value(json_object_get(cfg, "tenant"));
		char url[256];

		if(!json_object_get(cfg, "token_url")) {
			snprintf(url, sizeof(url),
			         "https://login.microsoftonline.com/%s/oauth2/v2.0/token", tenant);
			json_object_set_new(cfg, "token_url", json_string(url));
		}
		if(!json_object_get(cfg, "authorize_url")) {
			snprintf(url, sizeof(url),
			         "https://login.microsoftonline.com/%s/oauth2/v2.0/authorize", tenant);
			json_object_set_new(cfg, "authorize_url", json_string(url));
		}
	}
	return GW_OK;
}

/* mask - a copy of a stored config that shows each secret as {"set": true|false} */
static json_t *mask(const struct pfield *fields, const json_t *cfg)
{
	const struct pfield *f;
	json_t *out = json_object(), *v;
	const char *key;

	if(!out)
		return NULL;
	json_object_foreach((json_t *)(uintptr_t)cfg, key, v)
	{
		if(json_is_string(v) && strncmp(json_string_value(v), SEALED, strlen(SEALED)) == 0)
			json_object_set_new(out, key, json_pack("{s:b}", "set", 1));
		else if(json_is_object(v) && strcmp(key, "dkim") == 0)
			json_object_set_new(out, key, mask(dkim_fields, v));
		else if(json_is_object(v))
			json_object_set(out, key, v); /* dns_record: public */
		else if(!json_is_string(v) || strncmp(json_string_value(v), SEALED, strlen(SEALED)))
			json_object_set(out, key, v);
	}
	for(f = fields; f->name; f++)
		if((f->type == F_SECRET || f->type == F_PEM) && !json_object_get(out, f->name))
			json_object_set_new(out, f->name, json_pack("{s:b}", "set", 0));
	return out;
}

/* listing - every provider of org, masked, and which one sends email */
static gw_rc listing(struct http_req *r, int64_t org, json_t **out)
{
	json_t *stored = NULL, *res = json_object();
	size_t i;
	gw_rc rc;

	if(!res)
		return GW_ENOMEM;
	rc = store_provider_list(r->st, org, &stored);
	if(rc) {
		json_decref(res);
		return rc;
	}
	json_object_set_new(res, "email",
	                    json_string(json_object_get(stored, "smtp") ? "smtp" : "maildir"));
	for(i = 0; i < GW_ARRAY_LEN(providers); i++) {
		const json_t *c = json_object_get(stored, providers[i].name);
		json_object_set_new(res, providers[i].name,
		                    json_is_object(c) ? mask(providers[i].fields, c) : json_null());
	}
	json_decref(stored);
	*out = res;
	return GW_OK;
}

/* org_check - the caller is an admin of org, and org exists */
static gw_rc org_check(struct http_req *r, int64_t org)
{
	json_t *o = NULL;
	gw_rc rc = http_require_org(r, org, ANY_ADMIN);

	if(rc)
		return rc;
	rc = store_org_get(r->st, org, &o);
	json_decref(o);
	if(rc == GW_ENOTFOUND)
		return gw_err_set(&r->err, rc, "", "no such organisation");
	return rc;
}

/* name_of - the provider named by the path, or a 404 */
static gw_rc name_of(struct http_req *r, const struct pdef **p)
{
	char name[NAME_MAX_LEN];

	*p = NULL;
	if(http_seg(r, 0, name, sizeof(name)) || !(*p = pdef_find(name)))
		return gw_err_set(&r->err, GW_ENOTFOUND, "",
		                  "no such provider: use smtp, google, outlook or zoho");
	return GW_OK;
}

/* save_settings - the change (put: cfg; delete: cfg NULL) and, for SMTP, the emails that wait
 * after a failure (the old server was down, refused them for a while) made due at once, in one
 * transaction: a gateway that stops between the two cannot leave the new settings with the
 * queue still waiting on the old ones' failure */
static gw_rc save_settings(struct http_req *r, const struct pdef *p, const json_t *cfg)
{
	bool smtp = strcmp(p->name, "smtp") == 0;
	int n = 0;
	gw_rc rc;

	if((rc = store_begin(r->st)))
		return rc;
	rc = cfg ? store_provider_put(r->st, r->id[0], p->name, cfg)
	         : store_provider_delete(r->st, r->id[0], p->name);
	if(!rc && smtp)
		rc = store_outbox_email_due(r->st, r->id[0], &n);
	if(!rc)
		rc = store_commit(r->st);
	else
		store_rollback(r->st);
	if(rc)
		return rc;
	if(smtp)
		dispatch_settings_changed(r->id[0]); /* holds end in this process; workers wake */
	return GW_OK;
}

/* http_provider_put - PUT /v1/orgs/{org}/providers/{name} */
gw_rc http_provider_put(struct http_req *r, json_t **out)
{
	const struct pdef *p = NULL;
	json_t *stored = NULL, *cfg = NULL;
	gw_rc rc;

	if((rc = org_check(r, r->id[0])) || (rc = name_of(r, &p)))
		return rc;
	cfg = json_object();
	if(!cfg)
		return GW_ENOMEM;
	rc = store_provider_get(r->st, r->id[0], p->name, &stored);
	if(rc && rc != GW_ENOTFOUND)
		goto out;
	if((rc = check_fields(r, p->fields, r->body, stored, "", cfg)) ||
	   (rc = cross_checks(r, p, cfg)))
		goto out;
	if((rc = save_settings(r, p, cfg)))
		goto out;
	log_event("info", "provider_settings_changed",
	          json_pack("{s:I, s:s, s:I}", "org", (json_int_t)r->id[0], "provider", p->name,
	                    "by", (json_int_t)r->user.id));
	*out = mask(p->fields, cfg);
	rc = *out ? GW_OK : GW_ENOMEM;
out:
	json_decref(stored);
	json_decref(cfg);
	return rc;
}

/* http_provider_list - GET /v1/orgs/{org}/providers */
gw_rc http_provider_list(struct http_req *r, json_t **out)
{
	gw_rc rc = org_check(r, r->id[0]);

	return rc ? rc : listing(r, r->id[0], out);
}

/* http_provider_delete - DELETE /v1/orgs/{org}/providers/{name}: back to the default */
gw_rc http_provider_delete(struct http_req *r, json_t **out)
{
	const struct pdef *p = NULL;
	gw_rc rc;

	if((rc = org_check(r, r->id[0])) || (rc = name_of(r, &p)))
		return rc;
	if((rc = save_settings(r, p, NULL)))
		return rc;
	log_event("info", "provider_settings_deleted",
	          json_pack("{s:I, s:s, s:I}", "org", (json_int_t)r->id[0], "provider", p->name,
	                    "by", (json_int_t)r->user.id));
	return listing(r, r->id[0], out);
}
