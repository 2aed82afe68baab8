/*
 * fuzz_answer.c - libFuzzer harness for what the REST providers read from the far side: the
 * token endpoint's answer (common/bearer.c, for a provider that rotates refresh tokens and one
 * that does not; Zoho's own token errors), Zoho Assist's session answer, the Retry-After header (an HTTP-date or seconds) and the cleaning of an error
 * body into a delivery's detail. Whatever the bytes: no crash, leak or out-of-bounds read, a
 * detail always NUL-terminated and without control characters, and never an access token
 * taken from a refusal.
 *
 * Input: byte 0 picks the HTTP status, bytes 1..2 the Retry-After, the rest is the body.
 * Built two ways, like the other harnesses: clang -fsanitize=fuzzer (make fuzz) to search, and
 * fuzz/replay.c (make check) to replay the committed corpus under ASan+UBSan.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bearer.h"
#include "common/rest.h"
#include "providers/zoho/zoho.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const long statuses[] = {200, 201, 204, 400, 401, 403, 404, 409, 410, 412, 429, 500, 503};
static const char *const revoked[] = {"invalid_grant", "interaction_required", NULL};

/* one_answer - the body as the token endpoint's answer, with and without rotation */
static void one_answer(long status, int retry_after, const char *body, size_t len)
{
	int rotate;

	for(rotate = 0; rotate <= 1; rotate++) {
		struct bearer b;
		struct rest_res rr;
		struct provider_result res;
		size_t i;

		if(bearer_init(&b, NULL, "Fuzz", NULL, revoked, rotate, "https://t.example/token",
		               "cid", "cs", "rt"))
			return;
		memset(&rr, 0, sizeof(rr));
		memset(&res, 0, sizeof(res));
		rr.status = status;
		rr.retry_after = retry_after;
		rr.json = json_loadb(body, len, JSON_DECODE_ANY, NULL);
		rest_clean(body, len, 300, rr.detail, sizeof(rr.detail));
		for(i = 0; rr.detail[i]; i++)
			if((unsigned char)rr.detail[i] < 0x20)
				abort();
		if(!bearer_answer(&b, &rr, &res)) {
			if(b.access[0] || !memchr(res.detail, '\0', sizeof(res.detail)))
				abort();
		} else if(!b.access[0] || status < 200 || status > 299) {
			abort();
		}
		if(rotate == 0 && rr.json) {
			json_t *session = NULL;

			(void)zoho_token_error(status, rr.json);
			if(zoho_session_parse(rr.json, &session) == GW_OK && !session)
				abort();
			json_decref(session);
		}
		json_decref(rr.json);
		bearer_clear(&b);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char header[64];
	size_t hlen;
	int ra;

	if(size < 3)
		return 0;
	/* the Retry-After header: the bytes up to the first newline of the body, as text */
	hlen = 0;
	while(hlen + 3 < size && hlen + 1 < sizeof(header) && data[3 + hlen] != '\n') {
		header[hlen] = (char)data[3 + hlen];
		hlen++;
	}
	header[hlen] = '\0';
	ra = rest_retry_after(header, 1796025600);
	if(ra < -1 || ra > 86400)
		abort();
	one_answer(statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))],
	           data[1] == 0xff ? -1 : (int)data[1] * 60 + data[2], (const char *)data + 3,
	           size - 3);
	return 0;
}
