/* AWS Signature Version 4: canonical request, string to sign, derived signing keys (cached per date,
 * region, service and secret), the Authorization header value and presigned URLs.
 *
 * Path rules: with normalize_path=1 (every service but S3) the path is normalized (empty and "."
 * segments dropped, ".." resolved) and then URI-encoded once more, as AWS specifies for generic
 * services. With normalize_path=0 (S3) the path is signed exactly as sent; only bytes that may not
 * appear in a URI path unencoded are percent-encoded, so an already-encoded S3 key is left alone.
 * Query parameters are decoded and re-encoded (RFC 3986 unreserved kept), then sorted. */
#include "sigv4.h"
#include "aws_text.h"
#include "secure_mem.h"
#include "text_buf.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Frees text that may contain the session token (canonical headers/request), wiped first. */
static void free_wiped(char *text)
{
    if (text) {
        secure_wipe(text, strlen(text));
        free(text);
    }
}

/* ---- encoding ---- */

/* RFC 3986 unreserved characters, ASCII only: isalnum() would follow the locale. */
static int is_unreserved(unsigned char c)
{
    return aws_ascii_alnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

static void sb_append_pct(text_buf *sb, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    char enc[3] = { '%', hex[c >> 4], hex[c & 15] };
    text_buf_append_n(sb, enc, 3);
}

static void sb_append_encoded(text_buf *sb, const char *s, size_t len, int encode_slash)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (c == '/' && !encode_slash))
            text_buf_append_char(sb, (char)c);
        else
            sb_append_pct(sb, c);
    }
}

char *aws_uri_encode(const char *s, size_t len, int encode_slash)
{
    text_buf sb = { 0 };
    if (!s)
        return NULL;
    sb_append_encoded(&sb, s, len, encode_slash);
    return text_buf_finish(&sb);
}

/* Percent-decodes (no '+' to space: this is URI, not form, decoding). Invalid escapes stay literal. */
static char *uri_decode(const char *s, size_t len, size_t *out_len)
{
    return aws_percent_decode(s, len, 0, 0, out_len);
}

/* ---- hashing ---- */

static void to_hex(const unsigned char *bytes, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 15];
    }
    out[2 * len] = '\0';
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char digest[32];
    unsigned int digest_len = 0;
    if (!EVP_Digest(data, len, digest, &digest_len, EVP_sha256(), NULL) || digest_len != 32) {
        /* Only on an OpenSSL internal failure; an empty string can never match a real hash. */
        out[0] = '\0';
        return;
    }
    to_hex(digest, 32, out);
}

static int hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                       unsigned char out[32])
{
    unsigned int out_len = 0;
    if (!HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, out, &out_len) || out_len != 32)
        return -1;
    return 0;
}

/* ---- canonical parts ---- */

void sigv4_format_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static void append_canonical_path(text_buf *sb, const char *path, int normalize)
{
    if (!path || !*path)
        path = "/";
    if (!normalize) {
        /* S3: as sent; encode only what cannot be on the wire as is. */
        size_t len = strlen(path);
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)path[i];
            if (is_unreserved(c) || c == '/')
                text_buf_append_char(sb, (char)c);
            else if (c == '%' && i + 2 < len && aws_hex_value((unsigned char)path[i + 1]) >= 0 &&
                     aws_hex_value((unsigned char)path[i + 2]) >= 0)
                text_buf_append_char(sb, '%');
            else
                sb_append_pct(sb, c);
        }
        return;
    }

    /* Remove dot segments and empty segments, then encode each kept segment. */
    size_t path_len = strlen(path);
    const char **segs = malloc(sizeof(*segs) * (path_len + 1));
    size_t *seg_lens = malloc(sizeof(*seg_lens) * (path_len + 1));
    if (!segs || !seg_lens) {
        free(segs);
        free(seg_lens);
        sb->failed = 1;
        return;
    }
    size_t nseg = 0;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        const char *start = p;
        while (*p && *p != '/')
            p++;
        size_t n = (size_t)(p - start);
        if (n == 0 || (n == 1 && start[0] == '.'))
            continue;
        if (n == 2 && start[0] == '.' && start[1] == '.') {
            if (nseg)
                nseg--;
            continue;
        }
        segs[nseg] = start;
        seg_lens[nseg] = n;
        nseg++;
    }
    for (size_t i = 0; i < nseg; i++) {
        text_buf_append_char(sb, '/');
        sb_append_encoded(sb, segs[i], seg_lens[i], 1);
    }
    if (nseg == 0 || path[path_len - 1] == '/')
        text_buf_append_char(sb, '/');
    free(segs);
    free(seg_lens);
}

