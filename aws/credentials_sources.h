/* Private to the credentials provider: the individual sources of the chain, the refresh margin and a
 * test hook. Each source returns 0 with *out filled (out->source set), CREDENTIALS_NOT_CONFIGURED when
 * it does not apply here (the chain moves on), or an aws_err_kind with err set when it applies but
 * failed (the chain stops: a broken configured source must not silently fall through to another
 * identity). */
#ifndef S3CSEFS_CREDENTIALS_SOURCES_H
#define S3CSEFS_CREDENTIALS_SOURCES_H

#include "aws_session.h"
#include "credentials.h"
#include "ini.h"

#define CREDENTIALS_NOT_CONFIGURED (-1)
#define CREDENTIALS_DEFAULT_REFRESH_MARGIN_S 300
#define CREDENTIALS_DEFAULT_MIN_REFRESH_INTERVAL_S 10

/* (1) AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN. */
int credentials_from_env(aws_credentials *out, aws_error *err);
/* (2) the profile in the shared files: static keys, or role_arn with source_profile / credential_source
 * / web_identity_token_file. */
int credentials_from_profile(aws_session *session, aws_credentials *out, aws_error *err);
/* (3) AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN [+ AWS_ROLE_SESSION_NAME]. */
int credentials_from_web_identity_env(aws_session *session, aws_credentials *out, aws_error *err);
/* AssumeRoleWithWebIdentity with the token read from token_file (shared by (2) and (3)). */
int credentials_web_identity_from_file(aws_session *session, const char *role_arn, const char *session_name,
                                       const char *token_file, aws_credentials *out, aws_error *err);
/* (4) ECS container endpoint. */
int credentials_from_ecs(aws_session *session, aws_credentials *out, aws_error *err);
/* (5) EC2 instance metadata, IMDSv2 only. */
int credentials_from_imds(aws_session *session, aws_credentials *out, aws_error *err);

/* Parses the JSON credentials document of ECS and IMDS ({"AccessKeyId", "SecretAccessKey", "Token",
 * "Expiration"}) into out. */
int credentials_parse_json(const char *json, size_t len, aws_credentials *out, aws_error *err);
/* "2026-01-02T03:04:05Z" (fractional seconds and offsets accepted) to time_t; -1 if malformed. */
time_t credentials_parse_time(const char *iso8601);

/* Refresh this many seconds before expiry (default CREDENTIALS_DEFAULT_REFRESH_MARGIN_S). */
void credentials_provider_set_refresh_margin(credentials_provider *prov, int seconds);

/* While credentials are inside the refresh margin but still valid, refresh attempts (failed, or giving
 * credentials that are again inside the margin) are at least this far apart (default
 * CREDENTIALS_DEFAULT_MIN_REFRESH_INTERVAL_S), so a slow or failing source is not asked on every
 * request. Expired or missing credentials are always fetched at once. */
void credentials_provider_set_min_refresh_interval(credentials_provider *prov, int seconds);

/* An explicitly chosen profile (mount option profile=, not AWS_PROFILE) skips the environment source,
 * as the AWS CLI does for --profile: the chain starts at the shared files. */
void credentials_provider_set_skip_env(credentials_provider *prov, int skip);

/* Test hook: replace the whole chain with one function. */
typedef int (*credentials_source_fn)(void *ctx, aws_credentials *out, aws_error *err);
void credentials_provider_set_source(credentials_provider *prov, credentials_source_fn fn, void *ctx);

#endif
