//! The value type of events: JSON's shapes, made for log records.
//!
//! Three choices make it cheaper than a `serde_json::Value` tree per event:
//! strings are [`Str`] (inline up to 23 bytes, shared behind an `Arc` above
//! that, so a clone never copies text and field names never allocate);
//! objects are a [`Map`] of insertion-ordered pairs with a linear lookup (an
//! httpd event has at most a dozen keys per level, where a hash costs more
//! than the scan); and a time is a native [`Value::Time`], formatted once by
//! the encoder. Numbers stay `serde_json::Number`, so they print exactly as
//! they did before.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
pub use serde_json::Number;

/// An event string: cheap to clone, small ones inline.
pub type Str = smol_str::SmolStr;

/// One value of an event.
#[derive(Debug, Clone, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(Str),
    /// A point in time, written as RFC 3339 in UTC with milliseconds, the
    /// form Filebeat and Logstash write `@timestamp` in.
    Time(DateTime<Utc>),
    Array(Vec<Value>),
    Object(Map),
}

static NULL: Value = Value::Null;

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    pub fn as_object_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    /// The time this value holds: a native time, or a string in RFC 3339.
    pub fn as_time(&self) -> Option<DateTime<Utc>> {
        match self {
            Value::Time(t) => Some(*t),
            Value::String(s) => DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Value::Object(_))
    }

    pub fn is_array(&self) -> bool {
        matches!(self, Value::Array(_))
    }

    pub fn is_string(&self) -> bool {
        matches!(self, Value::String(_))
    }

    /// The value under `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object()?.get(key)
    }

    /// The same value as a `serde_json::Value`, for code that speaks it
    /// (tests, `logpipe test` expectations).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::Value::Number(n.clone()),
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::Time(t) => serde_json::Value::String(TimeText::new(t).as_str().to_owned()),
            Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Object(map) => serde_json::Value::Object(map.to_json()),
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Time(a), Value::Time(b)) => a == b,
            // A time and its text are the same document.
            (Value::Time(t), Value::String(s)) | (Value::String(s), Value::Time(t)) => {
                TimeText::new(t).as_str() == s.as_str()
            }
            (Value::Array(a), Value::Array(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => a == b,
            _ => false,
        }
    }
}

impl PartialEq<serde_json::Value> for Value {
    fn eq(&self, other: &serde_json::Value) -> bool {
        match (self, other) {
            (Value::Null, serde_json::Value::Null) => true,
            (Value::Bool(a), serde_json::Value::Bool(b)) => a == b,
            (Value::Number(a), serde_json::Value::Number(b)) => a == b,
            (Value::String(a), serde_json::Value::String(b)) => a == b,
            (Value::Time(t), serde_json::Value::String(s)) => TimeText::new(t).as_str() == s,
            (Value::Array(a), serde_json::Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
            }
            (Value::Object(a), serde_json::Value::Object(b)) => a == b,
            _ => false,
        }
    }
}

impl PartialEq<&str> for Value {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl PartialEq<str> for Value {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}

impl std::ops::Index<&str> for Value {
    type Output = Value;
    /// The value under `key`, or null, as `serde_json::Value` indexes.
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

impl std::ops::Index<usize> for Value {
    type Output = Value;
    fn index(&self, i: usize) -> &Value {
        self.as_array().and_then(|a| a.get(i)).unwrap_or(&NULL)
    }
}

macro_rules! from_number {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Self {
                Value::Number(Number::from(n))
            }
        }
    )*};
}
from_number!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

