/* Parser for the AWS shared config/credentials INI dialect (see ini.h for the accepted syntax). */
#include "ini.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *section;
    char *key;
    char *value;
} ini_entry;

struct ini_file {
    char **sections;
    size_t section_count;
    ini_entry *entries;
    size_t entry_count;
    size_t entry_cap;
    size_t section_cap;
};

/* Values may be secrets (aws_secret_access_key): every copy is wiped before it is released. */
static void free_value(char *value)
{
    if (value) {
        explicit_bzero(value, strlen(value));
        free(value);
    }
}

static char *trimmed_copy(const char *start, const char *end)
{
    while (start < end && isspace((unsigned char)*start))
        start++;
    while (end > start && isspace((unsigned char)end[-1]))
        end--;
    return strndup(start, (size_t)(end - start));
}

/* "profile   name" -> "profile name", so lookups need one spelling only. */
static char *normalized_section_name(const char *start, const char *end)
{
    char *name = trimmed_copy(start, end);
    if (!name)
        return NULL;
    if (strncmp(name, "profile", 7) == 0 && isspace((unsigned char)name[7])) {
        char *rest = name + 7;
        while (isspace((unsigned char)*rest))
            rest++;
        memmove(name + 8, rest, strlen(rest) + 1);
        name[7] = ' ';
    }
    return name;
}

/* Takes ownership of name; returns the stored copy of that section name, or NULL when out of memory. */
static const char *add_section(ini_file *ini, char *name)
{
    for (size_t i = 0; i < ini->section_count; i++) {
        if (strcmp(ini->sections[i], name) == 0) {
            free(name);
            return ini->sections[i];
        }
    }
    if (ini->section_count == ini->section_cap) {
        size_t cap = ini->section_cap ? ini->section_cap * 2 : 8;
        char **grown = realloc(ini->sections, cap * sizeof(*grown));
        if (!grown) {
            free(name);
            return NULL;
        }
        ini->sections = grown;
        ini->section_cap = cap;
    }
    ini->sections[ini->section_count++] = name;
    return name;
}

static const char *find_section(const ini_file *ini, const char *name)
{
    for (size_t i = 0; ini && i < ini->section_count; i++)
        if (strcmp(ini->sections[i], name) == 0)
            return ini->sections[i];
    return NULL;
}

static ini_entry *find_entry(const ini_file *ini, const char *section, const char *key)
{
    /* Search backwards: a later definition of the same key wins. */
    for (size_t i = ini ? ini->entry_count : 0; i-- > 0;) {
        ini_entry *e = &ini->entries[i];
        if (strcmp(e->section, section) == 0 && strcasecmp(e->key, key) == 0)
            return e;
    }
    return NULL;
}

static int add_entry(ini_file *ini, const char *section, char *key, char *value)
{
    if (ini->entry_count == ini->entry_cap) {
        size_t cap = ini->entry_cap ? ini->entry_cap * 2 : 16;
        ini_entry *grown = realloc(ini->entries, cap * sizeof(*grown));
        if (!grown) {
            free(key);
            free_value(value);
            return -1;
        }
        ini->entries = grown;
        ini->entry_cap = cap;
    }
    ini->entries[ini->entry_count++] = (ini_entry){ .section = (char *)section, .key = key, .value = value };
    return 0;
}

/* End of a property value: before " #" / " ;" (a comment needs whitespace in front of it). */
static const char *value_end(const char *value, const char *line_end)
{
    for (const char *p = value; p < line_end; p++)
        if ((*p == '#' || *p == ';') && p > value && isspace((unsigned char)p[-1]))
            return p;
    return line_end;
}

/* Appends an indented continuation line to the last entry ("\n" separated). */
static int continue_entry(ini_file *ini, const char *start, const char *end)
{
    ini_entry *last = &ini->entries[ini->entry_count - 1];
    char *more = trimmed_copy(start, end);
    if (!more)
        return -1;
    size_t old_len = strlen(last->value);
    char *joined = malloc(old_len + strlen(more) + 2);
    if (!joined) {
        free_value(more);
        return -1;
    }
    sprintf(joined, "%s%s%s", last->value, old_len ? "\n" : "", more);
    free_value(more);
    free_value(last->value);
    last->value = joined;
    return 0;
}

