/*
 * smtp_client.c - the SMTP provider: email over libcurl (RFC 5321), with STARTTLS (RFC 3207) or
 * implicit TLS (RFC 8314), AUTH (RFC 4954) and DKIM (RFC 6376, smtp_dkim.c).
 *
 * Entry point: smtp_provider_ops ("smtp").
 *
 * Config (secrets already decrypted), borrowed during open():
 *   host, port (default 25 / 587 / 465 by security), security "none" | "starttls" | "tls"
 *   (default "starttls"), username, password, from_address, from_name, ca_pem (PEM
 *   certificates, used in memory), dkim: {domain, selector, private_key_pem}, and optionally
 *   connect_timeout and timeout (seconds; defaults 10 and 60), ehlo (the EHLO name; default:
 *   this host's name), allow_outbound (the operator's --allow-outbound CIDRs, which the
 *   dispatcher adds). A stored ca_file (a path, from older releases) is refused (GW_ECONFIG).
 *
 * Transport security: "starttls" requires the upgrade (CURLUSESSL_ALL: a server that does not
 * offer STARTTLS fails the send, it is never downgraded to plain text); "tls" is smtps://.
 * Certificates are always verified, against ca_pem when set (CURLOPT_CAINFO_BLOB), else the
 * system store.
 *
 * Outbound guard (common/netguard.h): the server's address, after DNS, must be public or in
 * allow_outbound; a refused one is never connected to and the row is dead with
 * NETGUARD_REFUSED, the same words whatever listens there.
 *
 * One CURL easy handle per context, so the connection stays open between the messages of one
 * worker (libcurl keeps it in the handle's cache and starts the next with MAIL FROM).
 *
 * Outcome: 2xx after DATA is sent; 4xx transient (454, a temporary AUTH failure, included);
 * 5xx permanent, with 535 (credentials refused, RFC 4954 6) and 530/534/538 (AUTH, a stronger
 * mechanism or TLS needed) named as such in the detail: SMTP has no token to refresh, so they
 * are not PROVIDER_AUTH. Connection, timeout and TLS failures are transient. Failures of the
 * server or of the settings rather than of the message (no connection, TLS, the greeting, 421,
 * 535, 530/534/538) are marked unreachable: the dispatcher holds the organisation's other
 * messages back instead of trying (or dead-lettering) each. The detail is the
 * server's last error reply (its reply lines through the header callback) or libcurl's
 * error text: never the password.
 *
 * Threading: a context belongs to one worker thread. curl_global_init() must have run.
 */
#include "smtp.h"

#include "common/netguard.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#define SMTP_CONNECT_TIMEOUT 10 /* seconds to connect, TLS handshake included */
#define SMTP_TIMEOUT 60         /* seconds for one whole message */
#define SMTP_LOW_SPEED_TIME 30  /* abort when under 1 byte/s for this long */
#define SMTP_HOST_MAX 253

enum smtp_security { SEC_NONE, SEC_STARTTLS, SEC_TLS };

struct smtp_ctx {
	CURL *curl;                   /* one handle: its connection is reused */
	char *from_address;           /* from strdup() */
	char *from_name;              /* from strdup() or NULL */
	char *password;               /* from strdup() or NULL: only to keep it out of details */
	struct smtp_dkim *dkim;       /* or NULL */
	/* the message being sent */
	const char *upload;           /* borrowed during one send */
	size_t upload_len;
	size_t upload_pos;
	char reply[400];              /* the server's last reply, continuation lines joined */
	char err_reply[400];          /* its last 4xx/5xx reply: the QUIT after it says "221" */
	int reply_open;               /* the last line read was "NNN-": the reply goes on */
	char errbuf[CURL_ERROR_SIZE]; /* libcurl's words for its error */
	struct netguard guard;        /* installed on curl: it must not move */
};

