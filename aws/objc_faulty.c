/* The fault-injecting object_client: wraps any other client and, by rule, delays calls, fails them with
 * a chosen AWS error, or truncates GET bodies, so the pipelines' error paths (retry, abort, EIO on close,
 * short reads) can be exercised deterministically. Rules can be added and removed while other threads
 * are calling; the wrapped client is called outside the rule lock. */
#include "object_client.h"
#include "objc_faulty.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int in_use;
    objc_fault_rule rule;     /* code and key_substring point at the copies below */
    char *code;
    char *key_substring;
    unsigned flags;
    long matched;             /* calls this rule has seen */
} fault_slot;

typedef struct {
    object_client base;
    object_client *inner;
    int owns_inner;
    pthread_mutex_t lock;
    fault_slot *slots;
    size_t slot_count;
    char *truncate_key;       /* NULL: every key */
    size_t truncate_bytes;    /* SIZE_MAX: off */
    int truncate_as_error;
    uint64_t random_state;    /* xorshift64* state; 0 when random faults are off */
    unsigned random_per_million, random_mask;
    objc_fault_rule random_fault;
    char random_code[64];
    uint64_t calls, injected;
} faulty_client;

static const objc_ops faulty_ops;

static faulty_client *as_faulty(object_client *c)
{
    return c && c->ops == &faulty_ops ? (faulty_client *)c : NULL;
}

/* What one call should suffer, decided once under the lock. */
typedef struct {
    int delay_ms;
    int fail;
    int after_effect;
    aws_err_kind kind;
    int http_status;
    char code[64];
} fault_plan;

/* The keys a call concerns; a rule's key_substring matches if any of them contains it. */
typedef struct {
    const char *const *keys;
    size_t count;
} call_keys;

static int keys_match(const char *needle, call_keys keys)
{
    if (!needle)
        return 1;
    for (size_t i = 0; i < keys.count; i++)
        if (strstr(keys.keys[i] ? keys.keys[i] : "", needle))
            return 1;
    return 0;
}

/* xorshift64*: tiny, seedable and reproducible, which is all fault scheduling needs. Caller holds the
 * lock. */
