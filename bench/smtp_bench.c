/*
 * smtp_bench.c - the C half of bench/smtp_throughput.sh.
 *
 *   smtp_bench size                    bytes of the bench message (what smtp-source sends too)
 *   smtp_bench fill DB ORG N           enqueue N bench emails for organisation ORG, as the
 *                                      lifecycle does (store_outbox_enqueue, 1,000 per
 *                                      transaction), each its own dedupe key and Message-ID,
 *                                      with its message rendered (smtp_mime_build)
 *   smtp_bench curl PORT CONNS N       bare libcurl: CONNS threads, one easy handle (one
 *                                      connection, reused) each, send N copies of the bench
 *                                      message to 127.0.0.1:PORT; prints "curl MSGS SECONDS"
 *   smtp_bench provider PORT CONNS N   the gateway's SMTP provider without the engine: CONNS
 *                                      threads, one smtp_provider_ops context each, send N bench
 *                                      payloads (JSON parse, MIME build, libcurl); prints
 *                                      "provider MSGS SECONDS"
 *   smtp_bench message PORT CONNS N    the same provider sending the message as rendered at
 *                                      enqueue (send_message: what the outbox does), no JSON,
 *                                      no MIME; prints "message MSGS SECONDS"
 *
 *   smtp_bench cycle DB BATCH          the store's part of the engine alone: lease BATCH rows,
 *                                      record them sent and lease the next (store_outbox_cycle,
 *                                      as a worker does) until no row is left; prints "cycle
 *                                      ROWS SECONDS" (nothing is sent)
 *   smtp_bench cycle DB BATCH frame-writes   the same with SQLite writing each WAL frame in
 *                                      two calls, as it does itself (store_wal.c's baseline)
 *
 * The bench message is a real "New request available" email (tpl_new_request) built by the
 * gateway's MIME builder (smtp_mime_build), so the three contenders move the same bytes.
 * Threading: the curl mode runs CONNS threads; the others are single-threaded.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "smtp/smtp.h"
#include "store/store.h"
#include "gateway/templates/tpl.h"

#define FROM      "bookings@bench.test"
#define MAX_CONNS 64

/* payload - the bench email for recipient number i (new reference) */
static json_t *payload(long i, int64_t org)
{
	struct tpl_env env = {0};
	json_t *request, *trainer, *out = NULL;
	char key[64], addr[64];

	env.org_id = org;
	env.org_name = "Bench Training";
	env.org_timezone = "Europe/Berlin";
	env.from_address = FROM;
	env.install_id = "bench";
	env.public_url = "https://ordinatus.bench.test";
	env.now = 1796112000; /* 2026-12-01T08:00:00Z */
	snprintf(key, sizeof(key), "new_request:%ld:%ld", i / 50 + 1, i % 50 + 1);
	snprintf(addr, sizeof(addr), "trainer%ld@bench.test", i);
	request =
	        json_pack("{s:I, s:{s:s, s:s}, s:{s:s}, s:[s, s]}", "id", (json_int_t)(i / 50 + 1),
	                  "customer", "name", "Cleo Customer", "email", "cleo@example.test",
	                  "session_type", "name", "Private yoga", "skills", "yoga", "pilates");
	trainer = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)(i % 50 + 1), "email", addr,
	                    "name", "Tia Trainer", "timezone", "Europe/Berlin");
	if(request && trainer)
		tpl_new_request(&env, key, request, trainer, &out);
	json_decref(request);
	json_decref(trainer);
	return out;
}

/* message - the MIME bytes of the bench email (malloc'd) */
static char *message(size_t *len)
{
	json_t *p = payload(0, 1);
	struct gw_err err = {0};
	char *msg = NULL;

	if(!p || smtp_mime_build(p, FROM, "Bench Training", &msg, len, &err)) {
		fprintf(stderr, "smtp_bench: cannot build the message: %s\n", err.message);
		exit(1);
	}
	json_decref(p);
	return msg;
}

