//! What a JSON pointer reads from and removes from: the payload of a record as a plain JSON value,
//! or (`super::dynamodb`) a DynamoDB item image. The shared rules in `super::build` use only this
//! trait, so they never learn the payload's form.

use std::borrow::Cow;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::record::PayloadText;

/// A decoded payload that JSON pointers can read from.
pub trait Document {
    /// The string at `pointer`; `Err` when something else than a string is there.
    fn string_at(&self, pointer: &str) -> Result<Option<Cow<'_, str>>, ()>;
    /// Removes what is at `pointer` and returns it if it was a string; `Err` if it was another type.
    fn take_string_at(&mut self, pointer: &str) -> Result<Option<String>, ()>;
    /// The payload as exact JSON text.
    fn into_text(self) -> PayloadText;
}

impl Document for Value {
    fn string_at(&self, pointer: &str) -> Result<Option<Cow<'_, str>>, ()> {
        match self.pointer(pointer) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(Cow::Borrowed(s))),
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

    fn into_text(self) -> PayloadText {
        PayloadText::whole(self.to_string())
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

/// A JSON payload kept as its text (an SQS body, Kinesis data, an EventBridge `detail`).
///
/// A pointer is resolved by reading only the objects and arrays on its path, with every value
/// borrowed from the text; the token is cut out of the text, so everything else reaches the
/// backend byte for byte — numbers of any precision, key order and escapes as the producer wrote
/// them — and the payload is never rebuilt as a tree and written out again. A key given twice on
/// the path of a pointer makes the read fail (parsers disagree on which copy counts, so neither
/// a tenant nor a token is ever read from such a payload); `member` (for the SNS and EventBridge
/// wrappers) takes the last copy.
#[derive(Debug)]
pub struct JsonText {
    text: String,
    /// The top-level object's members, read once (`None` when the payload is not an object, or
    /// after something was cut).
    members: Option<Vec<Member>>,
    /// Byte ranges cut out of `text` (the token's members), in order: the text is not moved
    /// until the payload is written.
    cuts: Vec<std::ops::Range<usize>>,
}

/// One member of an object: its key and the byte range of its value in the object's text.
#[derive(Debug, Clone)]
struct Member {
    key: KeyText,
    value: std::ops::Range<usize>,
}

/// A member's key: where it lies in the text, or, when it holds escapes, its unescaped text.
#[derive(Debug, Clone)]
enum KeyText {
    Span(std::ops::Range<usize>),
    Owned(Box<str>),
}

/// An object's members as borrowed slices, in text order.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

/// A key, borrowed from the text unless it holds escapes.
#[derive(serde::Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some((Key(key), value)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// Where `inner` (a slice of `outer`) starts in `outer`.
fn offset_in(outer: &str, inner: &str) -> usize {
    inner.as_ptr() as usize - outer.as_ptr() as usize
}

/// The byte range of `raw` (a slice of `outer`) in `outer`.
fn span_in(outer: &str, raw: &RawValue) -> std::ops::Range<usize> {
    let start = offset_in(outer, raw.get());
    start..start + raw.get().len()
}

/// One pointer token, unescaped (RFC 6901: `~1` is `/`, `~0` is `~`).
fn unescape_token(token: &str) -> Cow<'_, str> {
    if token.contains('~') {
        Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(token)
    }
}

/// The value `token` names in the object or array `container` (JSON text), as a range of it;
/// `Err` when the object holds that key more than once (which copy a reader takes differs
/// between JSON parsers, so an identity is never read from such a path).
fn child(container: &str, token: &str) -> Result<Option<std::ops::Range<usize>>, ()> {
    match container.as_bytes().first() {
        Some(b'{') => {
            let Ok(Members(members)) = serde_json::from_str(container) else {
                return Ok(None);
            };
            let key = unescape_token(token);
            let mut found = members.iter().filter(|(k, _)| *k == key);
            match (found.next(), found.next()) {
                (Some(_), Some(_)) => Err(()),
                (Some((_, value)), None) => Ok(Some(span_in(container, value))),
                (None, _) => Ok(None),
            }
        }
        Some(b'[') => {
            let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(container) else {
                return Ok(None);
            };
            let Ok(index) = token.parse::<usize>() else {
                return Ok(None);
            };
            Ok(items.get(index).map(|item| span_in(container, item)))
        }
        _ => Ok(None),
    }
}

