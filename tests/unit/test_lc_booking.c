/*
 * test_lc_booking.c - the booking guard table: state x action x role (x time) -> result,
 * as docs/design.md's state machine and the contract's "who" column give it; then the
 * customer's row (the manage link): cancel and reschedule until customer_change_cutoff_hours
 * before the start, to the second, and never with a cutoff of 0; and the "actions" list a
 * booking answer carries for the pages, which is the same table asked for every action.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

/* ---- the customer (manage link) ---- */

#define C_START ((time_t)1796389200) /* 2026-12-04T13:00:00Z */

struct customer_case {
	const char *name;
	enum lc_booking_action action;
	const char *status;
	int cutoff_hours;
	time_t now_from_cutoff; /* now = start - cutoff_hours + this many seconds */
	gw_rc want;
	const char *says; /* in the refusal's message, or NULL */
};

static const struct customer_case customer_cases[] = {
    /* 24 hours: until the second before start - 24 h */
    {"cancel a day and a second ahead", LC_B_CANCEL, "confirmed", 24, -1, GW_OK, NULL},
    {"cancel a week ahead", LC_B_CANCEL, "confirmed", 24, -6 * 86400, GW_OK, NULL},
    {"cancel exactly at the cutoff", LC_B_CANCEL, "confirmed", 24, 0, GW_ESTATE,
     "please contact Tia Trainer"},
    {"cancel a second after the cutoff", LC_B_CANCEL, "confirmed", 24, 1, GW_ESTATE,
     "24 hours before the start"},
    {"cancel after the start", LC_B_CANCEL, "confirmed", 24, 86400 + 60, GW_ESTATE,
     "Tia Trainer"},
    {"move a second before the cutoff", LC_B_RESCHEDULE, "confirmed", 24, -1, GW_OK, NULL},
    {"move exactly at the cutoff", LC_B_RESCHEDULE, "confirmed", 24, 0, GW_ESTATE,
     "Tia Trainer"},
    {"move a second after the cutoff", LC_B_RESCHEDULE, "confirmed", 24, 1, GW_ESTATE,
     "Tia Trainer"},
    {"an unpaid hold can be cancelled", LC_B_CANCEL, "pending_payment", 24, -1, GW_OK, NULL},
    /* other cutoffs */
    {"1 hour: a second before", LC_B_CANCEL, "confirmed", 1, -1, GW_OK, NULL},
    {"1 hour: at it", LC_B_CANCEL, "confirmed", 1, 0, GW_ESTATE, "1 hours"},
    {"720 hours: a second before", LC_B_RESCHEDULE, "confirmed", 720, -1, GW_OK, NULL},
    {"720 hours: a second after", LC_B_RESCHEDULE, "confirmed", 720, 1, GW_ESTATE, NULL},
    /* 0: no customer changes at all, however early */
    {"cutoff 0: cancel a month ahead", LC_B_CANCEL, "confirmed", 0, -30 * 86400, GW_ESTATE,
     "please contact Tia Trainer"},
    {"cutoff 0: move a month ahead", LC_B_RESCHEDULE, "confirmed", 0, -30 * 86400, GW_ESTATE,
     "Tia Trainer"},
    /* a booking that is no longer held */
    {"cancelled", LC_B_CANCEL, "cancelled", 24, -86400, GW_ESTATE, "cancelled"},
    {"completed", LC_B_RESCHEDULE, "completed", 24, -86400, GW_ESTATE, NULL},
    {"no-show", LC_B_CANCEL, "no_show", 24, -86400, GW_ESTATE, NULL},
    /* reading always; nothing else */
    {"view after the cutoff", LC_B_VIEW, "confirmed", 24, 3600, GW_OK, NULL},
    {"view a cancelled booking", LC_B_VIEW, "cancelled", 0, 0, GW_OK, NULL},
    {"confirm", LC_B_CONFIRM, "pending_payment", 24, -86400, GW_EFORBIDDEN, NULL},
    {"complete", LC_B_COMPLETE, "confirmed", 24, 3 * 86400, GW_EFORBIDDEN, NULL},
    {"no-show", LC_B_NO_SHOW_CUSTOMER, "confirmed", 24, 3 * 86400, GW_EFORBIDDEN, NULL},
    {"undo", LC_B_UNDO_COMPLETE, "completed", 24, 3 * 86400, GW_EFORBIDDEN, NULL},
};

/* test_customer_guards - the customer's row, to the second around the cutoff */
static void test_customer_guards(void **state)
{
	struct lc_actor customer = {0};
	size_t i;

	(void)state;
	customer.customer = true;
	for(i = 0; i < sizeof(customer_cases) / sizeof(customer_cases[0]); i++) {
		const struct customer_case *c = &customer_cases[i];
		struct lc_booking_facts f = {0};
		struct gw_err err = {0};
		gw_rc got;

		print_message("case: %s\n", c->name);
		f.status = c->status;
		f.owner = OWNER_ID;
		f.start = C_START;
		f.end = C_START + 3600;
		f.now = C_START - (time_t)c->cutoff_hours * 3600 + c->now_from_cutoff;
		f.paid = true;
		f.cutoff_hours = c->cutoff_hours;
		f.trainer_name = "Tia Trainer";
		got = lc_booking_guard(c->action, &f, &customer, &err);
		if(got != c->want)
			fail_msg("%s: got %s, want %s (%s)", c->name, gw_rc_name(got),
			         gw_rc_name(c->want), err.message);
		if(got != GW_OK && !err.message[0])
			fail_msg("%s: a refusal without a message", c->name);
		if(c->says && !strstr(err.message, c->says))
			fail_msg("%s: message '%s' does not say '%s'", c->name, err.message,
			         c->says);
		/* the guard with no error context answers the same (the manage view calls it so) */
		if(lc_booking_guard(c->action, &f, &customer, NULL) != got)
			fail_msg("%s: differs without an error context", c->name);
	}
}