static uint64_t next_random(faulty_client *f)
{
    uint64_t x = f->random_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    f->random_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static fault_plan plan_call(faulty_client *f, unsigned op, call_keys keys)
{
    fault_plan plan = { 0 };
    pthread_mutex_lock(&f->lock);
    f->calls++;
    for (size_t i = 0; i < f->slot_count; i++) {
        fault_slot *s = &f->slots[i];
        if (!s->in_use || !(s->rule.ops_mask & op) || !keys_match(s->key_substring, keys))
            continue;
        long seen = s->matched++;
        plan.delay_ms += s->rule.delay_ms > 0 ? s->rule.delay_ms : 0;
        int failing = seen >= s->rule.after_calls &&
                      (s->rule.fail_count < 0 || seen - s->rule.after_calls < s->rule.fail_count);
        if (failing && !plan.fail) {
            /* The first failing rule decides the error; later rules still count the call. */
            plan.fail = 1;
            plan.after_effect = (s->flags & OBJC_FAULT_AFTER_EFFECT) != 0;
            plan.kind = s->rule.kind;
            plan.http_status = s->rule.http_status;
            snprintf(plan.code, sizeof plan.code, "%s", s->code ? s->code : "");
        }
    }
    if (!plan.fail && f->random_state && (f->random_mask & op) && next_random(f) % 1000000 < f->random_per_million) {
        plan.fail = 1;
        plan.kind = f->random_fault.kind;
        plan.http_status = f->random_fault.http_status;
        snprintf(plan.code, sizeof plan.code, "%s", f->random_code);
    }
    if (plan.fail)
        f->injected++;
    pthread_mutex_unlock(&f->lock);
    return plan;
}

static void sleep_ms(int ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static int inject(const fault_plan *plan, aws_error *err)
{
    /* A rule with kind AWS_OK would make a failure look like success; report it as a network error. */
    aws_err_kind kind = plan->kind != AWS_OK ? plan->kind : AWS_ERR_NETWORK;
    if (err) {
        memset(err, 0, sizeof *err);
        err->kind = kind;
        err->http_status = plan->http_status;
        snprintf(err->code, sizeof err->code, "%s", plan->code);
        snprintf(err->message, sizeof err->message, "injected fault");
        snprintf(err->request_id, sizeof err->request_id, "faulty");
    }
    return (int)kind;
}

/* A body cut short and reported as an error: counted, and the connection "reset" (a network error). */
static int inject_cut(faulty_client *f, aws_error *err)
{
    pthread_mutex_lock(&f->lock);
    f->injected++;
    pthread_mutex_unlock(&f->lock);
    fault_plan reset = { .fail = 1, .kind = AWS_ERR_NETWORK };
    return inject(&reset, err);
}

/* Runs before the wrapped call: 1 if the call must fail without reaching the inner client. */
static int fails_before(const fault_plan *plan)
{
    sleep_ms(plan->delay_ms);
    return plan->fail && !plan->after_effect;
}

/* After the wrapped call: the inner result, or the injected fault for after-effect rules. */
static int result_after(const fault_plan *plan, int inner_rc, aws_error *err)
{
    return plan->fail ? inject(plan, err) : inner_rc;
}

#define ONE_KEY(k) ((call_keys){ (const char *const[]){ (k) }, 1 })

static int faulty_head(object_client *c, const char *key, objc_head *out, aws_error *err)
{
    faulty_client *f = as_faulty(c);
    fault_plan plan = plan_call(f, OBJC_OP_HEAD, ONE_KEY(key));
    if (fails_before(&plan)) {
        if (out) {
            memset(out, 0, sizeof *out);
            kv_list_init(&out->metadata);
        }
        return inject(&plan, err);
    }
    int rc = f->inner->ops->head(f->inner, key, out, err);
    if (plan.fail && rc == 0 && out) {
        kv_list_free(&out->metadata);
        memset(out, 0, sizeof *out);
        kv_list_init(&out->metadata);
    }
    return result_after(&plan, rc, err);
}

/* Caller does not hold the lock. Returns the byte cap for this GET and whether hitting it is an error. */
static size_t truncation_for(faulty_client *f, const char *key, int *as_error)
{
    pthread_mutex_lock(&f->lock);
    size_t cap = SIZE_MAX;
    if (f->truncate_bytes != SIZE_MAX && keys_match(f->truncate_key, ONE_KEY(key)))
        cap = f->truncate_bytes;
    *as_error = f->truncate_as_error;
    pthread_mutex_unlock(&f->lock);
    return cap;
}

/* get_range or, with an ETag, get_range_if_match of the inner client: both are OBJC_OP_GET. */
static int faulty_get_impl(object_client *c, const char *key, const char *etag, uint64_t offset, size_t len,
                           uint8_t *buf, size_t *got, aws_error *err)
{
    faulty_client *f = as_faulty(c);
    fault_plan plan = plan_call(f, OBJC_OP_GET, ONE_KEY(key));
    if (fails_before(&plan)) {
        if (got)
            *got = 0;
        return inject(&plan, err);
    }
    int as_error = 0;
    size_t cap = truncation_for(f, key, &as_error);
    /* Ask for one byte beyond the cap (buf has room: cap < len) to know whether the body really goes
     * on past it; a range that ends at or before the cap is delivered whole. */
    size_t ask = cap < len ? cap + 1 : len;
    int rc;
    if (!etag)
        rc = f->inner->ops->get_range(f->inner, key, offset, ask, buf, got, err);
    else if (f->inner->ops->get_range_if_match)
        rc = f->inner->ops->get_range_if_match(f->inner, key, etag, offset, ask, buf, got, err);
    else
        rc = aws_error_set(err, AWS_ERR_ARGUMENT, "the wrapped client has no get_range_if_match");
    if (plan.fail)
        return inject(&plan, err);
    if (rc != 0 || !got || cap >= len || *got <= cap)
        return rc;
    *got = cap;
    if (!as_error)
        return 0;
    return inject_cut(f, err);
}

static int faulty_get_range(object_client *c, const char *key, uint64_t offset, size_t len, uint8_t *buf,
                            size_t *got, aws_error *err)
{
    return faulty_get_impl(c, key, NULL, offset, len, buf, got, err);
}

static int faulty_get_range_if_match(object_client *c, const char *key, const char *etag, uint64_t offset,
                                     size_t len, uint8_t *buf, size_t *got, aws_error *err)
{
    if (!etag) {
        if (got)
            *got = 0;
        return aws_error_set(err, AWS_ERR_ARGUMENT, "get_range_if_match needs an ETag");
    }
    return faulty_get_impl(c, key, etag, offset, len, buf, got, err);
}

/* The sink between a streaming GET of the wrapped client and the caller's sink: passes at most `cap`
 * bytes on, then stops the wrapped stream as a cut connection would end it. */
typedef struct {
    objc_stream_fn sink;
    void *ctx;
    uint64_t cap;
    uint64_t passed;
    int cut;                  /* the cap stopped the stream (not the caller's sink) */
} stream_cut;

static int cut_sink(void *arg, const uint8_t *data, size_t n)
{
    stream_cut *s = arg;
    uint64_t room = s->cap - s->passed;
    size_t give = n < room ? n : (size_t)room;
    s->passed += give;
    if (give && s->sink(s->ctx, data, give) != 0)
        return 1;
    /* A body that ends exactly at the cap is not cut: only bytes beyond it prove the cut. */
    s->cut = give < n;
    return s->cut;
}

/* get_stream is an OBJC_OP_GET for the rules; truncation (objc_faulty_set_truncation) cuts the body
 * after max_bytes: a connection reset after those bytes (as_error), or a silent early end. */
static int faulty_get_stream(object_client *c, const char *key, const char *etag, uint64_t offset, uint64_t len,
                             objc_stream_fn sink, void *sink_ctx, aws_error *err)
{
    faulty_client *f = as_faulty(c);
    fault_plan plan = plan_call(f, OBJC_OP_GET, ONE_KEY(key));
    if (fails_before(&plan))
        return inject(&plan, err);
    if (!f->inner->ops->get_stream)
        return aws_error_set(err, AWS_ERR_ARGUMENT, "the wrapped client has no get_stream");
    int as_error = 0;
    size_t cap = truncation_for(f, key, &as_error);
    if (cap == SIZE_MAX || cap >= len)
        return result_after(&plan, f->inner->ops->get_stream(f->inner, key, etag, offset, len, sink, sink_ctx, err),
                            err);
    stream_cut cut = { .sink = sink, .ctx = sink_ctx, .cap = cap };
    int rc = f->inner->ops->get_stream(f->inner, key, etag, offset, len, cut_sink, &cut, err);
    if (plan.fail)
        return inject(&plan, err);
    if (rc != OBJC_STREAM_STOPPED || !cut.cut)
        return rc;
    aws_error_clear(err);
    if (!as_error)
        return 0;
    return inject_cut(f, err);
}

static int faulty_put(object_client *c, const char *key, const kv_list *metadata, const uint8_t *body, size_t len,
                      aws_error *err)
{
    faulty_client *f = as_faulty(c);
    fault_plan plan = plan_call(f, OBJC_OP_PUT, ONE_KEY(key));
    if (fails_before(&plan))
        return inject(&plan, err);
    return result_after(&plan, f->inner->ops->put(f->inner, key, metadata, body, len, err), err);
}

static int faulty_mpu_create(object_client *c, const char *key, const kv_list *metadata, char **upload_id,
                             aws_error *err)
{
    faulty_client *f = as_faulty(c);
    fault_plan plan = plan_call(f, OBJC_OP_MPU_CREATE, ONE_KEY(key));
    if (fails_before(&plan)) {
        if (upload_id)
            *upload_id = NULL;
        return inject(&plan, err);
    }
    int rc = f->inner->ops->mpu_create(f->inner, key, metadata, upload_id, err);
    if (plan.fail && rc == 0 && upload_id) {
        /* The upload exists but the caller never learns its id: exactly the orphan a lost answer makes. */
        free(*upload_id);
        *upload_id = NULL;
    }
    return result_after(&plan, rc, err);
}

static int faulty_mpu_upload_part(object_client *c, const char *key, const char *upload_id, int part_number,
                                  const uint8_t *body, size_t len, objc_part *part, aws_error *err)
{
    faulty_client *f = as_faulty(c);
    fault_plan plan = plan_call(f, OBJC_OP_MPU_PART, ONE_KEY(key));
    if (fails_before(&plan)) {
        if (part)
            memset(part, 0, sizeof *part);
        return inject(&plan, err);
    }
    int rc = f->inner->ops->mpu_upload_part(f->inner, key, upload_id, part_number, body, len, part, err);
    if (plan.fail && part)
        memset(part, 0, sizeof *part);
    return result_after(&plan, rc, err);
}

static int faulty_mpu_complete(object_client *c, const char *key, const char *upload_id, const objc_part *parts,
                               size_t count, aws_error *err)
{
    faulty_client *f = as_faulty(c);
    fault_plan plan = plan_call(f, OBJC_OP_MPU_COMPLETE, ONE_KEY(key));
    if (fails_before(&plan))
        return inject(&plan, err);
    return result_after(&plan, f->inner->ops->mpu_complete(f->inner, key, upload_id, parts, count, err), err);
}

static int faulty_mpu_abort(object_client *c, const char *key, const char *upload_id, aws_error *err)
{
    faulty_client *f = as_faulty(c);
    fault_plan plan = plan_call(f, OBJC_OP_MPU_ABORT, ONE_KEY(key));
    if (fails_before(&plan))
        return inject(&plan, err);
    return result_after(&plan, f->inner->ops->mpu_abort(f->inner, key, upload_id, err), err);
}

static int faulty_mpu_list(object_client *c, const char *prefix, objc_upload **uploads, size_t *count,
                           aws_error *err)
{
    faulty_client *f = as_faulty(c);
    fault_plan plan = plan_call(f, OBJC_OP_MPU_LIST, ONE_KEY(prefix ? prefix : ""));
    if (!fails_before(&plan)) {
        int rc = f->inner->ops->mpu_list(f->inner, prefix, uploads, count, err);
        if (!plan.fail)
            return rc;
        if (rc == 0 && uploads && count)
            objc_uploads_free(*uploads, *count);
    }
    if (uploads)
        *uploads = NULL;
    if (count)
        *count = 0;
    return inject(&plan, err);
}

static int faulty_list_page(object_client *c, const char *prefix, const char *delimiter, const char *token,
                            int max_keys, objc_list_page *out, aws_error *err)
{
    faulty_client *f = as_faulty(c);
    fault_plan plan = plan_call(f, OBJC_OP_LIST, ONE_KEY(prefix ? prefix : ""));
    if (!fails_before(&plan)) {
        int rc = f->inner->ops->list_page(f->inner, prefix, delimiter, token, max_keys, out, err);
        if (!plan.fail)
            return rc;
        if (rc == 0 && out)
            objc_list_page_free(out);
    }
    if (out)
        memset(out, 0, sizeof *out);
    return inject(&plan, err);
}

static int faulty_copy(object_client *c, const char *src_key, const char *dst_key, objc_metadata_directive directive,
                       const kv_list *metadata, aws_error *err)
{
    faulty_client *f = as_faulty(c);
    const char *keys[2] = { src_key, dst_key };
    fault_plan plan = plan_call(f, OBJC_OP_COPY, (call_keys){ keys, 2 });
    if (fails_before(&plan))
        return inject(&plan, err);
    return result_after(&plan, f->inner->ops->copy(f->inner, src_key, dst_key, directive, metadata, err), err);
}

static int faulty_delete_object(object_client *c, const char *key, aws_error *err)
{
    faulty_client *f = as_faulty(c);
    fault_plan plan = plan_call(f, OBJC_OP_DELETE, ONE_KEY(key));
    if (fails_before(&plan))
        return inject(&plan, err);
    return result_after(&plan, f->inner->ops->delete_object(f->inner, key, err), err);
}

static int faulty_delete_objects(object_client *c, const char *const *keys, size_t count, aws_error *err)
{
    faulty_client *f = as_faulty(c);
    fault_plan plan = plan_call(f, OBJC_OP_DELETE, (call_keys){ keys, keys ? count : 0 });
    if (fails_before(&plan))
        return inject(&plan, err);
    return result_after(&plan, f->inner->ops->delete_objects(f->inner, keys, count, err), err);
}

static void free_slot(fault_slot *s)
{
    free(s->code);
    free(s->key_substring);
    memset(s, 0, sizeof *s);
}

static void faulty_destroy(object_client *c)
{
    faulty_client *f = as_faulty(c);
    if (!f)
        return;
    for (size_t i = 0; i < f->slot_count; i++)
        free_slot(&f->slots[i]);
    free(f->slots);
    free(f->truncate_key);
    if (f->owns_inner)
        objc_free(f->inner);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

static const objc_ops faulty_ops = {
    .head = faulty_head,
    .get_range = faulty_get_range,
    .put = faulty_put,
    .mpu_create = faulty_mpu_create,
    .mpu_upload_part = faulty_mpu_upload_part,
    .mpu_complete = faulty_mpu_complete,
    .mpu_abort = faulty_mpu_abort,
    .mpu_list = faulty_mpu_list,
    .list_page = faulty_list_page,
    .copy = faulty_copy,
    .delete_object = faulty_delete_object,
    .delete_objects = faulty_delete_objects,
    .destroy = faulty_destroy,
    .get_range_if_match = faulty_get_range_if_match,
    .get_stream = faulty_get_stream,
};

object_client *objc_new_faulty(object_client *inner, int take_ownership)
{
    if (!inner)
        return NULL;
    faulty_client *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    if (pthread_mutex_init(&f->lock, NULL) != 0) {
        free(f);
        return NULL;
    }
    f->base.ops = &faulty_ops;
    f->inner = inner;
    f->owns_inner = take_ownership;
    f->truncate_bytes = SIZE_MAX;
    return &f->base;
}

int objc_faulty_add_rule_ex(object_client *faulty, const objc_fault_rule *rule, unsigned flags)
{
    faulty_client *f = as_faulty(faulty);
    if (!f || !rule)
        return -1;
    fault_slot slot = { .in_use = 1, .rule = *rule, .flags = flags };
    slot.code = strdup(rule->code ? rule->code : "");
    slot.key_substring = rule->key_substring ? strdup(rule->key_substring) : NULL;
    if (!slot.code || (rule->key_substring && !slot.key_substring)) {
        free_slot(&slot);
        return -1;
    }
    /* The caller's strings may not outlive this call; the rule refers to our copies only. */
    slot.rule.code = slot.code;
    slot.rule.key_substring = slot.key_substring;
    pthread_mutex_lock(&f->lock);
    fault_slot *grown = realloc(f->slots, (f->slot_count + 1) * sizeof *grown);
    int index = -1;
    if (grown) {
        f->slots = grown;
        index = (int)f->slot_count;
        f->slots[f->slot_count++] = slot;
    }
    pthread_mutex_unlock(&f->lock);
    if (index < 0)
        free_slot(&slot);
    return index;
}

int objc_faulty_add_rule(object_client *faulty, const objc_fault_rule *rule)
{
    return objc_faulty_add_rule_ex(faulty, rule, 0) < 0 ? -1 : 0;
}

int objc_faulty_remove_rule(object_client *faulty, int index)
{
    faulty_client *f = as_faulty(faulty);
    if (!f || index < 0)
        return -1;
    pthread_mutex_lock(&f->lock);
    int rc = -1;
    if ((size_t)index < f->slot_count && f->slots[index].in_use) {
        free_slot(&f->slots[index]);
        rc = 0;
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}

void objc_faulty_clear_rules(object_client *faulty)
{
    faulty_client *f = as_faulty(faulty);
    if (!f)
        return;
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->slot_count; i++)
        free_slot(&f->slots[i]);
    free(f->slots);
    f->slots = NULL;
    f->slot_count = 0;
    free(f->truncate_key);
    f->truncate_key = NULL;
    f->truncate_bytes = SIZE_MAX;
    f->random_state = 0;
    pthread_mutex_unlock(&f->lock);
}

int objc_faulty_set_truncation(object_client *faulty, const char *key_substring, size_t max_bytes, int as_error)
{
    faulty_client *f = as_faulty(faulty);
    if (!f)
        return -1;
    char *copy = key_substring ? strdup(key_substring) : NULL;
    if (key_substring && !copy)
        return -1;
    pthread_mutex_lock(&f->lock);
    free(f->truncate_key);
    f->truncate_key = copy;
    f->truncate_bytes = max_bytes;
    f->truncate_as_error = as_error;
    pthread_mutex_unlock(&f->lock);
    return 0;
}

int objc_faulty_set_random(object_client *faulty, uint64_t seed, unsigned per_million, unsigned ops_mask,
                           aws_err_kind kind, int http_status, const char *code)
{
    faulty_client *f = as_faulty(faulty);
    if (!f || per_million > 1000000)
        return -1;
    pthread_mutex_lock(&f->lock);
    /* splitmix64 spreads neighbouring seeds apart; xorshift must never hold 0. */
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    f->random_state = per_million ? (z ? z : 0x9E3779B97F4A7C15ULL) : 0;
    f->random_per_million = per_million;
    f->random_mask = ops_mask;
    f->random_fault.kind = kind;
    f->random_fault.http_status = http_status;
    snprintf(f->random_code, sizeof f->random_code, "%s", code ? code : "");
    pthread_mutex_unlock(&f->lock);
    return 0;
}

uint64_t objc_faulty_calls(object_client *faulty)
{
    faulty_client *f = as_faulty(faulty);
    if (!f)
        return 0;
    pthread_mutex_lock(&f->lock);
    uint64_t n = f->calls;
    pthread_mutex_unlock(&f->lock);
    return n;
}

uint64_t objc_faulty_injected(object_client *faulty)
{
    faulty_client *f = as_faulty(faulty);
    if (!f)
        return 0;
    pthread_mutex_lock(&f->lock);
    uint64_t n = f->injected;
    pthread_mutex_unlock(&f->lock);
    return n;
}