/* cmd_fill - enqueue n emails */
static int cmd_fill(const char *db, int64_t org, long n)
{
	struct store *st = NULL;
	struct gw_err err = {0};
	time_t now = clock_now();
	long i;

	if(store_open(db, false, &st, &err)) {
		fprintf(stderr, "smtp_bench: %s\n", err.message);
		return 1;
	}
	if(store_begin(st))
		goto fail;
	for(i = 0; i < n; i++) {
		struct store_effect e = {0};
		json_t *p;
		char *text, *msg = NULL, key[64];
		bool ins;

		if(i && i % 1000 == 0 && (store_commit(st) || store_begin(st)))
			goto fail;
		p = payload(i, org);
		/* the row as lc_enqueue writes it: the message rendered (the From the settings
		 * name, chosen now) and the payload without its HTML alternative */
		if(p && smtp_mime_build(p, NULL, NULL, &msg, NULL, &err) == GW_OK)
			json_object_del(p, "html");
		text = p && msg ? json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		e.message = msg;
		e.rcpt = json_string_value(json_object_get(json_object_get(p, "to"), "address"));
		if(!text) {
			json_decref(p);
			goto fail;
		}
		snprintf(key, sizeof(key), "bench:%ld", i);
		e.org_id = org;
		e.kind = "new_request";
		e.provider_class = "email";
		e.dedupe_key = key;
		e.payload = text;
		if(store_outbox_enqueue(st, &e, now, &ins, NULL)) {
			free(text);
			free(msg);
			json_decref(p);
			goto fail;
		}
		free(text);
		free(msg);
		json_decref(p);
	}
	if(store_commit(st))
		goto fail;
	store_close(st);
	return 0;
fail:
	fprintf(stderr, "smtp_bench: fill failed: %s\n", store_errmsg(st));
	store_close(st);
	return 1;
}

/* cmd_cycle - lease and record every pending row, batch by batch, on one connection */
static int cmd_cycle(const char *db, int batch)
{
	struct store *st = NULL;
	struct gw_err err = {0};
	struct store_lease *l = NULL;
	struct store_result *res = calloc((size_t)batch, sizeof(*res));
	time_t now = clock_now();
	int n = 0, i;
	long total = 0;
	int64_t t0;

	if(!res || store_open(db, false, &st, &err) || store_outbox_tune(st)) {
		fprintf(stderr, "smtp_bench: %s\n", err.message);
		free(res);
		store_close(st);
		return 1;
	}
	t0 = clock_mono_ms();
	if(store_outbox_cycle(st, "bench", NULL, 0, now, "email", NULL, 600, batch, &l, &n, NULL))
		goto fail;
	while(n > 0) {
		struct store_lease *next = NULL;
		int m = 0;

		for(i = 0; i < n; i++) {
			memset(&res[i], 0, sizeof(res[i]));
			res[i].id = l[i].id;
			res[i].outcome = STORE_SENT;
			res[i].provider = "smtp";
			res[i].detail = "250 2.0.0 Ok: queued";
			res[i].started_ms = res[i].finished_ms = clock_now_ms();
			res[i].attempt = l[i].attempts + 1; /* as the dispatcher says */
			/* the payload without its tokens, stored with the result (as the
			 * dispatcher does, outside the write lock) */
			res[i].redacted = l[i].payload ? tpl_redact_text(l[i].payload) : NULL;
		}
		if(store_outbox_cycle(st, "bench", res, n, now, "email", NULL, 600, batch, &next, &m,
		                      NULL))
			goto fail;
		for(i = 0; i < n; i++)
			free(res[i].redacted);
		total += n;
		store_leases_free(l, n);
		l = next;
		n = m;
	}
	printf("cycle %ld %.3f\n", total, (double)(clock_mono_ms() - t0) / 1000.0);
	free(res);
	store_close(st);
	return 0;
fail:
	fprintf(stderr, "smtp_bench: cycle failed: %s\n", store_errmsg(st));
	store_leases_free(l, n);
	free(res);
	store_close(st);
	return 1;
}

struct sender {
	pthread_t thread;
	int port;
	const char *payload_text; /* provider mode: the stored payload */
	int rendered;             /* message mode: the message as rendered at enqueue */
	long count;
	const char *msg;
	size_t len, pos;
	long sent;
};

/* reader - CURLOPT_READFUNCTION over the message */
static size_t reader(char *buf, size_t size, size_t nitems, void *userp)
{
	struct sender *s = userp;
	size_t n = size * nitems, left = s->len - s->pos;

	if(n > left)
		n = left;
	memcpy(buf, s->msg + s->pos, n);
	s->pos += n;
	return n;
}

/* send_main - one connection's worth of messages */
static void *send_main(void *arg)
{
	struct sender *s = arg;
	struct curl_slist *rcpt = curl_slist_append(NULL, "<trainer@bench.test>");
	CURL *h = curl_easy_init();
	char url[64];
	long i;

	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d/bench.test", s->port);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, reader);
	curl_easy_setopt(h, CURLOPT_READDATA, s);
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, "<" FROM ">");
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)s->len);
	for(i = 0; i < s->count; i++) {
		s->pos = 0;
		if(curl_easy_perform(h) == CURLE_OK)
			s->sent++;
	}
	curl_easy_cleanup(h);
	curl_slist_free_all(rcpt);
	return NULL;
}