/* cfg_str - config[key] as a string or NULL; anything else is a config error */
static gw_rc cfg_str(const json_t *config, const char *key, const char **out, struct gw_err *err)
{
	const json_t *v = json_object_get(config, key);

	*out = NULL;
	if(!v || json_is_null(v))
		return GW_OK;
	if(!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return gw_err_set(err, GW_ECONFIG, key, "smtp %s must be a string", key);
	*out = json_string_value(v);
	return GW_OK;
}

/* cfg_seconds - config[key] as a positive number of seconds, def when absent */
static gw_rc cfg_seconds(const json_t *config, const char *key, long def, long *out,
                         struct gw_err *err)
{
	const json_t *v = json_object_get(config, key);

	*out = def;
	if(!v || json_is_null(v))
		return GW_OK;
	if(!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 3600)
		return gw_err_set(err, GW_ECONFIG, key, "smtp %s must be 1 to 3600 seconds", key);
	*out = (long)json_integer_value(v);
	return GW_OK;
}

/* host_ok - a host name or IP literal: no characters that could change the URL */
static int host_ok(const char *s)
{
	size_t n = strlen(s), i;

	if(n == 0 || n > SMTP_HOST_MAX)
		return 0;
	for(i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if(!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		     c == '-' || c == '.' || c == ':' || c == '_'))
			return 0;
	}
	return 1;
}

/* address_ok - a sender address that can stand in MAIL FROM: one '@', printable, no '<>' */
static int address_ok(const char *s)
{
	const char *at = strchr(s, '@');
	size_t i;

	if(!at || at == s || !at[1] || strchr(at + 1, '@') || strlen(s) > 254)
		return 0;
	for(i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if(c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == ',' || c == ';')
			return 0;
	}
	return 1;
}

/* smtp_read - CURLOPT_READFUNCTION: the message, then end of data. libcurl does the
 * dot-stuffing and the final CRLF.CRLF (RFC 5321 4.5.2). */
static size_t smtp_read(char *buf, size_t size, size_t nitems, void *userp)
{
	struct smtp_ctx *sc = userp;
	size_t room = size * nitems, left = sc->upload_len - sc->upload_pos;
	size_t n = left < room ? left : room;

	memcpy(buf, sc->upload + sc->upload_pos, n);
	sc->upload_pos += n;
	return n;
}

/* reply_line - keep one server reply line: a new reply replaces the kept one; the lines of a
 * multiline reply ("250-...", RFC 5321 4.2.1) are joined */
