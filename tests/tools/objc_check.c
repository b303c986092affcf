/* Drives every object_client call of the real S3 client (objc_new_s3) against a live endpoint, one
 * call per invocation, so integration scripts can check each result independently (boto3, awscli).
 * The session comes from the environment (AWS_ENDPOINT_URL, AWS_REGION, credentials); the bucket from
 * S3CSEFS_TEST_BUCKET. On failure it prints "ERROR <kind> <http status> <code>: <message>" on stderr and
 * exits 3. S3CSEFS_COPY_THRESHOLD / S3CSEFS_COPY_PART_SIZE tune the multipart copy path.
 *
 *   objc_check put KEY FILE [name=value...]        objc_check head KEY
 *   objc_check get KEY OFFSET LEN OUTFILE          objc_check mpu KEY FILE PART_SIZE [name=value...]
 *   objc_check get-if-match KEY ETAG OFFSET LEN OUTFILE
 *   objc_check mpu-create KEY                      objc_check mpu-abort KEY UPLOAD_ID
 *   objc_check mpu-list PREFIX                     objc_check list PREFIX DELIMITER|- MAX_KEYS
 *   objc_check copy SRC DST copy|replace [name=value...]
 *   objc_check delete KEY                          objc_check delete-many   (keys on stdin, one a line)
 *   objc_check stats-put KEY SIZE                  (put SIZE bytes, print the request counters)
 *   objc_check parallel-put PREFIX COUNT SIZE THREADS   (PREFIX<i>, byte j = (i + 31 j) mod 251)
 *   objc_check stream-put KEY FILE                 (PUT through http_execute with a streamed, rewindable
 *                                                   body in 1000-byte reads: tests the HTTP layer itself)
 *   objc_check callback-get KEY reset|noreset      (GET through http_execute into a callback sink, with or
 *                                                   without sink_reset; prints attempts, resets, bytes) */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aws_session.h"
#include "http.h"
#include "object_client.h"
#include "s3_client.h"
#include "s3_url.h"

static int fail(const aws_error *err)
{
    fprintf(stderr, "ERROR %s %d %s: %s\n", aws_err_kind_name(err->kind), err->http_status,
            err->code[0] ? err->code : "-", err->message);
    return 3;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        perror(path);
        if (f)
            fclose(f);
        return NULL;
    }
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    *len = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    return buf;
}

static int parse_metadata(int argc, char **argv, kv_list *md)
{
    kv_list_init(md);
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            return -1;
        *eq = '\0';
        if (kv_list_add(md, argv[i], eq + 1) != 0)
            return -1;
    }
    return 0;
}

static int cmd_mpu(object_client *c, const char *key, const char *path, size_t part_size, kv_list *md,
                   aws_error *err)
{
    size_t len;
    uint8_t *data = read_file(path, &len);
    if (!data || part_size == 0)
        return 2;
    char *id = NULL;
    int rc = c->ops->mpu_create(c, key, md, &id, err);
    if (rc)
        return fail(err);
    size_t count = (len + part_size - 1) / part_size;
    objc_part *parts = calloc(count ? count : 1, sizeof *parts);
    for (size_t i = 0; i < count && rc == 0; i++) {
        size_t n = len - i * part_size < part_size ? len - i * part_size : part_size;
        rc = c->ops->mpu_upload_part(c, key, id, (int)i + 1, data + i * part_size, n, &parts[i], err);
        if (rc == 0)
            printf("part %d %s %s\n", parts[i].part_number, parts[i].etag, parts[i].checksum_crc32c);
    }
    if (rc == 0)
        rc = c->ops->mpu_complete(c, key, id, parts, count, err);
    printf("upload_id %s\n", id);
    free(parts);
    free(id);
    free(data);
    return rc ? fail(err) : 0;
}

typedef struct {
    const uint8_t *data;
    size_t len, pos;
    int rewinds;
} stream_body;

static ssize_t stream_read(void *ctx, uint8_t *buf, size_t cap)
{
    stream_body *b = ctx;
    size_t n = b->len - b->pos < cap ? b->len - b->pos : cap;
    if (n > 1000)
        n = 1000;
    memcpy(buf, b->data + b->pos, n);
    b->pos += n;
    return (ssize_t)n;
}

static int stream_rewind(void *ctx)
{
    stream_body *b = ctx;
    b->pos = 0;
    b->rewinds++;
    return 0;
}