impl From<f64> for Value {
    /// A float; NaN and infinities, which JSON cannot hold, become null.
    fn from(f: f64) -> Self {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(Str::new(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(Str::from(s))
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::String(Str::new(s))
    }
}

impl From<Str> for Value {
    fn from(s: Str) -> Self {
        Value::String(s)
    }
}

impl From<DateTime<Utc>> for Value {
    fn from(t: DateTime<Utc>) -> Self {
        Value::Time(t)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Self {
        Value::Array(items)
    }
}

impl From<Map> for Value {
    fn from(map: Map) -> Self {
        Value::Object(map)
    }
}

impl From<serde_json::Value> for Value {
    fn from(value: serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(n),
            serde_json::Value::String(s) => Value::String(Str::from(s)),
            serde_json::Value::Array(items) => {
                Value::Array(items.into_iter().map(Value::from).collect())
            }
            serde_json::Value::Object(map) => Value::Object(Map::from(map)),
        }
    }
}

impl From<&serde_json::Value> for Value {
    fn from(value: &serde_json::Value) -> Self {
        Value::from(value.clone())
    }
}

/// An object: keys in insertion order, looked up by a scan.
#[derive(Debug, Clone, Default)]
pub struct Map(Vec<(Str, Value)>);

impl Map {
    pub fn new() -> Self {
        Map(Vec::new())
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Map(Vec::with_capacity(capacity))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.0.iter().position(|(k, _)| k.as_str() == key)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0
            .iter_mut()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Sets `key`; a key already there keeps its place and its old value is
    /// returned.
    pub fn insert(&mut self, key: Str, value: impl Into<Value>) -> Option<Value> {
        let value = value.into();
        match self.position(&key) {
            Some(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            None => {
                self.0.push((key, value));
                None
            }
        }
    }

    /// Appends a key known not to be there yet (a builder's shortcut: no
    /// scan).
    pub(crate) fn push_new(&mut self, key: Str, value: impl Into<Value>) {
        debug_assert!(!self.contains_key(&key), "duplicate key {key}");
        self.0.push((key, value.into()));
    }

    /// Removes `key`; the other keys keep their order.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.position(key)?;
        Some(self.0.remove(i).1)
    }

    /// The value under `key`, inserted by `make` first when missing.
    pub fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> Value) -> &mut Value {
        let i = match self.position(key) {
            Some(i) => i,
            None => {
                self.0.push((Str::new(key), make()));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Str, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn iter_mut(&mut self) -> impl ExactSizeIterator<Item = (&Str, &mut Value)> {
        self.0.iter_mut().map(|(k, v)| (&*k, v))
    }

    pub fn keys(&self) -> impl ExactSizeIterator<Item = &Str> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl ExactSizeIterator<Item = &Value> {
        self.0.iter().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl ExactSizeIterator<Item = &mut Value> {
        self.0.iter_mut().map(|(_, v)| v)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&Str, &mut Value) -> bool) {
        self.0.retain_mut(|(k, v)| keep(k, v));
    }

    /// Removes duplicate keys: the last value of a key stays, in the place
    /// of its first occurrence.
    fn dedup_keys(&mut self) {
        let mut first: std::collections::HashMap<Str, usize> =
            std::collections::HashMap::with_capacity(self.0.len());
        let mut moves = Vec::new();
        for (i, (k, _)) in self.0.iter().enumerate() {
            match first.get(k) {
                Some(&at) => moves.push((i, at)),
                None => {
                    first.insert(k.clone(), i);
                }
            }
        }
        if moves.is_empty() {
            return;
        }
        let mut keep = vec![true; self.0.len()];
        for (from, to) in moves {
            let value = std::mem::take(&mut self.0[from].1);
            self.0[to].1 = value;
            keep[from] = false;
        }
        let mut i = 0;
        self.0.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }

    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.0
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_json()))
            .collect()
    }
}

/// Equal when the same keys hold equal values, in any order (as JSON
/// objects compare).
impl PartialEq for Map {
    fn eq(&self, other: &Map) -> bool {
        self.len() == other.len() && self.0.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl PartialEq<serde_json::Map<String, serde_json::Value>> for Map {
    fn eq(&self, other: &serde_json::Map<String, serde_json::Value>) -> bool {
        self.len() == other.len()
            && self
                .0
                .iter()
                .all(|(k, v)| other.get(k.as_str()).is_some_and(|o| v == o))
    }
}

impl std::ops::Index<&str> for Map {
    type Output = Value;
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

impl From<serde_json::Map<String, serde_json::Value>> for Map {
    fn from(map: serde_json::Map<String, serde_json::Value>) -> Self {
        Map(map
            .into_iter()
            .map(|(k, v)| (Str::from(k), Value::from(v)))
            .collect())
    }
}

impl<K: Into<Str>> FromIterator<(K, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Self {
        let mut map = Map::new();
        for (k, v) in iter {
            map.insert(k.into(), v);
        }
        map
    }
}

impl IntoIterator for Map {
    type Item = (Str, Value);
    type IntoIter = std::vec::IntoIter<(Str, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = (&'a Str, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Str, Value)>,
        fn(&'a (Str, Value)) -> (&'a Str, &'a Value),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

/// A time in the text form [`Value::Time`] is written in, built without
/// allocating: `2026-11-25T23:59:59.123Z`.
pub struct TimeText {
    buf: [u8; 32],
    len: usize,
}

impl TimeText {
    pub fn new(time: &DateTime<Utc>) -> Self {
        let mut text = TimeText {
            buf: [0; 32],
            len: 0,
        };
        let year = time.year();
        if !(0..=9999).contains(&year) {
            // Outside four digits chrono's own form (`+10000-…`) is the
            // only honest one; it is rare enough to allocate for.
            let long = time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let n = long.len().min(text.buf.len());
            text.buf[..n].copy_from_slice(&long.as_bytes()[..n]);
            text.len = n;
            return text;
        }
        let millis = time.timestamp_subsec_millis().min(999);
        let b = &mut text.buf;
        digits(&mut b[0..4], year as u32);
        b[4] = b'-';
        digits(&mut b[5..7], time.month());
        b[7] = b'-';
        digits(&mut b[8..10], time.day());
        b[10] = b'T';
        digits(&mut b[11..13], time.hour());
        b[13] = b':';
        digits(&mut b[14..16], time.minute());
        b[16] = b':';
        digits(&mut b[17..19], time.second().min(59));
        b[19] = b'.';
        digits(&mut b[20..23], millis);
        b[23] = b'Z';
        text.len = 24;
        text
    }

    pub fn as_str(&self) -> &str {
        // INVARIANT: only ASCII digits and separators, or chrono's text.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

fn digits(out: &mut [u8], mut n: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// The time of a string in exactly the form [`TimeText`] writes, so that
/// reading it as a time and writing it again gives the same bytes; `None`
/// for any other text (which then stays a string).
pub fn parse_canonical_time(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let time = date.and_hms_milli_opt(num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?)?;
    Some(time.and_utc())
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Number(n) => n.serialize(serializer),
            Value::String(s) => serializer.serialize_str(s),
            Value::Time(t) => serializer.serialize_str(TimeText::new(t).as_str()),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(map) => map.serialize(serializer),
        }
    }
}

impl Serialize for Map {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in &self.0 {
            out.serialize_entry(k.as_str(), v)?;
        }
        out.end()
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::from(f))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(Str::new(s)))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(Str::from(s)))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Deserialize::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Value, A::Error> {
        MapVisitor.visit_map(access).map(Value::Object)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// A key read without an owned `String` in between.
pub(crate) struct Key(pub Str);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_str<E>(self, s: &str) -> Result<Key, E> {
                Ok(Key(Str::new(s)))
            }
            fn visit_string<E>(self, s: String) -> Result<Key, E> {
                Ok(Key(Str::from(s)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

struct MapVisitor;

/// Up to this many keys a decoded object checks each new key by a scan;
/// past it, duplicates are removed once at the end, so a hostile object of
/// many thousand keys costs linear time, not quadratic.
const SCAN_LIMIT: usize = 32;

impl<'de> Visitor<'de> for MapVisitor {
    type Value = Map;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Map, A::Error> {
        let mut map = Map::with_capacity(access.size_hint().unwrap_or(4).min(64));
        while let Some(Key(key)) = access.next_key()? {
            let value: Value = access.next_value()?;
            if map.len() < SCAN_LIMIT {
                // The last of duplicate keys wins, as serde_json's map does.
                map.insert(key, value);
            } else {
                map.0.push((key, value));
            }
        }
        if map.len() > SCAN_LIMIT {
            map.dedup_keys();
        }
        Ok(map)
    }
}

impl<'de> Deserialize<'de> for Map {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Map, D::Error> {
        d.deserialize_map(MapVisitor)
    }
}

impl fmt::Display for Value {
    /// The value as JSON, strings quoted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

// A value must stay small: it is the unit of every array and object.
const _: () = assert!(std::mem::size_of::<Value>() <= 32);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_print_as_serde_json_prints_them() {
        let text = r#"{"a":"x\"y\u0001é","n":-3,"u":18446744073709551615,"f":2.5,"e":1e300,"b":true,"z":null,"arr":[1,{"k":"v"}],"o":{}}"#;
        let ours: Value = serde_json::from_str(text).unwrap();
        let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&theirs).unwrap()
        );
        assert_eq!(ours, theirs);
    }

    #[test]
    fn removing_a_key_keeps_the_order_of_the_others() {
        let mut map: Map = ["a", "b", "c", "d"]
            .into_iter()
            .map(|k| (k, Value::from(k)))
            .collect();
        map.remove("b");
        map.insert("a".into(), 1);
        let keys: Vec<&str> = map.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["a", "c", "d"]);
        assert_eq!(
            serde_json::to_string(&map).unwrap(),
            r#"{"a":1,"c":"c","d":"d"}"#
        );
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_in_the_first_place() {
        let v: Value = serde_json::from_str(r#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"a":3,"b":2}"#);
        // Past the scan limit the same holds, the same way serde_json has it.
        let mut text = String::from("{");
        for i in 0..200 {
            text.push_str(&format!("\"k{}\":{i},", i % 70));
        }
        text.push_str("\"k3\":\"last\"}");
        let ours: Value = serde_json::from_str(&text).unwrap();
        let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(ours.as_object().unwrap().len(), 70);
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&theirs).unwrap()
        );
    }

    #[test]
    fn times_print_in_filebeat_form_and_read_back_only_from_it() {
        let t = DateTime::parse_from_rfc3339("2026-11-25T23:59:59.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(TimeText::new(&t).as_str(), "2026-11-25T23:59:59.123Z");
        assert_eq!(
            serde_json::to_string(&Value::Time(t)).unwrap(),
            r#""2026-11-25T23:59:59.123Z""#
        );
        let back = parse_canonical_time("2026-11-25T23:59:59.123Z").unwrap();
        assert_eq!(back.timestamp_millis(), t.timestamp_millis());
        for other in [
            "2026-11-25T23:59:59Z",
            "2026-11-25T23:59:59.123+00:00",
            "2026-11-25T23:59:59.123456Z",
            "2026-13-25T23:59:59.123Z",
            "2026-11-25T23:59:6x.123Z",
        ] {
            assert_eq!(parse_canonical_time(other), None, "{other}");
        }
        let far = NaiveDate::from_ymd_opt(12026, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        assert_eq!(TimeText::new(&far).as_str(), "+12026-01-01T00:00:00.000Z");
    }

    #[test]
    fn values_and_serde_json_values_compare_and_convert() {
        let j = json!({"a": [1, "x", null], "b": {"c": 2.5}});
        let v = Value::from(j.clone());
        assert_eq!(v, j);
        assert_eq!(v.to_json(), j);
        assert_eq!(v["a"][1], json!("x"));
        assert_eq!(v["missing"], json!(null));
    }
}