static void reply_line(struct smtp_ctx *sc, const char *line, size_t n)
{
	size_t used, i;

	if(n == 0)
		return;
	if(!sc->reply_open)
		sc->reply[0] = '\0';
	used = strlen(sc->reply);
	if(used && used + 3 < sizeof(sc->reply)) {
		memcpy(sc->reply + used, " | ", 3);
		used += 3;
	}
	for(i = 0; i < n && used + 1 < sizeof(sc->reply); i++) {
		unsigned char c = (unsigned char)line[i];

		sc->reply[used++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	sc->reply[used] = '\0';
	sc->reply_open = n > 3 && line[3] == '-';
	if(sc->reply[0] == '4' || sc->reply[0] == '5')
		memcpy(sc->err_reply, sc->reply, used + 1);
}

/* smtp_header - CURLOPT_HEADERFUNCTION: collect what the server said. libcurl hands every reply
 * line of SMTP (as of FTP, IMAP and POP3) to the header callback (pingpong.c, "response lines
 * can be seen as a kind of headers"), without verbose mode: a debug callback would need
 * CURLOPT_VERBOSE, which also has libcurl format and hand over every command, every upload
 * chunk and its informational texts, a few microseconds of every message. */
static size_t smtp_header(char *data, size_t size, size_t nitems, void *userp)
{
	struct smtp_ctx *sc = userp;
	size_t start = 0, i;

	size *= nitems;
	for(i = 0; i <= size; i++) {
		if(i < size && data[i] != '\r' && data[i] != '\n')
			continue;
		reply_line(sc, data + start, i - start);
		start = i + 1;
	}
	return size;
}

/* smtp_close - free a context: closes the connection (QUIT) */
static void smtp_close(void *ctx)
{
	struct smtp_ctx *sc = ctx;

	if(!sc)
		return;
	if(sc->curl)
		curl_easy_cleanup(sc->curl);
	if(sc->password) {
		OPENSSL_cleanse(sc->password, strlen(sc->password));
		free(sc->password);
	}
	free(sc->from_address);
	free(sc->from_name);
	smtp_dkim_destroy(sc->dkim);
	free(sc);
}

/* smtp_setup - the handle options that hold for every message of the context */
static gw_rc smtp_setup(struct smtp_ctx *sc, const char *url, const char *username,
                        const char *password, const char *ca_pem, long use_ssl,
                        long connect_timeout, long timeout, struct gw_err *err)
{
	CURL *h = sc->curl;
	char mail_from[300];
	CURLcode cc = CURLE_OK;

	snprintf(mail_from, sizeof(mail_from), "<%s>", sc->from_address);
#define SET(opt, val)                                                                        \
	do {                                                                                 \
		if(!cc)                                                                      \
			cc = curl_easy_setopt(h, opt, val);                                  \
	} while(0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	SET(CURLOPT_UPLOAD, 1L);
	/* the smallest upload buffer (16 KiB, CURLOPT_UPLOAD_BUFFERSIZE(3)): the SMTP transfer
	 * allocates twice its size for dot-stuffing on every message, and with the default 64 KiB
	 * that is above the process's fixed 128 KiB mmap threshold (serve), so each message cost
	 * an mmap, its page faults and a munmap */
	SET(CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
	SET(CURLOPT_READFUNCTION, smtp_read);
	SET(CURLOPT_READDATA, sc);
	SET(CURLOPT_MAIL_FROM, mail_from);
	SET(CURLOPT_USE_SSL, use_ssl);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if(ca_pem) {
		struct curl_blob blob = {(void *)(uintptr_t)ca_pem, strlen(ca_pem), CURL_BLOB_COPY};
		SET(CURLOPT_CAINFO_BLOB, &blob);
	}
	if(username) {
		SET(CURLOPT_USERNAME, username);
		SET(CURLOPT_PASSWORD, password ? password : "");
	}
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_CONNECTTIMEOUT, connect_timeout);
	SET(CURLOPT_TIMEOUT, timeout);
	SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SET(CURLOPT_LOW_SPEED_TIME, (long)SMTP_LOW_SPEED_TIME);
	SET(CURLOPT_ERRORBUFFER, sc->errbuf);
	SET(CURLOPT_HEADERFUNCTION, smtp_header);
	SET(CURLOPT_HEADERDATA, sc);
#undef SET
	if(!cc)
		cc = netguard_curl(&sc->guard, h);
	if(cc)
		return gw_err_set(err, GW_ECONFIG, "", "libcurl refused an option: %s",
		                  curl_easy_strerror(cc));
	return GW_OK;
}

/* smtp_open - check the config and make the context with its CURL handle */
static gw_rc smtp_open(const json_t *config, const char *data_dir, void **ctx)
{
	gw_rc rc = GW_OK;
	struct gw_err err;
	struct smtp_ctx *sc = NULL;
	const char *host, *security, *username, *password, *from_address, *from_name, *ca_pem;
	const char *ehlo;
	const json_t *dkim, *port_v;
	long port, use_ssl, connect_timeout, timeout;
	enum smtp_security sec = SEC_STARTTLS;
	char url[SMTP_HOST_MAX + 300];

	(void)data_dir;
	*ctx = NULL;
	memset(&err, 0, sizeof(err));
	if(!json_is_object(config))
		return GW_ECONFIG;
	if((rc = cfg_str(config, "host", &host, &err)) ||
	   (rc = cfg_str(config, "security", &security, &err)) ||
	   (rc = cfg_str(config, "username", &username, &err)) ||
	   (rc = cfg_str(config, "password", &password, &err)) ||
	   (rc = cfg_str(config, "from_address", &from_address, &err)) ||
	   (rc = cfg_str(config, "from_name", &from_name, &err)) ||
	   (rc = cfg_str(config, "ca_pem", &ca_pem, &err)) ||
	   (rc = cfg_str(config, "ehlo", &ehlo, &err)) ||
	   (rc = cfg_seconds(config, "connect_timeout", SMTP_CONNECT_TIMEOUT, &connect_timeout,
	                     &err)) ||
	   (rc = cfg_seconds(config, "timeout", SMTP_TIMEOUT, &timeout, &err)))
		goto out;
	/* ca_file (a path on the gateway's machine) is gone: the operator's files are not the
	 * tenant's to name. The dispatcher says so on the row. */
	if(json_object_get(config, "ca_file")) {
		rc = GW_ECONFIG;
		goto out;
	}
	if(!host || !host_ok(host) || !from_address || !address_ok(from_address) ||
	   (from_name && !smtp_header_safe(from_name)) || (ehlo && !host_ok(ehlo))) {
		rc = GW_ECONFIG;
		goto out;
	}
	if(!security || !strcmp(security, "starttls"))
		sec = SEC_STARTTLS;
	else if(!strcmp(security, "tls"))
		sec = SEC_TLS;
	else if(!strcmp(security, "none"))
		sec = SEC_NONE;
	else {
		rc = GW_ECONFIG;
		goto out;
	}
	port = sec == SEC_TLS ? 465 : sec == SEC_STARTTLS ? 587 : 25;
	port_v = json_object_get(config, "port");
	if(port_v && !json_is_null(port_v)) {
		if(!json_is_integer(port_v) || json_integer_value(port_v) < 1 ||
		   json_integer_value(port_v) > 65535) {
			rc = GW_ECONFIG;
			goto out;
		}
		port = (long)json_integer_value(port_v);
	}
	use_ssl = sec == SEC_NONE ? (long)CURLUSESSL_NONE : (long)CURLUSESSL_ALL;
	/* an IPv6 literal goes in brackets (RFC 3986 3.2.2); the path is the EHLO name */
	snprintf(url, sizeof(url), "%s://%s%s%s:%ld/%s", sec == SEC_TLS ? "smtps" : "smtp",
	         strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port,
	         ehlo ? ehlo : "");

	sc = calloc(1, sizeof(*sc));
	if(!sc) {
		rc = GW_ENOMEM;
		goto out;
	}
	sc->from_address = strdup(from_address);
	sc->from_name = from_name ? strdup(from_name) : NULL;
	sc->password = password ? strdup(password) : NULL;
	sc->curl = curl_easy_init();
	if((rc = netguard_from_json(json_object_get(config, "allow_outbound"), &sc->guard)))
		goto out;
	if(!sc->from_address || (from_name && !sc->from_name) || (password && !sc->password) ||
	   !sc->curl) {
		rc = GW_ENOMEM;
		goto out;
	}
	dkim = json_object_get(config, "dkim");
	if(dkim && !json_is_null(dkim)) {
		const char *domain, *selector, *key;

		if(!json_is_object(dkim)) {
			rc = GW_ECONFIG;
			goto out;
		}
		if((rc = cfg_str(dkim, "domain", &domain, &err)) ||
		   (rc = cfg_str(dkim, "selector", &selector, &err)) ||
		   (rc = cfg_str(dkim, "private_key_pem", &key, &err)))
			goto out;
		rc = smtp_dkim_create(domain, selector, key, &sc->dkim, &err);
		if(rc)
			goto out;
	}
	rc = smtp_setup(sc, url, username, password, ca_pem, use_ssl, connect_timeout, timeout,
	                &err);
	if(rc)
		goto out;
	*ctx = sc;
	sc = NULL;
out:
	smtp_close(sc);
	return rc;
}

/* fill_kind - the payload, or a copy with "kind" from the dispatcher when it has none */
static const json_t *fill_kind(const json_t *payload, const char *kind, json_t **copy)
{
	*copy = NULL;
	if(!json_is_object(payload) || json_object_get(payload, "kind") || !kind)
		return payload;
	*copy = json_deep_copy(payload);
	if(!*copy || json_object_set_new(*copy, "kind", json_string(kind)) != 0)
		return NULL;
	return *copy;
}

/* server_failed - whether a transfer that got no SMTP verdict failed for the server's sake: no
 * address, no connection, no TLS handshake or a certificate refused, a greeting that is not
 * SMTP, or no answer in time. Not a send or receive error on a connection already open (a
 * reused one the server had just closed fails so once, and the next message opens another). */
static bool server_failed(CURLcode cc)
{
	switch(cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_WEIRD_SERVER_REPLY:
		return true;
	default:
		return false;
	}
}

/* classify - the outcome and detail of one transfer */
static void classify(struct smtp_ctx *sc, CURLcode cc, struct provider_result *res)
{
	const char *said = sc->err_reply[0] ? sc->err_reply : sc->reply;
	long code = 0;

	curl_easy_getinfo(sc->curl, CURLINFO_RESPONSE_CODE, &code);
	if(cc != CURLE_OK && netguard_blocked(&sc->guard)) {
		/* nothing was connected: no far side's words, the same answer for every port.
		 * Permanent: it stays refused until the settings or the operator change. */
		res->outcome = PROVIDER_PERMANENT;
		snprintf(res->detail, sizeof(res->detail), "%s", NETGUARD_REFUSED);
		return;
	}
	if(cc == CURLE_OK) {
		res->outcome = PROVIDER_SENT;
		snprintf(res->detail, sizeof(res->detail), "%s", sc->reply);
	} else if(code >= 400 && code <= 499) {
		/* 4xx, 454 "temporary authentication failure" (RFC 4954 6) included; 421 is the
		 * server closing the channel (RFC 5321 4.2.3, "Service not available"): for every
		 * message, not this one */
		res->outcome = PROVIDER_TRANSIENT;
		res->unreachable = code == 421;
		snprintf(res->detail, sizeof(res->detail), "%s", said[0] ? said : "SMTP 4xx");
	} else if(cc == CURLE_LOGIN_DENIED || code == 535) {
		/* RFC 4954 6: credentials refused. Nothing to refresh (no OAuth here): it fails
		 * the same way until an admin changes the settings, so it is permanent, and the
		 * settings' fault, not the message's (every message fails alike) */
		res->outcome = PROVIDER_PERMANENT;
		res->unreachable = true;
		snprintf(res->detail, sizeof(res->detail),
		         "SMTP authentication refused (check username and password): %s",
		         said[0] ? said : curl_easy_strerror(cc));
	} else if(code == 530 || code == 534 || code == 538) {
		/* RFC 4954 6 / RFC 3207 4: the server wants AUTH, a stronger mechanism or TLS: the
		 * settings' fault, for every message */
		res->outcome = PROVIDER_PERMANENT;
		res->unreachable = true;
		snprintf(res->detail, sizeof(res->detail),
		         "SMTP server requires authentication or encryption: %s", said);
	} else if(code >= 500 && code <= 599) {
		res->outcome = PROVIDER_PERMANENT;
		snprintf(res->detail, sizeof(res->detail), "%s", said[0] ? said : "SMTP 5xx");
	} else {
		/* no SMTP verdict: connection refused, timeout, TLS or certificate failure */
		res->outcome = PROVIDER_TRANSIENT;
		res->unreachable = server_failed(cc);
		snprintf(res->detail, sizeof(res->detail), "curl error %d: %s", (int)cc,
		         sc->errbuf[0] ? sc->errbuf : curl_easy_strerror(cc));
	}
	/* a server that echoes what it was sent must not put the password in the delivery row */
	if(sc->password && sc->password[0] && strstr(res->detail, sc->password))
		snprintf(res->detail, sizeof(res->detail), "SMTP %ld (reply withheld: it held a "
		         "credential)", code);
}

/* smtp_transfer - sign msg (when the context has a DKIM key) and hand it to the server for rcpt
 * (an address smtp_mime_build or smtp_mime_fills checked) */
static void smtp_transfer(struct smtp_ctx *sc, const char *rcpt_addr, const char *msg, size_t len,
                          struct provider_result *res)
{
	struct gw_err err;
	struct curl_slist *rcpt = NULL;
	char *signed_msg = NULL, rcpt_to[300];
	CURLcode cc;
	gw_rc rc;

	memset(&err, 0, sizeof(err));
	if(!rcpt_addr || !*rcpt_addr || !smtp_header_safe(rcpt_addr) ||
	   strlen(rcpt_addr) > sizeof(rcpt_to) - 3 || strpbrk(rcpt_addr, "<> \t")) {
		res->outcome = PROVIDER_PERMANENT;
		snprintf(res->detail, sizeof(res->detail), "unusable email: no valid recipient");
		return;
	}
	if(sc->dkim) {
		rc = smtp_dkim_sign(sc->dkim, msg, len, &signed_msg, &len, &err);
		if(rc) {
			res->outcome = rc == GW_ENOMEM ? PROVIDER_TRANSIENT : PROVIDER_PERMANENT;
			snprintf(res->detail, sizeof(res->detail), "%.200s (%.200s)", err.message,
			         err.cause);
			return;
		}
	}
	snprintf(rcpt_to, sizeof(rcpt_to), "<%s>", rcpt_addr);
	rcpt = curl_slist_append(NULL, rcpt_to);
	if(!rcpt) {
		res->outcome = PROVIDER_TRANSIENT;
		snprintf(res->detail, sizeof(res->detail), "smtp: out of memory");
		free(signed_msg);
		return;
	}

	sc->upload = signed_msg ? signed_msg : msg;
	sc->upload_len = len;
	sc->upload_pos = 0;
	sc->reply[0] = '\0';
	sc->err_reply[0] = '\0';
	sc->reply_open = 0;
	sc->errbuf[0] = '\0';
	sc->guard.refused = 0;
	sc->guard.opened = 0;
	curl_easy_setopt(sc->curl, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(sc->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	cc = curl_easy_perform(sc->curl);
	curl_easy_setopt(sc->curl, CURLOPT_MAIL_RCPT, NULL);
	sc->upload = NULL;
	classify(sc, cc, res);
	curl_slist_free_all(rcpt);
	free(signed_msg);
}

/* smtp_send - build the message of a JSON payload (rows queued before messages were rendered
 * at enqueue, and the test email) and send it */
static void smtp_send(void *ctx, const char *kind, const json_t *payload,
                      struct provider_result *res)
{
	struct smtp_ctx *sc = ctx;
	struct gw_err err;
	json_t *copy = NULL;
	const json_t *p;
	char *msg = NULL;
	size_t len = 0;
	gw_rc rc;

	res->outcome = PROVIDER_SENT;
	res->retry_after = -1;
	res->detail[0] = '\0';
	res->out = NULL;
	res->unreachable = false;
	memset(&err, 0, sizeof(err));

	p = fill_kind(payload, kind, &copy);
	if(!p) {
		res->outcome = PROVIDER_TRANSIENT;
		snprintf(res->detail, sizeof(res->detail), "smtp: out of memory");
		goto out;
	}
	rc = smtp_mime_build(p, sc->from_address, sc->from_name, &msg, &len, &err);
	if(rc) {
		res->outcome = rc == GW_ENOMEM ? PROVIDER_TRANSIENT : PROVIDER_PERMANENT;
		snprintf(res->detail, sizeof(res->detail), "unusable email payload: %s%s%s",
		         err.field, err.field[0] ? ": " : "", err.message);
		goto out;
	}
	/* smtp_mime_build checked to.address: one '@', printable, no '<', '>' or white space */
	smtp_transfer(sc, json_string_value(json_object_get(json_object_get(p, "to"), "address")),
	              msg, len, res);
out:
	free(msg);
	json_decref(copy);
}

/* smtp_send_message - a message rendered at enqueue: signed when configured, sent as it is */
static void smtp_send_message(void *ctx, const char *rcpt, const char *msg, size_t len,
                              struct provider_result *res)
{
	res->outcome = PROVIDER_SENT;
	res->retry_after = -1;
	res->detail[0] = '\0';
	res->out = NULL;
	res->unreachable = false;
	smtp_transfer(ctx, rcpt, msg, len, res);
}

const struct provider_ops smtp_provider_ops = {
    .name = "smtp",
    .open = smtp_open,
    .send = smtp_send,
    .send_message = smtp_send_message,
    .close = smtp_close,
};
