/*
 * delay_proxy.c - a TCP proxy on 127.0.0.1 that holds every reply of the server behind it for
 * DELAY ms before passing it on: in front of smtp-sink it makes a far side whose every SMTP
 * command (greeting, EHLO, MAIL, RCPT, DATA, end of data, ...) answers DELAY ms late, as a link
 * with a round trip of DELAY ms would. The client's bytes go through at once.
 *
 * Two threads per connection: client to server (copied at once, the time of its last read
 * noted) and server to client (each read held until DELAY ms after the client's last bytes
 * came in, or after the read itself when the server spoke first, as with its greeting; then
 * written). So every answer reaches the client DELAY ms after its command, as over a link
 * whose round trip, the server's own time included, is DELAY: measured from the server's
 * answer instead, the round trip was DELAY plus the server's time and the wake-ups on both
 * sides, 5.6-5.9 ms for a DELAY of 5 on a 2-core machine. The wait is clock_nanosleep on an
 * absolute deadline, started as early as the thread's recent lateness in waking (about 0.1 ms
 * here), so that the answer goes at the deadline, not after it. In C so that the proxy is not
 * the bottleneck it measures: bench/delay_proxy.py, the same thing in Python's asyncio, held
 * bare libcurl to 0.48 of the bound at 32 connections on a 2-core machine.
 *
 * usage: delay_proxy UPSTREAM_PORT DELAY_MS   (prints the port it listens on, then serves
 * until killed; run by bench/smtp_throughput.py --delay-ms)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int upstream_port;
static long delay_ns;

struct pipe_end {
	int from, to;
	int delayed;
	_Atomic int64_t *last_in; /* ns: when the client's last bytes came in (0: none yet) */
};

/* now_ns - CLOCK_MONOTONIC in nanoseconds */
static int64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

#define EARLY_MAX_NS 1000000 /* the wait starts at most 1 ms early */

/* hold - wait until deadline (ns), starting *early ns before it, and learn from the lateness */
static void hold(int64_t deadline, int64_t *early)
{
	int64_t at = deadline - *early, late;
	struct timespec ts = {(time_t)(at / 1000000000), (long)(at % 1000000000)};

	if(at > now_ns())
		while(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
			;
	else
		return; /* due, or nearly (the server took about the delay or longer): at once */
	late = now_ns() - deadline;
	/* moving average of how late a wait ends (1/8 weight): the next one starts that early */
	*early += late / 8;
	if(*early < 0)
		*early = 0;
	if(*early > EARLY_MAX_NS)
		*early = EARLY_MAX_NS;
}

/* write_all - the whole buffer, or -1 */
static int write_all(int fd, const char *p, size_t n)
{
	while(n > 0) {
		ssize_t w = write(fd, p, n);

		if(w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* pump - copy from -> to until either side closes; the reply side waits DELAY per read */
static void *pump(void *arg)
{
	struct pipe_end *e = arg;
	char buf[65536];
	int64_t early = 0;
	ssize_t n;

	while((n = read(e->from, buf, sizeof(buf))) > 0) {
		if(e->delayed) {
			int64_t in = atomic_load(e->last_in);

			hold((in ? in : now_ns()) + delay_ns, &early);
		} else {
			atomic_store(e->last_in, now_ns());
		}
		if(write_all(e->to, buf, (size_t)n) < 0)
			break;
	}
	shutdown(e->to, SHUT_WR);
	shutdown(e->from, SHUT_RD);
	return NULL;
}

/* serve - one client connection: its upstream, the two pumps, then both closed */
static void *serve(void *arg)
{
	int c = (int)(long)arg, u, one = 1;
	_Atomic int64_t last_in = 0;
	struct sockaddr_in a;
	struct pipe_end up, down;
	pthread_t t;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)upstream_port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	u = socket(AF_INET, SOCK_STREAM, 0);
	if(u < 0 || connect(u, (struct sockaddr *)&a, sizeof(a)) != 0) {
		if(u >= 0)
			close(u);
		close(c);
		return NULL;
	}
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	up = (struct pipe_end){c, u, 0, &last_in};
	down = (struct pipe_end){u, c, 1, &last_in};
	if(pthread_create(&t, NULL, pump, &up) != 0) {
		close(u);
		close(c);
		return NULL;
	}
	pump(&down);
	pthread_join(t, NULL);
	close(u);
	close(c);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int s, one = 1;

	if(argc != 3) {
		fprintf(stderr, "usage: delay_proxy UPSTREAM_PORT DELAY_MS\n");
		return 2;
	}
	upstream_port = atoi(argv[1]);
	delay_ns = (long)(atof(argv[2]) * 1000000.0);
	signal(SIGPIPE, SIG_IGN);
	s = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if(s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s, 256) != 0 ||
	   getsockname(s, (struct sockaddr *)&a, &len) != 0) {
		perror("delay_proxy");
		return 1;
	}
	printf("%d\n", ntohs(a.sin_port));
	fflush(stdout);
	for(;;) {
		int c = accept(s, NULL, NULL);
		pthread_t t;
		pthread_attr_t at;

		if(c < 0)
			continue;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&at, 256 * 1024);
		if(pthread_create(&t, &at, serve, (void *)(long)c) != 0)
			close(c);
		pthread_attr_destroy(&at);
	}
}
