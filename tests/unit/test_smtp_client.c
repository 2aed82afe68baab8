/*
 * test_smtp_client.c - the SMTP provider (smtp_provider_ops) against a real local server:
 * tests/helpers/smtp_server.py (aiosmtpd) on 127.0.0.1, started per case with posix_spawn and
 * stopped by its pid (SIGTERM + waitpid). Canned server behaviour, documented in the helper:
 *   plain          accepts and saves every message as NNNN.eml + NNNN.json (envelope)
 *   --starttls     requires STARTTLS with a self-signed certificate made here (openssl CLI)
 *   --tls          implicit TLS (smtps) with the same certificate
 *   --auth u:p     requires AUTH; anything else gets 535
 *   --fail-first N "451 4.3.0 Test server: try again later" after DATA for N messages
 *   --reject       "550 5.1.1 Test server: mailbox unavailable" at RCPT
 * DKIM signatures are checked with tests/helpers/dkim_verify.py (Debian's python3-dkim) and an
 * RSA-2048 key made at run time. Nothing leaves 127.0.0.1; the temporary directory and every
 * child process are gone when the binary exits. Run from the repository root (make unit).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/netguard.h"
#include "smtp/smtp.h"

extern char **environ;

#define PYTHON "/usr/bin/python3"
#define SERVER_PY "tests/helpers/smtp_server.py"
#define DKIM_PY "tests/helpers/dkim_verify.py"
#define FROM_ADDRESS "bookings@acme.example"
#define FROM_NAME "Acme Bookings"
#define TO_ADDRESS "customer@example.org"
#define REPLY_451 "451 4.3.0 Test server: try again later"
#define REPLY_550 "550 5.1.1 Test server: mailbox unavailable"
#define DKIM_DOMAIN "acme.example"
#define DKIM_SELECTOR "ord2026"

/* fixture - made once for the binary */
static struct {
	char base[256];      /* temporary directory */
	char cert[320];      /* self-signed certificate for 127.0.0.1 (PEM) */
	char key[320];       /* its key */
	char *cert_pem;      /* the certificate's text (ca_pem), from malloc() */
	char dkim_key[320];  /* RSA-2048 private key (PEM) */
	char dkim_pub[320];  /* its public half */
	char *dkim_key_pem;  /* contents of dkim_key */
	int cases;           /* counter for per-case directories */
} fx;

/* server - one running smtp_server.py */
struct server {
	pid_t pid;
	int port;
	char dir[320];  /* where it saves messages */
	char log[340];  /* its stderr */
};

/* per-case state */
struct tcase {
	struct server srv;
	void *ctx;
};

/* rm_entry - nftw callback: remove one entry */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* spawn_argv - posix_spawn's argv type; it does not write to the strings */
static char *const *spawn_argv(const char *const *argv)
{
	return (char *const *)(uintptr_t)argv;
}

