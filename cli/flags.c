// cli/flags.c — the flag helpers every sub-command uses (declared in cli/commands.h):
// usage errors, strict number parsing, joining getopt_long tables. Apart from main.c
// so the flag modules (decode_flags, feature_flags, job_flags) link into unit tests.
#include "cli/commands.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "spearlabel %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'spearlabel %s --help'.\n", cmd);
    va_end(ap);
    return SL_EXIT_USAGE;
}

void cli_join_options(struct option *out, size_t cap, const struct option *own,
                      const struct option *shared)
{
    size_t k = 0;
    for (const struct option *t = own; t; t = t == own ? shared : NULL)
        for (size_t i = 0; t[i].name; i++) {
            if (k + 1 >= cap)
                abort();
            out[k++] = t[i];
        }
    memset(&out[k], 0, sizeof out[k]);
}

int cli_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}