impl JsonText {
    /// Reads `text` as a JSON payload; `Err` when it is not JSON.
    pub fn new(text: String) -> Result<Self, serde_json::Error> {
        // Values found inside the text are exact slices of it, and a payload with no white space
        // around it becomes the envelope's raw value without a copy.
        let json_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
        let trimmed = text.trim_matches(json_space);
        let text = if trimmed.len() < text.len() {
            trimmed.to_owned()
        } else {
            text
        };
        let members = match text.as_bytes().first() {
            Some(b'{') => {
                let Members(members) = serde_json::from_str(&text)?;
                Some(
                    members
                        .into_iter()
                        .map(|(key, value)| Member {
                            key: match key {
                                Cow::Borrowed(key) => {
                                    let start = offset_in(&text, key);
                                    KeyText::Span(start..start + key.len())
                                }
                                Cow::Owned(key) => KeyText::Owned(key.into()),
                            },
                            value: span_in(&text, value),
                        })
                        .collect(),
                )
            }
            _ => {
                serde_json::from_str::<serde::de::IgnoredAny>(&text)?;
                None
            }
        };
        Ok(Self {
            text,
            members,
            cuts: Vec::new(),
        })
    }

    /// A member's key, unescaped.
    fn key<'s>(&'s self, member: &'s Member) -> &'s str {
        match &member.key {
            KeyText::Span(span) => &self.text[span.clone()],
            KeyText::Owned(key) => key,
        }
    }

    /// The exact text of the top-level member `key`, if the payload is an object holding it.
    pub fn member(&self, key: &str) -> Option<&str> {
        let members = self.members.as_ref()?;
        let member = members.iter().rev().find(|m| self.key(m) == key)?;
        Some(&self.text[member.value.clone()])
    }

    /// The byte range of the value at `pointer`; `Err` when a key on the path is given twice.
    fn find(&self, pointer: &str) -> Result<Option<std::ops::Range<usize>>, ()> {
        let Some(rest) = pointer.strip_prefix('/') else {
            return Ok(None);
        };
        let mut tokens = rest.split('/');
        let first = tokens.next().unwrap_or_default();
        let found = match &self.members {
            Some(members) => {
                let key = unescape_token(first);
                let mut found = members.iter().filter(|m| self.key(m) == key);
                match (found.next(), found.next()) {
                    (Some(_), Some(_)) => return Err(()),
                    (found, _) => found.map(|m| m.value.clone()),
                }
            }
            None => child(&self.text, first)?,
        };
        let Some(mut range) = found else {
            return Ok(None);
        };
        for token in tokens {
            let Some(inner) = child(&self.text[range.clone()], token)? else {
                return Ok(None);
            };
            range = range.start + inner.start..range.start + inner.end;
        }
        Ok(Some(range))
    }

    /// The string at `range`, unescaped; `Err` when another type is there.
    fn string(&self, range: std::ops::Range<usize>) -> Result<Cow<'_, str>, ()> {
        let text = &self.text[range];
        if !text.starts_with('"') {
            return Err(());
        }
        let Key(value) = serde_json::from_str(text).map_err(|_| ())?;
        Ok(value)
    }

    /// Removes every member or element at `pointer` from the text.
    fn remove(&mut self, pointer: &str) {
        let Some((parent, last)) = pointer.rsplit_once('/') else {
            return;
        };
        let key = unescape_token(last);
        // A member of the top-level object, the usual case: its members are known already.
        if parent.is_empty()
            && let Some(members) = &self.members
        {
            let spans: Vec<_> = members.iter().map(|m| m.value.clone()).collect();
            let matching: Vec<usize> = (0..members.len())
                .filter(|&i| self.key(&members[i]) == key)
                .collect();
            let cuts = cut_ranges(&self.text, &spans, &matching);
            self.cut(0, cuts);
            return;
        }
        let parent_range = if parent.is_empty() {
            0..self.text.len()
        } else {
            let Ok(Some(range)) = self.find(parent) else {
                return;
            };
            range
        };
        let container = &self.text[parent_range.clone()];
        let cuts = match container.as_bytes().first() {
            Some(b'{') => {
                let Ok(Members(members)) = serde_json::from_str(container) else {
                    return;
                };
                let spans: Vec<_> = members.iter().map(|(_, v)| span_in(container, v)).collect();
                let matching: Vec<usize> = (0..members.len())
                    .filter(|&i| members[i].0 == key)
                    .collect();
                cut_ranges(container, &spans, &matching)
            }
            Some(b'[') => {
                let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(container) else {
                    return;
                };
                let Ok(index) = key.parse::<usize>() else {
                    return;
                };
                let spans: Vec<_> = items.iter().map(|v| span_in(container, v)).collect();
                cut_ranges(container, &spans, &[index])
            }
            _ => return,
        };
        self.cut(parent_range.start, cuts);
    }

    /// Records `cuts` (ranges relative to `base`, in order) as cut out of the text; the text is
    /// not moved until the payload is written. (`take_string_at` applies earlier cuts before it
    /// looks again, so every range refers to the text as it then is.)
    fn cut(&mut self, base: usize, cuts: Vec<std::ops::Range<usize>>) {
        self.members = None;
        self.cuts
            .extend(cuts.into_iter().map(|cut| base + cut.start..base + cut.end));
    }

    /// The text with the cuts applied, as a new document (reads after a cut, rare).
    fn applied(&self) -> Self {
        let text = PayloadText::cut(self.text.clone(), self.cuts.clone()).joined();
        Self::new(text).expect("cutting whole members leaves JSON")
    }
}

