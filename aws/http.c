/* libcurl handle pool and the retrying request executor (see http.h). One attempt = one curl transfer
 * on a pooled handle (its connections stay alive for the next request); between attempts the policy of
 * http_retry.h decides, and the request is re-signed. */
#include "http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cJSON.h"
#include "credentials.h"
#include "secure_mem.h"
#include "xml.h"

#define ERROR_BODY_MAX (64 * 1024)
#define DEFAULT_IDLE_HANDLES 64
#define TRANSFER_BUFFER (512 * 1024)

struct http_client {
    http_client_config config;
    pthread_mutex_t lock;
    CURL **idle;
    size_t idle_count;
    size_t idle_cap;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;
static void curl_init_once(void) { curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT); }

void http_client_config_from_aws(const aws_config *cfg, http_client_config *out)
{
    memset(out, 0, sizeof *out);
    out->retry.max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 10;
    out->retry.base_delay_ms = cfg->base_delay_ms >= 0 ? cfg->base_delay_ms : 100;
    out->retry.max_delay_ms = cfg->max_delay_ms >= 0 ? cfg->max_delay_ms : 20000;
    out->retry.total_timeout_ms = cfg->total_timeout_ms > 0 ? cfg->total_timeout_ms : 300000;
    out->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000;
    out->low_speed_timeout_s = cfg->low_speed_timeout_s > 0 ? cfg->low_speed_timeout_s : 60;
}

http_client *http_client_new(const http_client_config *cfg, aws_error *err)
{
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_result != CURLE_OK) {
        aws_error_set(err, AWS_ERR_NETWORK, "curl_global_init failed: %s", curl_easy_strerror(curl_init_result));
        return NULL;
    }
    http_client *c = calloc(1, sizeof *c);
    if (!c) {
        aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory creating the HTTP client");
        return NULL;
    }
    c->config = *cfg;
    if (c->config.retry.max_attempts < 1)
        c->config.retry.max_attempts = 1;
    c->idle_cap = cfg->max_idle_handles > 0 ? (size_t)cfg->max_idle_handles : DEFAULT_IDLE_HANDLES;
    c->idle = calloc(c->idle_cap, sizeof *c->idle);
    if (!c->idle) {
        free(c);
        aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory creating the HTTP client");
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void http_client_free(http_client *client)
{
    if (!client)
        return;
    for (size_t i = 0; i < client->idle_count; i++)
        curl_easy_cleanup(client->idle[i]);
    free(client->idle);
    pthread_mutex_destroy(&client->lock);
    free(client);
}

const http_retry_policy *http_client_retry_policy(const http_client *client)
{
    return &client->config.retry;
}

static CURL *pool_take(http_client *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->idle_count)
        h = c->idle[--c->idle_count];
    pthread_mutex_unlock(&c->lock);
    return h ? h : curl_easy_init();
}

/* A handle goes back only after a transfer that left its connection in a known state. */
static void pool_give(http_client *c, CURL *h, int reusable)
{
    if (!h)
        return;
    if (reusable) {
        curl_easy_reset(h);   /* keeps the live connections and DNS cache, drops per-request options */
        pthread_mutex_lock(&c->lock);
        if (c->idle_count < c->idle_cap) {
            c->idle[c->idle_count++] = h;
            h = NULL;
        }
        pthread_mutex_unlock(&c->lock);
    }
    if (h)
        curl_easy_cleanup(h);
}

void http_response_init(http_response *resp)
{
    memset(resp, 0, sizeof *resp);
    kv_list_init(&resp->headers);
}

void http_response_free(http_response *resp)
{
    kv_list_free(&resp->headers);
    if (resp->body)
        secure_wipe(resp->body, resp->body_len);
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    resp->status = 0;
    resp->attempts = 0;
}

