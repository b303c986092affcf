/* The credentials provider: walks the chain (environment, shared files, web identity, ECS, IMDS) once,
 * keeps the result, and refreshes temporary credentials a margin before they expire. Signers get a copy
 * taken under a mutex, so a refresh never hands out a half-written key pair; while one thread fetches
 * new credentials the others keep signing with the still-valid old ones. */
#include "credentials.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "aws_session.h"
#include "credentials_sources.h"
#include "secure_mem.h"

struct credentials_provider {
    aws_session *session;
    pthread_mutex_t data_lock;      /* guards cached/have_cached; held only for copies */
    pthread_mutex_t refresh_lock;   /* one fetch at a time */
    secure_buf *cached_mem;         /* locked, not dumped, wiped on free: holds `cached` */
    aws_credentials *cached;
    int have_cached;
    int refresh_margin_s;
    int min_refresh_interval_s;     /* between attempts while the cached credentials are still valid */
    time_t next_refresh_at;         /* no new attempt before this while they are still valid */
    /* With no usable credentials, a failed walk of the chain (IMDS alone may take seconds) is
     * remembered for min_refresh_interval_s, so requests fail fast instead of each walking it again. */
    aws_error last_failure;
    time_t failure_until;
    int skip_env;                   /* an explicit profile was chosen */
    credentials_source_fn source;   /* test hook; NULL = the real chain */
    void *source_ctx;
};

credentials_provider *credentials_provider_new(aws_session *session)
{
    credentials_provider *prov = calloc(1, sizeof(*prov));
    if (!prov)
        return NULL;
    if (pthread_mutex_init(&prov->data_lock, NULL) != 0) {
        free(prov);
        return NULL;
    }
    if (pthread_mutex_init(&prov->refresh_lock, NULL) != 0) {
        pthread_mutex_destroy(&prov->data_lock);
        free(prov);
        return NULL;
    }
    prov->cached_mem = secure_buf_new(sizeof(aws_credentials));
    if (!prov->cached_mem) {
        pthread_mutex_destroy(&prov->refresh_lock);
        pthread_mutex_destroy(&prov->data_lock);
        free(prov);
        return NULL;
    }
    prov->cached = (aws_credentials *)prov->cached_mem->bytes;
    prov->session = session;
    prov->refresh_margin_s = CREDENTIALS_DEFAULT_REFRESH_MARGIN_S;
    prov->min_refresh_interval_s = CREDENTIALS_DEFAULT_MIN_REFRESH_INTERVAL_S;
    return prov;
}

void credentials_provider_free(credentials_provider *prov)
{
    if (!prov)
        return;
    pthread_mutex_destroy(&prov->data_lock);
    pthread_mutex_destroy(&prov->refresh_lock);
    secure_buf_free(prov->cached_mem);
    OPENSSL_cleanse(prov, sizeof(*prov));
    free(prov);
}

void credentials_provider_set_refresh_margin(credentials_provider *prov, int seconds)
{
    if (!prov)
        return;
    pthread_mutex_lock(&prov->data_lock);
    prov->refresh_margin_s = seconds < 0 ? 0 : seconds;
    pthread_mutex_unlock(&prov->data_lock);
}

void credentials_provider_set_min_refresh_interval(credentials_provider *prov, int seconds)
{
    if (!prov)
        return;
    pthread_mutex_lock(&prov->data_lock);
    prov->min_refresh_interval_s = seconds < 0 ? 0 : seconds;
    prov->next_refresh_at = 0;
    prov->failure_until = 0;
    pthread_mutex_unlock(&prov->data_lock);
}

void credentials_provider_set_skip_env(credentials_provider *prov, int skip)
{
    if (prov)
        prov->skip_env = skip;
}

void credentials_provider_set_source(credentials_provider *prov, credentials_source_fn fn, void *ctx)
{
    if (!prov)
        return;
    pthread_mutex_lock(&prov->refresh_lock);
    pthread_mutex_lock(&prov->data_lock);
    prov->source = fn;
    prov->source_ctx = ctx;
    OPENSSL_cleanse(prov->cached, sizeof(*prov->cached));
    prov->have_cached = 0;
    prov->failure_until = 0;
    pthread_mutex_unlock(&prov->data_lock);
    pthread_mutex_unlock(&prov->refresh_lock);
}

void credentials_as_sigv4(const aws_credentials *c, sigv4_credentials *out)
{
    out->access_key_id = c->access_key_id;
    out->secret_access_key = c->secret_access_key;
    out->session_token = c->session_token[0] ? c->session_token : NULL;
}

/* The chain in its documented order; the first source that applies decides. */
static int resolve_chain(aws_session *session, int skip_env, aws_credentials *out, aws_error *err)
{
    int rc = skip_env ? CREDENTIALS_NOT_CONFIGURED : credentials_from_env(out, err);
    if (rc == CREDENTIALS_NOT_CONFIGURED)
        rc = credentials_from_profile(session, out, err);
    if (rc == CREDENTIALS_NOT_CONFIGURED)
        rc = credentials_from_web_identity_env(session, out, err);
    if (rc == CREDENTIALS_NOT_CONFIGURED)
        rc = credentials_from_ecs(session, out, err);
    if (rc == CREDENTIALS_NOT_CONFIGURED)
        rc = credentials_from_imds(session, out, err);
    if (rc == CREDENTIALS_NOT_CONFIGURED)
        rc = aws_error_set(err, AWS_ERR_CREDENTIALS,
                           "no AWS credentials found (tried environment, profile \"%s\" in %s and %s, web "
                           "identity, ECS, EC2 instance metadata)",
                           session->config.profile,
                           session->config.credentials_file[0] ? session->config.credentials_file : "(none)",
                           session->config.config_file[0] ? session->config.config_file : "(none)");
    return rc;
}