/* run_cmd - run argv (PATH searched), output discarded; the exit status or -1 */
static int run_cmd(const char *const argv[])
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status, rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, spawn_argv(argv), environ);
	posix_spawn_file_actions_destroy(&fa);
	if(rc != 0)
		return -1;
	while(waitpid(pid, &status, 0) < 0)
		if(errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* slurp - a whole file, NUL-terminated; caller frees; NULL if unreadable */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if(!f)
		return NULL;
	if(fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if(buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
			buf[n] = '\0';
			if(len)
				*len = (size_t)n;
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

/* group_setup - temporary directory, TLS certificate and DKIM key (openssl CLI) */
static int group_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	(void)state;
	if(access(SERVER_PY, R_OK) != 0 || access(PYTHON, X_OK) != 0) {
		fprintf(stderr, "test_smtp_client: run from the repository root (needs %s, %s)\n",
		        SERVER_PY, PYTHON);
		return -1;
	}
	snprintf(fx.base, sizeof(fx.base), "%s/ordinatus-smtp-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if(!mkdtemp(fx.base))
		return -1;
	snprintf(fx.cert, sizeof(fx.cert), "%s/cert.pem", fx.base);
	snprintf(fx.key, sizeof(fx.key), "%s/key.pem", fx.base);
	snprintf(fx.dkim_key, sizeof(fx.dkim_key), "%s/dkim.pem", fx.base);
	snprintf(fx.dkim_pub, sizeof(fx.dkim_pub), "%s/dkim.pub.pem", fx.base);
	{
		/* valid for a century: libcurl checks it against the machine's real date */
		const char *req[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
		                     "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", fx.key,
		                     "-out", fx.cert, "-days", "36500", "-subj", "/CN=localhost",
		                     "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", NULL};
		const char *gen[] = {"openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
		                     "rsa_keygen_bits:2048", "-out", fx.dkim_key, NULL};
		const char *pub[] = {"openssl", "pkey", "-in", fx.dkim_key, "-pubout", "-out",
		                     fx.dkim_pub, NULL};

		if(run_cmd(req) != 0 || run_cmd(gen) != 0 || run_cmd(pub) != 0) {
			fprintf(stderr, "test_smtp_client: openssl failed\n");
			return -1;
		}
	}
	fx.dkim_key_pem = slurp(fx.dkim_key, NULL);
	fx.cert_pem = slurp(fx.cert, NULL);
	if(!fx.dkim_key_pem || !fx.cert_pem)
		return -1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return 0;
}

/* group_teardown - remove the temporary directory */
static int group_teardown(void **state)
{
	(void)state;
	free(fx.dkim_key_pem);
	free(fx.cert_pem);
	curl_global_cleanup();
	if(fx.base[0])
		nftw(fx.base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* server_stop - SIGTERM to its pid, then reap it */
static void server_stop(struct server *s)
{
	int status;

	if(s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	while(waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
		;
	s->pid = 0;
}

/* server_start - spawn smtp_server.py with the options (NULL-terminated) and read its port */
static void server_start(struct server *s, ...)
{
	const char *argv[16];
	posix_spawn_file_actions_t fa;
	struct pollfd pfd;
	char line[32];
	size_t used = 0;
	int fds[2], argc = 0, rc;
	va_list ap;
	const char *opt;

	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "%s/case%d", fx.base, ++fx.cases);
	snprintf(s->log, sizeof(s->log), "%s.log", s->dir);
	assert_int_equal(mkdir(s->dir, 0700), 0);
	argv[argc++] = PYTHON;
	argv[argc++] = SERVER_PY;
	argv[argc++] = "--dir";
	argv[argc++] = s->dir;
	va_start(ap, s);
	while((opt = va_arg(ap, const char *)) != NULL && argc < 15)
		argv[argc++] = opt;
	va_end(ap);
	argv[argc] = NULL;

	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, s->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	rc = posix_spawn(&s->pid, PYTHON, &fa, NULL, spawn_argv(argv), environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	assert_int_equal(rc, 0);

	/* the first line of its stdout is the port; give python 20 s to start */
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	while(used < sizeof(line) - 1 && !memchr(line, '\n', used)) {
		ssize_t n;

		if(poll(&pfd, 1, 20000) <= 0)
			break;
		n = read(fds[0], line + used, sizeof(line) - 1 - used);
		if(n <= 0)
			break;
		used += (size_t)n;
	}
	close(fds[0]);
	line[used] = '\0';
	s->port = (int)strtol(line, NULL, 10);
	if(s->port <= 0 || s->port > 65535) {
		char *log = slurp(s->log, NULL);

		server_stop(s);
		fail_msg("smtp_server.py did not start: %s", log ? log : "(no log)");
	}
}

/* case_setup / case_teardown - every case stops its server and closes its context */
static int case_setup(void **state)
{
	struct tcase *tc = calloc(1, sizeof(*tc));

	if(!tc)
		return -1;
	*state = tc;
	return 0;
}

static int case_teardown(void **state)
{
	struct tcase *tc = *state;

	smtp_provider_ops.close(tc->ctx);
	server_stop(&tc->srv);
	free(tc);
	return 0;
}

/* config - an smtp config for the case's server; new reference */
static json_t *config(const struct server *s, const char *security)
{
	/* the test servers are on loopback, which the outbound guard refuses unless allowed */
	json_t *c = json_pack("{s:s, s:i, s:s, s:s, s:s, s:i, s:i, s:[s]}", "host", "127.0.0.1",
	                      "port", s->port, "security", security, "from_address", FROM_ADDRESS,
	                      "from_name", FROM_NAME, "connect_timeout", 5, "timeout", 20,
	                      "allow_outbound", "127.0.0.0/8");

	assert_non_null(c);
	return c;
}

/* open_ctx - open the provider on c (consumed) */
static void *open_ctx(json_t *c)
{
	void *ctx = NULL;
	gw_rc rc = smtp_provider_ops.open(c, "/nonexistent", &ctx);

	json_decref(c);
	assert_int_equal(rc, GW_OK);
	assert_non_null(ctx);
	return ctx;
}

/* payload - an email payload (n varies the message id); new reference */
static json_t *payload(int n)
{
	char mid[64];
	json_t *p;

	snprintf(mid, sizeof(mid), "<%04d.confirmation@ordinatus>", n);
	p = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:s, s:s, s:s, s:s, s:s}",
	              "kind", "confirmation", "message_id", mid, "date", "2026-12-01T09:00:00Z",
	              "from", "address", "org@payload.example", "name", "Payload Org", "to",
	              "address", TO_ADDRESS, "name", "Jürgen Müller", "subject",
	              "Ihre Buchung ist bestätigt", "text",
	              "Hello,\n.\n..two dots\nFrom here: your booking is confirmed.\n", "html",
	              "<p>Your booking is confirmed.</p>", "ics",
	              "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n", "ics_method",
	              "REQUEST");
	assert_non_null(p);
	return p;
}

/* send_one - send payload(n) and return the outcome; detail copied into res */
static enum provider_outcome send_one(void *ctx, int n, struct provider_result *res)
{
	json_t *p = payload(n);

	memset(res, 0x5a, sizeof(*res));
	smtp_provider_ops.send(ctx, "confirmation", p, res);
	json_decref(p);
	assert_int_equal(res->retry_after, -1);
	assert_null(res->out);
	return res->outcome;
}

/* received - file NNNN.ext saved by the server (n from 1); caller frees; NULL if none */
static char *received(const struct server *s, int n, const char *ext, size_t *len)
{
	char path[400];

	snprintf(path, sizeof(path), "%s/%04d.%s", s->dir, n, ext);
	return slurp(path, len);
}

/* envelope - the server's record of message n; new reference */
static json_t *envelope(const struct server *s, int n)
{
	char *text = received(s, n, "json", NULL);
	json_t *j;

	assert_non_null(text);
	j = json_loads(text, 0, NULL);
	free(text);
	assert_non_null(j);
	return j;
}

/* expect_detail - the result's detail holds want */
static void expect_detail(const struct provider_result *res, const char *want)
{
	if(!strstr(res->detail, want))
		fail_msg("detail [%s] lacks [%s]", res->detail, want);
}

/* test_plain_delivery - the message arrives byte for byte, with the configured sender, over one
 * connection for several messages */
static void test_plain_delivery(void **state)
{
	struct tcase *tc = *state;
	struct provider_result res;
	struct gw_err err;
	json_t *env, *p;
	char *got, *want;
	size_t glen, wlen;
	int i;

	server_start(&tc->srv, NULL);
	tc->ctx = open_ctx(config(&tc->srv, "none"));
	assert_string_equal(smtp_provider_ops.name, "smtp");
	for(i = 1; i <= 3; i++) {
		if(send_one(tc->ctx, i, &res) != PROVIDER_SENT)
			fail_msg("send %d: %s", i, res.detail);
		expect_detail(&res, "250 2.0.0 Ok: queued as");
	}

	/* what arrived is exactly what smtp_mime_build made with the configured From */
	got = received(&tc->srv, 1, "eml", &glen);
	assert_non_null(got);
	p = payload(1);
	memset(&err, 0, sizeof(err));
	assert_int_equal(smtp_mime_build(p, FROM_ADDRESS, FROM_NAME, &want, &wlen, &err), GW_OK);
	assert_int_equal(glen, wlen);
	assert_memory_equal(got, want, wlen);
	assert_non_null(strstr(got, "\r\nFrom: " FROM_NAME " <" FROM_ADDRESS ">\r\n"));
	assert_non_null(strstr(got, "\r\nX-Ordinatus-Kind: confirmation\r\n"));
	assert_true(strncmp(got, "Message-ID: <0001.confirmation@ordinatus>\r\n", 43) == 0);
	free(got);
	free(want);
	json_decref(p);

	env = envelope(&tc->srv, 1);
	assert_string_equal(json_string_value(json_object_get(env, "mail_from")), FROM_ADDRESS);
	assert_int_equal(json_array_size(json_object_get(env, "rcpt_tos")), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(env, "rcpt_tos"), 0)),
	                    TO_ADDRESS);
	assert_false(json_is_true(json_object_get(env, "tls")));
	/* one connection for the three: the same client port every time */
	for(i = 2; i <= 3; i++) {
		json_t *e2 = envelope(&tc->srv, i);

		assert_int_equal(json_integer_value(json_object_get(e2, "peer_port")),
		                 json_integer_value(json_object_get(env, "peer_port")));
		json_decref(e2);
	}
	json_decref(env);
}

/* test_starttls - with the CA: encrypted delivery; without it: verification fails (transient)
 * and nothing is sent; no TLS at all: the server's 530 is permanent */
static void test_starttls(void **state)
{
	struct tcase *tc = *state;
	struct provider_result res;
	json_t *c, *env;
	void *ctx;

	server_start(&tc->srv, "--starttls", fx.cert, fx.key, NULL);
	c = config(&tc->srv, "starttls");
	json_object_set_new(c, "ca_pem", json_string(fx.cert_pem));
	tc->ctx = open_ctx(c);
	if(send_one(tc->ctx, 1, &res) != PROVIDER_SENT)
		fail_msg("starttls: %s", res.detail);
	env = envelope(&tc->srv, 1);
	assert_true(json_is_true(json_object_get(env, "tls")));
	json_decref(env);

	/* the system store does not know the self-signed certificate */
	ctx = open_ctx(config(&tc->srv, "starttls"));
	assert_int_equal(send_one(ctx, 2, &res), PROVIDER_TRANSIENT);
	expect_detail(&res, "curl error 60");
	assert_true(res.unreachable); /* no TLS with this server: every message alike */
	smtp_provider_ops.close(ctx);

	/* "none" against a server that insists on STARTTLS */
	ctx = open_ctx(config(&tc->srv, "none"));
	assert_int_equal(send_one(ctx, 3, &res), PROVIDER_PERMANENT);
	expect_detail(&res, "530");
	assert_true(res.unreachable); /* the settings' fault: every message alike */
	smtp_provider_ops.close(ctx);
	assert_null(received(&tc->srv, 2, "eml", NULL));
}

/* test_implicit_tls - smtps:// with the CA */
static void test_implicit_tls(void **state)
{
	struct tcase *tc = *state;
	struct provider_result res;
	json_t *c, *env;

	server_start(&tc->srv, "--tls", fx.cert, fx.key, NULL);
	c = config(&tc->srv, "tls");
	json_object_set_new(c, "ca_pem", json_string(fx.cert_pem));
	tc->ctx = open_ctx(c);
	if(send_one(tc->ctx, 1, &res) != PROVIDER_SENT)
		fail_msg("tls: %s", res.detail);
	env = envelope(&tc->srv, 1);
	assert_true(json_is_true(json_object_get(env, "tls")));
	json_decref(env);
}

/* test_auth - right credentials deliver; a wrong password is a permanent 535 whose detail does
 * not hold the password; no credentials is a permanent 530 */
static void test_auth(void **state)
{
	struct tcase *tc = *state;
	struct provider_result res;
	json_t *c, *env;
	void *ctx;

	server_start(&tc->srv, "--auth", "mailer:s3cret-pass", NULL);
	c = config(&tc->srv, "none");
	json_object_set_new(c, "username", json_string("mailer"));
	json_object_set_new(c, "password", json_string("s3cret-pass"));
	tc->ctx = open_ctx(c);
	if(send_one(tc->ctx, 1, &res) != PROVIDER_SENT)
		fail_msg("auth: %s", res.detail);
	env = envelope(&tc->srv, 1);
	assert_string_equal(json_string_value(json_object_get(env, "auth_login")), "mailer");
	json_decref(env);

	c = config(&tc->srv, "none");
	json_object_set_new(c, "username", json_string("mailer"));
	json_object_set_new(c, "password", json_string("wrong-pass"));
	ctx = open_ctx(c);
	assert_int_equal(send_one(ctx, 2, &res), PROVIDER_PERMANENT);
	expect_detail(&res, "authentication refused");
	expect_detail(&res, "535");
	assert_true(res.unreachable);
	assert_null(strstr(res.detail, "wrong-pass"));
	smtp_provider_ops.close(ctx);

	ctx = open_ctx(config(&tc->srv, "none"));
	assert_int_equal(send_one(ctx, 3, &res), PROVIDER_PERMANENT);
	expect_detail(&res, "530");
	smtp_provider_ops.close(ctx);
	assert_null(received(&tc->srv, 2, "eml", NULL));
}

/* test_auth_over_starttls - AUTH inside the TLS session */
static void test_auth_over_starttls(void **state)
{
	struct tcase *tc = *state;
	struct provider_result res;
	json_t *c, *env;

	server_start(&tc->srv, "--starttls", fx.cert, fx.key, "--auth", "mailer:pw", NULL);
	c = config(&tc->srv, "starttls");
	json_object_set_new(c, "ca_pem", json_string(fx.cert_pem));
	json_object_set_new(c, "username", json_string("mailer"));
	json_object_set_new(c, "password", json_string("pw"));
	tc->ctx = open_ctx(c);
	if(send_one(tc->ctx, 1, &res) != PROVIDER_SENT)
		fail_msg("auth+starttls: %s", res.detail);
	env = envelope(&tc->srv, 1);
	assert_true(json_is_true(json_object_get(env, "tls")));
	assert_string_equal(json_string_value(json_object_get(env, "auth_login")), "mailer");
	json_decref(env);
}

/* test_451_transient - the server's words in the detail; the retry on the same context works */
static void test_451_transient(void **state)
{
	struct tcase *tc = *state;
	struct provider_result res;

	server_start(&tc->srv, "--fail-first", "1", NULL);
	tc->ctx = open_ctx(config(&tc->srv, "none"));
	assert_int_equal(send_one(tc->ctx, 1, &res), PROVIDER_TRANSIENT);
	expect_detail(&res, REPLY_451);
	assert_false(res.unreachable); /* this message's 451: the server itself is up */
	assert_null(received(&tc->srv, 1, "eml", NULL));
	if(send_one(tc->ctx, 1, &res) != PROVIDER_SENT)
		fail_msg("retry: %s", res.detail);
	assert_non_null(strstr(res.detail, "250"));
	assert_null(received(&tc->srv, 2, "eml", NULL));
}

/* test_550_permanent - the server's words in the detail, nothing delivered */
static void test_550_permanent(void **state)
{
	struct tcase *tc = *state;
	struct provider_result res;

	server_start(&tc->srv, "--reject", NULL);
	tc->ctx = open_ctx(config(&tc->srv, "none"));
	assert_int_equal(send_one(tc->ctx, 1, &res), PROVIDER_PERMANENT);
	expect_detail(&res, REPLY_550);
	assert_false(res.unreachable);
	assert_null(received(&tc->srv, 1, "eml", NULL));
}

/* test_server_down - a closed port is transient, and the server's failure (unreachable) */
static void test_server_down(void **state)
{
	struct tcase *tc = *state;
	struct provider_result res;
	struct sockaddr_in sa;
	socklen_t slen = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* a port that was free a moment ago and has no listener */
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &slen), 0);
	close(fd);
	tc->srv.port = ntohs(sa.sin_port);
	tc->ctx = open_ctx(config(&tc->srv, "starttls"));
	assert_int_equal(send_one(tc->ctx, 1, &res), PROVIDER_TRANSIENT);
	expect_detail(&res, "curl error 7");
	assert_true(res.unreachable);
}

/* test_dkim - the signed message verifies with python3-dkim; a changed Subject does not */
static void test_dkim(void **state)
{
	struct tcase *tc = *state;
	struct provider_result res;
	char path[400], bad[400];
	char *msg, *subj;
	size_t len;
	json_t *c;
	FILE *f;

	server_start(&tc->srv, NULL);
	c = config(&tc->srv, "none");
	json_object_set_new(c, "dkim", json_pack("{s:s, s:s, s:s}", "domain", DKIM_DOMAIN,
	                                         "selector", DKIM_SELECTOR, "private_key_pem",
	                                         fx.dkim_key_pem));
	tc->ctx = open_ctx(c);
	if(send_one(tc->ctx, 1, &res) != PROVIDER_SENT)
		fail_msg("dkim: %s", res.detail);
	msg = received(&tc->srv, 1, "eml", &len);
	assert_non_null(msg);
	assert_true(strncmp(msg, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;", 53) == 0);
	assert_non_null(strstr(msg, "d=" DKIM_DOMAIN ";"));
	assert_non_null(strstr(msg, "s=" DKIM_SELECTOR ";"));
	snprintf(path, sizeof(path), "%s/0001.eml", tc->srv.dir);
	{
		const char *argv[] = {PYTHON,        DKIM_PY,     path, fx.dkim_pub,
		                      DKIM_SELECTOR, DKIM_DOMAIN, NULL};

		assert_int_equal(run_cmd(argv), 0);
	}

	/* the same message with one character of the Subject changed */
	subj = strstr(msg, "\r\nSubject: ");
	assert_non_null(subj);
	subj[11] = subj[11] == 'X' ? 'Y' : 'X';
	snprintf(bad, sizeof(bad), "%s/tampered.eml", tc->srv.dir);
	f = fopen(bad, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(msg, 1, len, f), len);
	fclose(f);
	{
		const char *argv[] = {PYTHON, DKIM_PY, bad, fx.dkim_pub, DKIM_SELECTOR, DKIM_DOMAIN,
		                      NULL};

		assert_int_equal(run_cmd(argv), 1);
	}
	free(msg);
}

/* test_unusable_payload - refused before any connection: permanent, nothing sent */
static void test_unusable_payload(void **state)
{
	struct tcase *tc = *state;
	struct provider_result res;
	json_t *p;

	server_start(&tc->srv, NULL);
	tc->ctx = open_ctx(config(&tc->srv, "none"));
	p = payload(1);
	json_object_set_new(p, "subject", json_string("Hi\r\nBcc: victim@example.com"));
	smtp_provider_ops.send(tc->ctx, "confirmation", p, &res);
	json_decref(p);
	assert_int_equal(res.outcome, PROVIDER_PERMANENT);
	expect_detail(&res, "subject");
	assert_null(received(&tc->srv, 1, "eml", NULL));
}

struct cfg_case {
	const char *json;
	gw_rc want;
};

/* test_open_config - what open() accepts and refuses */
static void test_open_config(void **state)
{
	static const struct cfg_case cases[] = {
	    {"{\"host\": \"mail.example\", \"from_address\": \"a@b.example\"}", GW_OK},
	    {"{\"host\": \"::1\", \"port\": 2525, \"security\": \"tls\", "
	     "\"from_address\": \"a@b.example\", \"username\": \"u\", \"password\": \"p\"}",
	     GW_OK},
	    {"{\"from_address\": \"a@b.example\"}", GW_ECONFIG},
	    {"{\"host\": \"mail.example/x\", \"from_address\": \"a@b.example\"}", GW_ECONFIG},
	    {"{\"host\": \"user@mail.example\", \"from_address\": \"a@b.example\"}", GW_ECONFIG},
	    {"{\"host\": \"mail.example\"}", GW_ECONFIG},
	    {"{\"host\": \"mail.example\", \"from_address\": \"a b@c\"}", GW_ECONFIG},
	    {"{\"host\": \"mail.example\", \"from_address\": \"<a@b.example>\"}", GW_ECONFIG},
	    {"{\"host\": \"mail.example\", \"from_address\": \"a@b.example\", "
	     "\"from_name\": \"A\\r\\nBcc: x@y\"}",
	     GW_ECONFIG},
	    {"{\"host\": \"mail.example\", \"from_address\": \"a@b.example\", \"port\": 0}",
	     GW_ECONFIG},
	    {"{\"host\": \"mail.example\", \"from_address\": \"a@b.example\", \"port\": \"25\"}",
	     GW_ECONFIG},
	    {"{\"host\": \"mail.example\", \"from_address\": \"a@b.example\", "
	     "\"security\": \"ssl\"}",
	     GW_ECONFIG},
	    {"{\"host\": \"mail.example\", \"from_address\": \"a@b.example\", "
	     "\"dkim\": {\"domain\": \"b.example\", \"selector\": \"s\", "
	     "\"private_key_pem\": \"not a key\"}}",
	     GW_ECONFIG},
	    {"{\"host\": \"mail.example\", \"from_address\": \"a@b.example\", "
	     "\"dkim\": {\"domain\": \"b.example\", \"private_key_pem\": \"x\"}}",
	     GW_ECONFIG},
	    {"{\"host\": \"mail.example\", \"from_address\": \"a@b.example\", "
	     "\"timeout\": 0}",
	     GW_ECONFIG},
	    {"[]", GW_ECONFIG},
	};
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(cases); i++) {
		json_t *c = json_loads(cases[i].json, 0, NULL);
		void *ctx = NULL;
		gw_rc rc;

		assert_non_null(c);
		rc = smtp_provider_ops.open(c, NULL, &ctx);
		if(rc != cases[i].want)
			fail_msg("case %zu %s: %s", i, cases[i].json, gw_rc_name(rc));
		assert_true((rc == GW_OK) == (ctx != NULL));
		smtp_provider_ops.close(ctx);
		json_decref(c);
	}
	smtp_provider_ops.close(NULL);
}

/* test_dkim_keys - a valid key is accepted; a short one or a bad domain is refused */
/* read_key - PEM_read_bio_PrivateKey as libopendkim calls it: a memory BIO of the text */
static EVP_PKEY *read_key(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k;

	assert_non_null(b);
	k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	return k;
}

/* A signer's key is parsed once: while it lives, reading its text hands out that one parsed
 * key (libopendkim reads it for every message); other texts, and the same text once the
 * signer is gone, are parsed by OpenSSL as always. */
static void test_dkim_key_cache(void **state)
{
	struct smtp_dkim *d = NULL, *d2 = NULL;
	struct gw_err err;
	EVP_PKEY *a, *b, *c;
	char *other;

	(void)state;
	memset(&err, 0, sizeof(err));
	a = read_key(fx.dkim_key_pem);
	b = read_key(fx.dkim_key_pem);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b); /* no signer: two parses */
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);

	assert_int_equal(smtp_dkim_create(DKIM_DOMAIN, DKIM_SELECTOR, fx.dkim_key_pem, &d, &err),
	                 GW_OK);
	assert_int_equal(smtp_dkim_create(DKIM_DOMAIN, "other", fx.dkim_key_pem, &d2, &err),
	                 GW_OK);
	a = read_key(fx.dkim_key_pem);
	b = read_key(fx.dkim_key_pem);
	assert_non_null(a);
	assert_ptr_equal(a, b); /* the signers' parsed key */
	assert_true(EVP_PKEY_eq(a, b) == 1);
	/* a text that differs by one byte is not that key */
	other = strdup(fx.dkim_key_pem);
	assert_non_null(other);
	other[strlen(other) - 1] = '\0';
	c = read_key(other);
	assert_ptr_not_equal(c, a);
	EVP_PKEY_free(c);
	free(other);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);

	/* one signer gone: the other still shares it; both gone: parsed again */
	smtp_dkim_destroy(d);
	a = read_key(fx.dkim_key_pem);
	b = read_key(fx.dkim_key_pem);
	assert_ptr_equal(a, b);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	smtp_dkim_destroy(d2);
	a = read_key(fx.dkim_key_pem);
	b = read_key(fx.dkim_key_pem);
	assert_non_null(a);
	assert_ptr_not_equal(a, b);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
}

