/*
 * test_smtp_maildir.c - the maildir provider (smtp_maildir_ops): one send writes exactly one
 * file into DATA/maildir/new and leaves nothing in tmp/; unusable payloads are permanent and
 * write nothing; I/O errors are transient; concurrent workers never collide on a name.
 * Every case runs in its own temporary directory, removed afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smtp/smtp.h"

/* rm_entry - nftw callback: remove one entry */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* setup - a fresh temporary data directory in *state */
static int setup(void **state)
{
	const char *base = getenv("TMPDIR");
	char *dir = malloc(512);

	if(!dir)
		return -1;
	snprintf(dir, 512, "%s/ordinatus-maildir-XXXXXX", base && *base ? base : "/tmp");
	if(!mkdtemp(dir)) {
		free(dir);
		return -1;
	}
	*state = dir;
	return 0;
}

/* teardown - remove the temporary directory */
static int teardown(void **state)
{
	char *dir = *state;
	int rc = nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);

	free(dir);
	return rc;
}

/* count_files - entries (not . and ..) in dir; the last name into last (may be NULL) */
static int count_files(const char *dir, char *last, size_t lastsz)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if(!d)
		return -1;
	while((e = readdir(d)) != NULL) {
		if(!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		n++;
		if(last)
			snprintf(last, lastsz, "%s", e->d_name);
	}
	closedir(d);
	return n;
}

/* sub - dir/a/b into buf */
static const char *sub(char *buf, size_t n, const char *dir, const char *a, const char *b)
{
	snprintf(buf, n, "%s/%s%s%s", dir, a, b ? "/" : "", b ? b : "");
	return buf;
}

/* read_file - whole file; caller frees */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* payload - a valid email payload; new reference */
static json_t *payload(const char *subject)
{
	json_t *p = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:s, s:s, s:s}",
	                      "kind", "survey", "message_id", "<77.survey@ordinatus>", "date",
	                      "2026-12-02T18:00:00Z", "from", "address", "org@example.com", "name",
	                      "Acme", "to", "address", "c@example.org", "name", "Customer",
	                      "subject", subject, "text", "How was it?", "html",
	                      "<p>How was it?</p>");

	assert_non_null(p);
	return p;
}

/* open_ctx - a maildir context on dir */
static void *open_ctx(const char *dir)
{
	void *ctx = NULL;

	assert_int_equal(smtp_maildir_ops.open(NULL, dir, &ctx), GW_OK);
	assert_non_null(ctx);
	return ctx;
}

