/*
 * test_lc_booking.c - the booking guard table: state x action x role (x time) -> result,
 * as docs/design.md's state machine and the contract's "who" column give it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "gateway/lifecycle/lc.h"

enum who { OWNER, OTHER_TRAINER, ADMIN, ADMIN_TRAINER_OWNER, KIOSK };
enum when { BEFORE_START, DURING, AFTER_END };

struct guard_case {
	enum lc_booking_action action;
	const char *status;
	enum who who;
	enum when when;
	bool paid, allow_undo;
	gw_rc want;
};

#define T_START 10000
#define T_END 13600
#define OWNER_ID 7

static const struct guard_case cases[] = {
    /* confirm-payment: pending_payment and paid, owner or admin */
    {LC_B_CONFIRM, "pending_payment", OWNER, BEFORE_START, true, false, GW_OK},
    {LC_B_CONFIRM, "pending_payment", ADMIN, BEFORE_START, true, false, GW_OK},
    {LC_B_CONFIRM, "pending_payment", OWNER, BEFORE_START, false, false, GW_ESTATE},
    {LC_B_CONFIRM, "pending_payment", OTHER_TRAINER, BEFORE_START, true, false, GW_EFORBIDDEN},
    {LC_B_CONFIRM, "pending_payment", KIOSK, BEFORE_START, true, false, GW_EFORBIDDEN},
    {LC_B_CONFIRM, "confirmed", OWNER, BEFORE_START, true, false, GW_ESTATE},
    {LC_B_CONFIRM, "cancelled", ADMIN, BEFORE_START, true, false, GW_ESTATE},
    {LC_B_CONFIRM, "completed", ADMIN, AFTER_END, true, false, GW_ESTATE},
    /* complete: owner only after the end, admin any time, only from confirmed */
    {LC_B_COMPLETE, "confirmed", OWNER, BEFORE_START, true, false, GW_ESTATE},
    {LC_B_COMPLETE, "confirmed", OWNER, DURING, true, false, GW_ESTATE},
    {LC_B_COMPLETE, "confirmed", OWNER, AFTER_END, true, false, GW_OK},
    {LC_B_COMPLETE, "confirmed", ADMIN, BEFORE_START, true, false, GW_OK},
    {LC_B_COMPLETE, "confirmed", ADMIN_TRAINER_OWNER, BEFORE_START, true, false, GW_OK},
    {LC_B_COMPLETE, "confirmed", OTHER_TRAINER, AFTER_END, true, false, GW_EFORBIDDEN},
    {LC_B_COMPLETE, "pending_payment", ADMIN, AFTER_END, false, false, GW_ESTATE},
    {LC_B_COMPLETE, "completed", ADMIN, AFTER_END, true, false, GW_ESTATE},
    {LC_B_COMPLETE, "no_show", ADMIN, AFTER_END, true, false, GW_ESTATE},
    {LC_B_COMPLETE, "cancelled", OWNER, AFTER_END, true, false, GW_ESTATE},
    /* undo: admin only, only where allowed, only from completed */
    {LC_B_UNDO_COMPLETE, "completed", ADMIN, AFTER_END, true, true, GW_OK},
    {LC_B_UNDO_COMPLETE, "completed", ADMIN, AFTER_END, true, false, GW_EFORBIDDEN},
    {LC_B_UNDO_COMPLETE, "completed", OWNER, AFTER_END, true, true, GW_EFORBIDDEN},
    {LC_B_UNDO_COMPLETE, "confirmed", ADMIN, AFTER_END, true, true, GW_ESTATE},
    {LC_B_UNDO_COMPLETE, "no_show", ADMIN, AFTER_END, true, true, GW_ESTATE},
    /* customer no-show: owner after the start, admin any time, from confirmed */
    {LC_B_NO_SHOW_CUSTOMER, "confirmed", OWNER, BEFORE_START, true, false, GW_ESTATE},
    {LC_B_NO_SHOW_CUSTOMER, "confirmed", OWNER, DURING, true, false, GW_OK},
    {LC_B_NO_SHOW_CUSTOMER, "confirmed", ADMIN, BEFORE_START, true, false, GW_OK},
    {LC_B_NO_SHOW_CUSTOMER, "confirmed", OTHER_TRAINER, DURING, true, false, GW_EFORBIDDEN},
    {LC_B_NO_SHOW_CUSTOMER, "completed", ADMIN, AFTER_END, true, false, GW_ESTATE},
    {LC_B_NO_SHOW_CUSTOMER, "pending_payment", ADMIN, AFTER_END, false, false, GW_ESTATE},
    /* trainer no-show: admin only */
    {LC_B_NO_SHOW_TRAINER, "confirmed", ADMIN, DURING, true, false, GW_OK},
    {LC_B_NO_SHOW_TRAINER, "confirmed", OWNER, DURING, true, false, GW_EFORBIDDEN},
    {LC_B_NO_SHOW_TRAINER, "cancelled", ADMIN, DURING, true, false, GW_ESTATE},
    /* cancel and reschedule: from pending_payment or confirmed */
    {LC_B_CANCEL, "pending_payment", OWNER, BEFORE_START, false, false, GW_OK},
    {LC_B_CANCEL, "confirmed", ADMIN, BEFORE_START, true, false, GW_OK},
    {LC_B_CANCEL, "completed", ADMIN, AFTER_END, true, false, GW_ESTATE},
    {LC_B_CANCEL, "no_show", ADMIN, AFTER_END, true, false, GW_ESTATE},
    {LC_B_CANCEL, "cancelled", OWNER, BEFORE_START, true, false, GW_ESTATE},
    {LC_B_CANCEL, "confirmed", OTHER_TRAINER, BEFORE_START, true, false, GW_EFORBIDDEN},
    {LC_B_RESCHEDULE, "confirmed", OWNER, BEFORE_START, true, false, GW_OK},
    {LC_B_RESCHEDULE, "pending_payment", ADMIN, BEFORE_START, false, false, GW_OK},
    {LC_B_RESCHEDULE, "completed", ADMIN, AFTER_END, true, false, GW_ESTATE},
    {LC_B_RESCHEDULE, "cancelled", OWNER, BEFORE_START, true, false, GW_ESTATE},
    {LC_B_RESCHEDULE, "confirmed", KIOSK, BEFORE_START, true, false, GW_EFORBIDDEN},
    /* reading: owner or admin */
    {LC_B_VIEW, "completed", OWNER, AFTER_END, true, false, GW_OK},
    {LC_B_VIEW, "completed", OTHER_TRAINER, AFTER_END, true, false, GW_EFORBIDDEN},
    {LC_B_VIEW, "cancelled", ADMIN, AFTER_END, true, false, GW_OK},
};

