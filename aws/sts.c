/* STS AssumeRole and AssumeRoleWithWebIdentity over the shared HTTP pool: form-encoded POST bodies,
 * XML answers. Secrets never appear in messages. */
#include "sts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "credentials_sources.h"
#include "http.h"
#include "kvlist.h"
#include "xml.h"

#define STS_API_VERSION "2011-06-15"

/* A growable form body: name=value pairs, values URI-encoded. */
typedef struct {
    char *data;
    size_t len;
    int failed;
} form_body;

static void form_add(form_body *form, const char *name, const char *value)
{
    if (form->failed)
        return;
    char *encoded = aws_uri_encode(value, strlen(value), 1);
    if (!encoded) {
        form->failed = 1;
        return;
    }
    size_t add = strlen(name) + strlen(encoded) + 2;
    char *grown = realloc(form->data, form->len + add + 1);
    if (!grown) {
        OPENSSL_cleanse(encoded, strlen(encoded));
        free(encoded);
        form->failed = 1;
        return;
    }
    form->data = grown;
    form->len += (size_t)sprintf(form->data + form->len, "%s%s=%s", form->len ? "&" : "", name, encoded);
    OPENSSL_cleanse(encoded, strlen(encoded));
    free(encoded);
}

static void form_free(form_body *form)
{
    if (form->data) {
        OPENSSL_cleanse(form->data, form->len);   /* may hold a web identity token */
        free(form->data);
    }
}

static void copy_field(char *dst, size_t cap, const char *src, int *ok)
{
    if (!src || !*src || strlen(src) >= cap) {
        *ok = 0;
        return;
    }
    memcpy(dst, src, strlen(src) + 1);
}

/* Depth-first search for the first element called `name`. */
static const xml_node *find_element(const xml_node *node, const char *name)
{
    if (!node)
        return NULL;
    if (strcmp(node->name, name) == 0)
        return node;
    for (const xml_node *child = node->first_child; child; child = child->next) {
        const xml_node *found = find_element(child, name);
        if (found)
            return found;
    }
    return NULL;
}

int sts_parse_credentials(const char *xml, size_t len, aws_credentials *out, aws_error *err)
{
    xml_node *root = xml_parse(xml, len, err);
    if (!root)
        return err && err->kind ? err->kind : AWS_ERR_PARSE;
    const xml_node *creds = find_element(root, "Credentials");
    int ok = creds != NULL;
    memset(out, 0, sizeof(*out));
    if (ok) {
        copy_field(out->access_key_id, sizeof(out->access_key_id), xml_child_text(creds, "AccessKeyId"), &ok);
        copy_field(out->secret_access_key, sizeof(out->secret_access_key),
                   xml_child_text(creds, "SecretAccessKey"), &ok);
        copy_field(out->session_token, sizeof(out->session_token), xml_child_text(creds, "SessionToken"), &ok);
        const char *expiration = xml_child_text(creds, "Expiration");
        out->expiration = expiration ? credentials_parse_time(expiration) : -1;
        if (out->expiration <= 0)
            ok = 0;
    }
    xml_free_wipe(root);   /* the tree holds the secret key and the session token */
    if (!ok) {
        OPENSSL_cleanse(out, sizeof(*out));
        return aws_error_set(err, AWS_ERR_PARSE, "STS answer without complete <Credentials>");
    }
    return AWS_OK;
}

/* What to do with a successful answer body. */
typedef int (*sts_answer_fn)(const char *body, size_t len, void *out, aws_error *err);

static int parse_credentials_answer(const char *body, size_t len, void *out, aws_error *err)
{
    return sts_parse_credentials(body, len, out, err);
}

/* signing_creds NULL with sign=1: the session's provider signs; sign=0: unsigned. */
static int sts_call(aws_session *session, form_body *form, int sign, const sigv4_credentials *signing_creds,
                    sts_answer_fn on_answer, void *out, aws_error *err)
{
    if (form->failed)
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory building an STS request");
    kv_list headers;
    kv_list_init(&headers);
    if (kv_list_add(&headers, "content-type", "application/x-www-form-urlencoded; charset=utf-8") != 0) {
        kv_list_free(&headers);
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory building an STS request");
    }
    http_sigv4_signer signer = {
        .session = session,
        .credentials = signing_creds,
        .service = "sts",
        .region = session->config.region,
        .payload_hash = NULL,
        .normalize_path = 1,
        .add_content_sha256_header = 0,
    };
    http_request req = {
        .method = "POST",
        .endpoint = aws_session_endpoint(session, "sts"),
        .path = "/",
        .headers = &headers,
        .body = (const uint8_t *)form->data,
        .body_len = form->len,
        .sink = HTTP_SINK_GROW,
        .sign = sign ? http_sign_sigv4 : NULL,
        .sign_ctx = sign ? &signer : NULL,
        .service_name = "STS",
    };
    http_response resp;
    http_response_init(&resp);
    int rc = http_execute(session->http, &req, &resp, err);
    if (rc == AWS_OK)
        rc = on_answer((const char *)resp.body, resp.body_len, out, err);
    if (resp.body)
        OPENSSL_cleanse(resp.body, resp.body_len);
    http_response_free(&resp);
    kv_list_free(&headers);
    return rc;
}