static void count(_Atomic uint64_t *counter, uint64_t n)
{
    if (counter)
        atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

/* ---- one attempt ---------------------------------------------------------------------------- */

typedef struct {
    const http_request *req;
    http_response *resp;
    size_t body_sent;            /* memory body offset */
    int status;                  /* from the last status line seen */
    int sink_failed;             /* 1: sink overflow, 2: sink callback refused, 3: out of memory */
    size_t grow_cap;
    char *error_body;            /* non-2xx body, capped */
    size_t error_len;
} attempt_state;

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    attempt_state *st = ud;
    const http_request *req = st->req;
    size_t cap = size * nitems;
    if (req->body_read) {
        ssize_t n = req->body_read(req->body_ctx, (uint8_t *)buf, cap);
        if (n < 0)
            return CURL_READFUNC_ABORT;
        if (req->counters)
            count(req->counters->bytes_sent, (uint64_t)n);
        return (size_t)n;
    }
    size_t left = req->body_len - st->body_sent;
    size_t n = left < cap ? left : cap;
    memcpy(buf, req->body + st->body_sent, n);
    st->body_sent += n;
    if (req->counters)
        count(req->counters->bytes_sent, n);
    return n;
}

static int is_success(int status) { return status >= 200 && status < 300; }

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud)
{
    attempt_state *st = ud;
    const http_request *req = st->req;
    http_response *resp = st->resp;
    size_t n = size * nmemb;
    if (!is_success(st->status)) {
        size_t keep = ERROR_BODY_MAX - st->error_len;
        if (keep > n)
            keep = n;
        if (keep) {
            char *grown = realloc(st->error_body, st->error_len + keep + 1);
            if (!grown)
                return n;   /* an error body we cannot keep only loses detail */
            memcpy(grown + st->error_len, data, keep);
            st->error_len += keep;
            grown[st->error_len] = '\0';
            st->error_body = grown;
        }
        return n;
    }
    switch (req->sink) {
    case HTTP_SINK_GROW:
        if (resp->body_len + n + 1 > st->grow_cap) {
            size_t cap = st->grow_cap ? st->grow_cap : 4096;
            while (cap < resp->body_len + n + 1)
                cap *= 2;
            /* Not realloc: answers may hold secrets (STS credentials), and a moved block would leave
             * a copy behind in freed memory. Copy, wipe, free instead. */
            uint8_t *grown = malloc(cap);
            if (!grown) {
                st->sink_failed = 3;
                return 0;
            }
            if (resp->body) {
                memcpy(grown, resp->body, resp->body_len);
                secure_wipe(resp->body, resp->body_len);
                free(resp->body);
            }
            resp->body = grown;
            st->grow_cap = cap;
        }
        memcpy(resp->body + resp->body_len, data, n);
        resp->body[resp->body_len + n] = '\0';
        break;
    case HTTP_SINK_BUFFER:
        if (n > req->sink_cap - resp->body_len) {
            st->sink_failed = 1;
            return 0;
        }
        memcpy(req->sink_buf + resp->body_len, data, n);
        break;
    case HTTP_SINK_CALLBACK:
        if (req->sink_write(req->sink_ctx, (const uint8_t *)data, n) != 0) {
            st->sink_failed = 2;
            return 0;
        }
        break;
    case HTTP_SINK_DISCARD:
        break;
    }
    resp->body_len += n;
    if (req->counters)
        count(req->counters->bytes_received, n);
    return n;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *ud)
{
    attempt_state *st = ud;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        /* A new status line (after "100 Continue", or a redirect) starts a new header block. */
        const char *sp = memchr(line, ' ', n);
        st->status = sp ? atoi(sp + 1) : 0;
        kv_list_free(&st->resp->headers);
        return n;
    }
    const char *colon = memchr(line, ':', n);
    if (!colon)
        return n;
    size_t name_len = (size_t)(colon - line);
    const char *v = colon + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    char *name = strndup(line, name_len);
    char *value = strndup(v, (size_t)(end - v));
    if (name && value) {
        for (char *p = name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        if (kv_list_add(&st->resp->headers, name, value) != 0)
            st->sink_failed = 3;
    } else {
        st->sink_failed = 3;
    }
    free(name);
    free(value);
    return n;
}

