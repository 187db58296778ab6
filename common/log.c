// common/log.c — see log.h.
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static sl_log_level g_level = SL_LOG_INFO;
static int g_rank = -1;

void sl_log_set_level(sl_log_level l) { g_level = l; }
sl_log_level sl_log_get_level(void) { return g_level; }
void sl_log_set_rank(int rank) { g_rank = rank; }

sl_log_level sl_log_level_from_env(void)
{
    const char *v = getenv("SL_LOG_LEVEL");
    if (!v || !*v)
        return g_level;
    static const char *names[] = {"debug", "info", "warn", "error", "quiet"};
    for (int i = 0; i < 5; i++)
        if (strcasecmp(v, names[i]) == 0) {
            g_level = (sl_log_level)i;
            return g_level;
        }
    sl_log(SL_LOG_WARN, "log", "SL_LOG_LEVEL=%s is not debug|info|warn|error|quiet: ignored", v);
    return g_level;
}

void sl_log(sl_log_level l, const char *module, const char *fmt, ...)
{
    if (l < g_level)
        return;
    static const char *tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR", "QUIET"};
    char line[2048];
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n;
    if (g_rank >= 0)
        n = snprintf(line, sizeof line, "%s r%d %s %s: ", when, g_rank, tags[l], module);
    else
        n = snprintf(line, sizeof line, "%s - %s %s: ", when, tags[l], module);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    // One fputs of a whole line: lines of concurrent ranks do not interleave mid-line.
    size_t len = strlen(line);
    if (len + 1 < sizeof line) {
        line[len] = '\n';
        line[len + 1] = '\0';
    } else {
        line[sizeof line - 2] = '\n';
    }
    fputs(line, stderr);
}
