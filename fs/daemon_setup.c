/* Context construction and mount-time checks (see daemon_setup.h). The testing backends (memory,
 * null, from aws/) and the fault option are chosen here, so the whole daemon runs without S3. */
#include "daemon_setup.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "kms.h"
#include "kms_local.h"
#include "log.h"
#include "namespace.h"
#include "objc_memory.h"
#include "objc_null.h"
#include "open_files.h"
#include "part_uploader.h"
#include "secure_mem.h"

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- fault=OP:AFTER[:COUNT] ---- */

static int add_fault(object_client **objects, const char *spec, char *err, size_t cap)
{
    char op[32];
    long after = 0, count = -1;
    int fields = sscanf(spec, "%31[a-z_]:%ld:%ld", op, &after, &count);
    if (fields < 2)
        return fail(err, cap, "option fault: expected OP:AFTER[:COUNT], e.g. part:2");
    static const struct { const char *name; unsigned mask; } ops[] = {
        { "put", OBJC_OP_PUT }, { "part", OBJC_OP_MPU_PART }, { "complete", OBJC_OP_MPU_COMPLETE },
        { "create", OBJC_OP_MPU_CREATE }, { "get", OBJC_OP_GET }, { "head", OBJC_OP_HEAD },
    };
    unsigned mask = 0;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(op, ops[i].name) == 0)
            mask = ops[i].mask;
    if (!mask)
        return fail(err, cap, "option fault: unknown operation '%s'", op);
    object_client *faulty = objc_new_faulty(*objects, 1);
    if (!faulty)
        return fail(err, cap, "out of memory");
    *objects = faulty;
    objc_fault_rule rule = { .ops_mask = mask, .after_calls = after, .fail_count = count,
                             .kind = AWS_ERR_SERVICE, .http_status = 500, .code = "InjectedFault" };
    if (objc_faulty_add_rule(faulty, &rule) != 0)
        return fail(err, cap, "option fault: cannot add the rule");
    log_warn("testing: injecting %s failures after %ld calls", op, after);
    return 0;
}

/* ---- checks ---- */

static int check_bucket(fs_context *ctx, char *err, size_t cap)
{
    objc_list_page page;
    memset(&page, 0, sizeof page);
    aws_error e;
    aws_error_clear(&e);
    int rc = ctx->objects->ops->list_page(ctx->objects, ctx->options.prefix, "/", NULL, 1, &page, &e);
    objc_list_page_free(&page);
    if (rc == 0)
        return 0;
    char detail[300];
    aws_error_format(&e, detail, sizeof detail);
    if (e.kind == AWS_ERR_CREDENTIALS)
        return fail(err, cap, "no usable AWS credentials (environment, profile, web identity, ECS or "
                              "instance role): %s", detail);
    if (strcmp(e.code, "NoSuchBucket") == 0 || (e.kind == AWS_ERR_NOT_FOUND && e.code[0] == '\0'))
        return fail(err, cap, "bucket '%s' does not exist: %s", ctx->options.bucket, detail);
    if (e.http_status == 403)
        return fail(err, cap, "access to bucket '%s' denied (check the credentials and s3:ListBucket): %s",
                    ctx->options.bucket, detail);
    return fail(err, cap, "cannot list bucket '%s': %s", ctx->options.bucket, detail);
}

static int check_key(fs_context *ctx, char *err, size_t cap)
{
    const char *key_id = ctx->options.kms_key_id;
    int local = strcmp(ctx->options.backend, "s3") != 0;
    if (!key_id[0]) {
        if (strcasecmp(ctx->options.encrypt, "none") == 0)
            return 0;
        if (!local)
            return fail(err, cap, "kms_key_id= is required (files matching encrypt=%s are encrypted); use "
                                  "encrypt=none to store everything plain", ctx->options.encrypt);
        key_id = KMS_LOCAL_ALIAS;
    }
    aws_error e;
    aws_error_clear(&e);
    int enabled = 0;
    char detail[300];
    if (kms_describe_key(ctx->kms, key_id, ctx->key_arn, sizeof ctx->key_arn, &enabled, &e) != 0) {
        aws_error_format(&e, detail, sizeof detail);
        if (e.kind == AWS_ERR_NOT_FOUND || strcmp(e.code, "NotFoundException") == 0)
            return fail(err, cap, "KMS key '%s' does not exist (in this region): %s", key_id, detail);
        if (e.http_status == 400 && strstr(e.code, "AccessDenied"))
            return fail(err, cap, "access to KMS key '%s' denied (kms:DescribeKey): %s", key_id, detail);
        return fail(err, cap, "cannot describe KMS key '%s': %s", key_id, detail);
    }
    if (!enabled)
        return fail(err, cap, "KMS key '%s' (%s) is disabled", key_id, ctx->key_arn);
    kv_list context;
    kv_list_init(&context);
    if (cse_write_context(ctx->options.cse_profile, ctx->key_arn, &context) != CSE_OK)
        return fail(err, cap, "out of memory");
    secure_buf *data_key = NULL;
    uint8_t blob[CSE_MAX_KEY_BLOB];
    size_t blob_len = 0;
    aws_error_clear(&e);
    int rc = kms_generate_data_key(ctx->kms, ctx->key_arn, &context, &data_key, blob, sizeof blob, &blob_len, &e);
    kv_list_free(&context);
    secure_buf_free(data_key);
    if (rc != 0)
        return fail(err, cap, "cannot generate data keys with KMS key %s (kms:GenerateDataKey): %s", ctx->key_arn,
                    aws_error_format(&e, detail, sizeof detail));
    log_info("KMS key %s is usable", ctx->key_arn);
    return 0;
}