/// The ranges to cut from an object's or array's text (`container`) to remove the entries at
/// `remove` (indexes into `spans`, the entries' value ranges, in order). An entry's segment runs
/// from the end of the entry before it (or just after the opening bracket) to the end of its
/// value, so it holds the comma before it and its key; cutting the segments of the removed
/// entries leaves valid JSON, except that when the first entry goes, the first entry kept loses
/// the comma before it too.
fn cut_ranges(
    container: &str,
    spans: &[std::ops::Range<usize>],
    remove: &[usize],
) -> Vec<std::ops::Range<usize>> {
    let segment = |i: usize| {
        let start = if i == 0 { 1 } else { spans[i - 1].end };
        start..spans[i].end
    };
    let mut cuts: Vec<std::ops::Range<usize>> = remove.iter().map(|&i| segment(i)).collect();
    // `remove` is in order: the first entry kept is where it first skips an index.
    let first_kept = remove
        .iter()
        .enumerate()
        .position(|(position, &index)| position != index)
        .unwrap_or(remove.len());
    if remove.first() == Some(&0)
        && let Some(kept) = (first_kept < spans.len()).then_some(first_kept)
    {
        let from = spans[kept - 1].end;
        let after = &container[from..spans[kept].start];
        if let Some(rest) = after.trim_start().strip_prefix(',') {
            cuts.push(from..spans[kept].start - rest.len());
        }
    }
    cuts.sort_by_key(|cut| cut.start);
    let mut merged: Vec<std::ops::Range<usize>> = Vec::new();
    for cut in cuts {
        match merged.last_mut() {
            Some(previous) if previous.end >= cut.start => previous.end = previous.end.max(cut.end),
            _ => merged.push(cut),
        }
    }
    merged
}

impl Document for JsonText {
    fn string_at(&self, pointer: &str) -> Result<Option<Cow<'_, str>>, ()> {
        if !self.cuts.is_empty() {
            let applied = self.applied();
            return applied
                .string_at(pointer)
                .map(|found| found.map(|s| Cow::Owned(s.into_owned())));
        }
        match self.find(pointer)? {
            None => Ok(None),
            Some(range) => self.string(range).map(Some),
        }
    }

    fn take_string_at(&mut self, pointer: &str) -> Result<Option<String>, ()> {
        if !self.cuts.is_empty() {
            *self = self.applied();
        }
        let Some(range) = self.find(pointer)? else {
            return Ok(None);
        };
        // Only a string is a token: anything else stays where it is and the record is refused.
        let value = self.string(range)?.into_owned();
        self.remove(pointer);
        Ok(Some(value))
    }

    fn into_text(self) -> PayloadText {
        PayloadText::cut(self.text, self.cuts)
    }
}

#[cfg(test)]
mod text_tests {
    use super::*;

    fn doc(text: &str) -> JsonText {
        JsonText::new(text.to_owned()).unwrap()
    }

