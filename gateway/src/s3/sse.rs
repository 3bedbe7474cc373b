//! Server-side encryption on the S3 wire: which encryption a write asks for (its `x-amz-server-side-encryption*`
//! headers, else the bucket's default encryption), the customer key a read or a copy source gives, the headers
//! that report an object's encryption, and the bucket encryption configuration. The sealing itself is the data
//! layer's (`data::sse`).

use s3s::dto::*;
use s3s::{s3_error, S3Error, S3Request, S3Response, S3Result};
use serde::{Deserialize, Serialize};
use trove_cache::{ObjMeta, SseMeta};
use trove_namespace::BucketEntry;

use crate::data::sse::{self as seal, CustomerKey, Encryption};
use crate::s3::ctx::bucket;
use crate::s3::errors;
use crate::state::SharedState;

/// The bucket configuration's name in the registry.
pub const CONFIG: &str = "encryption";

/// A bucket's default encryption, as kept in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct BucketDefault {
    algorithm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kms_key_id: Option<String>,
}

fn bucket_default(entry: &BucketEntry) -> Option<BucketDefault> {
    entry.configs.get(CONFIG).and_then(|d| serde_json::from_str(d).ok())
}

/// The SSE-C key of an s3s input with the usual `sse_customer_*` fields (every write and read input has them).
macro_rules! customer_key_of {
    ($i:expr) => {
        $crate::s3::sse::customer_key(
            $i.sse_customer_algorithm.as_deref(),
            $i.sse_customer_key.as_deref(),
            $i.sse_customer_key_md5.as_deref(),
        )
    };
}
pub(crate) use customer_key_of;

/// The SSE-C headers of a request (or of a copy source): none, or a valid key.
pub fn customer_key(alg: Option<&str>, key: Option<&str>, md5: Option<&str>) -> S3Result<Option<CustomerKey>> {
    if alg.is_none() && key.is_none() && md5.is_none() {
        return Ok(None);
    }
    if alg != Some(seal::AES256) {
        return Err(s3_error!(
            InvalidArgument,
            "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm."
        ));
    }
    let key = key.ok_or_else(|| {
        s3_error!(
            InvalidArgument,
            "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key."
        )
    })?;
    let md5 = md5.ok_or_else(|| {
        s3_error!(
            InvalidArgument,
            "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key."
        )
    })?;
    CustomerKey::parse(key, md5).map(Some).ok_or_else(|| {
        s3_error!(InvalidArgument, "The calculated MD5 hash of the key did not match the hash that was provided.")
    })
}

/// The encryption a write asks for: its own headers, else the bucket's default; `None` for plaintext.
pub fn requested(
    state: &SharedState,
    entry: &BucketEntry,
    sse: Option<&ServerSideEncryption>,
    kms_key: Option<&str>,
    customer: Option<CustomerKey>,
) -> S3Result<Option<Encryption>> {
    let enc = match (sse.map(|s| s.as_str()), customer) {
        (Some(_), Some(_)) => {
            return Err(s3_error!(
                InvalidArgument,
                "Server Side Encryption with Customer provided key is incompatible with the encryption method specified"
            ))
        }
        (None, Some(c)) => Some(Encryption::Customer(c)),
        (Some(seal::AES256), None) => {
            if kms_key.is_some() {
                return Err(s3_error!(
                    InvalidArgument,
                    "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms"
                ));
            }
            Some(Encryption::S3)
        }
        (Some(seal::AWS_KMS), None) => Some(Encryption::Kms(kms_id(state, kms_key)?)),
        (Some(other), None) => {
            return Err(s3_error!(InvalidArgument, "The encryption method specified is not supported: {other}"))
        }
        (None, None) if kms_key.is_some() => {
            return Err(s3_error!(
                InvalidArgument,
                "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms"
            ))
        }
        (None, None) => match bucket_default(entry) {
            Some(d) if d.algorithm == seal::AWS_KMS => Some(Encryption::Kms(kms_id(state, d.kms_key_id.as_deref())?)),
            Some(_) => Some(Encryption::S3),
            None => None,
        },
    };
    if enc.is_some() && entry.bck.is_remote() {
        return Err(s3_error!(
            NotImplemented,
            "Server-side encryption through the cache of a cloud bucket is not supported: use the backend's own"
        ));
    }
    Ok(enc)
}

fn kms_id(state: &SharedState, id: Option<&str>) -> S3Result<String> {
    let id = id.ok_or_else(|| {
        s3_error!(
            InvalidArgument,
            "Server Side Encryption with AWS KMS needs a key id (x-amz-server-side-encryption-aws-kms-key-id)"
        )
    })?;
    if !state.sse.has_kms_key(id) {
        return Err(s3_error!(InvalidArgument, "Invalid keyId {id}"));
    }
    Ok(id.to_owned())
}