typedef struct {
    char *name;     /* encoded */
    char *value;    /* encoded */
} query_param;

static int compare_params(const void *a, const void *b)
{
    const query_param *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static char *encode_component(const char *s, size_t len)
{
    size_t decoded_len = 0;
    char *decoded = uri_decode(s, len, &decoded_len);
    if (!decoded)
        return NULL;
    char *encoded = aws_uri_encode(decoded, decoded_len, 1);
    free(decoded);
    return encoded;
}

static void append_canonical_query(text_buf *sb, const char *query)
{
    if (!query || !*query)
        return;
    size_t max_params = 1;
    for (const char *q = query; *q; q++)
        max_params += *q == '&';
    query_param *params = calloc(max_params, sizeof(*params));
    if (!params) {
        sb->failed = 1;
        return;
    }
    size_t count = 0;
    const char *p = query;
    while (*p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len) {
            const char *eq = memchr(p, '=', len);
            size_t name_len = eq ? (size_t)(eq - p) : len;
            params[count].name = encode_component(p, name_len);
            params[count].value = eq ? encode_component(eq + 1, len - name_len - 1) : strdup("");
            count++;
            if (!params[count - 1].name || !params[count - 1].value)
                sb->failed = 1;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    if (!sb->failed) {
        qsort(params, count, sizeof(*params), compare_params);
        for (size_t i = 0; i < count; i++) {
            if (i)
                text_buf_append_char(sb, '&');
            text_buf_append(sb, params[i].name);
            text_buf_append_char(sb, '=');
            text_buf_append(sb, params[i].value);
        }
    }
    for (size_t i = 0; i < count; i++) {
        free(params[i].name);
        free_wiped(params[i].value);
    }
    free(params);
}

typedef struct {
    char *name;            /* lower case */
    const char *value;
    size_t order;          /* original position, so duplicate names keep their order */
} header_ref;

static int compare_headers(const void *a, const void *b)
{
    const header_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Value trimmed, every run of whitespace (including folded lines) turned into one space. */
static void append_header_value(text_buf *sb, const char *value)
{
    int pending_space = 0, started = 0;
    for (const char *v = value ? value : ""; *v; v++) {
        if (isspace((unsigned char)*v)) {
            pending_space = started;
            continue;
        }
        if (pending_space)
            text_buf_append_char(sb, ' ');
        pending_space = 0;
        started = 1;
        text_buf_append_char(sb, *v);
    }
}

/* Appends "name:value\n" lines to canon and "a;b;c" to signed_names. */
static void append_canonical_headers(text_buf *canon, text_buf *signed_names, const kv_list *headers)
{
    size_t n = headers ? headers->count : 0;
    if (n == 0)
        return;
    header_ref *refs = calloc(n, sizeof(*refs));
    if (!refs) {
        canon->failed = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        refs[i].name = strdup(headers->items[i].name ? headers->items[i].name : "");
        refs[i].value = headers->items[i].value;
        refs[i].order = i;
        if (!refs[i].name) {
            canon->failed = 1;
            continue;
        }
        for (char *c = refs[i].name; *c; c++)
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + ('a' - 'A') : *c);   /* ASCII, not locale */
    }
    if (!canon->failed) {
        qsort(refs, n, sizeof(*refs), compare_headers);
        for (size_t i = 0; i < n; i++) {
            int continues_previous = i > 0 && strcmp(refs[i].name, refs[i - 1].name) == 0;
            if (continues_previous) {
                text_buf_append_char(canon, ',');
            } else {
                if (i > 0) {
                    text_buf_append_char(canon, '\n');
                    text_buf_append_char(signed_names, ';');
                }
                text_buf_append(canon, refs[i].name);
                text_buf_append_char(canon, ':');
                text_buf_append(signed_names, refs[i].name);
            }
            append_header_value(canon, refs[i].value);
        }
        text_buf_append_char(canon, '\n');
    }
    for (size_t i = 0; i < n; i++)
        free(refs[i].name);
    free(refs);
    if (signed_names->failed)
        canon->failed = 1;
}

static char *signed_header_names(const kv_list *headers)
{
    text_buf canon = { 0 }, names = { 0 };
    append_canonical_headers(&canon, &names, headers);
    free_wiped(canon.data);
    if (canon.failed) {
        free(names.data);
        return NULL;
    }
    return text_buf_finish(&names);
}

char *sigv4_canonical_request(const sigv4_request *req)
{
    if (!req || !req->method)
        return NULL;
    text_buf sb = { 0 }, names = { 0 };
    text_buf_append(&sb, req->method);
    text_buf_append_char(&sb, '\n');
    append_canonical_path(&sb, req->path, req->normalize_path);
    text_buf_append_char(&sb, '\n');
    append_canonical_query(&sb, req->query);
    text_buf_append_char(&sb, '\n');
    append_canonical_headers(&sb, &names, req->headers);
    text_buf_append_char(&sb, '\n');
    if (names.failed)
        sb.failed = 1;
    else if (names.data)
        text_buf_append(&sb, names.data);
    free(names.data);
    text_buf_append_char(&sb, '\n');
    text_buf_append(&sb, req->payload_hash ? req->payload_hash : EMPTY_SHA256);
    return text_buf_finish(&sb);
}

static int format_scope(const sigv4_request *req, char *out, size_t cap)
{
    char amz_date[17];
    sigv4_format_amz_date(req->now, amz_date);
    int n = snprintf(out, cap, "%.8s/%s/%s/aws4_request", amz_date, req->region, req->service);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

char *sigv4_string_to_sign(const sigv4_request *req, const char *canonical_request)
{
    if (!req || !canonical_request || !req->region || !req->service)
        return NULL;
    char amz_date[17], scope[256], hash[65];
    sigv4_format_amz_date(req->now, amz_date);
    if (format_scope(req, scope, sizeof(scope)) != 0)
        return NULL;
    sigv4_sha256_hex(canonical_request, strlen(canonical_request), hash);
    if (!hash[0])
        return NULL;
    text_buf sb = { 0 };
    text_buf_append(&sb, SIGV4_ALGORITHM "\n");
    text_buf_append(&sb, amz_date);
    text_buf_append_char(&sb, '\n');
    text_buf_append(&sb, scope);
    text_buf_append_char(&sb, '\n');
    text_buf_append(&sb, hash);
    return text_buf_finish(&sb);
}

/* ---- signing keys ---- */

#define KEY_CACHE_SLOTS 8

typedef struct {
    int used;
    uint64_t last_use;
    char date[9];
    char region[64];
    char service[32];
    unsigned char secret_hash[32];     /* the secret itself is never kept here */
    unsigned char key[32];
} key_cache_slot;

struct sigv4_key_cache {
    pthread_mutex_t lock;
    uint64_t clock;
    secure_buf *slots_mem;      /* the derived keys sign for a whole day: locked, not dumped, wiped */
    key_cache_slot *slots;
};

sigv4_key_cache *sigv4_key_cache_new(void)
{
    sigv4_key_cache *cache = calloc(1, sizeof(*cache));
    if (!cache)
        return NULL;
    cache->slots_mem = secure_buf_new(KEY_CACHE_SLOTS * sizeof(key_cache_slot));
    if (!cache->slots_mem || pthread_mutex_init(&cache->lock, NULL) != 0) {
        secure_buf_free(cache->slots_mem);
        free(cache);
        return NULL;
    }
    cache->slots = (key_cache_slot *)cache->slots_mem->bytes;
    return cache;
}

void sigv4_key_cache_free(sigv4_key_cache *cache)
{
    if (!cache)
        return;
    pthread_mutex_destroy(&cache->lock);
    secure_buf_free(cache->slots_mem);
    OPENSSL_cleanse(cache, sizeof(*cache));
    free(cache);
}

static int derive_signing_key(const char *secret, const char *date, const char *region, const char *service,
                              unsigned char out[32])
{
    size_t secret_len = strlen(secret);
    char *prefixed = malloc(secret_len + 5);
    if (!prefixed)
        return -1;
    memcpy(prefixed, "AWS4", 4);
    memcpy(prefixed + 4, secret, secret_len + 1);
    unsigned char k_date[32], k_region[32], k_service[32];
    int rc = hmac_sha256(prefixed, secret_len + 4, date, strlen(date), k_date);
    if (rc == 0)
        rc = hmac_sha256(k_date, 32, region, strlen(region), k_region);
    if (rc == 0)
        rc = hmac_sha256(k_region, 32, service, strlen(service), k_service);
    if (rc == 0)
        rc = hmac_sha256(k_service, 32, "aws4_request", 12, out);
    OPENSSL_cleanse(prefixed, secret_len + 4);
    free(prefixed);
    OPENSSL_cleanse(k_date, sizeof(k_date));
    OPENSSL_cleanse(k_region, sizeof(k_region));
    OPENSSL_cleanse(k_service, sizeof(k_service));
    return rc;
}

static int signing_key(sigv4_key_cache *cache, const char *secret, const char *date, const char *region,
                       const char *service, unsigned char out[32])
{
    if (!cache || strlen(region) >= sizeof(cache->slots[0].region) ||
        strlen(service) >= sizeof(cache->slots[0].service))
        return derive_signing_key(secret, date, region, service, out);

    unsigned char secret_hash[32];
    unsigned int hash_len = 0;
    if (!EVP_Digest(secret, strlen(secret), secret_hash, &hash_len, EVP_sha256(), NULL))
        return -1;

    pthread_mutex_lock(&cache->lock);
    key_cache_slot *victim = &cache->slots[0];
    for (int i = 0; i < KEY_CACHE_SLOTS; i++) {
        key_cache_slot *s = &cache->slots[i];
        if (s->used && strcmp(s->date, date) == 0 && strcmp(s->region, region) == 0 &&
            strcmp(s->service, service) == 0 && CRYPTO_memcmp(s->secret_hash, secret_hash, 32) == 0) {
            s->last_use = ++cache->clock;
            memcpy(out, s->key, 32);
            pthread_mutex_unlock(&cache->lock);
            return 0;
        }
        if (!s->used || (victim->used && s->last_use < victim->last_use))
            victim = s;
    }
    pthread_mutex_unlock(&cache->lock);

    /* Derive outside the lock; two threads may both derive the same key, which is harmless. */
    if (derive_signing_key(secret, date, region, service, out) != 0)
        return -1;

    pthread_mutex_lock(&cache->lock);
    victim->used = 1;
    victim->last_use = ++cache->clock;
    snprintf(victim->date, sizeof(victim->date), "%s", date);
    snprintf(victim->region, sizeof(victim->region), "%s", region);
    snprintf(victim->service, sizeof(victim->service), "%s", service);
    memcpy(victim->secret_hash, secret_hash, 32);
    memcpy(victim->key, out, 32);
    pthread_mutex_unlock(&cache->lock);
    return 0;
}

/* Hex signature of string_to_sign into out[65]. */
static int compute_signature(const sigv4_request *req, const sigv4_credentials *creds, sigv4_key_cache *cache,
                             const char *string_to_sign, char out[65])
{
    char amz_date[17], date[9];
    sigv4_format_amz_date(req->now, amz_date);
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    unsigned char key[32], sig[32];
    if (signing_key(cache, creds->secret_access_key, date, req->region, req->service, key) != 0)
        return -1;
    int rc = hmac_sha256(key, 32, string_to_sign, strlen(string_to_sign), sig);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc != 0)
        return -1;
    to_hex(sig, 32, out);
    return 0;
}

static int credentials_usable(const sigv4_credentials *creds)
{
    return creds && creds->access_key_id && creds->access_key_id[0] && creds->secret_access_key;
}

char *sigv4_authorization(const sigv4_request *req, const sigv4_credentials *creds, sigv4_key_cache *cache)
{
    if (!req || !req->region || !req->service || !credentials_usable(creds))
        return NULL;
    char *canonical = sigv4_canonical_request(req);
    char *to_sign = canonical ? sigv4_string_to_sign(req, canonical) : NULL;
    char *names = canonical ? signed_header_names(req->headers) : NULL;
    char signature[65], scope[256];
    char *result = NULL;
    if (to_sign && names && format_scope(req, scope, sizeof(scope)) == 0 &&
        compute_signature(req, creds, cache, to_sign, signature) == 0) {
        text_buf sb = { 0 };
        text_buf_append(&sb, SIGV4_ALGORITHM " Credential=");
        text_buf_append(&sb, creds->access_key_id);
        text_buf_append_char(&sb, '/');
        text_buf_append(&sb, scope);
        text_buf_append(&sb, ", SignedHeaders=");
        text_buf_append(&sb, names);
        text_buf_append(&sb, ", Signature=");
        text_buf_append(&sb, signature);
        result = text_buf_finish(&sb);
    }
    free_wiped(canonical);
    free(to_sign);
    free(names);
    return result;
}

char *sigv4_presign_url(const char *scheme_host, const sigv4_request *req, const sigv4_credentials *creds,
                        unsigned expires)
{
    if (!scheme_host || !req || !req->region || !req->service || !credentials_usable(creds))
        return NULL;
    char amz_date[17], scope[256], expires_text[16];
    sigv4_format_amz_date(req->now, amz_date);
    if (format_scope(req, scope, sizeof(scope)) != 0)
        return NULL;
    snprintf(expires_text, sizeof(expires_text), "%u", expires);
    char *names = signed_header_names(req->headers);
    if (!names)
        return NULL;

    /* The request's own query plus the X-Amz-* authentication parameters, all signed. */
    text_buf query = { 0 };
    if (req->query && *req->query) {
        text_buf_append(&query, req->query);
        text_buf_append_char(&query, '&');
    }
    text_buf_append(&query, "X-Amz-Algorithm=" SIGV4_ALGORITHM "&X-Amz-Credential=");
    sb_append_encoded(&query, creds->access_key_id, strlen(creds->access_key_id), 1);
    text_buf_append(&query, "%2F");
    sb_append_encoded(&query, scope, strlen(scope), 1);
    text_buf_append(&query, "&X-Amz-Date=");
    text_buf_append(&query, amz_date);
    text_buf_append(&query, "&X-Amz-Expires=");
    text_buf_append(&query, expires_text);
    if (creds->session_token && creds->session_token[0]) {
        text_buf_append(&query, "&X-Amz-Security-Token=");
        sb_append_encoded(&query, creds->session_token, strlen(creds->session_token), 1);
    }
    text_buf_append(&query, "&X-Amz-SignedHeaders=");
    sb_append_encoded(&query, names, strlen(names), 1);
    free(names);
    char *full_query = text_buf_finish(&query);
    if (!full_query)
        return NULL;

    sigv4_request presign = *req;
    presign.query = full_query;
    char *canonical = sigv4_canonical_request(&presign);
    char *to_sign = canonical ? sigv4_string_to_sign(&presign, canonical) : NULL;
    char signature[65];
    char *url = NULL;
    if (to_sign && compute_signature(&presign, creds, NULL, to_sign, signature) == 0) {
        /* The canonical request's second and third lines are the path and sorted query as signed. */
        text_buf sb = { 0 };
        text_buf_append(&sb, scheme_host);
        text_buf_append(&sb, req->path && *req->path ? req->path : "/");
        text_buf_append_char(&sb, '?');
        const char *query_line = strchr(strchr(canonical, '\n') + 1, '\n') + 1;
        text_buf_append_n(&sb, query_line, (size_t)(strchr(query_line, '\n') - query_line));
        text_buf_append(&sb, "&X-Amz-Signature=");
        text_buf_append(&sb, signature);
        url = text_buf_finish(&sb);
    }
    free_wiped(full_query);
    free_wiped(canonical);
    free(to_sign);
    return url;
}
