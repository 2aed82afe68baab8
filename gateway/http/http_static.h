/*
 * http_static.h - the pages and their assets (web/): embedded into the binary at build time
 * (build/web_assets.c, made by scripts/web_assets.sh), or read from a folder with serve --web.
 *
 * Threading: the embedded table is constant; a --web folder is read on each request.
 */
#ifndef HTTP_STATIC_H
#define HTTP_STATIC_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* One embedded file: name relative to web/ ("index.html", "static/style.css"). */
struct http_asset {
	const char *name;
	const unsigned char *data;
	size_t len;
};

/* The generated table (build/web_assets.c), sorted by name. */
extern const struct http_asset http_web_assets[];
extern const size_t http_web_nassets;

/* A static answer, made by the handlers below and sent by http_static_send. */
struct http_page {
	const unsigned char *data; /* borrowed (embedded) or owned (buf) */
	size_t len;
	unsigned char *buf; /* malloc'd copy read from the --web folder, or NULL */
	const char *type;   /* Content-Type, static string */
	bool html;          /* a page: never cached; else an asset: cached with an ETag */
	bool not_modified;  /* If-None-Match matched: 304 without a body */
	char etag[24];      /* "\"<16 hex>\"" of the content */
};

/* http_static_page - GET /, /login, /s/{s}, ... : the page of the path's first segment; a page
 * missing from web/ answers a minimal page of the shared layout. Sets r->page (malloc'd). */
gw_rc http_static_page(struct http_req *r, json_t **out);

/* http_static_asset - GET /static/{s}: web/static/NAME with an ETag (304 on If-None-Match);
 * GW_ENOTFOUND for an unknown name. Sets r->page (malloc'd). */
gw_rc http_static_asset(struct http_req *r, json_t **out);

/* http_static_send - queue page's answer with the security and cache headers; takes ownership
 * of page (freed here, also on failure). */
enum MHD_Result http_static_send(struct MHD_Connection *c, struct http_page *page);

/* http_page_free - free a page made by the handlers; accepts NULL. */
void http_page_free(struct http_page *page);

#endif