/* provider_main - one provider context's worth of messages, as a dispatch worker sends */
static void *provider_main(void *arg)
{
	struct sender *s = arg;
	/* the sink is on loopback: allowed explicitly, as an operator's --allow-outbound would */
	json_t *cfg = json_pack("{s:s, s:i, s:s, s:s, s:s, s:[s]}", "host", "127.0.0.1", "port",
	                        s->port, "security", "none", "from_address", FROM, "from_name",
	                        "Bench Training", "allow_outbound", "127.0.0.0/8");
	void *ctx = NULL;
	long i;

	if(!cfg || smtp_provider_ops.open(cfg, "/tmp", &ctx)) {
		json_decref(cfg);
		return NULL;
	}
	for(i = 0; i < s->count; i++) {
		struct provider_result res;
		json_t *p = s->rendered ? NULL : json_loads(s->payload_text, 0, NULL);

		memset(&res, 0, sizeof(res));
		if(s->rendered)
			smtp_provider_ops.send_message(ctx, "trainer@bench.test", s->msg, s->len,
			                               &res);
		else
			smtp_provider_ops.send(ctx, "new_request", p, &res);
		if(res.outcome == PROVIDER_SENT)
			s->sent++;
		json_decref(res.out);
		json_decref(p);
	}
	smtp_provider_ops.close(ctx);
	json_decref(cfg);
	return NULL;
}

/* cmd_curl - bare libcurl throughput, or the provider's (provider 1: from the JSON payload,
 * 2: the message rendered at enqueue, as the outbox sends it) */
static int cmd_curl(int port, int conns, long n, int provider)
{
	struct sender s[MAX_CONNS];
	size_t len;
	char *msg = message(&len);
	json_t *p = payload(0, 1);
	char *text = p ? json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	int64_t t0, t1;
	long sent = 0;
	int i;

	if(conns < 1 || conns > MAX_CONNS)
		return 2;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	memset(s, 0, sizeof(s));
	t0 = clock_mono_ms();
	for(i = 0; i < conns; i++) {
		s[i].port = port;
		s[i].count = n / conns + (i < n % conns);
		s[i].msg = msg;
		s[i].len = len;
		s[i].payload_text = text;
		s[i].rendered = provider == 2;
		pthread_create(&s[i].thread, NULL, provider ? provider_main : send_main, &s[i]);
	}
	for(i = 0; i < conns; i++) {
		pthread_join(s[i].thread, NULL);
		sent += s[i].sent;
	}
	t1 = clock_mono_ms();
	printf("%s %ld %.3f\n", provider == 2 ? "message" : provider ? "provider" : "curl", sent,
	       (double)(t1 - t0) / 1000.0);
	json_decref(p);
	free(text);
	free(msg);
	curl_global_cleanup();
	return sent == n ? 0 : 1;
}

/* main - the modes */
int main(int argc, char **argv)
{
	if(argc == 2 && strcmp(argv[1], "size") == 0) {
		size_t len;
		free(message(&len));
		printf("%zu\n", len);
		return 0;
	}
	if(argc == 5 && strcmp(argv[1], "fill") == 0)
		return cmd_fill(argv[2], strtoll(argv[3], NULL, 10), strtol(argv[4], NULL, 10));
	if((argc == 4 || (argc == 5 && strcmp(argv[4], "frame-writes") == 0)) &&
	   strcmp(argv[1], "cycle") == 0) {
		store_sqlite_coalesce_wal(argc == 4);
		return cmd_cycle(argv[2], (int)strtol(argv[3], NULL, 10));
	}
	if(argc == 5 && (strcmp(argv[1], "curl") == 0 || strcmp(argv[1], "provider") == 0 ||
	                 strcmp(argv[1], "message") == 0))
		return cmd_curl((int)strtol(argv[2], NULL, 10), (int)strtol(argv[3], NULL, 10),
		                strtol(argv[4], NULL, 10),
		                strcmp(argv[1], "message") == 0    ? 2
		                : strcmp(argv[1], "provider") == 0 ? 1
		                                                   : 0);
	fprintf(stderr, "usage: smtp_bench size | fill DB ORG N | cycle DB BATCH [frame-writes] |"
	                " curl|provider|message PORT CONNS N\n");
	return 2;
}