static void test_dkim_keys(void **state)
{
	struct smtp_dkim *d = NULL;
	struct gw_err err;
	char key[400], *pem;

	(void)state;
	memset(&err, 0, sizeof(err));
	assert_int_equal(smtp_dkim_create(DKIM_DOMAIN, DKIM_SELECTOR, fx.dkim_key_pem, &d, &err),
	                 GW_OK);
	smtp_dkim_destroy(d);
	smtp_dkim_destroy(NULL);

	snprintf(key, sizeof(key), "%s/short.pem", fx.base);
	{
		const char *gen[] = {"openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
		                     "rsa_keygen_bits:512", "-out", key, NULL};

		assert_int_equal(run_cmd(gen), 0);
	}
	pem = slurp(key, NULL);
	assert_non_null(pem);
	d = NULL;
	assert_int_equal(smtp_dkim_create(DKIM_DOMAIN, DKIM_SELECTOR, pem, &d, &err), GW_ECONFIG);
	assert_null(d);
	assert_string_equal(err.field, "dkim.private_key_pem");
	assert_int_equal(smtp_dkim_create("bad domain", DKIM_SELECTOR, fx.dkim_key_pem, &d, &err),
	                 GW_ECONFIG);
	assert_string_equal(err.field, "dkim.domain");
	free(pem);
}

