//! The sinks of a publication besides HTTP: the textfile and the Munin plugin protocol.

pub mod munin;
pub mod textfile;
