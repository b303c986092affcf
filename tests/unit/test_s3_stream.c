/* The S3 client's get_stream over real HTTP, against a scripted server in this process (loopback): a
 * body cut mid-transfer is resumed with a GET for exactly the rest (If-Match on the ETag given, or on
 * the one the first answer carried) so every byte reaches the sink once and in order; an answer for
 * another range, or a 200 that ignored the Range, fails with AWS_ERR_INTEGRITY before any wrong byte
 * is delivered; a replaced object is AWS_ERR_CHANGED; a sink that stops ends the call with
 * OBJC_STREAM_STOPPED and is not retried. Each case checks what the server saw. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aws_session.h"
#include "object_client.h"

#define BODY_LEN 200000
#define ETAG "\"0123456789abcdef0123456789abcdef\""
#define MAX_REQUESTS 8

/* One scripted answer: how to answer the request with this index. */
typedef enum {
    ANSWER_RANGE,                /* 206 for the Range asked */
    ANSWER_RANGE_CUT,            /* 206 announcing the range, cut after `cut` body bytes */
    ANSWER_WRONG_RANGE,          /* 206 for the range starting at 0, whatever was asked */
    ANSWER_WHOLE,                /* 200 with the whole object, ignoring the Range */
    ANSWER_412,
} answer_kind;

typedef struct {
    answer_kind kind;
    size_t cut;
} answer;

typedef struct {
    int listener;
    int port;
    uint8_t body[BODY_LEN];
    answer script[MAX_REQUESTS];
    int requests;
    char ranges[MAX_REQUESTS][64];
    char if_match[MAX_REQUESTS][96];
    pthread_t thread;
} server;

static server srv;

static void header_value(const char *req, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    for (const char *line = req; line && *line; line = strstr(line, "\r\n") ? strstr(line, "\r\n") + 2 : NULL) {
        size_t n = strlen(name);
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r\n");
            snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), v);
            return;
        }
    }
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k <= 0)
            return;
        c += k;
        n -= (size_t)k;
    }
}

static void answer_request(int fd, const char *req, int index)
{
    char range[64], head[512];
    header_value(req, "range", range, sizeof range);
    header_value(req, "if-match", srv.if_match[index], sizeof srv.if_match[index]);
    snprintf(srv.ranges[index], sizeof srv.ranges[index], "%s", range);
    uint64_t first = 0, last = BODY_LEN - 1;
    sscanf(range, "bytes=%" SCNu64 "-%" SCNu64, &first, &last);
    if (last >= BODY_LEN)
        last = BODY_LEN - 1;
    answer a = srv.script[index];
    if (a.kind == ANSWER_412) {
        const char *e = "<Error><Code>PreconditionFailed</Code><Message>no</Message></Error>";
        snprintf(head, sizeof head, "HTTP/1.1 412 Precondition Failed\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                 strlen(e));
        send_all(fd, head, strlen(head));
        send_all(fd, e, strlen(e));
        return;
    }
    if (a.kind == ANSWER_WRONG_RANGE)
        first = 0;
    size_t len = (size_t)(last - first + 1);
    if (a.kind == ANSWER_WHOLE) {
        first = 0;
        len = BODY_LEN;
        snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nETag: %s\r\nConnection: close\r\n\r\n",
                 BODY_LEN, ETAG);
    } else {
        snprintf(head, sizeof head,
                 "HTTP/1.1 206 Partial Content\r\nContent-Length: %zu\r\nContent-Range: bytes %" PRIu64 "-%" PRIu64
                 "/%d\r\nETag: %s\r\nConnection: close\r\n\r\n",
                 len, first, first + len - 1, BODY_LEN, ETAG);
    }
    send_all(fd, head, strlen(head));
    send_all(fd, srv.body + first, a.kind == ANSWER_RANGE_CUT && a.cut < len ? a.cut : len);
}

static void *server_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(srv.listener, NULL, NULL);
        if (fd < 0)
            return NULL;
        char req[8192] = "";
        size_t got = 0;
        while (got < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
            ssize_t k = recv(fd, req + got, sizeof req - 1 - got, 0);
            if (k <= 0)
                break;
            got += (size_t)k;
            req[got] = '\0';
        }
        if (srv.requests < MAX_REQUESTS)
            answer_request(fd, req, srv.requests++);
        close(fd);
    }
}

static object_client *client;
static aws_session *session;

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < BODY_LEN; i++)
        srv.body[i] = (uint8_t)(i * 7 + i / 300);
    srv.listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof addr;
    if (bind(srv.listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(srv.listener, 16) != 0 ||
        getsockname(srv.listener, (struct sockaddr *)&addr, &alen) != 0)
        return -1;
    srv.port = ntohs(addr.sin_port);
    pthread_create(&srv.thread, NULL, server_main, NULL);
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    unsetenv("AWS_PROFILE");
    aws_config cfg;
    aws_config_defaults(&cfg);
    snprintf(cfg.region, sizeof cfg.region, "us-east-1");
    snprintf(cfg.s3_endpoint, sizeof cfg.s3_endpoint, "http://127.0.0.1:%d", srv.port);
    cfg.path_style = 1;
    cfg.base_delay_ms = 1;
    cfg.max_delay_ms = 5;
    cfg.max_attempts = 3;
    aws_error err;
    session = aws_session_new(&cfg, &err);
    client = session ? objc_new_s3(session, "bucket", &err) : NULL;
    return client ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    objc_free(client);
    aws_session_free(session);
    shutdown(srv.listener, SHUT_RDWR);
    close(srv.listener);
    pthread_join(srv.thread, NULL);
    return 0;
}

typedef struct {
    uint8_t bytes[BODY_LEN];
    size_t len;
    size_t stop_after;
} sink_state;