    #[test]
    fn reads_strings_at_pointers_through_objects_and_arrays() {
        let d = doc(r#"{"t":"acme","a":{"b/c":"x","l":["zero",{"k":"v\u00e9"}]},"n":1}"#);
        assert_eq!(d.string_at("/t"), Ok(Some("acme".into())));
        assert_eq!(d.string_at("/a/b~1c"), Ok(Some("x".into())));
        assert_eq!(d.string_at("/a/l/0"), Ok(Some("zero".into())));
        assert_eq!(d.string_at("/a/l/1/k"), Ok(Some("vé".into())));
        assert_eq!(d.string_at("/n"), Err(()));
        assert_eq!(d.string_at("/missing"), Ok(None));
        assert_eq!(d.string_at("/a/l/9"), Ok(None));
    }

    #[test]
    fn the_token_is_cut_out_and_the_rest_is_kept_byte_for_byte() {
        for (before, pointer, after) in [
            (r#"{"tenantToken":"T","x":1}"#, "/tenantToken", r#"{"x":1}"#),
            (
                r#"{"x":1.50,"tenantToken":"T"}"#,
                "/tenantToken",
                r#"{"x":1.50}"#,
            ),
            (
                r#"{"a":1, "tenantToken" : "T" ,"b":2}"#,
                "/tenantToken",
                r#"{"a":1 ,"b":2}"#,
            ),
            (r#"{ "tenantToken":"T" }"#, "/tenantToken", r#"{ }"#),
            (
                r#"{"auth":{"jwt":"T","k":2},"n":12345678901234567890123}"#,
                "/auth/jwt",
                r#"{"auth":{"k":2},"n":12345678901234567890123}"#,
            ),
            (r#"{"l":["a","T","b"]}"#, "/l/1", r#"{"l":["a","b"]}"#),
            (r#"{"l":["T","b"]}"#, "/l/0", r#"{"l":["b"]}"#),
        ] {
            let mut d = doc(before);
            assert!(d.take_string_at(pointer).unwrap().is_some(), "{before}");
            assert_eq!(d.into_text().joined(), after, "{before}");
        }
        // A key given twice on the path: neither copy is read, nothing is cut.
        let mut d = doc(r#"{"t":"first","t":"last"}"#);
        assert_eq!(d.string_at("/t"), Err(()));
        assert_eq!(d.take_string_at("/t"), Err(()));
        let mut d = doc(r#"{"auth":{"jwt":"A"},"auth":{"jwt":"B"}}"#);
        assert_eq!(d.take_string_at("/auth/jwt"), Err(()));
        let d = doc(r#"{"a":{"t":"x","t":"y"}}"#);
        assert_eq!(d.string_at("/a/t"), Err(()));
        assert_eq!(d.into_text().joined(), r#"{"a":{"t":"x","t":"y"}}"#);
        let mut d = doc(r#"{"t":5}"#);
        assert_eq!(d.take_string_at("/t"), Err(()));
        assert_eq!(d.into_text().joined(), r#"{"t":5}"#);
    }

    #[test]
    fn cutting_entries_keeps_json_valid() {
        // Through `remove` directly: every copy at the last step, first entries included.
        for (before, pointer, after) in [
            (
                r#"{"t":"T","x":"\u0041","t":"U"}"#,
                "/t",
                r#"{"x":"\u0041"}"#,
            ),
            (r#"{"t":"T", "t":"U" , "x":1}"#, "/t", r#"{ "x":1}"#),
            (r#"{"t":"T","t":"U"}"#, "/t", r#"{}"#),
        ] {
            let mut d = doc(before);
            d.remove(pointer);
            assert_eq!(d.into_text().joined(), after, "{before}");
        }
        // Many copies first: linear, not quadratic.
        let mut many = String::from("{");
        for _ in 0..50_000 {
            many.push_str(r#""t":"","#);
        }
        many.push_str(r#""x":1}"#);
        let mut d = doc(&many);
        d.remove("/t");
        assert_eq!(d.into_text().joined(), r#"{"x":1}"#);
        // Only JSON's own white space is trimmed.
        assert!(JsonText::new("\u{a0}{}".into()).is_err());
    }

    #[test]
    fn non_objects_and_invalid_text() {
        assert!(JsonText::new("{not json".into()).is_err());
        assert!(JsonText::new(r#"{"a":1} trailing"#.into()).is_err());
        let d = doc(r#"[{"tenantId":"acme"}]"#);
        assert_eq!(d.string_at("/0/tenantId"), Ok(Some("acme".into())));
        assert_eq!(doc("\"text\"").string_at("/x"), Ok(None));
    }
}