static http_transport_result classify_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return HTTP_TRANSPORT_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
        return HTTP_TRANSPORT_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return HTTP_TRANSPORT_TIMEOUT;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
        return HTTP_TRANSPORT_BROKEN;
    default:
        return HTTP_TRANSPORT_LOCAL;
    }
}

static int add_header(struct curl_slist **list, const char *name, const char *value)
{
    /* A CR or LF inside a name or value would end the header early and smuggle in another one. */
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return -2;
    char *line = NULL;
    int rc = *value ? asprintf(&line, "%s: %s", name, value) : asprintf(&line, "%s;", name);
    if (rc < 0)
        return -1;
    struct curl_slist *grown = curl_slist_append(*list, line);
    free(line);
    if (!grown)
        return -1;
    *list = grown;
    return 0;
}

static int has_header(const kv_list *a, const kv_list *b, const char *name)
{
    return (a && kv_list_get_ci(a, name)) || (b && kv_list_get_ci(b, name));
}

/* Builds the curl header list: the request's own headers, the signer's, and the suppressions that keep
 * curl from adding headers nobody signed or asked for. */
static int build_headers(const http_request *req, const kv_list *signed_headers, struct curl_slist **out)
{
    struct curl_slist *list = NULL;
    const kv_list *lists[2] = {req->headers, signed_headers};
    int rc = -1;
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; lists[l] && i < lists[l]->count; i++)
            if ((rc = add_header(&list, lists[l]->items[i].name, lists[l]->items[i].value)) != 0)
                goto fail;
    rc = -1;
    /* "Name:" with nothing after it removes a header curl would add on its own. */
    if (!(list = curl_slist_append(list, "Expect:")) ||
        (!has_header(req->headers, signed_headers, "accept") && !(list = curl_slist_append(list, "Accept:"))) ||
        (!has_header(req->headers, signed_headers, "content-type") &&
         !(list = curl_slist_append(list, "Content-Type:"))))
        goto fail;
    *out = list;
    return 0;
fail:
    curl_slist_free_all(list);
    return rc;
}

