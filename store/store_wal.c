/*
 * store_wal.c - SQLite's own VFS with the write-ahead log's writes of a commit coalesced.
 *
 * Entry points: store_wal_vfs(), store_sqlite_coalesce_wal(), store_wal_counts().
 *
 * SQLite appends a transaction to the WAL one frame at a time, and each frame in two writes:
 * its 24-byte header, then its page (wal.c walWriteOneFrame). A batch of the dispatcher (32
 * rows recorded and 32 leased, about 37 frames) so cost some 75 pwrite(2) calls, about 2.3 a
 * message and, on a virtual machine where each system call is dear, a quarter of the store's
 * CPU per message. This VFS is SQLite's default one with one change: a WAL file gathers the
 * frames of a transaction in a buffer (at most 128 KiB - 1, the most SQLite's unix VFS writes
 * in one call) and writes them with one call, when the commit frame's page arrives, when the
 * buffer is full, and before anything else is done with the file.
 *
 * What is held back is only what is recognised as a frame that no one else may read yet:
 * a 24-byte write, then the page written right after it. A frame header whose "database size
 * after commit" field (bytes 4-7, sqlite.org/fileformat.html, "WAL Frame Format") is not zero
 * ends a transaction: its page write sends the buffer, before the commit returns and before
 * the commit publishes the new frames in the -shm index that other connections read (which
 * happens after the frames are written, wal.c sqlite3WalFrames). Any other write (the WAL
 * header, a frame rewritten in place, anything of another shape), a read, a sync, a
 * truncation, a size query, a file control and the close first send what waits. So a commit
 * is in the file (the OS page cache) when COMMIT returns, as without the buffer; what a
 * kill -9 can lose is only an unfinished transaction, which SQLite's recovery would drop
 * anyway. Were a later SQLite to write a frame in one call, nothing would be recognised and
 * every write would go through at once, as before.
 *
 * Every other file (the database, its -shm, journals) is SQLite's own, untouched: xOpen hands
 * them to the default VFS directly.
 *
 * Threading: a WAL file belongs to one connection, which one thread uses at a time (store.h);
 * the registration is done once (pthread_once).
 */
#include "store_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#define WAL_VFS_NAME  "ordinatus-wal"
#define WAL_FRAME_HDR 24
#define WAL_BUF_MAX   0x1ffff /* os_unix.c seekAndWriteFd writes at most this in one call */

/* A WAL file: our part first, SQLite's own file right after it (vfs.szOsFile covers both). */
struct wal_file {
	sqlite3_file base;  /* pMethods = &wal_methods */
	sqlite3_file *real; /* the default VFS's file, in the same allocation */
	char *buf;          /* frames not yet written; from malloc() at the first, freed at close */
	sqlite3_int64 at;   /* the file offset of buf[0] */
	int len;            /* bytes in buf */
	bool page_next;     /* buf ends with a frame header: its page comes next */
	bool commit_next;   /* that header is a commit frame's */
};

static sqlite3_vfs *base_vfs; /* SQLite's default VFS, borrowed */
static sqlite3_vfs wal_vfs;   /* a copy of it with our xOpen */
static sqlite3_io_methods wal_methods;
static bool registered;
static pthread_once_t wal_once = PTHREAD_ONCE_INIT;
static atomic_bool coalesce = true;
static atomic_long wal_calls, wal_frames; /* store_wal_counts */

static sqlite3_file *real_of(sqlite3_file *f)
{
	return ((struct wal_file *)(void *)f)->real;
}

/* wal_flush - write what buf holds */
static int wal_flush(struct wal_file *w)
{
	int r;

	if(w->len == 0)
		return SQLITE_OK;
	r = w->real->pMethods->xWrite(w->real, w->buf, w->len, w->at);
	atomic_fetch_add_explicit(&wal_calls, 1, memory_order_relaxed);
	w->len = 0;
	w->page_next = false;
	w->commit_next = false;
	return r;
}

