/*
 * smtp_dkim.c - DKIM signatures (RFC 6376) on built messages, with libopendkim.
 *
 * Entry points: smtp_dkim_create(), smtp_dkim_sign(), smtp_dkim_destroy().
 *
 * Signatures are rsa-sha256 with relaxed/relaxed canonicalisation (RFC 6376 3.4.2, 3.4.4: they
 * survive the re-folding and white-space changes relays make) over the whole body, and cover
 * From, To, Subject, Date, Message-ID, MIME-Version, Content-Type and X-Ordinatus-Kind
 * (RFC 6376 5.4.1 lists From as required and the rest as recommended). The DKIM-Signature field
 * is prepended to the message, as a signer must (RFC 6376 5.6). Its t= is the send time on the
 * project's clock (clock_now: the test clock when one is set; DKIM_OPTS_FIXEDTIME).
 *
 * Threading: one signer per provider context, so per worker thread. Each signer has its own
 * DKIM_LIB (dkim_init), made in smtp_dkim_create() and closed in smtp_dkim_destroy().
 *
 * The parsed key: libopendkim takes the key as PEM text for every message and parses it in
 * dkim_eom (dkim_privkey_load: PEM_read_bio_PrivateKey on a memory BIO of that text). With
 * OpenSSL 3.0 that parse and the first signature with a fresh key (its Montgomery and
 * blinding set-up) cost about 1.4 ms, three times the signature itself. So each signer's key
 * is parsed once, in smtp_dkim_create, and registered (key_cache); PEM_read_bio_PrivateKey
 * below stands in front of OpenSSL's: asked to read exactly the text of a registered key
 * from a memory BIO, without a password callback, it hands out the parsed key (one more
 * reference; libopendkim frees it after each message); every other call goes on to
 * OpenSSL's own function (dlsym RTLD_NEXT), unchanged. The registry holds a copy of the PEM
 * (cleansed when the last signer of that key goes) and the EVP_PKEY, under one mutex.
 */
#include "smtp.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opendkim/dkim.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/clock.h"

#define DKIM_MIN_BITS 1024 /* RFC 8301 3.2: verifiers refuse less */
#define DKIM_NAME_MAX 253

struct smtp_dkim {
	DKIM_LIB *lib;          /* from dkim_init(); dkim_close() */
	unsigned char *key;     /* PEM, from strdup(); cleansed before free */
	unsigned char *selector; /* from strdup() */
	unsigned char *domain;  /* from strdup() */
	unsigned long jobs;     /* messages signed: names each job in libopendkim's logs */
	bool registered;        /* key_register'd */
};

/* ---- the parsed keys of the signers (see the top of the file) ---- */

#define KEY_CACHE_MAX 16 /* distinct keys at once; more are parsed per message as before */

typedef EVP_PKEY *(*pem_read_fn)(BIO *, EVP_PKEY **, pem_password_cb *, void *);

static struct key_entry {
	char *pem; /* NULL: free slot */
	size_t len;
	EVP_PKEY *pkey;
	int users;
} key_cache[KEY_CACHE_MAX];
static pthread_mutex_t key_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;
static pem_read_fn real_pem_read;

static void find_real(void)
{
	void *sym = dlsym(RTLD_NEXT, "PEM_read_bio_PrivateKey");

	/* POSIX's object-to-function pointer conversion, without the cast ISO C refuses */
	if(sym)
		memcpy(&real_pem_read, &sym, sizeof(real_pem_read));
}

/* PEM_read_bio_PrivateKey - a registered key from its own text, else OpenSSL's function */
EVP_PKEY *PEM_read_bio_PrivateKey(BIO *bp, EVP_PKEY **x, pem_password_cb *cb, void *u)
{
	char *data = NULL;
	long n;
	int i;

	if(bp && !x && !cb && BIO_method_type(bp) == BIO_TYPE_MEM &&
	   (n = BIO_get_mem_data(bp, &data)) > 0) {
		pthread_mutex_lock(&key_lock);
		for(i = 0; i < KEY_CACHE_MAX; i++) {
			struct key_entry *k = &key_cache[i];

			if(k->pem && k->len == (size_t)n && memcmp(k->pem, data, k->len) == 0 &&
			   EVP_PKEY_up_ref(k->pkey)) {
				EVP_PKEY *p = k->pkey;

				pthread_mutex_unlock(&key_lock);
				return p;
			}
		}
		pthread_mutex_unlock(&key_lock);
	}
	pthread_once(&real_once, find_real);
	return real_pem_read ? real_pem_read(bp, x, cb, u) : NULL;
}

/* key_register - parse pem once for every signer using it; no error (a full registry, an
 * unreadable key: libopendkim parses it per message, as without the registry) */
