/*
 * http_bare.c - the baseline of bench/http.sh: bare libmicrohttpd answering a static JSON body,
 * with the same daemon options as the gateway (internal polling thread, epoll, a pool of 4).
 *
 * Usage: http_bare PORT   (127.0.0.1 only; stops on SIGTERM/SIGINT)
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char body[] = "{\"id\":1,\"name\":\"Tia Trainer\",\"roles\":[\"trainer\"]}";

/* answer - the same static JSON for every request */
static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req_cls)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	(void)upload;
	(void)upload_size;
	/* the first call only announces the request (libmicrohttpd's examples): answering in it
	 * would make the library close the connection after the answer */
	if(!*req_cls) {
		*req_cls = (void *)(uintptr_t)1;
		return MHD_YES;
	}
	r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)(uintptr_t)body,
	                                    MHD_RESPMEM_PERSISTENT);
	if(!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	struct MHD_Daemon *d;
	sigset_t set;
	int sig;

	if(argc != 2)
		return 2;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)strtol(argv[1], NULL, 10));
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, &answer,
	                     NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	                     MHD_OPTION_THREAD_POOL_SIZE, (unsigned)4, MHD_OPTION_CONNECTION_LIMIT,
	                     (unsigned)1000, MHD_OPTION_END);
	if(!d)
		return 1;
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	return 0;
}
