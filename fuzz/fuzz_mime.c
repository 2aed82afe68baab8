/*
 * fuzz_mime.c - libFuzzer harness for the MIME builder: an email payload (JSON) from the fuzzer
 * is built into an RFC 5322 message. Whatever the payload, the builder must not crash, and a
 * message it does build must never carry a header line that a CR or LF in the payload added
 * (every header line starts with a known field name or is a folded continuation).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* header_ok - is this header line one the builder writes (or a fold)? */
static int header_ok(const char *line, size_t len)
{
	static const char *const names[] = {"Message-ID:", "Date:", "From:", "To:", "Subject:",
	                                    "MIME-Version:", "X-Ordinatus-Kind:", "Content-Type:",
	                                    "Content-Transfer-Encoding:", "Reply-To:", NULL};
	size_t i;

	if(len > 0 && (line[0] == ' ' || line[0] == '\t'))
		return 1;
	for(i = 0; names[i]; i++) {
		if(len >= strlen(names[i]) && strncmp(line, names[i], strlen(names[i])) == 0)
			return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *payload = json_loadb((const char *)data, size, 0, NULL);
	struct gw_err err = {0};
	char *msg = NULL, *p, *eol;
	size_t len = 0;

	if(!payload)
		return 0;
	if(smtp_mime_build(payload, NULL, NULL, &msg, &len, &err) == GW_OK) {
		/* the header block ends at the first empty line */
		for(p = msg; (eol = strstr(p, "\r\n")) != NULL && eol != p; p = eol + 2) {
			if(!header_ok(p, (size_t)(eol - p)))
				abort();
		}
	}
	free(msg);
	json_decref(payload);
	return 0;
}