/* test_one_message - exactly one file in new/, none in tmp/, the bytes smtp_mime_build makes */
static void test_one_message(void **state)
{
	const char *dir = *state;
	char path[1024], name[256], *file, *want;
	struct provider_result res;
	struct gw_err err;
	struct stat st;
	size_t flen, wlen;
	json_t *p = payload("How was your session?");
	void *ctx = open_ctx(dir);

	assert_string_equal(smtp_maildir_ops.name, "maildir");
	memset(&res, 0x5a, sizeof(res));
	smtp_maildir_ops.send(ctx, "survey", p, &res);
	assert_int_equal(res.outcome, PROVIDER_SENT);
	assert_int_equal(res.retry_after, -1);
	assert_null(res.out);
	assert_int_equal(count_files(sub(path, sizeof(path), dir, "maildir", "new"), name,
	                             sizeof(name)),
	                 1);
	assert_int_equal(count_files(sub(path, sizeof(path), dir, "maildir", "tmp"), NULL, 0), 0);
	assert_int_equal(count_files(sub(path, sizeof(path), dir, "maildir", "cur"), NULL, 0), 0);
	assert_non_null(strstr(name, ".ordinatus"));
	assert_non_null(strstr(res.detail, name));

	/* Maildir directories are private to the user (0700), the message 0600 */
	assert_int_equal(stat(sub(path, sizeof(path), dir, "maildir", "tmp"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(sub(path, sizeof(path), dir, "maildir", "new"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/maildir/new/%s", dir, name);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	file = read_file(path, &flen);
	memset(&err, 0, sizeof(err));
	assert_int_equal(smtp_mime_build(p, NULL, NULL, &want, &wlen, &err), GW_OK);
	assert_int_equal(flen, wlen);
	assert_memory_equal(file, want, wlen);
	free(file);
	free(want);

	smtp_maildir_ops.close(ctx);
	json_decref(p);
}

/* test_kind_from_dispatcher - a payload without "kind" gets the dispatcher's */
static void test_kind_from_dispatcher(void **state)
{
	const char *dir = *state;
	char path[1024], name[256], *file;
	struct provider_result res;
	size_t flen;
	json_t *p = payload("Reminder");
	void *ctx = open_ctx(dir);

	json_object_del(p, "kind");
	smtp_maildir_ops.send(ctx, "reminder", p, &res);
	assert_int_equal(res.outcome, PROVIDER_SENT);
	assert_null(json_object_get(p, "kind")); /* the caller's payload is untouched */
	assert_int_equal(count_files(sub(path, sizeof(path), dir, "maildir", "new"), name,
	                             sizeof(name)),
	                 1);
	snprintf(path, sizeof(path), "%s/maildir/new/%s", dir, name);
	file = read_file(path, &flen);
	assert_non_null(strstr(file, "\r\nX-Ordinatus-Kind: reminder\r\n"));
	free(file);
	smtp_maildir_ops.close(ctx);
	json_decref(p);
}

struct bad_case {
	const char *key;
	const char *value; /* NULL: delete the key */
	const char *field; /* named in the detail */
};

/* test_unusable_payload - a payload that cannot become a message is permanent, writes nothing */
static void test_unusable_payload(void **state)
{
	static const struct bad_case cases[] = {
	    {"subject", "Hi\r\nBcc: victim@example.com", "subject"},
	    {"message_id", NULL, "message_id"},
	    {"date", "yesterday", "date"},
	    {"to", NULL, "to"},
	};
	const char *dir = *state;
	char path[1024];
	size_t i;
	void *ctx = open_ctx(dir);

	for(i = 0; i < GW_ARRAY_LEN(cases); i++) {
		struct provider_result res;
		json_t *p = payload("x");

		if(cases[i].value)
			json_object_set_new(p, cases[i].key, json_string(cases[i].value));
		else
			json_object_del(p, cases[i].key);
		smtp_maildir_ops.send(ctx, "survey", p, &res);
		assert_int_equal(res.outcome, PROVIDER_PERMANENT);
		assert_null(res.out);
		if(!strstr(res.detail, cases[i].field))
			fail_msg("case %zu: detail [%s]", i, res.detail);
		json_decref(p);
	}
	/* nothing written: the maildir was not even created */
	assert_int_equal(count_files(sub(path, sizeof(path), dir, "maildir", "new"), NULL, 0), -1);
	smtp_maildir_ops.close(ctx);
}

/* test_io_error - a data folder that cannot hold a maildir is a transient failure */
static void test_io_error(void **state)
{
	const char *dir = *state;
	char path[1024];
	struct provider_result res;
	json_t *p = payload("x");
	void *ctx;
	int fd;

	/* DATA is a regular file */
	snprintf(path, sizeof(path), "%s/not-a-dir", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	ctx = open_ctx(path);
	smtp_maildir_ops.send(ctx, "survey", p, &res);
	assert_int_equal(res.outcome, PROVIDER_TRANSIENT);
	assert_true(strncmp(res.detail, "maildir: mkdir", 14) == 0);
	smtp_maildir_ops.close(ctx);

	/* DATA/maildir/new is a regular file */
	assert_int_equal(mkdir(sub(path, sizeof(path), dir, "d2", NULL), 0700), 0);
	assert_int_equal(mkdir(sub(path, sizeof(path), dir, "d2", "maildir"), 0700), 0);
	fd = open(sub(path, sizeof(path), dir, "d2", "maildir/new"), O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	ctx = open_ctx(sub(path, sizeof(path), dir, "d2", NULL));
	smtp_maildir_ops.send(ctx, "survey", p, &res);
	assert_int_equal(res.outcome, PROVIDER_TRANSIENT);
	assert_non_null(strstr(res.detail, "new"));
	assert_int_equal(count_files(sub(path, sizeof(path), dir, "d2", "maildir/tmp"), NULL, 0),
	                 0);
	smtp_maildir_ops.close(ctx);
	json_decref(p);
}

/* test_open_close - a data folder is required; close accepts NULL; parents are created */
static void test_open_close(void **state)
{
	const char *dir = *state;
	char path[1024];
	struct provider_result res;
	json_t *p = payload("x");
	void *ctx = (void *)1;

	assert_int_equal(smtp_maildir_ops.open(NULL, NULL, &ctx), GW_ECONFIG);
	assert_null(ctx);
	assert_int_equal(smtp_maildir_ops.open(NULL, "", &ctx), GW_ECONFIG);
	smtp_maildir_ops.close(NULL);

	ctx = open_ctx(sub(path, sizeof(path), dir, "deep/er/data", NULL));
	smtp_maildir_ops.send(ctx, "survey", p, &res);
	assert_int_equal(res.outcome, PROVIDER_SENT);
	assert_int_equal(count_files(sub(path, sizeof(path), dir, "deep/er/data", "maildir/new"),
	                             NULL, 0),
	                 1);
	smtp_maildir_ops.close(ctx);
	json_decref(p);
}

#define THREADS 4
#define PER_THREAD 25

struct worker {
	const char *dir;
	int sent;
};

/* worker_run - one dispatch worker: its own context, PER_THREAD sends */
static void *worker_run(void *arg)
{
	struct worker *w = arg;
	json_t *p = payload("concurrent");
	void *ctx = NULL;
	int i;

	if(smtp_maildir_ops.open(NULL, w->dir, &ctx) == GW_OK) {
		for(i = 0; i < PER_THREAD; i++) {
			struct provider_result res;

			smtp_maildir_ops.send(ctx, "survey", p, &res);
			if(res.outcome == PROVIDER_SENT)
				w->sent++;
		}
		smtp_maildir_ops.close(ctx);
	}
	json_decref(p);
	return NULL;
}

/* test_concurrent_workers - THREADS workers at once: every message its own file */
static void test_concurrent_workers(void **state)
{
	const char *dir = *state;
	struct worker w[THREADS];
	pthread_t th[THREADS];
	char path[1024];
	int i;

	for(i = 0; i < THREADS; i++) {
		w[i].dir = dir;
		w[i].sent = 0;
		assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
	}
	for(i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].sent, PER_THREAD);
	}
	assert_int_equal(count_files(sub(path, sizeof(path), dir, "maildir", "new"), NULL, 0),
	                 THREADS * PER_THREAD);
	assert_int_equal(count_files(sub(path, sizeof(path), dir, "maildir", "tmp"), NULL, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_one_message, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kind_from_dispatcher, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unusable_payload, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_io_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_close, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_workers, setup, teardown),
	};

	return cmocka_run_group_tests_name("smtp_maildir", tests, NULL, NULL);
}
