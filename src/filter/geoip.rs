//! `geoip`: location and network owner of an IP address from a MaxMind
//! database (`.mmdb`: GeoLite2/GeoIP2 City, Country or ASN), in ECS
//! `geo.*` and `as.*` fields.
//!
//! ```toml
//! [[filter]]
//! type = "geoip"
//! database = "/var/lib/GeoIP/GeoLite2-City.mmdb"   # source: [source][ip]
//! ```
//! The database is read once at load; a missing or unreadable one is a
//! config error, so a pipeline never starts without the enrichment it names.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};
use toml::Spanned;

use super::Verdict;
use crate::config::ConfigCx;
use crate::event::Event;
use crate::event::FieldRef;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The MaxMind database file, relative to the pipeline file.
    pub database: Spanned<String>,
    /// The field holding the IP address (default `[source][ip]`).
    pub source: Option<Spanned<String>>,
    /// Where `geo` and `as` go (default `[source]`).
    pub target: Option<Spanned<String>>,
    /// Tags added when the address is not in the database or not an address
    /// (default `["_geoip_lookup_failure"]`).
    #[serde(default = "default_failure_tags")]
    pub tag_on_failure: Vec<String>,
}

fn default_failure_tags() -> Vec<String> {
    vec!["_geoip_lookup_failure".to_owned()]
}

#[derive(Clone)]
pub struct GeoIp {
    reader: Arc<maxminddb::Reader<Vec<u8>>>,
    source: FieldRef,
    geo: FieldRef,
    asn: FieldRef,
    tag_on_failure: Vec<String>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("database", &self.reader.metadata().database_type)
            .field("source", &self.source)
            .finish()
    }
}

impl Config {
    pub fn validate(self, cx: &mut ConfigCx<'_>) -> Option<GeoIp> {
        let path = cx.path(self.database.get_ref());
        let reader = match maxminddb::Reader::open_readfile(&path) {
            Ok(reader) => Some(reader),
            Err(e) => {
                cx.error(
                    &self.database.span(),
                    format!("cannot open the GeoIP database {}: {e}", path.display()),
                );
                None
            }
        };
        let source = match &self.source {
            Some(f) => cx.field(f),
            None => FieldRef::parse("[source][ip]").ok(),
        };
        let target = match &self.target {
            Some(f) => cx.field(f),
            None => FieldRef::parse("[source]").ok(),
        };
        let target = target?;
        Some(GeoIp {
            reader: Arc::new(reader?),
            source: source?,
            geo: target.child(["geo"]),
            asn: target.child(["as"]),
            tag_on_failure: self.tag_on_failure,
        })
    }
}

impl GeoIp {
    pub fn apply(&self, event: &mut Event) -> Verdict {
        let address = match event.get(&self.source) {
            Some(crate::event::Value::String(text)) => text.parse::<IpAddr>().ok(),
            None => return Verdict::Keep,
            _ => None,
        };
        let record = address.and_then(|ip| {
            self.reader
                .lookup(ip)
                .ok()?
                .decode::<Value>()
                .ok()
                .flatten()
        });
        let Some(record) = record else {
            for tag in &self.tag_on_failure {
                event.add_tag(tag);
            }
            return Verdict::Keep;
        };
        let (geo, asn) = ecs(&record);
        if !geo.is_empty() {
            event.insert(&self.geo, crate::event::Map::from(geo));
        }
        if !asn.is_empty() {
            event.insert(&self.asn, crate::event::Map::from(asn));
        }
        Verdict::Keep
    }
}

