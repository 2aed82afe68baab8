/*
 * tpl_test.c - the test email: a short message that says it was asked for from the admin
 * page, and when, so that an admin who changed the SMTP settings sees them work end to end
 * (the outbox, the provider, DKIM when set) without a booking.
 *
 * Entry points: tpl_test_email().
 * Threading: reentrant.
 */
#include "tpl_test.h"

#include <stdio.h>

#include "common/tz.h"

/* tpl_test_email - the test_email email */
gw_rc tpl_test_email(const struct tpl_env *env, const char *dedupe_key, const json_t *user,
                     json_t **out)
{
	struct tpl_buf t = {0}, h = {0};
	const char *name = json_string_value(json_object_get(user, "name"));
	const char *email = json_string_value(json_object_get(user, "email"));
	char subject[300], when[128];
	gw_rc rc;

	*out = NULL;
	if(!email || !env->org_name)
		return GW_EINVAL;
	if(!name)
		name = "";
	if(tz_format(env->org_timezone ? env->org_timezone : "UTC", env->now, when, sizeof(when)))
		snprintf(when, sizeof(when), "just now");
	snprintf(subject, sizeof(subject), "Test email from %s", env->org_name);
	tpl_buf_addf(&t,
	             "Hello %s,\n\nThis is the test email you asked for on the admin page of %s "
	             "(%s).\nIt reached you, so the organisation's email settings work.\n\n%s\n",
	             name, env->org_name, when, env->org_name);
	tpl_html_open(&h, subject);
	tpl_buf_add(&h, "<p>Hello ");
	tpl_buf_html(&h, name);
	tpl_buf_add(&h, ",</p>\n<p>This is the test email you asked for on the admin page of ");
	tpl_buf_html(&h, env->org_name);
	tpl_buf_add(&h, " (");
	tpl_buf_html(&h, when);
	tpl_buf_add(&h, ").</p>\n<p>It reached you, so the organisation's email settings "
	                "work.</p>\n<p>");
	tpl_buf_html(&h, env->org_name);
	tpl_buf_add(&h, "</p>\n</body></html>\n");
	if(t.oom || h.oom) {
		rc = GW_ENOMEM;
		goto out;
	}
	rc = tpl_email(env, "test_email", dedupe_key, email, name, subject, t.p, h.p, out);
out:
	tpl_buf_free(&t);
	tpl_buf_free(&h);
	return rc;
}
