/*
 * fuzz_smtp.c - libFuzzer harness for what an SMTP server answers: the SMTP provider
 * (smtp_provider_ops, libcurl) sends one email to a server on 127.0.0.1 that plays the input
 * back as its replies, and the provider classifies the outcome (smtp/smtp_client.c: the reply
 * collector and classify()).
 *
 * Input: byte 0 chooses the client's settings (bit 0: AUTH with a username and password,
 * bit 1: security "starttls" instead of "none"); the rest is the server's script, one reply
 * line per input line ("\n"-separated, sent with CRLF). The server sends the greeting (the
 * lines up to the first one that does not continue, RFC 5321 4.2.1 "NNN-"), then one reply
 * after each read from the client, or after 5 ms of silence (so a client waiting on a
 * half-sent reply is not stuck), and closes when the script ends.
 *
 * Beyond "no crash, no leak": the outcome is one of the provider's, and the detail that goes
 * to the delivery row (what admins see) is bounded, free of control characters and never holds
 * the password, whatever the server echoes.
 *
 * Threading: the server is one thread of this process; the provider runs on the fuzzer's.
 * Built two ways: with clang -fsanitize=fuzzer (make fuzz) to search, and with fuzz/replay.c
 * (make check) to replay the committed corpus under ASan+UBSan. Nothing leaves 127.0.0.1.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "smtp/smtp.h"

#define PASSWORD   "s3cret-Pass.word"
#define SCRIPT_MAX 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the server thread and the fuzzer's thread share this, under lock */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int listen_fd;
	int port;
	char script[SCRIPT_MAX]; /* this input's replies */
	size_t len;
	bool pending;     /* a script waits to be played */
	bool client_done; /* the provider returned: stop waiting for its connection */
	bool played;      /* the server is finished with the script */
} srv = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, -1, 0, {0}, 0, false, false, false};

