/*
 * crypto.h - tokens, hashes and secrets at rest (OpenSSL).
 *
 * Tokens are 32 random bytes (RAND_bytes) in base64url; only their SHA-256 is stored.
 * Secrets are sealed with AES-256-GCM under the data folder's master key (DATA/master.key, 0600):
 * stored as base64(nonce[12] || ciphertext || tag[16]).
 * Threading: reentrant.
 */
#ifndef CRYPTO_H
#define CRYPTO_H

#include <stddef.h>

#include "gw.h"

#define CRYPTO_KEY_LEN 32
#define CRYPTO_TOKEN_LEN 44 /* 43 base64url characters + NUL */
#define CRYPTO_HASH_HEX 65  /* 64 hex digits + NUL */

/* crypto_token - a fresh random token: prefix (may be "") + 43 base64url characters into out
 * (size n). */
gw_rc crypto_token(const char *prefix, char *out, size_t n);

/* crypto_sha256_hex - hex SHA-256 of len bytes at data. */
void crypto_sha256_hex(const void *data, size_t len, char out[CRYPTO_HASH_HEX]);

/* crypto_key_create - write a new random master key to path with mode 0600; fails if it exists. */
gw_rc crypto_key_create(const char *path, struct gw_err *err);

/* crypto_key_load - read the master key from path. */
gw_rc crypto_key_load(const char *path, unsigned char key[CRYPTO_KEY_LEN], struct gw_err *err);

/* crypto_seal - AES-256-GCM seal plain; *out is malloc'd base64 text: caller frees. */
gw_rc crypto_seal(const unsigned char key[CRYPTO_KEY_LEN], const char *plain, char **out);

/* crypto_open - reverse of crypto_seal; *plain is malloc'd: caller frees (and should wipe). */
gw_rc crypto_open(const unsigned char key[CRYPTO_KEY_LEN], const char *sealed, char **plain);

#endif
