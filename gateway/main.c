/*
 * main.c - the ordinatus command: init, serve, tick, outbox, backup (the contract's "Command
 * line"); serve reads a configuration file too (--config, gateway/conf.h), under its options.
 *
 * Entry point: main(). Threading: serve starts the HTTP pool and the dispatch workers, then
 * waits for SIGTERM/SIGINT in the main thread and drains: stop taking requests, let in-flight
 * sends finish, give back unstarted leases, exit 0.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "gateway/conf.h"
#include "common/crypto.h"
#include "gateway/delivery/dispatch.h"
#include "gateway/http/http.h"
#include "gateway/http/http_routes.h"
#include "common/log.h"
#include "common/netguard.h"
#include "gateway/scheduler/scheduler.h"
#include "smtp/smtp.h"
#include "store/store.h"
#include "common/timefmt.h"
#include "common/tz.h"
#include "common/version.h"

struct paths {
	char data[PATH_MAX];
	char db[PATH_MAX + 32]; /* DATA/ordinatus.db, or the --db URL */
	char key[PATH_MAX + 32];
	bool url;               /* db is a database server's URL (PostgreSQL) */
};

/* the --db of the command line (every command takes it), else $ORDINATUS_DB */
static const char *db_option;

/* parse_int - a whole decimal in lo..hi into *out; -1 for anything else */
static int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if(!*s || *end || errno || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

/* check_public_url - an http(s) URL with a host, no spaces or control characters, short
 * enough for links in emails; trailing slashes dropped into buf */
static int check_public_url(const char *in, char *buf, size_t n)
{
	const char *host;
	size_t i, len = strlen(in);

	if(strncmp(in, "http://", 7) == 0)
		host = in + 7;
	else if(strncmp(in, "https://", 8) == 0)
		host = in + 8;
	else
		return -1;
	if(len >= n || len > 400 || !*host || *host == '/' || *host == ':')
		return -1;
	for(i = 0; i < len; i++)
		if((unsigned char)in[i] <= ' ' || in[i] == 0x7f || in[i] == '"' || in[i] == '<' ||
		   in[i] == '>' || in[i] == '\\' || in[i] == '?' || in[i] == '#')
			return -1;
	snprintf(buf, n, "%s", in);
	while(strlen(buf) > 0 && buf[strlen(buf) - 1] == '/')
		buf[strlen(buf) - 1] = '\0';
	return 0;
}

/* lock_data - hold the data folder's lock file for the life of the process: one serving
 * gateway per folder. The kernel drops an flock(2) lock when the process ends, kill -9 too. The
 * file holds the holder's pid, for the message a second gateway gives. */
static int lock_data(const char *dir)
{
	char path[PATH_MAX + 32], pid[32] = "";
	int fd;
	ssize_t got;

	snprintf(path, sizeof(path), "%s/serve.lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if(fd < 0) {
		fprintf(stderr, "ordinatus: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	if(flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		got = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[got > 0 ? got : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		if(e == EWOULDBLOCK)
			fprintf(stderr,
			        "ordinatus: %s is served by another gateway (pid %s); stop it first, or "
			        "use another --data folder\n",
			        dir, pid[0] ? pid : "unknown");
		else
			fprintf(stderr, "ordinatus: cannot lock %s: %s\n", path, strerror(e));
		close(fd);
		return -1;
	}
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if(ftruncate(fd, 0) != 0 || pwrite(fd, pid, strlen(pid), 0) != (ssize_t)strlen(pid)) {
		/* the lock holds all the same; only the pid in the message is missing */
	}
	return fd; /* never closed: the lock lives as long as the process */
}

/* usage - the top-level help */
static void usage(FILE *f)
{
	fprintf(f, "usage: ordinatus COMMAND [options]\n\n"
	           "commands:\n"
	           "  init   --data DIR [--db URL]           create DIR, its database and key file;\n"
	           "                                         prints the platform admin token once\n"
	           "  serve  [--config FILE] --data DIR [--db URL] [--listen HOST:PORT]\n"
	           "         [--public-url URL]\n"
	           "         [--test-clock] [--workers N] [--log-level L] [--allow-outbound CIDR]...\n"
	           "         [--allow-plain-auth] [--retention-days N] [--trust-proxy CIDR]... [limits]\n"
	           "         [--web DIR]\n"
	           "                                         run the HTTP API and delivery workers\n"
	           "  tick   --data DIR [--at RFC3339]      run one scheduler tick; prints what it did\n"
	           "  outbox --data DIR [list [--status S] | retry ID]\n"
	           "                                         list deliveries, retry a dead one\n"
	           "  backup --data DIR --to FILE            a consistent copy of the database while\n"
	           "                                         the gateway serves (FILE must not exist)\n"
	           "  routes                                 the HTTP route table as JSON\n\n"
	           "Every command takes --db postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME (or\n"
	           "$ORDINATUS_DB) for a PostgreSQL database instead of DIR/ordinatus.db.\n\n"
	           "'ordinatus COMMAND --help' tells more; 'ordinatus --version' the version.\n");
}

/* set_paths - DATA, the database (DATA/ordinatus.db, or --db / $ORDINATUS_DB), DATA/master.key */
static int set_paths(struct paths *p, const char *data)
{
	const char *db = db_option ? db_option : getenv("ORDINATUS_DB");

	if(!data || !*data || strlen(data) >= sizeof(p->data)) {
		fprintf(stderr, "ordinatus: --data DIR is required\n");
		return -1;
	}
	snprintf(p->data, sizeof(p->data), "%s", data);
	snprintf(p->key, sizeof(p->key), "%s/master.key", data);
	p->url = false;
	if(db && *db) {
		if(strlen(db) >= sizeof(p->db) || !(!strncmp(db, "postgresql://", 13) ||
		                                     !strncmp(db, "postgres://", 11))) {
			/* the message never repeats the URL: it may hold a password */
			fprintf(stderr, "ordinatus: --db must be a postgresql:// URL (or be left out for "
			                "DATA/ordinatus.db)\n");
			return -1;
		}
		snprintf(p->db, sizeof(p->db), "%s", db);
		p->url = true;
		return 0;
	}
	snprintf(p->db, sizeof(p->db), "%s/ordinatus.db", data);
	return 0;
}

/* initialised - DATA holds an initialised installation: its database file, or with a
 * database server its key file (which init writes after the schema) */
static bool initialised(const struct paths *p)
{
	return access(p->url ? p->key : p->db, F_OK) == 0;
}

/* cmd_init - ordinatus init --data DIR */
static int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
	                                     {"db", required_argument, NULL, 'D'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	struct store_user_new u = {0};
	json_t *installed = NULL;
	struct store *st = NULL;
	struct gw_err err = {0};
	struct paths p;
	char token[64], hash[CRYPTO_HASH_HEX];
	const char *data = NULL;
	int64_t id;
	int c, status = 1;

	while((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if(c == 'd') {
			data = optarg;
		} else if(c == 'D') {
			db_option = optarg;
		} else {
			fprintf(c == 'h' ? stdout : stderr,
			        "usage: ordinatus init --data DIR [--db postgresql://...]\n\n"
			        "Creates DIR (mode 0700), the database DIR/ordinatus.db and the key file\n"
			        "DIR/master.key (mode 0600), and prints one JSON line with the platform\n"
			        "admin token. The token is shown only this once. An initialised DIR is\n"
			        "left alone (exit 1).\n\n"
			        "With --db (or $ORDINATUS_DB) the database is PostgreSQL's, which must\n"
			        "exist and be empty: init makes the schema there. Further gateways on the\n"
			        "same database need a DIR of their own holding a copy of master.key; they\n"
			        "are not initialised again.\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if(set_paths(&p, data))
		return 2;
	if(mkdir(p.data, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "ordinatus: cannot create %s: %s\n", p.data, strerror(errno));
		return 1;
	}
	if((!p.url && access(p.db, F_OK) == 0) || access(p.key, F_OK) == 0) {
		fprintf(stderr, "ordinatus: %s is already initialised; nothing was changed\n", p.data);
		return 1;
	}
	if(p.url) {
		/* the schema first: a database another installation uses is refused before any key
		 * file is written */
		if(store_open(p.db, true, &st, &err)) {
			fprintf(stderr, "ordinatus: %s\n", err.message);
			goto out;
		}
		if(store_meta_get(st, "install_id", &installed) == GW_OK && json_is_string(installed)) {
			fprintf(stderr, "ordinatus: the database is initialised already; a further "
			                "gateway on it needs a copy of the first one's master.key in %s, "
			                "not init\n",
			        p.data);
			goto out;
		}
		if(crypto_key_create(p.key, &err) || smtp_maildir_prepare(p.data, &err)) {
			fprintf(stderr, "ordinatus: %s\n", err.message);
			goto out;
		}
	} else if(crypto_key_create(p.key, &err) || smtp_maildir_prepare(p.data, &err) ||
	          store_open(p.db, true, &st, &err)) {
		fprintf(stderr, "ordinatus: %s\n", err.message);
		goto out;
	}
	if(crypto_token("ord_", token, sizeof(token)))
		goto out;
	crypto_sha256_hex(token, strlen(token), hash);
	u.email = "platform-admin@ordinatus.localhost";
	u.name = "Platform admin";
	u.roles = ROLE_PLATFORM_ADMIN;
	u.timezone = "UTC";
	u.token_hash = hash;
	if(store_user_create(st, 0, &u, &id)) {
		fprintf(stderr, "ordinatus: cannot create the platform admin: %s\n", store_errmsg(st));
		goto out;
	}
	/* an id of this installation, so Message-IDs never repeat between installations */
	if(crypto_token("", hash, sizeof(hash)) || store_meta_put(st, "install_id", hash)) {
		fprintf(stderr, "ordinatus: cannot record the installation id\n");
		goto out;
	}
	printf("{\"platform_admin_token\": \"%s\"}\n", token);
	OPENSSL_cleanse(token, sizeof(token));
	status = 0;
out:
	json_decref(installed);
	store_close(st);
	return status;
}

/* load_key - read DATA/master.key */
static int load_key(const struct paths *p, unsigned char key[CRYPTO_KEY_LEN])
{
	struct gw_err err = {0};

	if(!initialised(p)) {
		fprintf(stderr, "ordinatus: %s is not initialised: run 'ordinatus init --data %s'%s\n",
		        p->data, p->data, p->url ? " (or copy master.key there from the first gateway)" : "");
		return -1;
	}
	if(crypto_key_load(p->key, key, &err)) {
		fprintf(stderr, "ordinatus: %s\n", err.message);
		return -1;
	}
	return 0;
}

/* serve's options; a configuration file key is one of their names with '_' for '-' */
static const struct option serve_opts[] = {
    {"data", required_argument, NULL, 'd'},
    {"db", required_argument, NULL, 'D'},
    {"listen", required_argument, NULL, 'l'},
    {"public-url", required_argument, NULL, 'u'},
    {"test-clock", no_argument, NULL, 't'},
    {"workers", required_argument, NULL, 'w'},
    {"log-level", required_argument, NULL, 'v'},
    {"allow-outbound", required_argument, NULL, 'a'},
    {"allow-plain-auth", no_argument, NULL, 'p'},
    {"retention-days", required_argument, NULL, 'r'},
    {"trust-proxy", required_argument, NULL, 'X'},
    {"token-route-limit", required_argument, NULL, 'T'},
    {"max-connections-per-address", required_argument, NULL, 'C'},
    {"header-timeout", required_argument, NULL, 'H'},
    {"web", required_argument, NULL, 'W'},
    {"config", required_argument, NULL, 'c'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};

/* the letters of the serve options that may repeat (their values add up) */
#define SERVE_REPEATABLE "aX"

/* Where each serve option's value came from: NULL for the command line, else "FILE:LINE" of
 * the configuration file, for the messages that refuse a value (exit 2). */
struct serve_origin {
	int nfile;              /* the first nfile options parsed come from the file, in order */
	char **where;           /* [nfile] "FILE:LINE: key" (malloc'd) */
	const char *of[128];    /* by option letter: where its last value came from */
};

/* bad_option - name the file line a refused value came from; returns 2 (the exit status) */
static int bad_option(const char *where)
{
	if(where)
		fprintf(stderr, "ordinatus: in %s\n", where);
	return 2;
}

/* serve_run - ordinatus serve, with argv the file's options followed by the command line's */
static int serve_run(int argc, char **argv, struct serve_origin *from)
{
	struct http_config hc = {.listen_fd = -1};
	struct cidr4 trusted[HTTP_MAX_TRUSTED];
	size_t ntrusted = 0;
	int token_limit = HTTP_DEF_TOKEN_PER_MINUTE, conns_per_addr = HTTP_DEF_CONNS_PER_ADDR;
	int header_secs = HTTP_DEF_HEADER_SECS;
	struct rlimit nofile;
	struct dispatch_config dc = {0};
	unsigned char key[CRYPTO_KEY_LEN];
	struct store *st = NULL;
	struct gw_err err = {0};
	struct paths p;
	const char *data = NULL, *listen = "127.0.0.1:8080", *public_url = NULL;
	const char *workers_arg = NULL, *level = "info", *retention_arg = NULL;
	struct netguard_cidr cidr;
	struct sockaddr_in sa;
	char url[512], days[16];
	bool test_clock = false, plain_auth = false;
	int c, workers = 2, sig = 0, status = 1, retention = STORE_RETENTION_DAYS;
	json_t *allow = json_array();
	const char *where;
	sigset_t set;
	int k = 0;

	optind = 0; /* a fresh scan (cmd_serve scanned the command line first) */
	while((c = getopt_long(argc, argv, "", serve_opts, NULL)) != -1) {
		where = k < from->nfile ? from->where[k] : NULL;
		k++;
		if(c > 0 && c < 128)
			from->of[c] = where;
		switch(c) {
		case 'c': break; /* read by cmd_serve */
		case 'd': data = optarg; break;
		case 'D': db_option = optarg; break;
		case 'l': listen = optarg; break;
		case 'u': public_url = optarg; break;
		case 't': test_clock = true; break;
		case 'w': workers_arg = optarg; break;
		case 'v': level = optarg; break;
		case 'p': plain_auth = true; break;
		case 'r': retention_arg = optarg; break;
		case 'W':
			/* the pages from this folder instead of those built in (working on web/) */
			if(access(optarg, R_OK | X_OK) != 0) {
				fprintf(stderr, "ordinatus: --web %s: %s\n", optarg, strerror(errno));
				json_decref(allow);
				return bad_option(where);
			}
			hc.web_dir = optarg;
			break;
		case 'a':
			/* every range is checked here, before anything starts (exit 2) */
			if(netguard_cidr_parse(optarg, &cidr) ||
			   json_array_size(allow) >= NETGUARD_MAX) {
				fprintf(stderr,
				        "ordinatus: --allow-outbound must be an IPv4 or IPv6 CIDR such as "
				        "10.0.0.0/8 or fd00::/8 (at most %d): '%s'\n",
				        NETGUARD_MAX, optarg);
				json_decref(allow);
				return bad_option(where);
			}
			json_array_append_new(allow, json_string(optarg));
			break;
		case 'X':
			if(ntrusted == HTTP_MAX_TRUSTED) {
				fprintf(stderr, "ordinatus: at most %d --trust-proxy ranges\n",
				        HTTP_MAX_TRUSTED);
				json_decref(allow);
				return bad_option(where);
			}
			if(cidr4_parse(optarg, &trusted[ntrusted], &err)) {
				fprintf(stderr, "ordinatus: --trust-proxy: %s\n", err.message);
				json_decref(allow);
				return bad_option(where);
			}
			ntrusted++;
			break;
		case 'T':
			if(parse_int(optarg, 1, 1000000, &token_limit)) {
				fprintf(stderr, "ordinatus: --token-route-limit must be a whole "
				                "number of requests a minute from 1 to 1000000\n");
				json_decref(allow);
				return bad_option(where);
			}
			break;
		case 'C':
			if(parse_int(optarg, 1, HTTP_DEF_CONNS_TOTAL, &conns_per_addr)) {
				fprintf(stderr, "ordinatus: --max-connections-per-address must be "
				                "a whole number from 1 to %d\n",
				        HTTP_DEF_CONNS_TOTAL);
				json_decref(allow);
				return bad_option(where);
			}
			break;
		case 'H':
			if(parse_int(optarg, 1, 300, &header_secs)) {
				fprintf(stderr, "ordinatus: --header-timeout must be a whole "
				                "number of seconds from 1 to 300\n");
				json_decref(allow);
				return bad_option(where);
			}
			break;
		default:
			fprintf(c == 'h' ? stdout : stderr,
			        "usage: ordinatus serve [--config FILE] --data DIR [--db URL]\n"
			        "     [--listen HOST:PORT] [--public-url URL] [--test-clock] [--workers N]\n"
			        "     [--log-level L]\n"
			        "     [--allow-outbound CIDR]... [--allow-plain-auth] [--retention-days N]\n"
			        "     [--trust-proxy CIDR]... [--token-route-limit N]\n"
			        "     [--max-connections-per-address N] [--header-timeout S] [--web DIR]\n\n"
			        "--config FILE: 'key = value' lines ('#' comments) naming these options\n"
			        "with '_' for '-' (data, listen, public_url, trust_proxy, ...); options\n"
			        "given here win over the file. A bad line is exit 2, naming FILE:LINE.\n\n"			        "--db postgresql://...: the database is PostgreSQL's (else DIR/ordinatus.db;\n"
			        "$ORDINATUS_DB when --db is not given). Several gateways, each with its own\n"
			        "DIR holding the same master.key, may serve one PostgreSQL database. While\n"
			        "it cannot be reached the API answers 503 unavailable; nothing is lost.\n\n"
			        "Serves the HTTP API (default 127.0.0.1:8080), runs the delivery workers and\n"
			        "logs JSON lines to stderr. --public-url is the base of links in emails\n"
			        "(default http://HOST:PORT). --test-clock enables PUT /v1/test/clock and\n"
			        "POST /v1/test/tick, /v1/test/busy-refresh: never in production. --workers: delivery workers per\n"
			        "provider class, 1..16 (default 2). --log-level: debug, info (default: one\n"
			        "line per request and per delivery), warn or error. One gateway serves a\n"
			        "data folder and a port at a time. SIGTERM drains and exits 0.\n"
			        "--web DIR serves the pages from DIR (a copy of web/) instead of those\n"
			        "built in, read on every request: for working on the pages.\n\n"
			        "Outbound guard: providers connect to public addresses only;\n"
			        "--allow-outbound CIDR (repeatable, IPv4 or IPv6) allows a range more, for\n"
			        "example a relay on the operator's network. --allow-plain-auth lets an\n"
			        "organisation send SMTP AUTH over security \"none\" (credentials in clear).\n"
			        "--retention-days N (1..3650, default 30): sent emails keep their rendered\n"
			        "text this long, then only their dedupe keys and outcome.\n\n"
			        "--trust-proxy CIDR (repeatable, IPv4, e.g. 10.0.0.0/8): a peer\n"
			        "in it is a reverse proxy; the client is then the right-most\n"
			        "X-Forwarded-For address outside every trusted range.\n"
			        "--token-route-limit: requests a minute per client address to\n"
			        "/v1/schedule, /v1/survey, /v1/feeds, /v1/manage (default 120).\n"
			        "--max-connections-per-address: open connections per peer\n"
			        "address, trusted proxies exempt (default 64). --header-timeout:\n"
			        "seconds to receive a request's headers (default 10; body: 30).\n");
			json_decref(allow);
			return c == 'h' ? 0 : bad_option(where);
		}
	}
	/* every argument is checked before anything is written or started (exit 2) */
	if(optind < argc) {
		fprintf(stderr, "ordinatus: serve takes no argument '%s'\n", argv[optind]);
		return 2;
	}
	if(http_parse_listen(listen, &sa, &err)) {
		fprintf(stderr, "ordinatus: %s (for example 127.0.0.1:8080)\n", err.message);
		json_decref(allow);
		return bad_option(from->of['l']);
	}
	if(!allow) {
		fprintf(stderr, "ordinatus: out of memory\n");
		return 1;
	}
	if(retention_arg && parse_int(retention_arg, 1, 3650, &retention)) {
		fprintf(stderr, "ordinatus: --retention-days must be a whole number from 1 to 3650\n");
		json_decref(allow);
		return bad_option(from->of['r']);
	}
	if(workers_arg && parse_int(workers_arg, 1, 16, &workers)) {
		fprintf(stderr, "ordinatus: --workers must be a whole number from 1 to 16\n");
		json_decref(allow);
		return bad_option(from->of['w']);
	}
	if(gw_enum_check(level, "--log-level", log_levels, &err)) {
		fprintf(stderr, "ordinatus: %s\n", err.message);
		json_decref(allow);
		return bad_option(from->of['v']);
	}
	if(public_url && check_public_url(public_url, url, sizeof(url))) {
		fprintf(stderr, "ordinatus: --public-url must be an http:// or https:// URL with a "
		                "host and no query (for example https://book.example.com)\n");
		json_decref(allow);
		return bad_option(from->of['u']);
	}
	if(!public_url)
		snprintf(url, sizeof(url), "http://%s", listen);
	public_url = url;
	if(set_paths(&p, data) || load_key(&p, key)) {
		json_decref(allow);
		return bad_option(from->of['d']);
	}
	log_set_level(level);
	/* one gateway per data folder and per port, before anything starts (exit 1) */
	if(lock_data(p.data) < 0 || http_bind(listen, &hc.listen_fd, &err)) {
		if(err.message[0])
			fprintf(stderr, "ordinatus: %s\n", err.message);
		OPENSSL_cleanse(key, sizeof(key));
		return 1;
	}
	/* signals are taken by the main thread only: block them before threads start */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	tz_init();
	store_global_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* open once here: migrates the schema (or refuses a newer one) before anything serves */
	if(store_open(p.db, false, &st, &err)) {
		fprintf(stderr, "ordinatus: %s\n", err.message);
		return 1;
	}
	/* `ordinatus tick` renders links with the URL the daemon serves */
	store_meta_put(st, "public_url", public_url);
	/* and prunes sent payloads after the same number of days */
	snprintf(days, sizeof(days), "%d", retention);
	store_meta_put(st, "retention_days", days);
	store_close(st);
	hc.listen = listen;
	hc.public_url = public_url;
	hc.db_path = p.db;
	hc.data_dir = p.data;
	hc.master_key = key;
	hc.test_clock = test_clock;
	hc.allow_plain_auth = plain_auth;
	hc.threads = 4;
	hc.trusted = trusted;
	hc.ntrusted = ntrusted;
	hc.token_per_minute = (unsigned)token_limit;
	hc.conns_per_addr = (unsigned)conns_per_addr;
	hc.conns_total = HTTP_DEF_CONNS_TOTAL;
	hc.header_secs = (unsigned)header_secs;
	hc.body_secs = HTTP_DEF_BODY_SECS;
	/* room for the connection limit: the soft descriptor limit up to the hard one */
	if(getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < HTTP_DEF_CONNS_TOTAL + 256) {
		nofile.rlim_cur = nofile.rlim_max < HTTP_DEF_CONNS_TOTAL + 256
		                      ? nofile.rlim_max
		                      : HTTP_DEF_CONNS_TOTAL + 256;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	dc.db_path = p.db;
	dc.data_dir = p.data;
	dc.master_key = key;
	dc.workers = workers;
	dc.batch = 32;
	dc.lease_secs = 120;
	dc.allow_outbound = json_array_size(allow) ? allow : NULL;
	hc.allow_outbound = dc.allow_outbound; /* the OAuth code exchange goes out too */
	if(test_clock)
		log_event("warn", "test_clock_enabled",
		          json_pack("{s:s}", "message", "the clock can be set over HTTP: tests only"));
	if(dispatch_start(&dc, &err))
		goto out;
	if(!test_clock && sched_start(p.db, public_url, &err))
		goto stop;
	/* the rest of large fan-outs, also one a crash interrupted */
	if(lc_fanout_start(p.db, public_url, &err))
		goto stop;
	/* busy times of connected calendars; under --test-clock POST /v1/test/busy-refresh */
	if(!test_clock && dispatch_busy_start(p.db, &err))
		goto stop;
	if(http_start(&hc, &err))
		goto stop;
	log_event("info", "serving",
	          json_pack("{s:s, s:s, s:s, s:s}", "listen", listen, "public_url", public_url, "data",
	                    p.data, "version", ORDINATUS_VERSION));
	if(sigwait(&set, &sig) != 0)
		sig = SIGTERM;
	log_event("info", "draining", json_pack("{s:i}", "signal", sig));
	http_stop();
	status = 0;
stop:
	lc_fanout_stop();
	sched_stop();
	dispatch_busy_stop();
	dispatch_stop();
out:
	if(status)
		fprintf(stderr, "ordinatus: %s\n", err.message);
	else
		log_event("info", "stopped", NULL);
	OPENSSL_cleanse(key, sizeof(key));
	json_decref(allow);
	return status;
}

/* cmd_serve - ordinatus serve [--config FILE] [options]: the file's lines become options put
 * before the command line's, so that a command-line value wins (getopt keeps the last one);
 * a repeatable option given on the command line drops the file's lines for it. */
static int cmd_serve(int argc, char **argv)
{
	struct serve_origin from;
	struct conf_key keys[CONF_KEYS_MAX];
	size_t nkeys = 0;
	struct conf cf = {0};
	struct gw_err err = {0};
	bool on_cli[128] = {false};
	const char *config = NULL;
	char **args = NULL;
	int c, line = 0, nargs = 0, status = 2;
	size_t i, j;

	memset(&from, 0, sizeof(from));
	/* The heap of a long-running server (bench/soak.sh): glibc gives each thread that
	 * contends for memory an arena of its own (up to 8 per core) and raises its mmap threshold
	 * after every large free, so the answers of a busy hour end up spread over many arenas'
	 * high-water marks. Two arenas and a fixed 128 KiB threshold (large buffers mapped and
	 * unmapped whole) keep the RSS level under steady traffic (bench/soak.sh: +1.1 % over 10
	 * minutes instead of +5.5 %). Both before any thread starts; glibc's MALLOC_ARENA_MAX and
	 * MALLOC_MMAP_THRESHOLD_ in the environment win. */
	if(!getenv("MALLOC_ARENA_MAX")) /* the environment's choice wins */
		(void)mallopt(M_ARENA_MAX, 2);
	if(!getenv("MALLOC_MMAP_THRESHOLD_"))
		(void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	/* the command line first: --config, and which options it sets (messages come later) */
	opterr = 0;
	optind = 0;
	while((c = getopt_long(argc, argv, "", serve_opts, NULL)) != -1) {
		if(c > 0 && c < 128)
			on_cli[c] = true;
		if(c == 'c')
			config = optarg;
	}
	opterr = 1;
	/* the file's keys: every option but --config and --help; a flag is a true/false key */
	for(i = 0; serve_opts[i].name && nkeys < CONF_KEYS_MAX; i++) {
		if(serve_opts[i].val == 'c' || serve_opts[i].val == 'h')
			continue;
		keys[nkeys].option = serve_opts[i].name;
		keys[nkeys].kind = serve_opts[i].has_arg == no_argument ? CONF_FLAG
		                   : strchr(SERVE_REPEATABLE, serve_opts[i].val) ? CONF_LIST
		                                                                  : CONF_VALUE;
		nkeys++;
	}
	if(config && conf_load(config, keys, nkeys, &cf, &line, &err)) {
		if(line)
			fprintf(stderr, "ordinatus: %s:%d: %s\n", config, line, err.message);
		else
			fprintf(stderr, "ordinatus: --config: %s\n", err.message[0] ? err.message :
			                                                 "out of memory");
		goto out;
	}
	args = calloc((size_t)argc + cf.n + 1, sizeof(*args));
	from.where = calloc(cf.n + 1, sizeof(*from.where));
	if(!args || !from.where) {
		fprintf(stderr, "ordinatus: out of memory\n");
		status = 1;
		goto out;
	}
	args[nargs++] = argv[0];
	for(i = 0; i < cf.n; i++) {
		const struct option *o = NULL;
		char *a = NULL, *w = NULL;

		for(j = 0; serve_opts[j].name; j++)
			if(strcmp(serve_opts[j].name, cf.v[i].option) == 0)
				o = &serve_opts[j];
		if(!o || on_cli[o->val])
			continue; /* the command line sets it: the file's value is not used */
		if(asprintf(&a, "--%s%s%s", o->name, cf.v[i].value ? "=" : "",
		            cf.v[i].value ? cf.v[i].value : "") < 0)
			a = NULL;
		if(asprintf(&w, "%s:%d: %s", config, cf.v[i].line, o->name) < 0)
			w = NULL;
		for(j = 0; w && w[j]; j++) /* the key as the file spells it */
			if(j > strlen(config) && w[j] == '-')
				w[j] = '_';
		if(!a || !w) {
			free(a);
			free(w);
			fprintf(stderr, "ordinatus: out of memory\n");
			status = 1;
			goto out;
		}
		args[nargs++] = a;
		from.where[from.nfile++] = w;
	}
	for(c = 1; c < argc; c++)
		args[nargs++] = argv[c];
	status = serve_run(nargs, args, &from);
out:
	for(c = 0; c < from.nfile; c++) {
		free(args[c + 1]);
		free(from.where[c]);
	}
	free(args);
	free(from.where);
	conf_free(&cf);
	return status;
}

/* cmd_tick - ordinatus tick --data DIR [--at RFC3339] */
static int cmd_tick(int argc, char **argv)
{
	static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
	                                     {"db", required_argument, NULL, 'D'},
	                                     {"at", required_argument, NULL, 'a'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	struct store *st = NULL;
	struct gw_err err = {0};
	struct lc_env env = {0};
	struct paths p;
	const char *data = NULL, *at = NULL;
	json_t *url = NULL, *res = NULL;
	time_t now;
	char *text;
	int c, status = 1;
	gw_rc rc;

	while((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if(c == 'D') {
			db_option = optarg;
		} else if(c == 'd') {
			data = optarg;
		} else if(c == 'a') {
			at = optarg;
		} else {
			fprintf(c == 'h' ? stdout : stderr,
			        "usage: ordinatus tick --data DIR [--at RFC3339]\n\n"
			        "Runs one scheduler tick now (or at the given instant) against the database\n"
			        "(a serving daemon may run at the same time: nothing is ever doubled) and\n"
			        "prints what it enqueued or changed as JSON.\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if(set_paths(&p, data))
		return 2;
	now = clock_now();
	if(at && timefmt_parse(at, &now)) {
		fprintf(stderr, "ordinatus: --at must be " TIMEFMT_WANTED "\n");
		return 2;
	}
	/* the whole tick happens at --at: what it writes (enqueue and due times, the emails' Date,
	 * completed_at) takes its instant from clock_now() like the decisions, never from the
	 * wall clock */
	if(at)
		clock_set_test(now);
	if(!initialised(&p)) {
		fprintf(stderr, "ordinatus: %s is not initialised\n", p.data);
		return 2;
	}
	tz_init();
	log_quiet(1);
	if(store_open(p.db, false, &st, &err)) {
		fprintf(stderr, "ordinatus: %s\n", err.message);
		return 1;
	}
	env.public_url = store_meta_get(st, "public_url", &url) ? "http://127.0.0.1:8080"
	                                                       : json_string_value(url);
	rc = sched_tick(st, &env, now, &res, &err);
	if(rc) {
		fprintf(stderr, "ordinatus: tick failed: %s %s\n", gw_rc_name(rc), err.message);
		goto out;
	}
	text = json_dumps(res, JSON_COMPACT);
	if(text)
		printf("%s\n", text);
	free(text);
	status = 0;
out:
	json_decref(res);
	json_decref(url);
	store_close(st);
	return status;
}

/* cmd_outbox - ordinatus outbox --data DIR [list [--status S] | retry ID] */
static int cmd_outbox(int argc, char **argv)
{
	static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
	                                     {"db", required_argument, NULL, 'D'},
	                                     {"status", required_argument, NULL, 's'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	struct store *st = NULL;
	struct gw_err err = {0};
	struct paths p;
	const char *data = NULL, *status_filter = NULL, *action = "list";
	json_t *list = NULL;
	char *text;
	int c, status = 1;
	gw_rc rc;

	while((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if(c == 'D') {
			db_option = optarg;
		} else if(c == 'd') {
			data = optarg;
		} else if(c == 's') {
			status_filter = optarg;
		} else {
			fprintf(c == 'h' ? stdout : stderr,
			        "usage: ordinatus outbox --data DIR [list [--status S] | retry ID]\n\n"
			        "list: deliveries of every organisation, newest first, as JSON.\n"
			        "retry ID: a dead or expired delivery goes back to pending, due at once.\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if(optind < argc)
		action = argv[optind];
	/* the same check as the API's ?status= */
	if(status_filter && gw_enum_check(status_filter, "--status", store_outbox_states, &err)) {
		fprintf(stderr, "ordinatus: %s\n", err.message);
		return 2;
	}
	if(set_paths(&p, data))
		return 2;
	if(!initialised(&p)) {
		fprintf(stderr, "ordinatus: %s is not initialised\n", p.data);
		return 2;
	}
	if(store_open(p.db, false, &st, &err)) {
		fprintf(stderr, "ordinatus: %s\n", err.message);
		return 1;
	}
	if(strcmp(action, "list") == 0) {
		rc = store_outbox_list(st, 0, status_filter, 10000, &list);
		if(rc)
			goto out;
		text = json_dumps(list, JSON_INDENT(2));
		if(text)
			printf("%s\n", text);
		free(text);
		status = 0;
	} else if(strcmp(action, "retry") == 0 && optind + 1 < argc) {
		char *end;
		long long id = strtoll(argv[optind + 1], &end, 10);
		bool gone = false;

		if(*end || id <= 0) {
			fprintf(stderr, "ordinatus: retry takes a delivery id\n");
			status = 2;
			goto out;
		}
		rc = store_outbox_retry(st, 0, id, &gone);
		if(rc == GW_ENOTFOUND)
			fprintf(stderr, "ordinatus: no delivery %lld\n", id);
		else if(rc == GW_ESTATE && gone)
			fprintf(stderr, "ordinatus: delivery %lld's content was removed after the"
			                " retention period; it cannot be sent again\n", id);
		else if(rc == GW_ESTATE)
			fprintf(stderr, "ordinatus: delivery %lld is not dead\n", id);
		else if(rc)
			fprintf(stderr, "ordinatus: %s\n", store_errmsg(st));
		else
			printf("{\"id\": %lld, \"status\": \"pending\"}\n", id);
		status = rc ? 1 : 0;
	} else {
		fprintf(stderr, "ordinatus: outbox takes 'list' or 'retry ID'\n");
		status = 2;
	}
out:
	json_decref(list);
	store_close(st);
	return status;
}

/* cmd_backup - ordinatus backup --data DIR --to FILE */
static int cmd_backup(int argc, char **argv)
{
	static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
	                                     {"db", required_argument, NULL, 'D'},
	                                     {"to", required_argument, NULL, 't'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	struct gw_err err = {0};
	struct paths p;
	const char *data = NULL, *to = NULL;
	json_t *line;
	int c, pages = 0;

	while((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if(c == 'D') {
			db_option = optarg;
		} else if(c == 'd') {
			data = optarg;
		} else if(c == 't') {
			to = optarg;
		} else {
			fprintf(c == 'h' ? stdout : stderr,
			        "usage: ordinatus backup --data DIR --to FILE\n\n"
			        "Copies DIR/ordinatus.db to FILE (mode 0600) with SQLite's online backup,\n"
			        "consistent while a gateway serves and writes. FILE must not exist. The\n"
			        "key file is not copied: keep DIR/master.key apart. To restore: stop the\n"
			        "gateway, copy FILE over DIR/ordinatus.db (remove ordinatus.db-wal and\n"
			        "-shm), with the same master.key, and start it again.\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if(optind < argc || !to || !*to) {
		fprintf(stderr, "ordinatus: backup needs --data DIR and --to FILE\n");
		return 2;
	}
	if(set_paths(&p, data))
		return 2;
	if(!initialised(&p)) {
		fprintf(stderr, "ordinatus: %s is not initialised\n", p.data);
		return 1;
	}
	store_global_init();
	if(store_backup(p.db, to, &pages, &err)) {
		fprintf(stderr, "ordinatus: %s\n", err.message);
		return 1;
	}
	line = json_pack("{s:s, s:i}", "backup", to, "pages", pages);
	if(line) {
		char *text = json_dumps(line, JSON_COMPACT);

		if(text)
			printf("%s\n", text);
		free(text);
		json_decref(line);
	}
	return 0;
}

/* cmd_routes - ordinatus routes: the route table as JSON, one object per route in table order
 * ({method, pattern, name, body}); what the authorization matrix test is generated from */
static int cmd_routes(int argc, char **argv)
{
	static const char *const bodies[] = {"none", "required", "optional"};
	const struct http_route *r;
	json_t *list = json_array();
	char *text = NULL;
	size_t i;
	int status = 1;

	(void)argv;
	if(argc > 1) {
		fprintf(stderr, "usage: ordinatus routes\n\nPrints the HTTP route table as JSON: "
		                "method, path pattern, metrics name and\nwhether the route takes a "
		                "body.\n");
		json_decref(list);
		return strcmp(argv[1], "--help") == 0 ? 0 : 2;
	}
	for(i = 0; list && (r = http_route_at(i)) != NULL; i++) {
		if(json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s}", "method", r->method,
		                                         "pattern", r->pattern, "name", r->name,
		                                         "body", bodies[r->body])))
			goto out;
	}
	text = list ? json_dumps(list, JSON_INDENT(1)) : NULL;
	if(!text)
		goto out;
	printf("%s\n", text);
	status = 0;
out:
	if(status)
		fprintf(stderr, "ordinatus: out of memory\n");
	free(text);
	json_decref(list);
	return status;
}

/* main - dispatch to a command */
int main(int argc, char **argv)
{
	/* whatever the gateway creates (database, its -wal and -shm, maildir files, backups) is
	 * the owner's only; set before any thread starts (umask is per process) */
	umask(077);
	if(argc < 2) {
		usage(stderr);
		return 2;
	}
	if(strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	   strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if(strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("ordinatus %s\n", ORDINATUS_VERSION);
		return 0;
	}
	if(strcmp(argv[1], "init") == 0)
		return cmd_init(argc - 1, argv + 1);
	if(strcmp(argv[1], "serve") == 0)
		return cmd_serve(argc - 1, argv + 1);
	if(strcmp(argv[1], "tick") == 0)
		return cmd_tick(argc - 1, argv + 1);
	if(strcmp(argv[1], "outbox") == 0)
		return cmd_outbox(argc - 1, argv + 1);
	if(strcmp(argv[1], "backup") == 0)
		return cmd_backup(argc - 1, argv + 1);
	if(strcmp(argv[1], "routes") == 0)
		return cmd_routes(argc - 1, argv + 1);
	fprintf(stderr, "ordinatus: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