ini_file *ini_parse(const char *text, size_t len, aws_error *err)
{
    ini_file *ini = calloc(1, sizeof(*ini));
    if (!ini)
        goto no_memory;
    const char *current = NULL;    /* section of the lines being read; NULL before the first header */
    int last_was_entry = 0;
    int in_sub_properties = 0;     /* the last entry had an empty value: indented lines belong to it */
    const char *p = text, *text_end = text + len;
    while (p < text_end) {
        const char *line_end = memchr(p, '\n', (size_t)(text_end - p));
        if (!line_end)
            line_end = text_end;
        const char *line = p;
        p = line_end + (line_end < text_end);
        const char *content_end = line_end;
        if (content_end > line && content_end[-1] == '\r')
            content_end--;
        const char *s = line;
        while (s < content_end && isspace((unsigned char)*s))
            s++;
        if (s == content_end || *s == '#' || *s == ';')
            continue;                       /* blank or comment; keeps a running continuation */
        int indented = s > line;

        if (*s == '[') {
            const char *close = memchr(s, ']', (size_t)(content_end - s));
            last_was_entry = 0;
            if (!close) {
                current = NULL;             /* malformed header: ignore what follows until the next */
                continue;
            }
            char *name = normalized_section_name(s + 1, close);
            current = name ? add_section(ini, name) : NULL;
            if (!current)
                goto no_memory;
            continue;
        }
        if (!current)
            continue;
        /* Indented lines under "name =" (an empty value) are its sub-properties; other indented
         * lines are ordinary settings, which is what a hand-indented file means. */
        if (indented && last_was_entry && in_sub_properties) {
            if (continue_entry(ini, s, content_end) != 0)
                goto no_memory;
            continue;
        }
        const char *eq = memchr(s, '=', (size_t)(content_end - s));
        if (!eq) {
            last_was_entry = 0;
            continue;
        }
        char *key = trimmed_copy(s, eq);
        char *value = trimmed_copy(eq + 1, value_end(eq + 1, content_end));
        if (!key || !value) {
            free(key);
            free_value(value);
            goto no_memory;
        }
        if (!key[0]) {
            free(key);
            free_value(value);
            last_was_entry = 0;
            continue;
        }
        in_sub_properties = value[0] == '\0';
        if (add_entry(ini, current, key, value) != 0)
            goto no_memory;
        last_was_entry = 1;
    }
    return ini;

no_memory:
    ini_free(ini);
    aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory parsing an AWS config file");
    return NULL;
}

/* Largest config/credentials file we read; real ones are a few KiB. */
#define INI_MAX_FILE (4u << 20)

ini_file *ini_load(const char *path, aws_error *err)
{
    aws_error_clear(err);
    if (!path || !*path)
        return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return NULL;
        aws_error_set(err, AWS_ERR_CONFIG, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    /* One buffer of the file's size, filled by read() without stdio: no grown copies, no stdio
     * buffer and no stack chunk ever hold the secrets, and the one buffer is wiped after parsing. */
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > INI_MAX_FILE) {
        close(fd);
        aws_error_set(err, AWS_ERR_CONFIG, "%s is not a regular file of at most %u bytes", path, INI_MAX_FILE);
        return NULL;
    }
    size_t cap = (size_t)st.st_size, len = 0;
    char *text = malloc(cap + 1);
    if (!text) {
        close(fd);
        aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory reading %s", path);
        return NULL;
    }
    int read_errno = 0;
    while (len < cap) {
        ssize_t n = read(fd, text + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            read_errno = errno;
        if (n <= 0)
            break;   /* a file that shrank meanwhile: parse what is there */
        len += (size_t)n;
    }
    close(fd);
    ini_file *ini = NULL;
    if (read_errno)
        aws_error_set(err, AWS_ERR_CONFIG, "cannot read %s: %s", path, strerror(read_errno));
    else
        ini = ini_parse(text, len, err);
    explicit_bzero(text, cap + 1);
    free(text);
    return ini;
}

void ini_free(ini_file *ini)
{
    if (!ini)
        return;
    for (size_t i = 0; i < ini->entry_count; i++) {
        free(ini->entries[i].key);
        free_value(ini->entries[i].value);
    }
    for (size_t i = 0; i < ini->section_count; i++)
        free(ini->sections[i]);
    free(ini->entries);
    free(ini->sections);
    free(ini);
}

int ini_has_section(const ini_file *ini, const char *section)
{
    return section && find_section(ini, section) != NULL;
}

const char *ini_get(const ini_file *ini, const char *section, const char *key)
{
    if (!section || !key)
        return NULL;
    ini_entry *e = find_entry(ini, section, key);
    return e ? e->value : NULL;
}

const char *ini_config_profile_section(const ini_file *ini, const char *profile)
{
    if (!profile || !*profile)
        return NULL;
    char name[300];
    snprintf(name, sizeof(name), "profile %s", profile);
    const char *found = find_section(ini, name);
    if (!found && strcmp(profile, "default") == 0)
        found = find_section(ini, "default");
    return found;
}