static int sink(void *ctx, const uint8_t *data, size_t n)
{
    sink_state *s = ctx;
    assert_true(s->len + n <= BODY_LEN);
    memcpy(s->bytes + s->len, data, n);
    s->len += n;
    return s->stop_after && s->len >= s->stop_after;
}

static void script(answer a0, answer a1, answer a2)
{
    memset(srv.script, 0, sizeof srv.script);
    srv.script[0] = a0;
    srv.script[1] = a1;
    srv.script[2] = a2;
    srv.requests = 0;
}

static int stream(const char *etag, uint64_t offset, uint64_t len, sink_state *out, aws_error *err)
{
    memset(out->bytes, 0, sizeof out->bytes);
    out->len = 0;
    return client->ops->get_stream(client, "dir/key", etag, offset, len, sink, out, err);
}

static sink_state got;

static void test_whole_range(void **state)
{
    (void)state;
    aws_error err;
    script((answer){ ANSWER_RANGE, 0 }, (answer){ 0 }, (answer){ 0 });
    assert_int_equal(stream(ETAG, 1000, BODY_LEN, &got, &err), 0);
    assert_int_equal(got.len, BODY_LEN - 1000);
    assert_memory_equal(got.bytes, srv.body + 1000, got.len);
    assert_int_equal(srv.requests, 1);
    assert_string_equal(srv.ranges[0], "bytes=1000-200999");
    assert_string_equal(srv.if_match[0], ETAG);
}

static void test_cut_is_resumed_from_next_byte(void **state)
{
    (void)state;
    aws_error err;
    script((answer){ ANSWER_RANGE_CUT, 70001 }, (answer){ ANSWER_RANGE_CUT, 50000 }, (answer){ ANSWER_RANGE, 0 });
    assert_int_equal(stream(ETAG, 10, BODY_LEN - 10, &got, &err), 0);
    assert_int_equal(got.len, BODY_LEN - 10);
    assert_memory_equal(got.bytes, srv.body + 10, got.len);   /* in order, nothing twice */
    assert_int_equal(srv.requests, 3);
    assert_string_equal(srv.ranges[1], "bytes=70011-199999");
    assert_string_equal(srv.ranges[2], "bytes=120011-199999");
    assert_string_equal(srv.if_match[2], ETAG);
}

/* Without an ETag from the caller, the resumed request is pinned to the version the first answer
 * named, so a replacement cannot be spliced in. */
static void test_resume_pins_the_first_answers_etag(void **state)
{
    (void)state;
    aws_error err;
    script((answer){ ANSWER_RANGE_CUT, 1000 }, (answer){ ANSWER_RANGE, 0 }, (answer){ 0 });
    assert_int_equal(stream(NULL, 0, BODY_LEN, &got, &err), 0);
    assert_int_equal(got.len, BODY_LEN);
    assert_memory_equal(got.bytes, srv.body, BODY_LEN);
    assert_string_equal(srv.if_match[0], "");
    assert_string_equal(srv.if_match[1], ETAG);
}

static void test_wrong_range_on_resume_fails(void **state)
{
    (void)state;
    aws_error err;
    script((answer){ ANSWER_RANGE_CUT, 1000 }, (answer){ ANSWER_WRONG_RANGE, 0 }, (answer){ 0 });
    int rc = stream(ETAG, 0, BODY_LEN, &got, &err);
    assert_int_equal(rc, AWS_ERR_INTEGRITY);
    assert_int_equal(got.len, 1000);                 /* nothing of the misplaced answer */
    assert_int_equal(srv.requests, 2);
}

static void test_ignored_range_fails_before_any_byte(void **state)
{
    (void)state;
    aws_error err;
    script((answer){ ANSWER_WHOLE, 0 }, (answer){ 0 }, (answer){ 0 });
    assert_int_equal(stream(ETAG, 5, 100, &got, &err), AWS_ERR_INTEGRITY);
    assert_int_equal(got.len, 0);
    /* From byte 0 for the whole object a 200 is the right answer. */
    script((answer){ ANSWER_WHOLE, 0 }, (answer){ 0 }, (answer){ 0 });
    assert_int_equal(stream(ETAG, 0, BODY_LEN, &got, &err), 0);
    assert_int_equal(got.len, BODY_LEN);
}

static void test_replaced_on_resume_is_changed(void **state)
{
    (void)state;
    aws_error err;
    script((answer){ ANSWER_RANGE_CUT, 4000 }, (answer){ ANSWER_412, 0 }, (answer){ 0 });
    assert_int_equal(stream(ETAG, 0, BODY_LEN, &got, &err), AWS_ERR_CHANGED);
    assert_int_equal(got.len, 4000);
    assert_int_equal(srv.requests, 2);
}

static void test_stop_is_not_retried(void **state)
{
    (void)state;
    aws_error err;
    script((answer){ ANSWER_RANGE, 0 }, (answer){ 0 }, (answer){ 0 });
    got.stop_after = 1;
    assert_int_equal(stream(ETAG, 0, BODY_LEN, &got, &err), OBJC_STREAM_STOPPED);
    got.stop_after = 0;
    assert_int_equal(err.kind, AWS_OK);
    assert_true(got.len > 0 && got.len < BODY_LEN);
    assert_int_equal(srv.requests, 1);                /* a stop is not retried */
    assert_memory_equal(got.bytes, srv.body, got.len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_range),
        cmocka_unit_test(test_cut_is_resumed_from_next_byte),
        cmocka_unit_test(test_resume_pins_the_first_answers_etag),
        cmocka_unit_test(test_wrong_range_on_resume_fails),
        cmocka_unit_test(test_ignored_range_fails_before_any_byte),
        cmocka_unit_test(test_replaced_on_resume_is_changed),
        cmocka_unit_test(test_stop_is_not_retried),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
