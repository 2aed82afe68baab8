/*
 * smtp_maildir.c - the maildir provider: the embedded default for an organisation with no SMTP
 * server (docs/design.md rule 6). Each email becomes one file in DATA/maildir/new, readable with
 * any mail client (mutt -f DATA/maildir, Dovecot, Thunderbird's maildir store).
 *
 * Entry point: smtp_maildir_ops ("maildir").
 *
 * Delivery follows the Maildir protocol (D. J. Bernstein, maildir(5)): write the whole message
 * into tmp/UNIQUE, fsync it, then rename() it into new/UNIQUE, so a reader never sees a partial
 * message and a crash leaves at most a stray file in tmp/. UNIQUE is
 * "<sec>.M<usec>P<pid>Q<counter>.ordinatus": the counter is process-wide and atomic, so names
 * never collide between worker threads.
 *
 * Threading: a context belongs to one worker; the only shared state is the atomic counter.
 */
#include "smtp.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct maildir_ctx {
	char *data_dir; /* from strdup() */
};

static atomic_ulong maildir_seq;

/* maildir_fail - a transient result naming the step, the file and errno's words */
static void maildir_fail(struct provider_result *res, const char *step, const char *name, int e)
{
	char ebuf[128];

	res->outcome = PROVIDER_TRANSIENT;
	snprintf(res->detail, sizeof(res->detail), "maildir: %s %s: %s", step, name,
	         strerror_r(e, ebuf, sizeof(ebuf)));
}

/* mkdir_p - create path and its parents (mode 0700) where missing; 0 or an errno */
static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	struct stat st;
	size_t n = strlen(path), i;

	if(n == 0 || n >= sizeof(buf))
		return ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for(i = 1; i <= n; i++) {
		if(buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if(mkdir(buf, 0700) != 0) {
			if(errno != EEXIST)
				return errno;
			if(stat(buf, &st) != 0)
				return errno;
			if(!S_ISDIR(st.st_mode))
				return ENOTDIR;
		}
		if(i < n)
			buf[i] = '/';
	}
	return 0;
}

/* smtp_maildir_prepare - make DATA/maildir/{tmp,new,cur} (mode 0700) */
gw_rc smtp_maildir_prepare(const char *data_dir, struct gw_err *err)
{
	static const char *const dirs[] = {"tmp", "new", "cur"};
	char dir[PATH_MAX];
	size_t i;
	int n, e;

	for(i = 0; i < GW_ARRAY_LEN(dirs); i++) {
		n = snprintf(dir, sizeof(dir), "%s/maildir/%s", data_dir, dirs[i]);
		e = n < 0 || (size_t)n >= sizeof(dir) ? ENAMETOOLONG : mkdir_p(dir);
		if(e)
			return gw_err_set(err, GW_EIO, "", "cannot create %s: %s", dir, strerror(e));
	}
	return GW_OK;
}