static void default_session_name(char *out, size_t cap)
{
    snprintf(out, cap, "s3csefs-%lld", (long long)time(NULL));
}

int sts_assume_role(aws_session *session, const sigv4_credentials *source, const sts_assume_role_params *params,
                    aws_credentials *out, aws_error *err)
{
    if (!session || !source || !params || !params->role_arn || !*params->role_arn)
        return aws_error_set(err, AWS_ERR_ARGUMENT, "AssumeRole needs a session, source credentials and a role");
    char session_name[64];
    if (params->role_session_name && *params->role_session_name)
        snprintf(session_name, sizeof(session_name), "%s", params->role_session_name);
    else
        default_session_name(session_name, sizeof(session_name));
    form_body form = { 0 };
    form_add(&form, "Action", "AssumeRole");
    form_add(&form, "Version", STS_API_VERSION);
    form_add(&form, "RoleArn", params->role_arn);
    form_add(&form, "RoleSessionName", session_name);
    if (params->external_id && *params->external_id)
        form_add(&form, "ExternalId", params->external_id);
    if (params->duration_seconds > 0) {
        char duration[16];
        snprintf(duration, sizeof(duration), "%d", params->duration_seconds);
        form_add(&form, "DurationSeconds", duration);
    }
    int rc = sts_call(session, &form, 1, source, parse_credentials_answer, out, err);
    form_free(&form);
    if (rc == AWS_OK)
        snprintf(out->source, sizeof(out->source), "assume-role");
    else if (err && err->kind == AWS_ERR_SERVICE && !err->message[0])
        snprintf(err->message, sizeof(err->message), "AssumeRole %s failed", params->role_arn);
    return rc;
}

int sts_assume_role_with_web_identity(aws_session *session, const char *role_arn, const char *session_name,
                                      const char *token, aws_credentials *out, aws_error *err)
{
    if (!session || !role_arn || !*role_arn || !token || !*token)
        return aws_error_set(err, AWS_ERR_ARGUMENT, "AssumeRoleWithWebIdentity needs a role and a token");
    char name[64];
    if (session_name && *session_name)
        snprintf(name, sizeof(name), "%s", session_name);
    else
        default_session_name(name, sizeof(name));
    form_body form = { 0 };
    form_add(&form, "Action", "AssumeRoleWithWebIdentity");
    form_add(&form, "Version", STS_API_VERSION);
    form_add(&form, "RoleArn", role_arn);
    form_add(&form, "RoleSessionName", name);
    form_add(&form, "WebIdentityToken", token);
    int rc = sts_call(session, &form, 0, NULL, parse_credentials_answer, out, err);
    form_free(&form);
    if (rc == AWS_OK)
        snprintf(out->source, sizeof(out->source), "web-identity");
    return rc;
}

typedef struct {
    char *arn;
    size_t cap;
} arn_buffer;

static int parse_caller_identity(const char *body, size_t len, void *out, aws_error *err)
{
    arn_buffer *buf = out;
    xml_node *root = xml_parse(body, len, err);
    if (!root)
        return err && err->kind ? err->kind : AWS_ERR_PARSE;
    const xml_node *result = find_element(root, "GetCallerIdentityResult");
    const char *arn = result ? xml_child_text(result, "Arn") : NULL;
    int rc = AWS_OK;
    if (!arn || !*arn || strlen(arn) >= buf->cap)
        rc = aws_error_set(err, AWS_ERR_PARSE, "GetCallerIdentity answer without a usable <Arn>");
    else
        memcpy(buf->arn, arn, strlen(arn) + 1);
    xml_free(root);
    return rc;
}

int sts_get_caller_identity(aws_session *session, const sigv4_credentials *creds, char *arn_out, size_t cap,
                            aws_error *err)
{
    if (!session || !arn_out || cap == 0)
        return aws_error_set(err, AWS_ERR_ARGUMENT, "GetCallerIdentity needs a session and a buffer");
    form_body form = { 0 };
    form_add(&form, "Action", "GetCallerIdentity");
    form_add(&form, "Version", STS_API_VERSION);
    arn_buffer buf = { .arn = arn_out, .cap = cap };
    int rc = sts_call(session, &form, 1, creds, parse_caller_identity, &buf, err);
    form_free(&form);
    return rc;
}
