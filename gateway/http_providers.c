/*
 * http_providers.c - provider settings of an organisation (API.md "Providers").
 *
 * Entry points: http_provider_put(), http_provider_list(), http_provider_delete().
 * Threading: MHD's threads.
 */
#include "http_routes.h"

/* http_provider_put - PUT /v1/orgs/{org}/providers/{name} */
gw_rc http_provider_put(struct http_req *r, json_t **out)
{
	(void)out;
	return gw_err_set(&r->err, GW_ENOTFOUND, "", "provider settings are not served yet");
}

/* http_provider_list - GET /v1/orgs/{org}/providers */
gw_rc http_provider_list(struct http_req *r, json_t **out)
{
	(void)out;
	return gw_err_set(&r->err, GW_ENOTFOUND, "", "provider settings are not served yet");
}

/* http_provider_delete - DELETE /v1/orgs/{org}/providers/{name} */
gw_rc http_provider_delete(struct http_req *r, json_t **out)
{
	(void)out;
	return gw_err_set(&r->err, GW_ENOTFOUND, "", "provider settings are not served yet");
}
