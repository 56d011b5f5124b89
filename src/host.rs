//! Facts about the host that events carry: its name and its time zone.

use std::sync::OnceLock;

/// The host name, as Filebeat puts it in `host.name`.
pub fn name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| gethostname::gethostname().to_string_lossy().into_owned())
}

/// The local time zone as an IANA name when it can be known (`TZ`, or the
/// `/etc/localtime` link), else as the current UTC offset (`+02:00`), which
/// is what Filebeat's `add_locale` writes to `event.timezone`.
pub fn timezone() -> &'static str {
    static ZONE: OnceLock<String> = OnceLock::new();
    ZONE.get_or_init(|| {
        if let Ok(tz) = std::env::var("TZ") {
            let tz = tz.trim_start_matches(':');
            if tz.parse::<chrono_tz::Tz>().is_ok() {
                return tz.to_owned();
            }
        }
        if let Ok(target) = std::fs::read_link("/etc/localtime") {
            let text = target.to_string_lossy();
            if let Some((_, name)) = text.split_once("zoneinfo/") {
                if name.parse::<chrono_tz::Tz>().is_ok() {
                    return name.to_owned();
                }
            }
        }
        chrono::Local::now().format("%:z").to_string()
    })
}