/* write_all - write n bytes to fd; 0 or an errno */
static int write_all(int fd, const char *p, size_t n)
{
	while(n) {
		ssize_t w = write(fd, p, n);

		if(w < 0) {
			if(errno == EINTR)
				continue;
			return errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* fsync_dir - make a rename durable (fsync of the directory); failures only cost durability */
static void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if(fd < 0)
		return;
	(void)fsync(fd);
	close(fd);
}

/* maildir_open - keep the data folder; config is ignored */
static gw_rc maildir_open(const json_t *config, const char *data_dir, void **ctx)
{
	struct maildir_ctx *mc;

	(void)config;
	*ctx = NULL;
	if(!data_dir || !*data_dir)
		return GW_ECONFIG;
	mc = calloc(1, sizeof(*mc));
	if(!mc)
		return GW_ENOMEM;
	mc->data_dir = strdup(data_dir);
	if(!mc->data_dir) {
		free(mc);
		return GW_ENOMEM;
	}
	*ctx = mc;
	return GW_OK;
}

/* maildir_close - free a context */
static void maildir_close(void *ctx)
{
	struct maildir_ctx *mc = ctx;

	if(!mc)
		return;
	free(mc->data_dir);
	free(mc);
}

/* maildir_deliver - msg into DATA/maildir/new: written in tmp, synced, renamed */
static void maildir_deliver(struct maildir_ctx *mc, const char *msg, size_t len,
                            struct provider_result *res)
{
	struct timespec ts;
	char root[PATH_MAX], dir[PATH_MAX], name[128], tmp_path[PATH_MAX], new_path[PATH_MAX];
	static const char *const subdirs[] = {"tmp", "new", "cur"};
	unsigned long seq;
	size_t i;
	int fd = -1, e, n;

	n = snprintf(root, sizeof(root), "%s/maildir", mc->data_dir);
	if(n < 0 || (size_t)n >= sizeof(root)) {
		maildir_fail(res, "path", "maildir", ENAMETOOLONG);
		goto out;
	}
	for(i = 0; i < GW_ARRAY_LEN(subdirs); i++) {
		n = snprintf(dir, sizeof(dir), "%s/%s", root, subdirs[i]);
		e = n < 0 || (size_t)n >= sizeof(dir) ? ENAMETOOLONG : mkdir_p(dir);
		if(e) {
			maildir_fail(res, "mkdir", subdirs[i], e);
			goto out;
		}
	}

	/* The real clock, not clock_now(): the name only has to be unique, and a test clock that
	 * stands still must not make it collide. */
	clock_gettime(CLOCK_REALTIME, &ts);
	seq = atomic_fetch_add(&maildir_seq, 1);
	snprintf(name, sizeof(name), "%lld.M%06ldP%ldQ%lu.ordinatus", (long long)ts.tv_sec,
	         ts.tv_nsec / 1000, (long)getpid(), seq);
	n = snprintf(tmp_path, sizeof(tmp_path), "%s/tmp/%s", root, name);
	if(n < 0 || (size_t)n >= sizeof(tmp_path)) {
		maildir_fail(res, "path", name, ENAMETOOLONG);
		goto out;
	}
	n = snprintf(new_path, sizeof(new_path), "%s/new/%s", root, name);
	if(n < 0 || (size_t)n >= sizeof(new_path)) {
		maildir_fail(res, "path", name, ENAMETOOLONG);
		goto out;
	}

	fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if(fd < 0) {
		maildir_fail(res, "create tmp/", name, errno);
		goto out;
	}
	e = write_all(fd, msg, len);
	if(!e && fsync(fd) != 0)
		e = errno;
	if(close(fd) != 0 && !e)
		e = errno;
	fd = -1;
	if(e) {
		maildir_fail(res, "write tmp/", name, e);
		unlink(tmp_path);
		goto out;
	}
	if(rename(tmp_path, new_path) != 0) {
		maildir_fail(res, "rename into new/", name, errno);
		unlink(tmp_path);
		goto out;
	}
	n = snprintf(dir, sizeof(dir), "%s/new", root);
	if(n > 0 && (size_t)n < sizeof(dir))
		fsync_dir(dir);
	snprintf(res->detail, sizeof(res->detail), "maildir: new/%s", name);
out:
	if(fd >= 0)
		close(fd);
}

/* maildir_send - build the message of a JSON payload (rows queued before messages were
 * rendered at enqueue) and deliver it */
static void maildir_send(void *ctx, const char *kind, const json_t *payload,
                         struct provider_result *res)
{
	struct maildir_ctx *mc = ctx;
	struct gw_err err = {{0}, {0}, {0}};
	json_t *copy = NULL;
	char *msg = NULL;
	size_t len = 0;
	gw_rc rc;

	res->outcome = PROVIDER_SENT;
	res->retry_after = -1;
	res->detail[0] = '\0';
	res->out = NULL;

	/* the payload names its kind; fill it from the dispatcher's when it does not */
	if(json_is_object(payload) && !json_object_get(payload, "kind") && kind) {
		copy = json_deep_copy(payload);
		if(!copy || json_object_set_new(copy, "kind", json_string(kind)) != 0) {
			res->outcome = PROVIDER_TRANSIENT;
			snprintf(res->detail, sizeof(res->detail), "maildir: out of memory");
			goto out;
		}
		payload = copy;
	}
	rc = smtp_mime_build(payload, NULL, NULL, &msg, &len, &err);
	if(rc) {
		res->outcome = rc == GW_ENOMEM ? PROVIDER_TRANSIENT : PROVIDER_PERMANENT;
		snprintf(res->detail, sizeof(res->detail), "unusable email payload: %s%s%s",
		         err.field, err.field[0] ? ": " : "", err.message);
		goto out;
	}

	maildir_deliver(mc, msg, len, res);
out:
	free(msg);
	json_decref(copy);
}

/* maildir_send_message - a message rendered at enqueue, delivered as it is (rcpt: the maildir
 * is everyone's) */
static void maildir_send_message(void *ctx, const char *rcpt, const char *msg, size_t len,
                                 struct provider_result *res)
{
	(void)rcpt;
	res->outcome = PROVIDER_SENT;
	res->retry_after = -1;
	res->detail[0] = '\0';
	res->out = NULL;
	maildir_deliver(ctx, msg, len, res);
}

const struct provider_ops smtp_maildir_ops = {
    .name = "maildir",
    .open = maildir_open,
    .send = maildir_send,
    .send_message = maildir_send_message,
    .close = maildir_close,
};