/* test_guard - without allow_outbound a loopback server is refused before connect: the same
 * words for a live server and a closed port, nothing delivered; a bad range is a config error */
static void test_guard(void **state)
{
	struct tcase *tc = *state;
	struct provider_result res;
	char closed_detail[sizeof(res.detail)], *mail;
	json_t *c;
	int port;

	server_start(&tc->srv, NULL);
	c = config(&tc->srv, "none");
	json_object_del(c, "allow_outbound");
	tc->ctx = open_ctx(c);
	assert_int_equal(send_one(tc->ctx, 1, &res), PROVIDER_PERMANENT);
	assert_string_equal(res.detail, NETGUARD_REFUSED);
	assert_null(received(&tc->srv, 1, "eml", NULL));
	smtp_provider_ops.close(tc->ctx);
	tc->ctx = NULL;

	/* a port nobody listens on: the same answer */
	port = tc->srv.port;
	c = config(&tc->srv, "none");
	json_object_set_new(c, "port", json_integer(port == 65535 ? 1 : port + 1));
	json_object_set_new(c, "allow_outbound", json_pack("[s]", "10.0.0.0/8"));
	tc->ctx = open_ctx(c);
	assert_int_equal(send_one(tc->ctx, 1, &res), PROVIDER_PERMANENT);
	snprintf(closed_detail, sizeof(closed_detail), "%s", res.detail);
	assert_string_equal(closed_detail, NETGUARD_REFUSED);
	smtp_provider_ops.close(tc->ctx);
	tc->ctx = NULL;

	/* "localhost" resolves to loopback: checked after DNS, refused the same way */
	c = config(&tc->srv, "none");
	json_object_set_new(c, "host", json_string("localhost"));
	json_object_del(c, "allow_outbound");
	tc->ctx = open_ctx(c);
	assert_int_equal(send_one(tc->ctx, 1, &res), PROVIDER_PERMANENT);
	assert_string_equal(res.detail, NETGUARD_REFUSED);
	assert_null(received(&tc->srv, 1, "eml", NULL));
	smtp_provider_ops.close(tc->ctx);
	tc->ctx = NULL;

	/* allowed: delivered */
	tc->ctx = open_ctx(config(&tc->srv, "none"));
	if(send_one(tc->ctx, 1, &res) != PROVIDER_SENT)
		fail_msg("allowed: %s", res.detail);
	mail = received(&tc->srv, 1, "eml", NULL);
	assert_non_null(mail);
	free(mail);
}