static int cmd_stream_put(aws_session *session, const char *bucket, const char *key, const char *path,
                          aws_error *err)
{
    size_t len;
    uint8_t *data = read_file(path, &len);
    char *endpoint = NULL, *wire_path = NULL;
    if (!data || s3_build_target(aws_session_endpoint(session, "s3"), bucket, key,
                                 aws_session_use_path_style(session, bucket), &endpoint, &wire_path) != 0) {
        free(data);
        return 2;
    }
    stream_body body = {.data = data, .len = len};
    http_sigv4_signer signer = {.session = session, .service = "s3", .region = session->config.region,
                                .payload_hash = "UNSIGNED-PAYLOAD", .add_content_sha256_header = 1};
    http_request req = {.method = "PUT", .endpoint = endpoint, .path = wire_path, .body_len = len,
                        .body_read = stream_read, .body_rewind = stream_rewind, .body_ctx = &body,
                        .sink = HTTP_SINK_DISCARD, .sign = http_sign_sigv4, .sign_ctx = &signer,
                        .service_name = "S3"};
    http_response resp;
    http_response_init(&resp);
    int rc = http_execute(session->http, &req, &resp, err);
    printf("attempts %d rewinds %d\n", resp.attempts, body.rewinds);
    http_response_free(&resp);
    free(endpoint);
    free(wire_path);
    free(data);
    return rc ? fail(err) : 0;
}

/* A callback sink that counts what it holds; a reset starts it over. */
typedef struct {
    size_t bytes;
    int resets;
    uint8_t first[64];
} counting_sink;

static int counting_write(void *ctx, const uint8_t *data, size_t len)
{
    counting_sink *sink = ctx;
    for (size_t i = 0; i < len && sink->bytes + i < sizeof sink->first; i++)
        sink->first[sink->bytes + i] = data[i];
    sink->bytes += len;
    return 0;
}

static int counting_reset(void *ctx)
{
    counting_sink *sink = ctx;
    sink->bytes = 0;
    sink->resets++;
    return 0;
}

static int cmd_callback_get(aws_session *session, const char *bucket, const char *key, int with_reset,
                            aws_error *err)
{
    char *endpoint = NULL, *wire_path = NULL;
    if (s3_build_target(aws_session_endpoint(session, "s3"), bucket, key,
                        aws_session_use_path_style(session, bucket), &endpoint, &wire_path) != 0)
        return 2;
    counting_sink sink = {0};
    http_sigv4_signer signer = {.session = session, .service = "s3", .region = session->config.region,
                                .payload_hash = "UNSIGNED-PAYLOAD", .add_content_sha256_header = 1};
    http_request req = {.method = "GET", .endpoint = endpoint, .path = wire_path, .sink = HTTP_SINK_CALLBACK,
                        .sink_write = counting_write, .sink_reset = with_reset ? counting_reset : NULL,
                        .sink_ctx = &sink, .sign = http_sign_sigv4, .sign_ctx = &signer, .service_name = "S3"};
    http_response resp;
    http_response_init(&resp);
    int rc = http_execute(session->http, &req, &resp, err);
    printf("attempts %d resets %d bytes %zu first %.*s\n", resp.attempts, sink.resets, sink.bytes,
           (int)(sink.bytes < sizeof sink.first ? sink.bytes : sizeof sink.first), (const char *)sink.first);
    http_response_free(&resp);
    free(endpoint);
    free(wire_path);
    return rc ? fail(err) : 0;
}

typedef struct {
    object_client *c;
    const char *prefix;
    size_t count, size;
    _Atomic size_t next;
    _Atomic int failed;
} parallel_job;