static int wal_close(sqlite3_file *f)
{
	struct wal_file *w = (struct wal_file *)(void *)f;
	int r = wal_flush(w), c = w->real->pMethods->xClose(w->real);

	free(w->buf);
	w->buf = NULL;
	return r != SQLITE_OK ? r : c;
}

static int wal_read(sqlite3_file *f, void *out, int n, sqlite3_int64 off)
{
	int r = wal_flush((struct wal_file *)(void *)f);

	return r != SQLITE_OK ? r : real_of(f)->pMethods->xRead(real_of(f), out, n, off);
}

/* wal_write - hold a frame back until its transaction's commit frame (see the top) */
static int wal_write(sqlite3_file *f, const void *data, int n, sqlite3_int64 off)
{
	struct wal_file *w = (struct wal_file *)(void *)f;
	const unsigned char *p = data;
	bool header = n == WAL_FRAME_HDR && !w->page_next;
	bool page = w->page_next && n != WAL_FRAME_HDR;
	bool commit = w->commit_next;
	int r;

	if(w->len > 0 &&
	   (off != w->at + w->len || (!header && !page) || w->len + n > WAL_BUF_MAX)) {
		r = wal_flush(w);
		if(r != SQLITE_OK)
			return r;
		page = false; /* its header went alone: the page goes alone too */
	}
	if((!header && !page) || n > WAL_BUF_MAX) {
		atomic_fetch_add_explicit(&wal_calls, 1, memory_order_relaxed);
		return w->real->pMethods->xWrite(w->real, data, n, off);
	}
	if(!w->buf) {
		w->buf = malloc(WAL_BUF_MAX);
		if(!w->buf) {
			atomic_fetch_add_explicit(&wal_calls, 1, memory_order_relaxed);
			return w->real->pMethods->xWrite(w->real, data, n, off);
		}
	}
	if(w->len == 0)
		w->at = off;
	memcpy(w->buf + w->len, data, (size_t)n);
	w->len += n;
	if(page)
		atomic_fetch_add_explicit(&wal_frames, 1, memory_order_relaxed);
	w->page_next = header;
	w->commit_next = header && (p[4] | p[5] | p[6] | p[7]) != 0;
	if(page && commit)
		return wal_flush(w);
	return SQLITE_OK;
}

static int wal_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	int r = wal_flush((struct wal_file *)(void *)f);

	return r != SQLITE_OK ? r : real_of(f)->pMethods->xTruncate(real_of(f), size);
}

static int wal_sync(sqlite3_file *f, int flags)
{
	int r = wal_flush((struct wal_file *)(void *)f);

	return r != SQLITE_OK ? r : real_of(f)->pMethods->xSync(real_of(f), flags);
}

static int wal_size(sqlite3_file *f, sqlite3_int64 *size)
{
	int r = wal_flush((struct wal_file *)(void *)f);

	return r != SQLITE_OK ? r : real_of(f)->pMethods->xFileSize(real_of(f), size);
}

static int wal_lock(sqlite3_file *f, int level)
{
	return real_of(f)->pMethods->xLock(real_of(f), level);
}

static int wal_unlock(sqlite3_file *f, int level)
{
	return real_of(f)->pMethods->xUnlock(real_of(f), level);
}

static int wal_check_lock(sqlite3_file *f, int *out)
{
	return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}

static int wal_control(sqlite3_file *f, int op, void *arg)
{
	int r = wal_flush((struct wal_file *)(void *)f);

	return r != SQLITE_OK ? r : real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}

static int wal_sector(sqlite3_file *f)
{
	return real_of(f)->pMethods->xSectorSize(real_of(f));
}

static int wal_device(sqlite3_file *f)
{
	return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}

/* the shared-memory and mapping methods are the database file's; a WAL file has them only
 * because the method table is one version for every file: passed on as they are */
static int wal_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **out)
{
	return real_of(f)->pMethods->xShmMap(real_of(f), region, size, extend, out);
}