enum freshness { CREDS_MISSING, CREDS_EXPIRED, CREDS_DUE_FOR_REFRESH, CREDS_FRESH };

static enum freshness freshness_locked(const credentials_provider *prov, time_t now)
{
    if (!prov->have_cached)
        return CREDS_MISSING;
    if (prov->cached->expiration == 0)
        return CREDS_FRESH;
    if (now >= prov->cached->expiration)
        return CREDS_EXPIRED;
    /* Inside the margin, but a refresh was just tried (failed, or gave equally short-lived credentials):
     * keep using these for a moment rather than asking the source on every request. */
    if (now >= prov->cached->expiration - prov->refresh_margin_s && now >= prov->next_refresh_at)
        return CREDS_DUE_FOR_REFRESH;
    return CREDS_FRESH;
}

/* Copies the cached credentials if they are at least `wanted` fresh; returns the freshness seen. */
static enum freshness copy_if(credentials_provider *prov, enum freshness wanted, aws_credentials *out)
{
    pthread_mutex_lock(&prov->data_lock);
    enum freshness f = freshness_locked(prov, time(NULL));
    if (f >= wanted)
        memcpy(out, prov->cached, sizeof(*out));
    pthread_mutex_unlock(&prov->data_lock);
    return f;
}

/* The remembered failure, if still in force and nothing usable is cached: its kind, else 0. */
static int recent_failure(credentials_provider *prov, aws_error *err)
{
    pthread_mutex_lock(&prov->data_lock);
    time_t now = time(NULL);
    int rc = 0;
    if (now < prov->failure_until && freshness_locked(prov, now) <= CREDS_EXPIRED) {
        if (err)
            *err = prov->last_failure;
        rc = prov->last_failure.kind ? (int)prov->last_failure.kind : AWS_ERR_CREDENTIALS;
    }
    pthread_mutex_unlock(&prov->data_lock);
    return rc;
}

int credentials_get(credentials_provider *prov, aws_credentials *out, aws_error *err)
{
    aws_error_clear(err);
    if (!prov || !out)
        return aws_error_set(err, AWS_ERR_ARGUMENT, "credentials_get: NULL argument");

    enum freshness seen = copy_if(prov, CREDS_FRESH, out);
    if (seen == CREDS_FRESH)
        return AWS_OK;

    if (seen == CREDS_DUE_FOR_REFRESH) {
        /* Someone else is already refreshing: the old credentials are still valid, use them. */
        if (pthread_mutex_trylock(&prov->refresh_lock) != 0) {
            if (copy_if(prov, CREDS_DUE_FOR_REFRESH, out) >= CREDS_DUE_FOR_REFRESH)
                return AWS_OK;
            pthread_mutex_lock(&prov->refresh_lock);
        }
    } else {
        int failed = recent_failure(prov, err);
        if (failed)
            return failed;
        pthread_mutex_lock(&prov->refresh_lock);
    }

    /* Another thread may have refreshed (or failed to) while we waited for the lock. */
    if (copy_if(prov, CREDS_FRESH, out) == CREDS_FRESH) {
        pthread_mutex_unlock(&prov->refresh_lock);
        return AWS_OK;
    }
    int failed = recent_failure(prov, err);
    if (failed) {
        pthread_mutex_unlock(&prov->refresh_lock);
        return failed;
    }

    aws_credentials fetched;
    memset(&fetched, 0, sizeof(fetched));
    int rc = prov->source ? prov->source(prov->source_ctx, &fetched, err)
                          : resolve_chain(prov->session, prov->skip_env, &fetched, err);
    if (rc == CREDENTIALS_NOT_CONFIGURED)
        rc = aws_error_set(err, AWS_ERR_CREDENTIALS, "no AWS credentials found");
    pthread_mutex_lock(&prov->data_lock);
    prov->next_refresh_at = time(NULL) + prov->min_refresh_interval_s;
    pthread_mutex_unlock(&prov->data_lock);
    if (rc == AWS_OK) {
        pthread_mutex_lock(&prov->data_lock);
        memcpy(prov->cached, &fetched, sizeof(fetched));
        prov->have_cached = 1;
        prov->failure_until = 0;
        memcpy(out, &fetched, sizeof(fetched));
        pthread_mutex_unlock(&prov->data_lock);
    } else if (copy_if(prov, CREDS_DUE_FOR_REFRESH, out) >= CREDS_DUE_FOR_REFRESH) {
        /* The refresh failed but the old credentials have not expired yet: keep going with them; a
         * call after min_refresh_interval_s tries again. */
        aws_error_clear(err);
        rc = AWS_OK;
    } else {
        pthread_mutex_lock(&prov->data_lock);
        if (err)
            prov->last_failure = *err;
        else
            aws_error_set(&prov->last_failure, (aws_err_kind)rc, "AWS credentials could not be obtained");
        prov->failure_until = time(NULL) + prov->min_refresh_interval_s;
        pthread_mutex_unlock(&prov->data_lock);
    }
    OPENSSL_cleanse(&fetched, sizeof(fetched));
    pthread_mutex_unlock(&prov->refresh_lock);
    return rc;
}