/* test_guard_config - allow_outbound must be an array of CIDRs; ca_file is refused */
static void test_guard_config(void **state)
{
	struct server s = {.port = 25};
	void *ctx = NULL;
	json_t *c;

	(void)state;
	c = config(&s, "none");
	json_object_set_new(c, "allow_outbound", json_pack("[s]", "127.0.0.1/33"));
	assert_int_equal(smtp_provider_ops.open(c, "/nonexistent", &ctx), GW_ECONFIG);
	assert_null(ctx);
	json_object_set_new(c, "allow_outbound", json_string("127.0.0.0/8"));
	assert_int_equal(smtp_provider_ops.open(c, "/nonexistent", &ctx), GW_ECONFIG);
	json_object_set_new(c, "allow_outbound", json_pack("[s]", "127.0.0.0/8"));
	json_object_set_new(c, "ca_file", json_string("/etc/ssl/certs/ca-certificates.crt"));
	assert_int_equal(smtp_provider_ops.open(c, "/nonexistent", &ctx), GW_ECONFIG);
	assert_null(ctx);
	json_decref(c);
}

#define CASE(f) cmocka_unit_test_setup_teardown(f, case_setup, case_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    CASE(test_plain_delivery),
	    CASE(test_starttls),
	    CASE(test_implicit_tls),
	    CASE(test_auth),
	    CASE(test_auth_over_starttls),
	    CASE(test_451_transient),
	    CASE(test_550_permanent),
	    CASE(test_server_down),
	    CASE(test_dkim),
	    CASE(test_unusable_payload),
	    CASE(test_guard),
	    cmocka_unit_test(test_guard_config),
	    cmocka_unit_test(test_open_config),
	    cmocka_unit_test(test_dkim_keys),
	    cmocka_unit_test(test_dkim_key_cache),
	};

	/* a server that closes a connection must not kill the test with SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("smtp_client", tests, group_setup, group_teardown);
}