/// A new data key for `enc`, recorded in `meta`.
pub fn seal_new(state: &SharedState, enc: &Encryption, meta: &mut ObjMeta) -> S3Result<seal::DataKey> {
    let (key, sse) = seal::new_key(&state.sse, enc).map_err(errors::from_data)?;
    meta.sse = Some(sse);
    Ok(key)
}

/// The data key of an encrypted object for a read that gave `customer` (SSE-C objects need theirs).
pub fn open_key(state: &SharedState, sse: &SseMeta, customer: Option<&CustomerKey>) -> S3Result<seal::DataKey> {
    seal::data_key(&state.sse, sse, customer).map_err(errors::from_data)
}

/// A read of a plaintext object that names a customer key is an error in S3.
pub fn refuse_key_for_plaintext(meta: &ObjMeta, customer: Option<&CustomerKey>) -> S3Result<()> {
    if meta.sse.is_none() && customer.is_some() {
        return Err(s3_error!(InvalidRequest, "The encryption parameters are not applicable to this object."));
    }
    Ok(())
}

/// The headers that report an object's encryption.
pub fn headers(meta: &ObjMeta, h: &mut http::HeaderMap) {
    let Some(sse) = &meta.sse else { return };
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    if sse.customer {
        put("x-amz-server-side-encryption-customer-algorithm", seal::AES256);
        if let Some(md5) = &sse.customer_key_md5 {
            put("x-amz-server-side-encryption-customer-key-md5", md5);
        }
    } else {
        put("x-amz-server-side-encryption", &sse.algorithm);
        if let Some(id) = &sse.kms_key_id {
            put("x-amz-server-side-encryption-aws-kms-key-id", id);
        }
    }
}

/// Refuses `x-amz-server-side-encryption` on a read (S3 answers 400: it applies to writes only).
pub fn refuse_on_read<T>(req: &S3Request<T>) -> S3Result<()> {
    if req.headers.contains_key("x-amz-server-side-encryption")
        || req.headers.contains_key("x-amz-server-side-encryption-aws-kms-key-id")
    {
        return Err(s3_error!(
            InvalidArgument,
            "x-amz-server-side-encryption header is not supported for this operation."
        ));
    }
    Ok(())
}

fn not_found() -> S3Error {
    let mut e = S3Error::with_message(
        s3s::S3ErrorCode::Custom("ServerSideEncryptionConfigurationNotFoundError".into()),
        "The server side encryption configuration was not found",
    );
    e.set_status_code(http::StatusCode::NOT_FOUND);
    e
}

pub async fn put_bucket(
    state: &SharedState,
    req: S3Request<PutBucketEncryptionInput>,
) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
    let entry = bucket(&req)?;
    if entry.bck.is_remote() {
        return Err(s3_error!(NotImplemented, "Default encryption of a cloud bucket is its backend's: set it there"));
    }
    let rules = &req.input.server_side_encryption_configuration.rules;
    let [rule] = rules.as_slice() else {
        return Err(s3_error!(MalformedXML, "Exactly one server-side encryption rule is supported"));
    };
    let d = rule
        .apply_server_side_encryption_by_default
        .as_ref()
        .ok_or_else(|| s3_error!(MalformedXML, "The rule must name its ApplyServerSideEncryptionByDefault"))?;
    let config = match d.sse_algorithm.as_str() {
        seal::AES256 if d.kms_master_key_id.is_none() => {
            BucketDefault { algorithm: seal::AES256.to_owned(), kms_key_id: None }
        }
        seal::AWS_KMS => {
            let id = kms_id(state, d.kms_master_key_id.as_deref())?;
            BucketDefault { algorithm: seal::AWS_KMS.to_owned(), kms_key_id: Some(id) }
        }
        _ => return Err(s3_error!(MalformedXML, "Unsupported server-side encryption algorithm")),
    };
    let doc = serde_json::to_string(&config).map_err(|e| s3_error!(InternalError, "{e}"))?;
    crate::s3::bucket::set_config(state, req.input.bucket, CONFIG, Some(doc)).await?;
    Ok(S3Response::new(PutBucketEncryptionOutput {}))
}

pub async fn get_bucket(
    _state: &SharedState,
    req: S3Request<GetBucketEncryptionInput>,
) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
    let entry = bucket(&req)?;
    let d = bucket_default(&entry).ok_or_else(not_found)?;
    let rule = ServerSideEncryptionRule {
        apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
            sse_algorithm: ServerSideEncryption::from(d.algorithm),
            kms_master_key_id: d.kms_key_id,
        }),
        bucket_key_enabled: Some(false),
    };
    Ok(S3Response::new(GetBucketEncryptionOutput {
        server_side_encryption_configuration: Some(ServerSideEncryptionConfiguration { rules: vec![rule] }),
    }))
}

pub async fn delete_bucket(
    state: &SharedState,
    req: S3Request<DeleteBucketEncryptionInput>,
) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
    bucket(&req)?;
    crate::s3::bucket::set_config(state, req.input.bucket, CONFIG, None).await?;
    Ok(S3Response::new(DeleteBucketEncryptionOutput {}))
}