/// ECS `geo` and `as` objects from a City/Country/ASN record.
fn ecs(record: &Value) -> (Map<String, Value>, Map<String, Value>) {
    let name = |v: &Value| v.get("names").and_then(|n| n.get("en")).cloned();
    let mut geo = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            geo.insert(key.to_owned(), value);
        }
    };
    put("city_name", record.get("city").and_then(name));
    put("continent_name", record.get("continent").and_then(name));
    put("continent_code", record.pointer("/continent/code").cloned());
    put("country_name", record.get("country").and_then(name));
    let country = record.pointer("/country/iso_code").cloned();
    put("country_iso_code", country.clone());
    let region = record.pointer("/subdivisions/0");
    put("region_name", region.and_then(name));
    if let (Some(Value::String(c)), Some(Value::String(r))) =
        (&country, region.and_then(|r| r.get("iso_code")))
    {
        put("region_iso_code", Some(Value::String(format!("{c}-{r}"))));
    }
    put("timezone", record.pointer("/location/time_zone").cloned());
    if let (Some(lat), Some(lon)) = (
        record.pointer("/location/latitude"),
        record.pointer("/location/longitude"),
    ) {
        put(
            "location",
            Some(serde_json::json!({ "lat": lat, "lon": lon })),
        );
    }
    let mut asn = Map::new();
    if let Some(number) = record.get("autonomous_system_number") {
        asn.insert("number".into(), number.clone());
    }
    if let Some(org) = record.get("autonomous_system_organization") {
        asn.insert("organization".into(), serde_json::json!({ "name": org }));
    }
    (geo, asn)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Source;
    use serde_json::json;

    /// MaxMind DB encoding of a value (the subset a test database needs).
    fn encode(value: &Value, out: &mut Vec<u8>) {
        fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
            assert!(size < 29);
            if kind <= 7 {
                out.push((kind << 5) | size as u8);
            } else {
                out.push(size as u8);
                out.push(kind - 7);
            }
        }
        match value {
            Value::String(s) => {
                control(out, 2, s.len());
                out.extend(s.as_bytes());
            }
            Value::Number(n) if n.is_u64() => {
                let v = n.as_u64().unwrap() as u32;
                control(out, 6, 4);
                out.extend(v.to_be_bytes());
            }
            Value::Number(n) => {
                control(out, 3, 8);
                out.extend(n.as_f64().unwrap().to_be_bytes());
            }
            Value::Object(map) => {
                control(out, 7, map.len());
                for (k, v) in map {
                    encode(&Value::String(k.clone()), out);
                    encode(v, out);
                }
            }
            Value::Array(items) => {
                control(out, 11, items.len());
                for item in items {
                    encode(item, out);
                }
            }
            other => panic!("not encodable here: {other}"),
        }
    }

    /// A one-network IPv4 database holding `record`.
    pub(crate) fn database(network: [u8; 4], prefix: usize, record: &Value) -> Vec<u8> {
        let node_count = prefix as u32;
        let mut out = Vec::new();
        for depth in 0..prefix {
            let bit = (network[depth / 8] >> (7 - depth % 8)) & 1;
            let next = if depth + 1 == prefix {
                node_count + 16
            } else {
                depth as u32 + 1
            };
            let (left, right) = if bit == 0 {
                (next, node_count)
            } else {
                (node_count, next)
            };
            out.extend(&left.to_be_bytes()[1..]);
            out.extend(&right.to_be_bytes()[1..]);
        }
        out.extend([0u8; 16]);
        encode(record, &mut out);
        out.extend(b"\xAB\xCD\xEFMaxMind.com");
        let mut meta = Vec::new();
        control_map(&mut meta, 9);
        for (key, value) in [
            ("node_count", json!(node_count)),
            ("record_size", Value::Null),
            ("ip_version", Value::Null),
            ("database_type", json!("GeoLite2-City")),
            ("languages", json!(["en"])),
            ("binary_format_major_version", Value::Null),
            ("binary_format_minor_version", Value::Null),
            ("build_epoch", Value::Null),
            ("description", json!({"en": "logpipe test"})),
        ] {
            encode(&json!(key), &mut meta);
            match key {
                "record_size" => meta.extend([0xa1, 24]),
                "ip_version" => meta.extend([0xa1, 4]),
                "binary_format_major_version" => meta.extend([0xa1, 2]),
                "binary_format_minor_version" => meta.extend([0xa0]),
                // uint64 (extended type 9), one byte.
                "build_epoch" => meta.extend([0x01, 0x02, 1]),
                _ => encode(&value, &mut meta),
            }
        }
        out.extend(meta);
        out
    }

    fn control_map(out: &mut Vec<u8>, size: u8) {
        out.push((7 << 5) | size);
    }

    fn geoip(dir: &std::path::Path, text: &str) -> (Option<GeoIp>, Vec<String>) {
        let source = Source::new(dir.join("p.toml"), text);
        let mut cx = ConfigCx::new(&source);
        let table = toml::de::DeTable::parse(text).unwrap();
        let span = table.span();
        let g = cx
            .de::<Config>(Spanned::new(
                span,
                toml::de::DeValue::Table(table.into_inner()),
            ))
            .and_then(|c| c.validate(&mut cx));
        (g, cx.diagnostics.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn addresses_in_the_database_get_ecs_geo_fields() {
        let dir = tempfile::tempdir().unwrap();
        let record = json!({
            "city": {"names": {"en": "London"}},
            "continent": {"code": "EU", "names": {"en": "Europe"}},
            "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
            "location": {"latitude": 51.5142, "longitude": -0.0931},
            "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
        });
        std::fs::write(
            dir.path().join("city.mmdb"),
            database([81, 2, 69, 0], 24, &record),
        )
        .unwrap();
        let (g, d) = geoip(dir.path(), "database = \"city.mmdb\"");
        assert!(d.is_empty(), "{d:?}");
        let g = g.unwrap();
        let mut event = Event::default();
        event.insert(
            &FieldRef::parse("[source][ip]").unwrap(),
            json!("81.2.69.143"),
        );
        g.apply(&mut event);
        assert_eq!(
            event.fields["source"]["geo"],
            json!({
                "city_name": "London", "continent_name": "Europe", "continent_code": "EU",
                "country_name": "United Kingdom", "country_iso_code": "GB",
                "region_name": "England", "region_iso_code": "GB-ENG",
                "location": {"lat": 51.5142, "lon": -0.0931},
            })
        );
        let mut elsewhere = Event::default();
        elsewhere.insert(&FieldRef::parse("[source][ip]").unwrap(), json!("10.0.0.1"));
        g.apply(&mut elsewhere);
        assert_eq!(elsewhere.fields["tags"], json!(["_geoip_lookup_failure"]));
        assert!(elsewhere.fields["source"].get("geo").is_none());
    }

    #[test]
    fn a_missing_database_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let (g, d) = geoip(dir.path(), "database = \"nope.mmdb\"");
        assert!(g.is_none());
        assert!(d[0].contains("cannot open the GeoIP database"), "{d:?}");
    }
}
