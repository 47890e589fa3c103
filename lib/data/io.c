/* Reading whole files and inflating gzip streams in memory. Errors name the file and, for
 * gzip, the compressed offset where zlib gave up. Nothing here prints or aborts. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data_internal.h"
#include "error.h"

static const char *errno_text(int e, char *buf, size_t len)
{
    if (strerror_r(e, buf, len) != 0)
        snprintf(buf, len, "error %d", e);
    return buf;
}

supcon_status sc_read_file(supcon_context *ctx, const char *path, uint8_t **data, size_t *size)
{
    char why[128];
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return sc_error(ctx, SUPCON_ERR_IO, "cannot open '%s': %s", path,
                        errno_text(e, why, sizeof why));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return sc_error(ctx, SUPCON_ERR_IO, "cannot stat '%s': %s", path,
                        errno_text(e, why, sizeof why));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sc_error(ctx, SUPCON_ERR_IO, "'%s' is not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory for the %zu bytes of '%s'", n,
                        path);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got > (1u << 30) ? (1u << 30) : n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return sc_error(ctx, SUPCON_ERR_IO, "cannot read '%s' at offset %zu: %s", path, got,
                            errno_text(e, why, sizeof why));
        }
        if (r == 0)
            break; /* shrank while reading: keep what is there */
        got += (size_t)r;
    }
    close(fd);
    *data = buf;
    *size = got;
    return SUPCON_OK;
}

int sc_is_gzip(const uint8_t *data, size_t size)
{
    return size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

supcon_status sc_gunzip(supcon_context *ctx, const char *name, const uint8_t *data, size_t size,
                        size_t max_out, uint8_t **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    /* First guess from the trailer (size mod 2^32 of the last member). */
    size_t cap = 1u << 16;
    if (size >= 18) {
        uint32_t isize = (uint32_t)data[size - 4] | ((uint32_t)data[size - 3] << 8) |
                         ((uint32_t)data[size - 2] << 16) | ((uint32_t)data[size - 1] << 24);
        if (isize > cap)
            cap = isize;
    }
    if (cap > max_out)
        cap = max_out ? max_out : 1;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory to inflate '%s'", name);

    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 16) != Z_OK) {
        free(buf);
        return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "zlib could not start on '%s'", name);
    }
    size_t in_pos = 0, out_pos = 0;
    supcon_status st = SUPCON_OK;
    for (;;) {
        if (out_pos == cap) {
            if (cap >= max_out) {
                st = sc_error(ctx, SUPCON_ERR_FORMAT,
                              "'%s': inflates to more than the %zu-byte limit", name, max_out);
                break;
            }
            size_t ncap = cap > max_out / 2 ? max_out : cap * 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                st = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory to inflate '%s'", name);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t in_left = size - in_pos, out_left = cap - out_pos;
        zs.next_in = (Bytef *)(uintptr_t)(data + in_pos);
        zs.avail_in = (uInt)(in_left > UINT_MAX ? UINT_MAX : in_left);
        zs.next_out = buf + out_pos;
        zs.avail_out = (uInt)(out_left > UINT_MAX ? UINT_MAX : out_left);
        uInt in_before = zs.avail_in, out_before = zs.avail_out;
        int rc = inflate(&zs, Z_NO_FLUSH);
        in_pos += in_before - zs.avail_in;
        out_pos += out_before - zs.avail_out;
        if (rc == Z_STREAM_END) {
            if (in_pos == size)
                break;
            if (sc_is_gzip(data + in_pos, size - in_pos)) { /* another member follows */
                inflateReset(&zs);
                continue;
            }
            st = sc_error(ctx, SUPCON_ERR_FORMAT,
                          "'%s': %zu bytes of garbage after the gzip data at offset %zu", name,
                          size - in_pos, in_pos);
            break;
        }
        if (rc == Z_OK)
            continue;
        if (rc == Z_BUF_ERROR && out_pos == cap)
            continue; /* only needs more room */
        if (rc == Z_BUF_ERROR || (rc == Z_OK && in_pos == size))
            st = sc_error(ctx, SUPCON_ERR_FORMAT,
                          "'%s': gzip data truncated (ends at offset %zu before the stream end)",
                          name, size);
        else if (rc == Z_MEM_ERROR)
            st = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory to inflate '%s'", name);
        else
            st = sc_error(ctx, SUPCON_ERR_FORMAT, "'%s': corrupt gzip data near offset %zu: %s",
                          name, in_pos, zs.msg ? zs.msg : "inflate failed");
        break;
    }
    inflateEnd(&zs);
    if (st != SUPCON_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *out_size = out_pos;
    return SUPCON_OK;
}
