/*
 * tpl_auth.c - the sign-in email: the one-time link that signs a trainer or an org admin in
 * to the pages. The link opens the page /login/{token}, which calls POST /v1/auth/login: a
 * mail scanner that fetches the link does not use it up.
 *
 * Entry points: tpl_sign_in().
 * Threading: reentrant.
 */
#include "tpl_auth.h"

#include <stdio.h>
#include <string.h>

#include "common/tz.h"

/* tpl_sign_in - the sign_in email */
gw_rc tpl_sign_in(const struct tpl_env *env, const char *dedupe_key, const json_t *user,
                  const char *link_url, time_t expires_at, json_t **out)
{
	struct tpl_buf t = {0}, h = {0};
	const char *name = json_string_value(json_object_get(user, "name"));
	const char *email = json_string_value(json_object_get(user, "email"));
	char subject[300], until[128];
	long minutes = (long)((expires_at - env->now + 59) / 60);
	gw_rc rc;

	*out = NULL;
	if(!email || !env->org_name || !link_url)
		return GW_EINVAL;
	if(!name)
		name = "";
	if(tz_format(env->org_timezone ? env->org_timezone : "UTC", expires_at, until,
	             sizeof(until)))
		snprintf(until, sizeof(until), "%ld minutes from now", minutes);
	snprintf(subject, sizeof(subject), "Your sign-in link for %s", env->org_name);
	tpl_buf_addf(&t,
	             "Hello %s,\n\nUse this link to sign in to %s:\n%s\n\n"
	             "It works once, for %ld minutes (until %s).\n\n"
	             "If you did not ask to sign in, ignore this email: nobody can sign in with "
	             "your address without this link.\n\n%s\n",
	             name, env->org_name, link_url, minutes, until, env->org_name);

	tpl_html_open(&h, subject);
	tpl_buf_add(&h, "<p>Hello ");
	tpl_buf_html(&h, name);
	tpl_buf_add(&h, ",</p>\n<p><a href=\"");
	tpl_buf_html(&h, link_url);
	tpl_buf_add(&h, "\">Sign in to ");
	tpl_buf_html(&h, env->org_name);
	tpl_buf_addf(&h, "</a></p>\n<p>The link works once, for %ld minutes (until ", minutes);
	tpl_buf_html(&h, until);
	tpl_buf_add(&h, ").</p>\n<p>If you did not ask to sign in, ignore this email: nobody can "
	                "sign in with your address without this link.</p>\n<p>");
	tpl_buf_html(&h, env->org_name);
	tpl_buf_add(&h, "</p>\n</body></html>\n");
	if(t.oom || h.oom) {
		rc = GW_ENOMEM;
		goto out;
	}
	rc = tpl_email(env, "sign_in", dedupe_key, email, name, subject, t.p, h.p, out);
out:
	tpl_buf_free(&t);
	tpl_buf_free(&h);
	return rc;
}
