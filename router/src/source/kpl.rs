//! De-aggregation of Kinesis Producer Library (KPL) aggregated records.
//!
//! An aggregated record is the magic bytes `F3 89 9A C2`, a protobuf `AggregatedRecord`, and the
//! MD5 digest of that protobuf (the KPL's documented format, `aggregation-format.md` in
//! awslabs/amazon-kinesis-producer). Each user record carries its own partition key (by index into
//! a table) and data.

use md5::{Digest, Md5};
use prost::Message;

/// The bytes every aggregated record starts with.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
const DIGEST_LEN: usize = 16;

#[derive(Clone, PartialEq, Message)]
struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    records: Vec<KplRecord>,
}

#[derive(Clone, PartialEq, Message)]
struct KplRecord {
    #[prost(uint64, required, tag = "1")]
    partition_key_index: u64,
    #[prost(uint64, optional, tag = "2")]
    explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "vec", required, tag = "3")]
    data: Vec<u8>,
    #[prost(message, repeated, tag = "4")]
    tags: Vec<Tag>,
}

#[derive(Clone, PartialEq, Message)]
struct Tag {
    #[prost(string, required, tag = "1")]
    key: String,
    #[prost(string, optional, tag = "2")]
    value: Option<String>,
}

/// One user record inside an aggregated record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Its partition key.
    pub partition_key: String,
    /// Its data.
    pub data: Vec<u8>,
}

/// Whether `data` starts with the KPL magic bytes.
pub fn is_aggregated(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// Splits an aggregated record into its user records. Errors say why the bytes are not a valid
/// aggregate (bad digest, bad protobuf, partition key index out of range).
pub fn deaggregate(data: &[u8]) -> Result<Vec<UserRecord>, String> {
    let body = data
        .strip_prefix(&MAGIC)
        .ok_or("the KPL magic bytes are missing")?;
    if body.len() < DIGEST_LEN {
        return Err("too short for a KPL aggregate".into());
    }
    let (message, digest) = body.split_at(body.len() - DIGEST_LEN);
    if Md5::digest(message).as_slice() != digest {
        return Err("the KPL aggregate's MD5 digest does not match".into());
    }
    let aggregate =
        AggregatedRecord::decode(message).map_err(|e| format!("bad KPL protobuf: {e}"))?;
    aggregate
        .records
        .into_iter()
        .enumerate()
        .map(|(i, record)| {
            let partition_key = usize::try_from(record.partition_key_index)
                .ok()
                .and_then(|k| aggregate.partition_key_table.get(k))
                .ok_or_else(|| format!("user record {i} names a missing partition key"))?
                .clone();
            Ok(UserRecord {
                partition_key,
                data: record.data,
            })
        })
        .collect()
}

/// Builds an aggregated record (for tests and fixtures).
pub fn aggregate(records: &[UserRecord]) -> Vec<u8> {
    let mut table: Vec<String> = Vec::new();
    let records = records
        .iter()
        .map(|r| {
            let index = match table.iter().position(|k| *k == r.partition_key) {
                Some(i) => i,
                None => {
                    table.push(r.partition_key.clone());
                    table.len() - 1
                }
            };
            KplRecord {
                partition_key_index: index as u64,
                explicit_hash_key_index: None,
                data: r.data.clone(),
                tags: Vec::new(),
            }
        })
        .collect();
    let message = AggregatedRecord {
        partition_key_table: table,
        explicit_hash_key_table: Vec::new(),
        records,
    }
    .encode_to_vec();
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&message);
    out.extend_from_slice(&Md5::digest(&message));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let records = vec![
            UserRecord {
                partition_key: "acme".into(),
                data: b"{\"a\":1}".to_vec(),
            },
            UserRecord {
                partition_key: "globex".into(),
                data: b"{\"b\":2}".to_vec(),
            },
            UserRecord {
                partition_key: "acme".into(),
                data: b"{\"c\":3}".to_vec(),
            },
        ];
        let bytes = aggregate(&records);
        assert!(is_aggregated(&bytes));
        assert_eq!(deaggregate(&bytes).unwrap(), records);
    }

    #[test]
    fn corrupt_aggregates_are_refused() {
        let mut bytes = aggregate(&[UserRecord {
            partition_key: "k".into(),
            data: b"x".to_vec(),
        }]);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(deaggregate(&bytes).unwrap_err().contains("MD5"));
        assert!(deaggregate(&MAGIC).is_err());
        assert!(deaggregate(b"plain").is_err());
        // Valid digest over garbage protobuf.
        let garbage = [0xFFu8; 8];
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&garbage);
        bytes.extend_from_slice(&Md5::digest(garbage));
        assert!(deaggregate(&bytes).unwrap_err().contains("protobuf"));
    }
}