static void key_register(const char *pem)
{
	size_t len = strlen(pem);
	struct key_entry *free_slot = NULL;
	BIO *bio;
	EVP_PKEY *pkey;
	int i;

	pthread_mutex_lock(&key_lock);
	for(i = 0; i < KEY_CACHE_MAX; i++) {
		struct key_entry *k = &key_cache[i];

		if(k->pem && k->len == len && memcmp(k->pem, pem, len) == 0) {
			k->users++;
			pthread_mutex_unlock(&key_lock);
			return;
		}
		if(!k->pem && !free_slot)
			free_slot = k;
	}
	if(!free_slot) {
		pthread_mutex_unlock(&key_lock);
		return;
	}
	pthread_once(&real_once, find_real);
	bio = real_pem_read ? BIO_new_mem_buf(pem, (int)len) : NULL;
	pkey = bio ? real_pem_read(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	free_slot->pem = pkey ? malloc(len) : NULL;
	if(!free_slot->pem) {
		EVP_PKEY_free(pkey);
		pthread_mutex_unlock(&key_lock);
		return;
	}
	memcpy(free_slot->pem, pem, len);
	free_slot->len = len;
	free_slot->pkey = pkey;
	free_slot->users = 1;
	pthread_mutex_unlock(&key_lock);
}

/* key_unregister - one signer of pem less; the last one frees the parsed key */
static void key_unregister(const char *pem)
{
	size_t len = strlen(pem);
	int i;

	pthread_mutex_lock(&key_lock);
	for(i = 0; i < KEY_CACHE_MAX; i++) {
		struct key_entry *k = &key_cache[i];

		if(!k->pem || k->len != len || memcmp(k->pem, pem, len) != 0)
			continue;
		if(--k->users == 0) {
			OPENSSL_cleanse(k->pem, k->len);
			free(k->pem);
			EVP_PKEY_free(k->pkey);
			memset(k, 0, sizeof(*k));
		}
		break;
	}
	pthread_mutex_unlock(&key_lock);
}

/* the header fields signed (RFC 6376 5.4); libopendkim adds From if it were missing */
static const char *signed_headers[] = {
    "from",         "to",           "subject",      "date", "message-id",
    "mime-version", "content-type", "x-ordinatus-kind", NULL,
};

/* dns_label_ok - a domain or selector: letters, digits, '-', '.', '_' (RFC 6376 3.1, 3.5) */
static int dns_label_ok(const char *s)
{
	size_t n = strlen(s), i;

	if(n == 0 || n > DKIM_NAME_MAX || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for(i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if(!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		     c == '-' || c == '.' || c == '_'))
			return 0;
	}
	return 1;
}

/* key_check - the PEM must be an RSA private key of at least DKIM_MIN_BITS */
static gw_rc key_check(const char *pem, struct gw_err *err)
{
	gw_rc rc = GW_OK;
	BIO *bio = NULL;
	EVP_PKEY *pkey = NULL;

	bio = BIO_new_mem_buf(pem, -1);
	if(!bio) {
		rc = gw_err_set(err, GW_ENOMEM, "dkim.private_key_pem", "out of memory");
		goto out;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	if(!pkey) {
		rc = gw_err_set(err, GW_ECONFIG, "dkim.private_key_pem",
		                "dkim.private_key_pem is not a PEM private key");
		goto out;
	}
	if(EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
		rc = gw_err_set(err, GW_ECONFIG, "dkim.private_key_pem",
		                "dkim.private_key_pem must be an RSA key (rsa-sha256)");
		goto out;
	}
	if(EVP_PKEY_get_bits(pkey) < DKIM_MIN_BITS) {
		rc = gw_err_set(err, GW_ECONFIG, "dkim.private_key_pem",
		                "dkim.private_key_pem has %d bits, at least %d are needed",
		                EVP_PKEY_get_bits(pkey), DKIM_MIN_BITS);
		goto out;
	}
out:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	return rc;
}

/* smtp_dkim_destroy - free a signer; accepts NULL */
void smtp_dkim_destroy(struct smtp_dkim *d)
{
	if(!d)
		return;
	if(d->lib)
		dkim_close(d->lib);
	if(d->key) {
		if(d->registered)
			key_unregister((const char *)d->key);
		OPENSSL_cleanse(d->key, strlen((const char *)d->key));
		free(d->key);
	}
	free(d->selector);
	free(d->domain);
	free(d);
}

/* smtp_dkim_create - a signer for domain/selector with an RSA private key in PEM */
gw_rc smtp_dkim_create(const char *domain, const char *selector, const char *key_pem,
                       struct smtp_dkim **out, struct gw_err *err)
{
	gw_rc rc = GW_OK;
	struct smtp_dkim *d = NULL;
	DKIM_STAT st;

	*out = NULL;
	if(!domain || !dns_label_ok(domain)) {
		rc = gw_err_set(err, GW_ECONFIG, "dkim.domain",
		                "dkim.domain must be a domain name");
		goto out;
	}
	if(!selector || !dns_label_ok(selector)) {
		rc = gw_err_set(err, GW_ECONFIG, "dkim.selector",
		                "dkim.selector must be a DNS label");
		goto out;
	}
	if(!key_pem || !*key_pem) {
		rc = gw_err_set(err, GW_ECONFIG, "dkim.private_key_pem",
		                "dkim.private_key_pem is required");
		goto out;
	}
	rc = key_check(key_pem, err);
	if(rc)
		goto out;

	d = calloc(1, sizeof(*d));
	if(!d) {
		rc = gw_err_set(err, GW_ENOMEM, "", "out of memory");
		goto out;
	}
	d->key = (unsigned char *)strdup(key_pem);
	d->selector = (unsigned char *)strdup(selector);
	d->domain = (unsigned char *)strdup(domain);
	if(!d->key || !d->selector || !d->domain) {
		rc = gw_err_set(err, GW_ENOMEM, "", "out of memory");
		goto out;
	}
	d->lib = dkim_init(NULL, NULL);
	if(!d->lib) {
		rc = gw_err_set(err, GW_ENOMEM, "", "cannot initialise libopendkim");
		goto out;
	}
	/* the array is read, not kept: libopendkim compiles it into a pattern. len is the size of
	 * the pointer passed, not of the array (libopendkim checks len == sizeof(char **)). */
	st = dkim_options(d->lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, signed_headers,
	                  sizeof(char **));
	if(st != DKIM_STAT_OK) {
		rc = gw_err_set(err, GW_ECONFIG, "dkim", "cannot set the signed header list");
		gw_err_cause(err, "dkim_options: %s", dkim_getresultstr(st));
		goto out;
	}
	key_register((const char *)d->key);
	d->registered = true;
	*out = d;
	d = NULL;
out:
	smtp_dkim_destroy(d);
	return rc;
}

/* smtp_dkim_sign - msg (CRLF line ends) with a DKIM-Signature field prepended */
gw_rc smtp_dkim_sign(struct smtp_dkim *d, const char *msg, size_t len, char **out,
                     size_t *out_len, struct gw_err *err)
{
	gw_rc rc = GW_OK;
	DKIM *dk = NULL;
	DKIM_STAT st = DKIM_STAT_OK;
	unsigned char *sig = NULL;
	size_t siglen = 0, i, o, n;
	unsigned char job[32];
	char *buf = NULL;
	const char *step = "dkim_options", *detail;
	/* t= is the send time on the project's clock (the test clock when one is set), not
	 * time(2): libopendkim takes a fixed time per library, and each signer has its own */
	time_t t = clock_now();
	uint64_t now = t > 0 ? (uint64_t)t : 0;

	*out = NULL;
	if(out_len)
		*out_len = 0;
	st = dkim_options(d->lib, DKIM_OP_SETOPT, DKIM_OPTS_FIXEDTIME, &now, sizeof(now));
	if(st != DKIM_STAT_OK)
		goto fail;
	step = "dkim_sign";
	snprintf((char *)job, sizeof(job), "ordinatus-%lu", ++d->jobs);
	dk = dkim_sign(d->lib, job, NULL, d->key, d->selector, d->domain, DKIM_CANON_RELAXED,
	               DKIM_CANON_RELAXED, DKIM_SIGN_RSASHA256, -1, &st);
	if(!dk)
		goto fail;
	/* dkim_chunk only reads the buffer; its prototype predates const. The whole message in one
	 * chunk, then the end-of-input call, then end of message computes the signature. */
	step = "dkim_chunk";
	st = dkim_chunk(dk, (unsigned char *)(uintptr_t)msg, len);
	if(st != DKIM_STAT_OK)
		goto fail;
	st = dkim_chunk(dk, NULL, 0);
	if(st != DKIM_STAT_OK)
		goto fail;
	step = "dkim_eom";
	st = dkim_eom(dk, NULL);
	if(st != DKIM_STAT_OK)
		goto fail;
	step = "dkim_getsighdr_d";
	st = dkim_getsighdr_d(dk, strlen(DKIM_SIGNHEADER) + 2, &sig, &siglen);
	if(st != DKIM_STAT_OK)
		goto fail;

	/* "DKIM-Signature: " + value (its folds made CRLF) + CRLF + message */
	n = strlen(DKIM_SIGNHEADER) + 2 + 2 * siglen + 2 + len + 1;
	buf = malloc(n);
	if(!buf) {
		rc = gw_err_set(err, GW_ENOMEM, "", "out of memory");
		goto out;
	}
	o = (size_t)snprintf(buf, n, "%s: ", DKIM_SIGNHEADER);
	for(i = 0; i < siglen; i++) {
		if(sig[i] == '\r')
			continue;
		if(sig[i] == '\n')
			buf[o++] = '\r';
		buf[o++] = (char)sig[i];
	}
	buf[o++] = '\r';
	buf[o++] = '\n';
	memcpy(buf + o, msg, len);
	o += len;
	buf[o] = '\0';
	*out = buf;
	if(out_len)
		*out_len = o;
	goto out;

fail:
	rc = gw_err_set(err, GW_EINVAL, "dkim", "DKIM signing failed");
	detail = dk ? dkim_geterror(dk) : NULL;
	gw_err_cause(err, "%s: %s%s%s", step, dkim_getresultstr(st), detail ? ": " : "",
	             detail ? detail : "");
out:
	if(dk)
		dkim_free(dk);
	return rc;
}
