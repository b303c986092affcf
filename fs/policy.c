/* Encryption policy: glob matching of the base name with fnmatch(FNM_CASEFOLD), plus the rsync
 * temporary-name rule (see policy.h). */
#include "policy.h"

#include <fnmatch.h>
#include <string.h>
#include <strings.h>

#define RSYNC_SUFFIX_LEN 6

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int matches_list(const char *spec, const char *name)
{
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char pattern[256];
        if (len > 0 && len < sizeof pattern) {
            memcpy(pattern, p, len);
            pattern[len] = '\0';
            if (fnmatch(pattern, name, FNM_CASEFOLD) == 0)
                return 1;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

/* ".<name>.<6 chars>" -> "<name>" into out; 1 if the name has that shape, else 0. */
static int strip_temp_name(const char *name, char *out, size_t cap)
{
    size_t len = strlen(name);
    if (name[0] != '.' || len < 1 + 1 + 1 + RSYNC_SUFFIX_LEN)
        return 0;
    if (name[len - RSYNC_SUFFIX_LEN - 1] != '.')
        return 0;
    for (size_t i = len - RSYNC_SUFFIX_LEN; i < len; i++)
        if (name[i] == '.' || name[i] == '/')
            return 0;
    size_t inner = len - RSYNC_SUFFIX_LEN - 2;
    if (inner >= cap)
        return 0;
    memcpy(out, name + 1, inner);
    out[inner] = '\0';
    return 1;
}

int policy_should_encrypt(const char *spec, const char *path)
{
    if (!spec || !path)
        return 0;
    if (strcasecmp(spec, "all") == 0)
        return 1;
    if (strcasecmp(spec, "none") == 0 || spec[0] == '\0')
        return 0;
    const char *name = base_name(path);
    if (matches_list(spec, name))
        return 1;
    char inner[1024];
    if (strip_temp_name(name, inner, sizeof inner) && matches_list(spec, inner))
        return 1;
    return 0;
}

int policy_validate(const char *spec)
{
    if (!spec || spec[0] == '\0')
        return -1;
    if (strcasecmp(spec, "all") == 0 || strcasecmp(spec, "none") == 0)
        return 0;
    const char *p = spec;
    for (;;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len >= 256)
            return -1;
        if (!end)
            return 0;
        p = end + 1;
    }
}
