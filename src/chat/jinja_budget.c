/*
 * jinja_budget.c — the budget every render runs on (the limits are in chat.h).
 *
 * The hot path is jv_charge(), inline in jinja.h: an add and a compare. Every
 * CHECK_EVERY steps, or when the limit is near, the slow path here looks at
 * the limit and at the caller's cancel flag, so a cancelled render stops
 * within a few thousand steps without an atomic load per step.
 *
 * Limits are not wall-clock timers: the same template and input always stop
 * at the same place, on any machine and under any load.
 */
#include "chat/jinja.h"

#include <stdio.h>

#define CHECK_EVERY 4096

_Thread_local jbudget herd_jv_budget;

/* What the last render on this thread used (herd_chat_last_usage). */
static _Thread_local herd_chat_usage last_usage;

void herd_jv_budget_start(const atomic_bool *cancel)
{
    herd_jv_budget = (jbudget){.active = true, .cancel = cancel};
    herd_jv_budget.next_check = 0; /* the first charge looks at the flag */
}

void herd_jv_budget_stop(size_t output)
{
    last_usage = (herd_chat_usage){.steps = herd_jv_budget.steps,
                                   .output = output,
                                   .depth = herd_jv_budget.depth_seen,
                                   .limit = herd_jv_budget.hit};
    herd_jv_budget = (jbudget){.next_check = UINT64_MAX};
}

bool herd_jv_limit(herd_chat_limit which)
{
    if (!herd_jv_budget.hit) herd_jv_budget.hit = which;
    herd_jv_budget.next_check = 0; /* every later charge fails too */
    herd_jv_nomem = true;
    return false;
}

bool herd_jv_budget_slow(void)
{
    jbudget *b = &herd_jv_budget;
    if (!b->active) {
        b->next_check = UINT64_MAX;
        return true;
    }
    if (b->hit) return false;
    if (b->steps > HERD_CHAT_MAX_STEPS) return herd_jv_limit(HERD_CHAT_LIMIT_STEPS);
    if (b->cancel && atomic_load_explicit(b->cancel, memory_order_relaxed))
        return herd_jv_limit(HERD_CHAT_CANCELLED);
    uint64_t next = b->steps + CHECK_EVERY;
    b->next_check = next < HERD_CHAT_MAX_STEPS + 1 ? next : HERD_CHAT_MAX_STEPS + 1;
    return true;
}

bool herd_jv_charge_bytes(size_t n)
{
    if (!herd_jv_budget.active) return true;
    herd_jv_budget.bytes += n;
    if (herd_jv_budget.bytes < 64) return !herd_jv_budget.hit;
    uint64_t k = herd_jv_budget.bytes / 64;
    herd_jv_budget.bytes %= 64;
    return jv_charge(k);
}

bool herd_jv_room(size_t have, size_t add)
{
    if (!herd_jv_budget.active) return true;
    if (add > HERD_CHAT_MAX_OUTPUT || have > HERD_CHAT_MAX_OUTPUT - add)
        return herd_jv_limit(HERD_CHAT_LIMIT_OUTPUT);
    return true;
}

bool herd_jv_depth_ok(int depth)
{
    if (depth > herd_jv_budget.depth_seen) herd_jv_budget.depth_seen = depth;
    return depth <= HERD_CHAT_MAX_DEPTH || herd_jv_limit(HERD_CHAT_LIMIT_DEPTH);
}

const char *herd_chat_limit_name(herd_chat_limit l)
{
    switch (l) {
    case HERD_CHAT_LIMIT_STEPS:
        return "HERD_CHAT_MAX_STEPS";
    case HERD_CHAT_LIMIT_OUTPUT:
        return "HERD_CHAT_MAX_OUTPUT";
    case HERD_CHAT_LIMIT_DEPTH:
        return "HERD_CHAT_MAX_DEPTH";
    case HERD_CHAT_CANCELLED:
        return "cancelled";
    default:
        return "";
    }
}

herd_status herd_jv_stop_error(int line)
{
    char where[32] = "";
    if (line > 0) snprintf(where, sizeof where, ", line %d", line);
    switch (herd_jv_budget.hit) {
    case HERD_CHAT_LIMIT_STEPS:
        return herd_seterr(HERD_E_UNSUPPORTED,
                           "template error%s: the render exceeded HERD_CHAT_MAX_STEPS (%d steps)",
                           where, HERD_CHAT_MAX_STEPS);
    case HERD_CHAT_LIMIT_OUTPUT:
        return herd_seterr(HERD_E_UNSUPPORTED,
                           "template error%s: the render exceeded HERD_CHAT_MAX_OUTPUT (%u bytes "
                           "of output or of one string)",
                           where, HERD_CHAT_MAX_OUTPUT);
    case HERD_CHAT_LIMIT_DEPTH:
        return herd_seterr(HERD_E_UNSUPPORTED,
                           "template error%s: the render exceeded HERD_CHAT_MAX_DEPTH (%d levels "
                           "of nesting in a value or in printing one)",
                           where, HERD_CHAT_MAX_DEPTH);
    case HERD_CHAT_CANCELLED:
        return herd_seterr(HERD_E_INVALID, "template render cancelled");
    default:
        return herd_seterr(HERD_E_NOMEM, "out of memory rendering the template");
    }
}

void herd_chat_last_usage(herd_chat_usage *out)
{
    *out = last_usage;
}
