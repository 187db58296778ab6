// pipeline/audio_sf.c — see audio_sf.h.
#include "pipeline/audio_sf.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int audio_sf_open_fail(const char *path, sl_err *err)
{
    char why[256]; // libsndfile keeps this text in a process-wide buffer: copy it now
    snprintf(why, sizeof why, "%s", sf_strerror(NULL));
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return sl_fail(err, SL_EIO, "audio: open %s: is a directory, not a file", path);
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0)
        return sl_fail(err, SL_EIO, "audio: open %s: empty file (0 bytes)", path);
    return sl_fail(err, SL_EIO, "audio: open %s: %s", path, why);
}

const char *audio_sf_cut_chunk(SNDFILE *sf, char *buf, size_t cap)
{
    buf[0] = 0;
    sf_command(sf, SFC_GET_LOG_INFO, buf, (int)cap);
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if ((!strncmp(line, "data :", 6) || !strncmp(line, "SSND :", 6)) &&
            strstr(line, "(should be"))
            return line;
        line = nl ? nl + 1 : NULL;
    }
    return NULL;
}
