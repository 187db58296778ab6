// common/err.c — see err.h.
#include "common/err.h"

#include <stdio.h>
#include <string.h>

int sl_fail(sl_err *e, sl_code c, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        e->code = c;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return c;
}

int sl_err_prefix(sl_err *e, const char *fmt, ...)
{
    if (!e)
        return SL_EINVAL;
    char head[SL_ERR_MSG_CAP];
    char old[SL_ERR_MSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    char joined[2 * SL_ERR_MSG_CAP + 2];
    memcpy(old, e->msg, sizeof old);
    snprintf(joined, sizeof joined, "%s: %s", head, old);
    memcpy(e->msg, joined, sizeof e->msg - 1); // truncates: the head matters most
    e->msg[sizeof e->msg - 1] = '\0';
    return e->code;
}

void sl_err_clear(sl_err *e)
{
    if (e) {
        e->code = SL_OK;
        e->msg[0] = '\0';
    }
}

const char *sl_code_name(sl_code c)
{
    switch (c) {
    case SL_OK: return "OK";
    case SL_EINVAL: return "EINVAL";
    case SL_ENOMEM: return "ENOMEM";
    case SL_EIO: return "EIO";
    case SL_EFORMAT: return "EFORMAT";
    case SL_ECORRUPT: return "ECORRUPT";
    case SL_ESTORE: return "ESTORE";
    case SL_EEXIST: return "EEXIST";
    case SL_ENOTFOUND: return "ENOTFOUND";
    }
    return "EUNKNOWN";
}