static uint64_t random64(void)
{
    return ((uint64_t)arc4random() << 32) | arc4random();
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The outcome of one attempt, for the retry decision. */
typedef struct {
    http_transport_result transport;
    int kind;                    /* aws_err_kind, 0 on success */
    char curl_message[CURL_ERROR_SIZE];
} attempt_result;

static int is_not_found_code(const char *code)
{
    return strcmp(code, "NoSuchKey") == 0 || strcmp(code, "NoSuchUpload") == 0 ||
           strcmp(code, "NotFoundException") == 0 || strcmp(code, "NotFound") == 0;
}

static void fill_service_error(const http_request *req, const attempt_state *st, aws_error *err)
{
    aws_error_clear(err);
    err->http_status = st->status;
    if (st->error_body)
        http_parse_error_body((const uint8_t *)st->error_body, st->error_len, err);
    if (!err->code[0]) {
        /* HEAD answers carry no body: name the status the way S3 does. */
        const char *code = st->status == 404 ? "NotFound" : st->status == 403 ? "Forbidden"
                         : st->status == 301 ? "PermanentRedirect" : st->status == 307 ? "TemporaryRedirect"
                         : st->status == 400 ? "BadRequest" : st->status == 416 ? "InvalidRange"
                         : st->status == 412 ? "PreconditionFailed"
                         : st->status == 503 ? "ServiceUnavailable" : st->status >= 500 ? "InternalError" : "";
        snprintf(err->code, sizeof err->code, "%s", code);
    }
    if (!err->request_id[0]) {
        const char *rid = kv_list_get(&st->resp->headers, "x-amz-request-id");
        if (!rid)
            rid = kv_list_get(&st->resp->headers, "x-amzn-requestid");
        if (rid)
            snprintf(err->request_id, sizeof err->request_id, "%s", rid);
    }
    /* NoSuchBucket (from a body) stays a service error: a missing bucket is a configuration problem,
     * not an absent file. A HEAD has no body to tell them apart, so its 404 is always NOT_FOUND; the
     * daemon checks the bucket itself at mount time. */
    int not_found = strcmp(err->code, "NoSuchBucket") != 0 &&
                    (st->status == 404 || is_not_found_code(err->code));
    err->kind = not_found ? AWS_ERR_NOT_FOUND : AWS_ERR_SERVICE;
    if (st->status == 412)
        err->kind = AWS_ERR_CHANGED;
    if (!err->message[0])
        snprintf(err->message, sizeof err->message, "%s %s answered HTTP %d",
                 req->service_name ? req->service_name : "service", req->method, st->status);
    /* S3 names the bucket's real region when asked in the wrong one (301/400, even for HEAD). */
    const char *region = kv_list_get(&st->resp->headers, "x-amz-bucket-region");
    if (region && (st->status == 301 || st->status == 400 || st->status == 403)) {
        size_t len = strnlen(err->message, sizeof err->message);
        snprintf(err->message + len, sizeof err->message - len, " (the bucket is in region %s)", region);
    }
}

/* Signed headers carry the session token: wiped before their memory is released. */
static void free_signed_headers(kv_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        if (list->items[i].value)
            secure_wipe(list->items[i].value, strlen(list->items[i].value));
    kv_list_free(list);
}

static void free_header_slist(struct curl_slist *list)
{
    for (struct curl_slist *l = list; l; l = l->next)
        if (l->data)
            secure_wipe(l->data, strlen(l->data));
    curl_slist_free_all(list);
}

/* Every option of one attempt (the handle was reset when taken from the pool). */
static void configure_handle(const http_client *c, CURL *h, const http_request *req, const char *url,
                             struct curl_slist *headers, attempt_state *st, attempt_result *res)
{
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);          /* keys may hold "..", "//": send them verbatim */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->config.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)(c->config.low_speed_timeout_s > 0 ? c->config.low_speed_timeout_s : 60));
    if (req->timeout_ms > 0)
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, (long)TRANSFER_BUFFER);
    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, (long)TRANSFER_BUFFER);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    /* The handle was reset: without this, libcurl would honour the proxy environment variables. */
    if (req->no_proxy)
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, res->curl_message);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, st);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, st);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, st);

    int has_body = req->body || req->body_read || req->body_len;
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(req->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(req->method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
    } else if (strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
        if (has_body) {
            curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
        }
    }
}

/* What the finished transfer means: a transport failure, a sink failure, a service error, a 2xx that
 * fails the request's check, or success (res->kind 0). */
static void classify_attempt(const http_request *req, CURLcode rc, attempt_state *st, http_response *resp,
                             attempt_result *res, aws_error *err)
{
    if (st->sink_failed) {
        res->transport = HTTP_TRANSPORT_LOCAL;
        if (st->sink_failed == 1)
            res->kind = aws_error_set(err, AWS_ERR_INTEGRITY, "%s %s: response body larger than the %zu bytes expected",
                                      req->service_name ? req->service_name : "", req->method, req->sink_cap);
        else if (st->sink_failed == 2)
            res->kind = aws_error_set(err, AWS_ERR_ARGUMENT, "response body consumer refused the data");
        else
            res->kind = aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory receiving a response");
        return;
    }
    if (rc != CURLE_OK) {
        const char *why = res->curl_message[0] ? res->curl_message : curl_easy_strerror(rc);
        aws_err_kind kind = res->transport == HTTP_TRANSPORT_TIMEOUT ? AWS_ERR_TIMEOUT : AWS_ERR_NETWORK;
        if (rc == CURLE_ABORTED_BY_CALLBACK || rc == CURLE_READ_ERROR)
            kind = AWS_ERR_ARGUMENT;
        res->kind = aws_error_set(err, kind, "%s %s %s: %s", req->service_name ? req->service_name : "",
                                  req->method, req->endpoint, why);
        return;
    }
    if (req->accept_status && st->status == req->accept_status)
        return;
    if (!is_success(st->status)) {
        fill_service_error(req, st, err);
        res->kind = err->kind;
        return;
    }
    if (req->check) {
        const uint8_t *body = req->sink == HTTP_SINK_BUFFER ? req->sink_buf : resp->body;
        aws_error_clear(err);
        int kind = req->check(req->check_ctx, body, resp->body_len, err);
        if (kind) {
            err->kind = (aws_err_kind)kind;
            if (!err->http_status)
                err->http_status = st->status;
            res->kind = kind;
        }
    }
}

