/*
 * http_static.c - the pages people open from the gateway's emails, and their assets.
 *
 * Entry points: http_static_page(), http_static_asset(), http_static_send(), http_page_free().
 * Files come from the table embedded at build time (build/web_assets.c, scripts/web_assets.sh)
 * or, with serve --web DIR, from that folder on every request (for working on the pages).
 * Every answer carries a Content-Security-Policy that allows only the gateway's own scripts,
 * styles and images (no inline script: the pages are plain files), nosniff, and
 * Referrer-Policy no-referrer: the token pages' URLs are secrets and must not leave in a
 * Referer. Pages are never cached (they answer per token); assets are cached five minutes and
 * revalidated by ETag (RFC 9110 8.8.3, 13.1.2: If-None-Match, 304).
 * Threading: stateless; the embedded table is constant.
 */
#include "http_static.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http_routes.h"

#define STATIC_FILE_MAX (4 * 1024 * 1024)

static const char csp[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                          "frame-ancestors 'none'; form-action 'self'";

/* The page of each first path segment: its file in web/ and the title of its stand-in. */
static const struct {
	const char *segment;
	const char *file;
	const char *title;
} pages[] = {
        {"", "index.html", "Ordinatus"},
        {"login", "login.html", "Sign in"},
        {"requests", "request.html", "Request"},
        {"s", "schedule.html", "Choose a time"},
        {"survey", "survey.html", "Your feedback"},
        {"b", "manage.html", "Your booking"},
        {"dashboard", "dashboard.html", "Dashboard"},
        {"calendar", "calendar.html", "Calendar"},
        {"admin", "admin.html", "Administration"},
        {"kiosk", "kiosk.html", "Check in"},
};

/* The stand-in for a page web/ does not have yet: the shared layout, no script. */
static const char standin_fmt[] =
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<title>%s - Ordinatus</title>\n<link rel=\"icon\" href=\"/static/favicon.svg\">\n"
        "<link rel=\"stylesheet\" href=\"/static/style.css\">\n"
        "</head>\n<body>\n<header class=\"site-header\"><a class=\"brand\" href=\"/\">Ordinatus</a>"
        "</header>\n<main id=\"main\">\n<h1>%s</h1>\n<p>This page is not available yet.</p>\n"
        "<p><a href=\"/\">Home</a></p>\n</main>\n</body>\n</html>\n";

/* media_type - the Content-Type of a file name by its extension */
static const char *media_type(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	        {".html", "text/html; charset=utf-8"},
	        {".css", "text/css; charset=utf-8"},
	        {".js", "text/javascript; charset=utf-8"},
	        {".mjs", "text/javascript; charset=utf-8"},
	        {".svg", "image/svg+xml"},
	        {".png", "image/png"},
	        {".ico", "image/x-icon"},
	        {".json", "application/json"},
	        {".txt", "text/plain; charset=utf-8"},
	        {".woff2", "font/woff2"},
	};
	const char *dot = strrchr(name, '.');
	size_t i;

	for(i = 0; dot && i < GW_ARRAY_LEN(types); i++)
		if(strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

/* name_ok - a flat file name: letters, digits, '.', '-', '_', not starting with '.' */
static bool name_ok(const char *s)
{
	size_t i;

	if(!s[0] || s[0] == '.')
		return false;
	for(i = 0; s[i]; i++) {
		char ch = s[i];
		if(!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		     (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_'))
			return false;
	}
	return true;
}

/* embedded - the embedded file of name, or NULL (binary search: the table is sorted) */
static const struct http_asset *embedded(const char *name)
{
	size_t lo = 0, hi = http_web_nassets;

	while(lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(http_web_assets[mid].name, name);
		if(c == 0)
			return &http_web_assets[mid];
		if(c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* read_file - DIR/name into a malloc'd buffer; GW_ENOTFOUND when it is not a regular file */
static gw_rc read_file(const char *dir, const char *name, unsigned char **buf, size_t *len)
{
	char path[4096];
	struct stat sb;
	unsigned char *b = NULL;
	size_t got = 0;
	int fd = -1, n;
	gw_rc rc = GW_OK;

	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if(n < 0 || (size_t)n >= sizeof(path))
		return GW_ENOTFOUND;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if(fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? GW_ENOTFOUND : GW_EIO;
	if(fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > STATIC_FILE_MAX) {
		rc = GW_ENOTFOUND;
		goto out;
	}
	b = malloc((size_t)sb.st_size + 1);
	if(!b) {
		rc = GW_ENOMEM;
		goto out;
	}
	while(got < (size_t)sb.st_size) {
		ssize_t r = read(fd, b + got, (size_t)sb.st_size - got);
		if(r < 0 && errno == EINTR)
			continue;
		if(r <= 0)
			break;
		got += (size_t)r;
	}
	*buf = b;
	*len = got;
	b = NULL;
out:
	free(b);
	close(fd);
	return rc;
}

/* etag_of - a strong validator: FNV-1a 64 of the content, quoted */
static void etag_of(const unsigned char *d, size_t n, char *out, size_t outn)
{
	unsigned long long h = 1469598103934665603ULL;
	size_t i;

	for(i = 0; i < n; i++) {
		h ^= d[i];
		h *= 1099511628211ULL;
	}
	snprintf(out, outn, "\"%016llx\"", h);
}

/* load - the file name (relative to web/) into page: from --web DIR or the embedded table;
 * GW_ENOTFOUND when neither has it */
static gw_rc load(const struct http_req *r, const char *name, struct http_page *page)
{
	const struct http_asset *a;

	if(r->cfg->web_dir) {
		gw_rc rc = read_file(r->cfg->web_dir, name, &page->buf, &page->len);
		if(rc)
			return rc == GW_ENOMEM ? rc : GW_ENOTFOUND;
		page->data = page->buf;
		return GW_OK;
	}
	a = embedded(name);
	if(!a)
		return GW_ENOTFOUND;
	page->data = a->data;
	page->len = a->len;
	return GW_OK;
}

/* http_page_free - free a page; NULL is fine */
void http_page_free(struct http_page *page)
{
	if(!page)
		return;
	free(page->buf);
	free(page);
}

/* http_static_page - GET of a page route */
gw_rc http_static_page(struct http_req *r, json_t **out)
{
	struct http_page *page = NULL;
	const char *seg = r->path + 1, *end = strchr(seg, '/');
	size_t seglen = end ? (size_t)(end - seg) : strlen(seg), i;
	gw_rc rc = GW_OK;
	int n;

	(void)out;
	for(i = 0; i < GW_ARRAY_LEN(pages); i++)
		if(strlen(pages[i].segment) == seglen &&
		   strncmp(pages[i].segment, seg, seglen) == 0)
			break;
	if(i == GW_ARRAY_LEN(pages))
		return gw_err_set(&r->err, GW_ENOTFOUND, "", "no such page");
	page = calloc(1, sizeof(*page));
	if(!page)
		return GW_ENOMEM;
	page->html = true;
	page->type = "text/html; charset=utf-8";
	rc = load(r, pages[i].file, page);
	if(rc == GW_ENOTFOUND) {
		/* a page not written yet: the layout with its title, never an error */
		size_t cap = sizeof(standin_fmt) + 2 * strlen(pages[i].title);
		rc = GW_OK;
		page->buf = malloc(cap);
		if(!page->buf) {
			rc = GW_ENOMEM;
			goto out;
		}
		n = snprintf((char *)page->buf, cap, standin_fmt, pages[i].title, pages[i].title);
		page->len = n > 0 ? (size_t)n : 0;
		page->data = page->buf;
	}
	if(rc)
		goto out;
	r->page = page;
	page = NULL;
out:
	http_page_free(page);
	return rc;
}

/* inm_match - does an If-None-Match field value name etag (or "*")? (RFC 9110 13.1.2: weak
 * comparison, so a W/ prefix matches too) */
static bool inm_match(const char *inm, const char *etag)
{
	if(!inm)
		return false;
	while(*inm == ' ' || *inm == '\t')
		inm++;
	return strcmp(inm, "*") == 0 || strstr(inm, etag) != NULL;
}

/* http_static_asset - GET /static/{s} */
gw_rc http_static_asset(struct http_req *r, json_t **out)
{
	struct http_page *page = NULL;
	char name[128], rel[160];
	gw_rc rc = GW_OK;

	(void)out;
	if(http_seg(r, 0, name, sizeof(name)) || !name_ok(name))
		return gw_err_set(&r->err, GW_ENOTFOUND, "", "no such file");
	page = calloc(1, sizeof(*page));
	if(!page)
		return GW_ENOMEM;
	snprintf(rel, sizeof(rel), "static/%s", name);
	rc = load(r, rel, page);
	if(rc) {
		rc = gw_err_set(&r->err, GW_ENOTFOUND, "", "no such file");
		goto out;
	}
	page->type = media_type(name);
	etag_of(page->data, page->len, page->etag, sizeof(page->etag));
	page->not_modified = inm_match(
	        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "If-None-Match"), page->etag);
	if(page->not_modified)
		r->status = 304; /* what the log and the metrics count */
	r->page = page;
	page = NULL;
out:
	http_page_free(page);
	return rc;
}

/* http_static_send - queue the answer of a page or asset */
enum MHD_Result http_static_send(struct MHD_Connection *c, struct http_page *page)
{
	struct MHD_Response *resp = NULL;
	enum MHD_Result ret = MHD_NO;
	unsigned status = page->not_modified ? 304 : 200;

	if(page->not_modified)
		resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	else if(page->buf)
		resp = MHD_create_response_from_buffer(page->len, page->buf, MHD_RESPMEM_MUST_COPY);
	else
		resp = MHD_create_response_from_buffer(page->len, (void *)(uintptr_t)page->data,
		                                       MHD_RESPMEM_PERSISTENT);
	if(!resp)
		goto out;
	if(!page->not_modified)
		MHD_add_response_header(resp, "Content-Type", page->type);
	MHD_add_response_header(resp, "Content-Security-Policy", csp);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	if(page->html) {
		MHD_add_response_header(resp, "Cache-Control", "no-store");
	} else {
		MHD_add_response_header(resp, "Cache-Control", "public, max-age=300");
		MHD_add_response_header(resp, "ETag", page->etag);
	}
	ret = MHD_queue_response(c, status, resp);
out:
	if(resp)
		MHD_destroy_response(resp);
	http_page_free(page);
	return ret;
}
