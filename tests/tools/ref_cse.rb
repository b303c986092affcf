#!/usr/bin/ruby
# frozen_string_literal: true

# Second, official reference for the S3 client-side-encryption format: the AWS SDK for Ruby's own
# encryption clients (Debian ruby-aws-sdk-s3 / ruby-aws-sdk-kms), independent of s3csefs and of
# ref_cse.py.
#
#   ref_cse.rb put LOCAL KEY        Aws::S3::Encryption::Client (V1): KMS key, AES/CBC, wrap "kms"
#   ref_cse.rb get KEY LOCAL        same client, decrypt
#   ref_cse.rb put-v2 LOCAL KEY     Aws::S3::EncryptionV2::Client: kms+context, AES/GCM/NoPadding
#   ref_cse.rb get-v2 KEY LOCAL     V2 client with security_profile :v2_and_legacy (reads CBC/kms too)
#   ref_cse.rb get-legacy KEY LOCAL blog-style objects (x-amz-key, no wrap-alg), which neither SDK
#                                   client accepts: KMS Decrypt (matdesc context, then none) + OpenSSL
#
# Options: --bucket (default $S3CSEFS_TEST_BUCKET), --key-id (default $S3CSEFS_TEST_KEY_ARN),
# --endpoint (default $AWS_ENDPOINT_URL), --region (default $AWS_REGION or us-east-1).
# Prints nothing on success; exits non-zero with a message on any error.

$VERBOSE = nil # the V1 client prints a deprecation warning on construction; keep stdout/stderr clean
require 'optparse'
require 'json'
require 'base64'
require 'openssl'
require 'aws-sdk-s3'
require 'aws-sdk-kms'

options = {
  bucket: ENV['S3CSEFS_TEST_BUCKET'],
  key_id: ENV['S3CSEFS_TEST_KEY_ARN'],
  endpoint: ENV['AWS_ENDPOINT_URL'],
  region: ENV['AWS_REGION'] || 'us-east-1'
}
parser = OptionParser.new do |o|
  o.banner = 'usage: ref_cse.rb {put|get|put-v2|get-v2|get-legacy} ARGS [options]'
  o.on('--bucket NAME') { |v| options[:bucket] = v }
  o.on('--key-id ARN') { |v| options[:key_id] = v }
  o.on('--endpoint URL') { |v| options[:endpoint] = v }
  o.on('--region NAME') { |v| options[:region] = v }
end

def fail_with(message, status = 2)
  $stderr.puts "ref_cse.rb: #{message}"
  exit status
end

begin
  parser.parse!
rescue OptionParser::ParseError => e
  fail_with(e.message)
end
command, first, second = ARGV
fail_with(parser.banner) unless command && first && second && ARGV.size == 3
fail_with('--bucket or S3CSEFS_TEST_BUCKET is required') unless options[:bucket]
fail_with('--key-id or S3CSEFS_TEST_KEY_ARN is required') unless options[:key_id]

client_options = { region: options[:region] }
client_options[:endpoint] = options[:endpoint] if options[:endpoint]
# Credentials come from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
s3 = Aws::S3::Client.new(**client_options, force_path_style: true)
kms = Aws::KMS::Client.new(**client_options)

def v1_client(s3, kms, key_id)
  Aws::S3::Encryption::Client.new(client: s3, kms_client: kms, kms_key_id: key_id)
end

# For reading, the V2 client is built with :kms_allow_decrypt_with_any_cmk: otherwise it sends KeyId
# with Decrypt, which the KMS model in Debian's ruby-aws-sdk-kms (1.6x) does not know and refuses
# client-side ("unexpected value at params[:key_id]").
def v2_client(s3, kms, key_id)
  Aws::S3::EncryptionV2::Client.new(client: s3, kms_client: kms, kms_key_id: key_id,
                                    key_wrap_schema: :kms_context,
                                    content_encryption_schema: :aes_gcm_no_padding,
                                    security_profile: :v2_and_legacy)
end

# Atomic download: LOCAL appears only once the whole object decrypted (and its tag/padding checked).
def download(local)
  partial = "#{local}.ref-cse-rb-partial"
  File.open(partial, 'wb') { |f| yield f }
  File.rename(partial, local)
ensure
  File.unlink(partial) if partial && File.exist?(partial)
end

def get_legacy(s3, kms, bucket, key, key_id, local)
  metadata = s3.head_object(bucket: bucket, key: key).metadata
  blob_b64 = metadata['x-amz-key'] || metadata['x-amz-key-v2']
  raise 'no x-amz-key in the metadata' unless blob_b64

  blob = Base64.strict_decode64(blob_b64)
  matdesc = JSON.parse(metadata['x-amz-matdesc'] || '{}')
  data_key =
    begin
      kms.decrypt(ciphertext_blob: blob, encryption_context: matdesc)
    rescue Aws::KMS::Errors::InvalidCiphertextException
      kms.decrypt(ciphertext_blob: blob)
    end
  # No KeyId on Decrypt (see v2_client); check the key afterwards instead.
  raise "data key is under #{data_key.key_id}, expected #{key_id}" unless data_key.key_id == key_id

  data_key = data_key.plaintext
  cipher = OpenSSL::Cipher.new('aes-256-cbc').decrypt
  cipher.key = data_key
  cipher.iv = Base64.strict_decode64(metadata['x-amz-iv'])
  body = s3.get_object(bucket: bucket, key: key).body.read
  download(local) { |f| f.write(cipher.update(body) + cipher.final) }
end

begin
  case command
  when 'put'
    File.open(first, 'rb') do |f|
      v1_client(s3, kms, options[:key_id]).put_object(bucket: options[:bucket], key: second, body: f)
    end
  when 'put-v2'
    File.open(first, 'rb') do |f|
      v2_client(s3, kms, options[:key_id]).put_object(bucket: options[:bucket], key: second, body: f)
    end
  when 'get'
    download(second) do |f|
      v1_client(s3, kms, options[:key_id]).get_object(bucket: options[:bucket], key: first,
                                                      response_target: f)
    end
  when 'get-v2'
    download(second) do |f|
      v2_client(s3, kms, :kms_allow_decrypt_with_any_cmk).get_object(
        bucket: options[:bucket], key: first, response_target: f
      )
    end
  when 'get-legacy'
    get_legacy(s3, kms, options[:bucket], first, options[:key_id], second)
  else
    fail_with("unknown command #{command}\n#{parser.banner}")
  end
rescue Aws::Errors::ServiceError, Aws::S3::Encryption::Errors::DecryptionError,
       Aws::S3::EncryptionV2::Errors::DecryptionError, OpenSSL::Cipher::CipherError,
       ArgumentError, SystemCallError, RuntimeError, JSON::ParserError => e
  fail_with("#{command} failed: #{e.class}: #{e.message}", 1)
end
