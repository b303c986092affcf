/* The in-memory object_client's ListObjectsV2 (see objc_memory_store.h): byte-ordered pages with a
 * delimiter, CommonPrefixes counting toward max-keys, and opaque continuation tokens. */
#include "objc_memory_store.h"

/* ---- ListObjectsV2 ---- */

/* The continuation token is opaque to callers; here it names the last entry returned, marked as a key
 * ('K') or a common prefix ('P'), hex-encoded so no caller is tempted to parse it. */
static char *encode_token(char kind, const char *entry)
{
    size_t n = strlen(entry);
    char *token = malloc(2 * n + 2);
    if (!token)
        return NULL;
    token[0] = kind;
    mem_hex_of((const uint8_t *)entry, n, token + 1);
    return token;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static char *decode_token(const char *token, char *kind)
{
    size_t n = strlen(token);
    if (n < 1 || (token[0] != 'K' && token[0] != 'P') || (n - 1) % 2 != 0)
        return NULL;
    char *entry = malloc((n - 1) / 2 + 1);
    if (!entry)
        return NULL;
    for (size_t i = 0; i < (n - 1) / 2; i++) {
        int hi = hex_value(token[1 + 2 * i]), lo = hex_value(token[2 + 2 * i]);
        if (hi < 0 || lo < 0) {
            free(entry);
            return NULL;
        }
        entry[i] = (char)(hi << 4 | lo);
    }
    entry[(n - 1) / 2] = '\0';
    *kind = token[0];
    return entry;
}

typedef struct {
    objc_list_page *page;
    size_t object_cap, prefix_cap;
} page_builder;

static int page_add_object(page_builder *b, const mem_object *o)
{
    objc_list_page *p = b->page;
    if (p->object_count == b->object_cap) {
        size_t cap = b->object_cap ? b->object_cap * 2 : 32;
        objc_entry *grown = realloc(p->objects, cap * sizeof *grown);
        if (!grown)
            return -1;
        p->objects = grown;
        b->object_cap = cap;
    }
    objc_entry *e = &p->objects[p->object_count];
    memset(e, 0, sizeof *e);
    e->key = strdup(o->key);
    if (!e->key)
        return -1;
    e->size = o->len;
    snprintf(e->etag, sizeof e->etag, "%s", o->etag);
    e->last_modified = o->last_modified;
    p->object_count++;
    return 0;
}

static int page_add_prefix(page_builder *b, const char *key, size_t len)
{
    objc_list_page *p = b->page;
    if (p->prefix_count == b->prefix_cap) {
        size_t cap = b->prefix_cap ? b->prefix_cap * 2 : 16;
        char **grown = realloc(p->prefixes, cap * sizeof *grown);
        if (!grown)
            return -1;
        p->prefixes = grown;
        b->prefix_cap = cap;
    }
    char *s = strndup(key, len);
    if (!s)
        return -1;
    p->prefixes[p->prefix_count++] = s;
    return 0;
}

static void free_page(objc_list_page *p)
{
    for (size_t i = 0; i < p->object_count; i++)
        free(p->objects[i].key);
    free(p->objects);
    for (size_t i = 0; i < p->prefix_count; i++)
        free(p->prefixes[i]);
    free(p->prefixes);
    free(p->next_token);
    memset(p, 0, sizeof *p);
}

/* Caller holds the lock. */
static int build_page(memory_client *m, const char *prefix, const char *delimiter, const char *resume_after,
                      char resume_kind, int max_keys, objc_list_page *out)
{
    page_builder b = { .page = out };
    size_t prefix_len = strlen(prefix);
    size_t delim_len = delimiter ? strlen(delimiter) : 0;
    size_t i = mem_lower_bound(m, resume_after && strcmp(resume_after, prefix) > 0 ? resume_after : prefix);
    /* The last common prefix emitted (or resumed after): keys under it are rolled up into it. */
    const char *rolled = resume_kind == 'P' ? resume_after : NULL;
    size_t rolled_len = rolled ? strlen(rolled) : 0;
    int emitted = 0;
    char last_kind = 0;
    const char *last_entry = "";

    for (; i < m->object_count; i++) {
        const mem_object *o = &m->objects[i];
        if (strncmp(o->key, prefix, prefix_len) != 0)
            break;   /* sorted: no later key has the prefix */
        if (resume_kind == 'K' && strcmp(o->key, resume_after) <= 0)
            continue;
        if (rolled && strncmp(o->key, rolled, rolled_len) == 0)
            continue;
        const char *cut = delim_len ? strstr(o->key + prefix_len, delimiter) : NULL;
        if (emitted == max_keys) {
            /* A further entry exists: the page is truncated after the last one returned. */
            out->next_token = encode_token(last_kind, last_entry);
            return out->next_token ? 0 : -1;
        }
        if (cut) {
            size_t len = (size_t)(cut - o->key) + delim_len;
            if (page_add_prefix(&b, o->key, len) != 0)
                return -1;
            rolled = out->prefixes[out->prefix_count - 1];
            rolled_len = len;
            last_kind = 'P';
            last_entry = rolled;
        } else {
            if (page_add_object(&b, o) != 0)
                return -1;
            last_kind = 'K';
            last_entry = out->objects[out->object_count - 1].key;
        }
        emitted++;
    }
    return 0;
}

int mem_list_page(object_client *c, const char *prefix, const char *delimiter, const char *token,
                         int max_keys, objc_list_page *out, aws_error *err)
{
    memory_client *m = mem_client_of(c);
    if (!out)
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "list_page: no output");
    memset(out, 0, sizeof *out);
    if (max_keys <= 0 || max_keys > S3_MAX_LIST_KEYS)
        max_keys = S3_MAX_LIST_KEYS;   /* S3's default and ceiling */
    char resume_kind = 0;
    char *resume_after = NULL;
    if (token && *token) {
        resume_after = decode_token(token, &resume_kind);
        if (!resume_after) {
            pthread_mutex_lock(&m->lock);
            m->counts.list++;
            m->counts.failed++;
            pthread_mutex_unlock(&m->lock);
            return fail(err, AWS_ERR_SERVICE, 400, "InvalidArgument", "The continuation token provided is incorrect");
        }
    }
    pthread_mutex_lock(&m->lock);
    m->counts.list++;
    int rc = build_page(m, prefix ? prefix : "", delimiter && *delimiter ? delimiter : NULL, resume_after,
                        resume_kind, max_keys, out);
    if (rc != 0) {
        free_page(out);
        rc = mem_fail_no_memory(err);
    }
    mem_counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    free(resume_after);
    if (rc == 0)
        mem_clear_error(err);
    return rc;
}
