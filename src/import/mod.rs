//! `logpipe import`: Filebeat and Logstash configs read with positions
//! ([`logstash`], [`filebeat`]) and converted into logpipe pipeline files
//! ([`convert`]), one per log source; what cannot be converted is listed as
//! a warning pointing at its text.

pub mod logstash;
pub mod vars;
pub mod yaml;