static void run_attempt(http_client *c, CURL *h, const http_request *req, const kv_list *signed_headers,
                        http_response *resp, attempt_result *res, aws_error *err)
{
    attempt_state st = {.req = req, .resp = resp};
    struct curl_slist *headers = NULL;
    char *url = NULL;
    memset(res, 0, sizeof *res);

    kv_list_free(&resp->headers);
    resp->body_len = 0;
    resp->status = 0;

    int header_rc = build_headers(req, signed_headers, &headers);
    if (header_rc == -2) {
        res->transport = HTTP_TRANSPORT_LOCAL;
        res->kind = aws_error_set(err, AWS_ERR_ARGUMENT, "a header name or value contains CR, LF or ':'");
        goto done;
    }
    if (header_rc != 0 ||
        asprintf(&url, "%s%s%s%s", req->endpoint, req->path, req->query && *req->query ? "?" : "",
                 req->query ? req->query : "") < 0) {
        url = NULL;
        res->transport = HTTP_TRANSPORT_LOCAL;
        res->kind = aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory building a request");
        goto done;
    }

    configure_handle(c, h, req, url, headers, &st, res);
    if (req->counters)
        count(req->counters->requests, 1);
    CURLcode rc = curl_easy_perform(h);
    resp->status = st.status;
    res->transport = classify_curl(rc);
    classify_attempt(req, rc, &st, resp, res, err);
done:
    free(st.error_body);
    free(url);
    free_header_slist(headers);
}

int http_execute(http_client *client, const http_request *req, http_response *resp, aws_error *err)
{
    aws_error local_err;
    if (!err)
        err = &local_err;
    aws_error_clear(err);
    if (!client || !req || !req->method || !req->endpoint || !req->path || !resp)
        return aws_error_set(err, AWS_ERR_ARGUMENT, "http_execute: missing request fields");
    if ((req->sink == HTTP_SINK_BUFFER && !req->sink_buf && req->sink_cap) ||
        (req->sink == HTTP_SINK_CALLBACK && !req->sink_write) || (req->body_len && !req->body && !req->body_read))
        return aws_error_set(err, AWS_ERR_ARGUMENT, "http_execute: inconsistent body or sink");
    const http_retry_policy *policy = req->retry ? req->retry : &client->config.retry;

    int64_t started = now_ms();
    int attempts = 0;
    for (;;) {
        if (attempts > 0 && req->body_read) {
            if (!req->body_rewind || req->body_rewind(req->body_ctx) != 0)
                break;   /* err still holds the failure of the last attempt */
        }
        /* A callback sink already consumed part of a failed answer: it must start over, or we stop. */
        if (attempts > 0 && req->sink == HTTP_SINK_CALLBACK && resp->body_len > 0) {
            if (!req->sink_reset || req->sink_reset(req->sink_ctx) != 0)
                break;
        }
        attempts++;
        if (attempts > 1 && req->counters)
            count(req->counters->retries, 1);
        resp->attempts = attempts;
        if (req->sink == HTTP_SINK_GROW && resp->body) {
            secure_wipe(resp->body, resp->body_len);
            free(resp->body);
            resp->body = NULL;
        }

        kv_list signed_headers;
        kv_list_init(&signed_headers);
        if (req->sign) {
            int kind = req->sign(req->sign_ctx, req, &signed_headers, err);
            if (kind) {
                free_signed_headers(&signed_headers);
                if (req->counters)
                    count(req->counters->errors, 1);
                return kind;
            }
        }
        CURL *h = pool_take(client);
        if (!h) {
            free_signed_headers(&signed_headers);
            return aws_error_set(err, AWS_ERR_NO_MEMORY, "curl_easy_init failed");
        }
        attempt_result res;
        run_attempt(client, h, req, &signed_headers, resp, &res, err);
        free_signed_headers(&signed_headers);
        /* A transfer cut short by us leaves unread data on the connection: do not reuse it. */
        pool_give(client, h, res.transport != HTTP_TRANSPORT_LOCAL);
        if (res.kind == 0) {
            aws_error_clear(err);
            return 0;
        }
        int retryable = http_retry_is_retryable(res.transport, resp->status, err->code);
        int64_t delay = 0;
        if (!http_retry_next(policy, attempts, now_ms() - started, retryable, random64(), &delay))
            break;
        sleep_ms(delay);
    }
    if (attempts > 1 && (err->kind == AWS_ERR_NETWORK || err->kind == AWS_ERR_TIMEOUT)) {
        char suffix[40];
        int n = snprintf(suffix, sizeof suffix, " (after %d attempts)", attempts);
        size_t room = sizeof err->message - 1 - (size_t)n;
        size_t len = strnlen(err->message, room);
        memcpy(err->message + len, suffix, (size_t)n + 1);
    }
    if (req->counters)
        count(req->counters->errors, 1);
    return err->kind ? (int)err->kind : AWS_ERR_SERVICE;
}