/* actor_of - the acting user of a case */
static struct lc_actor actor_of(enum who w)
{
	struct lc_actor a = {0};

	a.org_id = 1;
	switch(w) {
	case OWNER: a.user_id = OWNER_ID; a.roles = ROLE_TRAINER; break;
	case OTHER_TRAINER: a.user_id = OWNER_ID + 1; a.roles = ROLE_TRAINER; break;
	case ADMIN: a.user_id = 100; a.roles = ROLE_ORG_ADMIN; break;
	case ADMIN_TRAINER_OWNER: a.user_id = OWNER_ID; a.roles = ROLE_ORG_ADMIN | ROLE_TRAINER; break;
	case KIOSK: a.user_id = 200; a.roles = ROLE_KIOSK; break;
	}
	return a;
}

/* test_guards - every row of the table */
static void test_guards(void **state)
{
	static const time_t when_now[] = {[BEFORE_START] = T_START - 60, [DURING] = T_START + 60,
	                                  [AFTER_END] = T_END + 60};
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct guard_case *c = &cases[i];
		struct lc_booking_facts f = {0};
		struct lc_actor a = actor_of(c->who);
		struct gw_err err = {0};
		gw_rc got;

		f.status = c->status;
		f.owner = OWNER_ID;
		f.now = when_now[c->when];
		f.start = T_START;
		f.end = T_END;
		f.paid = c->paid;
		f.allow_undo = c->allow_undo;
		got = lc_booking_guard(c->action, &f, &a, &err);
		if(got != c->want)
			fail_msg("case %zu (action %d, %s, who %d, when %d): got %s, want %s", i,
			         c->action, c->status, c->who, c->when, gw_rc_name(got),
			         gw_rc_name(c->want));
		if(got != GW_OK && !err.message[0])
			fail_msg("case %zu: a refusal without a message", i);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_guards),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
