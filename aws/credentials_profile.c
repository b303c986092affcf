/* Credentials from the shared files (~/.aws/credentials and ~/.aws/config, or the paths given by
 * options / AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE): static keys of the profile, or a role to
 * assume (role_arn) with credentials from source_profile (followed recursively), credential_source
 * (Environment, Ec2InstanceMetadata, EcsContainer) or web_identity_token_file. Settings in the
 * credentials file win over the same settings in the config file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "aws_text.h"
#include "credentials_sources.h"
#include "ini.h"
#include "sts.h"

#define MAX_ROLE_CHAIN 5

typedef struct {
    aws_session *session;
    ini_file *credentials;     /* either may be NULL (file absent) */
    ini_file *config;
} shared_files;

static const char *profile_value(const shared_files *files, const char *profile, const char *key)
{
    const char *v = ini_has_section(files->credentials, profile) ? ini_get(files->credentials, profile, key)
                                                                 : NULL;
    if (!v)
        v = ini_get(files->config, ini_config_profile_section(files->config, profile), key);
    return v && *v ? v : NULL;
}

/* aws_access_key_id / aws_secret_access_key [/ aws_session_token] of one profile. */
static int static_keys(const shared_files *files, const char *profile, aws_credentials *out, aws_error *err)
{
    const char *id = profile_value(files, profile, "aws_access_key_id");
    const char *secret = profile_value(files, profile, "aws_secret_access_key");
    const char *token = profile_value(files, profile, "aws_session_token");
    if (!id && !secret)
        return CREDENTIALS_NOT_CONFIGURED;
    if (!id || !secret)
        return aws_error_set(err, AWS_ERR_CREDENTIALS,
                             "profile \"%s\" has only one of aws_access_key_id and aws_secret_access_key",
                             profile);
    memset(out, 0, sizeof(*out));
    if (aws_copy_checked(out->access_key_id, sizeof(out->access_key_id), id) ||
        aws_copy_checked(out->secret_access_key, sizeof(out->secret_access_key), secret) ||
        (token && aws_copy_checked(out->session_token, sizeof(out->session_token), token))) {
        OPENSSL_cleanse(out, sizeof(*out));
        return aws_error_set(err, AWS_ERR_CREDENTIALS, "credentials of profile \"%s\" are too long", profile);
    }
    snprintf(out->source, sizeof(out->source), "profile");
    return AWS_OK;
}

static int profile_credentials(const shared_files *files, const char *profile, int depth, aws_credentials *out,
                               aws_error *err);

/* Credentials to call AssumeRole with, per source_profile or credential_source. */
static int role_source_credentials(const shared_files *files, const char *profile, int depth,
                                   aws_credentials *out, aws_error *err)
{
    const char *source_profile = profile_value(files, profile, "source_profile");
    const char *credential_source = profile_value(files, profile, "credential_source");
    int rc;
    if (source_profile && credential_source)
        return aws_error_set(err, AWS_ERR_CONFIG,
                             "profile \"%s\" sets both source_profile and credential_source", profile);
    if (source_profile) {
        /* A profile naming itself as source means: its own static keys assume its own role. */
        if (strcmp(source_profile, profile) == 0)
            rc = static_keys(files, profile, out, err);
        else
            rc = profile_credentials(files, source_profile, depth + 1, out, err);
        if (rc == CREDENTIALS_NOT_CONFIGURED)
            rc = aws_error_set(err, AWS_ERR_CREDENTIALS, "source_profile \"%s\" of profile \"%s\" has no credentials",
                               source_profile, profile);
        return rc;
    }
    if (!credential_source)
        return aws_error_set(err, AWS_ERR_CONFIG,
                             "profile \"%s\" has role_arn but neither source_profile nor credential_source", profile);
    if (strcmp(credential_source, "Environment") == 0)
        rc = credentials_from_env(out, err);
    else if (strcmp(credential_source, "Ec2InstanceMetadata") == 0)
        rc = credentials_from_imds(files->session, out, err);
    else if (strcmp(credential_source, "EcsContainer") == 0)
        rc = credentials_from_ecs(files->session, out, err);
    else
        return aws_error_set(err, AWS_ERR_CONFIG, "profile \"%s\": unknown credential_source \"%s\"", profile,
                             credential_source);
    if (rc == CREDENTIALS_NOT_CONFIGURED)
        rc = aws_error_set(err, AWS_ERR_CREDENTIALS, "credential_source %s of profile \"%s\" gave no credentials",
                           credential_source, profile);
    return rc;
}

static int assume_profile_role(const shared_files *files, const char *profile, const char *role_arn, int depth,
                               aws_credentials *out, aws_error *err)
{
    const char *session_name = profile_value(files, profile, "role_session_name");
    const char *token_file = profile_value(files, profile, "web_identity_token_file");
    if (token_file)
        return credentials_web_identity_from_file(files->session, role_arn, session_name, token_file, out, err);

    aws_credentials source;
    int rc = role_source_credentials(files, profile, depth, &source, err);
    if (rc != AWS_OK) {
        OPENSSL_cleanse(&source, sizeof(source));
        return rc;
    }
    const char *duration = profile_value(files, profile, "duration_seconds");
    sts_assume_role_params params = {
        .role_arn = role_arn,
        .role_session_name = session_name,
        .external_id = profile_value(files, profile, "external_id"),
        .duration_seconds = duration ? atoi(duration) : 0,
    };
    sigv4_credentials signing;
    credentials_as_sigv4(&source, &signing);
    rc = sts_assume_role(files->session, &signing, &params, out, err);
    OPENSSL_cleanse(&source, sizeof(source));
    return rc;
}

static int profile_credentials(const shared_files *files, const char *profile, int depth, aws_credentials *out,
                               aws_error *err)
{
    if (depth >= MAX_ROLE_CHAIN)
        return aws_error_set(err, AWS_ERR_CONFIG, "source_profile chain longer than %d at profile \"%s\"",
                             MAX_ROLE_CHAIN, profile);
    int exists = ini_has_section(files->credentials, profile) ||
                 ini_config_profile_section(files->config, profile) != NULL;
    if (!exists) {
        if (depth == 0 && strcmp(profile, "default") == 0)
            return CREDENTIALS_NOT_CONFIGURED;
        return aws_error_set(err, AWS_ERR_CONFIG, "AWS profile \"%s\" not found in %s or %s", profile,
                             files->session->config.credentials_file, files->session->config.config_file);
    }
    const char *role_arn = profile_value(files, profile, "role_arn");
    if (role_arn)
        return assume_profile_role(files, profile, role_arn, depth, out, err);
    return static_keys(files, profile, out, err);
}

int credentials_from_profile(aws_session *session, aws_credentials *out, aws_error *err)
{
    shared_files files = { .session = session };
    aws_error load_err;
    files.credentials = ini_load(session->config.credentials_file, &load_err);
    if (!files.credentials && load_err.kind != AWS_OK) {
        if (err)
            *err = load_err;
        return load_err.kind;
    }
    files.config = ini_load(session->config.config_file, &load_err);
    if (!files.config && load_err.kind != AWS_OK) {
        ini_free(files.credentials);
        if (err)
            *err = load_err;
        return load_err.kind;
    }
    int rc = profile_credentials(&files, session->config.profile, 0, out, err);
    ini_free(files.credentials);
    ini_free(files.config);
    return rc;
}
