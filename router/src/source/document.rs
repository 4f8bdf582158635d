//! What a JSON pointer reads from and removes from: the payload of a record as a plain JSON value,
//! or (`super::dynamodb`) a DynamoDB item image. The shared rules in `super::build` use only this
//! trait, so they never learn the payload's form.

use serde_json::Value;
use serde_json::value::RawValue;

/// A decoded payload that JSON pointers can read from.
pub trait Document {
    /// The string at `pointer`; `Err` when something else than a string is there.
    fn string_at(&self, pointer: &str) -> Result<Option<&str>, ()>;
    /// Removes what is at `pointer` and returns it if it was a string; `Err` if it was another type.
    fn take_string_at(&mut self, pointer: &str) -> Result<Option<String>, ()>;
    /// The payload as exact JSON text.
    fn into_raw(self) -> Box<RawValue>;
}

impl Document for Value {
    fn string_at(&self, pointer: &str) -> Result<Option<&str>, ()> {
        match self.pointer(pointer) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(()),
        }
    }

    fn take_string_at(&mut self, pointer: &str) -> Result<Option<String>, ()> {
        match take_at(self, pointer) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(()),
        }
    }

    fn into_raw(self) -> Box<RawValue> {
        serde_json::value::to_raw_value(&self).expect("a JSON value serialises")
    }
}

/// Removes and returns the value at a JSON pointer (RFC 6901; `~1` is `/`, `~0` is `~`).
pub fn take_at(value: &mut Value, pointer: &str) -> Option<Value> {
    let (parent, last) = pointer.rsplit_once('/')?;
    let key = if last.contains('~') {
        last.replace("~1", "/").replace("~0", "~")
    } else {
        last.to_owned()
    };
    match value.pointer_mut(parent)? {
        Value::Object(map) => map.remove(&key),
        Value::Array(items) => {
            let index: usize = key.parse().ok()?;
            (index < items.len()).then(|| items.remove(index))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn take_at_removes_nested_and_escaped_keys() {
        let mut v = json!({"a": {"b/c": 1, "d~e": 2, "keep": 3}, "t": "x"});
        assert_eq!(take_at(&mut v, "/a/b~1c"), Some(json!(1)));
        assert_eq!(take_at(&mut v, "/a/d~0e"), Some(json!(2)));
        assert_eq!(take_at(&mut v, "/t"), Some(json!("x")));
        assert_eq!(take_at(&mut v, "/missing"), None);
        assert_eq!(v, json!({"a": {"keep": 3}}));
    }
}
