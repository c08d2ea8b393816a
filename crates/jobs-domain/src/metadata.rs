//! Job metadata: a free-form JSON object, changed by JSON merge patches, within a size cap.

use serde_json::{Map, Value};

use crate::ValidationError;

/// Free-form job metadata: always a JSON object.
pub type Metadata = Map<String, Value>;

/// The default cap on a job's metadata, serialized (64 KiB).
pub const DEFAULT_MAX_METADATA_BYTES: usize = 64 * 1024;

/// Applies a JSON merge patch (RFC 7396) to an object: `null` removes a key, an object
/// merges recursively, anything else replaces.
pub fn merge_patch(target: &mut Metadata, patch: &Metadata) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(inner) => {
                let slot = target.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(existing) = slot {
                    merge_patch(existing, inner);
                }
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

/// The length of the metadata serialized as compact JSON, as it is stored.
pub fn serialized_len(metadata: &Metadata) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a map of JSON values into a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, metadata);
    count.0
}

/// Refuses metadata that serializes to more than `max` bytes (`details.field = "metadata"`).
pub fn check_metadata_size(metadata: &Metadata, max: usize) -> Result<(), ValidationError> {
    let len = serialized_len(metadata);
    if len > max {
        return Err(ValidationError::new(
            "metadata",
            format!("is {len} bytes as JSON; at most {max} are allowed"),
        ));
    }
    Ok(())
}

/// Metadata known to be within a cap: built only by [`BoundedMetadata::new`], which applies
/// [`check_metadata_size`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BoundedMetadata(Metadata);

impl BoundedMetadata {
    /// Checks that `metadata` serializes to at most `max` bytes.
    pub fn new(metadata: Metadata, max: usize) -> Result<BoundedMetadata, ValidationError> {
        check_metadata_size(&metadata, max)?;
        Ok(BoundedMetadata(metadata))
    }

    /// The metadata.
    pub fn get(&self) -> &Metadata {
        &self.0
    }

    /// The metadata, owned.
    pub fn into_inner(self) -> Metadata {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Metadata {
        match value {
            Value::Object(map) => map,
            _ => Metadata::new(),
        }
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        // The examples of RFC 7396 appendix A that have objects on both sides.
        let mut target = object(json!({"a": "b", "c": {"d": "e", "f": "g"}}));
        merge_patch(&mut target, &object(json!({"a": "z", "c": {"f": null}})));
        assert_eq!(Value::Object(target), json!({"a": "z", "c": {"d": "e"}}));

        let mut target = object(json!({"a": {"b": "c"}}));
        merge_patch(&mut target, &object(json!({"a": {"b": "d", "c": null}})));
        assert_eq!(Value::Object(target), json!({"a": {"b": "d"}}));

        let mut target = object(json!({"a": "foo"}));
        merge_patch(&mut target, &object(json!({"a": {"bb": {"ccc": null}}})));
        assert_eq!(Value::Object(target), json!({"a": {"bb": {}}}));

        let mut target = object(json!({"a": [1, 2]}));
        merge_patch(&mut target, &object(json!({"a": [3], "b": null})));
        assert_eq!(Value::Object(target), json!({"a": [3]}));
    }

    #[test]
    fn the_size_is_the_compact_json_length_and_the_cap_is_inclusive() {
        let meta = object(json!({"a": "xyz", "n": [1, 2]}));
        let len = serde_json::to_string(&meta).unwrap().len();
        assert_eq!(serialized_len(&meta), len);
        assert!(check_metadata_size(&meta, len).is_ok());
        let err = check_metadata_size(&meta, len - 1).unwrap_err();
        assert_eq!(err.field, "metadata");
    }

    #[test]
    fn bounded_metadata_is_built_only_within_its_cap() {
        let meta = object(json!({"progress": 0.5}));
        let len = serialized_len(&meta);
        assert_eq!(BoundedMetadata::new(meta.clone(), len).unwrap().get(), &meta);
        assert_eq!(BoundedMetadata::new(meta.clone(), len - 1).unwrap_err().field, "metadata");
        assert!(BoundedMetadata::new(Metadata::new(), 2).unwrap().into_inner().is_empty());
    }
}