/* Many threads share one client (and its connection pool), as the filesystem's upload workers do. */
static void *parallel_worker(void *arg)
{
    parallel_job *job = arg;
    uint8_t *data = malloc(job->size ? job->size : 1);
    for (size_t i; data && (i = atomic_fetch_add(&job->next, 1)) < job->count;) {
        for (size_t j = 0; j < job->size; j++)
            data[j] = (uint8_t)((i + 31 * j) % 251);
        char key[512];
        snprintf(key, sizeof key, "%s%zu", job->prefix, i);
        aws_error err;
        if (job->c->ops->put(job->c, key, NULL, data, job->size, &err) != 0) {
            fail(&err);
            job->failed = 1;
        }
    }
    free(data);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: see the header of tests/tools/objc_check.c\n");
        return 2;
    }
    const char *bucket = getenv("S3CSEFS_TEST_BUCKET");
    if (!bucket) {
        fprintf(stderr, "S3CSEFS_TEST_BUCKET is not set\n");
        return 2;
    }
    aws_error err;
    aws_config cfg;
    aws_config_defaults(&cfg);
    if (getenv("S3CSEFS_MAX_ATTEMPTS"))
        cfg.max_attempts = atoi(getenv("S3CSEFS_MAX_ATTEMPTS"));
    if (getenv("S3CSEFS_TOTAL_TIMEOUT_MS"))
        cfg.total_timeout_ms = atoi(getenv("S3CSEFS_TOTAL_TIMEOUT_MS"));
    aws_session *session = aws_session_new(&cfg, &err);
    if (!session)
        return fail(&err);
    object_client *c = objc_new_s3(session, bucket, &err);
    if (!c) {
        aws_session_free(session);
        return fail(&err);
    }
    if (getenv("S3CSEFS_COPY_THRESHOLD") || getenv("S3CSEFS_COPY_PART_SIZE"))
        objc_s3_set_copy_tuning(c, strtoull(getenv("S3CSEFS_COPY_THRESHOLD") ?: "0", NULL, 10),
                                strtoull(getenv("S3CSEFS_COPY_PART_SIZE") ?: "0", NULL, 10));
    _Atomic uint64_t requests = 0, retries = 0, errors = 0, sent = 0, received = 0;
    http_counters counters = {&requests, &retries, &errors, &sent, &received};
    objc_s3_set_counters(c, &counters);

    const char *cmd = argv[1];
    int rc = 2;
    kv_list md;
    kv_list_init(&md);
    if (strcmp(cmd, "put") == 0 && argc >= 4) {
        size_t len;
        uint8_t *data = read_file(argv[3], &len);
        if (data && parse_metadata(argc - 4, argv + 4, &md) == 0)
            rc = c->ops->put(c, argv[2], &md, data, len, &err) ? fail(&err) : 0;
        free(data);
    } else if (strcmp(cmd, "head") == 0 && argc == 3) {
        objc_head h;
        if (c->ops->head(c, argv[2], &h, &err) == 0) {
            printf("size %" PRIu64 "\netag %s\nlast_modified %lld\n", h.size, h.etag, (long long)h.last_modified);
            for (size_t i = 0; i < h.metadata.count; i++)
                printf("meta %s=%s\n", h.metadata.items[i].name, h.metadata.items[i].value);
            objc_head_free(&h);
            rc = 0;
        } else {
            rc = fail(&err);
        }
    } else if ((strcmp(cmd, "get") == 0 && argc == 6) || (strcmp(cmd, "get-if-match") == 0 && argc == 7)) {
        const char *etag = argc == 7 ? argv[3] : NULL;
        char **rest = argv + (argc == 7 ? 4 : 3);
        size_t len = strtoull(rest[1], NULL, 10), got = 0;
        uint64_t offset = strtoull(rest[0], NULL, 10);
        uint8_t *buf = malloc(len ? len : 1);
        int got_rc = etag ? c->ops->get_range_if_match(c, argv[2], etag, offset, len, buf, &got, &err)
                          : c->ops->get_range(c, argv[2], offset, len, buf, &got, &err);
        if (got_rc == 0) {
            FILE *f = fopen(rest[2], "wb");
            rc = f && fwrite(buf, 1, got, f) == got ? 0 : 2;
            if (f)
                fclose(f);
            printf("got %zu\n", got);
        } else {
            rc = fail(&err);
        }
        free(buf);
    } else if (strcmp(cmd, "mpu") == 0 && argc >= 5) {
        if (parse_metadata(argc - 5, argv + 5, &md) == 0)
            rc = cmd_mpu(c, argv[2], argv[3], strtoull(argv[4], NULL, 10), &md, &err);
    } else if (strcmp(cmd, "mpu-create") == 0 && argc == 3) {
        char *id = NULL;
        rc = c->ops->mpu_create(c, argv[2], NULL, &id, &err) ? fail(&err) : (printf("%s\n", id), 0);
        free(id);
    } else if (strcmp(cmd, "mpu-abort") == 0 && argc == 4) {
        rc = c->ops->mpu_abort(c, argv[2], argv[3], &err) ? fail(&err) : 0;
    } else if (strcmp(cmd, "mpu-list") == 0 && argc == 3) {
        objc_upload *ups = NULL;
        size_t n = 0;
        if (c->ops->mpu_list(c, argv[2], &ups, &n, &err) == 0) {
            for (size_t i = 0; i < n; i++)
                printf("U %s %s\n", ups[i].upload_id, ups[i].key);
            objc_uploads_free(ups, n);
            rc = 0;
        } else {
            rc = fail(&err);
        }
    } else if (strcmp(cmd, "list") == 0 && argc == 5) {
        const char *delim = strcmp(argv[3], "-") == 0 ? NULL : argv[3];
        char *token = NULL;
        int pages = 0;
        rc = 0;
        do {
            objc_list_page page;
            if (c->ops->list_page(c, argv[2], delim, token, atoi(argv[4]), &page, &err) != 0) {
                rc = fail(&err);
                break;
            }
            pages++;
            for (size_t i = 0; i < page.object_count; i++)
                printf("K %" PRIu64 " %s\n", page.objects[i].size, page.objects[i].key);
            for (size_t i = 0; i < page.prefix_count; i++)
                printf("P %s\n", page.prefixes[i]);
            free(token);
            token = page.next_token;
            page.next_token = NULL;
            objc_list_page_free(&page);
        } while (token);
        free(token);
        printf("pages %d\n", pages);
    } else if (strcmp(cmd, "copy") == 0 && argc >= 5) {
        objc_metadata_directive d = strcmp(argv[4], "replace") == 0 ? OBJC_METADATA_REPLACE : OBJC_METADATA_COPY;
        if (parse_metadata(argc - 5, argv + 5, &md) == 0)
            rc = c->ops->copy(c, argv[2], argv[3], d, &md, &err) ? fail(&err) : 0;
    } else if (strcmp(cmd, "delete") == 0 && argc == 3) {
        rc = c->ops->delete_object(c, argv[2], &err) ? fail(&err) : 0;
    } else if (strcmp(cmd, "delete-many") == 0 && argc == 2) {
        char **keys = NULL;
        size_t n = 0, cap = 0;
        char line[2048];
        while (fgets(line, sizeof line, stdin)) {
            line[strcspn(line, "\n")] = '\0';
            if (n == cap)
                keys = realloc(keys, (cap = cap ? cap * 2 : 64) * sizeof *keys);
            keys[n++] = strdup(line);
        }
        rc = c->ops->delete_objects(c, (const char *const *)keys, n, &err) ? fail(&err) : 0;
        for (size_t i = 0; i < n; i++)
            free(keys[i]);
        free(keys);
    } else if (strcmp(cmd, "parallel-put") == 0 && argc == 6) {
        parallel_job job = {.c = c, .prefix = argv[2], .count = strtoull(argv[3], NULL, 10),
                            .size = strtoull(argv[4], NULL, 10)};
        int threads = atoi(argv[5]);
        pthread_t tids[64];
        if (threads < 1 || threads > 64)
            threads = 4;
        for (int t = 0; t < threads; t++)
            pthread_create(&tids[t], NULL, parallel_worker, &job);
        for (int t = 0; t < threads; t++)
            pthread_join(tids[t], NULL);
        rc = job.failed ? 3 : 0;
    } else if (strcmp(cmd, "callback-get") == 0 && argc == 4) {
        rc = cmd_callback_get(session, bucket, argv[2], strcmp(argv[3], "reset") == 0, &err);
    } else if (strcmp(cmd, "stream-put") == 0 && argc == 4) {
        rc = cmd_stream_put(session, bucket, argv[2], argv[3], &err);
    } else if (strcmp(cmd, "stats-put") == 0 && argc == 4) {
        size_t len = strtoull(argv[3], NULL, 10);
        uint8_t *data = calloc(1, len ? len : 1);
        rc = c->ops->put(c, argv[2], NULL, data, len, &err) ? fail(&err) : 0;
        free(data);
    } else {
        fprintf(stderr, "unknown command or wrong arguments: %s\n", cmd);
    }
    fprintf(stderr, "counters requests=%" PRIu64 " retries=%" PRIu64 " errors=%" PRIu64 " sent=%" PRIu64
                    " received=%" PRIu64 "\n",
            (uint64_t)requests, (uint64_t)retries, (uint64_t)errors, (uint64_t)sent, (uint64_t)received);
    kv_list_free(&md);
    objc_free(c);
    aws_session_free(session);
    return rc;
}