/* test_cutoff_at - start less the hours, and the trainer's own changes ignore it */
static void test_cutoff_at(void **state)
{
	struct lc_actor owner = {OWNER_ID, 1, ROLE_TRAINER, false};
	struct lc_booking_facts f = {0};

	(void)state;
	assert_int_equal(lc_change_cutoff_at(C_START, 24), C_START - 86400);
	assert_int_equal(lc_change_cutoff_at(C_START, 0), C_START);
	assert_int_equal(lc_change_cutoff_at(C_START, 720), C_START - 720 * 3600);
	f.status = "confirmed";
	f.owner = OWNER_ID;
	f.start = C_START;
	f.end = C_START + 3600;
	f.now = C_START - 60; /* long past a 24 h cutoff */
	f.cutoff_hours = 24;
	assert_int_equal(lc_booking_guard(LC_B_CANCEL, &f, &owner, NULL), GW_OK);
	assert_int_equal(lc_booking_guard(LC_B_RESCHEDULE, &f, &owner, NULL), GW_OK);
	f.cutoff_hours = 0;
	assert_int_equal(lc_booking_guard(LC_B_CANCEL, &f, &owner, NULL), GW_OK);
}

/* ---- the actions a booking answer carries for the pages (lc_booking_actions) ---- */

struct actions_case {
	const char *name;
	const char *status;
	enum who who;
	enum when when;
	bool paid, allow_undo;
	const char *want; /* the action names, comma-separated, in act_names order */
};

static const struct actions_case action_cases[] = {
    {"unpaid hold, owner", "pending_payment", OWNER, BEFORE_START, false, false,
     "cancel,reschedule"},
    {"paid hold, owner", "pending_payment", OWNER, BEFORE_START, true, false,
     "confirm-payment,cancel,reschedule"},
    {"confirmed before the start, owner", "confirmed", OWNER, BEFORE_START, true, false,
     "cancel,reschedule"},
    {"confirmed during, owner: no-show", "confirmed", OWNER, DURING, true, false,
     "no-show,cancel,reschedule"},
    {"confirmed after the end, owner", "confirmed", OWNER, AFTER_END, true, false,
     "complete,no-show,cancel,reschedule"},
    {"confirmed before the start, admin", "confirmed", ADMIN, BEFORE_START, true, false,
     "complete,no-show,cancel,reschedule"},
    {"completed, admin, undo off", "completed", ADMIN, AFTER_END, true, false, ""},
    {"completed, admin, undo on", "completed", ADMIN, AFTER_END, true, true, "undo-complete"},
    {"completed, owner, undo on", "completed", OWNER, AFTER_END, true, true, ""},
    {"cancelled, admin", "cancelled", ADMIN, BEFORE_START, true, true, ""},
    {"no-show, admin", "no_show", ADMIN, AFTER_END, true, true, ""},
    {"another trainer's", "confirmed", OTHER_TRAINER, AFTER_END, true, false, ""},
    {"a kiosk", "confirmed", KIOSK, AFTER_END, true, false, ""},
};

/* test_actions - each case's list equals what the guard table allows */
static void test_actions(void **state)
{
	static const time_t when_now[] = {[BEFORE_START] = T_START - 60, [DURING] = T_START + 60,
	                                  [AFTER_END] = T_END + 60};
	size_t i, j;

	(void)state;
	for(i = 0; i < sizeof(action_cases) / sizeof(action_cases[0]); i++) {
		const struct actions_case *c = &action_cases[i];
		struct lc_actor a = actor_of(c->who);
		/* T_START and T_END as the store shows them */
		json_t *b = json_pack("{s:s, s:i, s:s, s:s, s:o}", "status", c->status,
		                      "trainer_id", OWNER_ID, "start", "1970-01-01T02:46:40Z", "end",
		                      "1970-01-01T03:46:40Z", "paid_at",
		                      c->paid ? json_string("1970-01-01T00:00:00Z") : json_null());
		json_t *settings = json_pack("{s:b, s:i}", "allow_undo_completion", c->allow_undo,
		                             "customer_change_cutoff_hours", 24);
		json_t *got = lc_booking_actions(b, settings, when_now[c->when], &a);
		char joined[200] = "";

		assert_non_null(got);
		for(j = 0; j < json_array_size(got); j++) {
			if(j)
				strncat(joined, ",", sizeof(joined) - strlen(joined) - 1);
			strncat(joined, json_string_value(json_array_get(got, j)),
			        sizeof(joined) - strlen(joined) - 1);
		}
		if(strcmp(joined, c->want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", c->name, joined, c->want);
		json_decref(got);
		json_decref(b);
		json_decref(settings);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_guards),
	    cmocka_unit_test(test_customer_guards),
	    cmocka_unit_test(test_cutoff_at),
	    cmocka_unit_test(test_actions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