static int make_clients(fs_context *ctx, char *err, size_t cap)
{
    const fs_options *o = &ctx->options;
    if (strcmp(o->backend, "memory") == 0 || strcmp(o->backend, "null") == 0) {
        ctx->objects = strcmp(o->backend, "null") == 0 ? objc_new_null() : objc_new_memory();
        ctx->kms = kms_client_new_local();
        if (!ctx->objects || !ctx->kms)
            return fail(err, cap, "out of memory");
        log_warn("testing backend '%s': nothing is stored in S3", o->backend);
        return 0;
    }
    aws_config cfg;
    aws_config_defaults(&cfg);
    snprintf(cfg.region, sizeof cfg.region, "%s", o->region);
    snprintf(cfg.s3_endpoint, sizeof cfg.s3_endpoint, "%s", o->endpoint);
    snprintf(cfg.kms_endpoint, sizeof cfg.kms_endpoint, "%s", o->kms_endpoint);
    snprintf(cfg.sts_endpoint, sizeof cfg.sts_endpoint, "%s", o->sts_endpoint);
    snprintf(cfg.profile, sizeof cfg.profile, "%s", o->profile);
    snprintf(cfg.credentials_file, sizeof cfg.credentials_file, "%s", o->credentials_file);
    snprintf(cfg.config_file, sizeof cfg.config_file, "%s", o->config_file);
    cfg.path_style = o->path_style;
    cfg.allow_http = o->allow_http;
    if (o->retries)
        cfg.max_attempts = o->retries;
    if (o->request_timeout_s)
        cfg.total_timeout_ms = o->request_timeout_s * 1000;
    if (o->connect_timeout_s)
        cfg.connect_timeout_ms = o->connect_timeout_s * 1000;
    if (o->stall_timeout_s)
        cfg.low_speed_timeout_s = o->stall_timeout_s;
    aws_error e;
    aws_error_clear(&e);
    char detail[300];
    ctx->aws = aws_session_new(&cfg, &e);
    if (!ctx->aws)
        return fail(err, cap, "AWS configuration: %s", aws_error_format(&e, detail, sizeof detail));
    ctx->objects = objc_new_s3(ctx->aws, o->bucket, &e);
    if (!ctx->objects)
        return fail(err, cap, "S3 client: %s", aws_error_format(&e, detail, sizeof detail));
    ctx->kms = kms_client_new_aws(ctx->aws, &e);
    if (!ctx->kms)
        return fail(err, cap, "KMS client: %s", aws_error_format(&e, detail, sizeof detail));
    return 0;
}

int daemon_setup(fs_context *ctx, char *err, size_t cap)
{
    if (memory_budget_init(&ctx->memory, ctx->options.max_memory) != 0)
        return fail(err, cap, "bad max_memory");
    int rc = make_clients(ctx, err, cap);
    if (rc == 0 && ctx->options.fault[0])
        rc = add_fault(&ctx->objects, ctx->options.fault, err, cap);
    if (rc == 0)
        rc = check_bucket(ctx, err, cap);
    if (rc == 0)
        rc = check_key(ctx, err, cap);
    if (rc != 0)
        daemon_teardown(ctx);
    return rc;
}

int daemon_start_workers(fs_context *ctx, char *err, size_t cap)
{
    if (fs_caches_init(ctx) != 0)
        return fail(err, cap, "out of memory (caches)");
    ctx->open_files = open_files_new();
    part_uploader *up = part_uploader_new(ctx->objects, &ctx->counters, ctx->options.upload_concurrency);
    if (!ctx->open_files || !up) {
        part_uploader_free(up);
        return fail(err, cap, "cannot start the upload workers");
    }
    open_files_set_uploader(ctx->open_files, up);
    return 0;
}

void daemon_teardown(fs_context *ctx)
{
    if (ctx->open_files) {
        part_uploader *up = open_files_uploader(ctx->open_files);
        open_files_free(ctx->open_files);      /* aborts files still being written, finishes the rest */
        if (up)
            part_uploader_retry_aborts(up);
        part_uploader_free(up);
        ctx->open_files = NULL;
    }
    if (ctx->keys || ctx->meta)
        fs_caches_destroy(ctx);
    kms_client_free(ctx->kms);
    ctx->kms = NULL;
    objc_free(ctx->objects);
    ctx->objects = NULL;
    aws_session_free(ctx->aws);
    ctx->aws = NULL;
    if (ctx->memory.limit) {
        memory_budget_destroy(&ctx->memory);
        ctx->memory.limit = 0;
    }
}
