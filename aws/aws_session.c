/* The AWS session: resolves region, endpoints, profile and shared-file paths from options and the
 * environment (in the documented order), refuses plain http to non-loopback hosts, and owns the
 * credentials provider, HTTP pool and signing-key cache that every client shares. */
#include "aws_session.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "aws_text.h"
#include "credentials.h"
#include "credentials_sources.h"
#include "http.h"
#include "ini.h"
#include "sigv4.h"

#define DEFAULT_REGION "us-east-1"

void aws_config_defaults(aws_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->path_style = -1;
    cfg->allow_http = 0;
    cfg->max_attempts = 10;
    cfg->base_delay_ms = 100;
    cfg->max_delay_ms = 20000;
    cfg->total_timeout_ms = 300000;
    cfg->connect_timeout_ms = 10000;
    cfg->low_speed_timeout_s = 60;
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* HOME, else the password database (fstab mounts at boot run without HOME). NULL if neither. */
static const char *home_directory(void)
{
    const char *home = env_nonempty("HOME");
    if (home)
        return home;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
}

/* Fills out with option, else $env_name, else ~/.aws/<file_name>, expanding a leading "~/". */
static int resolve_file(char *out, size_t cap, const char *env_name, const char *file_name, aws_error *err)
{
    char chosen[1024];
    if (out[0])
        snprintf(chosen, sizeof(chosen), "%s", out);
    else if (env_nonempty(env_name))
        snprintf(chosen, sizeof(chosen), "%s", env_nonempty(env_name));
    else
        snprintf(chosen, sizeof(chosen), "~/.aws/%s", file_name);

    const char *home = NULL;
    int n;
    if (strncmp(chosen, "~/", 2) == 0) {
        home = home_directory();
        if (!home) {
            out[0] = '\0';      /* no file: the chain skips the shared-file source */
            return 0;
        }
        n = snprintf(out, cap, "%s%s", home, chosen + 1);
    } else {
        n = snprintf(out, cap, "%s", chosen);
    }
    if (n < 0 || (size_t)n >= cap)
        return aws_error_set(err, AWS_ERR_CONFIG, "path of the AWS %s file is too long", file_name);
    return 0;
}

static int copy_setting(char *dst, size_t cap, const char *value, const char *what, aws_error *err)
{
    int n = snprintf(dst, cap, "%s", value);
    if (n < 0 || (size_t)n >= cap)
        return aws_error_set(err, AWS_ERR_CONFIG, "%s is too long", what);
    return 0;
}

static int resolve_region(aws_config *cfg, aws_error *err)
{
    if (cfg->region[0])
        return 0;
    const char *region = env_nonempty("AWS_REGION");
    if (!region)
        region = env_nonempty("AWS_DEFAULT_REGION");
    ini_file *config = NULL;
    if (!region) {
        aws_error load_err;
        config = ini_load(cfg->config_file, &load_err);
        if (!config && load_err.kind != AWS_OK) {
            if (err)
                *err = load_err;
            return load_err.kind;
        }
        region = ini_get(config, ini_config_profile_section(config, cfg->profile), "region");
    }
    int rc = copy_setting(cfg->region, sizeof(cfg->region), region && *region ? region : DEFAULT_REGION,
                          "region", err);
    ini_free(config);
    if (rc)
        return rc;
    for (const char *c = cfg->region; *c; c++)
        if (!aws_ascii_alnum((unsigned char)*c) && *c != '-')
            return aws_error_set(err, AWS_ERR_CONFIG, "invalid region name \"%s\"", cfg->region);
    return 0;
}

static void default_endpoint(const char *service, const char *region, char *out, size_t cap)
{
    const char *suffix = strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
    snprintf(out, cap, "https://%s.%s.%s", service, region, suffix);
}


/* Checks scheme and host, drops trailing slashes. */
static int validate_endpoint(char *endpoint, const char *service, int allow_http, aws_error *err)
{
    size_t len = strlen(endpoint);
    while (len > 0 && endpoint[len - 1] == '/')
        endpoint[--len] = '\0';
    const char *host;
    int is_http;
    if (strncasecmp(endpoint, "https://", 8) == 0) {
        host = endpoint + 8;
        is_http = 0;
    } else if (strncasecmp(endpoint, "http://", 7) == 0) {
        host = endpoint + 7;
        is_http = 1;
    } else {
        return aws_error_set(err, AWS_ERR_CONFIG, "%s endpoint \"%s\" must start with https:// or http://",
                             service, endpoint);
    }
    if (strchr(host, '/') || strchr(host, '?') || strchr(host, '@'))
        return aws_error_set(err, AWS_ERR_CONFIG,
                             "%s endpoint \"%s\" must be scheme://host[:port] with no path or user", service,
                             endpoint);
    size_t host_len;
    if (host[0] == '[') {
        const char *close = strchr(host, ']');
        if (!close)
            return aws_error_set(err, AWS_ERR_CONFIG, "%s endpoint \"%s\" has a bad IPv6 address", service,
                                 endpoint);
        host_len = (size_t)(close - host) + 1;
    } else {
        const char *colon = strchr(host, ':');
        host_len = colon ? (size_t)(colon - host) : strlen(host);
    }
    if (host_len == 0)
        return aws_error_set(err, AWS_ERR_CONFIG, "%s endpoint \"%s\" has no host", service, endpoint);
    if (is_http && !allow_http && !aws_host_is_loopback(host, host_len))
        return aws_error_set(err, AWS_ERR_CONFIG,
                             "%s endpoint \"%s\" uses plain http to a non-loopback host: use https%s",
                             service, endpoint,
                             strcmp(service, "s3") == 0 ? ", or set allow_http=1 if you really mean it" : "");
    return 0;
}

/* option, AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, else the AWS endpoint of the region. */
static int resolve_endpoint(char *endpoint, size_t cap, const char *service, const char *env_service,
                            const aws_config *cfg, aws_error *err)
{
    if (!endpoint[0]) {
        const char *value = env_nonempty(env_service);
        if (!value)
            value = env_nonempty("AWS_ENDPOINT_URL");
        if (value) {
            int rc = copy_setting(endpoint, cap, value, env_service, err);
            if (rc)
                return rc;
        } else {
            default_endpoint(service, cfg->region, endpoint, cap);
        }
    }
    /* allow_http is for S3 only: KMS answers carry plaintext data keys and STS answers credentials, so
     * those travel in clear only to a loopback test server. */
    int allow_http = strcmp(service, "s3") == 0 && cfg->allow_http;
    return validate_endpoint(endpoint, service, allow_http, err);
}

aws_session *aws_session_new(const aws_config *cfg, aws_error *err)
{
    aws_error_clear(err);
    aws_session *session = calloc(1, sizeof(*session));
    if (!session) {
        aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory creating the AWS session");
        return NULL;
    }
    if (cfg)
        session->config = *cfg;
    else
        aws_config_defaults(&session->config);
    aws_config *c = &session->config;
    int explicit_profile = c->profile[0] != '\0';

    if (!c->profile[0] &&
        copy_setting(c->profile, sizeof(c->profile),
                     env_nonempty("AWS_PROFILE") ? env_nonempty("AWS_PROFILE") : "default", "profile", err))
        goto fail;
    if (resolve_file(c->credentials_file, sizeof(c->credentials_file), "AWS_SHARED_CREDENTIALS_FILE",
                     "credentials", err) ||
        resolve_file(c->config_file, sizeof(c->config_file), "AWS_CONFIG_FILE", "config", err))
        goto fail;
    if (resolve_region(c, err))
        goto fail;
    if (resolve_endpoint(c->s3_endpoint, sizeof(c->s3_endpoint), "s3", "AWS_ENDPOINT_URL_S3", c, err) ||
        resolve_endpoint(c->kms_endpoint, sizeof(c->kms_endpoint), "kms", "AWS_ENDPOINT_URL_KMS", c, err) ||
        resolve_endpoint(c->sts_endpoint, sizeof(c->sts_endpoint), "sts", "AWS_ENDPOINT_URL_STS", c, err))
        goto fail;

    session->key_cache = sigv4_key_cache_new();
    if (!session->key_cache) {
        aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory creating the signing-key cache");
        goto fail;
    }
    http_client_config http_cfg;
    http_client_config_from_aws(c, &http_cfg);
    session->http = http_client_new(&http_cfg, err);
    if (!session->http) {
        if (err && err->kind == AWS_OK)
            aws_error_set(err, AWS_ERR_NO_MEMORY, "cannot create the HTTP client");
        goto fail;
    }
    session->credentials = credentials_provider_new(session);
    if (!session->credentials) {
        aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory creating the credentials provider");
        goto fail;
    }
    credentials_provider_set_skip_env(session->credentials, explicit_profile);
    return session;

fail:
    aws_session_free(session);
    return NULL;
}

void aws_session_free(aws_session *session)
{
    if (!session)
        return;
    credentials_provider_free(session->credentials);
    http_client_free(session->http);
    sigv4_key_cache_free(session->key_cache);
    free(session);
}

const char *aws_session_endpoint(const aws_session *session, const char *service)
{
    if (!session || !service)
        return NULL;
    if (strcmp(service, "s3") == 0)
        return session->config.s3_endpoint;
    if (strcmp(service, "kms") == 0)
        return session->config.kms_endpoint;
    if (strcmp(service, "sts") == 0)
        return session->config.sts_endpoint;
    return NULL;
}

/* Lower-case letters, digits, hyphens; 3..63 long; starts and ends alphanumeric. */
static int bucket_is_dns_label(const char *bucket)
{
    size_t len = strlen(bucket);
    if (len < 3 || len > 63)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = bucket[i];
        if (!((ch >= 'a' && ch <= 'z') || aws_ascii_digit((unsigned char)ch) || ch == '-'))
            return 0;
    }
    return bucket[0] != '-' && bucket[len - 1] != '-';
}

int aws_session_use_path_style(const aws_session *session, const char *bucket)
{
    if (!session)
        return 1;
    if (session->config.path_style == 0 || session->config.path_style == 1)
        return session->config.path_style;
    char aws_endpoint[512];
    default_endpoint("s3", session->config.region, aws_endpoint, sizeof(aws_endpoint));
    if (strcasecmp(session->config.s3_endpoint, aws_endpoint) != 0)
        return 1;
    return !bucket || !bucket_is_dns_label(bucket);
}
