/*
 * crypto.c - random tokens, SHA-256, AES-256-GCM sealing, the master key file.
 *
 * Entry points: crypto_token(), crypto_sha256_hex(), crypto_key_create(), crypto_key_load(),
 * crypto_seal(), crypto_open(). Threading: reentrant (OpenSSL 3 is thread-safe).
 */
#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NONCE_LEN 12
#define TAG_LEN 16

/* b64url - base64url without padding of len bytes into out (4*ceil(len/3)+1 bytes) */
static void b64url(const unsigned char *in, size_t len, char *out)
{
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	int i;

	for(i = 0; i < n; i++) {
		if(out[i] == '+')
			out[i] = '-';
		else if(out[i] == '/')
			out[i] = '_';
	}
	while(n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
}

/* crypto_token - a fresh random token */
gw_rc crypto_token(const char *prefix, char *out, size_t n)
{
	unsigned char raw[32];
	char enc[48];

	if(RAND_bytes(raw, sizeof(raw)) != 1)
		return GW_EIO;
	b64url(raw, sizeof(raw), enc);
	OPENSSL_cleanse(raw, sizeof(raw));
	if((size_t)snprintf(out, n, "%s%s", prefix, enc) >= n)
		return GW_EINVAL;
	return GW_OK;
}

/* crypto_sha256_hex - hex digest */
void crypto_sha256_hex(const void *data, size_t len, char out[CRYPTO_HASH_HEX])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	static const char hex[] = "0123456789abcdef";
	size_t i;

	SHA256(data, len, md);
	for(i = 0; i < sizeof(md); i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

/* crypto_key_create - write a new master key */
gw_rc crypto_key_create(const char *path, struct gw_err *err)
{
	unsigned char key[CRYPTO_KEY_LEN];
	gw_rc rc = GW_OK;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if(fd < 0)
		return gw_err_set(err, GW_EIO, "", "cannot create %s: %s", path, strerror(errno));
	if(RAND_bytes(key, sizeof(key)) != 1) {
		rc = gw_err_set(err, GW_EIO, "", "no randomness for the master key");
		goto out;
	}
	if(write(fd, key, sizeof(key)) != (ssize_t)sizeof(key) || fsync(fd) != 0)
		rc = gw_err_set(err, GW_EIO, "", "cannot write %s: %s", path, strerror(errno));
out:
	OPENSSL_cleanse(key, sizeof(key));
	close(fd);
	return rc;
}

/* crypto_key_load - read the master key */
gw_rc crypto_key_load(const char *path, unsigned char key[CRYPTO_KEY_LEN], struct gw_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got;

	if(fd < 0)
		return gw_err_set(err, GW_EIO, "", "cannot open %s: %s", path, strerror(errno));
	got = read(fd, key, CRYPTO_KEY_LEN);
	close(fd);
	if(got != CRYPTO_KEY_LEN)
		return gw_err_set(err, GW_EIO, "", "%s is not a master key", path);
	return GW_OK;
}

/* crypto_seal - AES-256-GCM seal */
gw_rc crypto_seal(const unsigned char key[CRYPTO_KEY_LEN], const char *plain, char **out)
{
	size_t plen = strlen(plain);
	size_t rawlen = NONCE_LEN + plen + TAG_LEN;
	unsigned char *raw = NULL;
	char *enc = NULL;
	EVP_CIPHER_CTX *ctx = NULL;
	gw_rc rc = GW_OK;
	int n = 0;

	*out = NULL;
	raw = malloc(rawlen);
	enc = malloc(4 * ((rawlen + 2) / 3) + 1);
	ctx = EVP_CIPHER_CTX_new();
	if(!raw || !enc || !ctx) {
		rc = GW_ENOMEM;
		goto out;
	}
	if(RAND_bytes(raw, NONCE_LEN) != 1 ||
	   EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw) != 1 ||
	   EVP_EncryptUpdate(ctx, raw + NONCE_LEN, &n, (const unsigned char *)plain, (int)plen) !=
	       1 ||
	   EVP_EncryptFinal_ex(ctx, raw + NONCE_LEN + n, &n) != 1 ||
	   EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, raw + NONCE_LEN + plen) != 1) {
		rc = GW_EIO;
		goto out;
	}
	EVP_EncodeBlock((unsigned char *)enc, raw, (int)rawlen);
	*out = enc;
	enc = NULL;
out:
	EVP_CIPHER_CTX_free(ctx);
	free(raw);
	free(enc);
	return rc;
}

/* crypto_open - AES-256-GCM open */
gw_rc crypto_open(const unsigned char key[CRYPTO_KEY_LEN], const char *sealed, char **plain)
{
	size_t slen = strlen(sealed);
	unsigned char *raw = NULL;
	char *txt = NULL;
	EVP_CIPHER_CTX *ctx = NULL;
	gw_rc rc = GW_OK;
	int rawlen, n = 0, pad = 0;
	size_t plen = 0;

	*plain = NULL;
	if(slen == 0 || slen % 4 != 0)
		return GW_EINVAL;
	raw = malloc(slen);
	ctx = EVP_CIPHER_CTX_new();
	if(!raw || !ctx) {
		rc = GW_ENOMEM;
		goto out;
	}
	rawlen = EVP_DecodeBlock(raw, (const unsigned char *)sealed, (int)slen);
	if(sealed[slen - 1] == '=')
		pad++;
	if(sealed[slen - 2] == '=')
		pad++;
	rawlen -= pad;
	if(rawlen < NONCE_LEN + TAG_LEN) {
		rc = GW_EINVAL;
		goto out;
	}
	plen = (size_t)rawlen - NONCE_LEN - TAG_LEN;
	txt = malloc(plen + 1);
	if(!txt) {
		rc = GW_ENOMEM;
		goto out;
	}
	if(EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw) != 1 ||
	   EVP_DecryptUpdate(ctx, (unsigned char *)txt, &n, raw + NONCE_LEN, (int)plen) != 1 ||
	   EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, raw + NONCE_LEN + plen) != 1 ||
	   EVP_DecryptFinal_ex(ctx, (unsigned char *)txt + n, &n) != 1) {
		rc = GW_EINVAL;
		goto out;
	}
	txt[plen] = '\0';
	*plain = txt;
	txt = NULL;
out:
	EVP_CIPHER_CTX_free(ctx);
	free(raw);
	if(txt) {
		OPENSSL_cleanse(txt, plen);
		free(txt);
	}
	return rc;
}
