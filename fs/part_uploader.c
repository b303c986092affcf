/* UploadPart worker pool: a mutex-protected FIFO of jobs and N threads that run them. */
#include "part_uploader.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"

typedef struct upload_job {
    struct upload_job *next;
    const char *key;
    const char *upload_id;
    int part_number;
    uint8_t *body;
    size_t len;
    part_done_fn done;
    void *arg;
    const _Atomic int *cancelled;
} upload_job;

typedef struct deferred_abort {
    struct deferred_abort *next;
    char *key;
    char *upload_id;
} deferred_abort;

struct part_uploader {
    deferred_abort *aborts;
    object_client *objects;
    fs_counters *counters;
    pthread_mutex_t lock;
    pthread_cond_t work;
    upload_job *head, *tail;
    int stopping;
    int retry_requested;     /* a worker should run part_uploader_retry_aborts */
    _Atomic int pending;
    int nthreads;
    pthread_t *threads;
};

static void run_job(part_uploader *u, upload_job *job)
{
    objc_part part = { .part_number = job->part_number };
    aws_error err;
    aws_error_clear(&err);
    if (job->cancelled && *job->cancelled) {
        aws_error_set(&err, AWS_ERR_ARGUMENT, "not sent: the upload had already failed");
        job->done(job->arg, job->part_number, job->body, -1, &part, &err);
        u->pending--;
        return;
    }
    if (u->counters)
        u->counters->parts_in_flight++;
    int rc = u->objects->ops->mpu_upload_part(u->objects, job->key, job->upload_id, job->part_number,
                                              job->body, job->len, &part, &err);
    if (u->counters) {
        u->counters->parts_in_flight--;
        u->counters->s3_requests++;
        if (rc == 0) {
            u->counters->parts_uploaded++;
            u->counters->bytes_uploaded += job->len;
        } else {
            u->counters->s3_errors++;
        }
    }
    part.part_number = job->part_number;
    job->done(job->arg, job->part_number, job->body, rc == 0 ? 0 : -1, &part, &err);
    u->pending--;
}

static void *worker_main(void *arg)
{
    part_uploader *u = arg;
    pthread_mutex_lock(&u->lock);
    for (;;) {
        while (!u->head && !u->stopping && !u->retry_requested)
            pthread_cond_wait(&u->work, &u->lock);
        if (u->retry_requested && !u->stopping) {
            u->retry_requested = 0;
            pthread_mutex_unlock(&u->lock);
            part_uploader_retry_aborts(u);
            pthread_mutex_lock(&u->lock);
            continue;
        }
        if (!u->head)
            break;
        upload_job *job = u->head;
        u->head = job->next;
        if (!u->head)
            u->tail = NULL;
        pthread_mutex_unlock(&u->lock);
        run_job(u, job);
        free(job);
        pthread_mutex_lock(&u->lock);
    }
    pthread_mutex_unlock(&u->lock);
    return NULL;
}

part_uploader *part_uploader_new(object_client *objects, fs_counters *counters, int workers)
{
    if (!objects || workers < 1)
        return NULL;
    part_uploader *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->objects = objects;
    u->counters = counters;
    u->threads = calloc((size_t)workers, sizeof *u->threads);
    if (!u->threads || pthread_mutex_init(&u->lock, NULL) != 0) {
        free(u->threads);
        free(u);
        return NULL;
    }
    pthread_cond_init(&u->work, NULL);
    for (int i = 0; i < workers; i++) {
        if (pthread_create(&u->threads[i], NULL, worker_main, u) != 0)
            break;
        u->nthreads++;
    }
    if (u->nthreads == 0) {
        part_uploader_free(u);
        return NULL;
    }
    return u;
}

void part_uploader_free(part_uploader *u)
{
    if (!u)
        return;
    pthread_mutex_lock(&u->lock);
    u->stopping = 1;
    pthread_cond_broadcast(&u->work);
    pthread_mutex_unlock(&u->lock);
    for (int i = 0; i < u->nthreads; i++)
        pthread_join(u->threads[i], NULL);
    while (u->aborts) {
        deferred_abort *a = u->aborts;
        u->aborts = a->next;
        free(a->key);
        free(a->upload_id);
        free(a);
    }
    pthread_cond_destroy(&u->work);
    pthread_mutex_destroy(&u->lock);
    free(u->threads);
    free(u);
}

int part_uploader_submit(part_uploader *u, const char *key, const char *upload_id, int part_number,
                         uint8_t *body, size_t len, part_done_fn done, void *arg, const _Atomic int *cancelled)
{
    upload_job *job = calloc(1, sizeof *job);
    if (!job)
        return -ENOMEM;
    *job = (upload_job){ .key = key, .upload_id = upload_id, .part_number = part_number, .body = body,
                         .len = len, .done = done, .arg = arg, .cancelled = cancelled };
    u->pending++;
    pthread_mutex_lock(&u->lock);
    if (u->tail)
        u->tail->next = job;
    else
        u->head = job;
    u->tail = job;
    pthread_cond_signal(&u->work);
    pthread_mutex_unlock(&u->lock);
    return 0;
}

int part_uploader_pending(part_uploader *u)
{
    return u->pending;
}

void part_uploader_defer_abort(part_uploader *u, const char *key, const char *upload_id)
{
    deferred_abort *a = calloc(1, sizeof *a);
    if (a) {
        a->key = strdup(key);
        a->upload_id = strdup(upload_id);
    }
    if (!a || !a->key || !a->upload_id) {
        if (a) {
            free(a->key);
            free(a->upload_id);
            free(a);
        }
        return;
    }
    pthread_mutex_lock(&u->lock);
    a->next = u->aborts;
    u->aborts = a;
    pthread_mutex_unlock(&u->lock);
}

void part_uploader_request_abort_retry(part_uploader *u)
{
    pthread_mutex_lock(&u->lock);
    if (u->aborts) {
        u->retry_requested = 1;
        pthread_cond_signal(&u->work);
    }
    pthread_mutex_unlock(&u->lock);
}

int part_uploader_retry_aborts(part_uploader *u)
{
    pthread_mutex_lock(&u->lock);
    deferred_abort *list = u->aborts;
    u->aborts = NULL;
    pthread_mutex_unlock(&u->lock);
    int left = 0;
    while (list) {
        deferred_abort *a = list;
        list = a->next;
        aws_error err;
        aws_error_clear(&err);
        if (u->objects->ops->mpu_abort(u->objects, a->key, a->upload_id, &err) == 0) {
            log_info("upload %s: deferred abort of the failed multipart upload done", a->key);
            free(a->key);
            free(a->upload_id);
            free(a);
            continue;
        }
        char detail[256];
        log_error("upload %s: multipart upload %s could not be aborted (%s); its parts stay billed until "
                  "a lifecycle rule (AbortIncompleteMultipartUpload) removes them", a->key, a->upload_id,
                  aws_error_format(&err, detail, sizeof detail));
        left++;
        pthread_mutex_lock(&u->lock);
        a->next = u->aborts;
        u->aborts = a;
        pthread_mutex_unlock(&u->lock);
    }
    return left;
}
