/*
 * settings.h - organisation settings (the contract's "Settings"): defaults, validation, merge.
 * Threading: reentrant.
 */
#ifndef SETTINGS_H
#define SETTINGS_H

#include <jansson.h>

#include "common/gw.h"

/* settings_defaults - every setting with its default. New reference. */
json_t *settings_defaults(void);

/* settings_effective - defaults overlaid with stored (borrowed). New reference. */
json_t *settings_effective(json_t *stored);

/* settings_patch - validate patch (borrowed) against the current stored settings (borrowed) and
 * return the new stored object in *out (new reference). Values are normalised (reminder_hours
 * "24, 1" becomes [24, 1]; checkin merges its sub-fields). Any bad value: GW_EINVAL naming the
 * field, *out NULL, nothing to store. */
gw_rc settings_patch(json_t *stored, json_t *patch, json_t **out,
                     struct gw_err *err);

#endif