/* ---- error bodies ------------------------------------------------------------------------------ */

static void copy_field(char *dst, size_t cap, const char *src)
{
    if (src)
        snprintf(dst, cap, "%s", src);
}

static int parse_json_error(const char *text, size_t len, aws_error *err)
{
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root)
        return 0;
    int found = 0;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "__type");
    if (!cJSON_IsString(type))
        type = cJSON_GetObjectItemCaseSensitive(root, "code");
    if (cJSON_IsString(type) && type->valuestring[0]) {
        /* "com.amazonaws.kms#NotFoundException" -> "NotFoundException"; some services add ":http://..." */
        const char *code = type->valuestring;
        const char *hash = strrchr(code, '#');
        if (hash)
            code = hash + 1;
        snprintf(err->code, sizeof err->code, "%.*s", (int)strcspn(code, ":"), code);
        found = 1;
    }
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(root, "message");
    if (!cJSON_IsString(msg))
        msg = cJSON_GetObjectItemCaseSensitive(root, "Message");
    if (cJSON_IsString(msg))
        copy_field(err->message, sizeof err->message, msg->valuestring);
    cJSON_Delete(root);
    return found;
}

static int parse_xml_error(const char *text, size_t len, aws_error *err)
{
    xml_node *root = xml_parse(text, len, NULL);
    if (!root)
        return 0;
    const xml_node *e = root;
    if (strcmp(root->name, "ErrorResponse") == 0 || strcmp(root->name, "Response") == 0) {
        e = xml_child(root, "Error");
        if (!e) {
            const xml_node *errors = xml_child(root, "Errors");
            e = xml_child(errors, "Error");
        }
    }
    int found = 0;
    if (e && strcmp(e->name, "Error") == 0) {
        const char *code = xml_child_text(e, "Code");
        if (code && *code) {
            copy_field(err->code, sizeof err->code, code);
            found = 1;
        }
        copy_field(err->message, sizeof err->message, xml_child_text(e, "Message"));
        const char *rid = xml_child_text(e, "RequestId");
        if (!rid)
            rid = xml_child_text(root, "RequestId");
        if (!rid)
            rid = xml_child_text(root, "RequestID");
        copy_field(err->request_id, sizeof err->request_id, rid);
    }
    xml_free(root);
    return found;
}

int http_parse_error_body(const uint8_t *body, size_t len, aws_error *err)
{
    const char *text = (const char *)body;
    size_t i = 0;
    while (i < len && isspace((unsigned char)text[i]))
        i++;
    if (i == len)
        return 0;
    if (text[i] == '{')
        return parse_json_error(text + i, len - i, err);
    if (text[i] == '<')
        return parse_xml_error(text + i, len - i, err);
    return 0;
}

/* ---- SigV4 signer -------------------------------------------------------------------------------- */