/* send_all - write n bytes, giving up on an error (the client may have gone) */
static void send_all(int fd, const char *p, size_t n)
{
	while(n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if(w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* send_reply - send the reply starting at *pos (its continuation lines too) in one write (two
 * small writes would wait on Nagle and the peer's delayed ACK); *pos moves on */
static void send_reply(int fd, const char *s, size_t len, size_t *pos)
{
	char out[SCRIPT_MAX * 2];
	size_t w = 0;

	while(*pos < len) {
		const char *nl = memchr(s + *pos, '\n', len - *pos);
		size_t n = nl ? (size_t)(nl - (s + *pos)) : len - *pos;
		bool more = n > 3 && s[*pos + 3] == '-';

		memcpy(out + w, s + *pos, n);
		memcpy(out + w + n, "\r\n", 2);
		w += n + 2;
		*pos += n + (nl ? 1 : 0);
		if(!more)
			break;
	}
	send_all(fd, out, w);
}

/* play - one connection: the greeting, then a reply per read of the client's */
static void play(int fd, const char *s, size_t len)
{
	size_t pos = 0;
	char buf[65536];

	send_reply(fd, s, len, &pos);
	while(pos < len) {
		struct pollfd p = {fd, POLLIN, 0};
		int r = poll(&p, 1, 5);

		if(r > 0 && recv(fd, buf, sizeof(buf), 0) <= 0)
			return;
		send_reply(fd, s, len, &pos);
	}
}

/* server - accept one connection per script and play it */
static void *server(void *arg)
{
	char script[SCRIPT_MAX];
	size_t len;

	(void)arg;
	for(;;) {
		int fd = -1;

		pthread_mutex_lock(&srv.lock);
		while(!srv.pending)
			pthread_cond_wait(&srv.cond, &srv.lock);
		memcpy(script, srv.script, srv.len);
		len = srv.len;
		srv.pending = false;
		pthread_mutex_unlock(&srv.lock);
		/* the provider connects unless it gave up before (a refused setting) */
		for(;;) {
			struct pollfd p = {srv.listen_fd, POLLIN, 0};
			bool done;

			if(poll(&p, 1, 10) > 0) {
				int one = 1;

				fd = accept(srv.listen_fd, NULL, NULL);
				if(fd >= 0)
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				break;
			}
			pthread_mutex_lock(&srv.lock);
			done = srv.client_done;
			pthread_mutex_unlock(&srv.lock);
			if(done)
				break;
		}
		if(fd >= 0) {
			play(fd, script, len);
			close(fd);
		}
		pthread_mutex_lock(&srv.lock);
		srv.played = true;
		pthread_cond_broadcast(&srv.cond);
		pthread_mutex_unlock(&srv.lock);
	}
	return NULL;
}

/* setup - the listening socket and the server thread, once */
static void setup(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	pthread_t t;
	int one = 1;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	srv.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(srv.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if(srv.listen_fd < 0 || bind(srv.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	   listen(srv.listen_fd, 8) || getsockname(srv.listen_fd, (struct sockaddr *)&sa, &sl))
		abort();
	srv.port = ntohs(sa.sin_port);
	if(pthread_create(&t, NULL, server, NULL))
		abort();
	pthread_detach(t);
}

/* detail_ok - bounded, printable, and without the password */
static bool detail_ok(const char *d, size_t cap)
{
	size_t n = strnlen(d, cap);
	size_t i;

	if(n == cap)
		return false;
	for(i = 0; i < n; i++) {
		if((unsigned char)d[i] < 0x20 || (unsigned char)d[i] == 0x7f)
			return false;
	}
	return strstr(d, PASSWORD) == NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	struct provider_result res;
	json_t *config = NULL, *payload = NULL;
	void *ctx = NULL;

	if(size < 1 || size - 1 > SCRIPT_MAX)
		return 0;
	if(!ready) {
		setup();
		ready = true;
	}
	config = json_pack("{s:s, s:i, s:s, s:s, s:s, s:i, s:i, s:[s]}", "host", "127.0.0.1",
	                   "port", srv.port, "security", (data[0] & 2) ? "starttls" : "none",
	                   "from_address", "bookings@acme.example", "from_name", "Acme Bookings",
	                   "connect_timeout", 1, "timeout", 2, "allow_outbound", "127.0.0.0/8");
	if(config && (data[0] & 1)) {
		json_object_set_new(config, "username", json_string("bookings"));
		json_object_set_new(config, "password", json_string(PASSWORD));
	}
	payload = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:s, s:s}", "kind",
	                    "confirmation", "message_id", "<0001.confirmation@ordinatus>", "date",
	                    "2026-12-01T09:00:00Z", "from", "address", "org@acme.example", "name",
	                    "Acme", "to", "address", "customer@example.org", "name", "Customer",
	                    "subject", "Your booking", "text", "Hello.\n");
	if(!config || !payload)
		abort();

	pthread_mutex_lock(&srv.lock);
	memcpy(srv.script, data + 1, size - 1);
	srv.len = size - 1;
	srv.pending = true;
	srv.client_done = false;
	srv.played = false;
	pthread_cond_broadcast(&srv.cond);
	pthread_mutex_unlock(&srv.lock);

	memset(&res, 0, sizeof(res));
	if(smtp_provider_ops.open(config, "/nonexistent", &ctx) == GW_OK) {
		smtp_provider_ops.send(ctx, "confirmation", payload, &res);
		smtp_provider_ops.close(ctx);
		if(getenv("FUZZ_SMTP_SHOW")) /* to see what a saved input does */
			fprintf(stderr, "outcome %d: %s\n", (int)res.outcome, res.detail);
		if(res.outcome != PROVIDER_SENT && res.outcome != PROVIDER_TRANSIENT &&
		   res.outcome != PROVIDER_PERMANENT)
			abort();
		if(!detail_ok(res.detail, sizeof(res.detail)) || res.out)
			abort();
	}

	pthread_mutex_lock(&srv.lock);
	srv.client_done = true;
	while(!srv.played)
		pthread_cond_wait(&srv.cond, &srv.lock);
	pthread_mutex_unlock(&srv.lock);
	json_decref(config);
	json_decref(payload);
	return 0;
}
