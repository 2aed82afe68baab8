/*
 * smtp.h - email: MIME building (RFC 5322, 2045-2047), the maildir provider (the embedded
 * default) and the SMTP provider (libcurl, RFC 5321, STARTTLS RFC 3207, DKIM RFC 6376).
 *
 * The gateway renders each email's message when it enqueues the row (smtp_mime_build, or a
 * fan-out's smtp_mime_template with each row's smtp_mime_fills) and a provider's send_message
 * sends those bytes. The payload the message is built from is a JSON object:
 *   { "kind": "new_request",                       X-Ordinatus-Kind
 *     "message_id": "<hex.kind@ordinatus>",       fixed per delivery: a retry resends the same
 *     "date": "2026-12-01T09:00:00Z",              RFC 3339, becomes the RFC 5322 Date
 *     "from": {"address": "a@b", "name": "Org"},
 *     "to":   {"address": "c@d", "name": "Customer Name"},
 *     "subject": "New request available",
 *     "text": "plain text body", "html": "<p>html body</p>",
 *     "ics": "BEGIN:VCALENDAR...", "ics_method": "REQUEST" | "CANCEL"     (both optional) }
 *
 * Threading: every function is reentrant; provider contexts belong to one worker thread.
 */
#ifndef SMTP_H
#define SMTP_H

#include <jansson.h>
#include <stddef.h>

#include "common/gw.h"
#include "common/provider.h"

/* smtp_mime_build - the full RFC 5322 message (CRLF line ends) for an email payload.
 * from_address/from_name, when not NULL, replace the payload's From (the SMTP provider's
 * configured sender). Any header value with CR or LF is refused (GW_EINVAL); non-ASCII header
 * text is RFC 2047 encoded; long header lines are folded. *out is malloc'd: caller frees. */
gw_rc smtp_mime_build(const json_t *payload, const char *from_address, const char *from_name,
                      char **out, size_t *len, struct gw_err *err);

/* A fan-out's message is built once and each row holds only its fills (gateway/lifecycle):
 *
 * smtp_mime_template - smtp_mime_build for a payload whose recipient is a stand-in: the To and
 * Message-ID fields become marks, and so does every occurrence of text_mark in the text body
 * and of html_mark in the HTML body (random strings that occur nowhere else: each mark stands
 * on a quoted-printable line of its own, so a fill of any length keeps every line within 76
 * characters). The payload's to and message_id must be valid but are not used. GW_EINVAL when
 * the header text holds the mark byte. *out is malloc'd (NUL-terminated): caller frees. */
gw_rc smtp_mime_template(const json_t *payload, const char *from_address, const char *from_name,
                         const char *text_mark, const char *html_mark, char **out, size_t *len,
                         struct gw_err *err);

/* smtp_mime_fills - one recipient's fills of a template: the To field, the Message-ID field,
 * text_name and html_name as quoted-printable fragments (each NULL or "" for none), checked
 * as smtp_mime_build checks the payload's. *out is malloc'd text: caller frees. */
gw_rc smtp_mime_fills(const char *to_address, const char *to_name, const char *message_id,
                      const char *text_name, const char *html_name, char **out,
                      struct gw_err *err);

/* smtp_mime_expand - the message of one recipient: tpl (smtp_mime_template) with fills
 * (smtp_mime_fills) in place of its marks; no JSON, one copy. GW_EINVAL for a damaged
 * template or fills. *out is malloc'd (NUL-terminated, *len bytes): caller frees. */
gw_rc smtp_mime_expand(const char *tpl, const char *fills, char **out, size_t *len);

/* smtp_header_safe - true when s may stand in a header: no CR, LF or NUL. */
int smtp_header_safe(const char *s);

/* DKIM signer (RFC 6376: rsa-sha256, relaxed/relaxed; signs From, To, Subject, Date,
 * Message-ID, MIME-Version, Content-Type, X-Ordinatus-Kind). One per provider context: it owns
 * its libopendkim instance (dkim_init). Not shared between threads. */
struct smtp_dkim;

/* smtp_dkim_create - a signer for domain and selector with an RSA private key (PEM, at least
 * 1024 bits; copied). GW_ECONFIG names the bad field. *out: caller frees (smtp_dkim_destroy). */
gw_rc smtp_dkim_create(const char *domain, const char *selector, const char *key_pem,
                       struct smtp_dkim **out, struct gw_err *err);

/* smtp_dkim_sign - msg (len bytes, CRLF line ends, as smtp_mime_build makes it) with a
 * DKIM-Signature field prepended. One RSA signature: about 0.3 ms of a core for 2048 bits.
 * *out is malloc'd (NUL-terminated, *out_len bytes): caller frees. */
gw_rc smtp_dkim_sign(struct smtp_dkim *d, const char *msg, size_t len, char **out,
                     size_t *out_len, struct gw_err *err);

/* smtp_dkim_destroy - free a signer and its libopendkim instance; accepts NULL. */
void smtp_dkim_destroy(struct smtp_dkim *d);

/* smtp_maildir_prepare - create DATA/maildir/{tmp,new,cur} so that a mail client (or `ls`) can
 * open the maildir before the first message arrives. */
gw_rc smtp_maildir_prepare(const char *data_dir, struct gw_err *err);

/* The maildir provider: config is ignored; messages go to DATA/maildir/{tmp,new,cur}, written
 * in tmp and renamed into new (the Maildir delivery protocol). */
extern const struct provider_ops smtp_maildir_ops;

/* The SMTP provider: config is the organisation's smtp settings with secrets decrypted:
 * {host, port, security:"none"|"starttls"|"tls", username, password, from_address, from_name,
 *  ca_pem, dkim:{domain, selector, private_key_pem}, allow_outbound:[CIDR...]}. Connections go
 * to public addresses and the allow_outbound ranges only (common/netguard.h). */
extern const struct provider_ops smtp_provider_ops;

#endif