int http_endpoint_host(const char *endpoint, char *out, size_t cap)
{
    const char *p = strstr(endpoint, "://");
    if (!p)
        return -1;
    int https = (size_t)(p - endpoint) == 5 && strncasecmp(endpoint, "https", 5) == 0;
    p += 3;
    size_t n = strcspn(p, "/?#");
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    for (char *q = out; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    /* Curl sends the Host header without a default port; the signature must cover the same text. */
    char *colon = strrchr(out, ':');
    if (colon && !strchr(colon, ']')) {
        if ((https && strcmp(colon, ":443") == 0) || (!https && strcmp(colon, ":80") == 0))
            *colon = '\0';
    }
    return 0;
}

/* Appends host, x-amz-date, x-amz-content-sha256, x-amz-security-token and the Authorization computed
 * over them and the request's own headers to out. 0 or AWS_ERR_NO_MEMORY. */
static int build_auth_headers(const http_sigv4_signer *s, const http_request *req, const char *host,
                              const sigv4_credentials *sc, const char *payload_hash, kv_list *out)
{
    char amz_date[17];
    time_t now = time(NULL);
    sigv4_format_amz_date(now, amz_date);
    int rc = AWS_ERR_NO_MEMORY;
    kv_list all;   /* the request's headers plus ours: everything that is signed */
    kv_list_init(&all);
    if (req->headers && kv_list_copy(&all, req->headers) != 0)
        goto out;
    if (kv_list_add(out, "host", host) || kv_list_add(out, "x-amz-date", amz_date) ||
        (s->add_content_sha256_header && kv_list_add(out, "x-amz-content-sha256", payload_hash)) ||
        (sc->session_token && *sc->session_token && kv_list_add(out, "x-amz-security-token", sc->session_token)))
        goto out;
    for (size_t i = 0; i < out->count; i++)
        if (kv_list_add(&all, out->items[i].name, out->items[i].value) != 0)
            goto out;
    sigv4_request sr = {
        .method = req->method, .path = req->path, .query = req->query, .headers = &all,
        .payload_hash = payload_hash, .region = s->region, .service = s->service,
        .normalize_path = s->normalize_path, .now = now,
    };
    char *auth = sigv4_authorization(&sr, sc, s->session ? s->session->key_cache : NULL);
    if (!auth)
        goto out;
    rc = kv_list_add(out, "authorization", auth) ? AWS_ERR_NO_MEMORY : 0;
    secure_wipe(auth, strlen(auth));
    free(auth);
out:
    free_signed_headers(&all);
    return rc;
}

int http_sign_sigv4(void *signer_ctx, const http_request *req, kv_list *out, aws_error *err)
{
    const http_sigv4_signer *s = signer_ctx;
    char host[512];
    if (http_endpoint_host(req->endpoint, host, sizeof host) != 0)
        return aws_error_set(err, AWS_ERR_CONFIG, "malformed endpoint URL");

    aws_credentials creds;
    sigv4_credentials sc;
    int fetched = 0;
    if (s->credentials) {
        sc = *s->credentials;
    } else if (!s->session || !s->session->credentials) {
        return aws_error_set(err, AWS_ERR_CREDENTIALS, "no credentials to sign a %s request", s->service);
    } else {
        int kind = credentials_get(s->session->credentials, &creds, err);
        if (kind)
            return kind;
        credentials_as_sigv4(&creds, &sc);
        fetched = 1;
    }

    char payload_hash[65];
    const char *hash = s->payload_hash;
    if (!hash) {
        if (req->body_read) {
            hash = "UNSIGNED-PAYLOAD";
        } else {
            sigv4_sha256_hex(req->body ? (const void *)req->body : "", req->body_len, payload_hash);
            hash = payload_hash;
        }
    }
    int rc = build_auth_headers(s, req, host, &sc, hash, out);
    if (fetched)
        secure_wipe(&creds, sizeof creds);
    if (rc == AWS_ERR_NO_MEMORY)
        aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory signing a request");
    return rc;
}
