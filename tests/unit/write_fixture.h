/* Shared scaffolding of the write-path unit tests (include after <cmocka.h>): an fs_context on the
 * in-memory object store and the local KMS, a part uploader, and deterministic plaintext. The tests
 * decrypt what was stored with the crypto primitives themselves, so nothing here checks results. */
#ifndef S3CSEFS_TEST_WRITE_FIXTURE_H
#define S3CSEFS_TEST_WRITE_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_context.h"
#include "kms_local.h"
#include "objc_memory.h"
#include "part_uploader.h"

typedef struct {
    fs_context ctx;
    object_client *memory;       /* the store itself (ctx.objects may be a wrapper around it) */
    part_uploader *uploader;
} fixture;

typedef struct {
    uint64_t part_size;
    uint64_t max_memory;
    uint64_t reorder_window;      /* 0: the option's default */
    const char *spool_dir;        /* NULL: /tmp */
    size_t min_part_size;         /* the store's minimum part size; 0: S3's 5 MiB */
    object_client *uploader_client;  /* NULL: the store; else e.g. a wrapper that blocks or fails */
    int upload_workers;
} fixture_config;

static inline void fixture_setup(fixture *f, const fixture_config *cfg)
{
    memset(f, 0, sizeof *f);
    fs_options_defaults(&f->ctx.options);
    f->ctx.options.part_size = cfg->part_size;
    f->ctx.options.max_memory = cfg->max_memory;
    if (cfg->reorder_window)
        f->ctx.options.reorder_window = cfg->reorder_window;
    snprintf(f->ctx.options.spool_dir, sizeof f->ctx.options.spool_dir, "%s",
             cfg->spool_dir ? cfg->spool_dir : "/tmp");
    assert_int_equal(memory_budget_init(&f->ctx.memory, cfg->max_memory), 0);
    f->memory = objc_new_memory();
    assert_non_null(f->memory);
    if (cfg->min_part_size)
        assert_int_equal(objc_memory_set_min_part_size(f->memory, cfg->min_part_size), 0);
    f->ctx.objects = f->memory;
    f->ctx.kms = kms_client_new_local();
    assert_non_null(f->ctx.kms);
    int enabled = 0;
    aws_error err;
    assert_int_equal(kms_describe_key(f->ctx.kms, KMS_LOCAL_ALIAS, f->ctx.key_arn, sizeof f->ctx.key_arn,
                                      &enabled, &err), 0);
    assert_true(enabled);
    f->uploader = part_uploader_new(cfg->uploader_client ? cfg->uploader_client : f->memory,
                                    &f->ctx.counters, cfg->upload_workers);
    assert_non_null(f->uploader);
}

/* Also checks that every byte reserved from the memory budget was given back. */
static inline void fixture_free(fixture *f)
{
    part_uploader_free(f->uploader);
    assert_int_equal(memory_budget_used(&f->ctx.memory), 0);
    kms_client_free(f->ctx.kms);
    if (f->ctx.objects != f->memory)
        objc_free(f->ctx.objects);
    objc_free(f->memory);
    memory_budget_destroy(&f->ctx.memory);
}

/* Deterministic pseudo-random plaintext (xorshift), independent of the code under test. */
static inline uint8_t *make_plain(size_t len, uint32_t seed)
{
    uint8_t *p = malloc(len ? len : 1);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
    return p;
}

#endif
