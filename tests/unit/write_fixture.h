/* Shared scaffolding of the write-path unit tests (include after <cmocka.h>): an fs_context on the
 * in-memory object store and the local KMS, a part uploader, and deterministic plaintext. The tests
 * decrypt what was stored with the crypto primitives (decrypt_object below: KMS Decrypt of the envelope
 * key under the matdesc context, CBC over the whole body, strict padding), never with the code under test. */
#ifndef S3CSEFS_TEST_WRITE_FIXTURE_H
#define S3CSEFS_TEST_WRITE_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbc_random.h"
#include "envelope.h"
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

/* Decrypts a stored object with crypto/ primitives; returns the plaintext (malloc'd) and its length. */
static inline uint8_t *decrypt_object(fixture *f, const char *key, size_t *plain_len, kv_list *md_out, int *encrypted)
{
    uint8_t *body = NULL;
    size_t len = 0;
    kv_list md;
    assert_int_equal(objc_memory_get_object(f->memory, key, &body, &len, &md), 0);
    cse_envelope env;
    cse_status st = cse_envelope_parse_metadata(&md, &env);
    if (st == CSE_ERR_NOT_ENCRYPTED) {
        *encrypted = 0;
        *plain_len = len;
        if (md_out)
            *md_out = md;
        else
            kv_list_free(&md);
        return body;
    }
    assert_int_equal(st, CSE_OK);
    *encrypted = 1;
    assert_int_equal(env.cek_alg, CSE_CEK_AES_CBC);
    assert_int_equal(env.wrap_alg, CSE_WRAP_KMS);
    assert_string_equal(kv_list_get(&env.matdesc, "kms_cmk_id"), f->ctx.key_arn);
    assert_int_equal(env.matdesc.count, 1);
    assert_int_equal(len % 16, 0);
    assert_true(len >= 16);
    secure_buf *dk = NULL;
    aws_error err;
    assert_int_equal(kms_decrypt(f->ctx.kms, env.encrypted_key, env.encrypted_key_len, &env.matdesc, NULL, &dk, &err), 0);
    cbc_decryptor *dec = NULL;
    assert_int_equal(cbc_decryptor_new(dk->bytes, &dec), CSE_OK);
    uint8_t *plain = malloc(len);
    assert_int_equal(cbc_decrypt_blocks(dec, env.iv, body, len, plain), CSE_OK);
    unsigned pad = 0;
    assert_int_equal(cbc_check_padding(plain + len - 16, &pad), CSE_OK);
    *plain_len = len - pad;
    if (env.has_plain_length)
        assert_int_equal(env.plain_length, *plain_len);
    cbc_decryptor_free(dec);
    secure_buf_free(dk);
    cse_envelope_free(&env);
    free(body);
    if (md_out)
        *md_out = md;
    else
        kv_list_free(&md);
    return plain;
}

#endif