static int wal_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}

static void wal_shm_barrier(sqlite3_file *f)
{
	real_of(f)->pMethods->xShmBarrier(real_of(f));
}

static int wal_shm_unmap(sqlite3_file *f, int drop)
{
	return real_of(f)->pMethods->xShmUnmap(real_of(f), drop);
}

static int wal_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
	int r = wal_flush((struct wal_file *)(void *)f);

	return r != SQLITE_OK ? r : real_of(f)->pMethods->xFetch(real_of(f), off, n, out);
}

static int wal_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return real_of(f)->pMethods->xUnfetch(real_of(f), off, p);
}

/* wal_open - a WAL file gets the buffer; every other file is the default VFS's own */
static int wal_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	struct wal_file *w = (struct wal_file *)(void *)f;
	int r;

	(void)vfs;
	if(!(flags & SQLITE_OPEN_WAL) || !atomic_load(&coalesce))
		return base_vfs->xOpen(base_vfs, name, f, flags, out_flags);
	memset(w, 0, sizeof(*w));
	w->real = (sqlite3_file *)(void *)(w + 1);
	r = base_vfs->xOpen(base_vfs, name, w->real, flags, out_flags);
	if(r != SQLITE_OK) {
		f->pMethods = NULL; /* not opened: SQLite calls no method of it */
		return r;
	}
	if(!w->real->pMethods || w->real->pMethods->iVersion != wal_methods.iVersion) {
		/* a default VFS of another version: the file is opened again as its own */
		if(w->real->pMethods)
			w->real->pMethods->xClose(w->real);
		return base_vfs->xOpen(base_vfs, name, f, flags, out_flags);
	}
	f->pMethods = &wal_methods;
	return SQLITE_OK;
}

static void wal_register(void)
{
	base_vfs = sqlite3_vfs_find(NULL);
	if(!base_vfs)
		return;
	wal_vfs = *base_vfs;
	wal_vfs.zName = WAL_VFS_NAME;
	wal_vfs.szOsFile = (int)sizeof(struct wal_file) + base_vfs->szOsFile;
	wal_vfs.xOpen = wal_open;
	wal_vfs.pNext = NULL;
	wal_methods = (sqlite3_io_methods){
	        .iVersion = 3,
	        .xClose = wal_close,
	        .xRead = wal_read,
	        .xWrite = wal_write,
	        .xTruncate = wal_truncate,
	        .xSync = wal_sync,
	        .xFileSize = wal_size,
	        .xLock = wal_lock,
	        .xUnlock = wal_unlock,
	        .xCheckReservedLock = wal_check_lock,
	        .xFileControl = wal_control,
	        .xSectorSize = wal_sector,
	        .xDeviceCharacteristics = wal_device,
	        .xShmMap = wal_shm_map,
	        .xShmLock = wal_shm_lock,
	        .xShmBarrier = wal_shm_barrier,
	        .xShmUnmap = wal_shm_unmap,
	        .xFetch = wal_fetch,
	        .xUnfetch = wal_unfetch,
	};
	registered = sqlite3_vfs_register(&wal_vfs, 0) == SQLITE_OK;
}

/* store_wal_vfs - the VFS name to open databases with, NULL (SQLite's default) if it could not
 * be registered */
const char *store_wal_vfs(void)
{
	pthread_once(&wal_once, wal_register);
	return registered ? WAL_VFS_NAME : NULL;
}

/* store_sqlite_coalesce_wal - whether WAL files opened from now on gather their frames */
void store_sqlite_coalesce_wal(bool on)
{
	atomic_store(&coalesce, on);
}

/* store_wal_counts - writes made to WAL files opened here, and frames that went through the
 * buffer, since the process started */
void store_wal_counts(long *calls, long *frames)
{
	*calls = atomic_load(&wal_calls);
	*frames = atomic_load(&wal_frames);
}
