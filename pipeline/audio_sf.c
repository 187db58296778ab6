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

static sf_count_t mem_len(void *ud) { return ((audio_sf_mem *)ud)->n; }

static sf_count_t mem_seek(sf_count_t off, int whence, void *ud)
{
    audio_sf_mem *m = ud;
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->n;
    sf_count_t p = base + off;
    if (p < 0)
        return -1;
    m->pos = p; // past the end is allowed (like lseek); reads then return 0
    return p;
}

static sf_count_t mem_read(void *ptr, sf_count_t count, void *ud)
{
    audio_sf_mem *m = ud;
    if (count <= 0 || m->pos >= m->n)
        return 0;
    sf_count_t k = m->n - m->pos < count ? m->n - m->pos : count;
    memcpy(ptr, m->bytes + m->pos, (size_t)k);
    m->pos += k;
    return k;
}

static sf_count_t mem_write(const void *ptr, sf_count_t count, void *ud)
{
    (void)ptr, (void)count, (void)ud;
    return 0;
}

static sf_count_t mem_tell(void *ud) { return ((audio_sf_mem *)ud)->pos; }

SNDFILE *audio_sf_open_memory(audio_sf_mem *m, const void *bytes, size_t n_bytes, SF_INFO *info)
{
    SF_VIRTUAL_IO vio = {mem_len, mem_seek, mem_read, mem_write, mem_tell};
    // libsndfile copies vio; m is kept and read through.
    m->bytes = bytes;
    m->n = (sf_count_t)n_bytes;
    m->pos = 0;
    memset(info, 0, sizeof *info);
    return sf_open_virtual(&vio, SFM_READ, info, m);
}
